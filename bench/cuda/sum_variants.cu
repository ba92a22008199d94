// Full float32 sums of 4096 x 4096 elements (64 MiB read once): ways of laying the
// reads out over the H100, timed against each other and a device-to-device copy in
// one process. bench/cuda/sum_variants.py times torch.sum on the same size for the
// reference. Every variant is deterministic (fixed assignment of elements to
// threads, fixed combine order) and ends with the last block combining the block
// partials in the same kernel, as the engine's tm_row_block does.
//
//   nvcc -O3 -std=c++17 -arch=sm_90 bench/cuda/sum_variants.cu -o sum_variants
//   ./sum_variants [n]
//
// Variants:
//   chunk2    a contiguous chunk per block, two 16-byte loads in flight per thread,
//             1056 blocks of 256 (the engine's layout before this experiment)
//   chunk2_lb the same kernel with __launch_bounds__(256, 8) (at most 32 registers)
//   chunk4    a contiguous chunk per block, four loads in flight
//   stride4   grid-stride: thread t reads vectors t, t + T, t + 2T, ... (T threads in
//             all), four loads in flight; blocks = SMs x 4 or x 8
//   stride8   the same with eight loads in flight
//   cub       cub::DeviceReduce::Sum (not deterministic across GPUs; a reference)
#include <cub/cub.cuh>
#include <string>
#include <vector>

#include "stream_bench.cuh"

using bench_cuda::fill;

