// mlx backend: plugin registration, transfers, a device pipeline without host
// round trips, views and partial writes, and the visible fallback for what MLX
// does not run. (Every primitive x dtype runs in tests/backend_ops.) Without the
// plugin (a build without MLX) the device tests skip and say why.
#include <cstdio>
#include <functional>
#include <limits>
#include <set>

#include "backend_util.h"
#include "int_reduce_util.h"
#include "test_util.h"
#include "tmath/linalg.h"
#include "tmath/random.h"

using namespace tmath;

namespace {

const Device kMlx(DeviceType::MLX, 0);

bool mlx_ok() { return tt::backend_ok("mlx"); }
std::string mlx_reason() { return tt::backend_reason("mlx"); }

#define REQUIRE_MLX() \
  if (!mlx_ok()) GTEST_SKIP() << "no mlx backend: " << mlx_reason()

// Runs the test body with the mlx backend first and fallbacks allowed (not logged).
class MlxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_ = backend_priority();
    policy_ = fallback_policy();
    set_fallback_policy(FallbackPolicy::Allow);
  }
  void TearDown() override {
    set_backend_priority(saved_);
    set_fallback_policy(policy_);
  }
  std::vector<std::string> saved_;
  FallbackPolicy policy_{};
};

}  // namespace

TEST(MlxPlugin, RegisteredWithAvailabilityOrReason) {
  auto b = get_backend("mlx");
  ASSERT_NE(b, nullptr) << "the plugin loader registers an mlx entry in every build";
  EXPECT_EQ(b->device_type(), DeviceType::MLX);
  EXPECT_EQ(Device("mlx"), kMlx);
  EXPECT_EQ(kMlx.str(), "mlx");
  const BackendInfo info = b->info();
  if (b->available()) {
    ASSERT_FALSE(info.libraries.empty());
    EXPECT_EQ(info.libraries[0].first, "libmlx");
    EXPECT_FALSE(info.libraries[0].second.empty());
    EXPECT_FALSE(info.devices.empty());
  } else {
    EXPECT_FALSE(info.reason.empty()) << "an unavailable backend must say why";
    std::printf("[mlx] unavailable: %s\n", info.reason.c_str());
    TT_EXPECT_THROW_OP(tt::make({1, 2, 3}).to(kMlx).eval(), DeviceError, "");
  }
}

TEST_F(MlxTest, TransfersRoundTripEveryDtypeAndAreCounted) {
  REQUIRE_MLX();
  std::mt19937 rng(1);
  for (DType dt : tt::all_dtypes()) {
    Tensor h = tt::rand_tensor(rng, {3, 5}, dt).t;
    const auto s0 = memory_stats(kMlx);
    Tensor d = h.to(kMlx).eval();
    const auto s1 = memory_stats(kMlx);
    EXPECT_EQ(s1.host_to_device_copies, s0.host_to_device_copies + 1) << tt::name_of(dt);
    // Back to the cpu: MLX's CPU memory is lent, not copied.
    Tensor back = d.to(kCPU).eval();
    EXPECT_EQ(memory_stats(kMlx).device_to_host_copies, s1.device_to_host_copies);
    EXPECT_TRUE(tt::all_close_c(back, tt::read_c(h), {0, 0})) << tt::name_of(dt);
  }
}

// A 100-op pipeline stays in MLX: one upload, one read, no fallback, no other copy.
TEST_F(MlxTest, PipelineMakesNoHostRoundTrips) {
  REQUIRE_MLX();
  set_backend_priority({"mlx"});
  std::vector<double> v(64 * 64);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.1 * double(i));
  Tensor x = tt::make(v, {64, 64}, float32).to(kMlx).eval();
  Tensor w = tt::make(v, {64, 64}, float32).to(kMlx).eval();
  auto pipeline = [&] {
    Tensor y = x;
    for (int i = 0; i < 25; ++i) y = tanh(matmul(y, w) * 0.05 + x) - 0.01;  // 4 ops each
    return y.eval();
  };
  (void)pipeline();  // the scalar constants move to the device once and stay cached
  const auto s0 = memory_stats(kMlx);
  reset_dispatch_stats();
  Tensor y = pipeline();
  const auto s1 = memory_stats(kMlx);
  EXPECT_EQ(dispatch_stats().fallbacks, 0u);
  EXPECT_EQ(s1.host_to_device_copies, s0.host_to_device_copies);
  EXPECT_EQ(s1.device_to_host_copies, s0.device_to_host_copies);
  // Same result as the cpu backend.
  Tensor xc = x.to(kCPU), wc = w.to(kCPU);
  Tensor yc = xc;
  for (int i = 0; i < 25; ++i) yc = tanh(matmul(yc, wc) * 0.05 + xc) - 0.01;
  EXPECT_TRUE(tt::all_close(y.to(kCPU), tt::read(yc), {1e-4, 1e-5}));
}

