// Microbenchmarks of the profile's op table: the engine next to its native
// reference (OpenBLAS called directly, plain single-threaded loops).
//
//   build/bench/bench_ops --benchmark_filter=tanh
//
// Names: <op>/<engine|reference>/<dtype>/<n>; wall time (the engine is multithreaded).
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>
#include <vector>

#include "../src/cli/reference.h"
#include "tmath/ops.h"
#include "tmath/random.h"
#include "tmath/transforms.h"

namespace {

using tmath::DType;
using tmath::Tensor;

Tensor randn(uint64_t seed, const tmath::Shape& shape, DType dt) {
  Tensor x = tmath::random::normal(tmath::random::key(seed), shape, dt);
  x.eval();
  return x;
}

void matmul_engine(benchmark::State& st, DType dt, int64_t n) {
  const Tensor a = randn(1, {n, n}, dt), b = randn(2, {n, n}, dt);
  for (auto _ : st) {
    Tensor y = tmath::matmul(a, b);
    y.eval();
  }
  st.counters["FLOP/s"] =
      benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate);
}

template <class T>
void matmul_reference(benchmark::State& st, int64_t n) {
  const DType dt = tmath::dtype_v<T>;
  const auto a = randn(1, {n, n}, dt).to_vector<T>(), b = randn(2, {n, n}, dt).to_vector<T>();
  std::vector<T> c(n * n);
  for (auto _ : st) {
    if constexpr (std::is_same_v<T, float>) {
      tmath::reference::sgemm(a.data(), b.data(), c.data(), static_cast<int>(n));
    } else {
      tmath::reference::dgemm(a.data(), b.data(), c.data(), static_cast<int>(n));
    }
    benchmark::DoNotOptimize(c.data());
  }
  st.counters["FLOP/s"] =
      benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate);
}

struct LoopOp {
  const char* name;
  Tensor (*engine)(const Tensor& a, const Tensor& b);
  tmath::reference::LoopFn loop;
  int streams;  // arrays of n*n floats read + written, for the bytes/s counter
};
const LoopOp kOps[] = {
    {"add", [](const Tensor& a, const Tensor& b) { return tmath::add(a, b); },
     tmath::reference::add, 3},
    {"relu", [](const Tensor& a, const Tensor&) { return tmath::relu(a); }, tmath::reference::relu,
     2},
    {"gelu", [](const Tensor& a, const Tensor&) { return tmath::gelu(a); }, tmath::reference::gelu,
     2},
    {"tanh", [](const Tensor& a, const Tensor&) { return tmath::tanh(a); }, tmath::reference::tanh,
     2},
    {"exp", [](const Tensor& a, const Tensor&) { return tmath::exp(a); }, tmath::reference::exp, 2},
    {"softmax", [](const Tensor& a, const Tensor&) { return tmath::softmax(a); },
     tmath::reference::softmax, 2},
    {"layer_norm", [](const Tensor& a, const Tensor&) { return tmath::layer_norm(a); },
     tmath::reference::layer_norm, 2},
    {"sum", [](const Tensor& a, const Tensor&) { return tmath::sum(a); }, tmath::reference::sum, 1},
};

void loop_engine(benchmark::State& st, const LoopOp& op, int64_t n) {
  const Tensor a = randn(1, {n, n}, tmath::float32), b = randn(2, {n, n}, tmath::float32);
  for (auto _ : st) {
    Tensor y = op.engine(a, b);
    y.eval();
  }
  st.SetBytesProcessed(st.iterations() * op.streams * n * n * 4);
}

void loop_reference(benchmark::State& st, const LoopOp& op, int64_t n) {
  const auto a = randn(1, {n, n}, tmath::float32).to_vector<float>();
  const auto b = randn(2, {n, n}, tmath::float32).to_vector<float>();
  std::vector<float> out(n * n);
  for (auto _ : st) {
    op.loop(a.data(), b.data(), out.data(), n, n);
    benchmark::DoNotOptimize(out.data());
  }
  st.SetBytesProcessed(st.iterations() * op.streams * n * n * 4);
}

// One 8-element add recorded and evaluated: the engine's per-op overhead.
void add_tiny(benchmark::State& st) {
  const Tensor a = randn(1, {8}, tmath::float32), b = randn(2, {8}, tmath::float32);
  for (auto _ : st) {
    Tensor y = tmath::add(a, b);
    y.eval();
  }
}

// y = tanh(x @ w + b) at 512x512: matmul plus a bias/activation epilogue.
void dense_engine(benchmark::State& st) {
  const int64_t n = 512;
  const Tensor x = randn(1, {n, n}, tmath::float32), w = randn(2, {n, n}, tmath::float32),
               b = randn(3, {n}, tmath::float32);
  for (auto _ : st) {
    Tensor y = tmath::tanh(tmath::matmul(x, w) + b);
    y.eval();
  }
}

void dense_reference(benchmark::State& st) {
  const int64_t n = 512;
  const auto x = randn(1, {n, n}, tmath::float32).to_vector<float>();
  const auto w = randn(2, {n, n}, tmath::float32).to_vector<float>();
  const auto b = randn(3, {n}, tmath::float32).to_vector<float>();
  std::vector<float> y(n * n);
  for (auto _ : st) {
    tmath::reference::dense_tanh(x.data(), w.data(), b.data(), y.data(), static_cast<int>(n));
    benchmark::DoNotOptimize(y.data());
  }
}

void register_all() {
  for (int64_t n : {128, 256, 512, 1024, 2048}) {
    const std::string s = std::to_string(n);
    for (DType dt : {tmath::float32, tmath::float64, tmath::float16, tmath::bfloat16}) {
      const std::string d(tmath::dtype_name(dt));
      benchmark::RegisterBenchmark(("matmul/engine/" + d + "/" + s).c_str(), matmul_engine, dt, n)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark(("matmul/reference/float32/" + s).c_str(), matmul_reference<float>,
                                 n)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("matmul/reference/float64/" + s).c_str(),
                                 matmul_reference<double>, n)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  for (int64_t n : {1024, 4096}) {
    const std::string s = std::to_string(n);
    for (const LoopOp& op : kOps) {
      const std::string name = op.name;
      benchmark::RegisterBenchmark((name + "/engine/float32/" + s).c_str(), loop_engine, op, n)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark((name + "/reference/float32/" + s).c_str(), loop_reference, op,
                                   n)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::RegisterBenchmark("add_tiny/engine/float32/8", add_tiny)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("dense_tanh/engine/float32/512", dense_engine)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("dense_tanh/reference/float32/512", dense_reference)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
