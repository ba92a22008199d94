// tmath.linalg: NumPy/Array API linear algebra (numpy.linalg names; lu, lu_factor,
// lu_solve, solve_triangular and matrix_exp as in scipy.linalg). Multi-result
// functions return tuples.
#include <cmath>

#include "common.h"

namespace tmpy {

using namespace nb::literals;
namespace la = tmath::linalg;

namespace {

Tensor T(nb::handle h, const char* op) { return to_tensor(h, op); }

std::optional<tmath::Axes> axes_or_none(nb::handle h, const char* op) {
  if (h.is_none()) return std::nullopt;
  if (PyLong_Check(h.ptr())) return tmath::Axes{nb::cast<int>(h)};
  return to_axes(h, op);
}

// norm/cond orders: None, a number (inf included) or "fro"/"nuc".
Tensor norm_any(const Tensor& x, nb::handle ord, std::optional<tmath::Axes> axis, bool keepdims) {
  if (ord.is_none()) return la::norm(x, std::nullopt, std::move(axis), keepdims);
  if (nb::isinstance<nb::str>(ord))
    return la::norm(x, nb::cast<std::string>(ord), std::move(axis), keepdims);
  return la::norm(x, nb::cast<double>(ord), std::move(axis), keepdims);
}

la::QrMode qr_mode(const std::string& m) {
  if (m == "reduced") return la::QrMode::Reduced;
  if (m == "complete") return la::QrMode::Complete;
  if (m == "r") return la::QrMode::R;
  throw_value_error("[qr] mode must be 'reduced', 'complete' or 'r', got '" + m + "'");
}

char uplo_char(const std::string& u, const char* op) {
  if (u.size() != 1) throw_value_error(std::string("[") + op + "] UPLO must be 'L' or 'U'");
  return u[0];
}

}  // namespace

void bind_linalg(nb::module_& parent) {
  nb::module_ m = parent.def_submodule(
      "linalg", "Linear algebra (numpy.linalg names; lu*, solve_triangular, matrix_exp as scipy).");
  m.def("solve", [](nb::handle a, nb::handle b) {
    Tensor A = T(a, "solve"), B = T(b, "solve");
    return nogil([&] { return la::solve(A, B); });
  }, "a"_a, "b"_a);
  m.def("inv", [](nb::handle a) {
    Tensor A = T(a, "inv");
    return nogil([&] { return la::inv(A); });
  }, "a"_a);
  m.def("det", [](nb::handle a) {
    Tensor A = T(a, "det");
    return nogil([&] { return la::det(A); });
  }, "a"_a);
  m.def("slogdet", [](nb::handle a) {
    Tensor A = T(a, "slogdet");
    auto r = nogil([&] { return la::slogdet(A); });
    return nb::make_tuple(r.sign, r.logabsdet);
  }, "a"_a);
  m.def("cholesky", [](nb::handle a, bool upper) {
    Tensor A = T(a, "cholesky");
    return nogil([&] { return la::cholesky(A, upper); });
  }, "a"_a, nb::kw_only(), "upper"_a = false);
  m.def("qr", [](nb::handle a, const std::string& mode) -> nb::object {
    Tensor A = T(a, "qr");
    la::QrMode md = qr_mode(mode);
    auto r = nogil([&] { return la::qr(A, md); });
    if (md == la::QrMode::R) return nb::cast(r.R);
    return nb::make_tuple(r.Q, r.R);
  }, "a"_a, "mode"_a = "reduced");
  m.def("svd", [](nb::handle a, bool full_matrices, bool compute_uv) -> nb::object {
    Tensor A = T(a, "svd");
    if (!compute_uv) return nb::cast(nogil([&] { return la::svdvals(A); }));
    auto r = nogil([&] { return la::svd(A, full_matrices); });
    return nb::make_tuple(r.U, r.S, r.Vh);
  }, "a"_a, "full_matrices"_a = true, "compute_uv"_a = true);
  m.def("svdvals", [](nb::handle a) {
    Tensor A = T(a, "svdvals");
    return nogil([&] { return la::svdvals(A); });
  }, "x"_a);
  m.def("eigh", [](nb::handle a, const std::string& UPLO) {
    Tensor A = T(a, "eigh");
    char u = uplo_char(UPLO, "eigh");
    auto r = nogil([&] { return la::eigh(A, u); });
    return nb::make_tuple(r.eigenvalues, r.eigenvectors);
  }, "a"_a, "UPLO"_a = "L");
  m.def("eigvalsh", [](nb::handle a, const std::string& UPLO) {
    Tensor A = T(a, "eigvalsh");
    char u = uplo_char(UPLO, "eigvalsh");
    return nogil([&] { return la::eigvalsh(A, u); });
  }, "a"_a, "UPLO"_a = "L");
  m.def("eig", [](nb::handle a) {
    Tensor A = T(a, "eig");
    auto r = nogil([&] { return la::eig(A); });
    return nb::make_tuple(r.eigenvalues, r.eigenvectors);
  }, "a"_a);
  m.def("eigvals", [](nb::handle a) {
    Tensor A = T(a, "eigvals");
    return nogil([&] { return la::eigvals(A); });
  }, "a"_a);
  m.def("lu", [](nb::handle a) {
    Tensor A = T(a, "lu");
    auto r = nogil([&] { return la::lu(A); });
    return nb::make_tuple(r.P, r.L, r.U);
  }, "a"_a);
  m.def("lu_factor", [](nb::handle a) {
    Tensor A = T(a, "lu_factor");
    auto r = nogil([&] { return la::lu_factor(A); });
    return nb::make_tuple(r.LU, r.pivots);
  }, "a"_a);
  m.def("lu_solve", [](nb::handle lu_and_piv, nb::handle b) {
    nb::tuple t = nb::cast<nb::tuple>(lu_and_piv);
    if (t.size() != 2) throw_value_error("[lu_solve] expected (lu, piv) as returned by lu_factor");
    Tensor LU = T(t[0], "lu_solve"), P = T(t[1], "lu_solve"), B = T(b, "lu_solve");
    return nogil([&] { return la::lu_solve(LU, P, B); });
  }, "lu_and_piv"_a, "b"_a);
  m.def("matrix_exp", [](nb::handle a) {
    Tensor A = T(a, "matrix_exp");
    return nogil([&] { return la::matrix_exp(A); });
  }, "a"_a);
  m.def("solve_triangular", [](nb::handle a, nb::handle b, bool lower, bool unit_diagonal) {
    Tensor A = T(a, "solve_triangular"), B = T(b, "solve_triangular");
    return nogil([&] { return la::solve_triangular(A, B, lower, unit_diagonal); });
  }, "a"_a, "b"_a, "lower"_a = false, "unit_diagonal"_a = false);
  m.def("lstsq", [](nb::handle a, nb::handle b, std::optional<double> rcond) {
    Tensor A = T(a, "lstsq"), B = T(b, "lstsq");
    auto r = nogil([&] { return la::lstsq(A, B, rcond); });
    return nb::make_tuple(r.solution, r.residuals, r.rank, r.singular_values);
  }, "a"_a, "b"_a, "rcond"_a = nb::none());
  // rtol (Array API, keyword-only) is NumPy's rcond under its Array API name.
  m.def("pinv", [](nb::handle a, std::optional<double> rcond, bool hermitian, std::optional<double> rtol) {
    Tensor A = T(a, "pinv");
    if (rcond && rtol) throw_value_error("[pinv] give rcond or rtol, not both");
    double cut = rtol ? *rtol : rcond.value_or(1e-15);
    return nogil([&] { return la::pinv(A, cut, hermitian); });
  }, "a"_a, "rcond"_a = nb::none(), "hermitian"_a = false, nb::kw_only(), "rtol"_a = nb::none());
  m.def("matrix_rank", [](nb::handle a, std::optional<double> tol, bool hermitian,
                          std::optional<double> rtol) {
    Tensor A = T(a, "matrix_rank");
    return nogil([&] { return la::matrix_rank(A, tol, hermitian, rtol); });
  }, "A"_a, "tol"_a = nb::none(), "hermitian"_a = false, nb::kw_only(), "rtol"_a = nb::none());
  m.def("norm", [](nb::handle x, nb::handle ord, nb::handle axis, bool keepdims) {
    Tensor X = T(x, "norm");
    auto ax = axes_or_none(axis, "norm");
    return norm_any(X, ord, ax, keepdims);
  }, "x"_a, "ord"_a = nb::none(), "axis"_a = nb::none(), "keepdims"_a = false);
  m.def("vector_norm", [](nb::handle x, nb::handle axis, bool keepdims, double ord) {
    Tensor X = T(x, "vector_norm");
    auto ax = axes_or_none(axis, "vector_norm");
    if (!ax) {  // all axes: the norm of the flattened input
      Tensor flat = tmath::reshape(X, {-1});
      Tensor r = la::norm(flat, ord, tmath::Axes{0}, false);
      if (keepdims) r = tmath::reshape(r, Shape(static_cast<size_t>(X.ndim()), 1));
      return r;
    }
    if (ax->size() != 1) throw_value_error("[vector_norm] axis must be None or one axis");
    return la::norm(X, ord, ax, keepdims);
  }, "x"_a, nb::kw_only(), "axis"_a = nb::none(), "keepdims"_a = false, "ord"_a = 2.0);
  m.def("matrix_norm", [](nb::handle x, bool keepdims, nb::handle ord) {
    Tensor X = T(x, "matrix_norm");
    return norm_any(X, ord, tmath::Axes{-2, -1}, keepdims);
  }, "x"_a, nb::kw_only(), "keepdims"_a = false, "ord"_a = "fro");
  m.def("cond", [](nb::handle x, nb::handle p) {
    Tensor X = T(x, "cond");
    if (p.is_none()) return la::cond(X);
    if (nb::isinstance<nb::str>(p)) return la::cond(X, nb::cast<std::string>(p));
    return la::cond(X, nb::cast<double>(p));
  }, "x"_a, "p"_a = nb::none());
  m.def("matrix_power", [](nb::handle a, int64_t n) {
    return la::matrix_power(T(a, "matrix_power"), n);
  }, "a"_a, "n"_a);
  m.def("trace", [](nb::handle x, int64_t offset, nb::handle dtype) {
    Tensor X = T(x, "trace");
    const auto dt = to_dtype(dtype, "trace");
    if (dt && *dt != X.dtype()) X = tmath::astype(X, *dt);
    Tensor r = la::trace(X, offset);  // int64/uint64 for bool and ints, as sum
    return dt && r.dtype() != *dt ? tmath::astype(r, *dt) : r;
  }, "x"_a, nb::kw_only(), "offset"_a = 0, "dtype"_a = nb::none());
  m.def("diagonal", [](nb::handle x, int64_t offset) {
    return la::diagonal(T(x, "diagonal"), offset);
  }, "x"_a, nb::kw_only(), "offset"_a = 0);
  m.def("outer", [](nb::handle a, nb::handle b) {
    return la::outer(T(a, "outer"), T(b, "outer"));
  }, "x1"_a, "x2"_a);
  m.def("cross", [](nb::handle a, nb::handle b, int axis) {
    return la::cross(T(a, "cross"), T(b, "cross"), axis);
  }, "x1"_a, "x2"_a, nb::kw_only(), "axis"_a = -1);
  m.def("vecdot", [](nb::handle a, nb::handle b, int axis) {
    return la::vecdot(T(a, "vecdot"), T(b, "vecdot"), axis);
  }, "x1"_a, "x2"_a, nb::kw_only(), "axis"_a = -1);
  m.def("multi_dot", [](nb::handle arrays) {
    std::vector<Tensor> xs = to_tensor_list(arrays, "multi_dot");
    return nogil([&] { return la::multi_dot(xs); });
  }, "arrays"_a);
  m.def("matmul", [](nb::handle a, nb::handle b) {
    return tmath::matmul(T(a, "matmul"), T(b, "matmul"));
  }, "x1"_a, "x2"_a);
}

}  // namespace tmpy
