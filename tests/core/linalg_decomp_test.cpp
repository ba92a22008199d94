// tmath::linalg lu, lu_factor/lu_solve, eig/eigvals and matrix_exp: SciPy/NumPy values
// (the call is named next to each literal), reconstruction identities checked with
// plain double loops, batching, every float dtype and the error cases.
#include <cmath>
#include <complex>
#include <limits>
#include <random>

#include "backend_util.h"
#include "test_util.h"
#include "tmath/linalg.h"

using namespace tmath;
using tt::cplx;
namespace la = tmath::linalg;

namespace {

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
double max_abs_diff(const Mat& a, const Mat& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}
Mat sub(const Mat& v, int64_t off, int64_t len) {
  return Mat(v.begin() + off, v.begin() + off + len);
}
Mat rand_vals(std::mt19937& rng, int64_t count, bool complex) {
  std::uniform_real_distribution<double> u(-1, 1);
  Mat v(static_cast<size_t>(count));
  for (auto& x : v) x = complex ? cplx(u(rng), u(rng)) : cplx(u(rng));
  return v;
}
double eps_for(DType dt) {
  switch (dt) {
    case DType::Float64:
    case DType::Complex128: return 2.2e-16;
    case DType::Float32:
    case DType::Complex64: return 1.2e-7;
    case DType::Float16: return 9.8e-4;
    default: return 7.8e-3;
  }
}
const std::vector<DType> kFloatDtypes = {DType::Float16, DType::BFloat16, DType::Float32,
                                         DType::Float64, DType::Complex64, DType::Complex128};

// Every suite runs on the cpu backend and, with priority, on the torch one (tests/
// backend_util.h; skipped where the plugin was not built).
class LinalgLu : public tt::OnBackend<> {};
class LinalgEig : public tt::OnBackend<> {};
class LinalgMatrixExp : public tt::OnBackend<> {};

}  // namespace

TEST_P(LinalgLu, ScipyValues) {
  Tensor a = tt::make({1, 2, 3, 4, 5, 6, 7, 8, 10}, {3, 3}, float64);
  // scipy.linalg.lu_factor([[1,2,3],[4,5,6],[7,8,10]])
  auto f = la::lu_factor(a);
  EXPECT_TRUE(tt::all_close(f.LU,
                            {7, 8, 10, 0.14285714285714285, 0.8571428571428572, 1.5714285714285716,
                             0.5714285714285714, 0.5000000000000002, -0.5},
                            {1e-14, 1e-14}));
  EXPECT_EQ(f.pivots.dtype(), int32);
  EXPECT_TRUE(tt::all_equal(f.pivots, {2, 2, 2}));
  // scipy.linalg.lu(...)[0]
  auto d = la::lu(a);
  EXPECT_TRUE(tt::all_equal(d.P, {0, 1, 0, 0, 0, 1, 1, 0, 0}));
  // scipy.linalg.lu_solve(lu_factor(a), [1, 2, 3])
  Tensor x = la::lu_solve(f.LU, f.pivots, tt::make({1, 2, 3}, float64));
  EXPECT_EQ(x.shape(), (Shape{3}));
  EXPECT_TRUE(tt::all_close(x, {-1.0 / 3, 2.0 / 3, 0}, {1e-14, 1e-14}));
  // Rectangular: scipy.linalg.lu_factor([[1,2],[3,4],[5,6]]) -> [[5,6],[.2,.8],[.6,.5]], [2,2]
  auto r = la::lu_factor(tt::make({1, 2, 3, 4, 5, 6}, {3, 2}, float64));
  EXPECT_TRUE(tt::all_close(r.LU, {5, 6, 0.2, 0.8, 0.6, 0.5}, {1e-14, 1e-15}));
  EXPECT_TRUE(tt::all_equal(r.pivots, {2, 2}));
}

