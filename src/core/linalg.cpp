// tmath::linalg: the decomposition primitive (LinalgPrim, one class for the
// LAPACK-class kernels, multi-output where needed) with its gradient rules, and the
// functions composed from it and from the ordinary ops.
#include "core/linalg_text.h"
#include "tmath/linalg.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <numeric>
#include <string>

#include "core/dispatch.h"
#include "core/ops_internal.h"
#include "tmath/error.h"

namespace tmath {

void Backend::linalg(OpCode op, std::span<const ArrayRef>, std::span<const ArrayRef>,
                     const LinalgArgs&) {
  throw UnsupportedError("[" + detail::snake_name(op) + "] the " + std::string(name()) +
                         " backend has no linear-algebra kernels");
}

namespace linalg {
namespace {

using detail::shape_str;

Tensor mT(const Tensor& x) { return swapaxes(x, -1, -2); }
Tensor mH(const Tensor& x) { return is_complex(x.dtype()) ? conj(mT(x)) : mT(x); }
Tensor unsq2(const Tensor& x) { return expand_dims(expand_dims(x, -1), -1); }

[[noreturn]] void no_grad(const std::string& op, const std::string& what) {
  throw UnsupportedError("[" + op + "] " + what + " is not implemented yet");
}

Tensor cj(const Tensor& x) { return is_complex(x.dtype()) ? conj(x) : x; }
Tensor re(const Tensor& x) { return is_complex(x.dtype()) ? real(x) : x; }
// The diagonal of x as a matrix (zeros elsewhere).
Tensor diag_part(const Tensor& x) { return tril(triu(x)); }
// (..., n) -> (..., n, n) diagonal matrices.
Tensor diag_embed(const Tensor& v) {
  const int64_t n = v.shape(-1);
  return eye(n, n, 0, v.dtype(), v.device()) * expand_dims(v, -2);
}
// The real part of x's diagonal as a matrix of x's dtype.
Tensor real_diag(const Tensor& x) {
  return is_complex(x.dtype()) ? astype(real(diag_part(x)), x.dtype()) : diag_part(x);
}

// The matrix that eigh/cholesky actually read: the chosen triangle mirrored (conjugated
// for complex input; LAPACK reads only the real part of the diagonal).
Tensor sym_from(const Tensor& a, bool upper) {
  Tensor t = upper ? triu(a, 1) : tril(a, -1);
  return t + mH(t) + real_diag(a);
}
// Gradient with respect to a of a function of sym_from(a), given the gradient g on the
// Hermitian matrix (conjugate convention, see below): the read triangle gets g + g^H,
// the diagonal Re(g), the other triangle 0.
Tensor to_triangle(const Tensor& g, bool upper) {
  Tensor s = g + mH(g);
  return (upper ? triu(s, 1) : tril(s, -1)) + real_diag(g);
}

class LinalgPrim : public Primitive {
 public:
  LinalgPrim(OpCode op, LinalgArgs args, std::string name, std::vector<Shape> shapes,
             std::vector<DType> dtypes)
      : op_(op), args_(args), name_(std::move(name)), shapes_(std::move(shapes)),
        dtypes_(std::move(dtypes)) {}
  std::string name() const override { return name_; }
  std::optional<OpCode> opcode() const override { return op_; }
  bool is_equivalent(const Primitive& o) const override {
    auto* p = dynamic_cast<const LinalgPrim*>(&o);
    return p && p->op_ == op_ && p->name_ == name_ && p->args_.upper == args_.upper &&
           p->args_.full_matrices == args_.full_matrices &&
           p->args_.compute_uv == args_.compute_uv &&
           p->args_.unit_diagonal == args_.unit_diagonal;
  }

  void eval(Backend* be, const std::vector<Tensor>& in,
            const std::vector<TensorImpl*>& out) override {
    std::vector<ArrayRef> ins, outs;
    for (const auto& t : in) ins.push_back(t.impl()->ref());
    const Device dev = in[0].impl()->device;
    for (size_t i = 0; i < out.size(); ++i) {
      // Unused outputs arrive as bare temporaries: give every output its own metadata.
      TensorImpl& o = *out[i];
      o.shape = shapes_[i];
      o.size = detail::shape_size(o.shape);
      o.dtype = dtypes_[i];
      o.device = dev;
      alloc_output(o, {}, false);
      outs.push_back(o.ref());
    }
    be->linalg(op_, ins, outs, args_);
    detail::count_kernel();
  }

  std::vector<Tensor> vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                          const std::vector<int>& argnums,
                          const std::vector<Tensor>& outs) override;
  std::vector<Tensor> jvp(const std::vector<Tensor>& p, const std::vector<Tensor>& tangents,
                          const std::vector<int>& argnums) override;

