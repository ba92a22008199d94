// Elementwise CPU kernels: unary, binary, where, copy/cast, fill, arange.
// Scalar reference functors for every dtype; contiguous float32/float64 rows
// of the costly transcendental ops go through the SIMD kernels.
#include <cmath>
#include <complex>
#include <cstring>
#include <limits>
#include <type_traits>

#include "backend/cpu/kernels.h"
#include "backend/cpu/simd_unary.h"
#include "backend/cpu/strided.h"
#include "tmath/error.h"

namespace tmath::cpu {
namespace {

template <class T>
inline constexpr bool is_cplx = std::is_same_v<T, complex64_t> || std::is_same_v<T, complex128_t>;
template <class T>
inline constexpr bool is_low = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;
template <class T>
inline constexpr bool is_flt = std::is_floating_point_v<T>;
template <class T>
inline constexpr bool is_int = std::is_integral_v<T> && !std::is_same_v<T, bool>;

// Visits the C++ type of a dtype.
template <class F>
void visit_dtype(DType dt, F&& f) {
  switch (dt) {
    case DType::Bool: f(bool{}); break;
    case DType::Int8: f(int8_t{}); break;
    case DType::Int16: f(int16_t{}); break;
    case DType::Int32: f(int32_t{}); break;
    case DType::Int64: f(int64_t{}); break;
    case DType::UInt8: f(uint8_t{}); break;
    case DType::UInt16: f(uint16_t{}); break;
    case DType::UInt32: f(uint32_t{}); break;
    case DType::UInt64: f(uint64_t{}); break;
    case DType::Float16: f(Half{}); break;
    case DType::BFloat16: f(BFloat16{}); break;
    case DType::Float32: f(float{}); break;
    case DType::Float64: f(double{}); break;
    case DType::Complex64: f(complex64_t{}); break;
    case DType::Complex128: f(complex128_t{}); break;
  }
}

// ---- unary functors ------------------------------------------------------------
// Computation type: f16/bf16 compute in float; integers in IntCalc (uint16 in uint32).
template <class T>
using Calc = std::conditional_t<is_low<T>, float, IntCalc<T>>;

template <class T>
T erfinv_impl(T y) {
  // Giles' single-precision approximation refined by two Newton steps on erf.
  if (std::isnan(y) || y < T(-1) || y > T(1)) return std::numeric_limits<T>::quiet_NaN();
  if (y == T(1)) return std::numeric_limits<T>::infinity();
  if (y == T(-1)) return -std::numeric_limits<T>::infinity();
  double x = static_cast<double>(y);
  double w = -std::log((1.0 - x) * (1.0 + x)), p;
  if (w < 5.0) {
    w -= 2.5;
    p = 2.81022636e-08;
    p = 3.43273939e-07 + p * w;
    p = -3.5233877e-06 + p * w;
    p = -4.39150654e-06 + p * w;
    p = 0.00021858087 + p * w;
    p = -0.00125372503 + p * w;
    p = -0.00417768164 + p * w;
    p = 0.246640727 + p * w;
    p = 1.50140941 + p * w;
  } else {
    w = std::sqrt(w) - 3.0;
    p = -0.000200214257;
    p = 0.000100950558 + p * w;
    p = 0.00134934322 + p * w;
    p = -0.00367342844 + p * w;
    p = 0.00573950773 + p * w;
    p = -0.0076224613 + p * w;
    p = 0.00943887047 + p * w;
    p = 1.00167406 + p * w;
    p = 2.83297682 + p * w;
  }
  double r = p * x;
  for (int i = 0; i < 2; ++i) {
    double err = std::erf(r) - x;
    r -= err / (1.1283791670955126 * std::exp(-r * r));
  }
  return static_cast<T>(r);
}

template <OpCode op, class T>
constexpr bool unary_ok() {
  constexpr bool c = is_cplx<T>;
  switch (op) {
    case OpCode::Neg: case OpCode::Sign: case OpCode::Square:
      return !std::is_same_v<T, bool>;
    case OpCode::Abs: return !std::is_same_v<T, bool>;
    case OpCode::Relu: return !c;
    case OpCode::Exp: case OpCode::Log: case OpCode::Sqrt: case OpCode::Sin: case OpCode::Cos:
    case OpCode::Tan: case OpCode::Sinh: case OpCode::Cosh: case OpCode::Tanh:
    case OpCode::Reciprocal: case OpCode::Expm1: case OpCode::Log1p: case OpCode::Log2:
    case OpCode::Log10: case OpCode::Asin: case OpCode::Acos: case OpCode::Atan:
    case OpCode::Asinh: case OpCode::Acosh: case OpCode::Atanh:
      return is_flt<T> || is_low<T> || c;
    case OpCode::IsNan: case OpCode::IsInf: case OpCode::IsFinite:
      return is_flt<T> || is_low<T> || c;
    case OpCode::LogicalNot: return std::is_same_v<T, bool>;
    case OpCode::BitwiseInvert: return std::is_same_v<T, bool> || is_int<T>;
    case OpCode::Real: case OpCode::Imag: case OpCode::Conj: return c;
    default:  // real float functions
      return is_flt<T> || is_low<T>;
  }
}

template <OpCode op, class T>
auto unary_fn(T v) {
  using C = Calc<T>;
  C x = static_cast<C>(v);
  if constexpr (op == OpCode::Neg) return static_cast<T>(-x);
  else if constexpr (op == OpCode::Abs) {
    if constexpr (is_cplx<T>) return std::abs(x);
    else if constexpr (std::is_unsigned_v<T>) return v;
    else if constexpr (std::is_floating_point_v<C>) return static_cast<T>(std::fabs(x));  // |-0| = +0
    else return static_cast<T>(x < C(0) ? -x : x);
  } else if constexpr (op == OpCode::Sign) {
    if constexpr (is_cplx<T>) return x == C(0) ? T(0) : T(x / std::abs(x));
    else if constexpr (is_flt<C>) return static_cast<T>(std::isnan(x) ? x : C((x > C(0)) - (x < C(0))));
    else return static_cast<T>((x > C(0)) - (x < C(0)));
  } else if constexpr (op == OpCode::Square) return static_cast<T>(x * x);
  else if constexpr (op == OpCode::Relu) return static_cast<T>(x > C(0) ? x : (std::is_floating_point_v<C> && x != x ? x : C(0)));
  else if constexpr (op == OpCode::Exp) return static_cast<T>(std::exp(x));
  else if constexpr (op == OpCode::Expm1) {
    if constexpr (is_cplx<T>) {  // exp(z) - 1 without the cancellation near 0
      using R = typename T::value_type;
      const R s = std::sin(x.imag() / R(2));
      return T(std::expm1(x.real()) * std::cos(x.imag()) - R(2) * s * s,
               std::exp(x.real()) * std::sin(x.imag()));
    } else {
      return static_cast<T>(std::expm1(x));
    }
  } else if constexpr (op == OpCode::Log) return static_cast<T>(std::log(x));
  else if constexpr (op == OpCode::Log1p) {
    if constexpr (is_cplx<T>) {  // log(1 + z); |1 + z| through log1p near z = 0
      using R = typename T::value_type;
      const R a = x.real(), b = x.imag();
      const R re = std::fabs(a) + std::fabs(b) < R(0.5) ? R(0.5) * std::log1p(a * (R(2) + a) + b * b)
                                                        : std::log(std::hypot(R(1) + a, b));
      return T(re, std::atan2(b, R(1) + a));
    } else {
      return static_cast<T>(std::log1p(x));
    }
  } else if constexpr (op == OpCode::Log2) {
    if constexpr (is_cplx<T>) {
      using R = typename T::value_type;
      const T l = std::log(x);
      return T(l.real() * R(1.4426950408889634), l.imag() * R(1.4426950408889634));
    } else {
      return static_cast<T>(std::log2(x));
    }
  }
  else if constexpr (op == OpCode::Log10) return static_cast<T>(std::log10(x));
  else if constexpr (op == OpCode::Sqrt) return static_cast<T>(std::sqrt(x));
  else if constexpr (op == OpCode::Rsqrt) return static_cast<T>(C(1) / std::sqrt(x));
  else if constexpr (op == OpCode::Reciprocal) return static_cast<T>(C(1) / x);
  else if constexpr (op == OpCode::Sin) return static_cast<T>(std::sin(x));
  else if constexpr (op == OpCode::Cos) return static_cast<T>(std::cos(x));
  else if constexpr (op == OpCode::Tan) return static_cast<T>(std::tan(x));
  else if constexpr (op == OpCode::Asin) return static_cast<T>(std::asin(x));
  else if constexpr (op == OpCode::Acos) return static_cast<T>(std::acos(x));
  else if constexpr (op == OpCode::Atan) return static_cast<T>(std::atan(x));
  else if constexpr (op == OpCode::Asinh) return static_cast<T>(std::asinh(x));
  else if constexpr (op == OpCode::Acosh) return static_cast<T>(std::acosh(x));
  else if constexpr (op == OpCode::Atanh) return static_cast<T>(std::atanh(x));
  else if constexpr (op == OpCode::Sinh) return static_cast<T>(std::sinh(x));
  else if constexpr (op == OpCode::Cosh) return static_cast<T>(std::cosh(x));
  else if constexpr (op == OpCode::Tanh) return static_cast<T>(std::tanh(x));
  else if constexpr (op == OpCode::Sigmoid) return static_cast<T>(C(1) / (C(1) + std::exp(-x)));
  else if constexpr (op == OpCode::Silu) return static_cast<T>(x / (C(1) + std::exp(-x)));
  else if constexpr (op == OpCode::Gelu)
    return static_cast<T>(C(0.5) * x * (C(1) + std::erf(x * C(0.7071067811865476))));
  else if constexpr (op == OpCode::GeluTanh)
    return static_cast<T>(C(0.5) * x *
                          (C(1) + std::tanh(C(0.7978845608028654) * (x + C(0.044715) * x * x * x))));
  else if constexpr (op == OpCode::Erf) return static_cast<T>(std::erf(x));
  else if constexpr (op == OpCode::Erfinv) return static_cast<T>(erfinv_impl(x));
  else if constexpr (op == OpCode::Floor) return static_cast<T>(std::floor(x));
  else if constexpr (op == OpCode::Ceil) return static_cast<T>(std::ceil(x));
  else if constexpr (op == OpCode::Round) return static_cast<T>(std::nearbyint(x));
  else if constexpr (op == OpCode::IsNan) {
    if constexpr (is_cplx<T>) return std::isnan(x.real()) || std::isnan(x.imag());
    else return static_cast<bool>(std::isnan(x));
  } else if constexpr (op == OpCode::IsInf) {
    if constexpr (is_cplx<T>) return std::isinf(x.real()) || std::isinf(x.imag());
    else return static_cast<bool>(std::isinf(x));
  } else if constexpr (op == OpCode::IsFinite) {
    if constexpr (is_cplx<T>) return std::isfinite(x.real()) && std::isfinite(x.imag());
    else return static_cast<bool>(std::isfinite(x));
  } else if constexpr (op == OpCode::LogicalNot) return !v;
  else if constexpr (op == OpCode::BitwiseInvert) {
    if constexpr (std::is_same_v<T, bool>) return !v;
    else return static_cast<T>(~v);
  }
  else if constexpr (op == OpCode::Real) return x.real();
  else if constexpr (op == OpCode::Imag) return x.imag();
  else if constexpr (op == OpCode::Conj) return std::conj(x);
  else return v;
}

template <OpCode op, class T>
void unary_typed(const ArrayRef& x, const ArrayRef& out) {
  using R = decltype(unary_fn<op, T>(T{}));
  auto plan = make_plan<2>(out.shape, {&out, &x});
  for_each_row<2>(plan, {static_cast<char*>(out.data), static_cast<char*>(x.data)},
                  [](std::array<char*, 2> p, int64_t n, std::array<int64_t, 2> s) {
                    if (s[0] == sizeof(R) && s[1] == sizeof(T)) {
                      R* o = reinterpret_cast<R*>(p[0]);
                      const T* a = reinterpret_cast<const T*>(p[1]);
                      if constexpr (std::is_same_v<T, float> && std::is_same_v<R, float>) {
                        if constexpr (op == OpCode::Gelu) {
                          simd_gelu_f32(a, o, static_cast<size_t>(n));
                          return;
                        }
                        if (auto so = simd_op(op); so && simd_unary_f32(*so, a, o, n)) return;
                      }
                      if constexpr (std::is_same_v<T, double> && std::is_same_v<R, double>) {
                        if (auto so = simd_op(op); so && simd_unary_f64(*so, a, o, n)) return;
                      }
                      for (int64_t i = 0; i < n; ++i) o[i] = unary_fn<op, T>(a[i]);
                    } else {
                      for (int64_t i = 0; i < n; ++i)
                        *reinterpret_cast<R*>(p[0] + i * s[0]) =
                            unary_fn<op, T>(*reinterpret_cast<const T*>(p[1] + i * s[1]));
                    }
                  });
}

template <OpCode op>
bool unary_dispatch(const ArrayRef& x, const ArrayRef& out) {
  bool done = false;
  visit_dtype(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (unary_ok<op, T>()) {
      unary_typed<op, T>(x, out);
      done = true;
    }
  });
  return done;
}

template <OpCode op>
bool unary_supported(DType dt) {
  bool ok = false;
  visit_dtype(dt, [&](auto tag) { ok = unary_ok<op, decltype(tag)>(); });
  return ok;
}

// ---- binary functors -----------------------------------------------------------
template <OpCode op, class T>
constexpr bool binary_ok() {
  constexpr bool c = is_cplx<T>, b = std::is_same_v<T, bool>;
  switch (op) {
    case OpCode::Add: case OpCode::Multiply: return true;
    case OpCode::Subtract: case OpCode::Divide: case OpCode::Power: return !b;
    case OpCode::Equal: case OpCode::NotEqual: return true;
    case OpCode::LogicalAnd: case OpCode::LogicalOr: case OpCode::LogicalXor: return b;
    case OpCode::BitwiseAnd: case OpCode::BitwiseOr: case OpCode::BitwiseXor: return b || is_int<T>;
    case OpCode::BitwiseLeftShift: case OpCode::BitwiseRightShift: return is_int<T>;
    case OpCode::Maximum: case OpCode::Minimum: case OpCode::Less: case OpCode::LessEqual:
    case OpCode::Greater: case OpCode::GreaterEqual:
      return !c;
    case OpCode::FloorDivide: case OpCode::Remainder: return !c && !b;
    case OpCode::Atan2: case OpCode::Hypot: case OpCode::Nextafter: case OpCode::GeluGrad:
    case OpCode::GeluTanhGrad:
      return is_flt<T> || is_low<T>;
    default: return false;
  }
}

template <class T>
T int_pow(T base, T exp) {
  if (exp < 0) {
    if (base == 1) return 1;
    if (base == T(-1)) return (exp & 1) ? T(-1) : T(1);
    return 0;
  }
  T r = 1;
  while (exp) {
    if (exp & 1) r = static_cast<T>(r * base);
    base = static_cast<T>(base * base);
    exp >>= 1;
  }
  return r;
}

// Shifts with NumPy's results for every count (no undefined behaviour): a count
// that is negative or >= the bit width shifts every bit out.
template <class T>
bool shift_out(T count) {
  return static_cast<std::make_unsigned_t<T>>(count) >= sizeof(T) * 8;
}
template <class T>
T shift_left(T a, T count) {
  if (shift_out(count)) return T(0);
  return static_cast<T>(static_cast<std::make_unsigned_t<T>>(a) << count);
}
template <class T>
T shift_right(T a, T count) {  // arithmetic for signed T (C++20)
  if (shift_out(count)) return std::is_signed_v<T> && a < 0 ? T(-1) : T(0);
  return static_cast<T>(a >> count);
}

// nextafter on sign-magnitude bit patterns x, y (not NaN): one step of the last
// bit, towards y, in the format's own precision (float16/bfloat16 included).
template <class U>
U next_bits(U x, U y, U sign) {
  const U mag = static_cast<U>(~sign);
  const U ax = x & mag, ay = y & mag;
  if (x == y || (ax == 0 && ay == 0)) return y;
  if (ax == 0) return static_cast<U>((y & sign) | 1u);  // the smallest subnormal
  const bool xneg = (x & sign) != 0, yneg = (y & sign) != 0;
  const bool up = xneg ? (!yneg || ay < ax) : (!yneg && ay > ax);  // x < y
  return up != xneg ? static_cast<U>(x + 1u) : static_cast<U>(x - 1u);
}
template <class T>
T next_after(T a, T b) {
  if constexpr (is_low<T>) {
    constexpr uint16_t kNaN = std::is_same_v<T, Half> ? 0x7e00u : 0x7fc0u;
    if (std::isnan(static_cast<float>(a)) || std::isnan(static_cast<float>(b)))
      return T::from_bits(kNaN);
    return T::from_bits(next_bits<uint16_t>(a.bits, b.bits, 0x8000u));
  } else {
    using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
    if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
    U x, y;
    std::memcpy(&x, &a, sizeof(T));
    std::memcpy(&y, &b, sizeof(T));
    const U r = next_bits<U>(x, y, U{1} << (sizeof(T) * 8 - 1));
    T out;
    std::memcpy(&out, &r, sizeof(T));
    return out;
  }
}

template <OpCode op, class T>
auto binary_fn(T va, T vb) {
  using C = Calc<T>;
  C a = static_cast<C>(va), b = static_cast<C>(vb);
  if constexpr (op == OpCode::Add) {
    if constexpr (std::is_same_v<T, bool>) return static_cast<bool>(va || vb);
    else return static_cast<T>(a + b);
  } else if constexpr (op == OpCode::Subtract) return static_cast<T>(a - b);
  else if constexpr (op == OpCode::Multiply) {
    if constexpr (std::is_same_v<T, bool>) return static_cast<bool>(va && vb);
    else return static_cast<T>(a * b);
  } else if constexpr (op == OpCode::Divide) {
    if constexpr (is_int<T>) return static_cast<T>(b == 0 ? 0 : a / b);
    else return static_cast<T>(a / b);
  } else if constexpr (op == OpCode::FloorDivide) {
    if constexpr (is_int<T>) {
      if (b == 0) return T(0);
      if constexpr (std::is_signed_v<T>) {
        if (b == -1) return static_cast<T>(-a);  // avoids INT_MIN / -1 trap
        T q = static_cast<T>(a / b);
        return static_cast<T>((a % b != 0) && ((a < 0) != (b < 0)) ? q - 1 : q);
      } else {
        return static_cast<T>(a / b);
      }
    } else {
      return static_cast<T>(std::floor(a / b));
    }
  } else if constexpr (op == OpCode::Remainder) {
    if constexpr (is_int<T>) {
      if (b == 0) return T(0);
      if constexpr (std::is_signed_v<T>) {
        if (b == -1) return T(0);
        T r = static_cast<T>(a % b);
        return static_cast<T>(r != 0 && ((r < 0) != (b < 0)) ? r + b : r);
      } else {
        return static_cast<T>(a % b);
      }
    } else {
      C r = std::fmod(a, b);
      if (r != C(0) && ((r < C(0)) != (b < C(0)))) r += b;
      return static_cast<T>(r);
    }
  } else if constexpr (op == OpCode::Power) {
    if constexpr (is_int<T>) return static_cast<T>(int_pow<C>(a, b));  // wraps in T's width
    else return static_cast<T>(std::pow(a, b));
  } else if constexpr (op == OpCode::Maximum) {
    if constexpr (is_flt<C>) {
      if (std::isnan(a)) return va;
      if (std::isnan(b)) return vb;
    }
    return a >= b ? va : vb;
  } else if constexpr (op == OpCode::Minimum) {
    if constexpr (is_flt<C>) {
      if (std::isnan(a)) return va;
      if (std::isnan(b)) return vb;
    }
    return a <= b ? va : vb;
  } else if constexpr (op == OpCode::Atan2) return static_cast<T>(std::atan2(a, b));
  else if constexpr (op == OpCode::Hypot) return static_cast<T>(std::hypot(a, b));
  else if constexpr (op == OpCode::GeluGrad) {
    // a * (Phi(b) + b phi(b)), Phi through erfc (no cancellation for b << 0).
    if constexpr (is_flt<C>)
      return static_cast<T>(a * (C(0.5) * std::erfc(b * C(-0.7071067811865476)) +
                                 b * std::exp(b * b * C(-0.5)) * C(0.3989422804014327)));
    else return va;
  } else if constexpr (op == OpCode::GeluTanhGrad) {
    // With s = sigmoid(2u) = (1 + tanh u) / 2 and 1 - tanh^2 u = 4 s (1 - s):
    // gelu' = s (1 + 2 b (1 - s) u'), free of tanh's cancellation in 1 + t for b << 0.
    if constexpr (is_flt<C>) {
      const C c = C(0.7978845608028654), k = C(0.044715);
      const C s = C(1) / (C(1) + std::exp(C(-2) * c * (b + k * b * b * b)));
      return static_cast<T>(a * (s * (C(1) + C(2) * b * (C(1) - s) * c * (C(1) + C(3) * k * b * b))));
    } else {
      return va;
    }
  }
  else if constexpr (op == OpCode::Nextafter) {
    if constexpr (is_flt<T> || is_low<T>) return next_after(va, vb);
    else return va;
  }
  else if constexpr (op == OpCode::Equal) return a == b;
  else if constexpr (op == OpCode::NotEqual) return a != b;
  else if constexpr (op == OpCode::Less) return a < b;
  else if constexpr (op == OpCode::LessEqual) return a <= b;
  else if constexpr (op == OpCode::Greater) return a > b;
  else if constexpr (op == OpCode::GreaterEqual) return a >= b;
  else if constexpr (op == OpCode::LogicalAnd) return va && vb;
  else if constexpr (op == OpCode::LogicalOr) return va || vb;
  else if constexpr (op == OpCode::LogicalXor) return va != vb;
  else if constexpr (op == OpCode::BitwiseAnd) {
    if constexpr (std::is_same_v<T, bool>) return static_cast<bool>(va && vb);
    else return static_cast<T>(va & vb);
  } else if constexpr (op == OpCode::BitwiseOr) {
    if constexpr (std::is_same_v<T, bool>) return static_cast<bool>(va || vb);
    else return static_cast<T>(va | vb);
  } else if constexpr (op == OpCode::BitwiseXor) {
    if constexpr (std::is_same_v<T, bool>) return static_cast<bool>(va != vb);
    else return static_cast<T>(va ^ vb);
  } else if constexpr (op == OpCode::BitwiseLeftShift) {
    if constexpr (is_int<T>) return shift_left(va, vb);
    else return va;
  } else if constexpr (op == OpCode::BitwiseRightShift) {
    if constexpr (is_int<T>) return shift_right(va, vb);
    else return va;
  }
  else return va;
}

template <OpCode op, class T>
void binary_typed(const ArrayRef& a, const ArrayRef& b, const ArrayRef& out) {
  using R = decltype(binary_fn<op, T>(T{}, T{}));
  auto plan = make_plan<3>(out.shape, {&out, &a, &b});
  for_each_row<3>(plan,
                  {static_cast<char*>(out.data), static_cast<char*>(a.data), static_cast<char*>(b.data)},
                  [](std::array<char*, 3> p, int64_t n, std::array<int64_t, 3> s) {
                    R* o = reinterpret_cast<R*>(p[0]);
                    const T* x = reinterpret_cast<const T*>(p[1]);
                    const T* y = reinterpret_cast<const T*>(p[2]);
                    if constexpr (op == OpCode::GeluGrad && std::is_same_v<T, float>) {
                      if (s[0] == sizeof(T) && s[1] == sizeof(T) && s[2] == sizeof(T)) {
                        simd_gelu_grad_f32(x, y, o, static_cast<size_t>(n));
                        return;
                      }
                    }
                    if constexpr ((std::is_same_v<T, float> || std::is_same_v<T, double>) &&
                                  std::is_same_v<R, T>) {
                      const bool xs = s[1] == 0, ys = s[2] == 0;
                      if (auto so = simd_binary_op(op);
                          so && s[0] == sizeof(R) && (xs || s[1] == sizeof(T)) &&
                          (ys || s[2] == sizeof(T)) && !(xs && ys)) {
                        const auto m = static_cast<size_t>(n);
                        if constexpr (std::is_same_v<T, float>) {
                          if (simd_binary_f32(*so, x, xs, y, ys, o, m)) return;
                        } else {
                          if (simd_binary_f64(*so, x, xs, y, ys, o, m)) return;
                        }
                      }
                    }
                    if (s[0] == sizeof(R) && s[1] == sizeof(T) && s[2] == sizeof(T)) {
                      for (int64_t i = 0; i < n; ++i) o[i] = binary_fn<op, T>(x[i], y[i]);
                    } else if (s[0] == sizeof(R) && s[1] == sizeof(T) && s[2] == 0) {
                      const T yv = *y;
                      for (int64_t i = 0; i < n; ++i) o[i] = binary_fn<op, T>(x[i], yv);
                    } else if (s[0] == sizeof(R) && s[1] == 0 && s[2] == sizeof(T)) {
                      const T xv = *x;
                      for (int64_t i = 0; i < n; ++i) o[i] = binary_fn<op, T>(xv, y[i]);
                    } else {
                      for (int64_t i = 0; i < n; ++i)
                        *reinterpret_cast<R*>(p[0] + i * s[0]) =
                            binary_fn<op, T>(*reinterpret_cast<const T*>(p[1] + i * s[1]),
                                             *reinterpret_cast<const T*>(p[2] + i * s[2]));
                    }
                  });
}

template <OpCode op>
bool binary_dispatch(const ArrayRef& a, const ArrayRef& b, const ArrayRef& out) {
  bool done = false;
  visit_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (binary_ok<op, T>()) {
      binary_typed<op, T>(a, b, out);
      done = true;
    }
  });
  return done;
}

