// The transforms themselves: grad/value_and_grad/vjp/jvp/jacobian/hessian against
// analytic derivatives, nesting, stop_gradient, custom rules, checkpoint (values and
// peak memory), NaN-safe patterns and errors.
#include <cmath>

#include "test_util.h"
#include "tmath/autodiff.h"
#include "tmath/linalg.h"

using namespace tmath;
using tt::read;
using tt::read1;

namespace {

Tensor f64(const std::vector<double>& v, const Shape& s) {
  return tt::make(v, s, float64);
}
Tensor f64(const std::vector<double>& v) {
  return tt::make(v, float64);
}

void expect_near_all(const std::vector<double>& got, const std::vector<double>& want,
                     double tol = 1e-10) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tol * std::max(1.0, std::fabs(want[i]))) << "at " << i;
}

TEST(Grad, SquareSumAndValue) {
  Tensor x = f64({1.5, -2.0, 0.25});
  auto [v, g] = value_and_grad([](const TensorList& a) { return sum(a[0] * a[0] * a[0]); })({x});
  EXPECT_NEAR(read1(v), 1.5 * 1.5 * 1.5 - 8 + 0.25 * 0.25 * 0.25, 1e-12);
  expect_near_all(read(g[0]), {3 * 2.25, 3 * 4.0, 3 * 0.0625});
  EXPECT_TRUE(g[0].is_evaluated());
}

TEST(Grad, Argnums) {
  Tensor a = f64({1.0, 2.0}), b = f64({3.0, -1.0}), c = f64({0.5, 0.5});
  auto f = [](const TensorList& x) { return sum(x[0] * x[1] + exp(x[2]) * x[1]); };
  auto g = grad(f, {2, 0})({a, b, c});
  ASSERT_EQ(g.size(), 2u);
  expect_near_all(read(g[0]), {3 * std::exp(0.5), -std::exp(0.5)});
  expect_near_all(read(g[1]), {3.0, -1.0});
  auto gl = grad(f, {-1})({a, b, c});
  expect_near_all(read(gl[0]), read(g[0]));
}

TEST(Grad, UnusedArgumentAndOutputIsInput) {
  Tensor x = f64({1.0, 2.0}), y = f64({3.0});
  auto g = grad([](const TensorList& a) { return sum(a[1]); }, {0, 1})({x, y});
  expect_near_all(read(g[0]), {0.0, 0.0});
  expect_near_all(read(g[1]), {1.0});
}

TEST(Grad, SurvivesEvaluationInsideTheFunction) {
  Tensor x = f64({0.3, -0.7, 1.1});
  auto f = [](const TensorList& a) {
    Tensor h = tanh(a[0]) * 2.0;
    h.eval();                  // drops h's graph: the tape still has it
    double s = read1(sum(h));  // host read inside f
    return sum(h * h) + s;     // s is a constant
  };
  auto g = grad(f)({x});
  std::vector<double> want;
  for (double v : {0.3, -0.7, 1.1}) {
    double t = std::tanh(v);
    want.push_back(8 * t * (1 - t * t));
  }
  expect_near_all(read(g[0]), want);
  {
    EagerScope eager(true);
    auto ge = grad(f)({x});
    expect_near_all(read(ge[0]), want);
  }
}

TEST(Grad, DeepChainBeyondTheGraphDepthBound) {
  // More nodes than the depth bound (2048): the engine evaluates mid-trace.
  Tensor x = f64({2.0});
  auto g = grad([](const TensorList& a) {
    Tensor y = a[0];
    for (int i = 0; i < 3000; ++i) y = y * 1.0001;
    return sum(y);
  })({x});
  EXPECT_NEAR(read1(g[0]), std::pow(1.0001, 3000), 1e-9);
}

TEST(Grad, FloatDtypesKeepTheirDtype) {
  for (DType dt : {float32, float16, bfloat16}) {
    Tensor x = tt::make({0.5, 1.0}, dt);
    auto g = grad([](const TensorList& a) { return sum(a[0] * a[0]); })({x});
    EXPECT_EQ(g[0].dtype(), dt);
    expect_near_all(read(g[0]), {1.0, 2.0}, 1e-2);
  }
}

