// Shared pieces of the standalone CUDA streaming benches (sum_variants.cu,
// ew_variants.cu): error check, a deterministic fill, and the timing loop.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>

#define CK(x)                                                                       \
  do {                                                                              \
    cudaError_t e_ = (x);                                                           \
    if (e_ != cudaSuccess) {                                                        \
      std::fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (0)

namespace bench_cuda {

__global__ void fill(float* x, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x)
    x[i] = (float)((i * 2654435761ULL) % 1000ULL) * 1e-3f - 0.5f;
}

// `calls` back-to-back calls between two events, per call, best of `rounds`.
inline double loop_ms(const std::function<void()>& fn, int rounds, int calls = 50) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  double best = 1e30;
  for (int r = 0; r < rounds; ++r) {
    CK(cudaEventRecord(a));
    for (int i = 0; i < calls; ++i) fn();
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    float ms;
    CK(cudaEventElapsedTime(&ms, a, b));
    best = std::min(best, static_cast<double>(ms) / calls);
  }
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  return best;
}

}  // namespace bench_cuda
