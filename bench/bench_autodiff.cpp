// Cost of reverse-mode gradients: a 10-layer MLP loss (512 wide, batch 256, gelu),
// forward pass vs value_and_grad with respect to every weight and bias, plus a
// hessian-vector product (jvp of grad) of a small function vs that function.
//
//   build/bench/bench_autodiff --benchmark_min_time=1s
//
// The gradient/forward ratio is the ratio of the two mlp/* medians (same run).
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "tmath/autodiff.h"
#include "tmath/backend.h"
#include "tmath/ops.h"
#include "tmath/random.h"
#include "tmath/transforms.h"

namespace {

using tmath::Tensor;
using tmath::TensorList;

constexpr int kLayers = 10;
constexpr int64_t kWidth = 512, kBatch = 256;

struct Setup {
  TensorList args;  // x, w0..w9, b0..b9
  std::vector<int> params;
  Setup(tmath::Device dev) {
    using namespace tmath;
    args.push_back(random::normal(random::key(1), {kBatch, kWidth}, float32).to(dev));
    for (int i = 0; i < kLayers; ++i)
      args.push_back((random::normal(random::key(10 + i), {kWidth, kWidth}, float32) *
                      (1.0 / std::sqrt(static_cast<double>(kWidth))))
                         .to(dev));
    for (int i = 0; i < kLayers; ++i)
      args.push_back((random::normal(random::key(50 + i), {kWidth}, float32) * 0.1).to(dev));
    eval(args);
    for (int i = 1; i <= 2 * kLayers; ++i) params.push_back(i);
  }
};

Tensor loss(const TensorList& a) {
  Tensor h = a[0];
  for (int i = 0; i < kLayers; ++i)
    h = tmath::gelu(tmath::matmul(h, a[1 + i]) + a[1 + kLayers + i]);
  return tmath::mean(h * h);
}

tmath::Device device_of(benchmark::State& st) {
  return st.range(0) == 0 ? tmath::kCPU : tmath::Device(tmath::DeviceType::CUDA, 0);
}

bool skip_without(benchmark::State& st) {
  if (st.range(0) == 0) return false;
  auto b = tmath::get_backend("cuda");
  if (b && b->available()) return false;
  st.SkipWithError("no CUDA device");
  return true;
}

void mlp_forward(benchmark::State& st) {
  if (skip_without(st)) return;
  Setup s(device_of(st));
  for (auto _ : st) {
    Tensor l = loss(s.args);
    l.eval();
    benchmark::DoNotOptimize(l.item<float>());
  }
}

void mlp_value_and_grad(benchmark::State& st) {
  if (skip_without(st)) return;
  Setup s(device_of(st));
  auto vg = tmath::value_and_grad(loss, s.params);
  for (auto _ : st) {
    auto [v, g] = vg(s.args);
    benchmark::DoNotOptimize(v.item<float>());
  }
}

// f(X) = sum(tanh(X A)^2) for X 256x512, A 512x512; hvp = jvp of grad.
Tensor small_f(const Tensor& A, const Tensor& x) {
  return tmath::sum(tmath::square(tmath::tanh(tmath::matmul(x, A))));
}

void small_function(benchmark::State& st) {
  if (skip_without(st)) return;
  auto dev = device_of(st);
  Tensor A = tmath::random::normal(tmath::random::key(3), {kWidth, kWidth}).to(dev).eval();
  Tensor x = tmath::random::normal(tmath::random::key(4), {kBatch, kWidth}).to(dev).eval();
  for (auto _ : st) {
    Tensor y = small_f(A, x);
    benchmark::DoNotOptimize(y.item<float>());
  }
}

void small_hvp(benchmark::State& st) {
  if (skip_without(st)) return;
  auto dev = device_of(st);
  Tensor A = tmath::random::normal(tmath::random::key(3), {kWidth, kWidth}).to(dev).eval();
  Tensor x = tmath::random::normal(tmath::random::key(4), {kBatch, kWidth}).to(dev).eval();
  Tensor v = tmath::random::normal(tmath::random::key(5), {kBatch, kWidth}).to(dev).eval();
  auto f = [&](const Tensor& z) { return small_f(A, z); };
  for (auto _ : st) {
    Tensor hv = tmath::hvp(f, x, v);
    hv.eval();
    benchmark::DoNotOptimize(hv.data_ptr());
  }
}

}  // namespace

BENCHMARK(mlp_forward)
    ->Arg(0)
    ->Arg(1)
    ->ArgName("gpu")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(mlp_value_and_grad)
    ->Arg(0)
    ->Arg(1)
    ->ArgName("gpu")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(small_function)
    ->Arg(0)
    ->Arg(1)
    ->ArgName("gpu")
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(small_hvp)->Arg(0)->Arg(1)->ArgName("gpu")->Unit(benchmark::kMicrosecond)->UseRealTime();

BENCHMARK_MAIN();
