// tmath::linalg: reconstruction identities checked with plain double loops in this
// file (float64/complex128, tight tolerances), small hand-checked systems, values
// computed with NumPy 2.4 (the call is named next to each literal), batching, every
// dtype, error cases, inputs left intact, and finite-difference checks of the
// gradient rules.
#include <cmath>
#include <complex>
#include <limits>
#include <random>
#include <string>
#include <tuple>

#include "core/primitives.h"
#include "core/tensor_impl.h"
#include "backend_util.h"
#include "test_util.h"
#include "tmath/linalg.h"

using namespace tmath;
using tt::cplx;
namespace la = tmath::linalg;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The 3x3 matrix most NumPy literals below were computed from.
const std::vector<double> kA = {4, -2, 1, 3, 6, -4, 2, 1, 8};

// Plain row-major reference helpers over complex doubles.
using Mat = std::vector<cplx>;
Mat mm(const Mat& a, const Mat& b, int64_t m, int64_t k, int64_t n) {
  Mat c(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      cplx s = 0;
      for (int64_t p = 0; p < k; ++p) s += a[i * k + p] * b[p * n + j];
      c[i * n + j] = s;
    }
  return c;
}
Mat ct(const Mat& a, int64_t m, int64_t n) {  // conjugate transpose of (m, n)
  Mat r(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) r[j * m + i] = std::conj(a[i * n + j]);
  return r;
}
Mat eye_ref(int64_t n) {
  Mat r(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) r[i * n + i] = 1.0;
  return r;
}
Mat sub(const Mat& v, int64_t off, int64_t len) {
  return Mat(v.begin() + off, v.begin() + off + len);
}
double max_abs_diff(const Mat& a, const Mat& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}
double max_abs(const Mat& a) {
  double d = 0;
  for (auto v : a) d = std::max(d, std::abs(v));
  return d;
}

// Random (batch..., m, n) tensor of dt with its exact values.
struct RM {
  Tensor t;
  Mat v;
};
RM rand_mat(std::mt19937& rng, const Shape& s, DType dt) {
  std::uniform_real_distribution<double> u(-1, 1);
  Mat v(static_cast<size_t>(tt::numel(s)));
  for (auto& x : v) x = tt::is_cplx(dt) ? cplx(u(rng), u(rng)) : cplx(tt::round_to(u(rng), dt));
  if (tt::is_cplx(dt))
    for (auto& x : v) x = tt::round_to(x, dt);
  return {tt::make_c(v, s, dt), v};
}
// Hermitian positive definite: B B^H + n I, per batch entry.
RM rand_spd(std::mt19937& rng, int64_t batch, int64_t n, DType dt) {
  Mat all;
  for (int64_t b = 0; b < batch; ++b) {
    auto r = rand_mat(rng, {n, n}, DType::Complex128);
    if (!tt::is_cplx(dt))
      for (auto& x : r.v) x = x.real();
    Mat p = mm(r.v, ct(r.v, n, n), n, n, n);
    for (int64_t i = 0; i < n; ++i) p[i * n + i] += static_cast<double>(n);
    for (auto& x : p) x = tt::round_to(x, dt);
    // Exact Hermitian symmetry after rounding.
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < i; ++j) p[j * n + i] = std::conj(p[i * n + j]);
    all.insert(all.end(), p.begin(), p.end());
  }
  Shape s = batch > 1 ? Shape{batch, n, n} : Shape{n, n};
  return {tt::make_c(all, s, dt), all};
}

double eps_for(DType dt) {
  switch (dt) {
    case DType::Float64:
    case DType::Complex128: return 2.2e-16;
    case DType::Float32:
    case DType::Complex64: return 1.2e-7;
    case DType::Float16: return 9.8e-4;
    default: return 7.8e-3;  // bfloat16
  }
}

const std::vector<DType> kFloatDtypes = {DType::Float16, DType::BFloat16, DType::Float32,
                                         DType::Float64, DType::Complex64, DType::Complex128};

// Every suite runs on the cpu backend and, with priority, on the torch one (tests/
// backend_util.h; skipped where the plugin was not built).
class LinalgSolve : public tt::OnBackend<> {};
class LinalgNumpy : public tt::OnBackend<> {};
class LinalgSmallOps : public tt::OnBackend<> {};
class LinalgBatch : public tt::OnBackend<> {};
class LinalgDtypes : public tt::OnBackend<> {};
class LinalgErrors : public tt::OnBackend<> {};
class LinalgLazy : public tt::OnBackend<> {};
class LinalgGradRules : public tt::OnBackend<> {};

}  // namespace

// ---- hand-checked and NumPy values -------------------------------------------------

TEST_P(LinalgSolve, HandCheckedSystem) {
  // 3*2 + 1*3 = 9, 1*2 + 2*3 = 8.
  Tensor a = tt::make({3, 1, 1, 2}, {2, 2}, float64);
  Tensor b = tt::make({9, 8}, float64);
  EXPECT_TRUE(tt::all_close(la::solve(a, b), {2, 3}, {1e-14, 1e-14}));
  // Two right-hand sides as columns: b = [[9, 5], [8, 5]] -> x = [[2, 1], [3, 2]].
  Tensor B = tt::make({9, 5, 8, 5}, {2, 2}, float64);
  EXPECT_TRUE(tt::all_close(la::solve(a, B), {2, 1, 3, 2}, {1e-14, 1e-14}));
}

TEST_P(LinalgNumpy, DetInvSlogdet) {
  Tensor A = tt::make(kA, {3, 3}, float64);
  // np.linalg.det(A)
  EXPECT_TRUE(tt::all_close(la::det(A), {262.99999999999983}, {1e-13, 0}));
  // np.linalg.slogdet(A)
  auto sl = la::slogdet(A);
  EXPECT_TRUE(tt::all_close(sl.sign, {1.0}, {0, 0}));
  EXPECT_TRUE(tt::all_close(sl.logabsdet, {5.572154032177764}, {1e-14, 0}));
  // np.linalg.inv(A).ravel()
  EXPECT_TRUE(tt::all_close(
      la::inv(A),
      {0.19771863117870722, 0.06463878326996197, 0.007604562737642592, -0.12167300380228137,
       0.11406844106463877, 0.07224334600760458, -0.034220532319391636, -0.030418250950570346,
       0.1140684410646388},
      {1e-13, 1e-15}));
}

