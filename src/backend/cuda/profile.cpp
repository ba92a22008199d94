// Profiling hooks of the cuda backend: device-clock timing with CUDA events and
// the native references of `tmath profile`, run on the engine's own input
// arrays — cuBLAS called directly (its own handle with default settings), a
// device-to-device cudaMemcpyAsync (the bandwidth yardstick for elementwise
// ops) and the raw launch of the add kernel (the floor of per-op overhead).
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cuda/codegen.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/params.h"
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
                                                   std::span<const ArrayRef> in,
                                                   MatmulPrecision prec, int reps) {
  const char* name = "native_timing";
  dc.make_current();
  for (const ArrayRef& a : in) {
    if (!a.is_contiguous())
      throw ShapeError("[native_timing] the reference needs contiguous inputs");
  }
  const DType dt = in[0].dtype;
  const size_t nbytes = static_cast<size_t>(in[0].size()) * itemsize(dt);
  if (op == "copy") {
    DeviceBuffer dst(nbytes, name);
    auto fn = [&] {
      TM_CUDA(name, cudaMemcpyAsync(dst.get(), in[0].data, nbytes, cudaMemcpyDeviceToDevice,
                                    dc.stream()));
    };
    for (int i = 0; i < 3; ++i) fn();
    return Backend::NativeTiming{"cudaMemcpy d2d", time_ms(dc, fn, reps)};
  }
  if (op == "launch" && in.size() == 2 && in[1].dtype == dt && in[1].size() == in[0].size()) {
    // The engine's own contiguous add kernel launched directly: the per-op floor.
    const Program& prog = dc.program(
        gen::key(gen::Family::Binary, static_cast<uint32_t>(OpCode::Add),
                 static_cast<uint32_t>(dt), static_cast<uint32_t>(dt)),
        [&] { return gen::binary(OpCode::Add, dt, dt); }, name);
    DeviceBuffer out(nbytes, name);
    EwcParams p{};
    p.n = in[0].size();
    p.ptr[0] = reinterpret_cast<unsigned long long>(out.get());
    p.ptr[1] = reinterpret_cast<unsigned long long>(in[0].data);
    p.ptr[2] = reinterpret_cast<unsigned long long>(in[1].data);
    const unsigned grid = grid_for(dc, p.n);
    auto fn = [&] { launch(name, prog[0], grid, 1, kThreads, 0, dc.stream(), p); };
    for (int i = 0; i < 3; ++i) fn();
    return Backend::NativeTiming{"cuLaunchKernel (add)", time_ms(dc, fn, reps)};
  }
  if (op != "matmul" || in.size() != 2 || in[0].ndim() != 2 || in[1].ndim() != 2 ||
      in[0].shape[0] != in[0].shape[1] || in[1].shape[0] != in[0].shape[0] ||
      in[1].shape[1] != in[0].shape[0] || in[1].dtype != dt) {
    return std::nullopt;
  }
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
  const int n = static_cast<int>(in[0].shape[0]);
  DeviceBuffer c(nbytes, name);
  // A handle with cuBLAS's default settings, as a user calling cuBLAS would have.
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
  // Row-major C = A B as column-major C^T = B^T A^T.
  auto fn = [&] {
    TM_CUBLAS(name, cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, alpha, in[1].data, data,
                                 n, in[0].data, data, n, beta, c.get(), data, n, compute,
                                 CUBLAS_GEMM_DEFAULT));
  };
  for (int i = 0; i < 3; ++i) fn();
  return Backend::NativeTiming{"cublasGemmEx", time_ms(dc, fn, reps)};
}

}  // namespace tmath::cuda
