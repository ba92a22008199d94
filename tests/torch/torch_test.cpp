// The torch backend (LibTorch's ATen kernels on the engine's memory; every (op, dtype)
// it claims is checked by tests/backend_ops). Skipped where the plugin was not built.
#include <gtest/gtest.h>

#include <functional>
#include <limits>

#include "backend_util.h"
#include "int_reduce_util.h"
#include "tmath/linalg.h"
#include "ref_util.h"
#include "test_util.h"

using namespace tmath;

namespace {

// Loads the plugin once per process; the reason when it cannot run here.
std::string torch_missing() {
  static const std::string why = [] {
    if (load_backend("torch")) return std::string();
    return "torch backend: " + tt::backend_reason("torch");
  }();
  return why;
}

#define REQUIRE_TORCH()                                            \
  do {                                                             \
    if (const std::string why = torch_missing(); !why.empty())     \
      GTEST_SKIP() << why;                                         \
  } while (0)

// Restores the backend priority at the end of a test.
struct PriorityGuard {
  std::vector<std::string> saved = backend_priority();
  ~PriorityGuard() { set_backend_priority(saved); }
};

// A pipeline of 100 ops mixing what the torch backend runs (elementwise, matmul,
// softmax, sums, prod, cumsum, take, solve) with what it leaves to the cpu backend
// (Philox random numbers).
std::vector<Tensor> pipeline() {
  Tensor x = random::uniform(random::key(7), {64, 64}, float32, -1, 1);
  Tensor w = random::normal(random::key(8), {64, 64}, float32) * 0.125f;
  std::vector<Tensor> outs;
  for (int i = 0; i < 10; ++i) {
    Tensor h = tanh(matmul(x, w) + 0.25f);                       // 3
    Tensor s = softmax(h * 2.0f, -1);                            // 2
    Tensor c = cumsum(s, 1);                                     // 1
    Tensor r = sum(c, {1}, true) - prod(s + 1.0f, {1}, true);    // 4
    x = maximum(h, r * 0.01f);                                   // 2  (12 per round)
    outs.push_back(r);
  }
  outs.push_back(take(x, tt::make({3, 1, 2}, {3}, int64), 0));
  outs.push_back(linalg::solve(w + eye(64) * 4.0f, x));
  return outs;
}

}  // namespace

TEST(Torch, LoadsOnDemandAndReportsLibTorch) {
  REQUIRE_TORCH();
  auto b = get_backend("torch");
  ASSERT_TRUE(b && b->available());
  EXPECT_EQ(b->device_type(), DeviceType::CPU);
  const BackendInfo bi = b->info();
  ASSERT_FALSE(bi.libraries.empty());
  EXPECT_EQ(bi.libraries[0].first, "LibTorch");
  EXPECT_FALSE(bi.libraries[0].second.empty());
  EXPECT_TRUE(load_backend("torch")) << "a second load must be a no-op";
  EXPECT_THROW(load_backend("no-such-backend"), ValueError);
}

TEST(Torch, PriorityRunsOpsOnTorchAndTheRestOnCpuWithoutCopies) {
  REQUIRE_TORCH();
  PriorityGuard guard;
  set_backend_priority({"cpu"});
  const std::vector<Tensor> want = pipeline();
  eval(want);

  set_backend_priority({"torch"});
  EXPECT_EQ(backend_priority().front(), "torch");
  EXPECT_EQ(select_backend(OpCode::Matmul, float32, kCPU)->name(), "torch");
  EXPECT_EQ(select_backend(OpCode::Tanh, float32, kCPU)->name(), "torch");
  EXPECT_EQ(select_backend(OpCode::Softmax, float32, kCPU)->name(), "torch");
  EXPECT_EQ(select_backend(OpCode::Prod, float32, kCPU)->name(), "torch");
  // Linear algebra runs through torch.linalg; Philox streams stay with the engine's cpu
  // backend, on the same memory.
  EXPECT_EQ(select_backend(OpCode::Solve, float32, kCPU)->name(), "torch");
  EXPECT_EQ(select_backend(OpCode::RandomUniform, float32, kCPU)->name(), "cpu");

  reset_dispatch_stats();
  const MemoryStats m0 = memory_stats(kCPU);
  const std::vector<Tensor> got = pipeline();
  eval(got);
  const DispatchStats d = dispatch_stats();
  const MemoryStats m1 = memory_stats(kCPU);
  EXPECT_EQ(d.fallbacks, 0u) << "no op may leave the cpu device";
  EXPECT_GE(d.nodes_evaluated, 100u);
  EXPECT_EQ(m1.host_to_device_copies, m0.host_to_device_copies);
  EXPECT_EQ(m1.device_to_host_copies, m0.device_to_host_copies);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const auto g = tt::read(got[i]), w = tt::read(want[i]);
    ASSERT_EQ(g.size(), w.size());
    for (size_t j = 0; j < g.size(); ++j)
      EXPECT_NEAR(g[j], w[j], 1e-4 * (1 + std::fabs(w[j]))) << "output " << i << " element " << j;
  }
}