TEST_P(LinalgNumpy, SvdvalsEigvalshNorms) {
  Tensor A = tt::make(kA, {3, 3}, float64);
  // np.linalg.svd(A, compute_uv=False)
  EXPECT_TRUE(tt::all_close(la::svdvals(A), {9.385549506960283, 6.763656077603526, 4.1429961279603535},
                            {1e-13, 0}));
  // np.linalg.eigvalsh(A + A.T)
  EXPECT_TRUE(tt::all_close(la::eigvalsh(A + transpose(A)),
                            {6.29509223613428, 11.598145882628176, 18.106761881237546}, {1e-13, 0}));
  // np.linalg.norm(A, ord) for ord in None, 'fro', 'nuc', 1, 2, inf, -1, -2, -inf
  EXPECT_NEAR(tt::read1(la::norm(A)), 12.288205727444508, 1e-13);
  EXPECT_NEAR(tt::read1(la::norm(A, "fro")), 12.288205727444508, 1e-13);
  EXPECT_NEAR(tt::read1(la::norm(A, "nuc")), 20.29220171252416, 1e-13);
  EXPECT_NEAR(tt::read1(la::norm(A, 1)), 13.0, 1e-13);
  EXPECT_NEAR(tt::read1(la::norm(A, 2)), 9.385549506960283, 1e-13);
  EXPECT_NEAR(tt::read1(la::norm(A, kInf)), 13.0, 1e-13);
  EXPECT_NEAR(tt::read1(la::norm(A, -1)), 9.0, 1e-13);
  EXPECT_NEAR(tt::read1(la::norm(A, -2)), 4.1429961279603535, 1e-13);
  EXPECT_NEAR(tt::read1(la::norm(A, -kInf)), 7.0, 1e-13);
  // np.linalg.cond(A, p) for p in None, 1, 2, inf, -1, -2, -inf, 'fro', 'nuc'
  EXPECT_NEAR(tt::read1(la::cond(A)), 2.2654014672180978, 1e-13);
  EXPECT_NEAR(tt::read1(la::cond(A, 1)), 4.596958174904943, 1e-13);
  EXPECT_NEAR(tt::read1(la::cond(A, 2)), 2.2654014672180978, 1e-13);
  EXPECT_NEAR(tt::read1(la::cond(A, kInf)), 4.003802281368822, 1e-13);
  EXPECT_NEAR(tt::read1(la::cond(A, -1)), 1.7452471482889738, 1e-13);
  EXPECT_NEAR(tt::read1(la::cond(A, -2)), 0.4414228623361824, 1e-13);
  EXPECT_NEAR(tt::read1(la::cond(A, -kInf)), 1.2509505703422055, 1e-13);
  EXPECT_NEAR(tt::read1(la::cond(A, "fro")), 3.716478651072783, 1e-13);
  EXPECT_NEAR(tt::read1(la::cond(A, "nuc")), 10.060204288224469, 1e-13);
}

TEST_P(LinalgNumpy, VectorNorms) {
  Tensor v = tt::make({3, -4, 0, 1}, float64);
  // np.linalg.norm(v, ord) for ord in None, 0, 1, 2, inf, -inf, 3, 0.5
  EXPECT_NEAR(tt::read1(la::norm(v)), 5.0990195135927845, 1e-14);
  EXPECT_NEAR(tt::read1(la::norm(v, 0)), 3.0, 0);
  EXPECT_NEAR(tt::read1(la::norm(v, 1)), 8.0, 1e-14);
  EXPECT_NEAR(tt::read1(la::norm(v, 2)), 5.0990195135927845, 1e-14);
  EXPECT_NEAR(tt::read1(la::norm(v, kInf)), 4.0, 0);
  EXPECT_NEAR(tt::read1(la::norm(v, -kInf)), 0.0, 0);
  EXPECT_NEAR(tt::read1(la::norm(v, 3)), 4.514357435474001, 1e-13);
  EXPECT_NEAR(tt::read1(la::norm(v, 0.5)), 22.392304845413257, 1e-12);
  // Axis and keepdims: rows of [[3, 4], [6, 8]] -> [5, 10], shape (2, 1).
  Tensor m = tt::make({3, 4, 6, 8}, {2, 2}, float64);
  Tensor r = la::norm(m, std::nullopt, Axes{1}, true);
  EXPECT_EQ(r.shape(), (Shape{2, 1}));
  EXPECT_TRUE(tt::all_close(r, {5, 10}, {1e-15, 0}));
}

TEST_P(LinalgNumpy, PinvLstsqRankPower) {
  Tensor B = tt::make({1, 2, 3, 4, 5, 6}, {3, 2}, float64);
  // np.linalg.pinv(B).ravel()
  EXPECT_TRUE(tt::all_close(la::pinv(B),
                            {-1.3333333333333337, -0.3333333333333329, 0.6666666666666666,
                             1.083333333333334, 0.33333333333333304, -0.4166666666666667},
                            {1e-13, 1e-14}));
  // np.linalg.lstsq(B, [1, 0, 2])
  auto r = la::lstsq(B, tt::make({1, 0, 2}, float64));
  EXPECT_TRUE(tt::all_close(r.solution, {0.0, 0.25}, {1e-13, 1e-14}));
  EXPECT_TRUE(tt::all_close(r.residuals, {1.4999999999999991}, {1e-13, 0}));
  EXPECT_EQ(r.rank, 2);
  EXPECT_TRUE(tt::all_close(r.singular_values, {9.525518091565107, 0.5143005806586441}, {1e-13, 0}));
  // np.linalg.matrix_rank([[1, 2, 3], [2, 4, 6], [1, 0, 1]]) == 2, matrix_rank(A) == 3
  EXPECT_EQ(la::matrix_rank(tt::make({1, 2, 3, 2, 4, 6, 1, 0, 1}, {3, 3}, float64)).item<int64_t>(), 2);
  EXPECT_EQ(la::matrix_rank(tt::make(kA, {3, 3}, float64)).item<int64_t>(), 3);
  EXPECT_EQ(la::matrix_rank(tt::make({0, 0}, float64)).item<int64_t>(), 0);
  // np.linalg.matrix_power(A, 3), np.linalg.matrix_power(A, -2)
  Tensor A = tt::make(kA, {3, 3}, float64);
  EXPECT_TRUE(tt::all_close(la::matrix_power(A, 3), {31, -118, 248, 60, 59, -506, 262, 68, 483},
                            {1e-14, 0}));
  EXPECT_TRUE(tt::all_close(
      la::matrix_power(A, -2),
      {0.030967630007662394, 0.019922219491390652, 0.007040726336942853, -0.04040827538348104,
       0.002949298095967844, 0.01555610172186963, -0.006968439618904423, -0.009151498503664937,
       0.010553860833610436},
      {1e-12, 1e-16}));
  EXPECT_TRUE(tt::all_close(la::matrix_power(A, 0), {1, 0, 0, 0, 1, 0, 0, 0, 1}, {0, 0}));
  EXPECT_TRUE(tt::all_close(la::matrix_power(A, 1), kA, {0, 0}));
}

