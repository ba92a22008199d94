// Elementwise, reduction, NN-style and matmul-class ops against float64 references
// computed here with plain loops and std:: functions.
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "int_reduce_util.h"
#include "ref_util.h"
#include "test_util.h"

using namespace tmath;
using tt::make;
using tt::read;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> fn;
  std::function<double(double)> ref;
  double lo = -5, hi = 5, min_abs = 0.0;
};

std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }},
      {"abs", [](const Tensor& x) { return tmath::abs(x); }, [](double x) { return std::fabs(x); }},
      {"sign", [](const Tensor& x) { return sign(x); }, tt::ref_sign},
      {"exp", [](const Tensor& x) { return tmath::exp(x); }, [](double x) { return std::exp(x); },
       -10, 10},
      {"expm1", [](const Tensor& x) { return expm1(x); }, [](double x) { return std::expm1(x); },
       -3, 3, 1e-3},
      {"log", [](const Tensor& x) { return tmath::log(x); }, [](double x) { return std::log(x); },
       0.05, 20},
      {"log1p", [](const Tensor& x) { return log1p(x); }, [](double x) { return std::log1p(x); },
       -0.9, 5, 1e-3},
      {"log2", [](const Tensor& x) { return log2(x); }, [](double x) { return std::log2(x); }, 0.05,
       20},
      {"log10", [](const Tensor& x) { return log10(x); }, [](double x) { return std::log10(x); },
       0.05, 20},
      {"sqrt", [](const Tensor& x) { return tmath::sqrt(x); },
       [](double x) { return std::sqrt(x); }, 0.01, 20},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); },
       [](double x) { return 1.0 / std::sqrt(x); }, 0.01, 20},
      {"square", [](const Tensor& x) { return square(x); }, [](double x) { return x * x; }},
      {"reciprocal", [](const Tensor& x) { return reciprocal(x); },
       [](double x) { return 1.0 / x; }, -5, 5, 0.05},
      {"sin", [](const Tensor& x) { return tmath::sin(x); }, [](double x) { return std::sin(x); },
       -3, 3, 0.01},
      {"cos", [](const Tensor& x) { return tmath::cos(x); }, [](double x) { return std::cos(x); },
       -1.5, 1.5},
      {"tan", [](const Tensor& x) { return tmath::tan(x); }, [](double x) { return std::tan(x); },
       -1.4, 1.4, 0.01},
      {"asin", [](const Tensor& x) { return tmath::asin(x); },
       [](double x) { return std::asin(x); }, -0.99, 0.99, 0.01},
      {"acos", [](const Tensor& x) { return tmath::acos(x); },
       [](double x) { return std::acos(x); }, -0.99, 0.99},
      {"atan", [](const Tensor& x) { return tmath::atan(x); },
       [](double x) { return std::atan(x); }, -10, 10, 0.01},
      {"sinh", [](const Tensor& x) { return tmath::sinh(x); },
       [](double x) { return std::sinh(x); }, -5, 5, 0.01},
      {"cosh", [](const Tensor& x) { return tmath::cosh(x); },
       [](double x) { return std::cosh(x); }},
      {"tanh", [](const Tensor& x) { return tmath::tanh(x); },
       [](double x) { return std::tanh(x); }, -5, 5, 0.01},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, tt::ref_sigmoid, -10, 10},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0.0; }},
      {"gelu", [](const Tensor& x) { return gelu(x); }, tt::ref_gelu, -5, 5, 0.01},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, true); }, tt::ref_gelu_tanh, -5, 5, 0.01},
      {"silu", [](const Tensor& x) { return silu(x); }, tt::ref_silu, -5, 5, 0.01},
      {"erf", [](const Tensor& x) { return tmath::erf(x); }, [](double x) { return std::erf(x); },
       -3, 3, 0.01},
      {"erfinv", [](const Tensor& x) { return erfinv(x); }, tt::ref_erfinv, -0.99, 0.99, 0.01},
      {"floor", [](const Tensor& x) { return tmath::floor(x); },
       [](double x) { return std::floor(x); }},
      {"ceil", [](const Tensor& x) { return tmath::ceil(x); },
       [](double x) { return std::ceil(x); }},
      {"round", [](const Tensor& x) { return tmath::round(x); },
       [](double x) { return std::nearbyint(x); }},
  };
}

}  // namespace

TEST(OpsUnary, EveryOpMatchesReferenceF32F64) {
  std::mt19937 rng(7);
  for (const auto& c : unary_cases()) {
    for (DType dt : {float32, float64}) {
      SCOPED_TRACE(std::string(c.name) + " " + tt::name_of(dt));
      auto x = tt::rand_tensor(rng, {7, 13}, dt, c.lo, c.hi, true, c.min_abs);
      std::vector<double> want;
      for (double v : x.v) want.push_back(c.ref(v));
      Tensor y = c.fn(x.t);
      EXPECT_EQ(y.dtype(), dt);
      EXPECT_EQ(y.shape(), (Shape{7, 13}));
      EXPECT_TRUE(tt::all_close(y, want, tt::tol_for(dt)));
      // Strided (transposed) input.
      Tensor yt = c.fn(x.t.transpose());
      std::vector<double> wt;
      for (int j = 0; j < 13; ++j)
        for (int i = 0; i < 7; ++i) wt.push_back(want[i * 13 + j]);
      EXPECT_TRUE(tt::all_close(yt, wt, tt::tol_for(dt))) << "transposed input";
    }
  }
}

