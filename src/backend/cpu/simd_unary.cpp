// Vectorised float32/float64 transcendental kernels (Highway, dispatched at
// run time to the best SIMD target of the machine).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/simd_unary.cpp"
// Build only the targets that matter on x86 to keep compile time small.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_AVX3_DL)
#endif
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/cache_control.h>
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "backend/cpu/simd_unary.h"

HWY_BEFORE_NAMESPACE();
namespace tmath::cpu::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Each functor maps a vector; edge cases the polynomial ranges do not cover
// (overflow, NaN, zero/negative log arguments) are patched with masks.
struct ExpOp {
  template <class D, class V>
  static V apply(D d, V x) {
    using T = hn::TFromD<D>;
    const T hi = sizeof(T) == 4 ? T(88.72283935546875) : T(709.782712893384);
    V y = hn::Exp(d, x);
    y = hn::IfThenElse(hn::Gt(x, hn::Set(d, hi)), hn::Set(d, std::numeric_limits<T>::infinity()), y);
    return hn::IfThenElse(hn::IsNaN(x), x, y);
  }
};
struct Expm1Op {
  template <class D, class V>
  static V apply(D d, V x) {
    using T = hn::TFromD<D>;
    const T hi = sizeof(T) == 4 ? T(88.72283935546875) : T(709.782712893384);
    V y = hn::Expm1(d, x);
    y = hn::IfThenElse(hn::Gt(x, hn::Set(d, hi)), hn::Set(d, std::numeric_limits<T>::infinity()), y);
    return hn::IfThenElse(hn::IsNaN(x), x, y);
  }
};
template <int kBase>  // 0: e, 2, 10
struct LogOp {
  template <class D, class V>
  static V apply(D d, V x) {
    using T = hn::TFromD<D>;
    V y = kBase == 0 ? hn::Log(d, x) : kBase == 2 ? hn::Log2(d, x) : hn::Log10(d, x);
    const V zero = hn::Zero(d);
    y = hn::IfThenElse(hn::Eq(x, zero), hn::Set(d, -std::numeric_limits<T>::infinity()), y);
    y = hn::IfThenElse(hn::Eq(x, hn::Set(d, std::numeric_limits<T>::infinity())), x, y);
    return hn::IfThenElse(hn::Or(hn::Lt(x, zero), hn::IsNaN(x)),
                          hn::Set(d, std::numeric_limits<T>::quiet_NaN()), y);
  }
};
struct Log1pOp {
  template <class D, class V>
  static V apply(D d, V x) {
    using T = hn::TFromD<D>;
    const V m1 = hn::Set(d, T(-1));
    V y = hn::Log1p(d, x);
    y = hn::IfThenElse(hn::Eq(x, m1), hn::Set(d, -std::numeric_limits<T>::infinity()), y);
    y = hn::IfThenElse(hn::Eq(x, hn::Set(d, std::numeric_limits<T>::infinity())), x, y);
    return hn::IfThenElse(hn::Or(hn::Lt(x, m1), hn::IsNaN(x)),
                          hn::Set(d, std::numeric_limits<T>::quiet_NaN()), y);
  }
};
// float32: x P(x²) / Q(x²), a rational minimax fit of tanh on [0, 9] (relative error
// 2e-8), and ±1 beyond. Max error 5.4 ulp over every float32 (the rounding of the
// evaluation, near ±1); about 3x cheaper than an exp-based form (~16 vector
// operations, no exp). float64: Highway's Tanh.
// NaN: x86's min/max return their second operand when either is NaN, so with x (and
// then t) second a NaN input flows through both clamps and comes out unchanged, two
// operations cheaper than patching it with a mask (6% of a tanh on AVX-512); other
// architectures and the emulated targets keep the mask.
constexpr bool kTanhNanFlows =
    HWY_ARCH_X86 && HWY_TARGET != HWY_EMU128 && HWY_TARGET != HWY_SCALAR;