TEST_P(LinalgNumpy, ComplexValues) {
  Tensor C = tt::make_c({{2, 1}, {1, -1}, {0, 0.5}, {3, 0}}, {2, 2}, complex128);
  // np.linalg.det(C)
  EXPECT_TRUE(tt::all_close_c(la::det(C), {{5.5, 2.5000000000000004}}, {1e-14, 1e-15}));
  // np.linalg.slogdet(C)
  auto sl = la::slogdet(C);
  EXPECT_TRUE(tt::all_close_c(sl.sign, {{0.9103664774626048, 0.41380294430118403}}, {1e-14, 1e-15}));
  EXPECT_TRUE(tt::all_close(sl.logabsdet, {1.798656130294223}, {1e-14, 0}));
  // np.linalg.svd(C, compute_uv=False)
  EXPECT_TRUE(tt::all_close(la::svdvals(C), {3.6820956604935153, 1.640783820914509}, {1e-14, 0}));
  // np.linalg.eigvalsh([[2, 1-1j], [1+1j, 3]])
  Tensor H = tt::make_c({{2, 0}, {1, -1}, {1, 1}, {3, 0}}, {2, 2}, complex128);
  EXPECT_TRUE(tt::all_close(la::eigvalsh(H), {1.0, 4.0}, {1e-14, 1e-14}));
}

TEST_P(LinalgSmallOps, TraceDiagonalOuterCrossVecdotMultiDot) {
  Tensor A = tt::make(kA, {3, 3}, float64);
  EXPECT_TRUE(tt::all_close(la::diagonal(A), {4, 6, 8}, {0, 0}));
  EXPECT_TRUE(tt::all_close(la::diagonal(A, 1), {-2, -4}, {0, 0}));
  EXPECT_TRUE(tt::all_close(la::diagonal(A, -2), {2}, {0, 0}));
  EXPECT_EQ(la::diagonal(A, 3).shape(), (Shape{0}));
  EXPECT_NEAR(tt::read1(la::trace(A)), 18, 0);
  EXPECT_NEAR(tt::read1(la::trace(A, -1)), 4, 0);
  Tensor R = tt::make({1, 2, 3, 4, 5, 6}, {2, 3}, float64);  // non-square
  EXPECT_TRUE(tt::all_close(la::diagonal(R), {1, 5}, {0, 0}));
  EXPECT_TRUE(tt::all_close(la::diagonal(R, 1), {2, 6}, {0, 0}));
  // Batched trace: (2, 3, 3) -> (2,)
  Tensor AA = stack({A, A * 2.0});
  EXPECT_TRUE(tt::all_close(la::trace(AA), {18, 36}, {0, 0}));
  EXPECT_TRUE(tt::all_close(la::outer(tt::make({1, 2}, float64), tt::make({3, 4, 5}, float64)),
                            {3, 4, 5, 6, 8, 10}, {0, 0}));
  // np.linalg.cross([1, 2, 3], [4, 5, 6]) = [-3, 6, -3]
  EXPECT_TRUE(tt::all_close(la::cross(tt::make({1, 2, 3}, float64), tt::make({4, 5, 6}, float64)),
                            {-3, 6, -3}, {0, 0}));
  // Along axis 0 with broadcasting: columns are vectors.
  Tensor X = tt::make({1, 0, 0, 1, 0, 0}, {3, 2}, float64);  // columns e1, e2
  Tensor Y = tt::make({0, 1, 0}, {3, 1}, float64);            // e2
  EXPECT_TRUE(tt::all_close(la::cross(X, Y, 0), {0, 0, 0, 0, 1, 0}, {0, 0}));  // e1 x e2 = e3, e2 x e2 = 0
  Tensor c1 = tt::make_c({{1, 1}, {2, 0}}, {2}, complex128), c2 = tt::make_c({{0, 1}, {1, 0}}, {2}, complex128);
  // conj(1+i) * i + 2 * 1 = (1 - i) i + 2 = 3 + i
  EXPECT_TRUE(tt::all_close_c(la::vecdot(c1, c2), {{3, 1}}, {1e-15, 0}));
  // Integer vecdot keeps the promoted dtype and wraps in it (np.vecdot): uint8
  // 200 * 3 + 100 * 4 = 1000 = 232 mod 256; int8 100 * 2 + 100 * 1 = 300 -> 44.
  Tensor u = la::vecdot(tt::make({200, 100}, uint8), tt::make({3, 4}, uint8));
  EXPECT_EQ(u.dtype(), uint8);
  EXPECT_TRUE(tt::all_equal(u, {232}));
  Tensor s8 = la::vecdot(tt::make({100, 100}, int8), tt::make({2, 1}, int8));
  EXPECT_EQ(s8.dtype(), int8);
  EXPECT_TRUE(tt::all_equal(s8, {44}));
  EXPECT_EQ(la::vecdot(tt::make({1, 0}, bool_), tt::make({1, 1}, bool_)).dtype(), bool_);
  Tensor M1 = tt::make({1, 2, 3, 4, 5, 6}, {2, 3}, float64), M2 = tt::make({1, 0, 0, 1, 1, 1}, {3, 2}, float64);
  Tensor v = tt::make({1, -1}, float64);
  // [1,-1] @ M1 @ M2 @ [1,-1]: [1,-1]@M1 = [-3,-3,-3]; @M2 = [-6,-6]; @[1,-1] = 0
  Tensor r = la::multi_dot({v, M1, M2, v});
  EXPECT_EQ(r.ndim(), 0);
  EXPECT_NEAR(tt::read1(r), 0, 0);
  // M1 @ M2 = [[4, 5], [10, 11]]; @ [1, 2] = [14, 32]
  EXPECT_TRUE(tt::all_close(la::multi_dot({M1, M2, tt::make({1, 2}, float64)}), {14, 32}, {0, 0}));
}

// ---- reconstruction identities (float64 and complex128) -----------------------------

class LinalgIdentity : public tt::OnBackend<std::tuple<DType, std::string>> {};

TEST_P(LinalgIdentity, SolveInvCholesky) {
  const DType dt = std::get<0>(GetParam());
  std::mt19937 rng(11);
  const int64_t n = 6, k = 3, batch = 4;
  auto A = rand_mat(rng, {batch, n, n}, dt);
  auto B = rand_mat(rng, {batch, n, k}, dt);
  Mat X = tt::read_c(la::solve(A.t, B.t));
  Mat Y = tt::read_c(la::inv(A.t));
  for (int64_t b = 0; b < batch; ++b) {
    Mat a = sub(A.v, b * n * n, n * n);
    EXPECT_LT(max_abs_diff(mm(a, sub(X, b * n * k, n * k), n, n, k), sub(B.v, b * n * k, n * k)), 1e-12);
    EXPECT_LT(max_abs_diff(mm(a, sub(Y, b * n * n, n * n), n, n, n), eye_ref(n)), 1e-12);
  }
  auto S = rand_spd(rng, batch, n, dt);
  Mat L = tt::read_c(la::cholesky(S.t));
  Mat U = tt::read_c(la::cholesky(S.t, true));
  for (int64_t b = 0; b < batch; ++b) {
    Mat l = sub(L, b * n * n, n * n), u = sub(U, b * n * n, n * n);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i + 1; j < n; ++j) {
        EXPECT_EQ(l[i * n + j], cplx(0)) << "L not lower triangular";
        EXPECT_EQ(u[j * n + i], cplx(0)) << "U not upper triangular";
      }
    EXPECT_LT(max_abs_diff(mm(l, ct(l, n, n), n, n, n), sub(S.v, b * n * n, n * n)), 1e-12);
    EXPECT_LT(max_abs_diff(mm(ct(u, n, n), u, n, n, n), sub(S.v, b * n * n, n * n)), 1e-12);
    EXPECT_LT(max_abs_diff(u, ct(l, n, n)), 1e-14);
  }
}

