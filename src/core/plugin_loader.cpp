// Loads optional backend plugins. libtmath never links CUDA, MLX or LibTorch: it
// looks for libtmath_cuda.so and libtmath_mlx.so next to itself and dlopens them at
// start-up, and libtmath_torch.so when asked for (load_backend("torch"),
// TMATH_BACKEND=torch, TMATH_TORCH=1); a plugin's tmath_<name>_register() adds the
// real backend. When the plugin is absent or cannot load (no driver, missing
// libraries) or is not loaded yet, an entry that reports itself unavailable, with the
// reason, is registered instead, so `tmath info` can say why and one binary runs with
// and without CUDA. Loading never throws; load_backend() throws only for unknown names.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>

#include "core/dispatch.h"
#include "tmath/backend.h"
#include "tmath/error.h"

namespace tmath {
namespace {

// Stand-in for a backend that is not built or cannot run here.
class UnavailableBackend final : public Backend {
 public:
  UnavailableBackend(std::string name, DeviceType type, bool built, std::string reason)
      : name_(std::move(name)), type_(type), built_(built), reason_(std::move(reason)) {}

  std::string_view name() const override { return name_; }
  DeviceType device_type() const override { return type_; }
  BackendInfo info() const override {
    BackendInfo i;
    i.name = name_;
    i.built = built_;
    i.available = false;
    i.reason = reason_;
    return i;
  }
  bool available() const override { return false; }
  bool supports(OpCode, DType) const override { return false; }
  Allocator& allocator(Device) override { fail("allocate"); }
  void copy_from_host(const void*, const ArrayRef&) override { fail("copy_from_host"); }
  void copy_to_host(const ArrayRef&, void*) override { fail("copy_to_host"); }
  void unary(OpCode op, const ArrayRef&, const ArrayRef&) override { fail(op); }
  void binary(OpCode op, const ArrayRef&, const ArrayRef&, const ArrayRef&) override { fail(op); }
  void where(const ArrayRef&, const ArrayRef&, const ArrayRef&, const ArrayRef&) override {
    fail("where");
  }
  void copy(const ArrayRef&, const ArrayRef&) override { fail("copy"); }
  void fill(const ArrayRef&, Scalar) override { fail("fill"); }
  void arange(const ArrayRef&, double, double) override { fail("arange"); }
  void reduce(OpCode op, const ArrayRef&, std::span<const int>, const ArrayRef&) override {
    fail(op);
  }
  void arg_reduce(OpCode op, const ArrayRef&, int, const ArrayRef&) override { fail(op); }
  void scan(OpCode op, const ArrayRef&, int, const ArrayRef&) override { fail(op); }
  void softmax(OpCode op, const ArrayRef&, const ArrayRef&) override { fail(op); }
  void layer_norm(const ArrayRef&, const ArrayRef&, const ArrayRef&, const LayerNormArgs&,
                  const ArrayRef&) override {
    fail("layer_norm");
  }
  void matmul(const ArrayRef&, const ArrayRef&, const ArrayRef&, const MatmulOptions&) override {
    fail("matmul");
  }
  void take(OpCode op, const ArrayRef&, const ArrayRef&, int, const ArrayRef&) override {
    fail(op);
  }
  void random(OpCode op, const RandomArgs&, const ArrayRef&) override { fail(op); }

 private:
  [[noreturn]] void fail(OpCode op) const { fail(std::string(op_name(op)).c_str()); }
  [[noreturn]] void fail(const char* op) const {
    throw DeviceError("[" + std::string(op) + "] the " + name_ + " backend is " +
                      (built_ ? "unavailable: " : "not built: ") + reason_);
  }

  std::string name_;
  DeviceType type_;
  bool built_;
  std::string reason_;
};

// Directory of the object holding this code (libtmath.so, or the executable
// when linked statically).
std::string own_directory() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&own_directory), &info) == 0 || !info.dli_fname) return ".";
  std::string path = info.dli_fname;
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// One optional backend plugin: lib<file>.so next to libtmath (or $<path_env>), whose
// extern "C" <symbol>() registers the backend; env <off_env>=0 disables it.
struct PluginSpec {
  const char* backend;   // registered name ("cuda", "mlx")
  DeviceType type;
  const char* file;      // libtmath_cuda.so
  const char* symbol;    // tmath_cuda_register
  const char* off_env;   // TMATH_CUDA
  const char* path_env;  // TMATH_CUDA_PLUGIN
  const char* missing;   // hint when the file is absent
  const char* lib_hint;  // substring of a dlopen error naming the framework's library
  const char* lib_why;   // what that error means
};