 private:
  OpCode op_;
  LinalgArgs args_;
  std::string name_;
  std::vector<Shape> shapes_;
  std::vector<DType> dtypes_;
};

// ---- dtypes ---------------------------------------------------------------------
// Kernel dtype: f16/bf16 and integers/bool run in float32.
DType compute_dtype(DType dt) {
  if (is_low_precision(dt) || !is_inexact(dt)) return float32;
  return dt;
}
// Casts a float32 result of a float16/bfloat16 input back to the input dtype.
Tensor finish(const Tensor& r, DType in_dt) {
  if (is_low_precision(in_dt) && r.dtype() == float32) return astype(r, in_dt);
  return r;
}
double eps_of(DType dt) {
  switch (dt) {
    case DType::Float16: return 0.0009765625;
    case DType::BFloat16: return 0.0078125;
    case DType::Float64:
    case DType::Complex128: return std::numeric_limits<double>::epsilon();
    default: return static_cast<double>(std::numeric_limits<float>::epsilon());
  }
}

Shape batch_of(const Tensor& a, int core) {
  return Shape(a.shape().begin(), a.shape().end() - core);
}
Shape cat(Shape s, std::initializer_list<int64_t> tail) {
  s.insert(s.end(), tail);
  return s;
}

void check_matrix(const Tensor& a, const char* op) {
  if (!a.defined()) throw ValueError(std::string("[") + op + "] undefined tensor argument");
  if (a.ndim() < 2)
    throw ShapeError(std::string("[") + op + "] expected a matrix (at least 2-d), got shape " +
                     shape_str(a.shape()));
}
void check_square(const Tensor& a, const char* op) {
  check_matrix(a, op);
  if (a.shape(-1) != a.shape(-2))
    throw ShapeError(std::string("[") + op + "] last two axes must be square, got shape " +
                     shape_str(a.shape()));
}

std::vector<Tensor> node(OpCode op, LinalgArgs args, const char* name, std::vector<Shape> shapes,
                         std::vector<DType> dtypes, std::vector<Tensor> inputs) {
  Device dev = inputs[0].device();
  auto prim = std::make_shared<LinalgPrim>(op, args, name, shapes, dtypes);
  return detail::make_nodes(std::move(shapes), std::move(dtypes), dev, std::move(prim),
                            std::move(inputs));
}

// a x = b front end shared by solve and solve_triangular: casts, broadcasts batch axes,
// treats a 1-d b as one column. Returns (A, B, vector b?).
struct SolveInputs {
  Tensor A, B;
  bool vec;
  Shape batch;
  DType in_dt;
};
SolveInputs solve_inputs(const Tensor& a, const Tensor& b, const char* op) {
  check_square(a, op);
  if (!b.defined()) throw ValueError(std::string("[") + op + "] undefined tensor argument");
  Device dev = detail::common_device({a, b}, op);
  DType dt = promote_types(a.dtype(), b.dtype());
  DType cd = compute_dtype(dt);
  Tensor A = detail::cast_to(a, cd, dev), B = detail::cast_to(b, cd, dev);
  const int64_t n = a.shape(-1);
  const bool vec = b.ndim() == 1;
  if (b.ndim() == 0 || (vec ? b.shape(0) : b.shape(-2)) != n)
    throw ShapeError(std::string("[") + op + "] b of shape " + shape_str(b.shape()) +
                     " does not match a of shape " + shape_str(a.shape()) +
                     " (expected (" + std::to_string(n) + ",) or (..., " + std::to_string(n) +
                     ", k))");
  if (vec) B = reshape(B, {n, 1});
  Shape batch;
  try {
    batch = broadcast_shapes(batch_of(A, 2), batch_of(B, 2));
  } catch (const ShapeError&) {
    throw ShapeError(std::string("[") + op + "] batch axes of " + shape_str(a.shape()) + " and " +
                     shape_str(b.shape()) + " could not be broadcast together");
  }
  const int64_t k = B.shape(-1);
  A = broadcast_to(A, cat(batch, {n, n}));
  B = broadcast_to(B, cat(batch, {n, k}));
  return {A, B, vec, batch, dt};
}

}  // namespace

// ---- decompositions ---------------------------------------------------------------

Tensor solve(const Tensor& a, const Tensor& b) {
  auto s = solve_inputs(a, b, "solve");
  Tensor x = node(OpCode::Solve, {}, "solve", {s.B.shape()}, {s.B.dtype()}, {s.A, s.B})[0];
  if (s.vec) x = reshape(x, cat(s.batch, {a.shape(-1)}));
  return finish(x, s.in_dt);
}

Tensor solve_triangular(const Tensor& a, const Tensor& b, bool lower, bool unit_diagonal) {
  auto s = solve_inputs(a, b, "solve_triangular");
  LinalgArgs args;
  args.upper = !lower;
  args.unit_diagonal = unit_diagonal;
  Tensor x = node(OpCode::SolveTriangular, args, "solve_triangular", {s.B.shape()},
                  {s.B.dtype()}, {s.A, s.B})[0];
  if (s.vec) x = reshape(x, cat(s.batch, {a.shape(-1)}));
  return finish(x, s.in_dt);
}

Tensor inv(const Tensor& a) {
  check_square(a, "inv");
  DType cd = compute_dtype(a.dtype());
  Tensor A = astype(a, cd);
  return finish(node(OpCode::Inv, {}, "inv", {A.shape()}, {cd}, {A})[0], a.dtype());
}

Tensor det(const Tensor& a) {
  check_square(a, "det");
  DType cd = compute_dtype(a.dtype());
  Tensor A = astype(a, cd);
  return finish(node(OpCode::Det, {}, "det", {batch_of(A, 2)}, {cd}, {A})[0], a.dtype());
}

SlogdetResult slogdet(const Tensor& a) {
  check_square(a, "slogdet");
  DType cd = compute_dtype(a.dtype());
  Tensor A = astype(a, cd);
  auto r = node(OpCode::Slogdet, {}, "slogdet", {batch_of(A, 2), batch_of(A, 2)},
                {cd, real_type(cd)}, {A});
  return {finish(r[0], a.dtype()), finish(r[1], a.dtype())};
}

Tensor cholesky(const Tensor& a, bool upper) {
  check_square(a, "cholesky");
  DType cd = compute_dtype(a.dtype());
  Tensor A = astype(a, cd);
  LinalgArgs args;
  args.upper = upper;
  return finish(node(OpCode::Cholesky, args, "cholesky", {A.shape()}, {cd}, {A})[0], a.dtype());
}

QRResult qr(const Tensor& a, QrMode mode) {
  check_matrix(a, "qr");
  DType cd = compute_dtype(a.dtype());
  Tensor A = astype(a, cd);
  const int64_t m = a.shape(-2), n = a.shape(-1), k = std::min(m, n);
  Shape b = batch_of(a, 2);
  LinalgArgs args;
  args.full_matrices = mode == QrMode::Complete;
  args.compute_uv = mode != QrMode::R;
  if (mode == QrMode::R) {
    auto r = node(OpCode::Qr, args, "qr", {cat(b, {k, n})}, {cd}, {A});
    return {Tensor(), finish(r[0], a.dtype())};
  }
  const int64_t q = mode == QrMode::Complete ? m : k;
  auto r = node(OpCode::Qr, args, "qr", {cat(b, {m, q}), cat(b, {q, n})}, {cd, cd}, {A});
  return {finish(r[0], a.dtype()), finish(r[1], a.dtype())};
}

SVDResult svd(const Tensor& a, bool full_matrices) {
  check_matrix(a, "svd");
  DType cd = compute_dtype(a.dtype());
  Tensor A = astype(a, cd);
  const int64_t m = a.shape(-2), n = a.shape(-1), k = std::min(m, n);
  Shape b = batch_of(a, 2);
  LinalgArgs args;
  args.full_matrices = full_matrices;
  const int64_t uc = full_matrices ? m : k, vr = full_matrices ? n : k;
  auto r = node(OpCode::Svd, args, "svd", {cat(b, {m, uc}), cat(b, {k}), cat(b, {vr, n})},
                {cd, real_type(cd), cd}, {A});
  return {finish(r[0], a.dtype()), finish(r[1], a.dtype()), finish(r[2], a.dtype())};
}

Tensor svdvals(const Tensor& a) {
  check_matrix(a, "svdvals");
  DType cd = compute_dtype(a.dtype());
  Tensor A = astype(a, cd);
  LinalgArgs args;
  args.compute_uv = false;
  const int64_t k = std::min(a.shape(-2), a.shape(-1));
  return finish(
      node(OpCode::Svd, args, "svdvals", {cat(batch_of(a, 2), {k})}, {real_type(cd)}, {A})[0],
      a.dtype());
}

namespace {
bool parse_uplo(char uplo, const char* op) {
  if (uplo == 'L' || uplo == 'l') return false;
  if (uplo == 'U' || uplo == 'u') return true;
  throw ValueError(std::string("[") + op + "] uplo must be 'L' or 'U', got '" + uplo + "'");
}
}  // namespace

EighResult eigh(const Tensor& a, char uplo) {
  check_square(a, "eigh");
  LinalgArgs args;
  args.upper = parse_uplo(uplo, "eigh");
  DType cd = compute_dtype(a.dtype());
  Tensor A = astype(a, cd);
  const int64_t n = a.shape(-1);
  auto r = node(OpCode::Eigh, args, "eigh", {cat(batch_of(a, 2), {n}), A.shape()},
                {real_type(cd), cd}, {A});
  return {finish(r[0], a.dtype()), finish(r[1], a.dtype())};
}

Tensor eigvalsh(const Tensor& a, char uplo) {
  check_square(a, "eigvalsh");
  LinalgArgs args;
  args.upper = parse_uplo(uplo, "eigvalsh");
  args.compute_uv = false;
  DType cd = compute_dtype(a.dtype());
  Tensor A = astype(a, cd);
  return finish(node(OpCode::Eigh, args, "eigvalsh", {cat(batch_of(a, 2), {a.shape(-1)})},
                     {real_type(cd)}, {A})[0],
                a.dtype());
}

// ---- LU, general eigenproblem, matrix exponential -------------------------------------

namespace {
// (lu, pivots, perm) node of a: the kernel's three outputs.
std::vector<Tensor> lu_node(const Tensor& A) {
  const int64_t m = A.shape(-2), n = A.shape(-1), k = std::min(m, n);
  Shape b = batch_of(A, 2);
  return node(OpCode::Lu, {}, "lu", {A.shape(), cat(b, {k}), cat(b, {m})},
              {A.dtype(), int32, int64}, {A});
}
}  // namespace

LUResult lu(const Tensor& a) {
  check_matrix(a, "lu");
  DType cd = compute_dtype(a.dtype());
  Tensor A = astype(a, cd);
  const int64_t m = a.shape(-2), k = std::min(m, a.shape(-1));
  auto r = lu_node(A);
  const Tensor& LU = r[0];
  Tensor Lm = slice(LU, -1, 0, k), Um = slice(LU, -2, 0, k);
  Lm = tril(Lm, -1) + eye(m, k, 0, cd, a.device());
  Um = triu(Um);
  // a[perm] = L U, so P[perm[j], j] = 1.
  Tensor rows = expand_dims(arange(int64_t{0}, m, int64_t{1}, int64, a.device()), -1);
  Tensor P = astype(equal(rows, expand_dims(r[2], -2)), cd);
  return {finish(P, a.dtype()), finish(Lm, a.dtype()), finish(Um, a.dtype())};
}

LUFactorResult lu_factor(const Tensor& a) {
  check_matrix(a, "lu_factor");
  DType cd = compute_dtype(a.dtype());
  auto r = lu_node(astype(a, cd));
  return {finish(r[0], a.dtype()), r[1]};
}

Tensor lu_solve(const Tensor& LU, const Tensor& pivots, const Tensor& b) {
  if (!pivots.defined()) throw ValueError("[lu_solve] undefined tensor argument");
  auto s = solve_inputs(LU, b, "lu_solve");
  const int64_t n = LU.shape(-1);
  if (pivots.ndim() < 1 || pivots.shape(-1) != n)
    throw ShapeError("[lu_solve] pivots of shape " + shape_str(pivots.shape()) +
                     " do not match LU of shape " + shape_str(LU.shape()));
  if (is_inexact(pivots.dtype()) || pivots.dtype() == DType::Bool)
    throw DTypeError("[lu_solve] pivots must be integers, got " +
                     std::string(dtype_name(pivots.dtype())));
  Tensor piv = detail::cast_to(pivots, int32, s.A.device());
  Shape batch;
  try {
    batch = broadcast_shapes(s.batch, batch_of(piv, 1));
  } catch (const ShapeError&) {
    throw ShapeError("[lu_solve] batch axes of pivots " + shape_str(pivots.shape()) +
                     " and LU " + shape_str(LU.shape()) + " could not be broadcast together");
  }
  const int64_t k = s.B.shape(-1);
  Tensor A = broadcast_to(s.A, cat(batch, {n, n})), B = broadcast_to(s.B, cat(batch, {n, k}));
  piv = broadcast_to(piv, cat(batch, {n}));
  Tensor x = node(OpCode::LuSolve, {}, "lu_solve", {B.shape()}, {B.dtype()}, {A, piv, B})[0];
  if (s.vec) x = reshape(x, cat(batch, {n}));
  return finish(x, s.in_dt);
}

EigResult eig(const Tensor& a) {
  check_square(a, "eig");
  DType cd = compute_dtype(a.dtype());
  DType ct = is_complex(cd) ? cd : complex_type(cd);
  Tensor A = astype(a, cd);
  auto r = node(OpCode::Eig, {}, "eig", {cat(batch_of(a, 2), {a.shape(-1)}), A.shape()},
                {ct, ct}, {A});
  return {r[0], r[1]};
}

Tensor eigvals(const Tensor& a) {
  check_square(a, "eigvals");
  DType cd = compute_dtype(a.dtype());
  DType ct = is_complex(cd) ? cd : complex_type(cd);
  LinalgArgs args;
  args.compute_uv = false;
  return node(OpCode::Eig, args, "eigvals", {cat(batch_of(a, 2), {a.shape(-1)})}, {ct},
              {astype(a, cd)})[0];
}

Tensor matrix_exp(const Tensor& a) {
  check_square(a, "matrix_exp");
  DType cd = compute_dtype(a.dtype());
  Tensor A = astype(a, cd);
  const int64_t n = a.shape(-1);
  if (n == 0 || A.size() == 0) return finish(copy(A), a.dtype());
  const bool dbl = real_type(cd) == float64;
  // Higham (2005): the largest 1-norm for which the degree-13 (double) or degree-7 (single)
  // Pade approximant is accurate to unit roundoff; larger norms are scaled by 2^-s.
  const double theta = dbl ? 5.371920351148152 : 3.925724783138660;
  Shape b = batch_of(A, 2);
  Tensor norm1 = max(sum(abs(A), {-2}), {-1});  // (...) real
  Tensor bad = logical_not(isfinite(norm1));
  if (any(bad).item<bool>()) {
    std::string where;
    if (!b.empty()) {
      const int64_t flat = argmax(reshape(astype(bad, int32), {bad.size()})).item<int64_t>();
      where = detail::batch_index_text(b, flat);
    }
    throw LinAlgError("[matrix_exp] input contains NaN or Inf" + where);
  }
  // s = max(0, ceil(log2(norm / theta))) per matrix.
  Tensor s = maximum(ceil(log2(norm1 / theta)), zeros({}, norm1.dtype(), A.device()));
  const auto smax = static_cast<int64_t>(max(s).item<double>());
  Tensor X = A / astype(unsq2(power(full({}, 2.0, s.dtype(), A.device()), s)), cd);
  Tensor I = broadcast_to(eye(n, n, 0, cd, A.device()), A.shape());
  Tensor X2 = matmul(X, X), X4 = matmul(X2, X2), X6 = matmul(X4, X2);
  Tensor U, V;
  if (dbl) {
    const double c[] = {64764752532480000.0, 32382376266240000.0, 7771770303897600.0,
                        1187353796428800.0,  129060195264000.0,   10559470521600.0,
                        670442572800.0,      33522128640.0,       1323241920.0,
                        40840800.0,          960960.0,            16380.0,
                        182.0,               1.0};
    Tensor u = matmul(X6, X6 * c[13] + X4 * c[11] + X2 * c[9]) + X6 * c[7] + X4 * c[5] +
               X2 * c[3] + I * c[1];
    U = matmul(X, u);
    V = matmul(X6, X6 * c[12] + X4 * c[10] + X2 * c[8]) + X6 * c[6] + X4 * c[4] + X2 * c[2] +
        I * c[0];
  } else {
    const double c[] = {17297280.0, 8648640.0, 1995840.0, 277200.0, 25200.0, 1512.0, 56.0, 1.0};
    U = matmul(X, X6 * c[7] + X4 * c[5] + X2 * c[3] + I * c[1]);
    V = X6 * c[6] + X4 * c[4] + X2 * c[2] + I * c[0];
  }
  Tensor E = solve(V - U, V + U);
  // Undo the scaling: square matrix i s_i times (all of them when the batch agrees).
  const bool uniform = b.empty() || (min(s).item<double>() == static_cast<double>(smax));
  for (int64_t i = 0; i < smax; ++i) {
    Tensor E2 = matmul(E, E);
    E = uniform ? E2
                : where(unsq2(greater(s, full({}, static_cast<double>(i), s.dtype(), A.device()))),
                        E2, E);
  }
  return finish(E, a.dtype());
}

// ---- gradient rules -----------------------------------------------------------------
// Conventions as the other primitives: cotangents are transposed without conjugation
// (JAX's convention: for a real loss L of z = x + iy the gradient is dL/dx - i dL/dy);
// an undefined cotangent counts as zero. The rules for non-holomorphic decompositions
// (cholesky, eigh, svd, qr, eig's normalised eigenvectors, slogdet's sign) are written
// in the conjugate convention of the matrix-backprop literature (gradient dL/dx + i dL/dy,
// Hermitian transposes) and converted: g_ours(c) = conj(g_conj(conj(c))), a no-op for
// real inputs. eigh and cholesky read one triangle, so their gradients live on that
// triangle (exact for the function computed). Rules without a forward counterpart get
// one from the autodiff engine by transposing the vjp (linear in the cotangents).

namespace {
// a: (..., m, n) -> P (..., m, m) with P[perm[j], j] = 1 in dtype dt.
Tensor perm_matrix(const Tensor& perm, DType dt) {
  const int64_t m = perm.shape(-1);
  Tensor rows = expand_dims(arange(int64_t{0}, m, int64_t{1}, int64, perm.device()), -1);
  return astype(equal(rows, expand_dims(perm, -2)), dt);
}
// X R^-H for upper triangular R (..., k, k).
Tensor right_solve_upper_h(const Tensor& R, const Tensor& X) {
  return mH(solve_triangular(R, mH(X), /*lower=*/false));
}
}  // namespace

std::vector<Tensor> LinalgPrim::vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                                    const std::vector<int>& argnums,
                                    const std::vector<Tensor>& outs) {
  const Tensor& A = p[0];
  const bool cplx = is_complex(A.dtype());
  auto pick = [&](const Tensor& gA, const Tensor& gB) {
    std::vector<Tensor> r;
    for (int i : argnums) r.push_back(i == 0 ? gA : gB);
    return r;
  };
  auto defined = [&](size_t i) { return i < ct.size() && ct[i].defined(); };
  switch (op_) {
    case OpCode::Solve: {
      Tensor gb = solve(mT(A), ct[0]);
      return pick(neg(matmul(gb, mT(outs[0]))), gb);
    }
    case OpCode::SolveTriangular: {
      Tensor gb = solve_triangular(mT(A), ct[0], /*lower=*/args_.upper, args_.unit_diagonal);
      Tensor gA = neg(matmul(gb, mT(outs[0])));
      gA = args_.upper ? triu(gA, args_.unit_diagonal ? 1 : 0)
                       : tril(gA, args_.unit_diagonal ? -1 : 0);
      return pick(gA, gb);
    }
    case OpCode::Inv: {
      Tensor yT = mT(outs[0]);
      return pick(neg(matmul(matmul(yT, ct[0]), yT)), Tensor());
    }
    case OpCode::Det:
      return pick(unsq2(ct[0] * outs[0]) * mT(inv(A)), Tensor());
    case OpCode::Slogdet: {
      // d logabsdet = Re t, d sign = sign * i Im t, t = tr(A^-1 dA):
      // gA = (g_logabsdet + i Im(g_sign * sign)) A^-T.
      Tensor alpha = defined(1) ? astype(ct[1], A.dtype())
                                : zeros(batch_of(A, 2), A.dtype(), A.device());
      if (cplx && defined(0))
        alpha = alpha + astype(imag(ct[0] * outs[0]), A.dtype()) *
                            Tensor(std::complex<double>(0.0, 1.0));
      return pick(unsq2(alpha) * mT(inv(A)), Tensor());
    }
    case OpCode::Cholesky: {
      // Conjugate convention (Murray 2016): with Y = L^H gL,
      // G = L^-H (tril(Y, -1) + diag(Y) / 2) L^-1 on the Hermitian matrix read.
      Tensor Lm = args_.upper ? mH(outs[0]) : outs[0];
      Tensor g = cj(ct[0]);
      Tensor gL = args_.upper ? mH(g) : g;
      Tensor Y = matmul(mH(Lm), gL);
      Tensor Z = tril(Y, -1) + diag_part(Y) * 0.5;
      Tensor X = solve_triangular(mH(Lm), Z, /*lower=*/false);
      Tensor G = right_solve_upper_h(mH(Lm), X);  // X L^-1
      return pick(cj(to_triangle(G, false)), Tensor());
    }
    case OpCode::Eigh: {
      // Conjugate convention: G = V (diag(gw) + F o (V^H gV)) V^H, F_ij = 1 / (w_j - w_i).
      Tensor w, V;
      if (args_.compute_uv) {
        w = outs[0], V = outs[1];
      } else {
        auto e = eigh(A, args_.upper ? 'U' : 'L');
        w = e.eigenvalues, V = e.eigenvectors;
      }
      const int64_t n = A.shape(-1);
      Tensor I = eye(n, n, 0, w.dtype(), A.device());
      Tensor inner = defined(0) ? astype(I * expand_dims(ct[0], -2), A.dtype()) : zeros_like(V);
      if (args_.compute_uv && defined(1)) {
        // F_ij = 1 / (w_j - w_i) off the diagonal, 0 on it.
        Tensor F = reciprocal(expand_dims(w, -2) - expand_dims(w, -1) + I) - I;
        inner = inner + F * matmul(mH(V), cj(ct[1]));
      }
      Tensor G = matmul(matmul(V, inner), mH(V));
      return pick(cj(to_triangle(G, args_.upper)), Tensor());
    }
    case OpCode::Svd: {
      // Conjugate convention (Townsend 2016; the complex phase term as Wan & Zhang 2019),
      // reduced factors U (m, k), S (k), V = Vh^H (n, k), F_ij = 1 / (s_j^2 - s_i^2):
      //   gA = U [diag(gS) + (J + J^H) S + S (K + K^H) + i Im diag(U^H gU - V^H gV) / 2S] V^H
      //        + (I - U U^H) gU S^-1 V^H + U S^-1 gV^H (I - V V^H),
      // J = F o (U^H gU), K = F o (V^H gV). With full_matrices the cotangents of the
      // columns past k (an arbitrary basis of the complement) are ignored, as PyTorch does.
      const int64_t m = A.shape(-2), n = A.shape(-1), k = std::min(m, n);
      const size_t si = args_.compute_uv ? 1 : 0;
      const bool vecs = args_.compute_uv && (defined(0) || defined(2));
      Tensor U, S, Vh;
      if (args_.compute_uv) {
        U = outs[0], S = outs[1], Vh = outs[2];
        if (args_.full_matrices) U = slice(U, -1, 0, k), Vh = slice(Vh, -2, 0, k);
      } else {
        auto d = svd(A, false);
        U = d.U, S = d.S, Vh = d.Vh;
      }
      if (!defined(si) && !vecs) return pick(zeros_like(A), Tensor());
      Tensor Sc = astype(S, A.dtype());
      Tensor inner = defined(si) ? diag_embed(astype(ct[si], A.dtype()))
                                 : zeros(cat(batch_of(A, 2), {k, k}), A.dtype(), A.device());
      Tensor gA_extra;
      if (vecs) {
        Tensor gU = defined(0) ? cj(ct[0]) : Tensor();
        Tensor gVh = defined(2) ? cj(ct[2]) : Tensor();
        if (args_.full_matrices) {
          if (gU.defined()) gU = slice(gU, -1, 0, k);
          if (gVh.defined()) gVh = slice(gVh, -2, 0, k);
        }
        Tensor I = eye(k, k, 0, S.dtype(), A.device());
        Tensor S2 = S * S;
        Tensor F = astype(reciprocal(expand_dims(S2, -2) - expand_dims(S2, -1) + I) - I, A.dtype());
        Tensor phase;  // Im diag(U^H gU - V^H gV), complex only
        if (gU.defined()) {
          Tensor UhgU = matmul(mH(U), gU);
          Tensor J = F * UhgU;
          inner = inner + (J + mH(J)) * expand_dims(Sc, -2);
          if (cplx) phase = imag(diagonal(UhgU));
          if (m > k) {
            Tensor gUS = gU / expand_dims(Sc, -2);
            gA_extra = matmul(gUS - matmul(U, matmul(mH(U), gUS)), Vh);
          }
        }
        if (gVh.defined()) {
          Tensor VhgV = matmul(Vh, mH(gVh));  // V^H gV
          Tensor K = F * VhgV;
          inner = inner + expand_dims(Sc, -1) * (K + mH(K));
          if (cplx) {
            Tensor d = imag(diagonal(VhgV));
            phase = phase.defined() ? phase - d : neg(d);
          }
          if (n > k) {
            Tensor SgVh = gVh / expand_dims(Sc, -1);
            Tensor t = matmul(U, SgVh - matmul(matmul(SgVh, mH(Vh)), Vh));
            gA_extra = gA_extra.defined() ? gA_extra + t : t;
          }
        }
        if (phase.defined())
          inner = inner + diag_embed(astype(phase / (S * 2.0), A.dtype()) *
                                     Tensor(std::complex<double>(0.0, 1.0)));
      }
      Tensor gA = matmul(matmul(U, inner), Vh);
      if (gA_extra.defined()) gA = gA + gA_extra;
      return pick(cj(gA), Tensor());
    }
    case OpCode::Qr: {
      // Conjugate convention (Walter & Lehmann 2018; the wide case as PyTorch): for
      // m >= n, with N = gR R^H - Q^H gQ and sym(N) its upper triangle mirrored Hermitian
      // (real diagonal), gA = (gQ + Q sym(N)) R^-H. For m < n, A = Q [X | Y] with X square:
      // Y = Q^H A_Y adds A_Y gR_Y^H to gQ, and gA_Y = Q gR_Y.
      const int64_t m = A.shape(-2), n = A.shape(-1);
      if (args_.full_matrices && m > n)
        throw UnsupportedError(
            "[qr] the gradient of mode 'complete' is not defined for matrices with more rows "
            "than columns (" + std::to_string(m) + " > " + std::to_string(n) +
            "): the last m - n columns of Q are an arbitrary basis of the complement; use "
            "mode 'reduced'");
      Tensor Q, R, gQ, gR;
      if (args_.compute_uv) {
        Q = outs[0], R = outs[1];
        if (defined(0)) gQ = cj(ct[0]);
        if (defined(1)) gR = cj(ct[1]);
      } else {
        auto d = qr(A, QrMode::Reduced);
        Q = d.Q, R = d.R;
        if (defined(0)) gR = cj(ct[0]);
      }
      if (!gQ.defined() && !gR.defined()) return pick(zeros_like(A), Tensor());
      if (!gQ.defined()) gQ = zeros_like(Q);
      if (!gR.defined()) gR = zeros_like(R);
      Tensor Rx = R, gRx = gR, gAy;
      if (m < n) {
        Rx = slice(R, -1, 0, m);
        gRx = slice(gR, -1, 0, m);
        Tensor gRy = slice(gR, -1, m, n);
        gQ = gQ + matmul(slice(A, -1, m, n), mH(gRy));
        gAy = matmul(Q, gRy);
      }
      Tensor N = matmul(gRx, mH(Rx)) - matmul(mH(Q), gQ);
      Tensor Nu = triu(N, 1);
      Tensor X = gQ + matmul(Q, Nu + mH(Nu) + real_diag(N));
      Tensor gA = right_solve_upper_h(Rx, X);
      if (gAy.defined()) gA = concatenate({gA, gAy}, -1);
      return pick(cj(gA), Tensor());
    }
    case OpCode::Lu: {
      // Packed LU (..., m, n) of P^T A = L U, k = min(m, n), L1/U1 the leading k x k
      // factors (conjugate convention, the rule is holomorphic): with
      //   X = tril(L1^H gL1, -1) + triu(gU1 U1^H)
      //       (m > n: minus L2^H gL2 in the upper part; m < n: minus gU2 U2^H in the lower),
      //   gA = P [L1^-H X U1^-H | L1^-H gU2]  (m < n)  or  P [L1^-H X U1^-H ; gL2 U1^-H].
      if (!defined(0)) return pick(zeros_like(A), Tensor());
      const Tensor& LU = outs[0];
      const int64_t m = A.shape(-2), n = A.shape(-1), k = std::min(m, n);
      Tensor g = cj(ct[0]);
      Tensor sq = slice(slice(LU, -2, 0, k), -1, 0, k);
      Tensor gsq = slice(slice(g, -2, 0, k), -1, 0, k);
      Tensor L1 = tril(sq, -1) + eye(k, k, 0, A.dtype(), A.device());
      Tensor U1 = triu(sq);
      Tensor lowp = matmul(mH(L1), tril(gsq, -1));
      Tensor upp = matmul(triu(gsq), mH(U1));
      Tensor gL2, gU2;
      if (m > n) {
        gL2 = slice(g, -2, n, m);
        upp = upp - matmul(mH(slice(LU, -2, n, m)), gL2);
      } else if (m < n) {
        gU2 = slice(g, -1, m, n);
        lowp = lowp - matmul(gU2, mH(slice(LU, -1, m, n)));
      }
      Tensor X = tril(lowp, -1) + triu(upp);
      Tensor Y = solve_triangular(mH(L1), X, /*lower=*/false, /*unit_diagonal=*/true);
      Tensor Z = right_solve_upper_h(U1, Y);
      if (m > n) Z = concatenate({Z, right_solve_upper_h(U1, gL2)}, -2);
      if (m < n)
        Z = concatenate({Z, solve_triangular(mH(L1), gU2, /*lower=*/false, true)}, -1);
      return pick(cj(matmul(perm_matrix(outs[2], A.dtype()), Z)), Tensor());
    }
    case OpCode::LuSolve: {
      // x = U^-1 L^-1 P^T b (conjugate convention, holomorphic): gb = P L^-H U^-H gx and,
      // as gA = -gb x^H pulled back to the packed factors,
      // gLU = -(tril(w (U x)^H, -1) + triu(z x^H)), z = U^-H gx, w = L^-H z.
      // P = (lu_solve of the identity factors)^T, so no pivot arithmetic is needed here.
      const Tensor& LU = A;
      const Tensor& x = outs[0];
      const int64_t n = LU.shape(-1);
      // Adding the solution of A y = 0 (exactly 0) runs lu_solve's own check first: a
      // singular LU raises "[lu_solve] singular matrix" instead of an error of the
      // triangular solves below.
      Tensor gx = cj(ct[0]) + lu_solve(LU, p[1], zeros_like(slice(x, -1, 0, 1)));
      Tensor z = solve_triangular(mH(LU), gx, /*lower=*/true);
      Tensor w = solve_triangular(mH(LU), z, /*lower=*/false, /*unit_diagonal=*/true);
      std::vector<Tensor> r;
      for (int i : argnums) {
        if (i == 0) {
          Tensor Ux = matmul(triu(LU), x);
          r.push_back(cj(neg(tril(matmul(w, mH(Ux)), -1) + triu(matmul(z, mH(x))))));
        } else if (i == 2) {
          Tensor I = broadcast_to(eye(n, n, 0, LU.dtype(), LU.device()), LU.shape());
          Tensor Pt = lu_solve(I, p[1], I);  // P^T
          r.push_back(cj(matmul(mT(Pt), w)));
        } else {
          r.push_back(Tensor());
        }
      }
      return r;
    }
    case OpCode::Eig: {
      // Conjugate convention (PyTorch's rule; unit-norm eigenvectors):
      //   gA = V^-H (diag(gw) + (V^H gV - V^H V Re diag(V^H gV)) / conj(E)) V^H,
      // E_ij = w_j - w_i off the diagonal (the division keeps only off-diagonal terms).
      // Real input: the real part.
      Tensor w, V;
      if (args_.compute_uv) {
        w = outs[0], V = outs[1];
      } else {
        auto e = eig(A);
        w = e.eigenvalues, V = e.eigenvectors;
      }
      const bool gvec = args_.compute_uv && defined(1);
      if (!defined(0) && !gvec) return pick(zeros_like(A), Tensor());
      const int64_t n = A.shape(-1);
      Tensor I = eye(n, n, 0, w.dtype(), A.device());
      Tensor inner = defined(0) ? diag_embed(cj(ct[0])) : zeros_like(V);
      if (gvec) {
        Tensor VhgV = matmul(mH(V), cj(ct[1]));
        Tensor d = astype(real(diagonal(VhgV)), V.dtype());
        Tensor T = VhgV - matmul(mH(V), V * expand_dims(d, -2));
        Tensor F = reciprocal(conj(expand_dims(w, -2) - expand_dims(w, -1)) + I) - I;
        inner = inner + F * T;
      }
      Tensor gA = cj(solve(mH(V), matmul(inner, mH(V))));
      return pick(cplx ? gA : real(gA), Tensor());
    }
    default:
      no_grad(name_, "the reverse-mode gradient");
  }
}