// Matrices from 128 x 128 on take the CPU backend's route without transposing copies
// (potrf of the upper triangle of the same memory read column-major); the smaller
// ones above take the general one. NumPy's semantics on both: only the lower
// triangle is read, U = L^H, failures name their batch entry, inputs stay intact.
TEST_P(LinalgIdentity, CholeskyLargeReadsLowerTriangleOnly) {
  const DType dt = std::get<0>(GetParam());
  std::mt19937 rng(13);
  const int64_t n = 130, batch = 2, nn = n * n;
  auto S = rand_spd(rng, batch, n, dt);
  Mat g = S.v;  // garbage in the strict upper triangles: NaN, then large values
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i + 1; j < n; ++j)
        g[b * nn + i * n + j] = b == 0 ? cplx(std::nan("")) : cplx(1e6, 1e6);
  Tensor G = tt::make_c(g, {batch, n, n}, dt);
  Mat L = tt::read_c(la::cholesky(G));
  const Mat Lclean = tt::read_c(la::cholesky(S.t));
  Mat gt(g.size());  // the same matrices stored transposed: a strided view below
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) gt[b * nn + j * n + i] = g[b * nn + i * n + j];
  const Mat Lstrided =
      tt::read_c(la::cholesky(swapaxes(tt::make_c(gt, {batch, n, n}, dt), -1, -2)));
  const Mat U = tt::read_c(la::cholesky(G, true));
  for (int64_t b = 0; b < batch; ++b) {
    const Mat l = sub(L, b * nn, nn);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i + 1; j < n; ++j) ASSERT_EQ(l[i * n + j], cplx(0)) << "L not lower";
    EXPECT_LT(max_abs_diff(mm(l, ct(l, n, n), n, n, n), sub(S.v, b * nn, nn)), 1e-10);
    EXPECT_LT(max_abs_diff(l, sub(Lclean, b * nn, nn)), 1e-12);
    EXPECT_LT(max_abs_diff(l, sub(Lstrided, b * nn, nn)), 1e-12);
    EXPECT_LT(max_abs_diff(sub(U, b * nn, nn), ct(l, n, n)), 1e-12);
  }
  // A NaN in a lower triangle, and an indefinite entry: errors naming batch entry 1.
  for (int bad = 0; bad < 2; ++bad) {
    Mat h = S.v;
    h[nn + 5 * n + 2] = bad == 0 ? cplx(std::nan("")) : cplx(0);
    if (bad == 1) h[nn + 7 * n + 7] = -1.0;
    Tensor H = tt::make_c(h, {batch, n, n}, dt);
    try {
      la::cholesky(H).eval();
      ADD_FAILURE() << "no LinAlgError for bad entry " << bad;
    } catch (const LinAlgError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("batch index (1,)"), std::string::npos) << msg;
      if (bad == 0) {
        EXPECT_NE(msg.find("NaN or Inf"), std::string::npos) << msg;
      }
    }
    const Mat after = tt::read_c(H);
    EXPECT_EQ(std::isnan(after[nn + 5 * n + 2].real()), bad == 0);
    EXPECT_EQ(max_abs_diff(sub(after, 0, nn), sub(S.v, 0, nn)), 0.0) << "input changed";
  }
}

TEST_P(LinalgIdentity, QrAllModes) {
  const DType dt = std::get<0>(GetParam());
  std::mt19937 rng(12);
  for (auto [m, n] : {std::pair<int64_t, int64_t>{5, 3}, {3, 5}, {4, 4}}) {
    const int64_t k = std::min(m, n), batch = 2;
    auto A = rand_mat(rng, {batch, m, n}, dt);
    auto red = la::qr(A.t);
    auto com = la::qr(A.t, la::QrMode::Complete);
    auto ronly = la::qr(A.t, la::QrMode::R);
    EXPECT_EQ(red.Q.shape(), (Shape{batch, m, k}));
    EXPECT_EQ(red.R.shape(), (Shape{batch, k, n}));
    EXPECT_EQ(com.Q.shape(), (Shape{batch, m, m}));
    EXPECT_EQ(com.R.shape(), (Shape{batch, m, n}));
    EXPECT_FALSE(ronly.Q.defined());
    Mat Q = tt::read_c(red.Q), R = tt::read_c(red.R), Qc = tt::read_c(com.Q), Rc = tt::read_c(com.R);
    EXPECT_LT(max_abs_diff(tt::read_c(ronly.R), R), 1e-15);
    for (int64_t b = 0; b < batch; ++b) {
      Mat a = sub(A.v, b * m * n, m * n), q = sub(Q, b * m * k, m * k), r = sub(R, b * k * n, k * n);
      Mat qc = sub(Qc, b * m * m, m * m), rc = sub(Rc, b * m * n, m * n);
      EXPECT_LT(max_abs_diff(mm(q, r, m, k, n), a), 1e-14) << m << "x" << n;
      EXPECT_LT(max_abs_diff(mm(ct(q, m, k), q, k, m, k), eye_ref(k)), 1e-14);
      EXPECT_LT(max_abs_diff(mm(qc, rc, m, m, n), a), 1e-14);
      EXPECT_LT(max_abs_diff(mm(ct(qc, m, m), qc, m, m, m), eye_ref(m)), 1e-14);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < std::min(i, n); ++j) EXPECT_EQ(rc[i * n + j], cplx(0));
    }
  }
}