struct TanhOp {
  template <class D, class V>
  static V apply(D d, V x) {
    using T = hn::TFromD<D>;
    if constexpr (sizeof(T) == 4) {
      const V c = hn::Set(d, 9.0f);
      const V xc = hn::Min(c, hn::Max(hn::Neg(c), x));
      const V s = hn::Mul(xc, xc);
      V p = hn::Set(d, 1.3356790167e-08f);
      p = hn::MulAdd(p, s, hn::Set(d, 2.0610767008e-05f));
      p = hn::MulAdd(p, s, hn::Set(d, 3.4956963305e-03f));
      p = hn::MulAdd(p, s, hn::Set(d, 1.3381118551e-01f));
      p = hn::MulAdd(p, s, hn::Set(d, 9.9999997968e-01f));
      V q = hn::Set(d, 7.7774744638e-07f);
      q = hn::MulAdd(q, s, hn::Set(d, 3.2858077868e-04f));
      q = hn::MulAdd(q, s, hn::Set(d, 2.5877399480e-02f));
      q = hn::MulAdd(q, s, hn::Set(d, 4.6714434239e-01f));
      q = hn::MulAdd(q, s, hn::Set(d, 1.0f));
      const V t = hn::Div(hn::Mul(xc, p), q);
      // Clamped to [-1, 1]: |x| >= 9 (and ±inf) gives exactly ±1, as the correctly
      // rounded tanh does from 9.01 (the fit is 1 + 1 ulp at 9).
      const V one = hn::Set(d, 1.0f);
      const V r = hn::Min(one, hn::Max(hn::Neg(one), t));
      if constexpr (kTanhNanFlows) return r;
      return hn::IfThenElse(hn::IsNaN(x), x, r);
    } else {
      return hn::IfThenElse(hn::IsNaN(x), x, hn::Tanh(d, x));
    }
  }
};
// 1 / (1 + exp(-x)), without overflow for large |x|.
struct SigmoidOp {
  template <class D, class V>
  static V apply(D d, V x) {
    const V one = hn::Set(d, hn::TFromD<D>(1));
    return hn::Div(one, hn::Add(one, ExpOp::apply(d, hn::Neg(x))));
  }
};
struct SiluOp {
  template <class D, class V>
  static V apply(D d, V x) {
    return hn::IfThenElse(hn::IsNaN(x), x, hn::Mul(x, SigmoidOp::apply(d, x)));
  }
};
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
struct GeluTanhOp {
  template <class D, class V>
  static V apply(D d, V x) {
    using T = hn::TFromD<D>;
    const V c = hn::Set(d, T(0.7978845608028654));
    const V k = hn::Set(d, T(0.044715));
    const V half = hn::Set(d, T(0.5));
    const V one = hn::Set(d, T(1));
    V inner = hn::Mul(c, hn::Add(x, hn::Mul(k, hn::Mul(x, hn::Mul(x, x)))));
    return hn::Mul(hn::Mul(half, x), hn::Add(one, TanhOp::apply(d, inner)));
  }
};
struct SqrtOp {
  template <class D, class V>
  static V apply(D d, V x) {
    return hn::Sqrt(x);
  }
};

template <class Op, class T>
void Run(const T* HWY_RESTRICT x, T* HWY_RESTRICT y, size_t n) {
  const hn::ScalableTag<T> d;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(Op::apply(d, hn::LoadU(d, x + i)), d, y + i);
  if (i < n) {
    HWY_ALIGN T buf[hn::MaxLanes(d)] = {};
    std::memcpy(buf, x + i, (n - i) * sizeof(T));
    hn::Store(Op::apply(d, hn::Load(d, buf)), d, buf);
    std::memcpy(y + i, buf, (n - i) * sizeof(T));
  }
}

template <class T>
bool UnaryImpl(int op, const T* x, T* y, size_t n) {
  switch (static_cast<SimdOp>(op)) {
    case SimdOp::Exp: Run<ExpOp>(x, y, n); return true;
    case SimdOp::Expm1: Run<Expm1Op>(x, y, n); return true;
    case SimdOp::Log: Run<LogOp<0>>(x, y, n); return true;
    case SimdOp::Log2: Run<LogOp<2>>(x, y, n); return true;
    case SimdOp::Log10: Run<LogOp<10>>(x, y, n); return true;
    case SimdOp::Log1p: Run<Log1pOp>(x, y, n); return true;
    case SimdOp::Tanh: Run<TanhOp>(x, y, n); return true;
    case SimdOp::Sigmoid: Run<SigmoidOp>(x, y, n); return true;
    case SimdOp::Silu: Run<SiluOp>(x, y, n); return true;
    case SimdOp::GeluTanh: Run<GeluTanhOp>(x, y, n); return true;
    case SimdOp::Sqrt: Run<SqrtOp>(x, y, n); return true;
  }
  return false;
}