TEST_F(MlxTest, ViewsBroadcastsAndPartialWrites) {
  REQUIRE_MLX();
  set_backend_priority({"mlx"});
  Tensor a = tt::make({1, 2, 3, 4, 5, 6}, {2, 3}, float32).to(kMlx);
  Tensor b = tt::make({10, 20, 30}, {3}, float32).to(kMlx);
  EXPECT_TRUE(tt::all_equal(a + b, {11, 22, 33, 14, 25, 36}));               // broadcast
  EXPECT_TRUE(tt::all_equal(transpose(a) * 2.0, {2, 8, 4, 10, 6, 12}));      // strided view
  EXPECT_TRUE(tt::all_equal(slice(a, 1, 1, 3) + 0.0, {2, 3, 5, 6}));         // offset view
  EXPECT_TRUE(tt::all_equal(concatenate({a, a}, 0), {1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}));
  EXPECT_TRUE(tt::all_equal(astype(a, int32) + 1, {2, 3, 4, 5, 6, 7}));
  EXPECT_TRUE(tt::all_equal(sum(a, std::vector<int>{1}), {6, 15}));
  EXPECT_TRUE(tt::all_equal(argmax(a, 1), {2, 2}));
  Tensor c = tt::make_c({{1, 2}, {3, -4}}, {2}, complex128).to(kMlx);
  EXPECT_TRUE(tt::all_close_c(c * 2.0, {{2, 4}, {6, -8}}, {0, 0}));  // fallback, same device
  EXPECT_EQ((c * 2.0).device(), kMlx);
}

// Integer sums, products and scans on the mlx device: NumPy 2's dtypes (uint64 for
// unsigned inputs, which MLX reduces natively) and wrap-around values.
TEST_F(MlxTest, IntegerSumsKeepNumPyDtypesAndWrap) {
  REQUIRE_MLX();
  set_backend_priority({"mlx"});
  for (DType dt : {uint8, uint32, uint64, int8, int64})
    EXPECT_EQ(select_backend(OpCode::Sum, dt, kMlx)->name(), "mlx") << tt::name_of(dt);
  tt::check_int_sum_prod(kMlx);
}

// What MLX does not run (Philox random streams, eig of float64, which MLX computes in
// complex64) goes through the counted fallback, and TMATH_FALLBACK=error refuses it.
TEST_F(MlxTest, UnclaimedOpsFallBackVisibly) {
  REQUIRE_MLX();
  set_backend_priority({"mlx"});
  Tensor a = tt::make({4, 1, 1, 3}, {2, 2}, float64).to(kMlx);
  reset_dispatch_stats();
  Tensor w = linalg::eigvals(a);
  const double r = std::sqrt(5.0) / 2;
  EXPECT_TRUE(tt::all_close_c(w, {{3.5 + r, 0}, {3.5 - r, 0}}, {1e-12, 1e-12}));
  EXPECT_EQ(w.device(), kMlx);
  EXPECT_GE(dispatch_stats().fallbacks, 1u);
  set_fallback_policy(FallbackPolicy::Error);
  EXPECT_THROW(random::normal(random::key(1), {4}, float32, 0.0, 1.0, kMlx).eval(),
               UnsupportedError);
}