TEST(Vjp, PullbackReusedAndMultipleOutputs) {
  Tensor x = f64({1.0, 2.0, 3.0});
  auto r = vjp([](const TensorList& a) { return TensorList{a[0] * a[0], sum(sin(a[0]))}; }, {x});
  ASSERT_EQ(r.outputs.size(), 2u);
  auto g1 = r.pullback({f64({1.0, 0.0, 2.0}), Tensor()});
  expect_near_all(read(g1[0]), {2.0, 0.0, 12.0});
  auto g2 = r.pullback({Tensor(), f64({1.0}, {})});
  expect_near_all(read(g2[0]), {std::cos(1.0), std::cos(2.0), std::cos(3.0)});
  auto [outs, g3] =
      vjp([](const TensorList& a) { return TensorList{a[0] * 3.0}; }, {x}, {f64({1.0, 1.0, 1.0})});
  expect_near_all(read(g3[0]), {3.0, 3.0, 3.0});
}

TEST(Jvp, MatchesAnalytic) {
  Tensor x = f64({0.5, -1.0}), y = f64({2.0, 3.0});
  Tensor tx = f64({1.0, 0.5}), ty = f64({-1.0, 2.0});
  auto [outs, tans] =
      jvp([](const TensorList& a) { return TensorList{a[0] * exp(a[1])}; }, {x, y}, {tx, ty});
  std::vector<double> want;
  for (int i = 0; i < 2; ++i) {
    double xv = read(x)[i], yv = read(y)[i], txv = read(tx)[i], tyv = read(ty)[i];
    want.push_back(txv * std::exp(yv) + xv * std::exp(yv) * tyv);
  }
  expect_near_all(read(tans[0]), want);
  // An undefined tangent means "not differentiated".
  auto [o2, t2] =
      jvp([](const TensorList& a) { return TensorList{a[0] * a[1]}; }, {x, y}, {Tensor(), ty});
  expect_near_all(read(t2[0]), {0.5 * -1.0, -1.0 * 2.0});
}

TEST(Jacobian, ReverseAndForwardMatchAnalytic) {
  // f(x) = A x + sin(x) * x0: J = A + diag(cos(x)) * x0 + e_0 column of sin(x).
  std::vector<double> av = {1, 2, 3, 4, 5, 6, 7, 8, 9}, xv = {0.3, -0.4, 0.9};
  Tensor A = f64(av, {3, 3}), x = f64(xv);
  auto f = [&](const Tensor& v) { return matmul(A, v) + sin(v) * index(v, {int64_t{0}}); };
  std::vector<double> want(9);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      want[i * 3 + j] = av[i * 3 + j] + (i == j ? std::cos(xv[i]) * xv[0] : 0.0) +
                        (j == 0 ? std::sin(xv[i]) : 0.0);
  Tensor jr = jacobian(f, x, JacobianMode::Reverse);
  Tensor jf = jacobian(f, x, JacobianMode::Forward);
  EXPECT_EQ(jr.shape(), (Shape{3, 3}));
  EXPECT_EQ(jf.shape(), (Shape{3, 3}));
  expect_near_all(read(jr), want);
  expect_near_all(read(jf), want);
}

TEST(Hessian, MatchesAnalytic) {
  // f(x) = 0.5 x^T A x + sum(exp(x)) + x0^2 x1: H = (A + A^T)/2 + diag(exp x) + [[2x1, 2x0],[2x0,
  // 0]].
  std::vector<double> av = {2, 1, 0.5, 3}, xv = {0.4, -0.3};
  Tensor A = f64(av, {2, 2}), x = f64(xv);
  auto f = [&](const Tensor& v) {
    Tensor v0 = index(v, {int64_t{0}}), v1 = index(v, {int64_t{1}});
    return sum(v * matmul(A, v)) * 0.5 + sum(exp(v)) + v0 * v0 * v1;
  };
  Tensor H = hessian(f, x);
  EXPECT_EQ(H.shape(), (Shape{2, 2}));
  std::vector<double> want = {av[0] + std::exp(xv[0]) + 2 * xv[1], (av[1] + av[2]) / 2 + 2 * xv[0],
                              (av[1] + av[2]) / 2 + 2 * xv[0], av[3] + std::exp(xv[1])};
  expect_near_all(read(H), want);
  // Hessian-vector product = jvp of grad.
  Tensor v = f64({1.0, -2.0});
  expect_near_all(read(hvp(f, x, v)), {want[0] - 2 * want[1], want[2] - 2 * want[3]});
}

