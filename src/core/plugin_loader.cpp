// Loads optional backend plugins at start-up. libtmath never links CUDA: it
// looks for libtmath_cuda.so next to itself and dlopens it; the plugin's
// tmath_cuda_register() adds the real backend. When the plugin is absent or
// cannot load (no driver, missing libraries) a "cuda" entry that reports
// itself unavailable, with the reason, is registered instead, so `tmath info`
// can say why and one binary runs with and without CUDA. Nothing here throws.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

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

bool env_off(const char* name) {
  const char* e = std::getenv(name);
  if (!e) return false;
  std::string v(e);
  return v == "0" || v == "off" || v == "OFF" || v == "false" || v == "no";
}

void register_unavailable(bool built, std::string reason) {
  register_backend(
      std::make_shared<UnavailableBackend>("cuda", DeviceType::CUDA, built, std::move(reason)));
}

void load_cuda_plugin() {
  try {
    if (env_off("TMATH_CUDA")) {
      register_unavailable(true,
                           "disabled by TMATH_CUDA=" + std::string(std::getenv("TMATH_CUDA")));
      return;
    }
    std::string path;
    if (const char* p = std::getenv("TMATH_CUDA_PLUGIN"); p && *p) {
      path = p;
    } else {
      path = own_directory() + "/libtmath_cuda.so";
    }
    if (access(path.c_str(), F_OK) != 0) {
      register_unavailable(false, path + " not found (built without the CUDA toolkit?)");
      return;
    }
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* err = dlerror();
      std::string why = err ? err : "unknown dlopen error";
      if (why.find("libcuda.so") != std::string::npos) why += " (no NVIDIA driver installed?)";
      register_unavailable(true, "cannot load " + path + ": " + why);
      return;
    }
    using RegisterFn = void (*)();
    auto fn = reinterpret_cast<RegisterFn>(dlsym(h, "tmath_cuda_register"));
    if (!fn) {
      register_unavailable(true, path + " has no tmath_cuda_register()");
      return;
    }
    fn();
  } catch (const std::exception& e) {
    try {
      register_unavailable(true, e.what());
    } catch (...) {
    }
  } catch (...) {
  }
}

const bool kPluginsLoaded = [] {
  load_cuda_plugin();
  return true;
}();

}  // namespace
}  // namespace tmath
