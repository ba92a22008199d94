// Gradient checks of the decompositions whose rules involve their factors: qr, svd (U,
// S, Vh), lu / lu_factor / lu_solve, eig / eigvals, and the complex inputs of slogdet,
// cholesky, eigh and svd. Real (float64, float32) and complex (complex128, complex64)
// inputs, batched ones, on the CPU, on CUDA (skipped, with the reason, without a GPU) and on
// the CPU with priority on the torch backend (skipped where the plugin was not built).
//
// Reference: L(x) = sum(f(x) * w) with f real-valued, evaluated in float64/complex128 on
// the CPU at the inputs' exact values, central differences with h = 1e-6 along every
// real coordinate (real and imaginary parts of complex inputs). The engine's convention
// for a complex input z = x + iy is grad L = dL/dx - i dL/dy (JAX's). Forward mode:
// <jvp(f)(x; t), w> against the directional difference along the same random tangent.
// Bound: max |analytic - fd| <= rtol * max |fd| + atol, (rtol, atol) = (1e-6, 1e-7) for
// float64/complex128 and (2e-3, 1e-4) for float32/complex64, times a per-case factor.
//
// Decompositions with a sign/phase freedom (svd, eig, eigh) are checked through functions
// that do not depend on it: U diag(g(S)) Vh, U diag(c) U^H, |U|^2, V diag(c) V^-1, ...
// qr (R with a real diagonal) and lu (pivoting fixed near the input) are unique, so their
// factors are compared directly.
#include <functional>

#include "backend_util.h"
#include "test_util.h"
#include "tmath/autodiff.h"
#include "tmath/linalg.h"

using namespace tmath;