TEST(Nested, GradOfGrad) {
  auto f = [](const Tensor& x) { return sum(sin(x) * x); };
  Tensor x = f64({0.7}, {});
  // d/dx (sin x * x) = cos x * x + sin x; second: -sin x * x + 2 cos x; third: -cos x x - 3 sin x.
  double xv = 0.7;
  EXPECT_NEAR(read1(grad(f)(x)), std::cos(xv) * xv + std::sin(xv), 1e-12);
  EXPECT_NEAR(read1(grad(grad(f))(x)), -std::sin(xv) * xv + 2 * std::cos(xv), 1e-12);
  EXPECT_NEAR(read1(grad(grad(grad(f)))(x)), -std::cos(xv) * xv - 3 * std::sin(xv), 1e-12);
}

TEST(Nested, JvpOfVjp) {
  // g(x, u) = J(x)^T u for f(x) = x^3 elementwise; d/dx along t: 6 x t u.
  Tensor x = f64({0.5, -1.5}), u = f64({1.0, 2.0}), t = f64({0.3, 0.7});
  auto pull = [&](const TensorList& a) {
    return vjp([](const TensorList& b) { return TensorList{b[0] * b[0] * b[0]}; }, {a[0]}, {u})
        .second;
  };
  auto [o, tan] = jvp(pull, {x}, {t});
  expect_near_all(read(o[0]), {3 * 0.25 * 1.0, 3 * 2.25 * 2.0});
  expect_near_all(read(tan[0]), {6 * 0.5 * 0.3 * 1.0, 6 * -1.5 * 0.7 * 2.0});
}

TEST(StopGradient, BlocksTheDerivative) {
  Tensor x = f64({2.0, -3.0});
  auto g = grad([](const TensorList& a) { return sum(a[0] * stop_gradient(a[0])); })({x});
  expect_near_all(read(g[0]), {2.0, -3.0});
  auto [o, t] = jvp([](const TensorList& a) { return TensorList{stop_gradient(a[0]) * 2.0}; }, {x},
                    {f64({1.0, 1.0})});
  expect_near_all(read(t[0]), {0.0, 0.0});
  expect_near_all(read(stop_gradient(x)), {2.0, -3.0});
}

TEST(CustomVjp, RuleReplacesTheGraph) {
  // A "straight-through" clip: forward clips, backward passes 3 * cotangent.
  Function f = custom_vjp(
      [](const TensorList& a) { return TensorList{clip(a[0], Tensor(-1.0), Tensor(1.0))}; },
      [](const TensorList&, const TensorList&, const TensorList& ct) {
        return TensorList{ct[0] * 3.0};
      });
  Tensor x = f64({0.5, 2.0, -4.0});
  auto g = grad([&](const TensorList& a) { return sum(f(a)[0] * a[0]); })({x});
  // d/dx (clip(x) * x) with the custom rule: 3 * x + clip(x).
  expect_near_all(read(g[0]), {3 * 0.5 + 0.5, 3 * 2.0 + 1.0, 3 * -4.0 - 1.0});
  // Forward mode transposes the (linear) rule.
  auto [o, t] = jvp([&](const TensorList& a) { return f(a); }, {x}, {f64({1.0, 1.0, 2.0})});
  expect_near_all(read(o[0]), {0.5, 1.0, -1.0});
  expect_near_all(read(t[0]), {3.0, 3.0, 6.0});
}

TEST(CustomVjp, StableLogOnePlusExp) {
  // log(1 + e^x) whose naive gradient e^x / (1 + e^x) overflows to nan at x = 1000.
  Function softplus = custom_vjp([](const TensorList& a) { return TensorList{log1p(exp(a[0]))}; },
                                 [](const TensorList& p, const TensorList&, const TensorList& ct) {
                                   return TensorList{ct[0] * sigmoid(p[0])};
                                 });
  Tensor x = f64({1000.0, 0.0, -5.0});
  auto g = grad([&](const TensorList& a) { return sum(softplus(a)[0]); })({x});
  expect_near_all(read(g[0]), {1.0, 0.5, 1.0 / (1.0 + std::exp(5.0))});
}

