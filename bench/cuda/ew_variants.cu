// y = relu(x) over 4096 x 4096 float32 (64 MiB read, 64 MiB written): grid shapes
// and loads in flight for a memory-bound elementwise kernel, timed against a
// device-to-device copy in one process (bench/cuda/ew_variants.py times torch.relu).
//
//   nvcc -O3 -std=c++17 -arch=sm_90 bench/cuda/ew_variants.cu -o ew_variants
//   ./ew_variants [n]
//
// Variants (16-byte vectors throughout):
//   gs1 xB    grid-stride, one vector per iteration, B blocks per SM (the engine's
//             tm_v with its cap of 32 blocks per SM)
//   gs2 xB    grid-stride, two vectors in flight per iteration
//   flatK     no loop: block b covers K * 256 consecutive vectors, thread t takes
//             vectors t, t + 256, ... (K loads in flight), grid = n / (4 * 256 * K)
#include <string>

#include "stream_bench.cuh"

using bench_cuda::fill;

namespace {

__device__ __forceinline__ float4 relu4(float4 v) {
  return make_float4(fmaxf(v.x, 0.f), fmaxf(v.y, 0.f), fmaxf(v.z, 0.f), fmaxf(v.w, 0.f));
}

__global__ void __launch_bounds__(256) gs1(const float4* x, float4* y, long long nv) {
  const long long step = (long long)gridDim.x * blockDim.x;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < nv; i += step)
    y[i] = relu4(x[i]);
}

__global__ void __launch_bounds__(256) gs2(const float4* x, float4* y, long long nv) {
  const long long step = (long long)gridDim.x * blockDim.x;
  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  for (; i + step < nv; i += 2 * step) {
    const float4 a = x[i], b = x[i + step];
    y[i] = relu4(a);
    y[i + step] = relu4(b);
  }
  for (; i < nv; i += step) y[i] = relu4(x[i]);
}

template <int K>
__global__ void __launch_bounds__(256) flat(const float4* x, float4* y, long long nv) {
  const long long base = blockIdx.x * (long long)(K * 256) + threadIdx.x;
  float4 v[K];
#pragma unroll
  for (int k = 0; k < K; ++k)
    if (base + k * 256 < nv) v[k] = x[base + k * 256];
#pragma unroll
  for (int k = 0; k < K; ++k)
    if (base + k * 256 < nv) y[base + k * 256] = relu4(v[k]);
}

// 20 warm-up calls, then 50 calls between two events, per call, best of 9 rounds.
double loop_ms(const std::function<void()>& fn) {
  for (int i = 0; i < 20; ++i) fn();
  CK(cudaDeviceSynchronize());
  return bench_cuda::loop_ms(fn, 9);
}

}  // namespace

int main(int argc, char** argv) {
  const long long n = argc > 1 ? std::atoll(argv[1]) : 4096LL * 4096LL;
  const long long nv = n / 4;
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  const int sms = prop.multiProcessorCount;
  float *x, *y;
  CK(cudaMalloc(&x, n * 4));
  CK(cudaMalloc(&y, n * 4));
  fill<<<1024, 256>>>(x, n);
  CK(cudaDeviceSynchronize());
  const double bytes = 2.0 * n * 4;
  auto report = [&](const std::string& name, double ms) {
    std::printf("%-14s %.4f ms  %.0f GB/s\n", name.c_str(), ms, bytes / ms * 1e-6);
  };
  report("d2d copy", loop_ms([&] { CK(cudaMemcpyAsync(y, x, n * 4, cudaMemcpyDeviceToDevice)); }));
  const long long blocks = (nv + 255) / 256;
  for (int per_sm : {8, 16, 32}) {
    const unsigned g = (unsigned)std::min<long long>(blocks, (long long)sms * per_sm);
    report("gs1 x" + std::to_string(per_sm), loop_ms([&] { gs1<<<g, 256>>>((const float4*)x, (float4*)y, nv); }));
    report("gs2 x" + std::to_string(per_sm), loop_ms([&] { gs2<<<g, 256>>>((const float4*)x, (float4*)y, nv); }));
  }
  report("flat1", loop_ms([&] { flat<1><<<(unsigned)((nv + 255) / 256), 256>>>((const float4*)x, (float4*)y, nv); }));
  report("flat2", loop_ms([&] { flat<2><<<(unsigned)((nv + 511) / 512), 256>>>((const float4*)x, (float4*)y, nv); }));
  report("flat4", loop_ms([&] { flat<4><<<(unsigned)((nv + 1023) / 1024), 256>>>((const float4*)x, (float4*)y, nv); }));
  return 0;
}
