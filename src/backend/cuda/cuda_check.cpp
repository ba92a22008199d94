#include "backend/cuda/cuda_check.h"

namespace tmath::cuda {

std::string cuda_error_text(cudaError_t e) {
  const char* name = cudaGetErrorName(e);
  const char* desc = cudaGetErrorString(e);
  return std::string(desc ? desc : "unknown error") + " (" + (name ? name : "?") + ")";
}

std::string cu_error_text(CUresult e) {
  const char* name = nullptr;
  const char* desc = nullptr;
  if (cuGetErrorName(e, &name) != CUDA_SUCCESS) name = nullptr;
  if (cuGetErrorString(e, &desc) != CUDA_SUCCESS) desc = nullptr;
  if (!name) {  // a stub or broken driver cannot name its errors: name the usual ones here
    switch (e) {
      case CUDA_ERROR_STUB_LIBRARY:
        name = "CUDA_ERROR_STUB_LIBRARY";
        desc = "the CUDA driver library is the toolkit's stub, not a real driver";
        break;
      case CUDA_ERROR_NO_DEVICE:
        name = "CUDA_ERROR_NO_DEVICE";
        desc = "no CUDA-capable device is detected";
        break;
      default:
        break;
    }
  }
  return std::string(desc ? desc : "unknown error") + " (" +
         (name ? name : "CUresult " + std::to_string(static_cast<int>(e))) + ")";
}

void throw_cuda_error(const char* op, std::string_view call, cudaError_t e) {
  std::string msg =
      "[" + std::string(op) + "] " + std::string(call) + " failed: " + cuda_error_text(e);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // reset the last-error state so later calls do not report it
    throw OutOfMemoryError(msg);
  }
  if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || e == cudaErrorInvalidDevice)
    throw DeviceError(msg);
  throw Error(msg);
}

void throw_cu_error(const char* op, std::string_view call, CUresult e) {
  std::string msg =
      "[" + std::string(op) + "] " + std::string(call) + " failed: " + cu_error_text(e);
  if (e == CUDA_ERROR_OUT_OF_MEMORY) throw OutOfMemoryError(msg);
  if (e == CUDA_ERROR_NO_DEVICE || e == CUDA_ERROR_INVALID_DEVICE) throw DeviceError(msg);
  throw Error(msg);
}

void throw_cublas_error(const char* op, std::string_view call, cublasStatus_t e) {
  std::string msg = "[" + std::string(op) + "] " + std::string(call) +
                    " failed: " + cublasGetStatusString(e) + " (" + cublasGetStatusName(e) + ")";
  if (e == CUBLAS_STATUS_ALLOC_FAILED) throw OutOfMemoryError(msg);
  if (e == CUBLAS_STATUS_NOT_SUPPORTED) throw UnsupportedError(msg);
  throw Error(msg);
}

}  // namespace tmath::cuda