TEST_F(MlxTest, FusedChainsRunThroughMlxCompile) {
  REQUIRE_MLX();
  // chain10 (15 elementwise ops) on mlx is one fused program, run as one MLX function
  // through mx::compile; it matches the same chain op by op and float64 arithmetic.
  const std::vector<double> xs = {-2.0, -0.75, 0.0, 0.3, 1.5, 4.0};
  Tensor x = tt::make(xs, {2, 3}, float32).to(kMlx).eval();
  auto chain = [](Tensor y) {
    for (int i = 0; i < 5; ++i) y = tanh(y * 1.01 + 0.5);
    return y;
  };
  reset_jit_stats();
  Tensor fused = chain(x).eval();
  const JitStats js = jit_stats();
  EXPECT_EQ(js.fused_kernels, 1u);
  EXPECT_EQ(js.fused_ops, 15u);
  Tensor unfused;
  {
    JitScope off(false);
    unfused = chain(x).eval();
  }
  std::vector<double> want = xs;
  for (double& v : want)
    for (int i = 0; i < 5; ++i) v = std::tanh(static_cast<double>(static_cast<float>(v * 1.01 + 0.5)));
  EXPECT_TRUE(tt::all_close(fused, want, {1e-6, 1e-7}));
  EXPECT_TRUE(tt::all_close(fused, tt::read(unfused), {1e-6, 1e-7}));
  // A program with a comparison, where and a cast, and a broadcast scalar input.
  Tensor c = where(greater(x, Tensor(0.5f)), x * 2.0f, exp(x)).astype(float16);
  std::vector<double> wc;
  for (double v : xs) wc.push_back(v > 0.5 ? v * 2 : std::exp(static_cast<float>(v)));
  EXPECT_TRUE(tt::all_close(c, wc, tt::tol_for(float16)));
  EXPECT_EQ(c.device(), kMlx);
}

// ---- linear algebra ----------------------------------------------------------------

// What the mlx backend claims: float32 and float64 for every kernel but eig (float32
// only: MLX's eig returns complex64), complex64 for svd, eigh and eig; nothing in
// complex128 (MLX has no such dtype). float16/bfloat16 reach the kernels as float32.
TEST_F(MlxTest, LinalgClaims) {
  REQUIRE_MLX();
  auto b = get_backend("mlx");
  const OpCode all[] = {OpCode::Solve, OpCode::Inv, OpCode::Det, OpCode::Slogdet,
                        OpCode::Cholesky, OpCode::Qr, OpCode::Svd, OpCode::Eigh,
                        OpCode::SolveTriangular, OpCode::Lu, OpCode::LuSolve, OpCode::Eig};
  for (OpCode op : all) {
    EXPECT_TRUE(b->supports(op, float32)) << op_name(op);
    EXPECT_EQ(b->supports(op, float64), op != OpCode::Eig) << op_name(op);
    const bool c64 = op == OpCode::Svd || op == OpCode::Eigh || op == OpCode::Eig;
    EXPECT_EQ(b->supports(op, complex64), c64) << op_name(op);
    EXPECT_FALSE(b->supports(op, complex128)) << op_name(op);
  }
}

