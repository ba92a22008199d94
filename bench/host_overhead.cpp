// Where the time of a small op goes: host issue time against total time.
//
//   host_overhead [cpu|cuda] [reps] [case]
//
// For each case, `reps` eager calls (each result evaluated) are issued back to
// back and synchronised once. Printed per call: the host's issue time (wall time
// until the last call returns, before the synchronisation) and the total (after
// it). When the two are equal the op is host-bound; when the total is larger,
// the device is the bottleneck and host time is hidden behind it.
//
// With a case name (e.g. "add 8"), that case also runs for about two seconds under
// the sampling profiler of sampler.h, which prints where the host time goes.
// A third column times the same calls as `tmath profile` does (CUDA events around
// batches of 100 after a synchronisation).
#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "sampler.h"
#include "standalone.h"
#include "tmath/tmath.h"

using namespace tmath;
using bench::now_ms;

namespace {
std::string g_sample_case;

// `ops`: engine ops per call of fn (the times printed are per op).
void measure(Backend& be, Device dev, const char* name, const std::function<void()>& fn,
             int reps, int ops = 1) {
  for (int i = 0; i < 50; ++i) fn();
  be.synchronize(dev);
  double best_host = 1e300, best_total = 1e300;
  for (int round = 0; round < 5; ++round) {
    const double t0 = 1e3 * now_ms();
    for (int i = 0; i < reps; ++i) fn();
    const double t1 = 1e3 * now_ms();
    be.synchronize(dev);
    const double t2 = 1e3 * now_ms();
    best_host = std::min(best_host, (t1 - t0) / reps / ops);
    best_total = std::min(best_total, (t2 - t0) / reps / ops);
  }
  // The same calls timed the way `tmath profile` times them: the backend's clock
  // (CUDA events) around batches of back-to-back calls, each batch started after a
  // synchronisation, median of the batch means.
  const int batch = std::max(1, std::min(reps, 100));
  std::vector<double> ev;
  const std::function<void()> call = fn;
  for (int i = 0; i < 9; ++i) ev.push_back(be.time_ms(dev, call, batch) * 1e3 / ops);
  std::nth_element(ev.begin(), ev.begin() + ev.size() / 2, ev.end());
  std::printf("%-28s host %7.2f us/op     total %7.2f us/op     batches of %d %7.2f us/op\n", name,
              best_host, best_total, batch, ev[ev.size() / 2]);
  if (g_sample_case != name) return;
  bench::Sampler sampler(20);
  sampler.start();
  const double t0 = now_ms();
  long calls = 0;
  while (now_ms() - t0 < 2000) {
    for (int i = 0; i < reps; ++i) fn();
    be.synchronize(dev);
    calls += reps;
  }
  sampler.stop();
  std::printf("%s: %ld calls in %.0f ms under the sampler\n", name, calls, now_ms() - t0);
  sampler.report(stdout, 40);
}
}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 2 ? std::stoi(argv[2]) : 2000;
  if (argc > 3) g_sample_case = argv[3];
  const bench::Target target = bench::target_from_args(argc, argv);
  if (!target.be) return 0;
  const Device dev = target.dev;
  Backend* be = target.be.get();
  auto make = [&](Shape s, uint64_t seed) {
    return random::normal(random::key(seed), s).to(dev).eval();
  };
  for (int64_t n : {8, 1024 * 1024, 4096 * 4096}) {
    Tensor a = make({n}, 1), b = make({n}, 2);
    const std::string sz = n == 8 ? "8" : n == 1024 * 1024 ? "1024^2" : "4096^2";
    const int r = n > 1024 * 1024 ? reps / 20 : reps;
    measure(*be, dev, ("add " + sz).c_str(), [&] { (a + b).eval(); }, r);
    measure(*be, dev, ("tanh " + sz).c_str(), [&] { tanh(a).eval(); }, r);
    measure(*be, dev, ("sum " + sz).c_str(), [&] { sum(a).eval(); }, r);
  }
  {
    // Many ops queued before one eval: a dependent chain (planned as one fused
    // kernel) and independent results evaluated together (one kernel each).
    Tensor a = make({8}, 1), b = make({8}, 2);
    measure(*be, dev, "add 8, chain of 100", [&] {
      Tensor y = a;
      for (int i = 0; i < 100; ++i) y = y + b;
      y.eval();
    }, reps / 100, 100);
    measure(*be, dev, "add 8, 100 independent", [&] {
      std::vector<Tensor> ys;
      ys.reserve(100);
      for (int i = 0; i < 100; ++i) ys.push_back(i % 2 ? a + b : a * b);
      eval(ys);
    }, reps / 100, 100);
  }
  for (int64_t n : {1024, 4096}) {
    Tensor a = make({n, n}, 5);
    const std::string sz = std::to_string(n) + "^2";
    const int r = n > 1024 ? reps / 20 : reps;
    measure(*be, dev, ("softmax " + sz).c_str(), [&] { softmax(a).eval(); }, r);
    measure(*be, dev, ("layer_norm " + sz).c_str(), [&] { layer_norm(a).eval(); }, r);
    measure(*be, dev, ("relu " + sz).c_str(), [&] { relu(a).eval(); }, r);
  }
  for (int64_t n : {128, 512, 1024}) {
    for (DType dt : {float32, bfloat16}) {
      Tensor a = make({n, n}, 3).astype(dt).eval(), b = make({n, n}, 4).astype(dt).eval();
      const std::string name =
          "matmul " + std::to_string(n) + " " + std::string(dtype_name(dt));
      measure(*be, dev, name.c_str(), [&] { matmul(a, b).eval(); }, reps / 4);
    }
  }
  return 0;
}
