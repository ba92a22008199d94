// Profiling hooks of the cuda backend: device-clock timing with CUDA events and
// the native references of `tmath profile` — cuBLAS called directly (its own
// handle with default settings, buffers from cudaMalloc) and a device-to-device
// cudaMemcpyAsync, the bandwidth yardstick for elementwise ops.
#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/kernels.h"
#include "tmath/error.h"

namespace tmath::cuda {
namespace {

// Owns a cudaMalloc'd buffer (freed with the device synchronised).
class DeviceBuffer {
 public:
  DeviceBuffer(size_t n, const char* op) { TM_CUDA(op, cudaMalloc(&p_, std::max<size_t>(n, 1))); }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return p_; }

 private:
  void* p_ = nullptr;
};

class Events {
 public:
  explicit Events(const char* op) {
    TM_CUDA(op, cudaEventCreate(&e0));
    if (cudaEventCreate(&e1) != cudaSuccess) {
      cudaEventDestroy(e0);
      throw DeviceError(std::string("[") + op + "] cudaEventCreate failed");
    }
  }
  ~Events() {
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
  }
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
};

// Random values in [-1, 1) in the dtype's bytes (non-zero data: a GEMM on zeros runs
// faster than on real data).
std::vector<char> random_bytes(DType dt, int64_t count) {
  std::vector<char> out(static_cast<size_t>(count) * itemsize(dt));
  std::mt19937 gen(42);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t i = 0; i < count; ++i) {
    const float v = u(gen);
    char* dst = out.data() + static_cast<size_t>(i) * itemsize(dt);
    switch (dt) {
      case DType::Float16: {
        const Half h(v);
        std::memcpy(dst, &h, sizeof h);
        break;
      }
      case DType::BFloat16: {
        const BFloat16 b(v);
        std::memcpy(dst, &b, sizeof b);
        break;
      }
      case DType::Float64: {
        const double d = v;
        std::memcpy(dst, &d, sizeof d);
        break;
      }
      default:
        std::memcpy(dst, &v, sizeof v);
    }
  }
  return out;
}

}  // namespace

double time_ms(DeviceContext& dc, const std::function<void()>& fn, int reps) {
  dc.make_current();
  Events ev("time_ms");
  dc.synchronize("time_ms");
  TM_CUDA("time_ms", cudaEventRecord(ev.e0, dc.stream()));
  for (int i = 0; i < reps; ++i) fn();
  TM_CUDA("time_ms", cudaEventRecord(ev.e1, dc.stream()));
  TM_CUDA("time_ms", cudaEventSynchronize(ev.e1));
  float ms = 0.0f;
  TM_CUDA("time_ms", cudaEventElapsedTime(&ms, ev.e0, ev.e1));
  return static_cast<double>(ms) / std::max(reps, 1);
}

std::optional<Backend::NativeTiming> native_timing(DeviceContext& dc, std::string_view op,
                                                   const Shape& shape, DType dt,
                                                   MatmulPrecision prec, int reps) {
  const char* name = "native_timing";
  dc.make_current();
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  const size_t nbytes = static_cast<size_t>(count) * itemsize(dt);
  if (op == "copy") {
    DeviceBuffer src(nbytes, name), dst(nbytes, name);
    TM_CUDA(name, cudaMemsetAsync(src.get(), 1, nbytes, dc.stream()));
    auto fn = [&] {
      TM_CUDA(name, cudaMemcpyAsync(dst.get(), src.get(), nbytes, cudaMemcpyDeviceToDevice,
                                    dc.stream()));
    };
    for (int i = 0; i < 3; ++i) fn();
    return Backend::NativeTiming{"cudaMemcpy d2d", time_ms(dc, fn, reps)};
  }
  if (op != "matmul" || shape.size() != 2 || shape[0] != shape[1]) return std::nullopt;
  cudaDataType_t data;
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  switch (dt) {
    case DType::Float32:
      data = CUDA_R_32F;
      if (prec == MatmulPrecision::High) compute = CUBLAS_COMPUTE_32F_FAST_TF32;
      if (prec == MatmulPrecision::Medium) compute = CUBLAS_COMPUTE_32F_FAST_16BF;
      break;
    case DType::Float64:
      data = CUDA_R_64F;
      compute = CUBLAS_COMPUTE_64F;
      break;
    case DType::Float16:
      data = CUDA_R_16F;
      break;
    case DType::BFloat16:
      data = CUDA_R_16BF;
      break;
    default:
      return std::nullopt;
  }
  const int n = static_cast<int>(shape[0]);
  const std::vector<char> host = random_bytes(dt, count);
  DeviceBuffer a(nbytes, name), b(nbytes, name), c(nbytes, name);
  TM_CUDA(name, cudaMemcpy(a.get(), host.data(), nbytes, cudaMemcpyHostToDevice));
  TM_CUDA(name, cudaMemcpy(b.get(), host.data(), nbytes, cudaMemcpyHostToDevice));
  cublasHandle_t h = nullptr;
  TM_CUBLAS(name, cublasCreate(&h));
  struct HandleGuard {
    cublasHandle_t h;
    ~HandleGuard() { cublasDestroy(h); }
  } guard{h};
  TM_CUBLAS(name, cublasSetStream(h, dc.stream()));
  const float one_f = 1.0f, zero_f = 0.0f;
  const double one_d = 1.0, zero_d = 0.0;
  const void* alpha = dt == DType::Float64 ? static_cast<const void*>(&one_d) : &one_f;
  const void* beta = dt == DType::Float64 ? static_cast<const void*>(&zero_d) : &zero_f;
  auto fn = [&] {
    TM_CUBLAS(name, cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, alpha, b.get(), data, n,
                                 a.get(), data, n, beta, c.get(), data, n, compute,
                                 CUBLAS_GEMM_DEFAULT));
  };
  for (int i = 0; i < 3; ++i) fn();
  const double ms = time_ms(dc, fn, reps);
  return Backend::NativeTiming{"cublasGemmEx", ms};
}

}  // namespace tmath::cuda