namespace {

__device__ __forceinline__ float block_sum(float v) {
  __shared__ float sh[32];
  for (int d = 16; d > 0; d >>= 1) v += __shfl_down_sync(0xffffffffu, v, d);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  if (lane == 0) sh[w] = v;
  __syncthreads();
  const int nw = blockDim.x >> 5;
  v = threadIdx.x < nw ? sh[threadIdx.x] : 0.f;
  if (w == 0)
    for (int d = 16; d > 0; d >>= 1) v += __shfl_down_sync(0xffffffffu, v, d);
  __syncthreads();
  return v;
}

// Writes the block's partial; the last block to finish sums all partials in order.
__device__ __forceinline__ void finish(float acc, float* partial, unsigned* counter,
                                       float* out) {
  acc = block_sum(acc);
  __shared__ bool last;
  if (threadIdx.x == 0) {
    partial[blockIdx.x] = acc;
    __threadfence();
    last = atomicAdd(counter, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  float s = 0.f;
  for (unsigned b = threadIdx.x; b < gridDim.x; b += blockDim.x) s += partial[b];
  s = block_sum(s);
  if (threadIdx.x == 0) {
    *out = s;
    *counter = 0u;
  }
}

__device__ __forceinline__ float hsum(float4 v) { return (v.x + v.y) + (v.z + v.w); }

// Sum of vectors k, k + step, ... below `end`, U loads in flight.
template <int U>
__device__ __forceinline__ float strided_sum(const float4* __restrict__ xv, long long k,
                                             long long end, long long step) {
  float a[U];
#pragma unroll
  for (int u = 0; u < U; ++u) a[u] = 0.f;
  for (; k + (U - 1) * step < end; k += U * step) {
    float4 v[U];
#pragma unroll
    for (int u = 0; u < U; ++u) v[u] = xv[k + u * step];
#pragma unroll
    for (int u = 0; u < U; ++u) a[u] += hsum(v[u]);
  }
  for (; k < end; k += step) a[0] += hsum(xv[k]);
  float s = 0.f;
#pragma unroll
  for (int u = 0; u < U; ++u) s += a[u];
  return s;
}

// The block's contiguous chunk [v0, v1), thread t taking vectors v0 + t, + 256, ...
template <int U>
__device__ __forceinline__ float chunk_body(const float4* __restrict__ xv, long long v0,
                                            long long v1) {
  return strided_sum<U>(xv, v0 + threadIdx.x, v1, blockDim.x);
}

template <int U>
__global__ void __launch_bounds__(256) chunk_sum(const float4* __restrict__ xv, long long nv,
                                                 long long chunk, float* partial,
                                                 unsigned* counter, float* out) {
  const long long v0 = blockIdx.x * chunk;
  const long long v1 = v0 + chunk < nv ? v0 + chunk : nv;
  finish(chunk_body<U>(xv, v0, v1), partial, counter, out);
}

__global__ void __launch_bounds__(256, 8) chunk_sum_lb(const float4* __restrict__ xv, long long nv,
                                                       long long chunk, float* partial,
                                                       unsigned* counter, float* out) {
  const long long v0 = blockIdx.x * chunk;
  const long long v1 = v0 + chunk < nv ? v0 + chunk : nv;
  finish(chunk_body<2>(xv, v0, v1), partial, counter, out);
}

template <int U>
__global__ void __launch_bounds__(256) stride_sum(const float4* __restrict__ xv, long long nv,
                                                  float* partial, unsigned* counter, float* out) {
  const long long T = (long long)gridDim.x * blockDim.x;
  const float s = strided_sum<U>(xv, blockIdx.x * (long long)blockDim.x + threadIdx.x, nv, T);
  finish(s, partial, counter, out);
}

struct Timing {
  double per_call_median_ms;  // events around each call
  double loop_ms;             // 50 calls between two events, per call (best of 7)
};

Timing time_it(const std::function<void()>& fn) {
  for (int i = 0; i < 20; ++i) fn();
  CK(cudaDeviceSynchronize());
  std::vector<double> per;
  for (int i = 0; i < 101; ++i) per.push_back(bench_cuda::loop_ms(fn, 1, 1));
  std::nth_element(per.begin(), per.begin() + 50, per.end());
  return {per[50], bench_cuda::loop_ms(fn, 7)};
}

}  // namespace

int main(int argc, char** argv) {
  const long long n = argc > 1 ? std::atoll(argv[1]) : 4096LL * 4096LL;
  const long long nv = n / 4;
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  const int sms = prop.multiProcessorCount;
  float *x, *y, *partial, *out;
  unsigned* counter;
  CK(cudaMalloc(&x, n * 4));
  CK(cudaMalloc(&y, n * 4));
  CK(cudaMalloc(&partial, 1 << 20));
  CK(cudaMalloc(&out, 64));
  CK(cudaMalloc(&counter, 64));
  CK(cudaMemset(counter, 0, 64));
  fill<<<1024, 256>>>(x, n);
  CK(cudaDeviceSynchronize());
  const double mib = n * 4.0 / (1 << 20);
  std::printf("%s, %d SMs, n = %lld (%.0f MiB)\n", prop.name, sms, n, mib);

  auto report = [&](const char* name, const Timing& t, double bytes) {
    float host = 0.f;
    CK(cudaMemcpy(&host, out, 4, cudaMemcpyDeviceToHost));
    std::printf("%-22s per call %.4f ms (median)  loop %.4f ms  %.0f GB/s  sum %.6g\n", name,
                t.per_call_median_ms, t.loop_ms, bytes / t.loop_ms * 1e-6, host);
  };
  {
    cudaFuncAttributes fa;
    CK(cudaFuncGetAttributes(&fa, chunk_sum<2>));
    std::printf("registers: chunk2 %d", fa.numRegs);
    CK(cudaFuncGetAttributes(&fa, chunk_sum_lb));
    std::printf(", chunk2_lb %d", fa.numRegs);
    CK(cudaFuncGetAttributes(&fa, chunk_sum<4>));
    std::printf(", chunk4 %d", fa.numRegs);
    CK(cudaFuncGetAttributes(&fa, stride_sum<4>));
    std::printf(", stride4 %d", fa.numRegs);
    CK(cudaFuncGetAttributes(&fa, stride_sum<8>));
    std::printf(", stride8 %d\n", fa.numRegs);
    int per_sm = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, chunk_sum<2>, 256, 0));
    std::printf("resident blocks of 256 per SM: chunk2 %d", per_sm);
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, stride_sum<4>, 256, 0));
    std::printf(", stride4 %d\n", per_sm);
  }
  const double bytes = n * 4.0;
  report("d2d copy (r+w)", time_it([&] { CK(cudaMemcpyAsync(y, x, n * 4, cudaMemcpyDeviceToDevice)); }),
         2 * bytes);
  // The engine's layout: 1056 splits of a chunk rounded to 16 elements.
  const long long target_blocks = (long long)sms * 2048 / 256;
  for (long long blocks : {target_blocks, (long long)sms * 4, (long long)sms * 16}) {
    const long long chunk = (nv + blocks - 1) / blocks;
    const unsigned grid = (unsigned)((nv + chunk - 1) / chunk);
    const std::string b = std::to_string(grid);
    report(("chunk2 x" + b).c_str(), time_it([&] {
             chunk_sum<2><<<grid, 256>>>((const float4*)x, nv, chunk, partial, counter, out);
           }), bytes);
    report(("chunk2_lb x" + b).c_str(), time_it([&] {
             chunk_sum_lb<<<grid, 256>>>((const float4*)x, nv, chunk, partial, counter, out);
           }), bytes);
    report(("chunk4 x" + b).c_str(), time_it([&] {
             chunk_sum<4><<<grid, 256>>>((const float4*)x, nv, chunk, partial, counter, out);
           }), bytes);
  }
  for (int per_sm : {2, 4, 8}) {
    const unsigned grid = (unsigned)(sms * per_sm);
    const std::string b = std::to_string(grid);
    report(("stride4 x" + b).c_str(), time_it([&] {
             stride_sum<4><<<grid, 256>>>((const float4*)x, nv, partial, counter, out);
           }), bytes);
    report(("stride8 x" + b).c_str(), time_it([&] {
             stride_sum<8><<<grid, 256>>>((const float4*)x, nv, partial, counter, out);
           }), bytes);
  }
  {
    size_t temp = 0;
    CK(cub::DeviceReduce::Sum(nullptr, temp, x, out, (int)n));
    void* t;
    CK(cudaMalloc(&t, temp));
    report("cub", time_it([&] { CK(cub::DeviceReduce::Sum(t, temp, x, out, (int)n)); }), bytes);
    CK(cudaFree(t));
  }
  return 0;
}