// Binary arithmetic with either operand a vector (stride 1) or one broadcast
// element (stride 0). Plain IEEE operations: bit-identical to the scalar loop.
template <class T, class F>
void RunBinary(const T* a, bool a_scalar, const T* b, bool b_scalar, T* y, size_t n, F f) {
  const hn::ScalableTag<T> d;
  const size_t N = hn::Lanes(d);
  const auto va = hn::Set(d, *a), vb = hn::Set(d, *b);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto x0 = a_scalar ? va : hn::LoadU(d, a + i);
    const auto x1 = b_scalar ? vb : hn::LoadU(d, b + i);
    hn::StoreU(f(x0, x1), d, y + i);
  }
  for (; i < n; ++i) {
    const auto x0 = hn::Set(d, a_scalar ? *a : a[i]);
    const auto x1 = hn::Set(d, b_scalar ? *b : b[i]);
    y[i] = hn::GetLane(f(x0, x1));
  }
}

template <class T>
bool BinaryImpl(int op, const T* a, bool as, const T* b, bool bs, T* y, size_t n) {
  switch (static_cast<SimdBinaryOp>(op)) {
    case SimdBinaryOp::Add: RunBinary(a, as, b, bs, y, n, [](auto x0, auto x1) { return hn::Add(x0, x1); }); return true;
    case SimdBinaryOp::Subtract: RunBinary(a, as, b, bs, y, n, [](auto x0, auto x1) { return hn::Sub(x0, x1); }); return true;
    case SimdBinaryOp::Multiply: RunBinary(a, as, b, bs, y, n, [](auto x0, auto x1) { return hn::Mul(x0, x1); }); return true;
    case SimdBinaryOp::Divide: RunBinary(a, as, b, bs, y, n, [](auto x0, auto x1) { return hn::Div(x0, x1); }); return true;
  }
  return false;
}

bool BinaryF32(int op, const float* a, bool as, const float* b, bool bs, float* y, size_t n) {
  return BinaryImpl(op, a, as, b, bs, y, n);
}
bool BinaryF64(int op, const double* a, bool as, const double* b, bool bs, double* y, size_t n) {
  return BinaryImpl(op, a, as, b, bs, y, n);
}

// float32 gelu and its gradient, evaluated in float64 lanes (relative error of Phi
// 7.3e-9 before the final rounding, so results are within an ulp or so of the correctly
// rounded value). Phi(x) = erfc(-z)/2, z = x/sqrt 2:
//   |z| < 1:  Phi = 1/2 + z P(z^2)/2, P a least-squares fit of erf(z)/z (degree 6,
//             1.4e-9 relative);
//   |z| >= 1: erfc(|z|) = t exp(-z^2) R(t), t = 1/(1 + |z|/2), R a fit of
//             erfcx(z)/t on z in [1, 30] (degree 10, 5.2e-10 relative); Phi = erfc/2
//             for z < 0 (no cancellation in the tail), 1 - erfc/2 for z > 0.
// |z| is clamped to 26 (exp(-676) is a normal double; Phi there is below float32's
// smallest subnormal). exp(-z^2) is shared with phi(x) = exp(-z^2)/sqrt(2 pi) for the
// gradient g (Phi + x phi).
template <class DD, class VD>
HWY_INLINE VD PhiAndPdf(DD dd, VD x, VD& pdf) {
  const VD z = hn::Mul(x, hn::Set(dd, 0.7071067811865476));
  const VD az = hn::Abs(z);
  const VD zc = hn::Min(az, hn::Set(dd, 26.0));
  const VD e = hn::Exp(dd, hn::Neg(hn::Mul(zc, zc)));
  // phi, 0 beyond the clamp (x phi there is below float32's range; at x = +-inf the
  // gradient is then inf * 0 = NaN, as the scalar and device kernels give).
  pdf = hn::IfThenZeroElse(hn::Gt(az, hn::Set(dd, 26.0)), hn::Mul(e, hn::Set(dd, 0.3989422804014327)));
  const VD s2 = hn::Mul(z, z);
  VD p = hn::Set(dd, 7.882500447906074e-05);
  for (double c : {-0.0008018859015598308, 0.005189312812770085, -0.026854329538417456,
                   0.11283597491563072, -0.3761262690789233, 1.128379165883329})
    p = hn::MulAdd(p, s2, hn::Set(dd, c));
  const VD half = hn::Set(dd, 0.5);
  const VD small = hn::MulAdd(hn::Mul(z, p), half, half);
  const VD t = hn::Div(hn::Set(dd, 1.0), hn::MulAdd(zc, half, hn::Set(dd, 1.0)));
  VD r = hn::Set(dd, 0.017103466546119637);
  for (double c : {-0.14557489085347092, 0.3670277248544957, -0.35923588458505495,
                   0.0918426885035381, -0.05067719664892029, 0.09317330312161476,
                   0.17507049786047638, 0.24693295425719358, 0.28209033515031273,
                   0.2820948747172314})
    r = hn::MulAdd(r, t, hn::Set(dd, c));
  // erfc(|z|) / 2, and 0 beyond the clamp (so gelu(-inf) is -inf * 0 = NaN, as the
  // scalar and device kernels give, and gelu'(-inf) likewise).
  const VD tail = hn::IfThenZeroElse(hn::Gt(az, hn::Set(dd, 26.0)),
                                         hn::Mul(hn::Mul(t, e), hn::Mul(r, half)));
  const VD big = hn::IfThenElse(hn::Gt(z, hn::Zero(dd)), hn::Sub(hn::Set(dd, 1.0), tail), tail);
  return hn::IfThenElse(hn::Lt(az, hn::Set(dd, 1.0)), small, big);
}

