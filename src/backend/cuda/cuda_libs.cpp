#include "backend/cuda/cuda_libs.h"

#include <dlfcn.h>

#include <mutex>
#include <string>

#include "tmath/error.h"

// The libraries' sonames and the toolkit's library directory, from the build
// (cmake/cuda.cmake): the soname first, so LD_LIBRARY_PATH and the plugin's run path
// decide as they would for a linked library, then the toolkit's copy by full path.
#ifndef TMATH_CUBLAS_SONAME
#error "TMATH_CUBLAS_SONAME must be defined by the build"
#endif

namespace tmath::cuda {
namespace {

struct LibInfo {
  const char* display;
  const char* soname;
};

constexpr LibInfo kLibs[] = {
    {"cuBLAS", TMATH_CUBLAS_SONAME},
    {"cuBLASLt", TMATH_CUBLASLT_SONAME},
    {"cuSOLVER", TMATH_CUSOLVER_SONAME},
};
constexpr int kLibCount = sizeof(kLibs) / sizeof(kLibs[0]);

struct Opened {
  std::once_flag once;
  void* handle = nullptr;
  std::string error;
};

Opened& opened(CudaLib lib) {
  static Opened libs[kLibCount];
  return libs[static_cast<int>(lib)];
}

void open_lib(CudaLib lib, Opened& o) {
  const LibInfo& info = kLibs[static_cast<int>(lib)];
  o.handle = dlopen(info.soname, RTLD_NOW | RTLD_LOCAL);
  if (o.handle) return;
  const char* first = dlerror();
  std::string why = first ? first : "unknown dlopen error";
  const std::string full = std::string(TMATH_CUDA_LIBDIR) + "/" + info.soname;
  o.handle = dlopen(full.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (o.handle) return;
  const char* second = dlerror();
  o.error = std::string(info.display) + " could not be loaded (" + why +
            (second ? std::string("; ") + second : std::string()) + ")";
}

}  // namespace

void* cuda_lib_symbol(CudaLib lib, const char* name) {
  Opened& o = opened(lib);
  std::call_once(o.once, [&] { open_lib(lib, o); });
  if (!o.handle) throw DeviceError(std::string("[cuda] ") + name + ": " + o.error);
  void* f = dlsym(o.handle, name);
  if (!f) {
    const char* err = dlerror();
    throw DeviceError(std::string("[cuda] ") + name + " is missing from " +
                      kLibs[static_cast<int>(lib)].display + " (" +
                      (err ? err : "no such symbol") + ")");
  }
  return f;
}

bool cuda_lib_loaded(CudaLib lib) {
  const char* soname = kLibs[static_cast<int>(lib)].soname;
  // RTLD_NOLOAD: a handle only if the process already has the library, opened by
  // this table or by anyone else (a framework in the same process).
  void* h = dlopen(soname, RTLD_NOW | RTLD_NOLOAD);
  if (h) dlclose(h);
  return h != nullptr;
}

}  // namespace tmath::cuda
