// The host cost of a kernel launch on this machine, without the engine: an empty
// kernel compiled with NVRTC and launched back to back with cuLaunchKernel from one
// thread, one synchronisation at the end. Parameter blocks of 48 bytes (the
// engine's contiguous elementwise parameters) and 424 bytes (its strided ones), and
// the same launches recorded into a CUDA graph and replayed. This is the floor under
// the engine's eager per-op time (bench/host_overhead.cpp). Built and run on the GPU
// machine (links the driver and NVRTC only):
//
//   g++ -O2 -std=c++20 bench/cuda/launch_floor.cpp -I/usr/local/cuda/include
//       -L/usr/local/cuda/lib64 -lnvrtc -lcuda -o launch_floor
#include <cuda.h>
#include <nvrtc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace {
double now_us() {
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

#define CK(x)                                                              \
  do {                                                                     \
    CUresult r_ = (x);                                                     \
    if (r_ != CUDA_SUCCESS) {                                              \
      const char* s_ = nullptr;                                            \
      cuGetErrorString(r_, &s_);                                           \
      std::fprintf(stderr, "%s failed: %s\n", #x, s_ ? s_ : "?");          \
      std::exit(1);                                                        \
    }                                                                      \
  } while (0)

const char* kSrc = R"(
struct Small { long long n; unsigned long long ptr[4]; long long mask; };
struct Large { long long v[53]; };
extern "C" __global__ void k_small(Small p) { if (p.n < 0) ((float*)p.ptr[0])[0] = 1.0f; }
extern "C" __global__ void k_large(Large p) { if (p.v[0] < 0) ((float*)p.v[1])[0] = 1.0f; }
)";

struct Small {
  long long n;
  unsigned long long ptr[4];
  long long mask;
};
struct Large {
  long long v[53];
};

template <class P>
void time_launches(const char* name, CUfunction f, CUstream s, P p, int reps) {
  void* args[] = {&p};
  for (int i = 0; i < 200; ++i) CK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, s, args, nullptr));
  CK(cuStreamSynchronize(s));
  double best_host = 1e300, best_total = 1e300;
  for (int round = 0; round < 5; ++round) {
    const double t0 = now_us();
    for (int i = 0; i < reps; ++i) CK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, s, args, nullptr));
    const double t1 = now_us();
    CK(cuStreamSynchronize(s));
    const double t2 = now_us();
    best_host = std::min(best_host, (t1 - t0) / reps);
    best_total = std::min(best_total, (t2 - t0) / reps);
  }
  std::printf("%-34s host %6.2f us/launch   total %6.2f us/launch\n", name, best_host,
              best_total);
}

template <class P>
void time_graph(const char* name, CUfunction f, CUstream s, P p, int per_graph, int reps) {
  void* args[] = {&p};
  CUgraph g = nullptr;
  CK(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
  for (int i = 0; i < per_graph; ++i)
    CK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, s, args, nullptr));
  CK(cuStreamEndCapture(s, &g));
  CUgraphExec ge = nullptr;
  CK(cuGraphInstantiate(&ge, g, 0));
  for (int i = 0; i < 20; ++i) CK(cuGraphLaunch(ge, s));
  CK(cuStreamSynchronize(s));
  double best_host = 1e300, best_total = 1e300;
  for (int round = 0; round < 5; ++round) {
    const double t0 = now_us();
    for (int i = 0; i < reps; ++i) CK(cuGraphLaunch(ge, s));
    const double t1 = now_us();
    CK(cuStreamSynchronize(s));
    const double t2 = now_us();
    best_host = std::min(best_host, (t1 - t0) / reps / per_graph);
    best_total = std::min(best_total, (t2 - t0) / reps / per_graph);
  }
  std::printf("%-34s host %6.2f us/kernel   total %6.2f us/kernel\n", name, best_host,
              best_total);
  cuGraphExecDestroy(ge);
  cuGraphDestroy(g);
}
}  // namespace

int main() {
  CK(cuInit(0));
  CUdevice dev;
  CK(cuDeviceGet(&dev, 0));
  CUcontext ctx;
  CK(cuDevicePrimaryCtxRetain(&ctx, dev));
  CK(cuCtxSetCurrent(ctx));
  int major = 0, minor = 0;
  CK(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
  CK(cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
  const std::string arch = "--gpu-architecture=sm_" + std::to_string(major * 10 + minor);
  nvrtcProgram prog;
  nvrtcCreateProgram(&prog, kSrc, "k.cu", 0, nullptr, nullptr);
  const char* opts[] = {arch.c_str()};
  if (nvrtcCompileProgram(prog, 1, opts) != NVRTC_SUCCESS) {
    std::fprintf(stderr, "nvrtc failed\n");
    return 1;
  }
  size_t n = 0;
  nvrtcGetCUBINSize(prog, &n);
  std::vector<char> cubin(n);
  nvrtcGetCUBIN(prog, cubin.data());
  nvrtcDestroyProgram(&prog);
  CUmodule mod;
  CK(cuModuleLoadData(&mod, cubin.data()));
  CUfunction fs, fl;
  CK(cuModuleGetFunction(&fs, mod, "k_small"));
  CK(cuModuleGetFunction(&fl, mod, "k_large"));
  CUstream s;
  CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  Small ps{};
  Large pl{};
  ps.n = 8;
  pl.v[0] = 8;
  const int reps = 20000;
  time_launches("cuLaunchKernel, 48-byte params", fs, s, ps, reps);
  time_launches("cuLaunchKernel, 424-byte params", fl, s, pl, reps);
  time_graph("graph of 100 launches, 48 B", fs, s, ps, 100, reps / 100);
  std::printf("cuLaunchKernel floor on device %d (sm_%d%d)\n", 0, major, minor);
  return 0;
}
