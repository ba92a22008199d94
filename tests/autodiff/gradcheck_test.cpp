// Grad-check harness: every differentiable primitive (and the composed ops users reach
// them through) x float dtype x backend, reverse mode (grad of <f(x), w>) and forward
// mode (jvp along a random tangent) against central finite differences in float64.
//
// Reference: L(x) = sum(f(x) * w) evaluated in float64 on the CPU at the inputs' exact
// values (rounded to the dtype under test), h = 1e-6, dL/dx_j = (L(x+h e_j) -
// L(x-h e_j)) / 2h and the directional derivative along the tangent the same way.
// Tolerance (max |analytic - fd| <= rtol * max|fd| + atol, per case scaled by `tol`):
//   float64 1e-6 / 1e-7, float32 2e-3 / 1e-4, float16 5e-2 / 5e-3, bfloat16 1.2e-1 / 1e-2.
// Low-precision tolerances cover the dtype's own rounding of every intermediate.
#include <gtest/gtest-spi.h>

#include <functional>
#include <map>

#include "backend_util.h"
#include "test_util.h"
#include "tmath/autodiff.h"
#include "tmath/linalg.h"

using namespace tmath;

namespace {

const Device kGPU(DeviceType::CUDA, 0);

bool cuda_ok() { return tt::backend_ok("cuda"); }
std::string cuda_reason() { return tt::backend_reason("cuda"); }

struct In {
  Shape shape;
  double lo = -1.0, hi = 1.0;
  double min_abs = 0.0;
};

struct Case {
  std::string name;
  std::vector<In> inputs;
  std::function<Tensor(const TensorList&)> f;
  double tol = 1.0;     // multiplies the dtype tolerance
  bool low = true;      // also run float16/bfloat16
  bool forward = true;  // also check jvp
};

Tensor c64(const std::vector<double>& v, const Shape& s) {
  return tt::make(v, s, float64);
}
Tensor idx64(const std::vector<double>& v, const Shape& s) {
  return tt::make(v, s, int64);
}

// Symmetric positive definite (n x n) from a square input.
Tensor spd(const Tensor& a) {
  const int64_t n = a.shape(-1);
  return matmul(a, swapaxes(a, -1, -2)) +
         eye(n, n, 0, a.dtype(), a.device()) * static_cast<double>(n);
}
Tensor sym(const Tensor& a) {
  return (a + swapaxes(a, -1, -2)) * 0.5;
}
// Well-conditioned square matrix.
Tensor wc(const Tensor& a) {
  const int64_t n = a.shape(-1);
  return a + eye(n, n, 0, a.dtype(), a.device()) * 3.0;
}

std::vector<Case> make_cases() {
  std::vector<Case> c;
  auto un = [&](const std::string& name, std::function<Tensor(const Tensor&)> fn, double lo = -1,
                double hi = 1, double min_abs = 0.0, double tol = 1.0) {
    c.push_back(
        {name, {{{3, 4}, lo, hi, min_abs}}, [fn](const TensorList& x) { return fn(x[0]); }, tol});
  };
  un("neg", [](const Tensor& x) { return neg(x); });
  un(
      "abs", [](const Tensor& x) { return abs(x); }, -1, 1, 0.05);
  un(
      "sign", [](const Tensor& x) { return sign(x) * x; }, -1, 1, 0.05);
  un("exp", [](const Tensor& x) { return exp(x); });
  un("expm1", [](const Tensor& x) { return expm1(x); });
  un(
      "log", [](const Tensor& x) { return log(x); }, 0.5, 2);
  un(
      "log1p", [](const Tensor& x) { return log1p(x); }, -0.5, 2);
  un(
      "log2", [](const Tensor& x) { return log2(x); }, 0.5, 2);
  un(
      "log10", [](const Tensor& x) { return log10(x); }, 0.5, 2);
  un(
      "sqrt", [](const Tensor& x) { return sqrt(x); }, 0.5, 2);
  un(
      "rsqrt", [](const Tensor& x) { return rsqrt(x); }, 0.5, 2);
  un("square", [](const Tensor& x) { return square(x); });
  un(
      "reciprocal", [](const Tensor& x) { return reciprocal(x); }, 0.5, 2);
  un("sin", [](const Tensor& x) { return sin(x); });
  un("cos", [](const Tensor& x) { return cos(x); });
  un("tan", [](const Tensor& x) { return tan(x); });
  un(
      "asin", [](const Tensor& x) { return asin(x); }, -0.8, 0.8);
  un(
      "acos", [](const Tensor& x) { return acos(x); }, -0.8, 0.8);
  un("atan", [](const Tensor& x) { return atan(x); });
  un("asinh", [](const Tensor& x) { return asinh(x); });
  un(
      "acosh", [](const Tensor& x) { return acosh(x); }, 1.2, 2.5);
  un(
      "atanh", [](const Tensor& x) { return atanh(x); }, -0.8, 0.8);
  un("sinh", [](const Tensor& x) { return sinh(x); });
  un("cosh", [](const Tensor& x) { return cosh(x); });
  un("tanh", [](const Tensor& x) { return tanh(x); });
  un("sigmoid", [](const Tensor& x) { return sigmoid(x); });
  un(
      "relu", [](const Tensor& x) { return relu(x); }, -1, 1, 0.05);
  un("gelu", [](const Tensor& x) { return gelu(x); });
  un("gelu_tanh", [](const Tensor& x) { return gelu(x, true); });
  un("silu", [](const Tensor& x) { return silu(x); });
  un("erf", [](const Tensor& x) { return erf(x); });
  un(
      "erfinv", [](const Tensor& x) { return erfinv(x); }, -0.8, 0.8, 0.0, 2.0);
  // Piecewise constant: zero gradient away from the jumps (inputs stay clear of them).
  un(
      "floor", [](const Tensor& x) { return floor(x) * x; }, 1.1, 1.9);
  un(
      "ceil", [](const Tensor& x) { return ceil(x) * x; }, 1.1, 1.9);
  un(
      "round", [](const Tensor& x) { return round(x) * x; }, 1.1, 1.4);
  un("astype", [](const Tensor& x) { return astype(x, float64) * 2.0; });
  un("copy", [](const Tensor& x) { return copy(x); });

  auto bin = [&](const std::string& name, std::function<Tensor(const Tensor&, const Tensor&)> fn,
                 Shape sa, Shape sb, double lo = -1, double hi = 1, double min_abs = 0.0,
                 double tol = 1.0) {
    c.push_back({name,
                 {{sa, lo, hi, min_abs}, {sb, lo, hi, min_abs}},
                 [fn](const TensorList& x) { return fn(x[0], x[1]); },
                 tol});
  };
  for (auto [tag, sa, sb] :
       {std::tuple<std::string, Shape, Shape>{"", {3, 4}, {3, 4}}, {"_bcast", {3, 1}, {4}}}) {
    bin(
        "add" + tag, [](const Tensor& a, const Tensor& b) { return a + b; }, sa, sb);
    bin(
        "subtract" + tag, [](const Tensor& a, const Tensor& b) { return a - b; }, sa, sb);
    bin(
        "multiply" + tag, [](const Tensor& a, const Tensor& b) { return a * b; }, sa, sb);
    bin(
        "divide" + tag, [](const Tensor& a, const Tensor& b) { return a / b; }, sa, sb, 0.5, 2);
    bin(
        "power" + tag, [](const Tensor& a, const Tensor& b) { return power(a, b); }, sa, sb, 0.5,
        2);
    bin(
        "maximum" + tag, [](const Tensor& a, const Tensor& b) { return maximum(a, b); }, sa, sb);
    bin(
        "minimum" + tag, [](const Tensor& a, const Tensor& b) { return minimum(a, b); }, sa, sb);
    bin(
        "atan2" + tag, [](const Tensor& a, const Tensor& b) { return atan2(a, b); }, sa, sb, 0.3,
        1);
    bin(
        "hypot" + tag, [](const Tensor& a, const Tensor& b) { return hypot(a, b); }, sa, sb, 0.3,
        1);
    bin(
        "gelu_grad" + tag, [](const Tensor& a, const Tensor& b) { return gelu_grad(a, b * 2.0); },
        sa, sb);
    bin(
        "gelu_tanh_grad" + tag,
        [](const Tensor& a, const Tensor& b) { return gelu_grad(a, b * 2.0, true); }, sa, sb);
  }
  bin(
      "remainder", [](const Tensor& a, const Tensor& b) { return remainder(a, b * 0.1 + 1.0); },
      {3, 4}, {3, 4}, 1.05, 1.9);
  bin("where", [](const Tensor& a, const Tensor& b) { return where(a > b, a * 2.0, b * b); },
      {3, 4}, {3, 4});
  bin("clip", [](const Tensor& a, const Tensor& b) { return clip(a, b - 0.5, b + 0.5); }, {3, 4},
      {3, 4});

  // Shapes and views.
  un("reshape", [](const Tensor& x) { return reshape(x, {2, 6}) * 1.5; });
  un("transpose",
     [](const Tensor& x) { return transpose(x) * arange(0, 3, 1, float64, x.device()); });
  un("slice", [](const Tensor& x) {
    return index(x, {Slice(1, 3), Slice(std::nullopt, std::nullopt, -1)});
  });
  un("slice_step", [](const Tensor& x) { return index(x, {Slice(0, 3, 2), Slice(3, 0, -2)}); });
  un("broadcast_to", [](const Tensor& x) {
    return broadcast_to(x, {2, 3, 4}) * arange(0, 4, 1, float64, x.device());
  });
  un("flip",
     [](const Tensor& x) { return flip(x, Axes{1}) * arange(0, 4, 1, float64, x.device()); });
  un("squeeze_expand", [](const Tensor& x) { return squeeze(expand_dims(x, 0)); });
  un("pad", [](const Tensor& x) { return pad(x, {{1, 2}, {0, 1}}, PadMode::Constant, 3.0) * 1.5; });
  un("pad_edge", [](const Tensor& x) { return pad(x, {{1, 2}, {2, 1}}, PadMode::Edge); });
  un("pad_reflect", [](const Tensor& x) { return pad(x, {{1, 1}, {2, 1}}, PadMode::Reflect); });
  un("tril", [](const Tensor& x) { return tril(x, 1); });
  bin("concatenate",
      [](const Tensor& a, const Tensor& b) {
        return concatenate({a, b * b}, 1);
      },
      {3, 4}, {3, 2});
  bin("stack", [](const Tensor& a, const Tensor& b) { return stack({a, b}, 1); }, {3, 4}, {3, 4});
  un("split", [](const Tensor& x) {
    auto p = split(x, 2, 1);
    return p[0] * p[1];
  });
  un("take", [](const Tensor& x) {
    return take(x, idx64({2, 0, 2, 1}, {2, 2}).to(x.device()), 1);
  });
  un("take_flat", [](const Tensor& x) {
    return take(x, idx64({11, 0, 5, 5, -1}, {5}).to(x.device()));
  });
  bin("put",
      [](const Tensor& a, const Tensor& b) {
        return put(a, idx64({1, 5, -1, 7}, {2, 2}).to(a.device()), b * b);
      },
      {3, 4}, {2, 2});
  bin("put_add",
      [](const Tensor& a, const Tensor& b) {
        return put_add(a * a, idx64({1, 5, 1, 11, -1}, {5}).to(a.device()), b);
      },
      {3, 4}, {5});
  bin("put_broadcast",
      [](const Tensor& a, const Tensor& b) {
        return put(a, idx64({0, 4, 8}, {3}).to(a.device()), sum(b));
      },
      {3, 4}, {2});
  un("take_along_axis", [](const Tensor& x) {
    return take_along_axis(x, idx64({0, 2, 1, 1, 0, 2, 2, 2}, {2, 4}).to(x.device()), 0);
  });

  // Reductions.
  un("sum", [](const Tensor& x) { return sum(x, {1}); });
  un("sum_all", [](const Tensor& x) { return sum(x) * sum(x); });
  un(
      "prod", [](const Tensor& x) { return prod(x, {0}); }, 0.5, 1.5);
  un("max", [](const Tensor& x) { return max(x, {1}); });
  un("min", [](const Tensor& x) { return min(x, {0}, true); });
  un("mean", [](const Tensor& x) { return mean(x, {0}); });
  un("var", [](const Tensor& x) { return var(x, {1}, 1.0); });
  un("std", [](const Tensor& x) { return tmath::std(x, {1}); });
  un("logsumexp", [](const Tensor& x) { return logsumexp(x, {1}); });
  un("cumsum", [](const Tensor& x) { return cumsum(x, 1); });
  un(
      "cumprod", [](const Tensor& x) { return cumprod(x, 0); }, 0.5, 1.5);
  un("softmax", [](const Tensor& x) { return softmax(x); });
  un("softmax_axis0", [](const Tensor& x) { return softmax(x, 0); });
  un("log_softmax", [](const Tensor& x) { return log_softmax(x); });
  un(
      "layer_norm", [](const Tensor& x) { return layer_norm(x); }, -1, 1, 0.0, 2.0);
  c.push_back({"layer_norm_affine",
               {{{2, 3, 4}}, {{3, 4}}, {{3, 4}}},
               [](const TensorList& x) { return layer_norm(x[0], x[1], x[2], 1e-5, 2); },
               2.0});

  // Matmul family.
  bin("matmul", [](const Tensor& a, const Tensor& b) { return matmul(a, b); }, {3, 4}, {4, 2});
  bin("matmul_batched", [](const Tensor& a, const Tensor& b) { return matmul(a, b); }, {2, 3, 4},
      {4, 2});
  bin("matvec", [](const Tensor& a, const Tensor& b) { return matmul(a, b); }, {3, 4}, {4});
  bin("einsum",
      [](const Tensor& a, const Tensor& b) {
        return einsum("ij,kj->ik", {a, b});
      },
      {3, 4}, {2, 4});
  bin("tensordot", [](const Tensor& a, const Tensor& b) { return tensordot(a, b, 1); }, {3, 4},
      {4, 2});

  // Linear algebra (float16/bfloat16 compute in float32 and round the result).
  auto la = [&](const std::string& name, std::vector<In> ins,
                std::function<Tensor(const TensorList&)> fn, double tol = 1.0,
                bool forward = true) {
    c.push_back({name, std::move(ins), std::move(fn), tol, true, forward});
  };
  la("solve", {{{3, 3}}, {{3, 2}}},
     [](const TensorList& x) { return linalg::solve(wc(x[0]), x[1]); });
  la("solve_triangular", {{{3, 3}}, {{3, 2}}},
     [](const TensorList& x) { return linalg::solve_triangular(wc(x[0]), x[1], true); });
  la("inv", {{{3, 3}}}, [](const TensorList& x) { return linalg::inv(wc(x[0])); });
  la("det", {{{2, 3, 3}}}, [](const TensorList& x) { return linalg::det(wc(x[0])); });
  la("slogdet", {{{3, 3}}},
     [](const TensorList& x) { return linalg::slogdet(wc(x[0])).logabsdet; });
  la(
      "cholesky", {{{3, 3}}}, [](const TensorList& x) { return linalg::cholesky(spd(x[0])); }, 2.0);
  la(
      "cholesky_upper", {{{3, 3}}},
      [](const TensorList& x) { return linalg::cholesky(spd(x[0]), true); }, 2.0);
  la("eigvalsh", {{{3, 3}}}, [](const TensorList& x) { return linalg::eigvalsh(sym(x[0])); });
  la(
      "eigh_vectors", {{{3, 3}}},
      [](const TensorList& x) {
        auto e = linalg::eigh(sym(x[0]) + x[0].shape(-1) * 0.0);
        // Sign-invariant function of the eigenvectors: V diag(w) V^T plus V^2.
        return matmul(e.eigenvectors * expand_dims(e.eigenvalues, -2),
                      swapaxes(e.eigenvectors, -1, -2)) +
               square(e.eigenvectors);
      },
      5.0);
  la("svdvals", {{{3, 4}}}, [](const TensorList& x) { return linalg::svdvals(x[0]); });
  la("norm_fro", {{{3, 4}}}, [](const TensorList& x) { return linalg::norm(x[0]); });
  la("trace_diagonal", {{{3, 3}}},
     [](const TensorList& x) { return linalg::trace(x[0]) * linalg::diagonal(x[0]); });
  return c;
}

const std::vector<Case>& cases() {
  static const std::vector<Case> c = make_cases();
  return c;
}

tt::Tol tol_of(DType dt) {
  switch (dt) {
    case DType::Float64:
      return {1e-6, 1e-7};
    case DType::Float32:
      return {2e-3, 1e-4};
    case DType::Float16:
      return {5e-2, 5e-3};
    default:
      return {1.2e-1, 1e-2};
  }
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

::testing::AssertionResult close(const std::vector<double>& got, const std::vector<double>& want,
                                 tt::Tol tol, double scale, const std::string& what) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure()
           << what << ": size " << got.size() << " != " << want.size();
  const double bound = tol.rtol * scale * max_abs(want) + tol.atol * scale;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= bound))
      return ::testing::AssertionFailure()
             << what << "[" << i << "]: analytic " << got[i] << " vs finite difference " << want[i]
             << " (bound " << bound << ")";
  return ::testing::AssertionSuccess();
}