namespace {

const Device kGPU(DeviceType::CUDA, 0);

bool cuda_ok() { return tt::backend_ok("cuda"); }
std::string cuda_reason() { return tt::backend_reason("cuda"); }

Tensor mT(const Tensor& x) { return swapaxes(x, -1, -2); }
Tensor mH(const Tensor& x) { return is_complex(x.dtype()) ? conj(mT(x)) : mT(x); }
Tensor flat(const Tensor& x) { return reshape(x, {x.size()}); }
// Real and imaginary parts of every tensor, flattened into one real vector.
Tensor flat_real(const TensorList& xs) {
  TensorList parts;
  for (const auto& x : xs) {
    parts.push_back(flat(real(x)));
    if (is_complex(x.dtype())) parts.push_back(flat(imag(x)));
  }
  return concatenate(parts, 0);
}
// |x|^2 elementwise (real), written with differentiable products.
Tensor abs2(const Tensor& x) { return real(x * conj(x)); }
// Fixed distinct weights 1, 2, ..., n along the last axis, in x's dtype.
Tensor ramp(int64_t n, const Tensor& like) {
  return astype(arange(int64_t{1}, n + 1, int64_t{1}, int64, like.device()), like.dtype());
}
int64_t n_of(const Tensor& a) { return a.shape(-1); }
Tensor eye_like(const Tensor& a) {
  return eye(n_of(a), n_of(a), 0, a.dtype(), a.device());
}
// Well-conditioned square matrix.
Tensor wc(const Tensor& a) { return a + eye_like(a) * 3.0; }
// Hermitian positive definite.
Tensor hpd(const Tensor& a) { return matmul(a, mH(a)) + eye_like(a) * static_cast<double>(n_of(a)); }
Tensor herm(const Tensor& a) { return (a + mH(a)) * 0.5; }

struct Case {
  std::string name;
  std::vector<Shape> inputs;
  std::function<Tensor(const TensorList&)> f;  // real-valued
  bool complex_ok = true;                      // also run complex inputs
  double tol = 1.0;
  bool forward = true;
};

std::vector<Case> make_cases() {
  std::vector<Case> c;
  auto one = [&](const std::string& name, Shape s, std::function<Tensor(const Tensor&)> fn,
                 bool complex_ok = true, double tol = 1.0) {
    c.push_back({name, {s}, [fn](const TensorList& x) { return fn(x[0]); }, complex_ok, tol});
  };

  // ---- qr: Q and R compared directly (R's diagonal is real, so the factors are unique).
  for (auto [tag, s] : {std::pair<std::string, Shape>{"tall", {4, 3}},
                        {"square", {3, 3}},
                        {"wide", {3, 5}},
                        {"batched", {2, 4, 3}},
                        {"batched_wide", {2, 2, 3}}}) {
    one("qr_" + tag, s, [](const Tensor& a) {
      auto r = linalg::qr(a);
      return flat_real({r.Q, r.R});
    });
  }
  one("qr_only_Q", {4, 3}, [](const Tensor& a) { return flat_real({linalg::qr(a).Q}); });
  one("qr_only_R", {3, 4}, [](const Tensor& a) { return flat_real({linalg::qr(a).R}); });
  one("qr_mode_r", {4, 3},
      [](const Tensor& a) { return flat_real({linalg::qr(a, linalg::QrMode::R).R}); });
  one("qr_complete_wide", {3, 4}, [](const Tensor& a) {
    auto r = linalg::qr(a, linalg::QrMode::Complete);
    return flat_real({r.Q, r.R});
  });

  // ---- svd: gauge-invariant functions of the factors.
  auto usv = [](const linalg::SVDResult& d, int64_t k) {
    Tensor U = slice(d.U, -1, 0, k), Vh = slice(d.Vh, -2, 0, k);
    Tensor S = astype(d.S, U.dtype());
    // U diag(S^2 + 1) Vh couples U and V; U diag(c) U^H and V diag(c) V^H see each alone.
    Tensor a = matmul(U * expand_dims(S * S + 1.0, -2), Vh);
    Tensor c = ramp(k, U);
    Tensor pu = matmul(U * expand_dims(c, -2), mH(U));
    Tensor pv = matmul(mH(Vh) * expand_dims(c, -2), Vh);
    return flat_real({a, pu, pv, d.S});
  };
  for (auto [tag, s] : {std::pair<std::string, Shape>{"tall", {4, 3}},
                        {"square", {3, 3}},
                        {"wide", {2, 4}},
                        {"batched", {2, 3, 4}}}) {
    one("svd_" + tag, s, [usv](const Tensor& a) {
      const int64_t k = std::min(a.shape(-2), a.shape(-1));
      return usv(linalg::svd(a, false), k);
    });
  }
  // full_matrices: the columns past k are an arbitrary basis; only the first k are used.
  for (auto [tag, s] : {std::pair<std::string, Shape>{"tall", {4, 2}}, {"square", {3, 3}}}) {
    one("svd_full_" + tag, s, [usv](const Tensor& a) {
      const int64_t k = std::min(a.shape(-2), a.shape(-1));
      return usv(linalg::svd(a, true), k);
    });
  }
  one("svd_only_U", {4, 3}, [](const Tensor& a) { return flat_real({abs2(linalg::svd(a, false).U)}); });
  one("svd_only_Vh", {3, 4},
      [](const Tensor& a) { return flat_real({abs2(linalg::svd(a, false).Vh)}); });
  one("svd_S", {3, 4}, [](const Tensor& a) { return linalg::svd(a, false).S; });
  one("svdvals", {2, 4, 3}, [](const Tensor& a) { return linalg::svdvals(a); });

  // ---- lu: P is constant near the input; L and U compared directly.
  for (auto [tag, s] : {std::pair<std::string, Shape>{"square", {3, 3}},
                        {"tall", {4, 3}},
                        {"wide", {3, 5}},
                        {"batched", {2, 3, 3}}}) {
    one("lu_" + tag, s, [](const Tensor& a) {
      auto r = linalg::lu(a);
      return flat_real({r.L, r.U, matmul(r.P, matmul(r.L, r.U))});
    });
  }
  one("lu_factor", {2, 4, 4}, [](const Tensor& a) { return flat_real({linalg::lu_factor(a).LU}); });
  one("lu_factor_tall", {5, 3},
      [](const Tensor& a) { return flat_real({linalg::lu_factor(a).LU}); });
  c.push_back({"lu_solve",
               {{3, 3}, {3, 2}},
               [](const TensorList& x) {
                 auto f = linalg::lu_factor(wc(x[0]));
                 return flat_real({linalg::lu_solve(f.LU, f.pivots, x[1])});
               }});
  c.push_back({"lu_solve_vector_batched",
               {{2, 4, 4}, {4}},
               [](const TensorList& x) {
                 auto f = linalg::lu_factor(wc(x[0]));
                 return flat_real({linalg::lu_solve(f.LU, f.pivots, x[1])});
               }});
  // The packed factors as an independent input: the rule with respect to LU itself
  // (pivots of a fixed matrix, factors moved by x0).
  c.push_back({"lu_solve_packed",
               {{3, 3}, {3, 2}},
               [](const TensorList& x) {
                 Tensor c = astype(tt::make({0.5, 3, 1, 3, 1, -1, 1, 0.5, 4}, {3, 3}, float64),
                                   x[0].dtype())
                                .to(x[0].device());
                 auto f = linalg::lu_factor(c);
                 Tensor LU = f.LU + x[0] * 0.1;
                 return flat_real({linalg::lu_solve(LU, f.pivots, x[1])});
               }});

  // ---- eig / eigvals (real input: complex results): gauge-invariant functions.
  auto eigf = [](const Tensor& a) {
    auto e = linalg::eig(a);
    Tensor V = e.eigenvectors;
    Tensor c = astype(ramp(n_of(a), V), V.dtype());
    // V diag(c) V^-1 does not depend on any column scaling; |V|^2 on the phases only.
    Tensor m = matmul(V * expand_dims(c, -2), linalg::inv(V));
    return flat_real({e.eigenvalues, m, abs2(V)});
  };
  one("eig", {3, 3}, eigf);
  one("eig_4x4", {4, 4}, eigf);
  one("eig_batched", {2, 3, 3}, eigf);
  one("eig_only_vectors", {3, 3},
      [](const Tensor& a) { return flat_real({abs2(linalg::eig(a).eigenvectors)}); });
  one("eigvals", {2, 4, 4}, [](const Tensor& a) { return flat_real({linalg::eigvals(a)}); });

  // ---- the rules that existed for real input, now also complex.
  one("slogdet", {3, 3}, [](const Tensor& a) {
    auto r = linalg::slogdet(wc(a));
    return flat_real({r.logabsdet, r.sign});
  });
  one("slogdet_batched", {2, 3, 3}, [](const Tensor& a) {
    auto r = linalg::slogdet(wc(a));
    return flat_real({r.logabsdet, r.sign});
  });
  one("cholesky", {3, 3}, [](const Tensor& a) { return flat_real({linalg::cholesky(hpd(a))}); });
  one("cholesky_upper", {2, 3, 3},
      [](const Tensor& a) { return flat_real({linalg::cholesky(hpd(a), true)}); });
  // The triangle read: a is used as is (its other triangle does not matter).
  one("cholesky_triangle", {3, 3},
      [](const Tensor& a) { return flat_real({linalg::cholesky(a * 0.3 + eye_like(a) * 2.0)}); });
  auto eighf = [](const Tensor& a, char uplo) {
    auto e = linalg::eigh(a, uplo);
    Tensor V = e.eigenvectors;
    Tensor c = ramp(n_of(a), V);
    Tensor m = matmul(V * expand_dims(c, -2), mH(V));
    return flat_real({e.eigenvalues, m, abs2(V)});
  };
  one("eigh", {3, 3}, [eighf](const Tensor& a) { return eighf(herm(a), 'L'); });
  one("eigh_upper_batched", {2, 3, 3}, [eighf](const Tensor& a) { return eighf(herm(a), 'U'); });
  one("eigh_triangle", {3, 3}, [eighf](const Tensor& a) { return eighf(a, 'L'); });
  one("eigvalsh", {3, 3}, [](const Tensor& a) { return linalg::eigvalsh(herm(a)); });
  return c;
}

const std::vector<Case>& cases() {
  static const std::vector<Case> c = make_cases();
  return c;
}

tt::Tol tol_of(DType dt) {
  return real_type(dt) == float64 ? tt::Tol{1e-6, 1e-7} : tt::Tol{2e-3, 1e-4};
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

::testing::AssertionResult close(const std::vector<double>& got, const std::vector<double>& want,
                                 tt::Tol tol, double scale, const std::string& what) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " != " << want.size();
  const double bound = tol.rtol * scale * max_abs(want) + tol.atol * scale;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= bound))
      return ::testing::AssertionFailure() << what << "[" << i << "]: analytic " << got[i]
                                           << " vs finite difference " << want[i] << " (bound "
                                           << bound << ")";
  return ::testing::AssertionSuccess();
}