std::vector<Tensor> LinalgPrim::jvp(const std::vector<Tensor>& p,
                                    const std::vector<Tensor>& tangents,
                                    const std::vector<int>& argnums) {
  const Tensor& A = p[0];
  const bool cplx = is_complex(A.dtype());
  Tensor tA, tB;
  for (size_t i = 0; i < argnums.size(); ++i) (argnums[i] == 0 ? tA : tB) = tangents[i];
  switch (op_) {
    case OpCode::Solve: {
      Tensor x = solve(A, p[1]);
      Tensor rhs = tB.defined() ? tB : zeros_like(x);
      if (tA.defined()) rhs = rhs - matmul(tA, x);
      return {solve(A, rhs)};
    }
    case OpCode::SolveTriangular: {
      const bool lower = !args_.upper;
      Tensor x = solve_triangular(A, p[1], lower, args_.unit_diagonal);
      Tensor rhs = tB.defined() ? tB : zeros_like(x);
      if (tA.defined()) {
        Tensor tAm = args_.upper ? triu(tA, args_.unit_diagonal ? 1 : 0)
                                 : tril(tA, args_.unit_diagonal ? -1 : 0);
        rhs = rhs - matmul(tAm, x);
      }
      return {solve_triangular(A, rhs, lower, args_.unit_diagonal)};
    }
    case OpCode::Inv: {
      Tensor y = inv(A);
      return {neg(matmul(matmul(y, tA), y))};
    }
    case OpCode::Det:
      return {det(A) * trace(solve(A, tA))};
    case OpCode::Slogdet: {
      Tensor t = trace(solve(A, tA));
      if (!cplx) return {zeros(batch_of(A, 2), A.dtype(), A.device()), t};
      Tensor sign = slogdet(A).sign;
      return {sign * astype(imag(t), A.dtype()) * Tensor(std::complex<double>(0.0, 1.0)),
              real(t)};
    }
    case OpCode::Cholesky: {
      Tensor Lm = cholesky(A, false);
      Tensor S = sym_from(tA, false);
      // X = L^-1 S L^-H; dL = L (tril(X, -1) + Re diag(X) / 2).
      Tensor Y = solve_triangular(Lm, S, /*lower=*/true);
      Tensor X = mH(solve_triangular(Lm, mH(Y), /*lower=*/true));
      Tensor dL = matmul(Lm, tril(X, -1) + real_diag(X) * 0.5);
      return {args_.upper ? mH(dL) : dL};
    }
    case OpCode::Eigh: {
      auto e = eigh(A, args_.upper ? 'U' : 'L');
      Tensor M = matmul(matmul(mH(e.eigenvectors), sym_from(tA, args_.upper)), e.eigenvectors);
      Tensor dw = re(diagonal(M));
      if (!args_.compute_uv) return {dw};
      const int64_t n = A.shape(-1);
      Tensor I = eye(n, n, 0, dw.dtype(), A.device());
      Tensor F = reciprocal(expand_dims(e.eigenvalues, -2) - expand_dims(e.eigenvalues, -1) + I) - I;
      return {dw, matmul(e.eigenvectors, F * M)};
    }
    case OpCode::Svd: {
      // Singular values only; the singular vectors' forward rule is the transposed vjp.
      if (args_.compute_uv) no_grad(name_, "the forward-mode rule of the singular vectors");
      auto d = svd(A, false);
      return {re(diagonal(matmul(matmul(mH(d.U), tA), mH(d.Vh))))};
    }
    default:
      no_grad(name_, "the forward-mode gradient");
  }
}