TEST(CustomJvp, RuleAndItsTranspose) {
  // Rule deliberately 2x the true derivative, so the test sees which one is used.
  Function f = custom_jvp(
      [](const TensorList& a) { return TensorList{sin(a[0])}; },
      [](const TensorList& p, const TensorList& t) { return TensorList{cos(p[0]) * t[0] * 2.0}; });
  Tensor x = f64({0.2, 1.0});
  auto [o, t] = jvp([&](const TensorList& a) { return f(a); }, {x}, {f64({1.0, 0.5})});
  expect_near_all(read(t[0]), {2 * std::cos(0.2), std::cos(1.0)});
  auto g = grad([&](const TensorList& a) { return sum(f(a)[0]); })({x});
  expect_near_all(read(g[0]), {2 * std::cos(0.2), 2 * std::cos(1.0)});
}

// ---- checkpoint ----------------------------------------------------------------------
struct Mlp {
  TensorList w, b;
};
Mlp make_mlp(int layers, int64_t width, DType dt, uint64_t seed) {
  Mlp m;
  for (int i = 0; i < layers; ++i) {
    m.w.push_back(random::normal(random::key(seed + i), {width, width}, dt) *
                  (1.0 / std::sqrt(static_cast<double>(width))));
    m.b.push_back(random::normal(random::key(seed + 100 + i), {width}, dt) * 0.1);
    m.w.back().eval();
    m.b.back().eval();
  }
  return m;
}
// The argument list (x, w..., b...) that mlp_loss takes.
TensorList mlp_args(const Tensor& x, const Mlp& m) {
  TensorList args{x};
  args.insert(args.end(), m.w.begin(), m.w.end());
  args.insert(args.end(), m.b.begin(), m.b.end());
  return args;
}
// Layers [lo, hi) of the MLP (weights passed as arguments so they can be differentiated).
Tensor layers(const TensorList& ws, const TensorList& bs, Tensor h, size_t lo, size_t hi) {
  for (size_t i = lo; i < hi; ++i) h = gelu(matmul(h, ws[i]) + bs[i]);
  return h;
}
// loss(x, w...) with the 10 layers in checkpointed segments of `seg` layers (0: none).
Tensor mlp_loss(const TensorList& a, size_t n, size_t seg) {
  Tensor h = a[0];
  TensorList ws(a.begin() + 1, a.begin() + 1 + n), bs(a.begin() + 1 + n, a.end());
  if (seg == 0) {
    h = layers(ws, bs, h, 0, n);
  } else {
    for (size_t lo = 0; lo < n; lo += seg) {
      size_t hi = std::min(n, lo + seg);
      Function block = [&, lo, hi](const TensorList& in) {
        TensorList w(in.begin() + 1, in.begin() + 1 + (hi - lo)),
            b(in.begin() + 1 + (hi - lo), in.end());
        return TensorList{layers(w, b, in[0], 0, hi - lo)};
      };
      TensorList in{h};
      for (size_t i = lo; i < hi; ++i) in.push_back(ws[i]);
      for (size_t i = lo; i < hi; ++i) in.push_back(bs[i]);
      h = checkpoint(block)(in)[0];
    }
  }
  return mean(h * h);
}

TEST(Checkpoint, SameGradientsAsWithout) {
  Mlp m = make_mlp(4, 16, float64, 7);
  Tensor x = random::normal(random::key(3), {5, 16}, float64);
  TensorList args = mlp_args(x, m);
  std::vector<int> all;
  for (size_t i = 0; i < args.size(); ++i) all.push_back(static_cast<int>(i));
  auto g0 = grad([](const TensorList& a) { return mlp_loss(a, 4, 0); }, all)(args);
  auto g2 = grad([](const TensorList& a) { return mlp_loss(a, 4, 2); }, all)(args);
  auto g3 = grad([](const TensorList& a) { return mlp_loss(a, 4, 3); }, all)(args);
  for (size_t i = 0; i < args.size(); ++i) {
    expect_near_all(read(g2[i]), read(g0[i]), 1e-12);
    expect_near_all(read(g3[i]), read(g0[i]), 1e-12);
  }
  // Forward mode and second order through a checkpoint.
  Function seg = checkpoint([](const TensorList& a) { return TensorList{sin(a[0]) * a[0]}; });
  Tensor v = f64({0.7}, {});
  auto [o, t] = jvp([&](const TensorList& a) { return seg(a); }, {v}, {f64({1.0}, {})});
  EXPECT_NEAR(read1(t[0]), std::cos(0.7) * 0.7 + std::sin(0.7), 1e-12);
  auto gg = grad(grad([&](const Tensor& a) { return seg({a})[0]; }))(v);
  EXPECT_NEAR(read1(gg), -std::sin(0.7) * 0.7 + 2 * std::cos(0.7), 1e-12);
}