// y = f(x) (or f(g, x)) on float32 arrays through float64 vectors.
template <class F>
void RunF32ViaF64(const float* g, const float* x, float* y, size_t n, F f) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> df;
  const size_t N = hn::Lanes(dd);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto vx = hn::PromoteTo(dd, hn::LoadU(df, x + i));
    const auto vg = g ? hn::PromoteTo(dd, hn::LoadU(df, g + i)) : vx;
    hn::StoreU(hn::DemoteTo(df, f(dd, vg, vx)), df, y + i);
  }
  if (i < n) {
    HWY_ALIGN float bx[hn::MaxLanes(dd)] = {}, bg[hn::MaxLanes(dd)] = {};
    std::memcpy(bx, x + i, (n - i) * sizeof(float));
    if (g) std::memcpy(bg, g + i, (n - i) * sizeof(float));
    const auto vx = hn::PromoteTo(dd, hn::Load(df, bx));
    const auto vg = g ? hn::PromoteTo(dd, hn::Load(df, bg)) : vx;
    hn::Store(hn::DemoteTo(df, f(dd, vg, vx)), df, bx);
    std::memcpy(y + i, bx, (n - i) * sizeof(float));
  }
}

void GeluF32(const float* x, float* y, size_t n) {
  RunF32ViaF64(nullptr, x, y, n, [](auto dd, auto, auto vx) {
    decltype(vx) pdf;
    return hn::Mul(vx, PhiAndPdf(dd, vx, pdf));
  });
}
void GeluGradF32(const float* g, const float* x, float* y, size_t n) {
  RunF32ViaF64(g, x, y, n, [](auto dd, auto vg, auto vx) {
    decltype(vx) pdf;
    const auto phi = PhiAndPdf(dd, vx, pdf);
    return hn::Mul(vg, hn::MulAdd(vx, pdf, phi));
  });
}

// A register chain: blocks of kChainBlock vectors stay in registers while every
// step runs on them (one dispatch per step per block); the code of each step is
// the standalone kernel's, so roundings are identical.
constexpr size_t kChainBlock = 8;