TEST_P(LinalgLu, ReconstructsEveryShapeAndDtype) {
  std::mt19937 rng(5);
  for (DType dt : kFloatDtypes) {
    for (auto [m, n] : std::vector<std::pair<int64_t, int64_t>>{{4, 4}, {5, 3}, {3, 5}, {1, 1}}) {
      SCOPED_TRACE(std::string(tt::name_of(dt)) + " " + std::to_string(m) + "x" + std::to_string(n));
      const int64_t k = std::min(m, n), batch = 3;
      Mat v = rand_vals(rng, batch * m * n, tt::is_cplx(dt));
      for (auto& x : v) x = tt::round_to(x, dt);
      Tensor a = tt::make_c(v, {batch, m, n}, dt);
      auto d = la::lu(a);
      EXPECT_EQ(d.P.dtype(), dt);
      EXPECT_EQ(d.L.shape(), (Shape{batch, m, k}));
      EXPECT_EQ(d.U.shape(), (Shape{batch, k, n}));
      Mat P = tt::read_c(d.P), L = tt::read_c(d.L), U = tt::read_c(d.U);
      for (int64_t b = 0; b < batch; ++b) {
        Mat plu = mm(sub(P, b * m * m, m * m), mm(sub(L, b * m * k, m * k), sub(U, b * k * n, k * n), m, k, n),
                     m, m, n);
        EXPECT_LT(max_abs_diff(plu, sub(v, b * m * n, m * n)), 30 * eps_for(dt));
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < k; ++j) {
            const cplx l = L[b * m * k + i * k + j];
            if (j == i) {
              EXPECT_EQ(l, cplx(1));
            } else if (j > i) {
              EXPECT_EQ(l, cplx(0));
            }
            // Partial pivoting bounds the multipliers by 1 (complex: LAPACK pivots on
            // |re| + |im|, which bounds |l| by sqrt(2)).
            EXPECT_LE(std::abs(l), (tt::is_cplx(dt) ? std::sqrt(2.0) : 1.0) + 1e-6);
          }
      }
      if (m == n) {
        auto f = la::lu_factor(a);
        Mat bv = rand_vals(rng, m, tt::is_cplx(dt));
        for (auto& x : bv) x = tt::round_to(x, dt);
        Tensor x = la::lu_solve(f.LU, f.pivots, tt::make_c(bv, {m}, dt));
        EXPECT_EQ(x.dtype(), dt);
        EXPECT_EQ(x.shape(), (Shape{batch, m}));
        Mat xv = tt::read_c(x);
        for (int64_t b = 0; b < batch; ++b) {
          Mat r = mm(sub(v, b * m * m, m * m), sub(xv, b * m, m), m, m, 1);
          // The residual of a computed solution, relative to |A| |x| (backward error).
          double xn = 0;
          for (auto e : sub(xv, b * m, m)) xn = std::max(xn, std::abs(e));
          EXPECT_LT(max_abs_diff(r, bv), 60 * m * eps_for(dt) * std::max(1.0, xn));
        }
      }
    }
  }
}

TEST_P(LinalgLu, SingularFactorsButDoesNotSolve) {
  Tensor a = tt::make({1, 2, 2, 4}, {2, 2}, float64);
  auto f = la::lu_factor(a);  // a valid factorisation with U[1,1] = 0
  EXPECT_TRUE(tt::all_close(f.LU, {2, 4, 0.5, 0}, {0, 0}));
  try {
    la::lu_solve(f.LU, f.pivots, tt::make({1, 1}, float64)).eval();
    ADD_FAILURE() << "no error";
  } catch (const LinAlgError& e) {
    EXPECT_TRUE(tt::starts_with_op(e.what(), "lu_solve"));
    EXPECT_NE(std::string(e.what()).find("singular"), std::string::npos) << e.what();
  }
  // Bad pivots, non-square, NaN, float pivots.
  EXPECT_THROW(la::lu_solve(tt::make({1, 0, 0, 1}, {2, 2}, float64), tt::make({5, 1}, {2}, int32),
                            tt::make({1, 1}, float64))
                   .eval(),
               LinAlgError);
  EXPECT_THROW(la::lu_solve(f.LU, tt::make({0, 1}, float64), tt::make({1, 1}, float64)), DTypeError);
  EXPECT_THROW(la::lu_solve(f.LU, tt::make({0, 1, 2}, {3}, int32), tt::make({1, 1}, float64)),
               ShapeError);
  try {
    la::lu(tt::make({1, 2, 3, 4, 1, 2, 3, NAN}, {2, 2, 2}, float64)).U.eval();
    ADD_FAILURE() << "no error";
  } catch (const LinAlgError& e) {
    EXPECT_NE(std::string(e.what()).find("batch index (1,)"), std::string::npos) << e.what();
  }
}