template <OpCode op>
bool binary_supported(DType dt) {
  bool ok = false;
  visit_dtype(dt, [&](auto tag) { ok = binary_ok<op, decltype(tag)>(); });
  return ok;
}

[[noreturn]] void unsupported(OpCode op, DType dt) {
  throw DTypeError("[" + std::string(op_name(op)) + "] cpu kernel does not support dtype " +
                   std::string(dtype_name(dt)));
}

// ---- conversions -------------------------------------------------------------
template <class D, class S>
D convert(S v) {
  if constexpr (std::is_same_v<D, S>) {
    return v;
  } else if constexpr (is_cplx<D>) {
    if constexpr (is_cplx<S>) return D(static_cast<typename D::value_type>(v.real()),
                                       static_cast<typename D::value_type>(v.imag()));
    else return D(static_cast<typename D::value_type>(static_cast<Calc<S>>(v)), 0);
  } else if constexpr (is_cplx<S>) {
    if constexpr (std::is_same_v<D, bool>) return v != S(0);
    else return convert<D>(v.real());
  } else if constexpr (std::is_same_v<D, bool>) {
    return static_cast<Calc<S>>(v) != Calc<S>(0);
  } else if constexpr (is_low<D>) {
    return D(static_cast<float>(static_cast<Calc<S>>(v)));
  } else if constexpr (is_int<D> && (is_flt<Calc<S>>)) {
    // Float -> int: NaN/inf/out-of-range give 0 instead of undefined behaviour.
    auto f = static_cast<double>(static_cast<Calc<S>>(v));
    if (!(f > static_cast<double>(std::numeric_limits<D>::min()) - 1.0 &&
          f < static_cast<double>(std::numeric_limits<D>::max()) + 1.0))
      return D(0);
    return static_cast<D>(f);
  } else {
    return static_cast<D>(static_cast<Calc<S>>(v));
  }
}