TEST_P(LinalgIdentity, SvdFullAndReduced) {
  const DType dt = std::get<0>(GetParam());
  std::mt19937 rng(13);
  for (auto [m, n] : {std::pair<int64_t, int64_t>{5, 3}, {3, 5}, {4, 4}}) {
    const int64_t k = std::min(m, n), batch = 3;
    auto A = rand_mat(rng, {batch, m, n}, dt);
    for (bool full : {true, false}) {
      auto d = la::svd(A.t, full);
      const int64_t uc = full ? m : k, vr = full ? n : k;
      ASSERT_EQ(d.U.shape(), (Shape{batch, m, uc}));
      ASSERT_EQ(d.S.shape(), (Shape{batch, k}));
      ASSERT_EQ(d.Vh.shape(), (Shape{batch, vr, n}));
      EXPECT_EQ(d.S.dtype(), real_type(dt));
      Mat U = tt::read_c(d.U), S = tt::read_c(d.S), V = tt::read_c(d.Vh);
      Mat sv = tt::read_c(la::svdvals(A.t));
      EXPECT_LT(max_abs_diff(S, sv), 1e-13);
      for (int64_t b = 0; b < batch; ++b) {
        Mat u = sub(U, b * m * uc, m * uc), v = sub(V, b * vr * n, vr * n);
        Mat us(static_cast<size_t>(m * k));  // U[:, :k] diag(S)
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < k; ++j) {
            us[i * k + j] = u[i * uc + j] * S[b * k + j];
            if (j + 1 < k) {
              EXPECT_GE(S[b * k + j].real(), S[b * k + j + 1].real());
            }
          }
        Mat vk = sub(v, 0, k * n);  // first k rows of Vh
        EXPECT_LT(max_abs_diff(mm(us, vk, m, k, n), sub(A.v, b * m * n, m * n)), 1e-14);
        EXPECT_LT(max_abs_diff(mm(ct(u, m, uc), u, uc, m, uc), eye_ref(uc)), 1e-14);
        EXPECT_LT(max_abs_diff(mm(v, ct(v, vr, n), vr, n, vr), eye_ref(vr)), 1e-14);
      }
    }
  }
}

TEST_P(LinalgIdentity, EighAndSlogdet) {
  const DType dt = std::get<0>(GetParam());
  std::mt19937 rng(14);
  const int64_t n = 5, batch = 3;
  auto S = rand_spd(rng, batch, n, dt);
  for (char uplo : {'L', 'U'}) {
    auto e = la::eigh(S.t, uplo);
    Mat w = tt::read_c(e.eigenvalues), V = tt::read_c(e.eigenvectors);
    EXPECT_EQ(e.eigenvalues.dtype(), real_type(dt));
    for (int64_t b = 0; b < batch; ++b) {
      Mat a = sub(S.v, b * n * n, n * n), v = sub(V, b * n * n, n * n);
      Mat vw(v);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) vw[i * n + j] *= w[b * n + j];
      EXPECT_LT(max_abs_diff(mm(a, v, n, n, n), vw), 1e-12);
      EXPECT_LT(max_abs_diff(mm(ct(v, n, n), v, n, n, n), eye_ref(n)), 1e-14);
      for (int64_t j = 0; j + 1 < n; ++j) EXPECT_LE(w[b * n + j].real(), w[b * n + j + 1].real());
    }
    EXPECT_LT(max_abs_diff(tt::read_c(la::eigvalsh(S.t, uplo)), w), 1e-13);
  }
  // slogdet and det agree with each other and with the product of eigenvalues.
  Mat w = tt::read_c(la::eigvalsh(S.t));
  Mat d = tt::read_c(la::det(S.t));
  auto sl = la::slogdet(S.t);
  Mat sg = tt::read_c(sl.sign), ld = tt::read_c(sl.logabsdet);
  for (int64_t b = 0; b < batch; ++b) {
    double lp = 0;
    for (int64_t j = 0; j < n; ++j) lp += std::log(w[b * n + j].real());
    EXPECT_NEAR(ld[b].real(), lp, 1e-12);
    EXPECT_LT(std::abs(sg[b] - cplx(1)), 1e-14);
    EXPECT_LT(std::abs(d[b] - std::exp(lp)), 1e-12 * std::exp(lp));
  }
}

TEST_P(LinalgIdentity, SolveTriangularPinvLstsq) {
  const DType dt = std::get<0>(GetParam());
  std::mt19937 rng(15);
  const int64_t n = 5, k = 2;
  auto A = rand_mat(rng, {n, n}, dt);
  for (int64_t i = 0; i < n; ++i) A.v[i * n + i] += 3.0;  // well conditioned
  Tensor At = tt::make_c(A.v, {n, n}, dt);
  auto B = rand_mat(rng, {n, k}, dt);
  for (bool lower : {false, true})
    for (bool unit : {false, true}) {
      Mat T = A.v;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
          if (lower ? j > i : j < i) T[i * n + j] = 0;
          if (unit && i == j) T[i * n + j] = 1;
        }
      Mat X = tt::read_c(la::solve_triangular(At, B.t, lower, unit));
      EXPECT_LT(max_abs_diff(mm(T, X, n, n, k), B.v), 1e-13) << lower << unit;
    }
  // pinv of a tall matrix: pinv(A) A = I.
  auto R = rand_mat(rng, {6, 3}, dt);
  Mat P = tt::read_c(la::pinv(R.t));
  EXPECT_LT(max_abs_diff(mm(P, R.v, 3, 6, 3), eye_ref(3)), 1e-13);
  // lstsq: normal equations A^H (A x - b) = 0.
  auto b = rand_mat(rng, {6, 2}, dt);
  auto ls = la::lstsq(R.t, b.t);
  Mat x = tt::read_c(ls.solution);
  Mat r = mm(R.v, x, 6, 3, 2);
  for (size_t i = 0; i < r.size(); ++i) r[i] -= b.v[i];
  EXPECT_LT(max_abs(mm(ct(R.v, 6, 3), r, 3, 6, 2)), 1e-13);
  EXPECT_EQ(ls.rank, 3);
  Mat res = tt::read_c(ls.residuals);
  ASSERT_EQ(res.size(), 2u);
  for (int64_t j = 0; j < 2; ++j) {
    double s = 0;
    for (int64_t i = 0; i < 6; ++i) s += std::norm(r[i * 2 + j]);
    EXPECT_NEAR(res[j].real(), s, 1e-13);
  }
}

INSTANTIATE_TEST_SUITE_P(Linalg, LinalgIdentity,
                         ::testing::Combine(::testing::Values(DType::Float64, DType::Complex128),
                                            ::testing::ValuesIn(tt::cpu_linalg_backends())),
                         [](const auto& info) {
                           return std::string(tt::name_of(std::get<0>(info.param))) + "_" +
                                  std::get<1>(info.param);
                         });

// ---- batching, strides, dtypes --------------------------------------------------------

