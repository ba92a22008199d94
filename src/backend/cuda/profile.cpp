// Profiling hooks of the cuda backend: device-clock timing with CUDA events and
// the native references of `tmath profile`, run on the engine's own input
// arrays — cuBLAS called directly (its own handle with default settings), a
// device-to-device cudaMemcpyAsync (the bandwidth yardstick for elementwise
// ops) and the raw launch of the add kernel (the floor of per-op overhead).
#include <algorithm>
#include <cstring>
#include <memory>
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

std::optional<Backend::NativeReference> native_reference(DeviceContext& dc, std::string_view op,
                                                         std::span<const ArrayRef> in,
                                                         MatmulPrecision prec) {
  const char* name = "native_reference";
  dc.make_current();
  for (const ArrayRef& a : in) {
    if (!a.is_contiguous())
      throw ShapeError("[native_reference] the reference needs contiguous inputs");
  }
  const DType dt = in[0].dtype;
  const size_t nbytes = static_cast<size_t>(in[0].size()) * itemsize(dt);
  cudaStream_t stream = dc.stream();
  if (op == "copy") {
    auto dst = std::make_shared<DeviceBuffer>(nbytes, name);
    void* src = in[0].data;
    return Backend::NativeReference{
        "cudaMemcpy d2d", [dst, src, nbytes, stream] {
          TM_CUDA("native_reference",
                  cudaMemcpyAsync(dst->get(), src, nbytes, cudaMemcpyDeviceToDevice, stream));
        }};
  }
  if (op == "launch" && in.size() == 2 && in[1].dtype == dt && in[1].size() == in[0].size()) {
    // The engine's own contiguous add kernel launched directly: the per-op floor.
    const Program& prog = dc.program(
        gen::key(gen::Family::Binary, static_cast<uint32_t>(OpCode::Add), static_cast<uint32_t>(dt),
                 static_cast<uint32_t>(dt)),
        [&] { return gen::binary(OpCode::Add, dt, dt); }, name);
    auto out = std::make_shared<DeviceBuffer>(nbytes, name);
    EwcParams p{};
    p.n = in[0].size();
    p.ptr[0] = reinterpret_cast<unsigned long long>(out->get());
    p.ptr[1] = reinterpret_cast<unsigned long long>(in[0].data);
    p.ptr[2] = reinterpret_cast<unsigned long long>(in[1].data);
    const unsigned grid = grid_for(dc, p.n);
    CUfunction f = prog[0];
    return Backend::NativeReference{"cuLaunchKernel (add)", [out, p, grid, f, stream] {
                                      launch("native_reference", f, grid, 1, kThreads, 0, stream,
                                             p);
                                    }};
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
  // A handle with cuBLAS's default settings, as a user calling cuBLAS would have.
  struct Gemm {
    cublasHandle_t h = nullptr;
    DeviceBuffer c;
    Gemm(size_t nbytes, const char* op) : c(nbytes, op) {}
    ~Gemm() {
      if (h) cublasDestroy(h);
    }
  };
  auto g = std::make_shared<Gemm>(nbytes, name);
  TM_CUBLAS(name, cublasCreate(&g->h));
  TM_CUBLAS(name, cublasSetStream(g->h, stream));
  const int n = static_cast<int>(in[0].shape[0]);
  const void* a = in[0].data;
  const void* b = in[1].data;
  const bool f64 = dt == DType::Float64;
  // Row-major C = A B as column-major C^T = B^T A^T.
  return Backend::NativeReference{
      "cublasGemmEx", [g, a, b, n, data, compute, f64] {
        const float one_f = 1.0f, zero_f = 0.0f;
        const double one_d = 1.0, zero_d = 0.0;
        const void* alpha = f64 ? static_cast<const void*>(&one_d) : &one_f;
        const void* beta = f64 ? static_cast<const void*>(&zero_d) : &zero_f;
        TM_CUBLAS("native_reference",
                  cublasGemmEx(g->h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, alpha, b, data, n, a, data,
                               n, beta, g->c.get(), data, n, compute, CUBLAS_GEMM_DEFAULT));
      }};
}

}  // namespace tmath::cuda