// Where the plugin file is: $<path_env>, else next to libtmath.
std::string plugin_path(const PluginSpec& s) {
  if (const char* p = std::getenv(s.path_env); p && *p) return p;
  return own_directory() + "/" + s.file;
}

void load_plugin(const PluginSpec& s) {
  auto unavailable = [&](bool built, std::string reason) {
    register_backend(
        std::make_shared<UnavailableBackend>(s.backend, s.type, built, std::move(reason)));
  };
  try {
    if (detail::env_off(s.off_env)) {
      unavailable(true, std::string("disabled by ") + s.off_env + "=" + std::getenv(s.off_env));
      return;
    }
    const std::string path = plugin_path(s);
    if (access(path.c_str(), F_OK) != 0) {
      unavailable(false, path + " not found (" + s.missing + ")");
      return;
    }
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* err = dlerror();
      std::string why = err ? err : "unknown dlopen error";
      if (why.find(s.lib_hint) != std::string::npos) why += std::string(" (") + s.lib_why + ")";
      unavailable(true, "cannot load " + path + ": " + why);
      return;
    }
    using RegisterFn = void (*)();
    auto fn = reinterpret_cast<RegisterFn>(dlsym(h, s.symbol));
    if (!fn) {
      unavailable(true, path + " has no " + s.symbol + "()");
      return;
    }
    fn();
  } catch (const std::exception& e) {
    try {
      unavailable(true, e.what());
    } catch (...) {
    }
  } catch (...) {
  }
}

const PluginSpec kCuda{"cuda", DeviceType::CUDA, "libtmath_cuda.so", "tmath_cuda_register",
                       "TMATH_CUDA", "TMATH_CUDA_PLUGIN", "built without the CUDA toolkit?",
                       "libcuda.so", "no NVIDIA driver installed?"};
const PluginSpec kMlx{"mlx", DeviceType::MLX, "libtmath_mlx.so", "tmath_mlx_register", "TMATH_MLX",
                      "TMATH_MLX_PLUGIN", "built without MLX?", "libmlx.so",
                      "MLX's library moved or removed?"};
// Loaded on demand: LibTorch takes about a second to load.
const PluginSpec kTorch{"torch", DeviceType::CPU, "libtmath_torch.so", "tmath_torch_register",
                        "TMATH_TORCH", "TMATH_TORCH_PLUGIN", "built without LibTorch?",
                        "libtorch", "LibTorch's libraries moved or removed?"};

bool env_on(const char* name) {
  const char* e = std::getenv(name);
  if (!e) return false;
  std::string v(e);
  return v == "1" || v == "on" || v == "ON" || v == "true" || v == "yes";
}

std::once_flag g_torch_once;

void load_torch_once() {
  std::call_once(g_torch_once, [] { load_plugin(kTorch); });
}

const bool kPluginsLoaded = [] {
  load_plugin(kCuda);
  load_plugin(kMlx);
  const char* be = std::getenv("TMATH_BACKEND");
  if (env_on("TMATH_TORCH") || (be && std::string_view(be).substr(0, 5) == "torch")) {
    load_torch_once();
  } else if (!detail::env_off(kTorch.off_env)) {
    const std::string path = plugin_path(kTorch);
    const bool built = access(path.c_str(), F_OK) == 0;
    register_backend(std::make_shared<UnavailableBackend>(
        kTorch.backend, kTorch.type, built,
        built ? "not loaded: it loads on demand (tmath::load_backend(\"torch\"), "
                "tmath.load_backend(\"torch\"), TMATH_BACKEND=torch or TMATH_TORCH=1)"
              : path + " not found (" + kTorch.missing + ")"));
  } else {
    load_plugin(kTorch);  // registers it as disabled, with the reason
  }
  return true;
}();

}  // namespace

bool load_backend(std::string_view name) {
  if (name == "torch" || name == "torch:cuda") {
    load_torch_once();  // with TMATH_TORCH=0 it registers the disabled entry again
  } else if (name != "cpu" && name != "cuda" && name != "mlx") {
    throw ValueError("[load_backend] unknown backend '" + std::string(name) +
                     "' (cpu, cuda, mlx, torch, torch:cuda)");
  }
  auto b = get_backend(name);
  return b && b->available();
}

namespace detail {
bool env_off(const char* name) {
  const char* e = std::getenv(name);
  if (!e) return false;
  const std::string v(e);
  return v == "0" || v == "off" || v == "OFF" || v == "false" || v == "no";
}
}  // namespace detail

}  // namespace tmath