TEST_P(LinalgBatch, BroadcastSolveAndStridedInputs) {
  std::mt19937 rng(21);
  // a: (2, 1, 4, 4), b: (3, 4, 2) -> x: (2, 3, 4, 2); b 1-d -> (2, 1, 4).
  auto A = rand_mat(rng, {2, 1, 4, 4}, float64);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 4; ++i) A.v[b * 16 + i * 5] += 4.0;
  Tensor At = tt::make_c(A.v, {2, 1, 4, 4}, float64);
  auto B = rand_mat(rng, {3, 4, 2}, float64);
  Tensor X = la::solve(At, B.t);
  ASSERT_EQ(X.shape(), (Shape{2, 3, 4, 2}));
  Mat x = tt::read_c(X);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      EXPECT_LT(max_abs_diff(mm(sub(A.v, i * 16, 16), sub(x, (i * 3 + j) * 8, 8), 4, 4, 2), sub(B.v, j * 8, 8)), 1e-13);
  Tensor xv = la::solve(At, tt::make({1, 2, 3, 4}, float64));
  EXPECT_EQ(xv.shape(), (Shape{2, 1, 4}));
  // Transposed (non-contiguous) input gives the inverse of the transpose.
  Tensor AtT = swapaxes(At, -1, -2);
  Mat inv_t = tt::read_c(la::inv(AtT));
  Mat inv = tt::read_c(la::inv(At));
  for (int64_t b = 0; b < 2; ++b)
    EXPECT_LT(max_abs_diff(sub(inv_t, b * 16, 16), ct(sub(inv, b * 16, 16), 4, 4)), 1e-14);
  // A large batch of small matrices (parallel path) matches the one-by-one results.
  auto many = rand_mat(rng, {64, 3, 3}, float64);
  Mat sv = tt::read_c(la::svdvals(many.t));
  for (int64_t b : {0, 17, 63}) {
    Tensor one = tt::make_c(sub(many.v, b * 9, 9), {3, 3}, float64);
    EXPECT_LT(max_abs_diff(tt::read_c(la::svdvals(one)), sub(sv, b * 3, 3)), 1e-14);
  }
}

TEST_P(LinalgDtypes, EveryFloatDtypeRunsAndKeepsItsDtype) {
  // Low precision is computed in float32 and returned in the input dtype; the residual
  // of the float32-recomputed result is bounded by the input's precision.
  std::mt19937 rng(31);
  const int64_t n = 4;
  for (DType dt : kFloatDtypes) {
    SCOPED_TRACE(tt::name_of(dt));
    auto S = rand_spd(rng, 2, n, dt);
    auto A = rand_mat(rng, {2, n, n}, dt);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t i = 0; i < n; ++i) A.v[b * n * n + i * (n + 1)] += 3.0;
    A.t = tt::make_c(A.v, {2, n, n}, dt);
    const double tol = 20 * n * eps_for(dt);
    Tensor Ai = la::inv(A.t);
    EXPECT_EQ(Ai.dtype(), dt);
    Mat ai = tt::read_c(Ai);
    for (int64_t b = 0; b < 2; ++b)
      EXPECT_LT(max_abs_diff(mm(sub(A.v, b * 16, 16), sub(ai, b * 16, 16), n, n, n), eye_ref(n)), tol);
    auto d = la::svd(A.t, false);
    EXPECT_EQ(d.U.dtype(), dt);
    EXPECT_EQ(d.S.dtype(), tt::is_cplx(dt) ? real_type(dt) : dt);
    auto e = la::eigh(S.t);
    EXPECT_EQ(e.eigenvectors.dtype(), dt);
    Tensor L = la::cholesky(S.t);
    EXPECT_EQ(L.dtype(), dt);
    Mat l = tt::read_c(L);
    for (int64_t b = 0; b < 2; ++b)
      EXPECT_LT(max_abs_diff(mm(sub(l, b * 16, 16), ct(sub(l, b * 16, 16), n, n), n, n, n), sub(S.v, b * 16, 16)),
                tol * 3 * n);
    Tensor x = la::solve(A.t, tt::make_c(Mat(static_cast<size_t>(n), 1.0), {n}, dt));
    EXPECT_EQ(x.dtype(), dt);
    auto q = la::qr(A.t);
    EXPECT_EQ(q.R.dtype(), dt);
    EXPECT_EQ(la::det(A.t).dtype(), dt);
    EXPECT_EQ(la::norm(A.t).dtype(), tt::is_cplx(dt) ? real_type(dt) : dt);
    EXPECT_NO_THROW(tt::read_c(la::pinv(A.t)));
    // x is (n,): one right-hand side for both matrices of the batch.
    EXPECT_EQ(x.shape(), (Shape{2, n}));
    EXPECT_NO_THROW(tt::read_c(la::solve_triangular(A.t, expand_dims(x, -1))));
  }
  // Integers compute in float32.
  Tensor I = tt::make({2, 1, 1, 3}, {2, 2}, int32);
  Tensor d = la::det(I);
  EXPECT_EQ(d.dtype(), float32);
  EXPECT_NEAR(tt::read1(d), 5.0, 1e-6);
}

// ---- errors -----------------------------------------------------------------------------

TEST_P(LinalgErrors, SingularNonSquareNonFiniteBadArgs) {
  // Singular: the second matrix of the batch.
  Tensor a = tt::make({1, 0, 0, 1, 1, 2, 2, 4}, {2, 2, 2}, float64);
  try {
    la::inv(a).eval();
    ADD_FAILURE() << "no LinAlgError";
  } catch (const LinAlgError& e) {
    std::string msg = e.what();
    EXPECT_TRUE(tt::starts_with_op(msg, "inv"));
    EXPECT_NE(msg.find("singular"), std::string::npos) << msg;
    EXPECT_NE(msg.find("batch index (1,)"), std::string::npos) << msg;
  }
  TT_EXPECT_THROW_OP(la::solve(a, tt::make({1, 1}, float64)).eval(), LinAlgError, "solve");
  TT_EXPECT_THROW_OP(la::solve_triangular(tt::make({1, 1, 0, 0}, {2, 2}, float64), tt::make({1, 1}, float64)).eval(),
                     LinAlgError, "solve_triangular");
  // det/slogdet of a singular matrix: 0 and (0, -inf), as NumPy.
  Tensor s = tt::make({1, 2, 2, 4}, {2, 2}, float64);
  EXPECT_EQ(tt::read1(la::det(s)), 0.0);
  EXPECT_EQ(tt::read1(la::slogdet(s).sign), 0.0);
  EXPECT_EQ(tt::read1(la::slogdet(s).logabsdet), -kInf);
  // Not positive definite.
  TT_EXPECT_THROW_OP(la::cholesky(tt::make({1, 2, 2, 1}, {2, 2}, float64)).eval(), LinAlgError, "cholesky");
  // Non-square.
  Tensor r = zeros({2, 3}, float64);
  TT_EXPECT_THROW_OP(la::inv(r), ShapeError, "inv");
  TT_EXPECT_THROW_OP(la::det(r), ShapeError, "det");
  TT_EXPECT_THROW_OP(la::cholesky(r), ShapeError, "cholesky");
  TT_EXPECT_THROW_OP(la::eigh(r), ShapeError, "eigh");
  TT_EXPECT_THROW_OP(la::solve(r, zeros({2}, float64)), ShapeError, "solve");
  TT_EXPECT_THROW_OP(la::svd(zeros({3}, float64)), ShapeError, "svd");
  TT_EXPECT_THROW_OP(la::solve(eye(3, 3, 0, float64), zeros({2}, float64)), ShapeError, "solve");
  TT_EXPECT_THROW_OP(la::matrix_power(r, 2), ShapeError, "matrix_power");
  // Bad axes and orders.
  TT_EXPECT_THROW_OP(la::norm(r, std::nullopt, Axes{0, 5}), ShapeError, "norm");
  TT_EXPECT_THROW_OP(la::norm(r, std::nullopt, Axes{1, 1}), ShapeError, "norm");
  TT_EXPECT_THROW_OP(la::norm(r, 3, Axes{0, 1}), ValueError, "norm");
  TT_EXPECT_THROW_OP(la::norm(zeros({3}), "nuc", Axes{0}), ValueError, "norm");
  TT_EXPECT_THROW_OP(la::cross(zeros({2}), zeros({2})), ShapeError, "cross");
  TT_EXPECT_THROW_OP(la::vecdot(zeros({2}), zeros({3})), ShapeError, "vecdot");
  TT_EXPECT_THROW_OP(la::eigh(eye(2), 'X'), ValueError, "eigh");
  TT_EXPECT_THROW_OP(la::multi_dot({zeros({2, 2})}), ValueError, "multi_dot");
  // Non-finite input: LinAlgError naming the op and the batch index.
  const double nan = std::nan("");
  Tensor bad = tt::make({1, 0, 0, 1, 1, nan, 0, 1}, {2, 2, 2}, float64);
  for (auto fn : std::vector<std::function<Tensor()>>{
           [&] { return la::svdvals(bad); }, [&] { return la::inv(bad); },
           [&] { return la::det(bad); }, [&] { return la::qr(bad).R; },
           [&] { return la::eigvalsh(tmath::transpose(bad, {0, 2, 1})); },
           [&] { return la::cholesky(tmath::transpose(bad, {0, 2, 1})); }}) {
    try {
      fn().eval();
      ADD_FAILURE() << "no LinAlgError for NaN input";
    } catch (const LinAlgError& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find("NaN or Inf"), std::string::npos) << msg;
      EXPECT_NE(msg.find("batch index (1,)"), std::string::npos) << msg;
    }
  }
}