TEST(OpsUnary, SpecialValues) {
  Tensor s = make({kNaN, kInf, -kInf, 0.0, -0.0, 1.0}, float32);
  EXPECT_TRUE(tt::all_equal(isnan(s), {1, 0, 0, 0, 0, 0}));
  EXPECT_TRUE(tt::all_equal(isinf(s), {0, 1, 1, 0, 0, 0}));
  EXPECT_TRUE(tt::all_equal(isfinite(s), {0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(isnan(s).dtype(), bool_);
  EXPECT_TRUE(tt::all_equal(logical_not(s), {0, 0, 0, 1, 1, 0}));
  EXPECT_EQ(logical_not(s).dtype(), bool_);
  EXPECT_TRUE(
      tt::all_equal(tmath::exp(make({-kInf, kInf, 0.0, 200.0}, float32)), {0.0, kInf, 1.0, kInf}));
  EXPECT_TRUE(
      tt::all_equal(tmath::log(make({0.0, -1.0, kInf, 1.0}, float64)), {-kInf, kNaN, kInf, 0.0}));
  EXPECT_TRUE(tt::all_equal(tmath::sqrt(make({-1.0, 0.0, kInf}, float32)), {kNaN, 0.0, kInf}));
  EXPECT_TRUE(tt::all_equal(log1p(make({-1.0}, float32)), {-kInf}));
  EXPECT_TRUE(tt::all_equal(reciprocal(make({0.0}, float32)), {kInf}));
  EXPECT_TRUE(tt::all_equal(rsqrt(make({0.0}, float32)), {kInf}));
  EXPECT_TRUE(tt::all_equal(tmath::tanh(make({kInf, -kInf, 50.0}, float32)), {1, -1, 1}));
  EXPECT_TRUE(tt::all_close(sigmoid(make({-kInf, kInf, -200.0, 200.0}, float32)), {0, 1, 0, 1},
                            tt::Tol{1e-6, 1e-30}));
  EXPECT_TRUE(tt::all_close(sigmoid(make({-100.0}, float64)), {tt::ref_sigmoid(-100.0)},
                            tt::tol_for(float64)));
  EXPECT_TRUE(tt::all_equal(erfinv(make({1.0, -1.0, 0.0, 1.5}, float32)), {kInf, -kInf, 0, kNaN}));
  EXPECT_TRUE(tt::all_equal(sign(make({-3.0, 0.0, 2.0, kNaN}, float32)), {-1, 0, 1, kNaN}));
  EXPECT_TRUE(tt::all_equal(relu(make({-kInf, kInf, -1.0}, float32)), {0, kInf, 0}));
  // Round half to even, as NumPy.
  EXPECT_TRUE(tt::all_equal(tmath::round(make({0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.49}, float32)),
                            {0, 2, 2, -0.0, -2, -2, 3}));
  EXPECT_TRUE(tt::all_equal(tmath::floor(make({-1.5, 1.5, -0.0}, float64)), {-2, 1, -0.0}));
  EXPECT_TRUE(tt::all_equal(tmath::ceil(make({-1.5, 1.5}, float64)), {-1, 2}));
  // Large-argument accuracy of exp near overflow / underflow in float32.
  EXPECT_TRUE(tt::all_close(tmath::exp(make({88.0, -87.0}, float32)),
                            {std::exp(88.0), std::exp(-87.0)}, tt::Tol{1e-5, 0}));
  // Small-argument accuracy of expm1/log1p (relative, no absolute slack).
  EXPECT_TRUE(tt::all_close(expm1(make({1e-7, -1e-6}, float32)),
                            {std::expm1(double(float(1e-7))), std::expm1(double(float(-1e-6)))},
                            tt::Tol{1e-5, 0}));
  EXPECT_TRUE(tt::all_close(log1p(make({1e-7}, float32)), {std::log1p(double(float(1e-7)))},
                            tt::Tol{1e-5, 0}));
}

// float32 tanh on the CPU (a rational approximation): error in ulp against the
// float64 tanh over a grid of bit patterns covering every binade, with -0, denormals,
// the saturation region and the non-finite values.
TEST(OpsUnary, TanhFloat32WithinSixUlp) {
  std::vector<float> xs;
  for (uint32_t bits = 0; bits < 0x7f800000u; bits += 997) {
    float v;
    std::memcpy(&v, &bits, sizeof v);
    xs.push_back(v);
    xs.push_back(-v);
  }
  for (float v : {8.4379663f, 8.99f, 9.0f, 9.01f, 20.0f, 1e-40f, -0.0f}) xs.push_back(v);
  Tensor x = from_blob(xs.data(), {static_cast<int64_t>(xs.size())}, float32);
  const std::vector<float> got = tmath::tanh(x).to_vector<float>();
  double worst = 0.0;
  float worst_x = 0.0f;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double want = std::tanh(static_cast<double>(xs[i]));
    const float wf = static_cast<float>(want);
    const double ulp = wf == 0.0f ? std::numeric_limits<float>::denorm_min()
                                  : std::abs(std::nextafter(wf, 2.0f * wf) - wf);
    const double err = std::abs(static_cast<double>(got[i]) - want) / ulp;
    if (err > worst) worst = err, worst_x = xs[i];
    if (std::signbit(got[i]) != std::signbit(xs[i])) ADD_FAILURE() << "sign of tanh(" << xs[i] << ")";
  }
  EXPECT_LE(worst, 6.0) << "at x = " << worst_x;
  Tensor s = tmath::tanh(make({kNaN, kInf, -kInf, 9.5, -30.0}, float32));
  EXPECT_TRUE(tt::all_equal(s, {kNaN, 1, -1, 1, -1}));
  // NaN inside whole vectors (not only the tail buffer), alone and in a fused chain.
  std::vector<double> v(70, 0.5);
  v[3] = kNaN, v[17] = -kNaN, v[40] = kNaN, v[68] = kNaN;
  const double t05 = static_cast<double>(std::tanh(0.5f));
  for (const Tensor& t : {tmath::tanh(make(v, float32)), tmath::tanh(make(v, float32) * 1.0 + 0.0)}) {
    const std::vector<double> r = tt::read(t);
    for (size_t i = 0; i < v.size(); ++i) {
      if (std::isnan(v[i])) {
        EXPECT_TRUE(std::isnan(r[i])) << i;
      } else {
        EXPECT_NEAR(r[i], t05, 1e-6) << i;
      }
    }
  }
}

// float32 gelu and gelu_grad on the CPU (vectorised, evaluated in float64 lanes): gelu
// within one ulp of x Phi(x) in float64 over a grid of bit patterns in every binade
// down to where it underflows; gelu_grad within one ulp away from gelu''s zero of the
// derivative (x ~ -0.7518, where Phi(x) + x phi(x) cancels) and within 1.2e-7 absolute
// everywhere; a strided (non-vectorised) input gives the same values within 1e-5.
TEST(OpsUnary, GeluFloat32WithinOneUlp) {
  std::vector<float> xs, gs;
  for (uint32_t bits = 0; bits < 0x42200000u; bits += 991) {  // |x| < 40
    float v;
    std::memcpy(&v, &bits, sizeof v);
    xs.push_back(v);
    xs.push_back(-v);
  }
  for (size_t i = 0; i < xs.size(); ++i) gs.push_back(i % 3 == 0 ? 1.0f : -0.75f);
  const auto n = static_cast<int64_t>(xs.size());
  Tensor x = from_blob(xs.data(), {n}, float32), g = from_blob(gs.data(), {n}, float32);
  const std::vector<float> y = gelu(x).to_vector<float>();
  const std::vector<float> d = gelu_grad(g, x).to_vector<float>();
  auto ulp_of = [](double want) {
    const float wf = static_cast<float>(want);
    return wf == 0.0f ? double(std::numeric_limits<float>::denorm_min())
                      : double(std::abs(std::nextafter(wf, 2.0f * wf) - wf));
  };
  double worst = 0.0, worst_d = 0.0, worst_abs = 0.0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double xv = xs[i];
    const double want = xv * 0.5 * std::erfc(-xv / std::sqrt(2.0));
    worst = std::max(worst, std::abs(double(y[i]) - want) / ulp_of(want));
    const double dv = gs[i] * tt::ref_gelu_grad(xv);
    worst_abs = std::max(worst_abs, std::abs(double(d[i]) - dv));
    if (std::abs(xv + 0.7518) > 0.01) worst_d = std::max(worst_d, std::abs(double(d[i]) - dv) / ulp_of(dv));
  }
  EXPECT_LE(worst, 1.0);
  EXPECT_LE(worst_d, 1.0);
  EXPECT_LE(worst_abs, 1.2e-7);  // one float32 ulp at 1 (|g gelu'| is at most ~1.13)
  // Strided operands take the scalar loop.
  Tensor xm = reshape(slice(x, 0, 0, n / 2 * 2), {n / 2, 2});
  Tensor gm = reshape(slice(g, 0, 0, n / 2 * 2), {n / 2, 2});
  EXPECT_TRUE(tt::all_close(gelu(transpose(xm)), tt::read(transpose(gelu(xm))),
                            tt::Tol{1e-5, 1e-7}));
  EXPECT_TRUE(tt::all_close(gelu_grad(transpose(gm), transpose(xm)),
                            tt::read(transpose(gelu_grad(gm, xm))), tt::Tol{1e-5, 1e-7}));
  // Non-finite inputs: NaN, and inf * 0 = NaN at -inf as the other kernels give.
  const std::vector<double> sv = tt::read(gelu(make({kNaN, kInf, -kInf, 0.0}, float32)));
  EXPECT_TRUE(std::isnan(sv[0]));
  EXPECT_EQ(sv[1], kInf);
  EXPECT_TRUE(std::isnan(sv[2]));
  EXPECT_EQ(sv[3], 0.0);
}

TEST(OpsUnary, IntegerAndBoolInputs) {
  Tensor i = make({-3, 0, 2, 5}, {4}, int32);
  EXPECT_EQ(neg(i).dtype(), int32);
  EXPECT_TRUE(tt::all_equal(neg(i), {3, 0, -2, -5}));
  EXPECT_TRUE(tt::all_equal(tmath::abs(i), {3, 0, 2, 5}));
  EXPECT_EQ(tmath::abs(i).dtype(), int32);
  EXPECT_TRUE(tt::all_equal(sign(i), {-1, 0, 1, 1}));
  EXPECT_TRUE(tt::all_equal(square(i), {9, 0, 4, 25}));
  EXPECT_EQ(square(i).dtype(), int32);
  EXPECT_TRUE(tt::all_equal(relu(i), {0, 0, 2, 5}));
  EXPECT_TRUE(tt::all_equal(tmath::floor(i), {-3, 0, 2, 5}));
  EXPECT_TRUE(tt::all_equal(isnan(i), {0, 0, 0, 0}));
  EXPECT_TRUE(tt::all_equal(isfinite(i), {1, 1, 1, 1}));
  // Float-valued functions of integers compute in float32.
  Tensor e = tmath::exp(i);
  EXPECT_EQ(e.dtype(), float32);
  EXPECT_TRUE(tt::all_close(e, {std::exp(-3.0), 1.0, std::exp(2.0), std::exp(5.0)}));
  Tensor q = tmath::sqrt(make({4, 9, 2}, {3}, int64));
  EXPECT_EQ(q.dtype(), float32);
  EXPECT_TRUE(tt::all_close(q, {2, 3, std::sqrt(2.0)}));
  Tensor b = make({1, 0, 1}, {3}, bool_);
  Tensor sb = tmath::sin(b);
  EXPECT_EQ(sb.dtype(), float32);
  EXPECT_TRUE(tt::all_close(sb, {std::sin(1.0), 0.0, std::sin(1.0)}));
  EXPECT_TRUE(tt::all_equal(logical_not(b), {0, 1, 0}));
  EXPECT_TRUE(tt::all_equal(!b, {0, 1, 0}));
  Tensor u = make({200, 3}, {2}, uint8);
  EXPECT_TRUE(tt::all_equal(tmath::abs(u), {200, 3}));
  // Low precision dtypes keep their dtype.
  EXPECT_EQ(tmath::exp(make({1.0}, {1}, float16)).dtype(), float16);
  EXPECT_EQ(tmath::tanh(make({1.0}, {1}, bfloat16)).dtype(), bfloat16);
}

TEST(OpsUnary, ComplexBasics) {
  std::vector<tt::cplx> v = {{3, 4}, {-1, 2}, {0.5, -0.25}};
  Tensor z = tt::make_c(v, {3}, complex128);
  Tensor a = tmath::abs(z);
  EXPECT_EQ(a.dtype(), float64);
  EXPECT_TRUE(tt::all_close(a, {5.0, std::sqrt(5.0), std::abs(v[2])}));
  EXPECT_EQ(tmath::abs(tt::make_c(v, {3}, complex64)).dtype(), float32);
  Tensor re = real(z), im = imag(z);
  EXPECT_EQ(re.dtype(), float64);
  EXPECT_TRUE(tt::all_equal(re, {3, -1, 0.5}));
  EXPECT_TRUE(tt::all_equal(im, {4, 2, -0.25}));
  std::vector<tt::cplx> cj, ex, sq;
  for (auto c : v) {
    cj.push_back(std::conj(c));
    ex.push_back(std::exp(c));
    sq.push_back(c * c);
  }
  EXPECT_TRUE(tt::all_close_c(conj(z), cj, tt::Tol{}));
  EXPECT_TRUE(tt::all_close_c(tmath::exp(z), ex, tt::tol_for(complex128)));
  EXPECT_TRUE(tt::all_close_c(z * z, sq, tt::tol_for(complex128)));
  EXPECT_TRUE(tt::all_close_c(-z, {{-3, -4}, {1, -2}, {-0.5, 0.25}}, tt::Tol{}));
}

// ---- binary ----------------------------------------------------------------------

namespace {
struct BinaryCase {
  const char* name;
  std::function<Tensor(const Tensor&, const Tensor&)> fn;
  std::function<double(double, double)> ref;
  double alo = -5, ahi = 5, blo = -5, bhi = 5, bmin = 0.0;
  bool pred = false;        // bool result
  bool scale_by_a = false;  // rounding relative to |a| (remainder)
};
std::vector<BinaryCase> binary_cases() {
  return {
      {"add", [](auto& a, auto& b) { return add(a, b); }, [](double a, double b) { return a + b; }},
      {"subtract", [](auto& a, auto& b) { return subtract(a, b); },
       [](double a, double b) { return a - b; }},
      {"multiply", [](auto& a, auto& b) { return multiply(a, b); },
       [](double a, double b) { return a * b; }},
      {"divide", [](auto& a, auto& b) { return divide(a, b); },
       [](double a, double b) { return a / b; }, -5, 5, -5, 5, 0.1},
      {"floor_divide", [](auto& a, auto& b) { return floor_divide(a, b); }, tt::ref_floor_div, -5,
       5, -5, 5, 0.1},
      {"remainder", [](auto& a, auto& b) { return remainder(a, b); }, tt::ref_remainder, -5, 5, -5,
       5, 0.1, false, true},
      {"power", [](auto& a, auto& b) { return power(a, b); },
       [](double a, double b) { return std::pow(a, b); }, 0.1, 3, -2, 2},
      {"maximum", [](auto& a, auto& b) { return maximum(a, b); },
       [](double a, double b) { return std::max(a, b); }},
      {"minimum", [](auto& a, auto& b) { return minimum(a, b); },
       [](double a, double b) { return std::min(a, b); }},
      {"atan2", [](auto& a, auto& b) { return atan2(a, b); },
       [](double a, double b) { return std::atan2(a, b); }, -5, 5, -5, 5, 0.01},
      {"hypot", [](auto& a, auto& b) { return hypot(a, b); },
       [](double a, double b) { return std::hypot(a, b); }},
      {"equal", [](auto& a, auto& b) { return equal(a, b); },
       [](double a, double b) { return double(a == b); }, -2, 2, -2, 2, 0, true},
      {"not_equal", [](auto& a, auto& b) { return not_equal(a, b); },
       [](double a, double b) { return double(a != b); }, -2, 2, -2, 2, 0, true},
      {"less", [](auto& a, auto& b) { return less(a, b); },
       [](double a, double b) { return double(a < b); }, -5, 5, -5, 5, 0, true},
      {"less_equal", [](auto& a, auto& b) { return less_equal(a, b); },
       [](double a, double b) { return double(a <= b); }, -5, 5, -5, 5, 0, true},
      {"greater", [](auto& a, auto& b) { return greater(a, b); },
       [](double a, double b) { return double(a > b); }, -5, 5, -5, 5, 0, true},
      {"greater_equal", [](auto& a, auto& b) { return greater_equal(a, b); },
       [](double a, double b) { return double(a >= b); }, -5, 5, -5, 5, 0, true},
  };
}
}  // namespace

TEST(OpsBinary, EveryOpWithBroadcastingMatchesReference) {
  std::mt19937 rng(11);
  const Shape sa = {3, 1, 4}, sb = {5, 1}, so = {3, 5, 4};
  for (const auto& c : binary_cases()) {
    for (DType dt : {float32, float64, int32}) {
      if (dt == int32 && (std::string(c.name) == "power" || std::string(c.name) == "atan2" ||
                          std::string(c.name) == "hypot" || std::string(c.name) == "divide"))
        continue;  // covered by the dtype-specific tests below
      SCOPED_TRACE(std::string(c.name) + " " + tt::name_of(dt));
      auto a = tt::rand_tensor(rng, sa, dt, c.alo, c.ahi, true);
      auto b = tt::rand_tensor(rng, sb, dt, c.blo, c.bhi, true, c.bmin);
      if (c.pred) {  // make some pairs equal
        for (size_t i = 0; i < b.v.size(); i += 2) b.v[i] = a.v[i % a.v.size()];
        b.t = make(b.v, sb, dt);
      }
      std::vector<double> want, scale;
      for (int64_t i = 0; i < tt::numel(so); ++i) {
        auto idx = tt::unravel(i, so);
        double x = a.v[tt::bcast_index(idx, sa)], y = b.v[tt::bcast_index(idx, sb)];
        double r = c.ref(x, y);
        if (dt == int32 && std::string(c.name) == "floor_divide")
          r = static_cast<double>(tt::ref_floor_div_int(int64_t(x), int64_t(y)));
        if (dt == int32 && std::string(c.name) == "remainder")
          r = static_cast<double>(tt::ref_remainder_int(int64_t(x), int64_t(y)));
        want.push_back(r);
        scale.push_back(c.scale_by_a ? std::fabs(x) : 0.0);
      }
      Tensor out = c.fn(a.t, b.t);
      EXPECT_EQ(out.shape(), so);
      EXPECT_EQ(out.dtype(), c.pred ? bool_ : dt);
      EXPECT_TRUE(tt::all_close(out, want, tt::tol_for(dt), scale));
      // Swapped broadcasting direction.
      Tensor out2 = c.fn(b.t, a.t);
      EXPECT_EQ(out2.shape(), so);
    }
  }
}

TEST(OpsBinary, IntegerSemantics) {
  Tensor a = make({-7, 7, -7, 7, 6, 0}, {6}, int32), b = make({2, -2, -2, 2, 3, 5}, {6}, int32);
  EXPECT_TRUE(tt::all_equal(floor_divide(a, b), {-4, -4, 3, 3, 2, 0}));
  EXPECT_TRUE(tt::all_equal(remainder(a, b), {1, -1, -1, 1, 0, 0}));
  EXPECT_TRUE(tt::all_equal(a % b, {1, -1, -1, 1, 0, 0}));
  // Integer remainder by zero gives 0.
  EXPECT_TRUE(
      tt::all_equal(remainder(make({5, -3}, {2}, int64), make({0, 0}, {2}, int64)), {0, 0}));
  Tensor d = divide(a, b);
  EXPECT_EQ(d.dtype(), float32);
  EXPECT_TRUE(tt::all_close(d, {-3.5, -3.5, 3.5, 3.5, 2, 0}));
  EXPECT_EQ((a / b).dtype(), float32);
  Tensor p = power(make({2, 3, -2, 5}, {4}, int32), make({10, 3, 3, 0}, {4}, int32));
  EXPECT_EQ(p.dtype(), int32);
  EXPECT_TRUE(tt::all_equal(p, {1024, 27, -8, 1}));
  Tensor h = hypot(make({3}, {1}, int32), make({4}, {1}, int32));
  EXPECT_EQ(h.dtype(), float32);
  EXPECT_TRUE(tt::all_close(h, {5}));
  EXPECT_TRUE(tt::all_equal(maximum(make({1, 9}, {2}, uint8), make({5, 2}, {2}, uint8)), {5, 9}));
  // Mixed signedness promotes (int8 + uint8 -> int16) without wrapping.
  Tensor m = make({-100}, {1}, int8) - make({200}, {1}, uint8);
  EXPECT_EQ(m.dtype(), int16);
  EXPECT_TRUE(tt::all_equal(m, {-300}));
}

TEST(OpsBinary, FloatSemantics) {
  Tensor a = make({-7.5, 7.5, -7.5, 7.5}, float64), b = make({2, -2, -2, 2}, float64);
  EXPECT_TRUE(tt::all_equal(remainder(a, b), {0.5, -0.5, -1.5, 1.5}));
  EXPECT_TRUE(tt::all_equal(floor_divide(a, b), {-4, -4, 3, 3}));
  // NaN propagates through maximum/minimum.
  Tensor n = make({kNaN, 1.0, 2.0}, float32), o = make({1.0, kNaN, 1.0}, float32);
  EXPECT_TRUE(tt::all_equal(maximum(n, o), {kNaN, kNaN, 2.0}));
  EXPECT_TRUE(tt::all_equal(minimum(n, o), {kNaN, kNaN, 1.0}));
  // atan2 quadrants and signed zeros.
  Tensor y = make({1, 1, -1, -1, 0}, float64), x = make({1, -1, 1, -1, -1}, float64);
  EXPECT_TRUE(tt::all_close(atan2(y, x), {std::atan2(1, 1), std::atan2(1, -1), std::atan2(-1, 1),
                                          std::atan2(-1, -1), std::atan2(0.0, -1.0)}));
  EXPECT_TRUE(tt::all_close(hypot(make({3e30, 1e-30}, float32), make({4e30, 1e-30}, float32)),
                            {5e30, std::hypot(double(1e-30f), double(1e-30f))}, tt::Tol{1e-5, 0}));
  EXPECT_TRUE(tt::all_equal(make({1.0, 0.0}, float32) / make({0.0, 0.0}, float32), {kInf, kNaN}));
  EXPECT_TRUE(tt::all_close(power(make({2.0, 9.0, -8.0}, float64), make({-1.0, 0.5, 2.0}, float64)),
                            {0.5, 3.0, 64.0}));
}

TEST(OpsBinary, CppOperators) {
  Tensor a = make({1, 2, 3, 4}, {4}, float32), b = make({4, 3, 2, 1}, {4}, float32);
  EXPECT_TRUE(tt::all_equal(a + b, {5, 5, 5, 5}));
  EXPECT_TRUE(tt::all_equal(a - b, {-3, -1, 1, 3}));
  EXPECT_TRUE(tt::all_equal(a * b, {4, 6, 6, 4}));
  EXPECT_TRUE(tt::all_close(a / b, {0.25, 2.0 / 3, 1.5, 4}));
  EXPECT_TRUE(tt::all_equal(a % b, {1, 2, 1, 0}));
  EXPECT_TRUE(tt::all_equal(-a, {-1, -2, -3, -4}));
  EXPECT_TRUE(tt::all_equal(a == b, {0, 0, 0, 0}));
  EXPECT_TRUE(tt::all_equal(a != b, {1, 1, 1, 1}));
  EXPECT_TRUE(tt::all_equal(a < b, {1, 1, 0, 0}));
  EXPECT_TRUE(tt::all_equal(a <= 2, {1, 1, 0, 0}));
  EXPECT_TRUE(tt::all_equal(a > b, {0, 0, 1, 1}));
  EXPECT_TRUE(tt::all_equal(a >= 3, {0, 0, 1, 1}));
  Tensor p = a > 1.5, q = a < 3.5;
  EXPECT_TRUE(tt::all_equal(p && q, {0, 1, 1, 0}));
  EXPECT_TRUE(tt::all_equal(p || q, {1, 1, 1, 1}));
  EXPECT_TRUE(tt::all_equal(logical_and(p, q), {0, 1, 1, 0}));
  EXPECT_TRUE(tt::all_equal(logical_or(!p, !q), {1, 0, 0, 1}));
  EXPECT_TRUE(tt::all_equal(logical_xor(p, q), {1, 0, 0, 1}));
  Tensor c = a;
  c += b;
  EXPECT_TRUE(tt::all_equal(c, {5, 5, 5, 5}));
  c -= 1;
  c *= 2;
  c /= 4;
  EXPECT_TRUE(tt::all_equal(c, {2, 2, 2, 2}));
  EXPECT_TRUE(tt::all_equal(10 - a, {9, 8, 7, 6}));
}

TEST(OpsBinary, WhereAndClip) {
  Tensor cond = make({1, 0, 1, 0, 0, 1}, {2, 3}, bool_);
  Tensor a = make({1, 2, 3}, {3}, float32), b = make({-1, -2}, {2, 1}, float32);
  Tensor w = where(cond, a, b);
  EXPECT_EQ(w.shape(), (Shape{2, 3}));
  EXPECT_TRUE(tt::all_equal(w, {1, -1, 3, -2, -2, 3}));
  // Non-bool condition is converted to bool.
  Tensor wf = where(make({0.0, 0.5, -2.0}, float32), a, Tensor(0.0));
  EXPECT_TRUE(tt::all_equal(wf, {0, 2, 3}));
  EXPECT_EQ(wf.dtype(), float32);
  // Mixed dtypes promote.
  Tensor wi = where(make({1, 0}, {2}, bool_), make({1, 2}, {2}, int32), make({0.5, 0.5}, float64));
  EXPECT_EQ(wi.dtype(), float64);
  EXPECT_TRUE(tt::all_equal(wi, {1, 0.5}));

  Tensor x = make({-3, -0.5, 0.2, 0.7, 5}, float32);
  EXPECT_TRUE(tt::all_close(clip(x, Tensor(-0.5), Tensor(0.5)), {-0.5, -0.5, 0.2, 0.5, 0.5}));
  EXPECT_EQ(clip(x, Tensor(-0.5), Tensor(0.5)).dtype(), float32);
  EXPECT_TRUE(tt::all_close(clip(x, std::nullopt, Tensor(0.0)), {-3, -0.5, 0, 0, 0}));
  EXPECT_TRUE(tt::all_close(clip(x, Tensor(0.0), std::nullopt), {0, 0, 0.2, 0.7, 5}));
  Tensor lo = make({0, 0, 0, 1, 1}, float32);
  EXPECT_TRUE(tt::all_close(clip(x, lo, Tensor(2.0)), {0, 0, 0.2, 1, 2}));
  EXPECT_TRUE(
      tt::all_equal(clip(make({-5, 5, 100}, {3}, int32), Tensor(0), Tensor(10)), {0, 5, 10}));
}

// ---- reductions ------------------------------------------------------------------

namespace {
const std::vector<std::vector<int>> kAxesSets = {{},     {0},      {1},    {2},       {-1},
                                                 {0, 2}, {-3, -1}, {1, 2}, {0, 1, 2}, {2, 0}};
}

TEST(OpsReduce, SumProdMeanMinMaxOverAxes) {
  std::mt19937 rng(3);
  const Shape s = {3, 4, 5};
  for (DType dt : {float32, float64}) {
    auto x = tt::rand_tensor(rng, s, dt, -2, 2);
    auto xp = tt::rand_tensor(rng, s, dt, 0.7, 1.4);
    for (const auto& axes : kAxesSets) {
      for (bool keep : {false, true}) {
        SCOPED_TRACE(std::string(tt::name_of(dt)) + " axes " +
                     tt::shape_str(Shape(axes.begin(), axes.end())) + (keep ? " keepdims" : ""));
        const tt::Tol tl = tt::tol_for(dt);
        auto r = tt::reduce_ref(x.v, s, axes, keep, tt::g_sum, tt::g_abssum);
        Tensor o = sum(x.t, axes, keep);
        EXPECT_EQ(o.shape(), r.shape);
        EXPECT_EQ(o.dtype(), dt);
        EXPECT_TRUE(tt::all_close(o, r.v, tl, r.scale)) << "sum";
        auto m = tt::reduce_ref(x.v, s, axes, keep, tt::g_mean, [](auto& g) {
          return tt::g_abssum(g) / static_cast<double>(g.size());
        });
        EXPECT_TRUE(tt::all_close(mean(x.t, axes, keep), m.v, tl, m.scale)) << "mean";
        auto p = tt::reduce_ref(xp.v, s, axes, keep, tt::g_prod);
        EXPECT_TRUE(tt::all_close(prod(xp.t, axes, keep), p.v, tl)) << "prod";
        auto mx = tt::reduce_ref(x.v, s, axes, keep, tt::g_max);
        EXPECT_TRUE(tt::all_equal(tmath::max(x.t, axes, keep), mx.v)) << "max";
        auto mn = tt::reduce_ref(x.v, s, axes, keep, tt::g_min);
        EXPECT_TRUE(tt::all_equal(tmath::min(x.t, axes, keep), mn.v)) << "min";
        auto lse = tt::reduce_ref(x.v, s, axes, keep, tt::g_logsumexp);
        EXPECT_TRUE(tt::all_close(logsumexp(x.t, axes, keep), lse.v, tl)) << "logsumexp";
        EXPECT_EQ(logsumexp(x.t, axes, keep).shape(), r.shape);
      }
    }
  }
}

TEST(OpsReduce, VarStdWithDdof) {
  std::mt19937 rng(5);
  const Shape s = {3, 4, 5};
  for (DType dt : {float32, float64}) {
    // Offset data stresses the two-pass algorithm.
    auto x = tt::rand_tensor(rng, s, dt, 99, 101);
    for (const auto& axes : kAxesSets) {
      for (double ddof : {0.0, 1.0}) {
        for (bool keep : {false, true}) {
          SCOPED_TRACE(std::string(tt::name_of(dt)) + " axes " +
                       tt::shape_str(Shape(axes.begin(), axes.end())) + " ddof " +
                       std::to_string(ddof) + (keep ? " keepdims" : ""));
          auto v = tt::reduce_ref(x.v, s, axes, keep, [&](auto& g) { return tt::g_var(g, ddof); });
          Tensor vt = var(x.t, axes, ddof, keep);
          EXPECT_EQ(vt.shape(), v.shape);
          EXPECT_EQ(vt.dtype(), dt);
          // float32 data of magnitude 100 carries 1e-5 absolute rounding per element.
          const tt::Tol tl = dt == float32 ? tt::Tol{1e-3, 1e-6} : tt::tol_for(dt);
          EXPECT_TRUE(tt::all_close(vt, v.v, tl)) << "var";
          std::vector<double> sd;
          for (double q : v.v) sd.push_back(std::sqrt(q));
          EXPECT_TRUE(tt::all_close(tmath::std(x.t, axes, ddof, keep), sd, tl)) << "std";
        }
      }
    }
  }
}

TEST(OpsReduce, ArgMinArgMax) {
  std::mt19937 rng(9);
  const Shape s = {4, 6};
  auto x = tt::rand_tensor(rng, s, float32, -10, 10);
  auto flat = tt::reduce_ref(x.v, s, {}, false, tt::g_argmax);
  Tensor am = argmax(x.t);
  EXPECT_EQ(am.dtype(), int64);
  EXPECT_EQ(am.ndim(), 0);
  EXPECT_TRUE(tt::all_equal(am, flat.v));
  EXPECT_TRUE(tt::all_equal(argmin(x.t), tt::reduce_ref(x.v, s, {}, false, tt::g_argmin).v));
  for (int axis : {0, 1, -1, -2}) {
    for (bool keep : {false, true}) {
      SCOPED_TRACE("axis " + std::to_string(axis) + (keep ? " keepdims" : ""));
      auto rmax = tt::reduce_ref(x.v, s, {axis}, keep, tt::g_argmax);
      Tensor t = argmax(x.t, axis, keep);
      EXPECT_EQ(t.shape(), rmax.shape);
      EXPECT_TRUE(tt::all_equal(t, rmax.v));
      auto rmin = tt::reduce_ref(x.v, s, {axis}, keep, tt::g_argmin);
      EXPECT_TRUE(tt::all_equal(argmin(x.t, axis, keep), rmin.v));
    }
  }
  // Ties: the first index wins.
  Tensor ties = make({1, 3, 3, 0, 0, 3}, {2, 3}, int32);
  EXPECT_TRUE(tt::all_equal(argmax(ties, 1), {1, 2}));
  EXPECT_TRUE(tt::all_equal(argmin(ties, 1), {0, 0}));
  EXPECT_TRUE(tt::all_equal(argmax(ties), {1}));
}

TEST(OpsReduce, AnyAll) {
  Tensor b = make({1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0}, {3, 4}, bool_);
  EXPECT_TRUE(tt::all_equal(any(b, {1}), {1, 1, 0}));
  EXPECT_TRUE(tt::all_equal(all(b, {1}), {0, 1, 0}));
  EXPECT_TRUE(tt::all_equal(any(b, {0}), {1, 1, 1, 1}));
  EXPECT_TRUE(tt::all_equal(all(b, {0}), {0, 0, 0, 0}));
  EXPECT_TRUE(tt::all_equal(any(b), {1}));
  EXPECT_TRUE(tt::all_equal(all(b), {0}));
  EXPECT_EQ(any(b, {1}, true).shape(), (Shape{3, 1}));
  EXPECT_EQ(all(b).dtype(), bool_);
  Tensor f = make({0.0, 0.5, kNaN, 0.0}, {2, 2}, float32);
  EXPECT_TRUE(tt::all_equal(any(f, {-1}), {1, 1}));
  EXPECT_TRUE(tt::all_equal(all(f, {-1}), {0, 0}));
  EXPECT_TRUE(tt::all_equal(all(make({2, -1}, {2}, int32)), {1}));
  EXPECT_TRUE(tt::all_equal(all(zeros({0}, bool_)), {1}));
  EXPECT_TRUE(tt::all_equal(any(zeros({0}, bool_)), {0}));
}

TEST(OpsReduce, ResultDtypes) {
  EXPECT_EQ(sum(ones({3}, int8)).dtype(), int64);
  EXPECT_EQ(sum(ones({3}, int32)).dtype(), int64);
  EXPECT_EQ(sum(ones({3}, bool_)).dtype(), int64);
  EXPECT_EQ(prod(ones({3}, int16)).dtype(), int64);
  // Unsigned ints give uint64 (NumPy 2, the Array API's default unsigned dtype).
  for (DType dt : {uint8, uint16, uint32, uint64}) {
    EXPECT_EQ(sum(ones({3}, dt)).dtype(), uint64) << tt::name_of(dt);
    EXPECT_EQ(prod(ones({3}, dt)).dtype(), uint64) << tt::name_of(dt);
    EXPECT_EQ(cumsum(ones({3}, dt), 0).dtype(), uint64) << tt::name_of(dt);
    EXPECT_EQ(cumprod(ones({3}, dt), 0).dtype(), uint64) << tt::name_of(dt);
  }
  EXPECT_EQ(cumsum(ones({3}, int8), 0).dtype(), int64);
  EXPECT_EQ(cumprod(ones({3}, bool_), 0).dtype(), int64);
  EXPECT_EQ(cumsum(ones({3}, float16), 0).dtype(), float16);
  EXPECT_EQ(sum(ones({3}, float16)).dtype(), float16);
  EXPECT_EQ(sum(ones({3}, bfloat16)).dtype(), bfloat16);
  EXPECT_EQ(tmath::max(ones({3}, int8)).dtype(), int8);
  EXPECT_TRUE(tt::all_equal(sum(make({1, 1, 0, 1}, {4}, bool_)), {3}));
  // int8 values whose sum overflows int8 accumulate in int64.
  EXPECT_TRUE(tt::all_equal(sum(full({100}, 100, int8)), {10000}));
  EXPECT_TRUE(tt::all_equal(sum(full({1000}, 200, uint8)), {200000}));
  EXPECT_EQ(sum(full({1000}, 200, uint8)).item<uint64_t>(), 200000u);
  EXPECT_TRUE(tt::all_close(mean(make({1, 2}, {2}, int32)), {1.5}));
  // float16 accumulates in float32: 4096 ones sum exactly (a float16 accumulator stalls at 2048).
  EXPECT_TRUE(tt::all_equal(sum(ones({4096}, float16)), {4096}));
  EXPECT_TRUE(tt::all_close(mean(full({10000}, 0.1, float16)), {tt::round_to(0.1, float16)},
                            tt::tol_for(float16)));
  EXPECT_TRUE(tt::all_close(sum(full({3000}, 1.0, bfloat16)), {3000}, tt::tol_for(bfloat16)));
  // Tensor members.
  Tensor m = make({1, 5, -2, 4}, {2, 2}, float32);
  EXPECT_EQ(m.sum().item<float>(), 8.0f);
  EXPECT_EQ(m.mean().item<float>(), 2.0f);
  EXPECT_EQ(m.max().item<float>(), 5.0f);
  EXPECT_EQ(m.min().item<float>(), -2.0f);
}

TEST(OpsReduce, NonContiguousInput) {
  std::mt19937 rng(21);
  auto x = tt::rand_tensor(rng, {6, 8}, float64, -1, 1);
  Tensor xt = x.t.transpose();  // (8, 6)
  std::vector<double> tv;
  for (int j = 0; j < 8; ++j)
    for (int i = 0; i < 6; ++i) tv.push_back(x.v[i * 8 + j]);
  for (int axis : {0, 1}) {
    auto r = tt::reduce_ref(tv, {8, 6}, {axis}, false, tt::g_sum);
    EXPECT_TRUE(tt::all_close(sum(xt, {axis}), r.v)) << axis;
    auto c = tt::scan_ref(tv, {8, 6}, axis, 0);
    EXPECT_TRUE(tt::all_close(cumsum(xt, axis), c.v, tt::tol_for(float64), c.scale)) << axis;
  }
}

TEST(OpsReduce, PairwiseSummationAccuracy) {
  Tensor x = full({10000000}, 0.1, float32);
  const double want = 1e7 * static_cast<double>(0.1f);
  const double got = tt::read1(sum(x));
  EXPECT_NEAR(got, want, want * 1e-6) << "naive float32 accumulation gives ~1087937";
  EXPECT_NEAR(tt::read1(mean(x)), static_cast<double>(0.1f), 0.1 * 1e-6);
  // Along an axis too (rows of 10^6).
  Tensor r = sum(reshape(x, {10, 1000000}), {1});
  for (double v : read(r)) EXPECT_NEAR(v, 1e6 * static_cast<double>(0.1f), 1e5 * 1e-6);
}

// Integer and bool sums, products and scans: NumPy 2's dtypes and modulo-2^64 values
// against plain uint64 loops (tests/int_reduce_util.h; the torch, mlx and cuda tests run
// the same on their backends).
TEST(OpsReduce, IntegerSumsProductsAndScansWrapLikeNumPy) {
  tt::check_int_sum_prod(kCPU);
}

TEST(OpsReduce, CumsumCumprod) {
  std::mt19937 rng(13);
  const Shape s = {3, 4, 5};
  for (DType dt : {float32, float64}) {
    auto x = tt::rand_tensor(rng, s, dt, -2, 2);
    auto xp = tt::rand_tensor(rng, s, dt, 0.6, 1.5);
    for (int axis : {0, 1, 2, -1, -3}) {
      SCOPED_TRACE(std::string(tt::name_of(dt)) + " axis " + std::to_string(axis));
      auto c = tt::scan_ref(x.v, s, axis, 0);
      Tensor cs = cumsum(x.t, axis);
      EXPECT_EQ(cs.shape(), s);
      EXPECT_EQ(cs.dtype(), dt);
      EXPECT_TRUE(tt::all_close(cs, c.v, tt::tol_for(dt), c.scale));
      auto p = tt::scan_ref(xp.v, s, axis, 1);
      EXPECT_TRUE(tt::all_close(cumprod(xp.t, axis), p.v, tt::tol_for(dt), p.scale));
    }
  }
  EXPECT_TRUE(tt::all_equal(cumsum(make({1, 2, 3, 4}, {4}, int32), 0), {1, 3, 6, 10}));
  EXPECT_TRUE(tt::all_equal(cumprod(make({1, 2, 3, 4}, {4}, int64), 0), {1, 2, 6, 24}));
  EXPECT_TRUE(tt::all_equal(cumsum(make({1, 0, 1, 1}, {4}, bool_), 0), {1, 1, 2, 3}));
}

// ---- softmax, layer_norm -----------------------------------------------------------

TEST(OpsNN, SoftmaxLogSoftmax) {
  std::mt19937 rng(17);
  const Shape s = {3, 4, 5};
  for (DType dt : {float32, float64}) {
    auto x = tt::rand_tensor(rng, s, dt, -5, 5);
    for (int axis : {-1, 0, 1, 2}) {
      SCOPED_TRACE(std::string(tt::name_of(dt)) + " axis " + std::to_string(axis));
      Tensor sm = softmax(x.t, axis);
      EXPECT_EQ(sm.dtype(), dt);
      EXPECT_EQ(sm.shape(), s);
      EXPECT_TRUE(tt::all_close(sm, tt::softmax_ref(x.v, s, axis, false), tt::tol_for(dt)));
      EXPECT_TRUE(tt::all_close(log_softmax(x.t, axis), tt::softmax_ref(x.v, s, axis, true),
                                tt::tol_for(dt)));
    }
  }
  // Numerically stable for large inputs.
  Tensor big = make({1000, 1001, 1002, -1000}, float32);
  EXPECT_TRUE(
      tt::all_close(softmax(big), tt::softmax_ref({1000, 1001, 1002, -1000}, {4}, 0, false)));
  EXPECT_TRUE(
      tt::all_close(log_softmax(big), tt::softmax_ref({1000, 1001, 1002, -1000}, {4}, 0, true)));
  EXPECT_TRUE(tt::all_close(logsumexp(big), {tt::g_logsumexp({1000, 1001, 1002, -1000})}));
  // float16 input keeps its dtype.
  Tensor h = make({1, 2, 3}, {3}, float16);
  EXPECT_EQ(softmax(h).dtype(), float16);
  EXPECT_TRUE(
      tt::all_close(softmax(h), tt::softmax_ref({1, 2, 3}, {3}, 0, false), tt::tol_for(float16)));
}

TEST(OpsNN, LayerNorm) {
  std::mt19937 rng(19);
  for (DType dt : {float32, float64}) {
    auto x = tt::rand_tensor(rng, {4, 3, 8}, dt, -3, 3);
    auto w = tt::rand_tensor(rng, {8}, dt, 0.5, 2);
    auto b = tt::rand_tensor(rng, {8}, dt, -1, 1);
    const tt::Tol tl = dt == float32 ? tt::Tol{1e-4, 1e-5} : tt::tol_for(dt);
    SCOPED_TRACE(tt::name_of(dt));
    Tensor y = layer_norm(x.t);
    EXPECT_EQ(y.dtype(), dt);
    EXPECT_EQ(y.shape(), (Shape{4, 3, 8}));
    EXPECT_TRUE(tt::all_close(y, tt::layer_norm_ref(x.v, 8, nullptr, nullptr, 1e-5), tl));
    EXPECT_TRUE(
        tt::all_close(layer_norm(x.t, w.t), tt::layer_norm_ref(x.v, 8, &w.v, nullptr, 1e-5), tl));
    EXPECT_TRUE(
        tt::all_close(layer_norm(x.t, w.t, b.t), tt::layer_norm_ref(x.v, 8, &w.v, &b.v, 1e-5), tl));
    EXPECT_TRUE(tt::all_close(layer_norm(x.t, std::nullopt, b.t, 1e-3),
                              tt::layer_norm_ref(x.v, 8, nullptr, &b.v, 1e-3), tl));
    // Two normalised axes.
    auto w2 = tt::rand_tensor(rng, {3, 8}, dt, 0.5, 2);
    auto b2 = tt::rand_tensor(rng, {3, 8}, dt, -1, 1);
    EXPECT_TRUE(tt::all_close(layer_norm(x.t, w2.t, b2.t, 1e-5, 2),
                              tt::layer_norm_ref(x.v, 24, &w2.v, &b2.v, 1e-5), tl));
  }
  // Constant rows: (x - mean) = 0 exactly, so the output is the bias.
  Tensor c = full({2, 4}, 3.0, float32);
  EXPECT_TRUE(
      tt::all_close(layer_norm(c, std::nullopt, make({1, 2, 3, 4})), {1, 2, 3, 4, 1, 2, 3, 4}));
}

// ---- matmul-class ----------------------------------------------------------------

TEST(OpsMatmul, NumpySemanticsAllShapes) {
  std::mt19937 rng(23);
  struct Case {
    Shape a, b;
  };
  const std::vector<Case> cases = {
      {{5, 7}, {7, 3}},     {{4, 5, 7}, {4, 7, 3}}, {{2, 1, 5, 7}, {3, 7, 4}},
      {{7}, {7, 3}},        {{5, 7}, {7}},          {{7}, {7}},
      {{7}, {2, 7, 3}},     {{2, 5, 7}, {7}},       {{1, 1}, {1, 1}},
      {{33, 65}, {65, 17}}, {{3, 0}, {0, 2}},       {{0, 4}, {4, 2}},
  };
  for (DType dt : {float32, float64}) {
    for (const auto& c : cases) {
      SCOPED_TRACE(std::string(tt::name_of(dt)) + " " + tt::shape_str(c.a) + " @ " +
                   tt::shape_str(c.b));
      auto a = tt::rand_tensor(rng, c.a, dt, -1, 1);
      auto b = tt::rand_tensor(rng, c.b, dt, -1, 1);
      auto r = tt::matmul_ref(a.v, c.a, b.v, c.b);
      Tensor o = matmul(a.t, b.t);
      EXPECT_EQ(o.shape(), r.shape);
      EXPECT_EQ(o.dtype(), dt);
      EXPECT_TRUE(tt::all_close(o, r.v, tt::tol_for(dt), r.scale));
    }
  }
}

TEST(OpsMatmul, TransposedAndSlicedOperands) {
  std::mt19937 rng(29);
  auto a = tt::rand_tensor(rng, {9, 6}, float32, -1, 1);  // use a^T: (6, 9)
  auto b = tt::rand_tensor(rng, {9, 10}, float32, -1, 1);
  std::vector<double> at;
  for (int j = 0; j < 6; ++j)
    for (int i = 0; i < 9; ++i) at.push_back(a.v[i * 6 + j]);
  // b[:, ::2] -> (9, 5)
  std::vector<double> bs;
  for (int i = 0; i < 9; ++i)
    for (int j = 0; j < 10; j += 2) bs.push_back(b.v[i * 10 + j]);
  auto r = tt::matmul_ref(at, {6, 9}, bs, {9, 5});
  Tensor o = matmul(a.t.transpose(), b.t.index({Slice(), Slice(std::nullopt, std::nullopt, 2)}));
  EXPECT_EQ(o.shape(), (Shape{6, 5}));
  EXPECT_TRUE(tt::all_close(o, r.v, tt::tol_for(float32), r.scale));
  // Broadcast (zero-stride) batch operand.
  Tensor bb = broadcast_to(b.t, {3, 9, 10});
  auto r2 = tt::matmul_ref(at, {6, 9}, b.v, {9, 10});
  Tensor o2 = matmul(a.t.transpose(), bb);
  EXPECT_EQ(o2.shape(), (Shape{3, 6, 10}));
  std::vector<double> w3;
  for (int k = 0; k < 3; ++k) w3.insert(w3.end(), r2.v.begin(), r2.v.end());
  std::vector<double> s3;
  for (int k = 0; k < 3; ++k) s3.insert(s3.end(), r2.scale.begin(), r2.scale.end());
  EXPECT_TRUE(tt::all_close(o2, w3, tt::tol_for(float32), s3));
}

TEST(OpsMatmul, IntegerAndLowPrecision) {
  std::mt19937 rng(31);
  auto a = tt::rand_tensor(rng, {4, 6}, int32, -9, 9);
  auto b = tt::rand_tensor(rng, {6, 3}, int32, -9, 9);
  auto r = tt::matmul_ref(a.v, {4, 6}, b.v, {6, 3});
  Tensor o = matmul(a.t, b.t);
  EXPECT_EQ(o.dtype(), int32);
  EXPECT_TRUE(tt::all_equal(o, r.v));
  for (DType dt : {float16, bfloat16}) {
    auto x = tt::rand_tensor(rng, {16, 64}, dt, -1, 1);
    auto y = tt::rand_tensor(rng, {64, 8}, dt, -1, 1);
    auto rr = tt::matmul_ref(x.v, {16, 64}, y.v, {64, 8});
    Tensor z = matmul(x.t, y.t);
    EXPECT_EQ(z.dtype(), dt);
    // Accumulates in float32: error ~ one rounding of the output.
    EXPECT_TRUE(tt::all_close(z, rr.v, tt::Tol{4e-3, 1e-3}, rr.scale)) << tt::name_of(dt);
  }
  // Mixed dtypes promote.
  EXPECT_EQ(matmul(ones({2, 2}, float32), ones({2, 2}, float64)).dtype(), float64);
}

TEST(OpsMatmul, Complex) {
  std::vector<tt::cplx> a = {{1, 2}, {3, -1}, {0, 1}, {2, 2}},
                        b = {{1, 0}, {0, 1}, {2, -1}, {1, 1}};
  auto r = tt::matmul_ref(a, {2, 2}, b, {2, 2});
  Tensor o = matmul(tt::make_c(a, {2, 2}, complex128), tt::make_c(b, {2, 2}, complex128));
  EXPECT_EQ(o.dtype(), complex128);
  EXPECT_TRUE(tt::all_close_c(o, r.v, tt::tol_for(complex128), r.scale));
}

TEST(OpsMatmul, TensordotEinsumOuterDot) {
  std::mt19937 rng(37);
  auto a = tt::rand_tensor(rng, {3, 4, 5}, float64, -1, 1);
  auto b = tt::rand_tensor(rng, {4, 5, 6}, float64, -1, 1);
  // tensordot axes=2: (3, 20) @ (20, 6)
  auto r = tt::matmul_ref(a.v, {3, 20}, b.v, {20, 6});
  Tensor td = tensordot(a.t, b.t, 2);
  EXPECT_EQ(td.shape(), (Shape{3, 6}));
  EXPECT_TRUE(tt::all_close(td, r.v, tt::tol_for(float64), r.scale));
  // Explicit axes: a (3,4,5) with c (5,3,2) over a[0]<->c[1], a[2]<->c[0] -> (4, 2).
  auto c = tt::rand_tensor(rng, {5, 3, 2}, float64, -1, 1);
  std::vector<double> want;
  for (int j = 0; j < 4; ++j)
    for (int n = 0; n < 2; ++n) {
      double acc = 0;
      for (int i = 0; i < 3; ++i)
        for (int k = 0; k < 5; ++k) acc += a.v[(i * 4 + j) * 5 + k] * c.v[(k * 3 + i) * 2 + n];
      want.push_back(acc);
    }
  Tensor te = tensordot(a.t, c.t, {0, 2}, {1, 0});
  EXPECT_EQ(te.shape(), (Shape{4, 2}));
  EXPECT_TRUE(tt::all_close(te, want));
  // axes=0: outer product.
  auto u = tt::rand_tensor(rng, {3}, float64), v = tt::rand_tensor(rng, {4}, float64);
  std::vector<double> outer_want;
  for (double x : u.v)
    for (double y : v.v) outer_want.push_back(x * y);
  EXPECT_EQ(tensordot(u.t, v.t, 0).shape(), (Shape{3, 4}));
  EXPECT_TRUE(tt::all_close(tensordot(u.t, v.t, 0), outer_want));
  EXPECT_TRUE(tt::all_close(outer(u.t, v.t), outer_want));
  // dot
  double d = 0;
  for (int i = 0; i < 3; ++i) d += u.v[i] * u.v[i];
  EXPECT_TRUE(tt::all_close(dot(u.t, u.t), {d}));
  EXPECT_EQ(dot(u.t, u.t).ndim(), 0);

  // einsum patterns
  auto m = tt::rand_tensor(rng, {3, 4}, float64), n = tt::rand_tensor(rng, {4, 5}, float64);
  auto mm = tt::matmul_ref(m.v, {3, 4}, n.v, {4, 5});
  EXPECT_TRUE(tt::all_close(einsum("ij,jk->ik", {m.t, n.t}), mm.v));
  EXPECT_TRUE(tt::all_close(einsum("ij,jk", {m.t, n.t}), mm.v)) << "implicit output";
  auto ba = tt::rand_tensor(rng, {2, 3, 4}, float64), bb = tt::rand_tensor(rng, {2, 4, 5}, float64);
  auto bm = tt::matmul_ref(ba.v, {2, 3, 4}, bb.v, {2, 4, 5});
  Tensor be = einsum("bij,bjk->bik", {ba.t, bb.t});
  EXPECT_EQ(be.shape(), (Shape{2, 3, 5}));
  EXPECT_TRUE(tt::all_close(be, bm.v));
  auto sq = tt::rand_tensor(rng, {4, 4}, float64);
  EXPECT_TRUE(tt::all_close(einsum("ii->i", {sq.t}), {sq.v[0], sq.v[5], sq.v[10], sq.v[15]}));
  std::vector<double> tr;
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < 3; ++i) tr.push_back(m.v[i * 4 + j]);
  Tensor et = einsum("ij->ji", {m.t});
  EXPECT_EQ(et.shape(), (Shape{4, 3}));
  EXPECT_TRUE(tt::all_equal(et, tr));
  Tensor ip = einsum("i,i->", {u.t, u.t});
  EXPECT_EQ(ip.ndim(), 0);
  EXPECT_TRUE(tt::all_close(ip, {d}));
  EXPECT_TRUE(tt::all_close(einsum("ij->", {m.t}), {tt::g_sum(m.v)}));
}