// Linear algebra on mlx raises the cpu backend's LinAlgError, word for word: the lowest
// failing batch index whatever the failure (a NaN after a singular matrix and the other
// way round), NaN only in the triangle read, a matrix that is not positive definite,
// zero diagonals, bad pivots; and no error where the cpu backend has none.
TEST_F(MlxTest, LinalgErrorsMatchTheCpuBackend) {
  REQUIRE_MLX();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dt : {float32, float64}) {
    // (3, 2, 2) batches: entry 0 fine, entries 1 and 2 as given; on `dev`.
    auto batch = [&](std::vector<double> e1, std::vector<double> e2) {
      std::vector<double> v = {2, 1, 1, 3};
      v.insert(v.end(), e1.begin(), e1.end());
      v.insert(v.end(), e2.begin(), e2.end());
      return tt::make(v, {3, 2, 2}, dt);
    };
    const Tensor sing_then_nan = batch({1, 2, 2, 4}, {nan, 0, 0, 1});
    const Tensor nan_then_sing = batch({1, nan, 0, 1}, {1, 2, 2, 4});
    const Tensor not_pd = batch({1, 2, 2, 1}, {2, 0, 0, nan});
    const Tensor pd_then_not = batch({4, 1, 1, 3}, {1, 2, 2, 1});
    const Tensor nan_upper = batch({2, nan, 1, 3}, {2, 1, 1, 3});  // eigh reads the lower one
    const Tensor zero_diag = batch({1, 0, 5, 0}, {1, 0, 0, 1});
    const Tensor b = ones({3, 2, 1}, dt);
    const Tensor good_piv = tt::make({0, 1, 0, 1, 0, 1}, {3, 2}, int32);
    const Tensor bad_piv = tt::make({0, 1, 1, 1, 1, 0}, {3, 2}, int32);
    Device dev = kCPU;
    auto on = [&](const Tensor& t) { return t.to(dev); };
    std::vector<std::pair<std::string, std::function<void()>>> cases = {
        {"solve s/n", [&] { linalg::solve(on(sing_then_nan), on(b)).eval(); }},
        {"solve n/s", [&] { linalg::solve(on(nan_then_sing), on(b)).eval(); }},
        {"inv", [&] { linalg::inv(on(sing_then_nan)).eval(); }},
        {"inv n/s", [&] { linalg::inv(on(nan_then_sing)).eval(); }},
        {"det", [&] { linalg::det(on(nan_then_sing)).eval(); }},
        {"det singular", [&] { linalg::det(on(batch({1, 2, 2, 4}, {0, 0, 0, 0}))).eval(); }},
        {"cholesky", [&] { linalg::cholesky(on(not_pd)).eval(); }},
        {"cholesky upper", [&] { linalg::cholesky(on(not_pd), true).eval(); }},
        {"cholesky not pd", [&] { linalg::cholesky(on(pd_then_not)).eval(); }},
        {"eigh", [&] { linalg::eigh(on(nan_upper)).eigenvalues.eval(); }},
        {"eigh U", [&] { linalg::eigh(on(nan_upper), 'U').eigenvalues.eval(); }},
        {"eigvalsh U", [&] { linalg::eigvalsh(on(nan_upper), 'U').eval(); }},
        {"svd", [&] { linalg::svd(on(nan_then_sing)).S.eval(); }},
        {"svdvals", [&] { linalg::svdvals(on(sing_then_nan)).eval(); }},
        {"qr", [&] { linalg::qr(on(sing_then_nan)).R.eval(); }},
        {"qr complete", [&] { linalg::qr(on(sing_then_nan), linalg::QrMode::Complete).Q.eval(); }},
        {"lu", [&] { linalg::lu_factor(on(nan_then_sing)).LU.eval(); }},
        {"lu singular", [&] { linalg::lu(on(batch({1, 2, 2, 4}, {0, 0, 0, 0}))).U.eval(); }},
        {"solve_triangular", [&] { linalg::solve_triangular(on(zero_diag), on(b), true).eval(); }},
        {"solve_triangular unit",
         [&] { linalg::solve_triangular(on(zero_diag), on(b), true, true).eval(); }},
        {"lu_solve pivots",
         [&] { linalg::lu_solve(on(batch({1, 0, 0, 1}, {1, 0, 0, 1})), on(bad_piv), on(b)).eval(); }},
        {"lu_solve zero", [&] { linalg::lu_solve(on(zero_diag), on(good_piv), on(b)).eval(); }},
        {"slogdet ok", [&] { linalg::slogdet(on(batch({1, 2, 2, 4}, {0, 0, 0, 0}))).sign.eval(); }},
    };
    if (dt == float32)  // eig of float64 stays with the cpu backend
      cases.push_back({"eig", [&] { linalg::eig(on(sing_then_nan)).eigenvalues.eval(); }});
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
    const std::set<std::string> ok = {"slogdet ok", "solve_triangular unit", "eigh",
                                      "det singular", "lu singular"};
    for (const auto& [name, f] : cases) {
      dev = kCPU;
      const std::string want = outcome(f);
      EXPECT_EQ(want.rfind("LinAlgError: [", 0) == 0, !ok.count(name)) << name << ": " << want;
      dev = kMlx;
      set_fallback_policy(FallbackPolicy::Error);  // mlx runs it, or this fails
      EXPECT_EQ(outcome(f), want) << name << " " << dtype_name(dt);
      set_fallback_policy(FallbackPolicy::Allow);
    }
  }
}