// ---- composed functions -------------------------------------------------------------

Tensor matrix_rank(const Tensor& a, std::optional<double> tol, bool hermitian,
                   std::optional<double> rtol) {
  if (!a.defined()) throw ValueError("[matrix_rank] undefined tensor argument");
  if (tol && rtol) throw ValueError("[matrix_rank] tol and rtol can't be both set");
  if (a.ndim() < 2) return astype(any(not_equal(a, zeros({}, a.dtype(), a.device()))), int64);
  Tensor S = hermitian ? abs(eigvalsh(a)) : svdvals(a);
  S = astype(S, real_type(compute_dtype(a.dtype())));
  Tensor t;
  if (tol) {
    t = full({}, *tol, S.dtype(), S.device());
  } else {
    const double r = rtol ? *rtol
                          : static_cast<double>(std::max(a.shape(-2), a.shape(-1))) * eps_of(a.dtype());
    t = max(S, {-1}, true) * r;
  }
  if (S.shape(-1) == 0) return zeros(batch_of(a, 2), int64, a.device());
  return sum(greater(S, t), {-1});
}

Tensor pinv(const Tensor& a, double rcond, bool hermitian) {
  check_matrix(a, "pinv");
  const int64_t m = a.shape(-2), n = a.shape(-1);
  DType cd = compute_dtype(a.dtype());
  if (m == 0 || n == 0) return finish(zeros(cat(batch_of(a, 2), {n, m}), cd, a.device()), a.dtype());
  Tensor A = astype(a, cd);
  if (hermitian) {
    auto e = eigh(A);
    Tensor w = e.eigenvalues, aw = abs(w);
    Tensor cut = max(aw, {-1}, true) * rcond;
    Tensor winv = where(greater(aw, cut), reciprocal(w), zeros_like(w));
    Tensor V = e.eigenvectors;
    return finish(matmul(V * expand_dims(astype(winv, cd), -2), mH(V)), a.dtype());
  }
  auto d = svd(A, false);
  Tensor cut = max(d.S, {-1}, true) * rcond;
  Tensor sinv = where(greater(d.S, cut), reciprocal(d.S), zeros_like(d.S));
  return finish(matmul(mH(d.Vh) * expand_dims(astype(sinv, cd), -2), mH(d.U)), a.dtype());
}

