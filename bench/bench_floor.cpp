// Memory-bandwidth floor of this machine: plain streaming loops over 64 MiB
// float32 arrays on 1 and on all hardware threads. An elementwise op over
// 4096x4096 float32 cannot beat the time of the loop with the same streams.
//
//   build/bench/bench_floor
//
// bytes_per_second counts the bytes read + written (not write-allocate traffic).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

constexpr int64_t kN = int64_t{1} << 24;  // 16M floats = 64 MiB

// Runs body(begin, end) over [0, kN) split across `threads` threads.
template <class F>
void split(int threads, F&& body) {
  std::vector<std::thread> pool;
  const int64_t chunk = (kN + threads - 1) / threads;
  for (int t = 1; t < threads; ++t) {
    pool.emplace_back([&, t] { body(t * chunk, std::min(kN, (t + 1) * chunk)); });
  }
  body(0, std::min(kN, chunk));
  for (auto& th : pool) th.join();
}

struct Arrays {
  std::vector<float> a = std::vector<float>(kN, 1.0f), b = std::vector<float>(kN, 2.0f),
                     c = std::vector<float>(kN, 0.0f);
};

void add(benchmark::State& st) {
  Arrays x;
  const int threads = static_cast<int>(st.range(0));
  for (auto _ : st) {
    split(threads, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) x.c[i] = x.a[i] + x.b[i];
    });
    benchmark::DoNotOptimize(x.c.data());
  }
  st.SetBytesProcessed(st.iterations() * 3 * kN * 4);
}

void scale(benchmark::State& st) {
  Arrays x;
  const int threads = static_cast<int>(st.range(0));
  for (auto _ : st) {
    split(threads, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) x.c[i] = 2.0f * x.a[i];
    });
    benchmark::DoNotOptimize(x.c.data());
  }
  st.SetBytesProcessed(st.iterations() * 2 * kN * 4);
}

void read(benchmark::State& st) {
  Arrays x;
  const int threads = static_cast<int>(st.range(0));
  std::vector<float> partial(threads);
  for (auto _ : st) {
    split(threads, [&](int64_t s, int64_t e) {
      float acc[8] = {};
      int64_t i = s;
      for (; i + 8 <= e; i += 8) {
        for (int k = 0; k < 8; ++k) acc[k] += x.a[i + k];
      }
      for (; i < e; ++i) acc[0] += x.a[i];
      float t = 0;
      for (float v : acc) t += v;
      partial[s / ((kN + threads - 1) / threads)] = t;
    });
    benchmark::DoNotOptimize(partial.data());
  }
  st.SetBytesProcessed(st.iterations() * kN * 4);
}

int hw_threads() {
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

BENCHMARK(add)->Arg(1)->Arg(hw_threads())->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(scale)->Arg(1)->Arg(hw_threads())->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(read)->Arg(1)->Arg(hw_threads())->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