void run_case(const Case& cs, DType dt, Device dev) {
  std::mt19937 rng(1234);
  // Inputs at exactly representable values of dt, and float64 copies of them.
  std::vector<std::vector<double>> vals;
  TensorList xs, xs64;
  for (const auto& in : cs.inputs) {
    auto v = tt::random_values(rng, static_cast<size_t>(tt::numel(in.shape)), in.lo, in.hi, dt,
                               true, in.min_abs);
    vals.push_back(v);
    xs.push_back(tt::make(v, in.shape, dt).to(dev));
    xs64.push_back(c64(v, in.shape));
  }
  Tensor y64 = cs.f(xs64);
  y64.eval();
  auto wv = tt::random_values(rng, static_cast<size_t>(y64.size()), -1, 1, float64);
  Tensor w64 = c64(wv, y64.shape());
  auto L = [&](const TensorList& a) { return tt::read1(sum(astype(cs.f(a), float64) * w64)); };

  // Reverse mode: grad of <f(x), w> in the tested dtype/device.
  Tensor w = astype(w64, dt).to(dev);
  auto g = grad(ScalarFunction([&](const TensorList& a) {
                  Tensor y = cs.f(a);
                  return sum(astype(y * astype(w, y.dtype()), float32));
                }),
                [&] {
                  std::vector<int> an;
                  for (size_t i = 0; i < xs.size(); ++i) an.push_back(static_cast<int>(i));
                  return an;
                }())(xs);
  const double h = 1e-6;
  const tt::Tol tol = tol_of(dt);
  for (size_t k = 0; k < xs.size(); ++k) {
    ASSERT_EQ(g[k].shape(), xs[k].shape());
    ASSERT_EQ(g[k].dtype(), dt);
    std::vector<double> fd(vals[k].size());
    for (size_t j = 0; j < vals[k].size(); ++j) {
      auto plus = vals[k], minus = vals[k];
      plus[j] += h;
      minus[j] -= h;
      TensorList ap = xs64, am = xs64;
      ap[k] = c64(plus, xs64[k].shape());
      am[k] = c64(minus, xs64[k].shape());
      fd[j] = (L(ap) - L(am)) / (2 * h);
    }
    EXPECT_TRUE(close(tt::read(g[k]), fd, tol, cs.tol, "vjp d/dx" + std::to_string(k)));
  }

  if (!cs.forward) return;
  // Forward mode: <jvp(f)(x; t), w> against the directional finite difference.
  TensorList ts, ts64;
  std::vector<std::vector<double>> tv;
  for (const auto& in : cs.inputs) {
    auto v = tt::random_values(rng, static_cast<size_t>(tt::numel(in.shape)), -1, 1, dt);
    tv.push_back(v);
    ts.push_back(tt::make(v, in.shape, dt).to(dev));
  }
  auto [outs, tans] = jvp([&](const TensorList& a) { return TensorList{cs.f(a)}; }, xs, ts);
  ASSERT_EQ(tans[0].shape(), outs[0].shape());
  double got = tt::read1(sum(astype(tans[0], float64).to(kCPU) * w64));
  TensorList ap = xs64, am = xs64;
  for (size_t k = 0; k < xs.size(); ++k) {
    auto p = vals[k], m = vals[k];
    for (size_t j = 0; j < p.size(); ++j) {
      p[j] += h * tv[k][j];
      m[j] -= h * tv[k][j];
    }
    ap[k] = c64(p, xs64[k].shape());
    am[k] = c64(m, xs64[k].shape());
  }
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
    for (DType dt : {float64, float32, float16, bfloat16})
      if (cases()[i].low || !tt::is_low(dt)) p.push_back({i, dt});
  return p;
}

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  return cases()[info.param.index].name + "_" + tt::name_of(info.param.dtype);
}

