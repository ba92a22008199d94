// Where a fresh process's first NVRTC compile spends its time: the first API call
// (library load), the first and second compile of a one-line kernel, and the
// same for a chain10-sized elementwise kernel, each with the options the engine
// uses. Built and run by scripts/device_bench.sh on the GPU machine (not part of
// the CMake bench targets: it links NVRTC alone).
//
//   nvrtc_startup [arch]    (default compute_90 for PTX, sm_90 for SASS)
#include <nvrtc.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace {
double now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double compile_ms(const std::string& src, const char* arch, size_t* out_bytes) {
  const double t0 = now_ms();
  nvrtcProgram p = nullptr;
  nvrtcCreateProgram(&p, src.c_str(), "k.cu", 0, nullptr, nullptr);
  std::vector<const char*> opts = {arch, "-std=c++17", "--fmad=false", "--minimal"};
  const nvrtcResult r = nvrtcCompileProgram(p, static_cast<int>(opts.size()), opts.data());
  size_t n = 0;
  if (r == NVRTC_SUCCESS) nvrtcGetCUBINSize(p, &n);
  nvrtcDestroyProgram(&p);
  *out_bytes = n;
  return r == NVRTC_SUCCESS ? now_ms() - t0 : -1.0;
}
}  // namespace

int main(int argc, char** argv) {
  const std::string arch = std::string("--gpu-architecture=") + (argc > 1 ? argv[1] : "sm_90");
  const double t0 = now_ms();
  int ma = 0, mi = 0;
  nvrtcVersion(&ma, &mi);
  const double first_call = now_ms() - t0;
  const std::string tiny = "extern \"C\" __global__ void k(float* x) { x[threadIdx.x] += 1.0f; }";
  std::string chain =
      "extern \"C\" __global__ void k(const float* __restrict__ x, float* __restrict__ y, long n) {\n"
      "  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * "
      "blockDim.x) {\n    float v = x[i];\n";
  for (int s = 0; s < 5; ++s) chain += "    v = tanhf(v * 1.01f + 0.5f);\n";
  chain += "    y[i] = v;\n  }\n}\n";
  size_t b1 = 0, b2 = 0, b3 = 0, b4 = 0;
  const double c1 = compile_ms(tiny, arch.c_str(), &b1);
  const double c2 = compile_ms(tiny, arch.c_str(), &b2);
  const double c3 = compile_ms(chain, arch.c_str(), &b3);
  const double c4 = compile_ms(chain, arch.c_str(), &b4);
  std::printf("NVRTC %d.%d, %s\n  first API call %.2f ms\n  tiny kernel: first compile %.2f ms, "
              "second %.2f ms (%zu B)\n  chain10 kernel: %.2f ms, again %.2f ms (%zu B)\n",
              ma, mi, arch.c_str(), first_call, c1, c2, b1, c3, c4, b3);
  return 0;
}
