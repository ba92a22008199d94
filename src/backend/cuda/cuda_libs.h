// cuBLAS, cuBLASLt and cuSOLVER, opened on first use.
//
// The plugin does not link these libraries: loading them costs a process about
// 340 MB of reads from a cold disk and tens of milliseconds of their static
// initialisation, which a program that never multiplies matrices on the GPU should
// not pay. Each entry point the backend calls is declared here as an object of the
// same name in namespace tmath::cuda, so the backend's calls (`cublasLtMatmul(...)`)
// resolve to it; its first call opens the library (dlopen) and looks the symbol up
// (dlsym), later calls go through the cached pointer. The library's absence is a
// DeviceError that names it, raised by the first call that needs it.
//
// Add an entry point here before calling it: the plugin is linked with
// --no-undefined, so a call that bypasses this table fails the build.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cusolverDn.h>

#include <atomic>

namespace tmath::cuda {

enum class CudaLib { cublas, cublasLt, cusolver };

// The address of `name` in `lib`, opening the library first where needed. Throws
// DeviceError when the library or the symbol cannot be found.
void* cuda_lib_symbol(CudaLib lib, const char* name);

// Whether the process has `lib` (opened here or by anyone else): for `tmath info`.
bool cuda_lib_loaded(CudaLib lib);

template <class F>
class LazyCudaFn;

template <class R, class... A>
class LazyCudaFn<R(A...)> {
 public:
  using Ptr = R (*)(A...);
  constexpr LazyCudaFn(CudaLib lib, const char* name) : lib_(lib), name_(name) {}
  R operator()(A... a) const { return get()(a...); }
  Ptr get() const {
    Ptr f = fn_.load(std::memory_order_acquire);
    if (!f) {
      f = reinterpret_cast<Ptr>(cuda_lib_symbol(lib_, name_));
      fn_.store(f, std::memory_order_release);
    }
    return f;
  }