template <class S, class D>
void copy_typed(const ArrayRef& src, const ArrayRef& dst) {
  auto plan = make_plan<2>(dst.shape, {&dst, &src});
  for_each_row<2>(plan, {static_cast<char*>(dst.data), static_cast<char*>(src.data)},
                  [](std::array<char*, 2> p, int64_t n, std::array<int64_t, 2> s) {
                    if (s[0] == sizeof(D) && s[1] == sizeof(S)) {
                      D* o = reinterpret_cast<D*>(p[0]);
                      const S* a = reinterpret_cast<const S*>(p[1]);
                      if constexpr (std::is_same_v<S, D>) {
                        std::memcpy(o, a, static_cast<size_t>(n) * sizeof(S));
                      } else {
                        for (int64_t i = 0; i < n; ++i) o[i] = convert<D>(a[i]);
                      }
                    } else {
                      for (int64_t i = 0; i < n; ++i)
                        *reinterpret_cast<D*>(p[0] + i * s[0]) =
                            convert<D>(*reinterpret_cast<const S*>(p[1] + i * s[1]));
                    }
                  });
}

template <class T>
T scalar_as(Scalar v) {
  if constexpr (is_cplx<T>) return T(v.as_complex());
  else if constexpr (std::is_same_v<T, bool>) return v.kind() == Scalar::Kind::Complex ? std::abs(v.as_complex()) != 0 : v.as_double() != 0;
  else if constexpr (is_int<T>) return static_cast<T>(v.as_int());
  else return T(static_cast<Calc<T>>(v.as_double()));
}

}  // namespace