LstsqResult lstsq(const Tensor& a, const Tensor& b, std::optional<double> rcond) {
  if (!a.defined() || !b.defined()) throw ValueError("[lstsq] undefined tensor argument");
  if (a.ndim() != 2)
    throw ShapeError("[lstsq] a must be 2-d, got shape " + shape_str(a.shape()));
  if (b.ndim() < 1 || b.ndim() > 2 || b.shape(0) != a.shape(0))
    throw ShapeError("[lstsq] b of shape " + shape_str(b.shape()) + " does not match a of shape " +
                     shape_str(a.shape()));
  Device dev = detail::common_device({a, b}, "lstsq");
  DType dt = promote_types(a.dtype(), b.dtype());
  DType cd = compute_dtype(dt);
  Tensor A = detail::cast_to(a, cd, dev), B = detail::cast_to(b, cd, dev);
  const int64_t m = a.shape(0), n = a.shape(1), k = std::min(m, n);
  const bool vec = b.ndim() == 1;
  if (vec) B = reshape(B, {m, 1});
  const int64_t nrhs = B.shape(1);
  const double rc = rcond.value_or(eps_of(cd) * static_cast<double>(std::max(m, n)));
  LstsqResult r;
  Tensor x;
  if (k == 0) {
    r.singular_values = zeros({0}, real_type(cd), dev);
    r.rank = 0;
    x = zeros({n, nrhs}, cd, dev);
  } else {
    auto d = svd(A, false);
    Tensor cut = max(d.S, {-1}, true) * rc;
    Tensor large = greater(d.S, cut);
    Tensor sinv = where(large, reciprocal(d.S), zeros_like(d.S));
    x = matmul(mH(d.Vh) * expand_dims(astype(sinv, cd), -2), matmul(mH(d.U), B));
    r.singular_values = d.S;
    r.rank = sum(large).item<int64_t>();
  }
  if (r.rank == n && m > n) {
    Tensor res = B - matmul(A, x);
    r.residuals = sum(square(abs(res)), {0});
  } else {
    r.residuals = zeros({0}, real_type(cd), dev);
  }
  r.solution = finish(vec ? reshape(x, {n}) : x, dt);
  r.residuals = finish(r.residuals, dt);
  r.singular_values = finish(r.singular_values, dt);
  return r;
}