TEST_P(LinalgErrors, InputsStayIntact) {
  Tensor a = tt::make(kA, {3, 3}, float64);
  Tensor b = tt::make({1, 2, 3}, float64);
  a.eval();
  b.eval();
  (void)tt::read_c(la::solve(a, b));
  (void)tt::read_c(la::inv(a));
  (void)tt::read_c(la::svd(a).U);
  (void)tt::read_c(la::qr(a).Q);
  (void)tt::read_c(la::eigh(a).eigenvectors);
  (void)tt::read_c(la::slogdet(a).sign);
  EXPECT_TRUE(tt::all_close(a, kA, {0, 0}));
  EXPECT_TRUE(tt::all_close(b, {1, 2, 3}, {0, 0}));
  Tensor s = tt::make({1, 2, 2, 1}, {2, 2}, float64);
  EXPECT_THROW(la::cholesky(s).eval(), LinAlgError);
  EXPECT_TRUE(tt::all_close(s, {1, 2, 2, 1}, {0, 0}));
}

TEST_P(LinalgLazy, DecompositionsAreMultiOutputGraphNodes) {
  EagerScope lazy(false);
  Tensor a = tt::make(kA, {3, 3}, float64);
  auto d = la::svd(a, false);
  EXPECT_FALSE(d.U.is_evaluated());
  EXPECT_EQ(d.U.impl()->prim, d.S.impl()->prim);
  EXPECT_EQ(d.S.impl()->prim->name(), "svd");
  reset_dispatch_stats();
  // Only S is used: U and Vh are computed into temporaries by the same kernel call.
  Tensor s = d.S;
  d = {};
  s.eval();
  EXPECT_EQ(dispatch_stats().kernels_launched, 1u);
  EXPECT_EQ(dispatch_stats().nodes_evaluated, 1u);
  EXPECT_TRUE(tt::all_close(s, {9.385549506960283, 6.763656077603526, 4.1429961279603535}, {1e-13, 0}));
  EXPECT_TRUE(get_backend("cpu")->supports(OpCode::Svd, float64));
  EXPECT_FALSE(get_backend("cpu")->supports(OpCode::Svd, float16));
}

// ---- gradient rules (finite differences, float64) ----------------------------------------

namespace {
// The primitive node behind a pending linalg result and its inputs.
struct Node {
  std::shared_ptr<Primitive> prim;
  std::vector<Tensor> inputs;
};
Node node_of(const Tensor& t) { return {t.impl()->prim, t.impl()->inputs}; }

// <ct, f(x + h d) - f(x - h d)> / 2h versus <vjp(ct), d> for input `arg`.
void check_vjp(const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& f,
               const std::vector<Tensor>& primals, int arg, const std::vector<int>& outputs,
               double tol, uint32_t seed) {
  EagerScope lazy(false);
  std::mt19937 rng(seed);
  auto outs = f(primals);
  Node nd = node_of(outs[outputs[0]]);
  ASSERT_TRUE(nd.prim) << "result is not a pending primitive";
  // Cotangents for the requested outputs, undefined for the others.
  const size_t nout = outs.size();
  std::vector<Tensor> cts(nout);
  std::vector<Tensor> evaluated(outs.begin(), outs.end());
  for (int o : outputs) cts[o] = rand_mat(rng, outs[o].shape(), outs[o].dtype()).t;
  eval(evaluated);
  std::vector<Tensor> g = nd.prim->vjp(nd.inputs, cts, {arg}, evaluated);
  Tensor d = rand_mat(rng, primals[arg].shape(), primals[arg].dtype()).t;
  const double h = 1e-6;
  auto plus = primals, minus = primals;
  plus[arg] = primals[arg] + d * h;
  minus[arg] = primals[arg] - d * h;
  auto fp = f(plus), fm = f(minus);
  double fd = 0;
  for (int o : outputs) {
    Mat a = tt::read_c(fp[o]), b = tt::read_c(fm[o]), c = tt::read_c(cts[o]);
    for (size_t i = 0; i < a.size(); ++i) fd += (c[i] * (a[i] - b[i])).real() / (2 * h);
  }
  Mat gv = tt::read_c(g[0]), dv = tt::read_c(d);
  double an = 0;
  for (size_t i = 0; i < gv.size(); ++i) an += (gv[i] * dv[i]).real();
  EXPECT_NEAR(an, fd, tol * std::max(1.0, std::abs(fd)));
}
// Forward mode: jvp(d) versus (f(x + h d) - f(x - h d)) / 2h for output `out`.
void check_jvp(const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& f,
               const std::vector<Tensor>& primals, int arg, int out, double tol, uint32_t seed) {
  EagerScope lazy(false);
  std::mt19937 rng(seed);
  auto outs = f(primals);
  Node nd = node_of(outs[out]);
  ASSERT_TRUE(nd.prim);
  Tensor d = rand_mat(rng, nd.inputs[arg].shape(), nd.inputs[arg].dtype()).t;
  std::vector<Tensor> t = nd.prim->jvp(nd.inputs, {d}, {arg});
  const double h = 1e-6;
  auto plus = primals, minus = primals;
  plus[arg] = primals[arg] + d * h;
  minus[arg] = primals[arg] - d * h;
  Mat a = tt::read_c(f(plus)[out]), b = tt::read_c(f(minus)[out]), j = tt::read_c(t[out]);
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_NEAR(j[i].real(), ((a[i] - b[i]) / (2 * h)).real(), tol * std::max(1.0, std::abs(j[i])));
}
}  // namespace

