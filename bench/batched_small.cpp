// Batches of small matrices through the linear algebra: ms per call (median of `reps`,
// each call's results evaluated; every linalg call waits for its status flags, so the
// wall time is the call's whole cost) of qr, cholesky, lu_solve and solve, and qr of
// tall 512 x 128 x 16 batches.
//
//   batched_small [cpu|cuda] [reps]
//
// On cuda, the routes these rows take are switched per process by environment:
// TMATH_CUDA_QR_SMALL=0, TMATH_CUDA_CHOLESKY_SMALL=0 and TMATH_CUDA_LU_SOLVE_SMALL=0
// (cuBLAS/cuSOLVER instead of the one-warp kernels), TMATH_CUDA_BATCHED_MAX_N=0 (one cuSOLVER call per entry instead
// of the batched cuBLAS/cuSOLVER calls). bench/batched_small_torch.py times
// torch.linalg on the same shapes.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "standalone.h"
#include "tmath/tmath.h"

using namespace tmath;
namespace la = tmath::linalg;

int main(int argc, char** argv) {
  bench::Target t = bench::target_from_args(argc, argv);
  if (!t.be) return 0;
  const int reps = argc > 2 ? std::max(1, std::atoi(argv[2])) : 15;
  set_backend_priority({t.name});
  // One row: fn's median over `reps` synchronised calls after three warm-up calls.
  auto row = [&](const char* name, const std::string& shape, DType dt,
                 const std::function<void()>& fn) {
    for (int i = 0; i < 3; ++i) fn();
    t.be->synchronize(t.dev);
    std::vector<double> ms;
    for (int i = 0; i < reps; ++i) {
      const double t0 = bench::now_ms();
      fn();
      t.be->synchronize(t.dev);
      ms.push_back(bench::now_ms() - t0);
    }
    std::nth_element(ms.begin(), ms.begin() + static_cast<long>(ms.size() / 2), ms.end());
    std::printf("%-10s %-12s %-10s %10.3f\n", name, shape.c_str(),
                std::string(dtype_name(dt)).c_str(), ms[ms.size() / 2]);
    std::fflush(stdout);
  };
  auto qr = [](const Tensor& a) {
    auto q = la::qr(a);
    eval({q.Q, q.R});
  };
  struct Case {
    int64_t batch, n;
  };
  std::printf("%-10s %-12s %-10s %10s\n", "op", "shape", "dtype", "ms");
  for (const Case c : {Case{512, 32}, Case{4096, 8}})
    for (DType dt : {float32, float64, complex64}) {
      const auto k = random::key(static_cast<uint64_t>(c.batch + c.n));
      Tensor a = random::normal(k, {c.batch, c.n, c.n}, float64);
      Tensor spd = matmul(a, swapaxes(a, -1, -2)) / double(c.n) +
                   eye(c.n, std::nullopt, 0, float64);
      Tensor b = random::normal(random::fold_in(k, 1), {c.batch, c.n, 1}, float64);
      a = a.astype(dt).to(t.dev).eval();
      spd = spd.astype(dt).to(t.dev).eval();
      b = b.astype(dt).to(t.dev).eval();
      auto f = la::lu_factor(a);
      eval({f.LU, f.pivots});
      const std::string shape =
          std::to_string(c.batch) + "x" + std::to_string(c.n) + "x" + std::to_string(c.n);
      row("qr", shape, dt, [&] { qr(a); });
      row("cholesky", shape, dt, [&] { la::cholesky(spd).eval(); });
      row("lu_solve", shape, dt, [&] { la::lu_solve(f.LU, f.pivots, b).eval(); });
      row("solve", shape, dt, [&] { la::solve(a, b).eval(); });
    }
  // Tall, narrow matrices (batched least squares): qr of 512 x 128 x 16.
  for (DType dt : {float32, float64, complex64}) {
    Tensor a = random::normal(random::key(7), {512, 128, 16}, float64).astype(dt).to(t.dev).eval();
    row("qr", "512x128x16", dt, [&] { qr(a); });
  }
  return 0;
}