void unary(OpCode op, const ArrayRef& x, const ArrayRef& out) {
  bool done = false;
  switch (op) {
#define TMATH_CASE(name) \
  case OpCode::name: done = unary_dispatch<OpCode::name>(x, out); break;
    TMATH_UNARY_OPS(TMATH_CASE)
#undef TMATH_CASE
    default: break;
  }
  if (!done) unsupported(op, x.dtype);
}

bool supports_unary(OpCode op, DType dt) {
  switch (op) {
#define TMATH_CASE(name) \
  case OpCode::name: return unary_supported<OpCode::name>(dt);
    TMATH_UNARY_OPS(TMATH_CASE)
#undef TMATH_CASE
    default: return false;
  }
}

void binary(OpCode op, const ArrayRef& a, const ArrayRef& b, const ArrayRef& out) {
  bool done = false;
  switch (op) {
#define TMATH_CASE(name) \
  case OpCode::name: done = binary_dispatch<OpCode::name>(a, b, out); break;
    TMATH_BINARY_OPS(TMATH_CASE)
#undef TMATH_CASE
    default: break;
  }
  if (!done) unsupported(op, a.dtype);
}

bool supports_binary(OpCode op, DType dt) {
  switch (op) {
#define TMATH_CASE(name) \
  case OpCode::name: return binary_supported<OpCode::name>(dt);
    TMATH_BINARY_OPS(TMATH_CASE)
#undef TMATH_CASE
    default: return false;
  }
}