// A gradient under compile(): traced once, replayed with fusion; equal to the eager
// gradient (the same kernels in the same order).
TEST(Compile, CompiledGradientEqualsEagerGradient) {
  Mlp m = make_mlp(3, 16, float32, 11);
  Tensor x = random::normal(random::key(5), {6, 16}, float32);
  TensorList args = mlp_args(x, m);
  std::vector<int> params;
  for (size_t i = 1; i < args.size(); ++i) params.push_back(static_cast<int>(i));
  const Function flat =
      tt::value_and_grad_list([](const TensorList& a) { return mlp_loss(a, 3, 0); }, params);
  const TensorList want = flat(args);
  reset_jit_stats();
  const CompiledFunction cf = compile(flat);
  for (int call = 0; call < 2; ++call) {
    TensorList got = cf(args);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(read(got[i]), read(want[i])) << "output " << i;
  }
  const JitStats js = jit_stats();
  EXPECT_EQ(js.traces, 1u);
  EXPECT_EQ(js.compiled_calls, 2u);
  // Other arguments of the same signature replay the trace.
  TensorList args2 = args;
  args2[0] = random::normal(random::key(6), {6, 16}, float32);
  const TensorList want2 = flat(args2);
  const TensorList got2 = cf(args2);
  for (size_t i = 0; i < got2.size(); ++i) EXPECT_EQ(read(got2[i]), read(want2[i])) << "output " << i;
  EXPECT_EQ(jit_stats().traces, 1u);
}

// The other order: a transform of a compiled function. The replay hands the transform
// the traced primitives (a planned fused program has no derivative rule), so grad and
// jvp of compile(f) equal those of f, also after f's trace was replayed plainly.
TEST(Compile, GradientOfCompiledFunctionEqualsGradientOfFunction) {
  Mlp m = make_mlp(3, 16, float32, 12);
  Tensor x = random::normal(random::key(7), {6, 16}, float32);
  TensorList args = mlp_args(x, m);
  auto loss = [](const TensorList& a) { return mlp_loss(a, 3, 0); };
  const CompiledFunction cf = compile([loss](const TensorList& a) { return TensorList{loss(a)}; });
  EXPECT_EQ(read(cf(args)[0]), read(loss(args)));  // traced and replayed with fusion
  for (int argnum : {0, 1, 2}) {
    const Tensor got = grad([&](const TensorList& a) { return cf(a)[0]; }, {argnum})(args)[0];
    const Tensor want = grad(loss, {argnum})(args)[0];
    const auto g = read(got), w = read(want);
    ASSERT_EQ(g.size(), w.size());
    for (size_t i = 0; i < g.size(); ++i)
      EXPECT_NEAR(g[i], w[i], 1e-5 * (1.0 + std::abs(w[i]))) << "argnum " << argnum << ", " << i;
  }
  TensorList tangents;
  for (const auto& a : args) tangents.push_back(ones(a.shape(), a.dtype()));
  auto [o1, t1] = jvp([&](const TensorList& a) { return cf(a); }, args, tangents);
  auto [o2, t2] = jvp([&](const TensorList& a) { return TensorList{loss(a)}; }, args, tangents);
  EXPECT_NEAR(read(t1[0])[0], read(t2[0])[0], 1e-4 * (1.0 + std::abs(read(t2[0])[0])));
  EXPECT_EQ(cf.traces(), 1);
}