TEST(Torch, StridedBroadcastAndPartialWritesUseTheEngineViews) {
  REQUIRE_TORCH();
  PriorityGuard guard;
  set_backend_priority({"torch"});
  // A transposed view, a broadcast row and a concatenation (strided copies into parts of
  // one buffer) run on ATen tensors made over the engine's memory with its strides.
  Tensor a = tt::make({1, 2, 3, 4, 5, 6}, {2, 3}, float64);
  Tensor row = tt::make({10, 20}, {2}, float64);
  Tensor y = transpose(a) + row;  // (3, 2): a^T + row
  EXPECT_TRUE(tt::all_close(y, {11, 24, 12, 25, 13, 26}, {1e-15, 0}));
  Tensor z = concatenate({zeros({3, 1}, float64), y, zeros({3, 1}, float64)}, 1);
  EXPECT_TRUE(tt::all_close(z, {0, 11, 24, 0, 0, 12, 25, 0, 0, 13, 26, 0}, {1e-15, 0}));
  // Integer and bool results: exact.
  Tensor i = tt::make({7, -3, 5}, {3}, int32);
  EXPECT_TRUE(tt::all_equal(maximum(i, Tensor(0).astype(int32)), {7, 0, 5}));
  EXPECT_TRUE(tt::all_equal(greater(i, Tensor(4).astype(int32)).astype(int32), {1, 0, 1}));
  EXPECT_TRUE(tt::all_equal(argmax(i, 0), {0}));
}

// LibTorch has no uint64: sums, products and scans of unsigned ints (uint64 results)
// stay with the native backend, the signed ones run on ATen; both give NumPy 2's dtypes
// and wrap-around values.
TEST(Torch, IntegerSumsKeepNumPyDtypesAndWrap) {
  REQUIRE_TORCH();
  PriorityGuard guard;
  set_backend_priority({"torch"});
  for (OpCode op : {OpCode::Sum, OpCode::Prod, OpCode::CumSum, OpCode::CumProd}) {
    for (DType dt : {uint8, uint16, uint32, uint64, int8, int32, int64}) {
      const char* want = tt::is_uint(dt) ? "cpu" : "torch";
      EXPECT_EQ(select_backend(op, dt, kCPU)->name(), want)
          << op_name(op) << " " << tt::name_of(dt);
    }
  }
  reset_dispatch_stats();
  tt::check_int_sum_prod(kCPU);
  EXPECT_EQ(dispatch_stats().fallbacks, 0u);
}

// "torch:cuda" (LibTorch's CUDA kernels on the engine's device memory and stream): a
// 100-op pipeline on device tensors never touches the host, and what it leaves to the
// engine's cuda backend (Philox random numbers) runs there on the same memory. (No
// solve or take here: a cuSOLVER factorisation reads its status back to raise
// LinAlgError, and take checks its indices on the host; both are documented reads.)
// Skipped where LibTorch has no CUDA or no GPU is present.
TEST(Torch, CudaPipelineMakesNoHostRoundTrips) {
  REQUIRE_TORCH();
  auto tc = get_backend("torch:cuda");
  if (!tc || !tc->available())
    GTEST_SKIP() << "no torch:cuda backend here: " << tt::backend_reason("torch:cuda");
  const Device gpu(DeviceType::CUDA, 0);
  PriorityGuard guard;
  set_backend_priority({"cpu"});
  std::vector<Tensor> want = pipeline();  // on the cpu backend
  want.pop_back();                          // without its solve
  want.pop_back();                          // and its take
  eval(want);
  set_backend_priority({"torch"});  // ranks "torch:cuda" on cuda devices too
  EXPECT_EQ(select_backend(OpCode::Matmul, float32, gpu)->name(), "torch:cuda");
  EXPECT_EQ(select_backend(OpCode::Softmax, float32, gpu)->name(), "torch:cuda");
  EXPECT_EQ(select_backend(OpCode::RandomUniform, float32, gpu)->name(), "cuda");

  Tensor x = random::uniform(random::key(7), {64, 64}, float32, -1, 1).to(gpu).eval();
  Tensor w = (random::normal(random::key(8), {64, 64}, float32) * 0.125f).to(gpu).eval();
  auto run = [&] {
    Tensor h = x;
    std::vector<Tensor> outs;
    for (int i = 0; i < 10; ++i) {
      Tensor t = tanh(matmul(h, w) + 0.25f);
      Tensor s = softmax(t * 2.0f, -1);
      Tensor c = cumsum(s, 1);
      Tensor r = sum(c, {1}, true) - prod(s + 1.0f, {1}, true);
      h = maximum(t, r * 0.01f);
      outs.push_back(r);
    }
    eval(outs);
    return outs;
  };
  (void)run();  // the scalar constants move to the device once and stay cached
  reset_dispatch_stats();
  const MemoryStats m0 = memory_stats(gpu);
  const std::vector<Tensor> got = run();
  const DispatchStats d = dispatch_stats();
  const MemoryStats m1 = memory_stats(gpu);
  EXPECT_EQ(d.fallbacks, 0u);
  EXPECT_GE(d.nodes_evaluated, 100u);
  EXPECT_EQ(m1.device_to_host_copies, m0.device_to_host_copies);
  EXPECT_EQ(m1.host_to_device_copies, m0.host_to_device_copies);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const auto g = tt::read(got[i].to(kCPU)), e = tt::read(want[i]);
    ASSERT_EQ(g.size(), e.size());
    for (size_t j = 0; j < g.size(); ++j)
      EXPECT_NEAR(g[j], e[j], 1e-3 * (1 + std::fabs(e[j]))) << "output " << i << " element " << j;
  }
}