// The values of every linear-algebra function on mlx (MLX's linalg, nothing falls back)
// against the cpu backend's LAPACK on the same inputs: batches with broadcasting, vector
// right-hand sides, every mode and option (the triangle read holds the values, the other
// one junk), the decompositions through what is unique about them, and empty shapes.
TEST_F(MlxTest, LinalgMatchesTheCpuBackend) {
  REQUIRE_MLX();
  namespace la = tmath::linalg;
  std::mt19937 rng(7);
  std::normal_distribution<double> g;
  auto rnd = [&](const Shape& s, DType dt) {
    std::vector<tt::cplx> v(static_cast<size_t>(tt::numel(s)));
    for (auto& x : v) x = tt::is_cplx(dt) ? tt::cplx(g(rng), g(rng)) : tt::cplx(g(rng));
    return tt::make_c(v, s, dt);
  };
  auto mlx = [](const Tensor& t) { return t.to(kMlx); };
  auto close = [](const Tensor& got, const Tensor& want, DType dt, const std::string& what) {
    ASSERT_EQ(got.device(), kMlx) << what;
    ASSERT_EQ(got.shape(), want.shape()) << what;
    const double tol = dt == float64 ? 1e-10 : 2e-4;
    EXPECT_TRUE(tt::all_close_c(got, tt::read_c(want), {tol, tol})) << what << " " << dtype_name(dt);
  };
  set_fallback_policy(FallbackPolicy::Error);
  for (DType dt : {float32, float64}) {
    Tensor A = rnd({3, 4, 4}, dt) + eye(4, 4, 0, dt) * 3.0, B = rnd({4, 2}, dt), v = rnd({4}, dt);
    Tensor Ad = mlx(A), Bd = mlx(B), vd = mlx(v);
    close(la::solve(Ad, Bd), la::solve(A, B), dt, "solve");
    close(la::solve(Ad, vd), la::solve(A, v), dt, "solve vector");
    close(la::inv(Ad), la::inv(A), dt, "inv");
    close(la::det(Ad), la::det(A), dt, "det");
    close(la::slogdet(Ad).sign, la::slogdet(A).sign, dt, "slogdet sign");
    close(la::slogdet(Ad).logabsdet, la::slogdet(A).logabsdet, dt, "slogdet logabsdet");
    close(la::slogdet(mlx(zeros({2, 3, 3}, dt))).logabsdet, la::slogdet(zeros({2, 3, 3}, dt)).logabsdet, dt,
          "slogdet singular");
    // SPD in the lower triangle, junk above.
    Tensor S = matmul(A, swapaxes(A, -1, -2)) + eye(4, 4, 0, dt);
    Tensor Sj = tril(S) + triu(rnd({3, 4, 4}, dt), 1);
    close(la::cholesky(mlx(Sj)), la::cholesky(Sj), dt, "cholesky");
    close(la::cholesky(mlx(Sj), true), la::cholesky(Sj, true), dt, "cholesky upper");
    close(la::eigvalsh(mlx(Sj)), la::eigvalsh(Sj), dt, "eigvalsh");
    Tensor Su = triu(S) + tril(rnd({3, 4, 4}, dt), -1);
    auto eu = la::eigh(mlx(Su), 'U');
    close(eu.eigenvalues, la::eigh(Su, 'U').eigenvalues, dt, "eigh U");
    Tensor Vu = eu.eigenvectors.to(kCPU);
    close(mlx(matmul(S, Vu)), Vu * expand_dims(eu.eigenvalues.to(kCPU), -2), dt, "eigh vectors");
    for (Shape s : {Shape{5, 3}, Shape{3, 5}, Shape{2, 4, 4}}) {
      Tensor M = rnd(s, dt), Md = mlx(M);
      for (auto mode : {la::QrMode::Reduced, la::QrMode::Complete, la::QrMode::R}) {
        auto q = la::qr(Md, mode);
        auto qc = la::qr(M, mode);
        close(abs(q.R), abs(qc.R), dt, "qr |R|");
        if (mode == la::QrMode::R) continue;
        ASSERT_EQ(q.Q.shape(), qc.Q.shape());
        Tensor Q = q.Q.to(kCPU);
        const int64_t k = Q.shape(-1);
        Tensor QtQ = matmul(swapaxes(Q, -1, -2), Q);
        close(mlx(QtQ), broadcast_to(eye(k, k, 0, dt), QtQ.shape()), dt, "qr Q'Q");
        const int64_t r = std::min(q.R.shape(-2), Q.shape(-1));
        close(mlx(matmul(slice(Q, -1, 0, r), slice(q.R.to(kCPU), -2, 0, r))), M, dt, "qr QR");
      }
      for (bool full : {false, true}) {
        auto d = la::svd(Md, full);
        auto dc = la::svd(M, full);
        close(d.S, dc.S, dt, "svd S");
        ASSERT_EQ(d.U.shape(), dc.U.shape());
        ASSERT_EQ(d.Vh.shape(), dc.Vh.shape());
        const int64_t k = d.S.shape(-1);
        Tensor U = slice(d.U.to(kCPU), -1, 0, k), Vh = slice(d.Vh.to(kCPU), -2, 0, k);
        close(mlx(matmul(U * expand_dims(d.S.to(kCPU), -2), Vh)), M, dt, "svd USV'");
      }
      close(la::svdvals(Md), la::svdvals(M), dt, "svdvals");
      auto p = la::lu(Md);
      auto pc = la::lu(M);
      close(p.P, pc.P, dt, "lu P");
      close(p.L, pc.L, dt, "lu L");
      close(p.U, pc.U, dt, "lu U");
    }
    for (bool lower : {false, true})
      for (bool unit : {false, true}) {
        Tensor T = (lower ? tril(A) : triu(A)) + (lower ? triu(rnd({3, 4, 4}, dt), 1) : tril(rnd({3, 4, 4}, dt), -1));
        close(la::solve_triangular(mlx(T), Bd, lower, unit), la::solve_triangular(T, B, lower, unit), dt,
              "solve_triangular");
      }
    auto f = la::lu_factor(Ad);
    auto fc = la::lu_factor(A);
    close(f.LU, fc.LU, dt, "lu_factor LU");
    EXPECT_TRUE(tt::all_equal(f.pivots, tt::read(fc.pivots)));
    close(la::lu_solve(f.LU, f.pivots, Bd), la::lu_solve(fc.LU, fc.pivots, B), dt, "lu_solve");
    // Built on the kernels above.
    Tensor R = rnd({6, 4}, dt), Rd = mlx(R);
    close(la::pinv(Rd), la::pinv(R), dt, "pinv");
    close(la::matrix_rank(Rd), la::matrix_rank(R), dt, "matrix_rank");
    close(la::norm(Rd, 2.0), la::norm(R, 2.0), dt, "norm 2");
    close(la::cond(Ad), la::cond(A), dt, "cond");
    Tensor y = rnd({6}, dt);
    close(la::lstsq(Rd, mlx(y)).solution, la::lstsq(R, y).solution, dt, "lstsq");
    // Empty shapes.
    close(la::inv(mlx(zeros({0, 3, 3}, dt))), la::inv(zeros({0, 3, 3}, dt)), dt, "inv batch 0");
    close(la::solve(mlx(zeros({0, 0}, dt)), mlx(zeros({0, 2}, dt))), zeros({0, 2}, dt), dt, "solve 0x0");
    close(la::svd(mlx(zeros({3, 0}, dt))).U, la::svd(zeros({3, 0}, dt)).U, dt, "svd 3x0");
    close(la::det(mlx(zeros({2, 0, 0}, dt))), la::det(zeros({2, 0, 0}, dt)), dt, "det 0x0");
  }
  // eig (float32: MLX's eig computes in complex64) and the complex64 kernels.
  for (DType dt : {float32, complex64}) {
    Tensor A = rnd({2, 5, 5}, dt), Ad = mlx(A);
    auto e = la::eig(Ad);
    Tensor w = e.eigenvalues.to(kCPU), V = e.eigenvectors.to(kCPU);
    Tensor Ac = astype(A, complex64);
    close(mlx(matmul(Ac, V)), V * expand_dims(w, -2), complex64, "eig");
    close(mlx(sum(abs(V) * abs(V), {-2})), ones({2, 5}, float32), float32, "eig unit columns");
    close(la::eigvals(Ad), w, complex64, "eigvals");
    if (dt != complex64) continue;
    close(la::svdvals(Ad), la::svdvals(A), float32, "svdvals complex64");
    auto d = la::svd(Ad, false);
    close(mlx(matmul(d.U.to(kCPU) * astype(expand_dims(d.S.to(kCPU), -2), complex64), d.Vh.to(kCPU))), A,
          complex64, "svd complex64");
    Tensor H = matmul(A, conj(swapaxes(A, -1, -2)));
    close(la::eigvalsh(mlx(H)), la::eigvalsh(H), float32, "eigvalsh complex64");
  }
}