// ---- precision policy and autocast ------------------------------------------------

TEST(OpsPrecision, SetMatmulPrecision) {
  const MatmulPrecision before = matmul_precision();
  set_matmul_precision("highest");
  EXPECT_EQ(matmul_precision(), MatmulPrecision::Highest);
  set_matmul_precision("high");
  EXPECT_EQ(matmul_precision(), MatmulPrecision::High);
  set_matmul_precision("medium");
  EXPECT_EQ(matmul_precision(), MatmulPrecision::Medium);
  EXPECT_EQ(matmul_precision_name(MatmulPrecision::Medium), "medium");
  EXPECT_EQ(matmul_precision_name(MatmulPrecision::Highest), "highest");
  EXPECT_EQ(matmul_precision_name(MatmulPrecision::High), "high");
  EXPECT_THROW(set_matmul_precision("fast"), ValueError);
  EXPECT_THROW(set_matmul_precision(""), ValueError);
  EXPECT_EQ(matmul_precision(), MatmulPrecision::Medium) << "a bad string must not change it";
  std::mt19937 rng(41);
  auto a = tt::rand_tensor(rng, {32, 64}, float32, -1, 1);
  auto b = tt::rand_tensor(rng, {64, 16}, float32, -1, 1);
  auto r = tt::matmul_ref(a.v, {32, 64}, b.v, {64, 16});
  Tensor med = matmul(a.t, b.t);
  EXPECT_EQ(med.dtype(), float32);
  EXPECT_TRUE(tt::all_close(med, r.v, tt::Tol{1e-2, 1e-3}, r.scale));
  set_matmul_precision(MatmulPrecision::Highest);
  EXPECT_TRUE(tt::all_close(matmul(a.t, b.t), r.v, tt::tol_for(float32), r.scale));
  set_matmul_precision(before);
}