template <class D, class V>
HWY_INLINE void ChainStepBlock(D d, int code, V s, V& v0, V& v1, V& v2, V& v3, V& v4, V& v5,
                               V& v6, V& v7) {
#define TM_ONE(v, expr_of_x) \
  {                          \
    const V x = v;           \
    v = expr_of_x;           \
  }
#define TM_CHAIN_STEP(e)                                                                  \
  do {                                                                                    \
    TM_ONE(v0, e) TM_ONE(v1, e) TM_ONE(v2, e) TM_ONE(v3, e) TM_ONE(v4, e) TM_ONE(v5, e) \
    TM_ONE(v6, e) TM_ONE(v7, e)                                                           \
  } while (0)
  switch (code) {
    case 0: TM_CHAIN_STEP(ExpOp::apply(d, x)); break;
    case 1: TM_CHAIN_STEP(Expm1Op::apply(d, x)); break;
    case 2: TM_CHAIN_STEP(LogOp<0>::apply(d, x)); break;
    case 3: TM_CHAIN_STEP(LogOp<2>::apply(d, x)); break;
    case 4: TM_CHAIN_STEP(LogOp<10>::apply(d, x)); break;
    case 5: TM_CHAIN_STEP(Log1pOp::apply(d, x)); break;
    case 6: TM_CHAIN_STEP(TanhOp::apply(d, x)); break;
    case 7: TM_CHAIN_STEP(SigmoidOp::apply(d, x)); break;
    case 8: TM_CHAIN_STEP(SiluOp::apply(d, x)); break;
    case 9: TM_CHAIN_STEP(GeluTanhOp::apply(d, x)); break;
    case 10: TM_CHAIN_STEP(SqrtOp::apply(d, x)); break;
    case 16: TM_CHAIN_STEP(hn::Add(x, s)); break;
    case 17: TM_CHAIN_STEP(hn::Add(s, x)); break;
    case 18: TM_CHAIN_STEP(hn::Sub(x, s)); break;
    case 19: TM_CHAIN_STEP(hn::Sub(s, x)); break;
    case 20: TM_CHAIN_STEP(hn::Mul(x, s)); break;
    case 21: TM_CHAIN_STEP(hn::Mul(s, x)); break;
    case 22: TM_CHAIN_STEP(hn::Div(x, s)); break;
    case 23: TM_CHAIN_STEP(hn::Div(s, x)); break;
    default: break;
  }
#undef TM_CHAIN_STEP
#undef TM_ONE
}

template <class T>
bool ChainImpl(const ChainStep* steps, size_t ns, const T* x, T* y, size_t n, bool stream) {
  static_assert(static_cast<int>(SimdOp::Sqrt) == 10 && static_cast<int>(SimdBinaryOp::Divide) == 3);
  if (ns > kMaxChainSteps) return false;
  int code[kMaxChainSteps];
  T sval[kMaxChainSteps];
  for (size_t k = 0; k < ns; ++k) {
    code[k] = steps[k].unary ? static_cast<int>(steps[k].uop)
                             : 16 + 2 * static_cast<int>(steps[k].bop) + (steps[k].scalar_left ? 1 : 0);
    sval[k] = static_cast<T>(steps[k].value);
  }
  const hn::ScalableTag<T> d;
  const size_t N = hn::Lanes(d);
  using V = hn::Vec<decltype(d)>;
  constexpr size_t B = kChainBlock;
  stream = stream && reinterpret_cast<uintptr_t>(y) % (N * sizeof(T)) == 0;
  size_t i = 0;
  for (; i + B * N <= n; i += B * N) {
    V v0 = hn::LoadU(d, x + i), v1 = hn::LoadU(d, x + i + N), v2 = hn::LoadU(d, x + i + 2 * N),
      v3 = hn::LoadU(d, x + i + 3 * N), v4 = hn::LoadU(d, x + i + 4 * N),
      v5 = hn::LoadU(d, x + i + 5 * N), v6 = hn::LoadU(d, x + i + 6 * N),
      v7 = hn::LoadU(d, x + i + 7 * N);
    for (size_t k = 0; k < ns; ++k)
      ChainStepBlock(d, code[k], hn::Set(d, sval[k]), v0, v1, v2, v3, v4, v5, v6, v7);
    if (stream) {
      hn::Stream(v0, d, y + i), hn::Stream(v1, d, y + i + N), hn::Stream(v2, d, y + i + 2 * N);
      hn::Stream(v3, d, y + i + 3 * N), hn::Stream(v4, d, y + i + 4 * N);
      hn::Stream(v5, d, y + i + 5 * N), hn::Stream(v6, d, y + i + 6 * N);
      hn::Stream(v7, d, y + i + 7 * N);
    } else {
      hn::StoreU(v0, d, y + i), hn::StoreU(v1, d, y + i + N), hn::StoreU(v2, d, y + i + 2 * N);
      hn::StoreU(v3, d, y + i + 3 * N), hn::StoreU(v4, d, y + i + 4 * N);
      hn::StoreU(v5, d, y + i + 5 * N), hn::StoreU(v6, d, y + i + 6 * N);
      hn::StoreU(v7, d, y + i + 7 * N);
    }
  }
  if (stream) hwy::FlushStream();
  if (i < n) {  // the tail, through a zero-padded buffer of one block
    HWY_ALIGN T buf[B * hn::MaxLanes(d)] = {};
    std::memcpy(buf, x + i, (n - i) * sizeof(T));
    V v0 = hn::Load(d, buf), v1 = hn::Load(d, buf + N), v2 = hn::Load(d, buf + 2 * N),
      v3 = hn::Load(d, buf + 3 * N), v4 = hn::Load(d, buf + 4 * N), v5 = hn::Load(d, buf + 5 * N),
      v6 = hn::Load(d, buf + 6 * N), v7 = hn::Load(d, buf + 7 * N);
    for (size_t k = 0; k < ns; ++k)
      ChainStepBlock(d, code[k], hn::Set(d, sval[k]), v0, v1, v2, v3, v4, v5, v6, v7);
    hn::Store(v0, d, buf), hn::Store(v1, d, buf + N), hn::Store(v2, d, buf + 2 * N);
    hn::Store(v3, d, buf + 3 * N), hn::Store(v4, d, buf + 4 * N), hn::Store(v5, d, buf + 5 * N);
    hn::Store(v6, d, buf + 6 * N), hn::Store(v7, d, buf + 7 * N);
    std::memcpy(y + i, buf, (n - i) * sizeof(T));
  }
  return true;
}

