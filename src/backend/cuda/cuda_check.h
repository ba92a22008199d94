// Status checks for CUDA runtime, driver, cuBLAS and NVRTC calls: every failure
// becomes a tmath exception whose message names the op and the failing call,
// e.g. "[matmul] cublasGemmStridedBatchedEx failed: CUBLAS_STATUS_NOT_SUPPORTED".
#pragma once

#include <cublas_v2.h>
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <nvrtc.h>

#include <string>
#include <string_view>

#include "backend/cuda/cuda_libs.h"
#include "tmath/error.h"

namespace tmath::cuda {

// The call's name: the text of the expression up to its first '('.
inline std::string_view call_name(std::string_view expr) {
  auto p = expr.find('(');
  return p == std::string_view::npos ? expr : expr.substr(0, p);
}

[[noreturn]] void throw_cuda_error(const char* op, std::string_view call, cudaError_t e);
[[noreturn]] void throw_cu_error(const char* op, std::string_view call, CUresult e);
[[noreturn]] void throw_cublas_error(const char* op, std::string_view call, cublasStatus_t e);
[[noreturn]] void throw_nvrtc_error(const char* op, std::string_view call, nvrtcResult e,
                                    const std::string& log);

std::string cuda_error_text(cudaError_t e);
std::string cu_error_text(CUresult e);

}  // namespace tmath::cuda

// Each macro takes the op name (for the message prefix) and the call expression.
#define TM_CUDA(op, expr)                                                          \
  do {                                                                             \
    const cudaError_t tm_e_ = (expr);                                              \
    if (tm_e_ != cudaSuccess)                                                      \
      ::tmath::cuda::throw_cuda_error(op, ::tmath::cuda::call_name(#expr), tm_e_); \
  } while (0)
#define TM_CU(op, expr)                                                          \
  do {                                                                           \
    const CUresult tm_e_ = (expr);                                               \
    if (tm_e_ != CUDA_SUCCESS)                                                   \
      ::tmath::cuda::throw_cu_error(op, ::tmath::cuda::call_name(#expr), tm_e_); \
  } while (0)
#define TM_CUBLAS(op, expr)                                                          \
  do {                                                                               \
    const cublasStatus_t tm_e_ = (expr);                                             \
    if (tm_e_ != CUBLAS_STATUS_SUCCESS)                                              \
      ::tmath::cuda::throw_cublas_error(op, ::tmath::cuda::call_name(#expr), tm_e_); \
  } while (0)