TEST(OpsPrecision, AutocastScope) {
  EXPECT_FALSE(autocast_dtype().has_value());
  std::mt19937 rng(43);
  auto a = tt::rand_tensor(rng, {16, 32}, float32, -1, 1);
  auto b = tt::rand_tensor(rng, {32, 8}, float32, -1, 1);
  auto r = tt::matmul_ref(a.v, {16, 32}, b.v, {32, 8});
  {
    AutocastScope ac(bfloat16);
    ASSERT_TRUE(autocast_dtype().has_value());
    EXPECT_EQ(*autocast_dtype(), bfloat16);
    Tensor o = matmul(a.t, b.t);
    EXPECT_EQ(o.dtype(), bfloat16);
    EXPECT_TRUE(tt::all_close(o, r.v, tt::Tol{1e-2, 1e-2}, r.scale));
    // Not a matmul-class op: unchanged.
    EXPECT_EQ((a.t + a.t).dtype(), float32);
    // float64 operands are not autocast.
    EXPECT_EQ(matmul(a.t.astype(float64), b.t.astype(float64)).dtype(), float64);
    {
      AutocastScope off(bfloat16, false);
      EXPECT_FALSE(autocast_dtype().has_value());
      EXPECT_EQ(matmul(a.t, b.t).dtype(), float32);
    }
    EXPECT_EQ(*autocast_dtype(), bfloat16);
    EXPECT_EQ(einsum("ij,jk->ik", {a.t, b.t}).dtype(), bfloat16);
  }
  EXPECT_FALSE(autocast_dtype().has_value());
  {
    AutocastScope ac(float16);
    Tensor o = matmul(a.t, b.t);
    EXPECT_EQ(o.dtype(), float16);
    EXPECT_TRUE(tt::all_close(o, r.v, tt::Tol{1e-2, 1e-3}, r.scale));
  }
  EXPECT_EQ(matmul(a.t, b.t).dtype(), float32);
}