// Peak bytes above the starting level of one value_and_grad of the 10-layer MLP
// (512 wide, batch 256, float32) with respect to `argnums`.
uint64_t backward_peak(size_t seg, const std::vector<int>& argnums, const TensorList& args) {
  empty_cache();
  const uint64_t base = memory_stats().active_bytes;
  reset_peak_memory_stats();
  {
    auto [v, g] =
        value_and_grad([seg](const TensorList& a) { return mlp_loss(a, 10, seg); }, argnums)(args);
    EXPECT_TRUE(std::isfinite(read1(v)));
  }
  return memory_stats().peak_bytes - base;
}

TEST(Checkpoint, CutsBackwardPeakMemoryOfTheMlp) {
  Mlp m = make_mlp(10, 512, float32, 11);
  Tensor x = random::normal(random::key(5), {256, 512}, float32);
  x.eval();
  TensorList args = mlp_args(x, m);
  std::vector<int> all;
  for (size_t i = 0; i < args.size(); ++i) all.push_back(static_cast<int>(i));
  // Gradient with respect to the input (sensitivity): the backward pass holds only
  // activations, which is what checkpointing removes.
  const uint64_t plain_x = backward_peak(0, {0}, args);
  const uint64_t ck_x = backward_peak(3, {0}, args);
  // With respect to every parameter as well: the 10 weight gradients (1 MiB each) are
  // outputs that must all exist at the end, when the first segment is recomputed, so
  // the peak does not drop (reported, not asserted; docs/autodiff.md).
  const uint64_t plain_all = backward_peak(0, all, args);
  const uint64_t ck_all = backward_peak(3, all, args);
  const double cut_x = 1.0 - static_cast<double>(ck_x) / static_cast<double>(plain_x);
  const double cut_all = 1.0 - static_cast<double>(ck_all) / static_cast<double>(plain_all);
  RecordProperty("peak_input_grad_plain", std::to_string(plain_x));
  RecordProperty("peak_input_grad_checkpoint", std::to_string(ck_x));
  RecordProperty("peak_all_grads_plain", std::to_string(plain_all));
  RecordProperty("peak_all_grads_checkpoint", std::to_string(ck_all));
  std::printf("backward peak, d/dx: %.2f MiB -> %.2f MiB with checkpoint (cut %.0f%%)\n",
              plain_x / 1048576.0, ck_x / 1048576.0, cut_x * 100);
  std::printf("backward peak, d/d(x, W, b): %.2f MiB -> %.2f MiB with checkpoint (cut %.0f%%)\n",
              plain_all / 1048576.0, ck_all / 1048576.0, cut_all * 100);
  EXPECT_GE(cut_x, 0.40);
}

// ---- NaN-safe patterns ---------------------------------------------------------------
TEST(NanSafe, DoubleWherePattern) {
  Tensor x = f64({-1.0, 0.0, 4.0});
  // Naive: the branch not taken still computes sqrt(-1) = nan, and 0 * nan = nan.
  auto naive = grad(
      [](const TensorList& a) { return sum(where(a[0] > 0, sqrt(a[0]), zeros_like(a[0]))); })({x});
  EXPECT_TRUE(std::isnan(read(naive[0])[0]));
  // Safe: feed the risky branch a harmless value where it is not taken.
  auto safe = grad([](const TensorList& a) {
    Tensor pos = a[0] > 0;
    Tensor xs = where(pos, a[0], ones_like(a[0]));
    return sum(where(pos, sqrt(xs), zeros_like(a[0])));
  })({x});
  expect_near_all(read(safe[0]), {0.0, 0.0, 0.25});
}

TEST(NanSafe, StableReductions) {
  Tensor x = f64({1000.0, 999.0, -1e300});
  auto g = grad([](const TensorList& a) { return logsumexp(a[0]); })({x});
  const double e = std::exp(-1.0);
  expect_near_all(read(g[0]), {1 / (1 + e), e / (1 + e), 0.0});
  Tensor m = f64({2.0, -std::numeric_limits<double>::infinity(), 1.0});
  auto gs = grad([](const TensorList& a) {
    return sum(softmax(a[0]) * f64({1.0, 2.0, 3.0}));
  })({m});
  for (double v : read(gs[0])) EXPECT_TRUE(std::isfinite(v));
  auto gl = grad([](const TensorList& a) {
    return sum(log_softmax(a[0] * 1.0) * f64({1.0, 0.0, 0.0}));
  })({f64({800.0, 0.0, -800.0})});
  expect_near_all(read(gl[0]), {0.0, 0.0, 0.0}, 1e-9);
  auto g1 = grad([](const TensorList& a) { return sum(log1p(a[0])); })({f64({1e-12, -0.5})});
  expect_near_all(read(g1[0]), {1.0 / (1.0 + 1e-12), 2.0});
}

