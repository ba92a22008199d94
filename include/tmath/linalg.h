// Linear algebra (NumPy's numpy.linalg names and semantics). Every function is
// batched over leading axes: a: (..., m, n). Decompositions are lazy graph nodes
// run by the backend's LAPACK-class kernels (LAPACKE on the CPU).
//
// Dtypes: float32, float64, complex64, complex128 run natively; float16 and
// bfloat16 are computed in float32 and returned in the input dtype; integer and
// bool inputs are computed and returned in float32 (the engine's default float).
// Errors: LinAlgError for a singular matrix (solve, inv, solve_triangular), a matrix
// that is not positive definite (cholesky), no convergence, or NaN/Inf input to a
// decomposition -- the message names the op and the failing batch index;
// ShapeError for non-square input where a square matrix is required or bad axes.
// Inputs are never modified.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "tmath/ops.h"
#include "tmath/tensor.h"

namespace tmath::linalg {

// x with a x = b. a: (..., n, n); b: (n,) or (..., n, k) (batch axes broadcast).
TMATH_API Tensor solve(const Tensor& a, const Tensor& b);
// a^-1. a: (..., n, n).
TMATH_API Tensor inv(const Tensor& a);
// Determinant, (...). Singular matrices give 0 (no error).
TMATH_API Tensor det(const Tensor& a);
struct SlogdetResult {
  Tensor sign;       // (...), a's dtype: +-1 (unit modulus for complex), 0 if singular
  Tensor logabsdet;  // (...), real: log|det a|, -inf if singular
};
TMATH_API SlogdetResult slogdet(const Tensor& a);
// Cholesky factor of a Hermitian positive-definite a (its lower triangle is read):
// L with a = L L^H, or U = L^H with a = U^H U when upper.
TMATH_API Tensor cholesky(const Tensor& a, bool upper = false);

enum class QrMode { Reduced, Complete, R };
struct QRResult {
  Tensor Q;  // (..., m, k) reduced, (..., m, m) complete, undefined for R
  Tensor R;  // (..., k, n) reduced and R, (..., m, n) complete; k = min(m, n)
};
TMATH_API QRResult qr(const Tensor& a, QrMode mode = QrMode::Reduced);

struct SVDResult {
  Tensor U;   // (..., m, m) full, (..., m, k) reduced
  Tensor S;   // (..., k) real, descending
  Tensor Vh;  // (..., n, n) full, (..., k, n) reduced
};
// a = U diag(S) Vh. full_matrices as NumPy (default true).
TMATH_API SVDResult svd(const Tensor& a, bool full_matrices = true);
// Singular values only, (..., k) descending.
TMATH_API Tensor svdvals(const Tensor& a);

struct EighResult {
  Tensor eigenvalues;   // (..., n) real, ascending
  Tensor eigenvectors;  // (..., n, n), column i belongs to eigenvalue i
};
// Hermitian eigendecomposition reading the lower (uplo 'L') or upper ('U') triangle.
TMATH_API EighResult eigh(const Tensor& a, char uplo = 'L');
TMATH_API Tensor eigvalsh(const Tensor& a, char uplo = 'L');

struct LUResult {
  Tensor P;  // (..., m, m) permutation matrix
  Tensor L;  // (..., m, k) unit lower triangular (trapezoidal), k = min(m, n)
  Tensor U;  // (..., k, n) upper triangular (trapezoidal)
};
// a = P L U with partial pivoting (scipy.linalg.lu). a: (..., m, n); a singular a is fine.
TMATH_API LUResult lu(const Tensor& a);
struct LUFactorResult {
  Tensor LU;      // (..., m, n): L below the diagonal (unit diagonal not stored), U on and above
  Tensor pivots;  // (..., k) int32, 0-based: row i was interchanged with row pivots[i]
};
// LAPACK getrf's packed factorisation (scipy.linalg.lu_factor).
TMATH_API LUFactorResult lu_factor(const Tensor& a);
// x with a x = b from lu_factor(a): LU (..., n, n), pivots (..., n); b: (n,) or (..., n, k)
// (batch axes broadcast). LinAlgError for an exact zero on U's diagonal or bad pivots.
TMATH_API Tensor lu_solve(const Tensor& LU, const Tensor& pivots, const Tensor& b);

struct EigResult {
  Tensor eigenvalues;   // (..., n) complex, in LAPACK's order (conjugate pairs adjacent)
  Tensor eigenvectors;  // (..., n, n) complex, unit 2-norm columns: a v_i = w_i v_i
};
// Eigendecomposition of a general square matrix (geev). Results are always complex:
// complex64 for float16/bfloat16/float32/complex64 input, complex128 for float64/complex128.
TMATH_API EigResult eig(const Tensor& a);
TMATH_API Tensor eigvals(const Tensor& a);
// Matrix exponential by scaling and squaring with a Pade approximant (degree 13 for
// float64/complex128, 7 for float32, Higham 2005), the scaling chosen per matrix.
// a: (..., n, n). LinAlgError for NaN/Inf input.
TMATH_API Tensor matrix_exp(const Tensor& a);

// Number of singular values > tol (default: S.max * max(m, n) * eps; rtol instead
// scales S.max). int64, (...). 1-d input: 1 unless all zero.
TMATH_API Tensor matrix_rank(const Tensor& a, std::optional<double> tol = std::nullopt,
                             bool hermitian = false, std::optional<double> rtol = std::nullopt);
// Moore-Penrose pseudo-inverse through the SVD; singular values <= rcond * S.max are
// treated as zero (NumPy's default rcond 1e-15). (..., m, n) -> (..., n, m).
TMATH_API Tensor pinv(const Tensor& a, double rcond = 1e-15, bool hermitian = false);

struct LstsqResult {
  Tensor solution;         // (n,) or (n, k)
  Tensor residuals;        // (k,) or (1,) squared 2-norms of b - a x; (0,) if rank < n or m <= n
  int64_t rank = 0;
  Tensor singular_values;  // (min(m, n),)
};
// Least squares of a: (m, n), b: (m,) or (m, k) through the SVD; rcond default
// eps * max(m, n). Evaluates the rank (the residuals' shape depends on it).
TMATH_API LstsqResult lstsq(const Tensor& a, const Tensor& b,
                            std::optional<double> rcond = std::nullopt);

// Vector or matrix norm as numpy.linalg.norm. ord: nullopt (2-norm of the flattened
// input, Frobenius for matrices), any p for vectors (inf, -inf, 0 = count of nonzeros),
// 1, -1, 2, -2, inf, -inf for matrices (axis pair or 2-d input). Real result.
TMATH_API Tensor norm(const Tensor& x, std::optional<double> ord = std::nullopt,
                      std::optional<Axes> axis = std::nullopt, bool keepdims = false);
namespace internal {
TMATH_API Tensor norm_named(const Tensor& x, std::string_view ord, std::optional<Axes> axis,
                            bool keepdims);
TMATH_API Tensor cond_named(const Tensor& a, std::string_view p);
template <class S>
concept NormName = std::is_convertible_v<const S&, std::string_view>;
}  // namespace internal
// Matrix norms by name: "fro" (Frobenius) or "nuc" (nuclear, sum of singular values).
// (A template so that norm(x, 0) picks the numeric order, not a null string.)
template <internal::NormName S>
Tensor norm(const Tensor& x, const S& ord, std::optional<Axes> axis = std::nullopt,
            bool keepdims = false) {
  return internal::norm_named(x, std::string_view(ord), std::move(axis), keepdims);
}
// Condition number: nullopt or 2 -> S.max / S.min; -2 -> S.min / S.max; other orders
// norm(a, p) * norm(inv(a), p) (square a only).
TMATH_API Tensor cond(const Tensor& a, std::optional<double> p = std::nullopt);
template <internal::NormName S>
Tensor cond(const Tensor& a, const S& p) {
  return internal::cond_named(a, std::string_view(p));
}

// x with a x = b for triangular a: (..., n, n) (only that triangle is read; with
// unit_diagonal the diagonal is taken as ones); b: (n,) or (..., n, k). As
// scipy.linalg.solve_triangular (default upper, lower=false).
TMATH_API Tensor solve_triangular(const Tensor& a, const Tensor& b, bool lower = false,
                                  bool unit_diagonal = false);
// a^n for integer n by repeated squaring; n < 0 inverts first; n = 0 gives identities.
TMATH_API Tensor matrix_power(const Tensor& a, int64_t n);
// Sum of the diagonal of the last two axes, (...).
TMATH_API Tensor trace(const Tensor& x, int64_t offset = 0);
// Diagonal of the last two axes (a view), (..., len).
TMATH_API Tensor diagonal(const Tensor& x, int64_t offset = 0);
// Outer product of two 1-d tensors.
TMATH_API Tensor outer(const Tensor& x1, const Tensor& x2);
// Cross product of 3-element vectors along axis (broadcasting the other axes).
TMATH_API Tensor cross(const Tensor& x1, const Tensor& x2, int axis = -1);
// sum(conj(x1) * x2) along axis (broadcasting), in the promoted dtype of x1 and x2.
TMATH_API Tensor vecdot(const Tensor& x1, const Tensor& x2, int axis = -1);
// Chained matmul in the cheapest association order; the first and last may be 1-d.
TMATH_API Tensor multi_dot(const std::vector<Tensor>& arrays);

}  // namespace tmath::linalg
