// Start-up cost of fusion and the per-call cost of a compiled chain.
//
//   build/bench/jit_startup [cpu|cuda] [n]
//
// Prints, for chain10 (x -> tanh(x * 1.01 + 0.5), five times) on an n x n float32
// tensor: the wall time from the first call to its result (the fused program is
// generated and compiled, or loaded from the disk cache, inside it), the second
// call's time, the JIT statistics, and the cost per call of a compile()d chain10
// on 64-element tensors (10000 calls queued, one synchronisation), and the first and
// second call of softmax and layer_norm over the rows (their kernels are compiled
// on first use too on CUDA). Run it twice
// with the same TMATH_CACHE_DIR to see a cold and a warm disk cache.
#include <cstdio>
#include <cstring>
#include <string>

#include "standalone.h"
#include "tmath/tmath.h"

using namespace tmath;
using bench::now_ms;

namespace {
Tensor chain10(Tensor x) {
  for (int i = 0; i < 5; ++i) x = tanh(x * 1.01 + 0.5);
  return x;
}
}  // namespace

int main(int argc, char** argv) {
  const int64_t n = argc > 2 ? std::stoll(argv[2]) : 4096;
  const bench::Target target = bench::target_from_args(argc, argv);
  if (!target.be) return 0;
  const std::string& dev_name = target.name;
  const Device dev = target.dev;
  Backend* be = target.be.get();
  // Device start-up and the input, outside the timed region.
  Tensor x = (random::normal(random::key(1), {n, n}) * 0.5).to(dev).eval();
  be->synchronize(dev);
  reset_jit_stats();
  const double t0 = now_ms();
  Tensor y = chain10(x).eval();
  be->synchronize(dev);
  const double first = now_ms() - t0;
  const JitStats s = jit_stats();
  const double t1 = now_ms();
  Tensor y2 = chain10(x).eval();
  be->synchronize(dev);
  const double second = now_ms() - t1;
  std::printf("chain10 %lldx%lld float32 on %s, cache dir %s\n", static_cast<long long>(n),
              static_cast<long long>(n), dev_name.c_str(), kernel_cache_dir().c_str());
  std::printf("  first call to result: %.2f ms (compile %.2f ms; kernel cache: %llu misses, "
              "%llu disk hits, %llu rejected; %llu fused kernels)\n",
              first, s.compile_ms, static_cast<unsigned long long>(s.cache_misses),
              static_cast<unsigned long long>(s.cache_disk_hits),
              static_cast<unsigned long long>(s.cache_rejected),
              static_cast<unsigned long long>(s.fused_kernels));
  std::printf("  second call: %.3f ms\n", second);
  for (const char* op : {"softmax", "layer_norm"}) {
    auto run = [&] {
      const double ts = now_ms();
      Tensor r = std::strcmp(op, "softmax") == 0 ? softmax(x, -1) : layer_norm(x);
      r.eval();
      be->synchronize(dev);
      return now_ms() - ts;
    };
    const double a = run(), b = run();
    std::printf("  %s first call: %.2f ms, second: %.3f ms\n", op, a, b);
  }

  // Compiled chain10 on 64 elements: per-call cost from C++.
  Tensor small = (random::normal(random::key(2), {64}) * 0.5).to(dev).eval();
  const CompiledFunction f =
      compile([](const std::vector<Tensor>& a) { return std::vector<Tensor>{chain10(a[0])}; });
  for (int i = 0; i < 100; ++i) f({small});
  be->synchronize(dev);
  const int calls = 10000;
  const double t2 = now_ms();
  for (int i = 0; i < calls; ++i) f({small});
  be->synchronize(dev);
  const double per_call_us = (now_ms() - t2) * 1e3 / calls;
  // The same chain without compile (traced by the lazy graph each call, fused at eval).
  const double t3 = now_ms();
  for (int i = 0; i < calls; ++i) chain10(small).eval();
  be->synchronize(dev);
  const double lazy_us = (now_ms() - t3) * 1e3 / calls;
  std::printf("  compiled chain10 on 64 elements: %.2f us per call (lazy, no compile: %.2f us)\n",
              per_call_us, lazy_us);
  return 0;
}
