// Gradient cost of a 10-layer MLP loss (512 wide, batch 256, float32, gelu):
// forward, value_and_grad with respect to all 20 weights and biases, and both
// under compile(). Median of 30 timed rounds (the four cases interleaved) after
// warm-up, results evaluated and the device synchronised per call. bench/torch_mlp_grad.py times the same model
// with PyTorch autograd (and torch.compile) for the reference.
//
//   mlp_grad [cpu|cuda] [reps] [only]
// only = forward | grad | compiled-forward | compiled-grad times that one case (for a
// profiler's kernel table).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "tmath/autodiff.h"
#include "standalone.h"
#include "tmath/tmath.h"

using namespace tmath;
using bench::now_ms;

namespace {
// MLP_LAYERS / MLP_WIDTH / MLP_BATCH override the sizes (tiny ones expose the host
// time per node).
int64_t env_or(const char* name, int64_t dflt) {
  const char* e = std::getenv(name);
  return e ? std::stoll(e) : dflt;
}
const int kLayers = static_cast<int>(env_or("MLP_LAYERS", 10));
const int64_t kWidth = env_or("MLP_WIDTH", 512), kBatch = env_or("MLP_BATCH", 256);

Tensor loss(const TensorList& a) {
  Tensor h = a[0];
  for (int i = 0; i < kLayers; ++i) h = gelu(matmul(h, a[1 + i]) + a[1 + kLayers + i]);
  return mean(h * h);
}


// Median per case of `reps` rounds; each round runs every case once, so drift of a
// shared machine falls on all cases alike (the ratios are what the bench reports).
std::vector<double> median_ms(Backend& be, Device dev,
                              const std::vector<std::function<void()>>& fns, int reps) {
  for (int i = 0; i < 5; ++i)
    for (const auto& fn : fns) fn();
  be.synchronize(dev);
  std::vector<std::vector<double>> ts(fns.size());
  for (int i = 0; i < reps; ++i)
    for (size_t c = 0; c < fns.size(); ++c) {
      const double t0 = now_ms();
      fns[c]();
      be.synchronize(dev);
      ts[c].push_back(now_ms() - t0);
    }
  std::vector<double> med;
  for (auto& t : ts) {
    std::nth_element(t.begin(), t.begin() + reps / 2, t.end());
    med.push_back(t[static_cast<size_t>(reps / 2)]);
  }
  return med;
}
}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 2 ? std::stoi(argv[2]) : 30;
  const bench::Target target = bench::target_from_args(argc, argv);
  if (!target.be) return 0;
  const std::string& dev_name = target.name;
  const Device dev = target.dev;
  Backend* be = target.be.get();
  TensorList args;
  args.push_back(random::normal(random::key(1), {kBatch, kWidth}).to(dev));
  for (int i = 0; i < kLayers; ++i)
    args.push_back(
        (random::normal(random::key(10 + i), {kWidth, kWidth}) * (1.0 / std::sqrt(double(kWidth))))
            .to(dev));
  for (int i = 0; i < kLayers; ++i)
    args.push_back((random::normal(random::key(50 + i), {kWidth}) * 0.1).to(dev));
  eval(args);
  std::vector<int> params;
  for (int i = 1; i <= 2 * kLayers; ++i) params.push_back(i);
  auto vg = value_and_grad(loss, params);
  auto flat = [vg](const TensorList& a) {
    auto [v, g] = vg(a);
    TensorList out{v};
    out.insert(out.end(), g.begin(), g.end());
    return out;
  };
  const CompiledFunction cgrad = compile(flat);
  const CompiledFunction cfwd = compile([](const TensorList& a) { return TensorList{loss(a)}; });

  if (argc > 3) {
    const std::string only = argv[3];
    const std::function<void()> fn =
        only == "forward"            ? std::function<void()>([&] { loss(args).eval(); })
        : only == "grad"             ? std::function<void()>([&] { eval(flat(args)); })
        : only == "compiled-forward" ? std::function<void()>([&] { eval(cfwd(args)); })
                                     : std::function<void()>([&] { eval(cgrad(args)); });
    std::printf("%s: %.3f ms\n", only.c_str(), median_ms(*be, dev, {fn}, reps)[0]);
    return 0;
  }
  const std::vector<double> med =
      median_ms(*be, dev,
                {[&] { loss(args).eval(); }, [&] { eval(flat(args)); }, [&] { eval(cfwd(args)); },
                 [&] { eval(cgrad(args)); }},
                reps);
  const double fwd = med[0], grad = med[1], cf = med[2], cg = med[3];
  // Work per call: kernels (fused programs), host<->device copies, allocations.
  auto per_call = [&](const char* what, const std::function<void()>& fn) {
    const MemoryStats m0 = memory_stats(dev);
    reset_jit_stats();
    fn();
    be->synchronize(dev);
    const MemoryStats m1 = memory_stats(dev);
    const JitStats js = jit_stats();
    std::printf("  per call, %-16s fused kernels %llu, graph launches %llu, h2d copies %llu, "
                "d2h copies %llu, allocations %llu\n",
                what, static_cast<unsigned long long>(js.fused_kernels),
                static_cast<unsigned long long>(js.graph_replays),
                static_cast<unsigned long long>(m1.host_to_device_copies - m0.host_to_device_copies),
                static_cast<unsigned long long>(m1.device_to_host_copies - m0.device_to_host_copies),
                static_cast<unsigned long long>(m1.allocations - m0.allocations));
  };
  per_call("forward", [&] { loss(args).eval(); });
  per_call("compiled forward", [&] { eval(cfwd(args)); });
  per_call("grad", [&] { eval(flat(args)); });
  per_call("compiled grad", [&] { eval(cgrad(args)); });
  std::printf("mlp 10x%lld, batch %lld, float32 on %s (median of %d)\n",
              static_cast<long long>(kWidth), static_cast<long long>(kBatch), dev_name.c_str(), reps);
  std::printf("  forward          %8.3f ms\n", fwd);
  std::printf("  value_and_grad   %8.3f ms   (%.2fx forward)\n", grad, grad / fwd);
  std::printf("  compiled forward %8.3f ms\n", cf);
  std::printf("  compiled grad    %8.3f ms   (%.2fx compiled forward, %.2fx forward)\n", cg,
              cg / cf, cg / fwd);
  return 0;
}