// Linear algebra on torch raises the cpu backend's LinAlgError, word for word: the lowest
// failing batch index whatever the failure (a NaN after a singular matrix and the other
// way round), NaN only in the triangle read, zero diagonals, bad pivots.
TEST(Torch, LinalgErrorsMatchTheCpuBackend) {
  REQUIRE_TORCH();
  PriorityGuard guard;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // (3, 2, 2) batches: entry 0 fine, entries 1 and 2 as given.
  auto batch = [&](std::vector<double> e1, std::vector<double> e2) {
    std::vector<double> v = {2, 1, 1, 3};
    v.insert(v.end(), e1.begin(), e1.end());
    v.insert(v.end(), e2.begin(), e2.end());
    return tt::make(v, {3, 2, 2}, float64);
  };
  const Tensor sing_then_nan = batch({1, 2, 2, 4}, {nan, 0, 0, 1});
  const Tensor nan_then_sing = batch({1, nan, 0, 1}, {1, 2, 2, 4});
  const Tensor not_pd = batch({1, 2, 2, 1}, {2, 0, 0, nan});
  const Tensor nan_upper = batch({2, nan, 1, 3}, {2, 1, 1, 3});  // eigh reads the lower one
  const Tensor zero_diag = batch({1, 0, 5, 0}, {1, 0, 0, 1});
  const Tensor b = ones({3, 2, 1}, float64);
  const Tensor good_piv = tt::make({0, 1, 0, 1, 0, 1}, {3, 2}, int32);
  const Tensor bad_piv = tt::make({0, 1, 1, 1, 1, 0}, {3, 2}, int32);
  std::vector<std::pair<std::string, std::function<void()>>> cases = {
      {"solve s/n", [&] { linalg::solve(sing_then_nan, b).eval(); }},
      {"solve n/s", [&] { linalg::solve(nan_then_sing, b).eval(); }},
      {"inv", [&] { linalg::inv(sing_then_nan).eval(); }},
      {"det", [&] { linalg::det(nan_then_sing).eval(); }},
      {"cholesky", [&] { linalg::cholesky(not_pd).eval(); }},
      {"cholesky upper", [&] { linalg::cholesky(not_pd, true).eval(); }},
      {"eigh", [&] { linalg::eigh(nan_upper).eigenvalues.eval(); }},
      {"eigh U", [&] { linalg::eigh(nan_upper, 'U').eigenvalues.eval(); }},
      {"svd", [&] { linalg::svd(nan_then_sing).S.eval(); }},
      {"qr", [&] { linalg::qr(sing_then_nan).R.eval(); }},
      {"eig", [&] { linalg::eig(sing_then_nan).eigenvalues.eval(); }},
      {"lu", [&] { linalg::lu_factor(nan_then_sing).LU.eval(); }},
      {"solve_triangular", [&] { linalg::solve_triangular(zero_diag, b, true).eval(); }},
      {"solve_triangular unit",
       [&] { linalg::solve_triangular(zero_diag, b, true, true).eval(); }},
      {"lu_solve pivots",
       [&] { linalg::lu_solve(batch({1, 0, 0, 1}, {1, 0, 0, 1}), bad_piv, b).eval(); }},
      {"lu_solve zero", [&] { linalg::lu_solve(zero_diag, good_piv, b).eval(); }},
      {"slogdet ok", [&] { linalg::slogdet(batch({1, 2, 2, 4}, {0, 0, 0, 0})).sign.eval(); }},
  };
  auto outcome = [](const std::function<void()>& f) -> std::string {
    try {
      f();
      return "no error";
    } catch (const LinAlgError& e) {
      return std::string("LinAlgError: ") + e.what();
    } catch (const std::exception& e) {
      return std::string("other: ") + e.what();
    }
  };
  for (const auto& [name, f] : cases) {
    set_backend_priority({"cpu"});
    const std::string want = outcome(f);
    const bool fails = name != "slogdet ok" && name != "solve_triangular unit" && name != "eigh";
    EXPECT_EQ(want.rfind("LinAlgError: [", 0) == 0, fails) << name << ": " << want;
    set_backend_priority({"torch"});
    ASSERT_EQ(select_backend(OpCode::Solve, float64, kCPU)->name(), "torch");
    EXPECT_EQ(outcome(f), want) << name;
  }
}