bool ChainF32(const ChainStep* s, size_t ns, const float* x, float* y, size_t n, bool stream) {
  return ChainImpl(s, ns, x, y, n, stream);
}
bool ChainF64(const ChainStep* s, size_t ns, const double* x, double* y, size_t n, bool stream) {
  return ChainImpl(s, ns, x, y, n, stream);
}

bool UnaryF32(int op, const float* x, float* y, size_t n) { return UnaryImpl(op, x, y, n); }
bool UnaryF64(int op, const double* x, double* y, size_t n) { return UnaryImpl(op, x, y, n); }

}  // namespace tmath::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tmath::cpu {
HWY_EXPORT(UnaryF32);
HWY_EXPORT(UnaryF64);
HWY_EXPORT(BinaryF32);
HWY_EXPORT(BinaryF64);
HWY_EXPORT(GeluF32);
HWY_EXPORT(GeluGradF32);
HWY_EXPORT(ChainF32);
HWY_EXPORT(ChainF64);

bool simd_chain_f32(const ChainStep* steps, size_t nsteps, const float* x, float* y, size_t n,
                    bool stream) {
  return HWY_DYNAMIC_DISPATCH(ChainF32)(steps, nsteps, x, y, n, stream);
}
bool simd_chain_f64(const ChainStep* steps, size_t nsteps, const double* x, double* y, size_t n,
                    bool stream) {
  return HWY_DYNAMIC_DISPATCH(ChainF64)(steps, nsteps, x, y, n, stream);
}

bool simd_binary_f32(SimdBinaryOp op, const float* a, bool a_scalar, const float* b,
                     bool b_scalar, float* y, size_t n) {
  return HWY_DYNAMIC_DISPATCH(BinaryF32)(static_cast<int>(op), a, a_scalar, b, b_scalar, y, n);
}
bool simd_binary_f64(SimdBinaryOp op, const double* a, bool a_scalar, const double* b,
                     bool b_scalar, double* y, size_t n) {
  return HWY_DYNAMIC_DISPATCH(BinaryF64)(static_cast<int>(op), a, a_scalar, b, b_scalar, y, n);
}

void simd_gelu_f32(const float* x, float* y, size_t n) {
  HWY_DYNAMIC_DISPATCH(GeluF32)(x, y, n);
}
void simd_gelu_grad_f32(const float* g, const float* x, float* y, size_t n) {
  HWY_DYNAMIC_DISPATCH(GeluGradF32)(g, x, y, n);
}

bool simd_unary_f32(SimdOp op, const float* x, float* y, size_t n) {
  return HWY_DYNAMIC_DISPATCH(UnaryF32)(static_cast<int>(op), x, y, n);
}
bool simd_unary_f64(SimdOp op, const double* x, double* y, size_t n) {
  return HWY_DYNAMIC_DISPATCH(UnaryF64)(static_cast<int>(op), x, y, n);
}
}  // namespace tmath::cpu
#endif