// One input's values: real parts and (complex) imaginary parts.
struct Vals {
  std::vector<double> re, im;
};
Tensor build(const Vals& v, const Shape& s, DType dt) {
  if (!is_complex(dt)) return tt::make(v.re, s, dt);
  std::vector<tt::cplx> c(v.re.size());
  for (size_t i = 0; i < c.size(); ++i) c[i] = {v.re[i], v.im[i]};
  return tt::make_c(c, s, dt);
}

void run_case(const Case& cs, DType dt, Device dev) {
  const bool cplx = is_complex(dt);
  const DType ref_dt = cplx ? complex128 : float64;
  std::mt19937 rng(4321);
  std::vector<Vals> vals;
  TensorList xs, xs64;
  for (const auto& s : cs.inputs) {
    const size_t n = static_cast<size_t>(tt::numel(s));
    Vals v{tt::random_values(rng, n, -1, 1, real_type(dt)), {}};
    if (cplx) v.im = tt::random_values(rng, n, -1, 1, real_type(dt));
    xs.push_back(build(v, s, dt).to(dev));
    xs64.push_back(build(v, s, ref_dt));
    vals.push_back(std::move(v));
  }
  Tensor y64 = cs.f(xs64);
  y64.eval();
  ASSERT_FALSE(is_complex(y64.dtype())) << "test functions must be real-valued";
  auto wv = tt::random_values(rng, static_cast<size_t>(y64.size()), -1, 1, float64);
  Tensor w64 = tt::make(wv, y64.shape(), float64);
  auto L = [&](const TensorList& a) { return tt::read1(sum(astype(cs.f(a), float64) * w64)); };

  std::vector<int> argnums;
  for (size_t i = 0; i < xs.size(); ++i) argnums.push_back(static_cast<int>(i));
  Tensor w = w64.to(dev);
  TensorList g = grad(ScalarFunction([&](const TensorList& a) {
                        Tensor y = cs.f(a);
                        return sum(y * astype(w, y.dtype()));
                      }),
                      argnums)(xs);
  const double h = 1e-6;
  const tt::Tol tol = tol_of(dt);
  auto perturbed = [&](size_t k, size_t j, bool imag_part, double step) {
    Vals v = vals[k];
    (imag_part ? v.im : v.re)[j] += step;
    TensorList a = xs64;
    a[k] = build(v, cs.inputs[k], ref_dt);
    return a;
  };
  for (size_t k = 0; k < xs.size(); ++k) {
    ASSERT_EQ(g[k].shape(), xs[k].shape());
    ASSERT_EQ(g[k].dtype(), dt);
    const size_t n = vals[k].re.size();
    std::vector<double> fd_re(n), fd_im(n), got_re(n), got_im(n);
    auto gc = tt::read_c(g[k]);
    for (size_t j = 0; j < n; ++j) {
      fd_re[j] = (L(perturbed(k, j, false, h)) - L(perturbed(k, j, false, -h))) / (2 * h);
      got_re[j] = gc[j].real();
      if (cplx) {
        // grad = dL/dx - i dL/dy.
        fd_im[j] = -(L(perturbed(k, j, true, h)) - L(perturbed(k, j, true, -h))) / (2 * h);
        got_im[j] = gc[j].imag();
      }
    }
    EXPECT_TRUE(close(got_re, fd_re, tol, cs.tol, "vjp d/dx" + std::to_string(k) + " real part"));
    if (cplx) {
      EXPECT_TRUE(close(got_im, fd_im, tol, cs.tol, "vjp d/dx" + std::to_string(k) + " imag part"));
    }
  }

  if (!cs.forward) return;
  TensorList ts, ap = xs64, am = xs64;
  for (size_t k = 0; k < xs.size(); ++k) {
    const size_t n = vals[k].re.size();
    Vals t{tt::random_values(rng, n, -1, 1, real_type(dt)), {}};
    if (cplx) t.im = tt::random_values(rng, n, -1, 1, real_type(dt));
    ts.push_back(build(t, cs.inputs[k], dt).to(dev));
    Vals p = vals[k], m = vals[k];
    for (size_t j = 0; j < n; ++j) {
      p.re[j] += h * t.re[j], m.re[j] -= h * t.re[j];
      if (cplx) p.im[j] += h * t.im[j], m.im[j] -= h * t.im[j];
    }
    ap[k] = build(p, cs.inputs[k], ref_dt);
    am[k] = build(m, cs.inputs[k], ref_dt);
  }
  auto [outs, tans] = jvp([&](const TensorList& a) { return TensorList{cs.f(a)}; }, xs, ts);
  ASSERT_EQ(tans[0].shape(), outs[0].shape());
  double got = tt::read1(sum(astype(tans[0], float64).to(kCPU) * w64));
  double want = (L(ap) - L(am)) / (2 * h);
  EXPECT_TRUE(close({got}, {want}, tol, cs.tol * 4, "jvp"));
}