class GradCheck : public ::testing::TestWithParam<Param> {};

TEST_P(GradCheck, Cpu) {
  const Case& cs = cases()[GetParam().index];
  run_case(cs, GetParam().dtype, kCPU);
}

TEST_P(GradCheck, Cuda) {
  if (!cuda_ok()) GTEST_SKIP() << "no CUDA device: " << cuda_reason();
  const Case& cs = cases()[GetParam().index];
  run_case(cs, GetParam().dtype, kGPU);
}

// The harness must catch a rule that is off by 1%, in both modes.
TEST(GradCheckHarness, DetectsAWrongRule) {
  Function wrong = custom_vjp([](const TensorList& a) { return TensorList{sin(a[0])}; },
                              [](const TensorList& p, const TensorList&, const TensorList& ct) {
                                return TensorList{ct[0] * cos(p[0]) * 1.01};
                              });
  Case cs{"wrong", {{{3, 4}}}, [wrong](const TensorList& x) { return wrong(x)[0]; }};
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    run_case(cs, float64, kCPU);
  }
  ASSERT_EQ(results.size(), 2);
  EXPECT_NE(std::string(results.GetTestPartResult(0).message()).find("vjp d/dx0"),
            std::string::npos);
  EXPECT_NE(std::string(results.GetTestPartResult(1).message()).find("jvp"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(AllPrimitives, GradCheck, ::testing::ValuesIn(params()), param_name);

}  // namespace