TEST_P(LinalgEig, NumpyValuesAndComplexResults) {
  // numpy.linalg.eigvals([[4,-2,1],[3,6,-4],[2,1,8]])
  Tensor a = tt::make({4, -2, 1, 3, 6, -4, 2, 1, 8}, {3, 3}, float64);
  Tensor w = la::eigvals(a);
  EXPECT_EQ(w.dtype(), complex128);
  Mat wv = tt::read_c(w);
  Mat expect = {cplx(4.8100303, 2.87194772), cplx(4.8100303, -2.87194772), cplx(8.37993941, 0)};
  // LAPACK's order is not sorted: match each expected value to the nearest.
  for (auto e : expect) {
    double best = 1e9;
    for (auto g : wv) best = std::min(best, std::abs(g - e));
    EXPECT_LT(best, 1e-7);
  }
  // A rotation block: eigenvalues +-i, then 2.
  Tensor r = tt::make({0, -1, 0, 1, 0, 0, 0, 0, 2}, {3, 3}, float32);
  EXPECT_EQ(la::eigvals(r).dtype(), complex64);
  Mat rv = tt::read_c(la::eigvals(r));
  EXPECT_LT(std::abs(rv[0] - cplx(0, 1)), 1e-6);
  EXPECT_LT(std::abs(rv[1] - cplx(0, -1)), 1e-6);
  EXPECT_LT(std::abs(rv[2] - cplx(2, 0)), 1e-6);
}

TEST_P(LinalgEig, ResidualEveryDtypeBatched) {
  std::mt19937 rng(9);
  const int64_t n = 6, batch = 4;
  for (DType dt : kFloatDtypes) {
    SCOPED_TRACE(tt::name_of(dt));
    Mat v = rand_vals(rng, batch * n * n, tt::is_cplx(dt));
    for (auto& x : v) x = tt::round_to(x, dt);
    auto e = la::eig(tt::make_c(v, {batch, n, n}, dt));
    const DType ct = dt == DType::Float64 || dt == DType::Complex128 ? complex128 : complex64;
    EXPECT_EQ(e.eigenvalues.dtype(), ct);
    EXPECT_EQ(e.eigenvectors.dtype(), ct);
    Mat w = tt::read_c(e.eigenvalues), V = tt::read_c(e.eigenvectors);
    const double tol = 50 * n * (dt == DType::Float64 || dt == DType::Complex128 ? 2.2e-16 : 1.2e-7);
    for (int64_t b = 0; b < batch; ++b) {
      Mat Vb = sub(V, b * n * n, n * n);
      Mat AV = mm(sub(v, b * n * n, n * n), Vb, n, n, n);
      for (int64_t j = 0; j < n; ++j) {
        double col = 0;
        for (int64_t i = 0; i < n; ++i) {
          col += std::norm(Vb[i * n + j]);
          EXPECT_LT(std::abs(AV[i * n + j] - Vb[i * n + j] * w[b * n + j]), tol);
        }
        EXPECT_NEAR(col, 1.0, tol);
      }
    }
    // eigvals agrees with eig.
    Mat w2 = tt::read_c(la::eigvals(tt::make_c(v, {batch, n, n}, dt)));
    EXPECT_LT(max_abs_diff(w, w2), tol);
  }
}

TEST_P(LinalgEig, Errors) {
  EXPECT_THROW(la::eig(tt::make({1, 2, 3, 4, 5, 6}, {2, 3}, float64)), ShapeError);
  try {
    la::eigvals(tt::make({1, 2, 3, 4, 1, INFINITY, 3, 4}, {2, 2, 2}, float32)).eval();
    ADD_FAILURE() << "no error";
  } catch (const LinAlgError& e) {
    EXPECT_TRUE(tt::starts_with_op(e.what(), "eig"));
    EXPECT_NE(std::string(e.what()).find("batch index (1,)"), std::string::npos) << e.what();
  }
}