struct Param {
  size_t index;
  DType dtype;
};

std::vector<Param> params() {
  std::vector<Param> p;
  for (size_t i = 0; i < cases().size(); ++i)
    for (DType dt : {float64, complex128, float32, complex64})
      if (cases()[i].complex_ok || !is_complex(dt)) p.push_back({i, dt});
  return p;
}

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  return cases()[info.param.index].name + "_" + tt::name_of(info.param.dtype);
}

class LinalgGrad : public ::testing::TestWithParam<Param> {};

TEST_P(LinalgGrad, Cpu) { run_case(cases()[GetParam().index], GetParam().dtype, kCPU); }

TEST_P(LinalgGrad, Cuda) {
  if (!cuda_ok()) GTEST_SKIP() << "no CUDA device: " << cuda_reason();
  run_case(cases()[GetParam().index], GetParam().dtype, kGPU);
}

// The same checks with priority on the torch backend (LibTorch's torch.linalg on the cpu
// device); skipped where the plugin was not built.
TEST_P(LinalgGrad, Torch) {
  if (!load_backend("torch")) GTEST_SKIP() << "torch backend: " << tt::backend_reason("torch");
  struct Restore {
    std::vector<std::string> saved = backend_priority();
    ~Restore() { set_backend_priority(saved); }
  } restore;
  set_backend_priority({"torch"});
  for (OpCode op : {OpCode::Qr, OpCode::Svd, OpCode::Lu, OpCode::LuSolve, OpCode::Eig,
                    OpCode::Eigh, OpCode::Cholesky, OpCode::Slogdet})
    ASSERT_EQ(select_backend(op, GetParam().dtype, kCPU)->name(), "torch") << op_name(op);
  run_case(cases()[GetParam().index], GetParam().dtype, kCPU);
}