namespace {
Tensor inexact(const Tensor& x) {
  return is_inexact(x.dtype()) ? x : astype(x, to_inexact(x.dtype()));
}
Tensor keep_axes(Tensor r, const Shape& in_shape, const std::vector<int>& axes, bool keepdims) {
  if (!keepdims) return r;
  Shape s = in_shape;
  for (int ax : axes) s[ax] = 1;
  return reshape(r, s);
}

// Matrix norms over the axis pair (row, col) (normalised, distinct).
Tensor matrix_norm(const Tensor& x, int row, int col, double ord, const std::string& name,
                   bool keepdims) {
  Tensor ax = abs(x);
  Tensor r;
  auto svd_norm = [&](bool largest) {
    // (..., rows, cols): move the row axis last, then the column axis after it.
    Tensor y = moveaxis(moveaxis(x, row, -1), col > row ? col - 1 : col, -1);
    Tensor s = svdvals(y);
    return largest ? max(s, {-1}) : min(s, {-1});
  };
  if (name == "fro") {
    r = sqrt(sum(square(ax), {row, col}));
  } else if (name == "nuc") {
    Tensor y = moveaxis(moveaxis(x, row, -1), col > row ? col - 1 : col, -1);
    r = sum(svdvals(y), {-1});
  } else if (ord == 2 || ord == -2) {
    r = svd_norm(ord == 2);
  } else if (ord == 1 || ord == -1) {
    Tensor cs = sum(ax, {row});
    int c = col > row ? col - 1 : col;
    r = ord == 1 ? max(cs, {c}) : min(cs, {c});
  } else if (std::isinf(ord)) {
    Tensor rs = sum(ax, {col});
    int rr = row > col ? row - 1 : row;
    r = ord > 0 ? max(rs, {rr}) : min(rs, {rr});
  } else {
    throw ValueError("[norm] invalid norm order " + (name.empty() ? std::to_string(ord) : name) +
                     " for matrices");
  }
  std::vector<int> axes{row, col};
  return keep_axes(r, x.shape(), axes, keepdims);
}

Tensor norm_impl(const Tensor& x_in, std::optional<double> ord, const std::string& name,
                 std::optional<Axes> axis, bool keepdims) {
  if (!x_in.defined()) throw ValueError("[norm] undefined tensor argument");
  Tensor x = inexact(x_in);
  const int nd = x.ndim();
  if (!axis) {
    if ((!ord && name.empty()) || (name == "fro" && nd == 2) || (ord && *ord == 2 && nd == 1)) {
      Tensor r = sqrt(sum(square(abs(x))));
      if (keepdims) r = reshape(r, Shape(static_cast<size_t>(nd), 1));
      return r;
    }
    Axes all(static_cast<size_t>(nd));
    std::iota(all.begin(), all.end(), 0);
    axis = all;
  }
  std::vector<int> ax;
  for (int a : *axis) ax.push_back(detail::normalize_axis(a, nd, "norm"));
  if (ax.size() == 1) {
    if (!name.empty()) throw ValueError("[norm] invalid norm order '" + name + "' for vectors");
    Tensor a = abs(x);
    Tensor r;
    const int i = ax[0];
    if (!ord || *ord == 2) r = sqrt(sum(square(a), {i}));
    else if (std::isinf(*ord)) r = *ord > 0 ? max(a, {i}) : min(a, {i});
    else if (*ord == 0) r = astype(sum(not_equal(a, zeros({}, a.dtype(), a.device())), {i}), a.dtype());
    else if (*ord == 1) r = sum(a, {i});
    else r = power(sum(power(a, full({}, *ord, a.dtype())), {i}), full({}, 1.0 / *ord, a.dtype()));
    return keep_axes(r, x.shape(), ax, keepdims);
  }
  if (ax.size() == 2) {
    if (ax[0] == ax[1]) throw ShapeError("[norm] duplicate axes given");
    if (!ord && name.empty()) return matrix_norm(x, ax[0], ax[1], 0, "fro", keepdims);
    if (!name.empty() && name != "fro" && name != "nuc")
      throw ValueError("[norm] invalid norm order '" + name + "' for matrices");
    return matrix_norm(x, ax[0], ax[1], ord.value_or(0), name, keepdims);
  }
  throw ShapeError("[norm] improper number of axes to norm: " + std::to_string(ax.size()));
}
}  // namespace