TEST_P(LinalgGradRules, SolveInvDetSlogdet) {
  std::mt19937 rng(41);
  auto A = rand_mat(rng, {2, 3, 3}, float64);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 3; ++i) A.v[b * 9 + i * 4] += 2.0;
  Tensor a = tt::make_c(A.v, {2, 3, 3}, float64);
  Tensor bb = rand_mat(rng, {2, 3, 2}, float64).t;
  auto fsolve = [](const std::vector<Tensor>& p) { return std::vector<Tensor>{la::solve(p[0], p[1])}; };
  check_vjp(fsolve, {a, bb}, 0, {0}, 1e-6, 1);
  check_vjp(fsolve, {a, bb}, 1, {0}, 1e-6, 2);
  check_jvp(fsolve, {a, bb}, 0, 0, 1e-6, 3);
  check_jvp(fsolve, {a, bb}, 1, 0, 1e-6, 4);
  auto finv = [](const std::vector<Tensor>& p) { return std::vector<Tensor>{la::inv(p[0])}; };
  check_vjp(finv, {a}, 0, {0}, 1e-6, 5);
  check_jvp(finv, {a}, 0, 0, 1e-6, 6);
  auto fdet = [](const std::vector<Tensor>& p) { return std::vector<Tensor>{la::det(p[0])}; };
  check_vjp(fdet, {a}, 0, {0}, 1e-6, 7);
  check_jvp(fdet, {a}, 0, 0, 1e-6, 8);
  auto fsl = [](const std::vector<Tensor>& p) {
    auto r = la::slogdet(p[0]);
    return std::vector<Tensor>{r.sign, r.logabsdet};
  };
  check_vjp(fsl, {a}, 0, {1}, 1e-6, 9);
  check_jvp(fsl, {a}, 0, 1, 1e-6, 10);
  auto ftri = [](const std::vector<Tensor>& p) {
    return std::vector<Tensor>{la::solve_triangular(p[0], p[1], true)};
  };
  check_vjp(ftri, {a, bb}, 0, {0}, 1e-6, 11);
  check_vjp(ftri, {a, bb}, 1, {0}, 1e-6, 12);
  check_jvp(ftri, {a, bb}, 0, 0, 1e-6, 13);
}

TEST_P(LinalgGradRules, CholeskyEighSvdvals) {
  std::mt19937 rng(42);
  auto S = rand_spd(rng, 2, 4, float64);
  // Perturbations are arbitrary (not symmetric): the rules are exact for the triangle read.
  for (bool upper : {false, true}) {
    auto fch = [upper](const std::vector<Tensor>& p) {
      return std::vector<Tensor>{la::cholesky(p[0], upper)};
    };
    check_vjp(fch, {S.t}, 0, {0}, 1e-6, 20 + upper);
    check_jvp(fch, {S.t}, 0, 0, 1e-6, 22 + upper);
  }
  for (char uplo : {'L', 'U'}) {
    auto fe = [uplo](const std::vector<Tensor>& p) {
      auto e = la::eigh(p[0], uplo);
      return std::vector<Tensor>{e.eigenvalues, e.eigenvectors};
    };
    check_vjp(fe, {S.t}, 0, {0}, 1e-6, 30);
    check_vjp(fe, {S.t}, 0, {0, 1}, 1e-5, 31);
    check_jvp(fe, {S.t}, 0, 0, 1e-6, 32);
    check_jvp(fe, {S.t}, 0, 1, 1e-5, 33);
    auto fv = [uplo](const std::vector<Tensor>& p) { return std::vector<Tensor>{la::eigvalsh(p[0], uplo)}; };
    check_vjp(fv, {S.t}, 0, {0}, 1e-6, 34);
  }
  Tensor a = rand_mat(rng, {2, 4, 3}, float64).t;
  auto fs = [](const std::vector<Tensor>& p) { return std::vector<Tensor>{la::svdvals(p[0])}; };
  check_vjp(fs, {a}, 0, {0}, 1e-6, 40);
  check_jvp(fs, {a}, 0, 0, 1e-6, 41);
  auto fsv = [](const std::vector<Tensor>& p) {
    auto d = la::svd(p[0], false);
    return std::vector<Tensor>{d.U, d.S, d.Vh};
  };
  check_vjp(fsv, {a}, 0, {1}, 1e-6, 42);
}

// The rules of qr, svd's vectors, lu and complex input exist (checked against finite
// differences in tests/autodiff/linalg_grad_test.cpp); the one gradient that is not
// defined says so, naming the op.
TEST_P(LinalgGradRules, QrCompleteTallSaysUnsupported) {
  EagerScope lazy(false);
  std::mt19937 rng(43);
  Tensor a = rand_mat(rng, {4, 3}, float64).t;
  auto q = la::qr(a, la::QrMode::Complete);
  Node nd = node_of(q.Q);
  try {
    nd.prim->vjp(nd.inputs, {ones({4, 4}, float64), ones({4, 3}, float64)}, {0}, {q.Q, q.R});
    ADD_FAILURE() << "qr vjp did not throw";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("[qr]"), std::string::npos) << e.what();
  }
  auto r = la::qr(a);
  Node rn = node_of(r.Q);
  auto g = rn.prim->vjp(rn.inputs, {ones({4, 3}, float64), ones({3, 3}, float64)}, {0}, {r.Q, r.R});
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].shape(), Shape({4, 3}));
}

INSTANTIATE_TEST_SUITE_P(Backends, LinalgSolve, ::testing::ValuesIn(tt::cpu_linalg_backends()),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Backends, LinalgNumpy, ::testing::ValuesIn(tt::cpu_linalg_backends()),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Backends, LinalgSmallOps, ::testing::ValuesIn(tt::cpu_linalg_backends()),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Backends, LinalgBatch, ::testing::ValuesIn(tt::cpu_linalg_backends()),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Backends, LinalgDtypes, ::testing::ValuesIn(tt::cpu_linalg_backends()),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Backends, LinalgErrors, ::testing::ValuesIn(tt::cpu_linalg_backends()),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Backends, LinalgLazy, ::testing::ValuesIn(tt::cpu_linalg_backends()),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Backends, LinalgGradRules, ::testing::ValuesIn(tt::cpu_linalg_backends()),
                         [](const auto& info) { return info.param; });