 private:
  CudaLib lib_;
  const char* name_;
  mutable std::atomic<Ptr> fn_{nullptr};
};

// cublas_v2.h maps cublasCreate and others to their _v2 symbols with macros, so those
// entries carry the _v2 name (the macro turns the backend's calls into it).
#define TM_CUDA_LAZY(lib, fn) inline const LazyCudaFn<decltype(::fn)> fn{CudaLib::lib, #fn};
// cuBLAS's C++ overloads (computeType as cudaDataType) make these two ambiguous for
// decltype: the C entry points, with cublasComputeType_t, are named by their types.
using CublasGemmExFn = cublasStatus_t(cublasHandle_t, cublasOperation_t, cublasOperation_t, int,
                                      int, int, const void*, const void*, cudaDataType, int,
                                      const void*, cudaDataType, int, const void*, void*,
                                      cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
using CublasGemmStridedBatchedExFn =
    cublasStatus_t(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                   const void*, const void*, cudaDataType, int, long long, const void*,
                   cudaDataType, int, long long, const void*, void*, cudaDataType, int,
                   long long, int, cublasComputeType_t, cublasGemmAlgo_t);

TM_CUDA_LAZY(cublas, cublasCreate_v2)
TM_CUDA_LAZY(cublas, cublasDestroy_v2)
TM_CUDA_LAZY(cublas, cublasSetStream_v2)
TM_CUDA_LAZY(cublas, cublasSetWorkspace_v2)
TM_CUDA_LAZY(cublas, cublasSetMathMode)
TM_CUDA_LAZY(cublas, cublasGetProperty)
TM_CUDA_LAZY(cublas, cublasGetStatusName)
TM_CUDA_LAZY(cublas, cublasGetStatusString)
inline const LazyCudaFn<CublasGemmExFn> cublasGemmEx{CudaLib::cublas, "cublasGemmEx"};
inline const LazyCudaFn<CublasGemmStridedBatchedExFn> cublasGemmStridedBatchedEx{
    CudaLib::cublas, "cublasGemmStridedBatchedEx"};
TM_CUDA_LAZY(cublas, cublasStrsm_v2)
TM_CUDA_LAZY(cublas, cublasDtrsm_v2)
TM_CUDA_LAZY(cublas, cublasCtrsm_v2)
TM_CUDA_LAZY(cublas, cublasZtrsm_v2)
TM_CUDA_LAZY(cublas, cublasSgetrfBatched)
TM_CUDA_LAZY(cublas, cublasDgetrfBatched)
TM_CUDA_LAZY(cublas, cublasCgetrfBatched)
TM_CUDA_LAZY(cublas, cublasZgetrfBatched)
TM_CUDA_LAZY(cublas, cublasSgetrsBatched)
TM_CUDA_LAZY(cublas, cublasDgetrsBatched)
TM_CUDA_LAZY(cublas, cublasCgetrsBatched)
TM_CUDA_LAZY(cublas, cublasZgetrsBatched)

TM_CUDA_LAZY(cublasLt, cublasLtCreate)
TM_CUDA_LAZY(cublasLt, cublasLtDestroy)
TM_CUDA_LAZY(cublasLt, cublasLtGetVersion)
TM_CUDA_LAZY(cublasLt, cublasLtMatmul)
TM_CUDA_LAZY(cublasLt, cublasLtMatmulAlgoGetHeuristic)
TM_CUDA_LAZY(cublasLt, cublasLtMatmulDescCreate)
TM_CUDA_LAZY(cublasLt, cublasLtMatmulDescDestroy)
TM_CUDA_LAZY(cublasLt, cublasLtMatmulDescSetAttribute)
TM_CUDA_LAZY(cublasLt, cublasLtMatmulPreferenceCreate)
TM_CUDA_LAZY(cublasLt, cublasLtMatmulPreferenceDestroy)
TM_CUDA_LAZY(cublasLt, cublasLtMatmulPreferenceSetAttribute)
TM_CUDA_LAZY(cublasLt, cublasLtMatrixLayoutCreate)
TM_CUDA_LAZY(cublasLt, cublasLtMatrixLayoutDestroy)
TM_CUDA_LAZY(cublasLt, cublasLtMatrixLayoutSetAttribute)

TM_CUDA_LAZY(cusolver, cusolverGetProperty)
TM_CUDA_LAZY(cusolver, cusolverDnCreate)
TM_CUDA_LAZY(cusolver, cusolverDnCreateParams)
TM_CUDA_LAZY(cusolver, cusolverDnSetStream)
TM_CUDA_LAZY(cusolver, cusolverDnCreateGesvdjInfo)
TM_CUDA_LAZY(cusolver, cusolverDnDestroyGesvdjInfo)
TM_CUDA_LAZY(cusolver, cusolverDnXgesvdjSetSortEig)
TM_CUDA_LAZY(cusolver, cusolverDnXgesvdjSetTolerance)
TM_CUDA_LAZY(cusolver, cusolverDnXgeev)
TM_CUDA_LAZY(cusolver, cusolverDnXgeev_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnXgeqrf)
TM_CUDA_LAZY(cusolver, cusolverDnXgeqrf_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnXgesvd)
TM_CUDA_LAZY(cusolver, cusolverDnXgesvd_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnXgesvdp)
TM_CUDA_LAZY(cusolver, cusolverDnXgesvdp_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnXgetrf)
TM_CUDA_LAZY(cusolver, cusolverDnXgetrf_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnXgetrs)
TM_CUDA_LAZY(cusolver, cusolverDnXpotrf)
TM_CUDA_LAZY(cusolver, cusolverDnXpotrf_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnXsyevd)
TM_CUDA_LAZY(cusolver, cusolverDnXsyevd_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnXsyevBatched)
TM_CUDA_LAZY(cusolver, cusolverDnXsyevBatched_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnSgesvdj)
TM_CUDA_LAZY(cusolver, cusolverDnDgesvdj)
TM_CUDA_LAZY(cusolver, cusolverDnCgesvdj)
TM_CUDA_LAZY(cusolver, cusolverDnZgesvdj)
TM_CUDA_LAZY(cusolver, cusolverDnSgesvdj_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnDgesvdj_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnCgesvdj_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnZgesvdj_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnSgesvdjBatched)
TM_CUDA_LAZY(cusolver, cusolverDnDgesvdjBatched)
TM_CUDA_LAZY(cusolver, cusolverDnCgesvdjBatched)
TM_CUDA_LAZY(cusolver, cusolverDnZgesvdjBatched)
TM_CUDA_LAZY(cusolver, cusolverDnSgesvdjBatched_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnDgesvdjBatched_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnCgesvdjBatched_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnZgesvdjBatched_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnSorgqr)
TM_CUDA_LAZY(cusolver, cusolverDnDorgqr)
TM_CUDA_LAZY(cusolver, cusolverDnCungqr)
TM_CUDA_LAZY(cusolver, cusolverDnZungqr)
TM_CUDA_LAZY(cusolver, cusolverDnSorgqr_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnDorgqr_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnCungqr_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnZungqr_bufferSize)
TM_CUDA_LAZY(cusolver, cusolverDnSpotrfBatched)
TM_CUDA_LAZY(cusolver, cusolverDnDpotrfBatched)
TM_CUDA_LAZY(cusolver, cusolverDnCpotrfBatched)
TM_CUDA_LAZY(cusolver, cusolverDnZpotrfBatched)

#undef TM_CUDA_LAZY

}  // namespace tmath::cuda