TEST_P(LinalgMatrixExp, ScipyValuesAndIdentities) {
  // scipy.linalg.expm([[4,-2,1],[3,6,-4],[2,1,8]] / 4)
  Tensor a = tt::make({1, -0.5, 0.25, 0.75, 1.5, -1, 0.5, 0.25, 2}, {3, 3}, float64);
  const std::vector<double> e = {2.5658935148268807, -1.4917466716573942, 2.194758223906715,
                                 1.3406912672473172, 3.3676950016852185,  -5.053328897711955,
                                 2.595658967335884,  0.8148678543086025,  7.205255301659404};
  EXPECT_TRUE(tt::all_close(la::matrix_exp(a), e, {1e-13, 1e-13}));
  EXPECT_TRUE(tt::all_close(la::matrix_exp(astype(a, float32)), e, {2e-6, 2e-6}));
  // exp([[0, t], [-t, 0]]) = [[cos t, sin t], [-sin t, cos t]], with a norm that needs
  // scaling (t = 6, 40); a batch whose matrices need different scalings; zeros -> I.
  std::vector<double> vals, want;
  for (double t : {6.0, 40.0, 0.001, 0.0}) {
    vals.insert(vals.end(), {0, t, -t, 0});
    want.insert(want.end(), {std::cos(t), std::sin(t), -std::sin(t), std::cos(t)});
  }
  Tensor r = la::matrix_exp(tt::make(vals, {4, 2, 2}, float64));
  EXPECT_TRUE(tt::all_close(r, want, {1e-12, 1e-12}));
  // Complex: exp(i t I) = e^{it} I.
  Tensor c = la::matrix_exp(tt::make_c({cplx(0, 2), 0, 0, cplx(0, 2)}, {2, 2}, complex128));
  EXPECT_TRUE(tt::all_close_c(c, {std::exp(cplx(0, 2)), 0, 0, std::exp(cplx(0, 2))},
                              {1e-14, 1e-14}));
  // exp(A) exp(-A) = I for a random batch, every dtype keeps its dtype.
  std::mt19937 rng(3);
  for (DType dt : kFloatDtypes) {
    SCOPED_TRACE(tt::name_of(dt));
    Mat v = rand_vals(rng, 2 * 5 * 5, tt::is_cplx(dt));
    for (auto& x : v) x = tt::round_to(x * 0.3, dt);
    Tensor A = tt::make_c(v, {2, 5, 5}, dt);
    Tensor E = la::matrix_exp(A);
    EXPECT_EQ(E.dtype(), dt);
    Mat p = tt::read_c(matmul(astype(E, complex128), astype(la::matrix_exp(-A), complex128)));
    Mat I(p.size(), 0.0);
    for (int b = 0; b < 2; ++b)
      for (int i = 0; i < 5; ++i) I[b * 25 + i * 6] = 1.0;
    EXPECT_LT(max_abs_diff(p, I), 100 * eps_for(dt));
  }
  EXPECT_THROW(la::matrix_exp(tt::make({1, 2, 3, 4, 5, 6}, {2, 3}, float64)), ShapeError);
  try {
    la::matrix_exp(tt::make({1, 2, 3, 4, 1, 2, 3, NAN}, {2, 2, 2}, float64)).eval();
    ADD_FAILURE() << "no error";
  } catch (const LinAlgError& e) {
    EXPECT_TRUE(tt::starts_with_op(e.what(), "matrix_exp"));
    EXPECT_NE(std::string(e.what()).find("batch index (1,)"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, LinalgLu, ::testing::ValuesIn(tt::cpu_linalg_backends()),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Backends, LinalgEig, ::testing::ValuesIn(tt::cpu_linalg_backends()),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Backends, LinalgMatrixExp, ::testing::ValuesIn(tt::cpu_linalg_backends()),
                         [](const auto& info) { return info.param; });