void where(const ArrayRef& cond, const ArrayRef& a, const ArrayRef& b, const ArrayRef& out) {
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto plan = make_plan<4>(out.shape, {&out, &cond, &a, &b});
    for_each_row<4>(plan,
                    {static_cast<char*>(out.data), static_cast<char*>(cond.data),
                     static_cast<char*>(a.data), static_cast<char*>(b.data)},
                    [](std::array<char*, 4> p, int64_t n, std::array<int64_t, 4> s) {
                      for (int64_t i = 0; i < n; ++i) {
                        bool c = *reinterpret_cast<const bool*>(p[1] + i * s[1]);
                        const char* src = c ? p[2] + i * s[2] : p[3] + i * s[3];
                        std::memcpy(p[0] + i * s[0], src, sizeof(T));
                      }
                    });
  };
  switch (itemsize(out.dtype)) {
    case 1: run(uint8_t{}); break;
    case 2: run(uint16_t{}); break;
    case 4: run(uint32_t{}); break;
    case 8: run(uint64_t{}); break;
    default: run(complex128_t{}); break;
  }
}

void copy(const ArrayRef& src, const ArrayRef& dst) {
  visit_dtype(src.dtype, [&](auto s) {
    visit_dtype(dst.dtype, [&](auto d) { copy_typed<decltype(s), decltype(d)>(src, dst); });
  });
}

void fill(const ArrayRef& out, Scalar value) {
  visit_dtype(out.dtype, [&](auto tag) {
    using T = decltype(tag);
    T v = scalar_as<T>(value);
    T* o = static_cast<T*>(out.data);
    parallel_for(out.size(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) o[i] = v;
    });
  });
}

void arange(const ArrayRef& out, double start, double step) {
  visit_dtype(out.dtype, [&](auto tag) {
    using T = decltype(tag);
    T* o = static_cast<T*>(out.data);
    int64_t n = out.size();
    for (int64_t i = 0; i < n; ++i) o[i] = scalar_as<T>(Scalar(start + static_cast<double>(i) * step));
  });
}

}  // namespace tmath::cpu