INSTANTIATE_TEST_SUITE_P(Decompositions, LinalgGrad, ::testing::ValuesIn(params()), param_name);

// ---- what is not differentiable says so ---------------------------------------------

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

Tensor rand_mat(Shape s, unsigned seed) {
  std::mt19937 rng(seed);
  return tt::make(tt::random_values(rng, static_cast<size_t>(tt::numel(s)), -1, 1, float64), s,
                  float64);
}

TEST(LinalgGradErrors, QrCompleteTallIsNotDifferentiable) {
  Tensor a = rand_mat({4, 3}, 1);
  std::string msg = error_of([&] {
    grad([](const Tensor& x) { return sum(linalg::qr(x, linalg::QrMode::Complete).Q); })(a);
  });
  EXPECT_NE(msg.find("[qr]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("complete"), std::string::npos) << msg;
  EXPECT_THROW(
      grad([](const Tensor& x) { return sum(linalg::qr(x, linalg::QrMode::Complete).R); })(a),
      UnsupportedError);
}

TEST(LinalgGradErrors, LuSolveOfASingularMatrixRaises) {
  // Rank one: U has an exact zero on its diagonal.
  Tensor a = tt::make({1, 2, 3, 2, 4, 6, 3, 6, 9}, {3, 3}, float64);
  Tensor b = rand_mat({3}, 2);
  auto f = linalg::lu_factor(a);
  std::string msg;
  try {
    grad([&](const Tensor& x) { return sum(linalg::lu_solve(f.LU, f.pivots, x)); })(b);
  } catch (const LinAlgError& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("[lu_solve]"), std::string::npos) << msg;
  // Through the factorisation too (gradient with respect to a).
  msg.clear();
  try {
    grad([&](const Tensor& x) {
      auto g = linalg::lu_factor(x);
      return sum(linalg::lu_solve(g.LU, g.pivots, b));
    })(a);
  } catch (const LinAlgError& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("[lu_solve]"), std::string::npos) << msg;
}

// Repeated singular values: the singular vectors are not unique and the gradient through
// them is undefined (1 / (s_j^2 - s_i^2)); it comes out non-finite, never silently finite.
TEST(LinalgGradErrors, SvdVectorsOfRepeatedSingularValuesAreNotFinite) {
  Tensor a = eye(3, 3, 0, float64);
  Tensor g = grad([](const Tensor& x) { return sum(linalg::svd(x, false).U * 2.0); })(a);
  bool finite = true;
  for (double v : tt::read(g)) finite = finite && std::isfinite(v);
  EXPECT_FALSE(finite);
  // The singular values alone stay differentiable there.
  Tensor gs = grad([](const Tensor& x) { return sum(linalg::svd(x, false).S); })(a);
  for (double v : tt::read(gs)) EXPECT_TRUE(std::isfinite(v));
}

// Nested: the rules are written in engine ops, so second derivatives work.
TEST(LinalgGradNested, HessianVectorProductThroughQrAndSvd) {
  Tensor a = rand_mat({4, 3}, 3), v = rand_mat({4, 3}, 4);
  auto f = [](const Tensor& x) {
    auto q = linalg::qr(x);
    auto d = linalg::svd(x, false);
    return sum(square(q.R)) * 0.5 + sum(square(d.S) * d.S) + sum(abs2(d.U) * q.Q);
  };
  Tensor hv = hvp(f, a, v);
  // Central difference of the gradient along v.
  const double h = 1e-5;
  Tensor gp = grad(f)(a + v * h), gm = grad(f)(a - v * h);
  auto want = tt::read((gp - gm) / (2 * h));
  auto got = tt::read(hv);
  ASSERT_EQ(got.size(), want.size());
  double m = max_abs(want);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5 * m + 1e-7) << i;
}

}  // namespace