Tensor norm(const Tensor& x, std::optional<double> ord, std::optional<Axes> axis, bool keepdims) {
  return norm_impl(x, ord, "", std::move(axis), keepdims);
}
Tensor internal::norm_named(const Tensor& x, std::string_view ord, std::optional<Axes> axis,
                          bool keepdims) {
  std::string o = ord == "f" ? "fro" : std::string(ord);
  if (o != "fro" && o != "nuc") throw ValueError("[norm] invalid norm order '" + o + "'");
  return norm_impl(x, std::nullopt, o, std::move(axis), keepdims);
}

Tensor cond(const Tensor& a, std::optional<double> p) {
  check_matrix(a, "cond");
  if (!p || *p == 2 || *p == -2) {
    Tensor s = svdvals(a);
    const int64_t k = s.shape(-1);
    Tensor first = slice(s, -1, 0, 1), last = slice(s, -1, k - 1, k);
    Tensor r = (!p || *p == 2) ? first / last : last / first;
    return squeeze(r, Axes{-1});
  }
  check_square(a, "cond");
  return norm(a, p, Axes{-2, -1}) * norm(inv(a), p, Axes{-2, -1});
}
Tensor internal::cond_named(const Tensor& a, std::string_view p) {
  check_square(a, "cond");
  return norm(a, p, Axes{-2, -1}) * norm(inv(a), p, Axes{-2, -1});
}