// ---- errors --------------------------------------------------------------------------
TEST(AutodiffErrors, BadArguments) {
  Tensor x = f64({1.0, 2.0});
  auto sq = [](const TensorList& a) { return sum(a[0] * a[0]); };
  TT_EXPECT_THROW_OP(grad([](const TensorList& a) { return a[0] * 2.0; })({x}), ValueError, "grad");
  TT_EXPECT_THROW_OP(grad(sq, {3})({x}), ValueError, "grad");
  TT_EXPECT_THROW_OP(grad(sq, {0, 0})({x}), ValueError, "grad");
  TT_EXPECT_THROW_OP(grad(sq)({tt::make({1.0, 2.0}, int64)}), DTypeError, "grad");
  TT_EXPECT_THROW_OP(grad(ScalarFunction())({x}), ValueError, "grad");
  TT_EXPECT_THROW_OP(jvp([](const TensorList& a) { return a; }, {x}, {f64({1.0, 2.0, 3.0})}),
                     ShapeError, "jvp");
  TT_EXPECT_THROW_OP(jvp([](const TensorList& a) { return a; }, {x}, {}), ValueError, "jvp");
  auto r = vjp([](const TensorList& a) { return a; }, {x});
  TT_EXPECT_THROW_OP(r.pullback({f64({1.0})}), ShapeError, "vjp");
  TT_EXPECT_THROW_OP(r.pullback({}), ValueError, "vjp");
  Function bad = custom_vjp(
      [](const TensorList& a) { return a; },
      [](const TensorList&, const TensorList&, const TensorList&) { return TensorList{}; });
  TT_EXPECT_THROW_OP(grad([&](const TensorList& a) { return sum(bad(a)[0]); })({x}), ValueError,
                     "custom_vjp");
  // x is untouched by the failures.
  expect_near_all(read(x), {1.0, 2.0});
}

TEST(AutodiffErrors, MissingRulesNameTheOp) {
  // qr's complete mode with more rows than columns has no gradient (Q's extra columns
  // are an arbitrary basis).
  Tensor a = f64({1, 2, 3, 4, 5, 7}, {3, 2});
  TT_EXPECT_THROW_OP(grad([](const TensorList& t) {
                       return sum(linalg::qr(t[0], linalg::QrMode::Complete).R);
                     })({a}),
                     UnsupportedError, "qr");
}

}  // namespace

namespace {
// |z| of complex z: gradient conj(z)/|z| (the dL/dx - i dL/dy convention), forward
// derivative Re(conj(z)/|z| dz), a real tangent.
TEST(Grad, ComplexAbsConjugatesTheSign) {
  Tensor z = tt::make_c({{3.0, 4.0}, {-1.0, 0.5}}, {2}, complex128);
  auto g = grad([](const TensorList& a) { return sum(abs(a[0])); })({z});
  auto gv = tt::read_c(g[0]);
  const double r1 = std::hypot(-1.0, 0.5);
  EXPECT_NEAR(gv[0].real(), 0.6, 1e-14);
  EXPECT_NEAR(gv[0].imag(), -0.8, 1e-14);
  EXPECT_NEAR(gv[1].real(), -1.0 / r1, 1e-14);
  EXPECT_NEAR(gv[1].imag(), -0.5 / r1, 1e-14);
  // Forward mode: tangents 1 and i at 3+4i give 0.6 and 0.8, real-valued.
  Tensor t = tt::make_c({{1.0, 0.0}, {0.0, 1.0}}, {2}, complex128);
  Tensor z2 = tt::make_c({{3.0, 4.0}, {3.0, 4.0}}, {2}, complex128);
  auto [out, tan] = jvp([](const TensorList& a) { return TensorList{abs(a[0])}; }, {z2}, {t});
  EXPECT_EQ(tan[0].dtype(), float64);
  auto tv = read(tan[0]);
  EXPECT_NEAR(tv[0], 0.6, 1e-14);
  EXPECT_NEAR(tv[1], 0.8, 1e-14);
}
}  // namespace