Tensor matrix_power(const Tensor& a, int64_t n) {
  check_square(a, "matrix_power");
  const int64_t m = a.shape(-1);
  if (n == 0) return broadcast_to(eye(m, m, 0, a.dtype(), a.device()), a.shape()) + zeros_like(a);
  Tensor base = n < 0 ? inv(a) : a;
  uint64_t e = n < 0 ? static_cast<uint64_t>(-(n + 1)) + 1 : static_cast<uint64_t>(n);
  if (e == 1) return copy(base);
  Tensor result;
  while (e) {
    if (e & 1) result = result.defined() ? matmul(result, base) : base;
    e >>= 1;
    if (e) base = matmul(base, base);
  }
  return result;
}

Tensor diagonal(const Tensor& x, int64_t offset) {
  check_matrix(x, "diagonal");
  const int64_t n = x.shape(-2), m = x.shape(-1);
  const int64_t len = std::max<int64_t>(0, offset >= 0 ? std::min(n, m - offset) : std::min(n + offset, m));
  Shape b = batch_of(x, 2);
  Tensor flat = reshape(x, cat(b, {n * m}));
  if (len == 0) return slice(flat, -1, 0, 0);
  const int64_t start = offset >= 0 ? offset : -offset * m;
  return slice(flat, -1, start, start + (len - 1) * (m + 1) + 1, m + 1);
}

Tensor trace(const Tensor& x, int64_t offset) {
  check_matrix(x, "trace");
  return sum(diagonal(x, offset), {-1});
}

Tensor outer(const Tensor& x1, const Tensor& x2) {
  if (!x1.defined() || !x2.defined()) throw ValueError("[outer] undefined tensor argument");
  if (x1.ndim() != 1 || x2.ndim() != 1)
    throw ShapeError("[outer] inputs must be 1-d, got shapes " + shape_str(x1.shape()) + " and " +
                     shape_str(x2.shape()));
  return tmath::outer(x1, x2);
}

Tensor cross(const Tensor& x1, const Tensor& x2, int axis) {
  if (!x1.defined() || !x2.defined()) throw ValueError("[cross] undefined tensor argument");
  if (x1.ndim() == 0 || x2.ndim() == 0)
    throw ShapeError("[cross] inputs must be at least 1-d");
  const int a1 = detail::normalize_axis(axis, x1.ndim(), "cross");
  const int a2 = detail::normalize_axis(axis, x2.ndim(), "cross");
  if (x1.shape(a1) != 3 || x2.shape(a2) != 3)
    throw ShapeError("[cross] both inputs must have 3 elements along axis " + std::to_string(axis) +
                     ", got shapes " + shape_str(x1.shape()) + " and " + shape_str(x2.shape()));
  Tensor a = moveaxis(x1, a1, -1), b = moveaxis(x2, a2, -1);
  auto c = [](const Tensor& t, int64_t i) { return slice(t, -1, i, i + 1); };
  Tensor r = concatenate({c(a, 1) * c(b, 2) - c(a, 2) * c(b, 1),
                          c(a, 2) * c(b, 0) - c(a, 0) * c(b, 2),
                          c(a, 0) * c(b, 1) - c(a, 1) * c(b, 0)},
                         -1);
  return moveaxis(r, -1, detail::normalize_axis(axis, r.ndim(), "cross"));
}

Tensor vecdot(const Tensor& x1, const Tensor& x2, int axis) {
  if (!x1.defined() || !x2.defined()) throw ValueError("[vecdot] undefined tensor argument");
  if (x1.ndim() == 0 || x2.ndim() == 0) throw ShapeError("[vecdot] inputs must be at least 1-d");
  const int a1 = detail::normalize_axis(axis, x1.ndim(), "vecdot");
  const int a2 = detail::normalize_axis(axis, x2.ndim(), "vecdot");
  if (x1.shape(a1) != x2.shape(a2))
    throw ShapeError("[vecdot] axis " + std::to_string(axis) + " has different sizes in shapes " +
                     shape_str(x1.shape()) + " and " + shape_str(x2.shape()));
  Tensor p = conj(moveaxis(x1, a1, -1)) * moveaxis(x2, a2, -1);
  return detail::sum_in_dtype(p, {-1});
}

Tensor multi_dot(const std::vector<Tensor>& arrays) {
  const size_t n = arrays.size();
  if (n < 2) throw ValueError("[multi_dot] expecting at least two arrays");
  std::vector<Tensor> xs = arrays;
  const bool first_vec = xs.front().ndim() == 1, last_vec = xs.back().ndim() == 1;
  if (first_vec) xs.front() = reshape(xs.front(), {1, xs.front().shape(0)});
  if (last_vec) xs.back() = reshape(xs.back(), {xs.back().shape(0), 1});
  for (size_t i = 0; i < n; ++i)
    if (xs[i].ndim() != 2)
      throw ShapeError("[multi_dot] array " + std::to_string(i) + " must be 2-d" +
                       (i == 0 || i == n - 1 ? " or 1-d" : "") + ", got shape " +
                       shape_str(arrays[i].shape()));
  Tensor r;
  if (n == 2) {
    r = matmul(xs[0], xs[1]);
  } else {
    // Matrix-chain order by dynamic programming (as NumPy's _multi_dot_matrix_chain_order).
    std::vector<int64_t> p(n + 1);
    for (size_t i = 0; i < n; ++i) p[i] = xs[i].shape(0);
    p[n] = xs[n - 1].shape(1);
    std::vector<std::vector<double>> cost(n, std::vector<double>(n, 0));
    std::vector<std::vector<size_t>> split(n, std::vector<size_t>(n, 0));
    for (size_t len = 1; len < n; ++len)
      for (size_t i = 0; i + len < n; ++i) {
        size_t j = i + len;
        cost[i][j] = std::numeric_limits<double>::infinity();
        for (size_t k = i; k < j; ++k) {
          double c = cost[i][k] + cost[k + 1][j] +
                     static_cast<double>(p[i]) * static_cast<double>(p[k + 1]) *
                         static_cast<double>(p[j + 1]);
          if (c < cost[i][j]) cost[i][j] = c, split[i][j] = k;
        }
      }
    std::function<Tensor(size_t, size_t)> build = [&](size_t i, size_t j) -> Tensor {
      if (i == j) return xs[i];
      return matmul(build(i, split[i][j]), build(split[i][j] + 1, j));
    };
    r = build(0, n - 1);
  }
  if (first_vec && last_vec) return reshape(r, {});
  if (first_vec) return reshape(r, {r.shape(1)});
  if (last_vec) return reshape(r, {r.shape(0)});
  return r;
}

}  // namespace linalg
}  // namespace tmath

namespace tmath::detail {
std::string batch_index_text(std::span<const int64_t> batch, int64_t flat) {
  if (batch.empty()) return "";
  std::vector<int64_t> idx(batch.size());
  for (size_t i = batch.size(); i-- > 0;) {
    idx[i] = flat % batch[i];
    flat /= batch[i];
  }
  std::string s = " (batch index (";
  for (size_t i = 0; i < idx.size(); ++i) s += (i ? ", " : "") + std::to_string(idx[i]);
  return s + (idx.size() == 1 ? ",))" : "))");
}
}  // namespace tmath::detail
