// backend_ops: every primitive (OpCode) x every dtype on every available backend,
// run through the public API (so selection and dispatch are exercised) and checked
// element by element against a float64 / complex128 reference computed here.
//
// Per (op, dtype) the harness decides from the documented contract whether the
// combination is
//   Required     - must run and be correct (natively, or by the documented
//                  upcast/conversion when the backend has no kernel for it);
//   Optional     - complex inputs (DESIGN §3 only requires complex for linalg) and a few
//                  undocumented-but-meaningful cases: correct if accepted, else a clean
//                  DTypeError/UnsupportedError;
//   Invalid      - no meaning for the dtype (floor of complex, uniform of int32): must
//                  throw DTypeError/UnsupportedError;
//   Unspecified  - bool arithmetic and other cases the contract leaves open: must not
//                  crash, any result or tmath::Error is accepted.
// Outputs are poisoned: blocks of the output's size filled with 0xFF are put in the
// allocator cache just before the op runs, so unwritten elements show up as NaN/-1/255.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>

#include "ref_util.h"
#include "test_util.h"

using namespace tmath;
using tt::cplx;

namespace {

enum class Cat { Required, Optional, Invalid, Unspecified, NotExpressible };
const char* cat_name(Cat c) {
  switch (c) {
    case Cat::Required:
      return "required";
    case Cat::Optional:
      return "optional";
    case Cat::Invalid:
      return "invalid";
    case Cat::Unspecified:
      return "unspecified";
    default:
      return "n/a";
  }
}

Cat category(OpCode op, DType dt) {
  const bool B = dt == bool_, I = tt::is_int(dt), F = tt::is_float(dt), C = tt::is_cplx(dt);
  using O = OpCode;
  switch (op) {
    case O::Neg:
    case O::Abs:
    case O::Sign:
    case O::Square:
      return (I || F) ? Cat::Required : C ? Cat::Optional : Cat::Unspecified;
    case O::Exp:
    case O::Expm1:
    case O::Log:
    case O::Log1p:
    case O::Log2:
    case O::Log10:
    case O::Sqrt:
    case O::Rsqrt:
    case O::Sin:
    case O::Cos:
    case O::Tan:
    case O::Asin:
    case O::Acos:
    case O::Atan:
    case O::Sinh:
    case O::Cosh:
    case O::Tanh:
    case O::Asinh:
    case O::Acosh:
    case O::Atanh:
    case O::Sigmoid:
      return C ? Cat::Optional : Cat::Required;  // ints/bool -> float32
    case O::Reciprocal:
      return F ? Cat::Required : C ? Cat::Optional : Cat::Unspecified;
    case O::Relu:
      return (I || F) ? Cat::Required : B ? Cat::Unspecified : Cat::Invalid;
    case O::Gelu:
    case O::GeluTanh:
    case O::Silu:
    case O::Erf:
    case O::Erfinv:
      return C ? Cat::Invalid : Cat::Required;
    case O::Floor:
    case O::Ceil:
      return (I || F) ? Cat::Required : B ? Cat::Unspecified : Cat::Invalid;
    case O::Round:
      return (I || F) ? Cat::Required : B ? Cat::Unspecified : Cat::Optional;
    case O::IsNan:
    case O::IsInf:
    case O::IsFinite:
    case O::LogicalNot:
      return C ? Cat::Optional : Cat::Required;
    case O::Real:
    case O::Imag:
    case O::Conj:
      return B ? Cat::Unspecified : Cat::Optional;
    case O::Add:
    case O::Subtract:
    case O::Multiply:
    case O::Divide:
    case O::Power:
      return (I || F) ? Cat::Required : C ? Cat::Optional : Cat::Unspecified;
    case O::FloorDivide:
    case O::Remainder:
      return (I || F) ? Cat::Required : C ? Cat::Invalid : Cat::Unspecified;
    case O::Maximum:
    case O::Minimum:
      return (I || F) ? Cat::Required : Cat::Unspecified;
    case O::Atan2:
    case O::Hypot:
    case O::Nextafter:
    case O::GeluGrad:
    case O::GeluTanhGrad:
      return C ? Cat::Invalid : Cat::Required;
    case O::Equal:
    case O::NotEqual:
      return C ? Cat::Optional : Cat::Required;
    case O::Less:
    case O::LessEqual:
    case O::Greater:
    case O::GreaterEqual:
      return (I || F) ? Cat::Required : C ? Cat::Invalid : Cat::Unspecified;
    case O::LogicalAnd:
    case O::LogicalOr:
    case O::LogicalXor:
      return B ? Cat::Required : Cat::Optional;
    case O::BitwiseAnd:
    case O::BitwiseOr:
    case O::BitwiseXor:
    case O::BitwiseInvert:
      return (B || I) ? Cat::Required : Cat::Invalid;
    case O::BitwiseLeftShift:
    case O::BitwiseRightShift:
      return I ? Cat::Required : Cat::Invalid;
    case O::Sum:
    case O::Prod:
      return C ? Cat::Optional : Cat::Required;
    case O::Max:
    case O::Min:
      return (I || F) ? Cat::Required : B ? Cat::Optional : Cat::Invalid;
    case O::Any:
    case O::All:
      return C ? Cat::Optional : Cat::Required;
    case O::ArgMax:
    case O::ArgMin:
      return (I || F) ? Cat::Required : B ? Cat::Optional : Cat::Invalid;
    case O::CumSum:
    case O::CumProd:
      return (I || F) ? Cat::Required : Cat::Optional;
    case O::Where:
    case O::Take:
    case O::TakeAlongAxis:
    case O::Put:
    case O::PutAdd:
      return C ? Cat::Optional : Cat::Required;
    case O::Copy:
    case O::Fill:
      return Cat::Required;
    case O::Arange:
      return (I || F) ? Cat::Required : Cat::Unspecified;
    case O::Softmax:
    case O::LogSoftmax:
    case O::LayerNorm:
      return F ? Cat::Required : C ? Cat::Invalid : Cat::Optional;
    case O::Matmul:
      return (I || F) ? Cat::Required : C ? Cat::Optional : Cat::Unspecified;
    case O::RandomBits:
      return dt == int64 ? Cat::Required : Cat::NotExpressible;
    case O::RandomUniform:
    case O::RandomNormal:
      return F ? Cat::Required : Cat::Invalid;
    default:
      return Cat::NotExpressible;
  }
}

// ---- input domains --------------------------------------------------------------

struct Dom {
  double flo = -3, fhi = 3, fmin = 0.0;  // floats: [flo, fhi], |x| >= fmin
  double ilo = -10, ihi = 10;            // integers
  bool izero = false;                    // integers may be 0
  double clo = -1, chi = 1, cmin = 0.1;  // complex: re, im in [clo, chi], |z| >= cmin
};

Dom unary_dom(OpCode op) {
  using O = OpCode;
  Dom d;
  switch (op) {
    case O::Log:
    case O::Log2:
    case O::Log10:
      d = {0.05, 20, 0, 1, 20};
      break;
    case O::Sqrt:
    case O::Rsqrt:
      d = {0.01, 20, 0, 1, 20};
      break;
    case O::Log1p:
      d = {-0.9, 5, 1e-3, 0, 20, true};
      break;
    case O::Asin:
    case O::Acos:
    case O::Erfinv:
      d = {-0.99, 0.99, 1e-2, -1, 1, true};
      break;
    case O::Atanh:  // integers: only 0 is inside (-1, 1)
      d = {-0.99, 0.99, 1e-2, 0, 0, true};
      break;
    case O::Acosh:
      d = {1.01, 5, 0, 1, 5};
      break;
    case O::Exp:
    case O::Expm1:
      d = {-5, 5, 1e-3, -5, 5, true};
      break;
    case O::Sinh:
    case O::Cosh:
      d = {-5, 5, 1e-2, -5, 5, true};
      break;
    case O::Tan:
      d = {-1.4, 1.4, 1e-2, -1, 1, true};
      break;
    case O::Reciprocal:
      d = {-5, 5, 0.05, -10, 10};
      break;
    case O::Square:
      d = {-5, 5, 0, -11, 11, true};
      break;
    case O::Floor:
    case O::Ceil:
    case O::Round:
      d = {-5, 5, 0, -20, 20, true};
      break;
    case O::Neg:
    case O::Abs:
    case O::Sign:
      d = {-5, 5, 0, -100, 100, true};
      break;
    default:
      d = {-3, 3, 1e-2, -5, 5, true};
      break;
  }
  return d;
}

// The result dtype of a reduction or scan of dt (NumPy 2 / the Array API): sums,
// products and their scans of bool and signed ints give int64, of unsigned ints uint64;
// any/all give bool; the others keep dt.
DType reduce_dtype(OpCode op, DType dt) {
  using O = OpCode;
  if (op == O::Any || op == O::All) return bool_;
  if (op != O::Sum && op != O::Prod && op != O::CumSum && op != O::CumProd) return dt;
  if (tt::is_uint(dt)) return uint64;
  if (dt == bool_ || tt::is_int(dt)) return int64;
  return dt;
}

// ---- the runner ------------------------------------------------------------------

struct Check {
  std::string what;
  Tensor out;
  Shape shape;
  std::vector<cplx> want;
  std::vector<double> scale;
  bool scale_one = false;  // rounding relative to max(|want|, 1)
  bool exact = false;
  std::optional<DType> dtype;  // the result dtype, where the harness states it
  // Custom verification (random ops): returns "" when fine.
  std::function<std::string(const std::vector<cplx>&)> custom;
};

struct In {
  Tensor t;
  std::vector<cplx> v;
  Shape shape;
};

class Runner {
 public:
  Runner(Device dev, uint32_t seed) : dev_(dev), rng_(seed) {}

  // Random input of dtype dt; `zero_frac` > 0 replaces that fraction of values by 0.
  In gen(const Shape& s, DType dt, const Dom& d, double zero_frac = 0.0) {
    const size_t n = static_cast<size_t>(tt::numel(s));
    std::vector<cplx> v(n);
    if (tt::is_cplx(dt)) {
      std::uniform_real_distribution<double> u(d.clo, d.chi);
      for (auto& z : v) {
        do {
          z = tt::round_to(cplx(u(rng_), u(rng_)), dt);
        } while (std::abs(z) < d.cmin);
      }
    } else if (dt == bool_) {
      for (auto& z : v) z = static_cast<double>(rng_() & 1u);
    } else if (tt::is_int(dt)) {
      double lo = d.ilo, hi = d.ihi;
      if (tt::is_uint(dt)) lo = std::max(lo, 0.0);
      if (dt == int8) lo = std::max(lo, -120.0), hi = std::min(hi, 120.0);
      auto r = tt::random_values(rng_, n, lo, hi, dt, !d.izero);
      for (size_t i = 0; i < n; ++i) v[i] = r[i];
    } else {
      auto r = tt::random_values(rng_, n, d.flo, d.fhi, dt, true, d.fmin);
      for (size_t i = 0; i < n; ++i) v[i] = r[i];
    }
    if (zero_frac > 0) {
      std::uniform_real_distribution<double> u(0, 1);
      for (auto& z : v)
        if (u(rng_) < zero_frac) z = 0.0;
    }
    return make_in(v, s, dt);
  }
  In make_in(const std::vector<cplx>& v, const Shape& s, DType dt) {
    Tensor t = tt::make_c(v, s, dt);
    if (!(dev_ == kCPU)) t = t.to(dev_);
    t.eval();
    return {t, v, s};
  }
  // Puts blocks of n * {1,2,4,8,16} bytes filled with 0xFF into the allocator cache.
  void poison(int64_t n) {
    if (n <= 0) return;
    try {
      std::vector<Tensor> ps;
      for (int64_t s : {1, 2, 4, 8, 16}) {
        Tensor p = full({n * s}, 255, uint8, dev_);
        p.eval();
        ps.push_back(p);
      }
    } catch (const std::exception&) {
      // Poisoning is best effort.
    }
  }

  std::vector<Check> run(OpCode op, DType dt);

  Device dev_;
  std::mt19937 rng_;
  std::map<std::pair<int, int>, std::vector<cplx>>* random_ref = nullptr;  // cross-backend
};

bool truthy(cplx z) {
  return z.real() != 0.0 || z.imag() != 0.0;
}

cplx unary_ref(OpCode op, cplx z, DType dt) {
  using O = OpCode;
  const bool C = tt::is_cplx(dt);
  const double x = z.real();
  if (C) {
    switch (op) {
      case O::Neg:
        return -z;
      case O::Abs:
        return std::abs(z);
      case O::Sign:
        return z / std::abs(z);
      case O::Exp:
        return std::exp(z);
      case O::Expm1:
        return std::exp(z) - 1.0;
      case O::Log:
        return std::log(z);
      case O::Log1p:
        return std::log(1.0 + z);
      case O::Log2:
        return std::log(z) / std::log(2.0);
      case O::Log10:
        return std::log10(z);
      case O::Sqrt:
        return std::sqrt(z);
      case O::Rsqrt:
        return 1.0 / std::sqrt(z);
      case O::Square:
        return z * z;
      case O::Reciprocal:
        return 1.0 / z;
      case O::Sin:
        return std::sin(z);
      case O::Cos:
        return std::cos(z);
      case O::Tan:
        return std::tan(z);
      case O::Asin:
        return std::asin(z);
      case O::Acos:
        return std::acos(z);
      case O::Atan:
        return std::atan(z);
      case O::Asinh:
        return std::asinh(z);
      case O::Acosh:
        return std::acosh(z);
      case O::Atanh:
        return std::atanh(z);
      case O::Sinh:
        return std::sinh(z);
      case O::Cosh:
        return std::cosh(z);
      case O::Tanh:
        return std::tanh(z);
      case O::Sigmoid:
        return 1.0 / (1.0 + std::exp(-z));
      case O::Round:
        return {std::nearbyint(z.real()), std::nearbyint(z.imag())};
      case O::IsNan:
        return double(std::isnan(z.real()) || std::isnan(z.imag()));
      case O::IsInf:
        return double(std::isinf(z.real()) || std::isinf(z.imag()));
      case O::IsFinite:
        return double(std::isfinite(z.real()) && std::isfinite(z.imag()));
      case O::LogicalNot:
        return double(!truthy(z));
      case O::Real:
        return z.real();
      case O::Imag:
        return z.imag();
      case O::Conj:
        return std::conj(z);
      default:
        return std::nan("");
    }
  }
  switch (op) {
    case O::Neg:
      return -x;
    case O::Abs:
      return std::fabs(x);
    case O::Sign:
      return tt::ref_sign(x);
    case O::Exp:
      return std::exp(x);
    case O::Expm1:
      return std::expm1(x);
    case O::Log:
      return std::log(x);
    case O::Log1p:
      return std::log1p(x);
    case O::Log2:
      return std::log2(x);
    case O::Log10:
      return std::log10(x);
    case O::Sqrt:
      return std::sqrt(x);
    case O::Rsqrt:
      return 1.0 / std::sqrt(x);
    case O::Square:
      return x * x;
    case O::Reciprocal:
      return 1.0 / x;
    case O::Sin:
      return std::sin(x);
    case O::Cos:
      return std::cos(x);
    case O::Tan:
      return std::tan(x);
    case O::Asin:
      return std::asin(x);
    case O::Acos:
      return std::acos(x);
    case O::Atan:
      return std::atan(x);
    case O::Asinh:
      return std::asinh(x);
    case O::Acosh:
      return std::acosh(x);
    case O::Atanh:
      return std::atanh(x);
    case O::Sinh:
      return std::sinh(x);
    case O::Cosh:
      return std::cosh(x);
    case O::Tanh:
      return std::tanh(x);
    case O::Sigmoid:
      return tt::ref_sigmoid(x);
    case O::Relu:
      return x > 0 ? x : 0.0;
    case O::Gelu:
      return tt::ref_gelu(x);
    case O::GeluTanh:
      return tt::ref_gelu_tanh(x);
    case O::Silu:
      return tt::ref_silu(x);
    case O::Erf:
      return std::erf(x);
    case O::Erfinv:
      return tt::ref_erfinv(x);
    case O::Floor:
      return std::floor(x);
    case O::Ceil:
      return std::ceil(x);
    case O::Round:
      return std::nearbyint(x);
    case O::IsNan:
      return double(std::isnan(x));
    case O::IsInf:
      return double(std::isinf(x));
    case O::IsFinite:
      return double(std::isfinite(x));
    case O::LogicalNot:
      return double(x == 0.0);
    case O::BitwiseInvert:  // wrap_expected() reduces ~x to the dtype's width
      return dt == bool_ ? double(x == 0.0) : double(~static_cast<int64_t>(x));
    case O::Real:
      return x;
    case O::Imag:
      return 0.0;
    case O::Conj:
      return x;
    default:
      return std::nan("");
  }
}

// nextafter(x, y) in the result dtype's format from the values alone: the
// neighbouring representable number (p significand bits, minimum exponent emin,
// maximum emax), without stepping bit patterns as the kernels do.
double ref_nextafter(double x, double y, DType dt) {
  if (std::isnan(x) || std::isnan(y)) return std::nan("");
  if (x == y) return y;
  if (dt == float64) return std::nextafter(x, y);
  if (dt != float16 && dt != bfloat16)  // float32, and integer inputs computed in float32
    return std::nextafter(static_cast<float>(x), static_cast<float>(y));
  const int p = dt == float16 ? 11 : 8, emin = dt == float16 ? -14 : -126;
  const int emax = dt == float16 ? 15 : 127;
  auto ulp = [&](double a) {  // spacing above a > 0
    int e;
    std::frexp(a, &e);
    return std::ldexp(1.0, std::max(e - 1, emin) - (p - 1));
  };
  const double big = std::ldexp(2.0 - std::ldexp(1.0, 1 - p), emax);
  if (x == 0) return std::copysign(std::ldexp(1.0, emin - (p - 1)), y);
  if (std::isinf(x)) return std::copysign(big, x);
  const double ax = std::fabs(x);
  const bool away = (y > x) == (x > 0);
  double r = away ? ax + ulp(ax) : ax - ulp(ax * (1.0 - std::ldexp(1.0, -(p + 1))));
  if (r > big) r = INFINITY;
  return std::copysign(r, x);
}

int64_t ipow(int64_t b, int64_t e) {
  int64_t r = 1;
  for (int64_t i = 0; i < e; ++i) r *= b;
  return r;
}

cplx binary_ref(OpCode op, cplx a, cplx b, DType dt) {
  using O = OpCode;
  const bool I = tt::is_int(dt) || dt == bool_;
  if (tt::is_cplx(dt)) {
    switch (op) {
      case O::Add:
        return a + b;
      case O::Subtract:
        return a - b;
      case O::Multiply:
        return a * b;
      case O::Divide:
        return a / b;
      case O::Power:
        return std::pow(a, b);
      case O::Equal:
        return double(a == b);
      case O::NotEqual:
        return double(a != b);
      case O::LogicalAnd:
        return double(truthy(a) && truthy(b));
      case O::LogicalOr:
        return double(truthy(a) || truthy(b));
      case O::LogicalXor:
        return double(truthy(a) != truthy(b));
      default:
        return std::nan("");
    }
  }
  const double x = a.real(), y = b.real();
  const auto ix = static_cast<int64_t>(x), iy = static_cast<int64_t>(y);
  switch (op) {
    case O::Add:
      return x + y;
    case O::Subtract:
      return x - y;
    case O::Multiply:
      return x * y;
    case O::Divide:
      return x / y;
    case O::FloorDivide:
      return I ? double(tt::ref_floor_div_int(ix, iy)) : tt::ref_floor_div(x, y);
    case O::Remainder:
      return I ? double(tt::ref_remainder_int(ix, iy)) : tt::ref_remainder(x, y);
    case O::Power:
      return I ? double(ipow(ix, iy)) : std::pow(x, y);
    case O::Maximum:
      return std::max(x, y);
    case O::Minimum:
      return std::min(x, y);
    case O::Atan2:
      return std::atan2(x, y);
    case O::Hypot:
      return std::hypot(x, y);
    case O::GeluGrad:
      return x * tt::ref_gelu_grad(y);
    case O::GeluTanhGrad:
      return x * tt::ref_gelu_tanh_grad(y);
    case O::Nextafter:
      return ref_nextafter(x, y, dt);
    case O::Equal:
      return double(x == y);
    case O::NotEqual:
      return double(x != y);
    case O::Less:
      return double(x < y);
    case O::LessEqual:
      return double(x <= y);
    case O::Greater:
      return double(x > y);
    case O::GreaterEqual:
      return double(x >= y);
    case O::LogicalAnd:
      return double(x != 0 && y != 0);
    case O::LogicalOr:
      return double(x != 0 || y != 0);
    case O::LogicalXor:
      return double((x != 0) != (y != 0));
    case O::BitwiseAnd:
      return double(ix & iy);
    case O::BitwiseOr:
      return double(ix | iy);
    case O::BitwiseXor:
      return double(ix ^ iy);
    case O::BitwiseLeftShift:
    case O::BitwiseRightShift: {
      // NumPy: counts outside [0, bits) shift every bit out.
      const int64_t bits = static_cast<int64_t>(tt::size_of(dt)) * 8;
      if (iy < 0 || iy >= bits)
        return op == O::BitwiseLeftShift || ix >= 0 ? 0.0 : -1.0;
      if (op == O::BitwiseRightShift) return double(ix >> iy);
      if (dt == uint64) return double(static_cast<uint64_t>(ix) << iy);
      return double(tt::wrap_int(static_cast<int64_t>(static_cast<uint64_t>(ix) << iy), dt));
    }
    default:
      return std::nan("");
  }
}

Tensor call_unary(OpCode op, const Tensor& x) {
  using O = OpCode;
  switch (op) {
    case O::Neg:
      return neg(x);
    case O::Abs:
      return tmath::abs(x);
    case O::Sign:
      return sign(x);
    case O::Exp:
      return tmath::exp(x);
    case O::Expm1:
      return expm1(x);
    case O::Log:
      return tmath::log(x);
    case O::Log1p:
      return log1p(x);
    case O::Log2:
      return log2(x);
    case O::Log10:
      return log10(x);
    case O::Sqrt:
      return tmath::sqrt(x);
    case O::Rsqrt:
      return rsqrt(x);
    case O::Square:
      return square(x);
    case O::Reciprocal:
      return reciprocal(x);
    case O::Sin:
      return tmath::sin(x);
    case O::Cos:
      return tmath::cos(x);
    case O::Tan:
      return tmath::tan(x);
    case O::Asin:
      return tmath::asin(x);
    case O::Acos:
      return tmath::acos(x);
    case O::Atan:
      return tmath::atan(x);
    case O::Asinh:
      return tmath::asinh(x);
    case O::Acosh:
      return tmath::acosh(x);
    case O::Atanh:
      return tmath::atanh(x);
    case O::Sinh:
      return tmath::sinh(x);
    case O::Cosh:
      return tmath::cosh(x);
    case O::Tanh:
      return tmath::tanh(x);
    case O::Sigmoid:
      return sigmoid(x);
    case O::Relu:
      return relu(x);
    case O::Gelu:
      return gelu(x, false);
    case O::GeluTanh:
      return gelu(x, true);
    case O::Silu:
      return silu(x);
    case O::Erf:
      return tmath::erf(x);
    case O::Erfinv:
      return erfinv(x);
    case O::Floor:
      return tmath::floor(x);
    case O::Ceil:
      return tmath::ceil(x);
    case O::Round:
      return tmath::round(x);
    case O::IsNan:
      return isnan(x);
    case O::IsInf:
      return isinf(x);
    case O::IsFinite:
      return isfinite(x);
    case O::LogicalNot:
      return logical_not(x);
    case O::Real:
      return real(x);
    case O::Imag:
      return imag(x);
    case O::Conj:
      return conj(x);
    case O::BitwiseInvert:
      return bitwise_invert(x);
    default:
      throw std::logic_error("not unary");
  }
}

Tensor call_binary(OpCode op, const Tensor& a, const Tensor& b) {
  using O = OpCode;
  switch (op) {
    case O::Add:
      return add(a, b);
    case O::Subtract:
      return subtract(a, b);
    case O::Multiply:
      return multiply(a, b);
    case O::Divide:
      return divide(a, b);
    case O::FloorDivide:
      return floor_divide(a, b);
    case O::Remainder:
      return remainder(a, b);
    case O::Power:
      return power(a, b);
    case O::Maximum:
      return maximum(a, b);
    case O::Minimum:
      return minimum(a, b);
    case O::Atan2:
      return atan2(a, b);
    case O::Hypot:
      return hypot(a, b);
    case O::GeluGrad:
      return gelu_grad(a, b);
    case O::GeluTanhGrad:
      return gelu_grad(a, b, true);
    case O::Nextafter:
      return nextafter(a, b);
    case O::Equal:
      return equal(a, b);
    case O::NotEqual:
      return not_equal(a, b);
    case O::Less:
      return less(a, b);
    case O::LessEqual:
      return less_equal(a, b);
    case O::Greater:
      return greater(a, b);
    case O::GreaterEqual:
      return greater_equal(a, b);
    case O::LogicalAnd:
      return logical_and(a, b);
    case O::LogicalOr:
      return logical_or(a, b);
    case O::LogicalXor:
      return logical_xor(a, b);
    case O::BitwiseAnd:
      return bitwise_and(a, b);
    case O::BitwiseOr:
      return bitwise_or(a, b);
    case O::BitwiseXor:
      return bitwise_xor(a, b);
    case O::BitwiseLeftShift:
      return bitwise_left_shift(a, b);
    case O::BitwiseRightShift:
      return bitwise_right_shift(a, b);
    default:
      throw std::logic_error("not binary");
  }
}

// Groups of a reduction over `axes` (row-major order inside each group).
std::vector<std::vector<cplx>> groups_of(const std::vector<cplx>& x, const Shape& s,
                                         std::vector<int> axes, Shape* out_shape) {
  const int nd = static_cast<int>(s.size());
  axes = tt::norm_axes(axes, nd);
  std::vector<bool> red(nd, false);
  for (int a : axes) red[a] = true;
  Shape k(s);
  out_shape->clear();
  for (int i = 0; i < nd; ++i) {
    if (red[i])
      k[i] = 1;
    else
      out_shape->push_back(s[i]);
  }
  std::vector<std::vector<cplx>> g(static_cast<size_t>(tt::numel(k)));
  for (int64_t i = 0; i < tt::numel(s); ++i) {
    auto idx = tt::unravel(i, s);
    for (int d = 0; d < nd; ++d)
      if (red[d]) idx[d] = 0;
    g[tt::ravel(idx, k)].push_back(x[i]);
  }
  return g;
}

std::vector<double> reals(const std::vector<cplx>& v) {
  std::vector<double> r;
  for (auto z : v) r.push_back(z.real());
  return r;
}

std::vector<Check> Runner::run(OpCode op, DType dt) {
  using O = OpCode;
  std::vector<Check> checks;
  auto add_check = [&](std::string what, Tensor out, Shape shape, std::vector<cplx> want,
                       std::vector<double> scale = {}) -> Check& {
    out.eval();
    Check c;
    c.what = std::move(what);
    c.out = out;
    c.shape = std::move(shape);
    c.want = std::move(want);
    c.scale = std::move(scale);
    checks.push_back(std::move(c));
    return checks.back();
  };

  if (is_unary(op)) {
    const Dom d = unary_dom(op);
    In x = gen({3, 37}, dt, d);
    if ((op == O::IsNan || op == O::IsInf || op == O::IsFinite) && !tt::is_int(dt) && dt != bool_) {
      x.v[0] = tt::is_cplx(dt) ? cplx(std::nan(""), 1.0) : cplx(std::nan(""));
      x.v[1] = INFINITY;
      x.v[2] = -INFINITY;
      x.v[3] = tt::is_cplx(dt) ? cplx(1.0, -INFINITY) : cplx(0.0);
      x = make_in(x.v, x.shape, dt);
    }
    std::vector<cplx> want;
    for (auto z : x.v) want.push_back(unary_ref(op, z, dt));
    poison(tt::numel(x.shape));
    add_check("contiguous", call_unary(op, x.t), x.shape, want);
    // Strided view: every other column.
    Tensor view = slice(x.t, 1, 1, std::nullopt, 2);
    std::vector<cplx> wv;
    for (int i = 0; i < 3; ++i)
      for (int j = 1; j < 37; j += 2) wv.push_back(want[i * 37 + j]);
    poison(3 * 18);
    add_check("strided", call_unary(op, view), {3, 18}, wv);
    return checks;
  }

  if (is_binary(op)) {
    Dom da, db;
    switch (op) {
      case O::Divide:
        db.fmin = 0.5;
        db.cmin = 0.5;
        break;
      case O::FloorDivide:
      case O::Remainder:
        da = {-5, 5, 0, -20, 20, true};
        db = {-5, 5, 0.5, -10, 10, false};
        break;
      case O::Power:
        da = {0.5, 2, 0, -4, 4, true, 0.5, 1.5, 0.5};
        db = {-2, 2, 0, 0, 3, true, -0.5, 0.5, 0.0};
        break;
      case O::Subtract:
        da = {-3, 3, 0, 10, 20, true};
        db = {-3, 3, 0, -9, 9, true};
        break;
      case O::Equal:
      case O::NotEqual:
      case O::Less:
      case O::LessEqual:
      case O::Greater:
      case O::GreaterEqual:
        da = db = {-2, 2, 0, -3, 3, true};
        break;
      case O::BitwiseAnd:
      case O::BitwiseOr:
      case O::BitwiseXor:
        da = db = {-3, 3, 0, -100, 100, true};
        break;
      case O::BitwiseLeftShift:
      case O::BitwiseRightShift:
        // Counts beyond both ends of [0, bits): NumPy's results, no undefined behaviour.
        da = {-3, 3, 0, -100, 100, true};
        db = {-3, 3, 0, -3, 8.0 * static_cast<double>(tt::size_of(dt)) + 3, true};
        break;
      default:
        break;
    }
    const bool logical = op == O::LogicalAnd || op == O::LogicalOr || op == O::LogicalXor;
    const double zf = logical ? 0.4 : 0.0;
    // Same shape (contiguous fast path).
    In a = gen({3, 37}, dt, da, zf), b = gen({3, 37}, dt, db, zf);
    if (is_predicate(op) && !logical) {
      for (size_t i = 0; i < b.v.size(); i += 3) b.v[i] = a.v[i];
      b = make_in(b.v, b.shape, dt);
    }
    std::vector<cplx> want;
    for (size_t i = 0; i < a.v.size(); ++i) want.push_back(binary_ref(op, a.v[i], b.v[i], dt));
    std::vector<double> scale;
    if (op == O::Remainder)
      for (auto z : a.v) scale.push_back(std::abs(z));
    if (op == O::Nextafter)  // equal pairs, and zeros of both signs, give b
      for (size_t i = 0; i < b.v.size(); i += 5) {
        b.v[i] = a.v[i];
        if (i % 2 == 0) a.v[i] = 0.0, b.v[i] = -0.0;
      }
    if (op == O::Nextafter) {
      a = make_in(a.v, a.shape, dt);
      b = make_in(b.v, b.shape, dt);
      want.clear();
      for (size_t i = 0; i < a.v.size(); ++i) want.push_back(binary_ref(op, a.v[i], b.v[i], dt));
    }
    poison(tt::numel(a.shape));
    add_check("same-shape", call_binary(op, a.t, b.t), a.shape, want, scale).exact =
        op == O::Nextafter;
    // Broadcasting: (3,1,5) with (4,1) -> (3,4,5).
    In ba = gen({3, 1, 5}, dt, da, zf), bb = gen({4, 1}, dt, db, zf);
    const Shape so = {3, 4, 5};
    std::vector<cplx> wb;
    std::vector<double> sb;
    for (int64_t i = 0; i < tt::numel(so); ++i) {
      auto idx = tt::unravel(i, so);
      cplx x = ba.v[tt::bcast_index(idx, ba.shape)], y = bb.v[tt::bcast_index(idx, bb.shape)];
      wb.push_back(binary_ref(op, x, y, dt));
      if (op == O::Remainder) sb.push_back(std::abs(x));
    }
    poison(tt::numel(so));
    add_check("broadcast", call_binary(op, ba.t, bb.t), so, wb, sb).exact = op == O::Nextafter;
    return checks;
  }

  if (is_reduce(op)) {
    Dom d = {-2, 2, 0, -10, 10, true};
    if (op == O::Prod) d = {0.8, 1.25, 0, -2, 2, false, 0.7, 1.1, 0.5};
    auto reduce_groups = [&](const std::vector<std::vector<cplx>>& groups,
                             std::vector<double>* scale) {
      std::vector<cplx> w;
      for (const auto& g : groups) {
        cplx acc = op == O::Prod ? 1.0 : 0.0;
        double sc = op == O::Prod ? 1.0 : 0.0;
        double mx = -INFINITY, mn = INFINITY;
        bool any = false, all = true;
        for (auto z : g) {
          if (op == O::Prod) {
            acc *= z;
            sc *= std::abs(z);
          } else {
            acc += z;
            sc += std::abs(z);
          }
          mx = std::max(mx, z.real());
          mn = std::min(mn, z.real());
          any = any || truthy(z);
          all = all && truthy(z);
        }
        switch (op) {
          case O::Sum:
          case O::Prod:
            w.push_back(acc);
            break;
          case O::Max:
            w.push_back(mx);
            break;
          case O::Min:
            w.push_back(mn);
            break;
          case O::Any:
            w.push_back(double(any));
            break;
          default:
            w.push_back(double(all));
            break;
        }
        scale->push_back(sc);
      }
      return w;
    };
    auto call = [&](const Tensor& x, const Axes& axes) {
      switch (op) {
        case O::Sum:
          return sum(x, axes);
        case O::Prod:
          return prod(x, axes);
        case O::Max:
          return tmath::max(x, axes);
        case O::Min:
          return tmath::min(x, axes);
        case O::Any:
          return any(x, axes);
        default:
          return all(x, axes);
      }
    };
    In x = gen({4, 5, 6}, dt, d);
    if (op == O::Any || op == O::All) {
      // Zero probability grows with the axis-1 index: all-nonzero to all-zero groups.
      for (size_t i = 0; i < x.v.size(); ++i) {
        const int64_t j = tt::unravel(static_cast<int64_t>(i), x.shape)[1];
        if (std::uniform_real_distribution<double>(0, 1)(rng_) < j / 4.0) x.v[i] = 0.0;
      }
      x = make_in(x.v, x.shape, dt);
    }
    Shape os;
    auto g = groups_of(x.v, x.shape, {0, 2}, &os);
    std::vector<double> sc;
    auto w = reduce_groups(g, &sc);
    poison(tt::numel(os));
    add_check("axes (0,2)", call(x.t, {0, 2}), os, w, sc).dtype = reduce_dtype(op, dt);
    // Full reduction of a longer vector.
    Dom d2 = d;
    if (op == O::Prod) d2 = {0.99, 1.01, 0, -1, 1, false, 0.99, 1.0, 0.9};
    In y = gen({1000}, dt, d2);
    if (op == O::Prod && tt::is_cplx(dt)) {  // |z| close to 1 so the product stays finite
      std::uniform_real_distribution<double> u(-0.005, 0.005);
      for (auto& z : y.v) z = tt::round_to(cplx(1.0 + u(rng_), u(rng_)), dt);
      y = make_in(y.v, y.shape, dt);
    }
    if (op == O::Any || op == O::All) {  // one zero in the middle
      y.v[517] = 0.0;
      y = make_in(y.v, y.shape, dt);
    }
    Shape os2;
    auto g2 = groups_of(y.v, y.shape, {}, &os2);
    std::vector<double> sc2;
    auto w2 = reduce_groups(g2, &sc2);
    poison(1);
    add_check("all axes", call(y.t, {}), {}, w2, sc2).dtype = reduce_dtype(op, dt);
    return checks;
  }

  switch (op) {
    case O::ArgMax:
    case O::ArgMin: {
      const bool is_max = op == O::ArgMax;
      In x = gen({4, 7}, dt, Dom{-5, 5, 0, -20, 20, true});
      Shape os;
      auto g = groups_of(x.v, x.shape, {1}, &os);
      std::vector<cplx> w;
      for (auto& grp : g) {
        auto r = reals(grp);
        w.push_back(is_max ? tt::g_argmax(r) : tt::g_argmin(r));
      }
      poison(4);
      add_check("axis 1", is_max ? argmax(x.t, 1) : argmin(x.t, 1), os, w).exact = true;
      auto r = reals(x.v);
      poison(1);
      add_check("flat", is_max ? argmax(x.t) : argmin(x.t), {},
                {is_max ? tt::g_argmax(r) : tt::g_argmin(r)})
          .exact = true;
      return checks;
    }
    case O::CumSum:
    case O::CumProd: {
      const bool is_sum = op == O::CumSum;
      Dom d =
          is_sum ? Dom{-2, 2, 0, -10, 10, true} : Dom{0.8, 1.25, 0, -2, 2, false, 0.7, 1.1, 0.5};
      if (tt::is_uint(dt)) d.ilo = is_sum ? 0 : 1;
      In x = gen({3, 6}, dt, d);
      for (int axis : {1, 0}) {
        std::vector<cplx> w(x.v.size());
        std::vector<double> sc(x.v.size());
        for (int64_t i = 0; i < 3; ++i)
          for (int64_t j = 0; j < 6; ++j) {
            cplx acc = is_sum ? 0.0 : 1.0;
            double s = is_sum ? 0.0 : 1.0;
            if (axis == 1) {
              for (int64_t k = 0; k <= j; ++k) {
                acc = is_sum ? acc + x.v[i * 6 + k] : acc * x.v[i * 6 + k];
                s = is_sum ? s + std::abs(x.v[i * 6 + k]) : s * std::abs(x.v[i * 6 + k]);
              }
            } else {
              for (int64_t k = 0; k <= i; ++k) {
                acc = is_sum ? acc + x.v[k * 6 + j] : acc * x.v[k * 6 + j];
                s = is_sum ? s + std::abs(x.v[k * 6 + j]) : s * std::abs(x.v[k * 6 + j]);
              }
            }
            w[i * 6 + j] = acc;
            sc[i * 6 + j] = s;
          }
        poison(18);
        add_check("axis " + std::to_string(axis), is_sum ? cumsum(x.t, axis) : cumprod(x.t, axis),
                  {3, 6}, w, sc)
            .dtype = reduce_dtype(op, dt);
      }
      return checks;
    }
    case O::Where: {
      In c = gen({3, 4, 5}, bool_, Dom{});
      In a = gen({3, 4, 5}, dt, Dom{}), b = gen({4, 5}, dt, Dom{});
      std::vector<cplx> w;
      for (int64_t i = 0; i < 60; ++i) w.push_back(truthy(c.v[i]) ? a.v[i] : b.v[i % 20]);
      poison(60);
      add_check("broadcast", where(c.t, a.t, b.t), {3, 4, 5}, w).exact = true;
      return checks;
    }
    case O::Copy: {
      In x = gen({3, 5}, dt, Dom{-100, 100, 0, -100, 100, true});
      std::vector<cplx> wt;
      for (int j = 0; j < 5; ++j)
        for (int i = 0; i < 3; ++i) wt.push_back(x.v[i * 5 + j]);
      poison(15);
      add_check("copy of transposed view", copy(x.t.transpose()), {5, 3}, wt).exact = true;
      const DType wide = tt::is_cplx(dt) ? complex128 : float64;
      const DType narrow = tt::is_cplx(dt) ? complex64 : float32;
      poison(15);
      add_check("astype wide", x.t.astype(wide), {3, 5}, x.v).exact = true;
      std::vector<cplx> wn;
      for (auto z : x.v) wn.push_back(tt::round_to(z, narrow));
      poison(15);
      add_check("astype narrow", x.t.astype(narrow), {3, 5}, wn).exact = true;
      return checks;
    }
    case O::Fill: {
      cplx v = dt == bool_       ? cplx(1.0)
               : tt::is_int(dt)  ? cplx(7.0)
               : tt::is_cplx(dt) ? cplx(1.5, -2.0)
                                 : cplx(2.5);
      Scalar s = dt == bool_       ? Scalar(true)
                 : tt::is_int(dt)  ? Scalar(7)
                 : tt::is_cplx(dt) ? Scalar(std::complex<double>(1.5, -2.0))
                                   : Scalar(2.5);
      poison(21);
      add_check("full", full({3, 7}, s, dt, dev_), {3, 7}, std::vector<cplx>(21, v)).exact = true;
      poison(5);
      add_check("zeros", zeros({5}, dt, dev_), {5}, std::vector<cplx>(5, 0.0)).exact = true;
      poison(5);
      add_check("ones", ones({5}, dt, dev_), {5}, std::vector<cplx>(5, 1.0)).exact = true;
      return checks;
    }
    case O::Arange: {
      std::vector<cplx> w;
      for (int i = 0; i < 50; ++i) w.push_back(double(i));
      poison(50);
      add_check("0..50", arange(0, 50, 1, dt, dev_), {50}, w).exact = true;
      if (tt::is_float(dt)) {
        std::vector<cplx> wf;
        for (int i = 0; i < 18; ++i) wf.push_back(-1.5 + 0.25 * i);
        poison(18);
        add_check("float step", arange(-1.5, 3.0, 0.25, dt, dev_), {18}, wf).exact = true;
      }
      return checks;
    }
    case O::Softmax:
    case O::LogSoftmax: {
      const bool lg = op == O::LogSoftmax;
      In x = gen({4, 9}, dt, Dom{-4, 4, 0, -4, 4, true});
      auto xv = reals(x.v);
      for (int axis : {-1, 0}) {
        auto w = tt::softmax_ref(xv, {4, 9}, axis, lg);
        poison(36);
        Check& c = add_check("axis " + std::to_string(axis),
                             lg ? log_softmax(x.t, axis) : softmax(x.t, axis), {4, 9},
                             std::vector<cplx>(w.begin(), w.end()));
        c.scale_one = lg;
      }
      return checks;
    }
    case O::LayerNorm: {
      In x = gen({3, 16}, dt, Dom{-3, 3, 0, -5, 5, true});
      In w = gen({16}, dt, Dom{0.5, 2, 0, 1, 3});
      In b = gen({16}, dt, Dom{-1, 1, 0, -2, 2, true});
      auto xv = reals(x.v), wv = reals(w.v), bv = reals(b.v);
      auto r1 = tt::layer_norm_ref(xv, 16, &wv, &bv, 1e-5);
      poison(48);
      add_check("weight+bias", layer_norm(x.t, w.t, b.t), {3, 16},
                std::vector<cplx>(r1.begin(), r1.end()))
          .scale_one = true;
      auto r2 = tt::layer_norm_ref(xv, 16, nullptr, nullptr, 1e-5);
      poison(48);
      add_check("plain", layer_norm(x.t), {3, 16}, std::vector<cplx>(r2.begin(), r2.end()))
          .scale_one = true;
      return checks;
    }
    case O::Matmul: {
      Dom d{-1, 1, 0, -2, 2, true};
      if (tt::is_uint(dt)) d.ilo = 0, d.ihi = 3;
      In a = gen({2, 5, 12}, dt, d), b = gen({12, 7}, dt, d);
      auto r = tt::matmul_ref(a.v, a.shape, b.v, b.shape);
      poison(70);
      add_check("batched broadcast", matmul(a.t, b.t), r.shape, r.v, r.scale);
      In at = gen({12, 5}, dt, d);  // used transposed
      std::vector<cplx> atv;
      for (int i = 0; i < 5; ++i)
        for (int k = 0; k < 12; ++k) atv.push_back(at.v[k * 5 + i]);
      auto r2 = tt::matmul_ref(atv, {5, 12}, b.v, b.shape);
      poison(35);
      add_check("transposed lhs", matmul(at.t.transpose(), b.t), r2.shape, r2.v, r2.scale);
      In v = gen({12}, dt, d);
      auto r3 = tt::matmul_ref(v.v, v.shape, b.v, b.shape);
      poison(7);
      add_check("vector @ matrix", matmul(v.t, b.t), r3.shape, r3.v, r3.scale);
      return checks;
    }
    case O::Take: {
      In x = gen({4, 6}, dt, Dom{-50, 50, 0, -50, 50, true});
      const std::vector<int64_t> idx = {0, 5, -1, 2, -6};
      std::vector<cplx> w;
      for (int i = 0; i < 4; ++i)
        for (int64_t k : idx) w.push_back(x.v[i * 6 + (k < 0 ? k + 6 : k)]);
      Tensor it = tt::make(std::vector<double>(idx.begin(), idx.end()), {5}, int64);
      if (!(dev_ == kCPU)) it = it.to(dev_);
      poison(20);
      add_check("axis 1", take(x.t, it, 1), {4, 5}, w).exact = true;
      const std::vector<int64_t> fidx = {0, 23, -1, 7, 12, -24};
      std::vector<cplx> wf;
      for (int64_t k : fidx) wf.push_back(x.v[k < 0 ? k + 24 : k]);
      Tensor fi = tt::make(std::vector<double>(fidx.begin(), fidx.end()), {2, 3}, int64);
      if (!(dev_ == kCPU)) fi = fi.to(dev_);
      poison(6);
      add_check("flat", take(x.t, fi), {2, 3}, wf).exact = true;
      return checks;
    }
    case O::Put:
    case O::PutAdd: {
      // put: distinct positions (a repeated one keeps an unspecified value); put_add:
      // -1 and 23 name the same element and 3 appears twice.
      const bool add = op == O::PutAdd;
      In x = gen({4, 6}, dt, Dom{-20, 20, 0, -20, 20, true});
      In v = gen({5}, dt, Dom{-20, 20, 0, -20, 20, true});
      const std::vector<int64_t> pos = add ? std::vector<int64_t>{3, -1, 7, 3, 23}
                                           : std::vector<int64_t>{3, -1, 7, 12, 0};
      std::vector<cplx> w = x.v;
      for (size_t j = 0; j < pos.size(); ++j) {
        cplx& d = w[static_cast<size_t>(pos[j] < 0 ? pos[j] + 24 : pos[j])];
        if (!add) d = v.v[j];
        else if (dt == bool_) d = (d != 0.0 || v.v[j] != 0.0) ? 1.0 : 0.0;
        else d += v.v[j];
      }
      Tensor it = tt::make(std::vector<double>(pos.begin(), pos.end()), {5}, int64);
      if (!(dev_ == kCPU)) it = it.to(dev_);
      poison(24);
      Check& c = add_check("flat positions", add ? put_add(x.t, it, v.t) : put(x.t, it, v.t), {4, 6}, w);
      c.exact = !add || tt::is_int(dt) || dt == bool_;
      // One value broadcast to a 2 x 2 block of positions.
      std::vector<cplx> w2 = x.v;
      const cplx one = v.v[0];
      for (int64_t k : {1, 2, 13, 14}) {
        cplx& d = w2[static_cast<size_t>(k)];
        if (!add) d = one;
        else if (dt == bool_) d = (d != 0.0 || one != 0.0) ? 1.0 : 0.0;
        else d += one;
      }
      Tensor i2 = tt::make({1, 2, 13, 14}, {2, 2}, int64);
      if (!(dev_ == kCPU)) i2 = i2.to(dev_);
      Tensor one_t = reshape(slice(v.t, 0, 0, 1), {});
      poison(24);
      Check& c2 = add_check("broadcast value", add ? put_add(x.t, i2, one_t) : put(x.t, i2, one_t), {4, 6}, w2);
      c2.exact = !add || tt::is_int(dt) || dt == bool_;
      return checks;
    }
    case O::TakeAlongAxis: {
      In x = gen({4, 6}, dt, Dom{-50, 50, 0, -50, 50, true});
      std::vector<double> idx;
      std::uniform_int_distribution<int> u(0, 5);
      for (int i = 0; i < 12; ++i) idx.push_back(u(rng_));
      std::vector<cplx> w;
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 3; ++j) w.push_back(x.v[i * 6 + static_cast<int>(idx[i * 3 + j])]);
      Tensor it = tt::make(idx, {4, 3}, int64);
      if (!(dev_ == kCPU)) it = it.to(dev_);
      poison(12);
      add_check("axis 1", take_along_axis(x.t, it, 1), {4, 3}, w).exact = true;
      return checks;
    }
    case O::RandomBits:
    case O::RandomUniform:
    case O::RandomNormal: {
      const auto key = random::key(0x5eed0000u + static_cast<uint32_t>(op));
      const int64_t n = 4096;
      auto draw = [&]() -> Tensor {
        if (op == O::RandomBits) return random::bits(key, {n}, dev_);
        if (op == O::RandomUniform) return random::uniform(key, {n}, dt, -1.0, 2.0, dev_);
        return random::normal(key, {n}, dt, 1.0, 2.0, dev_);
      };
      poison(n);
      Tensor first = draw();
      first.eval();
      const std::vector<cplx> again = tt::read_c(draw());
      auto* ref_map = random_ref;
      const std::pair<int, int> map_key{static_cast<int>(op), static_cast<int>(dt)};
      Check& c = add_check("statistics", first, {n}, {});
      c.custom = [op, dt, again, ref_map, map_key](const std::vector<cplx>& v) -> std::string {
        if (v != again) return "two draws with the same key differ";
        long double s = 0, q = 0;
        std::set<double> distinct;
        for (auto z : v) {
          const double x = z.real();
          if (!std::isfinite(x)) return "non-finite sample " + tt::fmt(z);
          if (op == OpCode::RandomBits && (x < 0 || x >= 4294967296.0 || x != std::floor(x)))
            return "bits out of [0, 2^32): " + tt::fmt(z);
          if (op == OpCode::RandomUniform && (x < -1.0 || x >= 2.0))
            return "uniform sample outside [-1, 2): " + tt::fmt(z);
          s += x;
          q += x * x;
          distinct.insert(x);
        }
        const double mean = static_cast<double>(s / v.size());
        const double sd = std::sqrt(static_cast<double>(q / v.size()) - mean * mean);
        std::ostringstream os;
        if (op == OpCode::RandomBits) {
          if (std::fabs(mean / 4294967296.0 - 0.5) > 0.02) os << "mean " << mean;
          if (distinct.size() < v.size() - 5) os << " only " << distinct.size() << " distinct";
        } else if (op == OpCode::RandomUniform) {
          if (std::fabs(mean - 0.5) > 0.06) os << "mean " << mean << " (want 0.5)";
          if (std::fabs(sd - 3.0 / std::sqrt(12.0)) > 0.05) os << " sd " << sd;
        } else {
          if (std::fabs(mean - 1.0) > 0.15) os << "mean " << mean << " (want 1)";
          if (std::fabs(sd - 2.0) > 0.12) os << " sd " << sd << " (want 2)";
        }
        if (tt::is_float(dt) && !tt::is_low(dt) && distinct.size() < v.size() * 9 / 10)
          os << " only " << distinct.size() << " distinct values";
        if (ref_map) {  // same key, same numbers on every backend
          auto it = ref_map->find(map_key);
          if (it == ref_map->end()) {
            (*ref_map)[map_key] = v;
          } else {
            const auto& r = it->second;
            const double tol = op == OpCode::RandomBits ? 0.0 : tt::tol_for(dt).rtol;
            for (size_t i = 0; i < v.size(); ++i)
              if (std::abs(v[i] - r[i]) > tol * (1 + std::abs(r[i]))) {
                os << " differs from the first backend at " << i << ": " << tt::fmt(v[i]) << " vs "
                   << tt::fmt(r[i]);
                break;
              }
          }
        }
        return os.str();
      };
      return checks;
    }
    default:
      break;
  }
  throw std::logic_error("no harness case for op " + std::string(op_name(op)));
}

// Tolerance for a result: exact for bool/integer results, else the looser of the
// result dtype's and (for inexact inputs) the input dtype's.
tt::Tol result_tol(DType in, DType out) {
  if (out == bool_ || tt::is_int(out)) return {0.0, 0.0};
  tt::Tol t = tt::tol_for(out);
  if (tt::is_float(in) || tt::is_cplx(in)) t = tt::loosest(t, tt::tol_for(in));
  return t;
}

// Wraps expected integers to the result's integer dtype (uint8 negation, subtraction).
void wrap_expected(std::vector<cplx>& want, DType out) {
  if (!tt::is_int(out)) return;
  for (auto& z : want)  // only integral expectations (a float-valued result stays a mismatch)
    if (z.real() != std::floor(z.real())) return;
  for (auto& z : want)
    if (std::isfinite(z.real()))
      z = tt::round_to(z.real(), out);  // uint64: negative values wrap to 2^64 - |v|
}

std::string verify(const Check& c, DType in_dt) {
  std::ostringstream os;
  if (c.dtype && c.out.dtype() != *c.dtype)
    os << c.what << ": dtype " << tt::name_of(c.out.dtype()) << " != expected "
       << tt::name_of(*c.dtype) << "; ";
  if (c.out.shape() != c.shape)
    os << c.what << ": shape " << tt::shape_str(c.out.shape()) << " != expected "
       << tt::shape_str(c.shape) << "; ";
  std::vector<cplx> got;
  try {
    got = tt::read_c(c.out);
  } catch (const std::exception& e) {
    return c.what + ": reading the result threw: " + e.what();
  }
  if (c.custom) {
    std::string r = c.custom(got);
    if (!r.empty()) os << c.what << ": " << r;
    return os.str();
  }
  std::vector<cplx> want = c.want;
  wrap_expected(want, c.out.dtype());
  if (got.size() != want.size()) {
    os << c.what << ": " << got.size() << " elements, expected " << want.size();
    return os.str();
  }
  const tt::Tol tol = c.exact ? tt::Tol{} : result_tol(in_dt, c.out.dtype());
  size_t bad = 0;
  std::ostringstream detail;
  for (size_t i = 0; i < got.size(); ++i) {
    double s = c.scale.empty() ? 0.0 : c.scale[i];
    if (c.scale_one) s = std::max(s, 1.0);
    if (tt::is_cplx(in_dt) || tt::is_cplx(c.out.dtype())) s = std::max(s, std::abs(want[i]));
    const bool ok = tt::close1(got[i].real(), want[i].real(), tol.rtol, tol.atol, s) &&
                    tt::close1(got[i].imag(), want[i].imag(), tol.rtol, tol.atol, s);
    if (!ok) {
      if (bad < 4)
        detail << " [" << i << "] got " << tt::fmt(got[i]) << " want " << tt::fmt(want[i]);
      ++bad;
    }
  }
  if (bad)
    os << c.what << ": " << bad << "/" << got.size() << " wrong (result "
       << tt::name_of(c.out.dtype()) << ", rtol " << tol.rtol << "):" << detail.str();
  return os.str();
}

struct Summary {
  int native = 0, converted = 0, rejected = 0, unspecified = 0, failed = 0;
};

}  // namespace

TEST(BackendOps, EveryOpEveryDtypeEveryBackend) {
  (void)load_backend("torch");  // loads on demand; reported as skipped where not built
  const auto saved = backend_priority();
  std::map<std::pair<int, int>, std::vector<cplx>> random_ref;
  int backends_run = 0;
  // TMATH_TEST_BACKENDS=cuda,torch:cuda checks only the backends named (for a quick
  // run on a GPU machine); unset: every backend.
  const char* only = std::getenv("TMATH_TEST_BACKENDS");
  const std::string only_list = only ? "," + std::string(only) + "," : "";
  for (const auto& be : backends()) {
    if (only && only_list.find("," + std::string(be->name()) + ",") == std::string::npos) {
      std::printf("[backend_ops] %s: not in TMATH_TEST_BACKENDS, skipped\n",
                  std::string(be->name()).c_str());
      continue;
    }
    if (!be->available()) {
      std::printf("[backend_ops] %s: not available (%s), skipped\n",
                  std::string(be->name()).c_str(), be->info().reason.c_str());
      continue;
    }
    ++backends_run;
    const std::string bname(be->name());
    set_backend_priority({bname});
    const Device dev(be->device_type(), 0);
    Runner runner(dev, 12345);
    runner.random_ref = &random_ref;
    Summary sum;
    std::vector<std::string> failures;
    const bool verbose = std::getenv("TMATH_TEST_VERBOSE") != nullptr;
    // TMATH_TEST_OPS=Asinh,Acosh checks only the ops named (op_name spelling).
    const char* only_ops = std::getenv("TMATH_TEST_OPS");
    const std::string ops_list = only_ops ? "," + std::string(only_ops) + "," : "";
    for (int oi = 0; oi < kNumOpCodes; ++oi) {
      const auto op = static_cast<OpCode>(oi);
      if (only_ops && ops_list.find("," + std::string(op_name(op)) + ",") == std::string::npos)
        continue;
      for (DType dt : tt::all_dtypes()) {
        const Cat cat = category(op, dt);
        if (cat == Cat::NotExpressible) continue;
        const bool sup = be->supports(op, dt);
        const std::string tag = bname + " " + std::string(op_name(op)) + " " + tt::name_of(dt) +
                                " [" + cat_name(cat) + (sup ? ", backend kernel" : ", no kernel") +
                                "]";
        if (sup && select_backend(op, dt, dev) != be.get())
          failures.push_back(tag + ": select_backend did not pick the backend");
        std::string err;
        try {
          auto checks = runner.run(op, dt);
          if (cat == Cat::Unspecified) {
            for (auto& c : checks) (void)tt::read_c(c.out);  // must not crash
            ++sum.unspecified;
            continue;
          }
          if (cat == Cat::Invalid) {
            err = "accepted an invalid dtype (expected DTypeError/UnsupportedError)";
          } else {
            for (auto& c : checks) {
              std::string r = verify(c, dt);
              if (!r.empty()) err += (err.empty() ? "" : " | ") + r;
            }
          }
          if (err.empty()) (sup ? sum.native : sum.converted)++;
        } catch (const DTypeError& e) {
          if (cat == Cat::Required)
            err = std::string("valid input rejected: DTypeError: ") + e.what();
          else
            ++sum.rejected;
          if (verbose && cat != Cat::Required)
            std::printf("  %s: rejected (%s)\n", tag.c_str(), e.what());
        } catch (const UnsupportedError& e) {
          if (cat == Cat::Required)
            err = std::string("valid input rejected: UnsupportedError: ") + e.what();
          else
            ++sum.rejected;
          if (verbose && cat != Cat::Required)
            std::printf("  %s: rejected (%s)\n", tag.c_str(), e.what());
        } catch (const Error& e) {
          if (cat == Cat::Unspecified)
            ++sum.unspecified;
          else
            err = std::string("unexpected exception: ") + e.what();
        } catch (const std::exception& e) {
          err = std::string("non-tmath exception: ") + e.what();
        }
        if (!err.empty()) {
          ++sum.failed;
          failures.push_back(tag + ": " + err);
        }
        if (verbose) std::printf("  %s: %s\n", tag.c_str(), err.empty() ? "ok" : "FAILED");
      }
    }
    for (const auto& f : failures) ADD_FAILURE() << f;
    std::printf(
        "[backend_ops] %s: %d (op, dtype) combinations checked (%d with a backend kernel, %d via "
        "conversion/upcast), %d rejected as expected, %d unspecified, %d FAILED\n",
        bname.c_str(), sum.native + sum.converted, sum.native, sum.converted, sum.rejected,
        sum.unspecified, sum.failed);
    std::fflush(stdout);
    ::testing::Test::RecordProperty(bname + "_checked", sum.native + sum.converted);
    ::testing::Test::RecordProperty(bname + "_failed", sum.failed);
  }
  set_backend_priority(saved);
  EXPECT_GE(backends_run, 1) << "no available backend";
}

// A few unsupported combinations must fail cleanly and leave the engine usable.
TEST(BackendOps, UnsupportedCombinationsThrowCleanly) {
  Tensor c = tt::make_c({{1, 2}, {3, -4}}, {2}, complex64);
  Tensor i = tt::make({1, 2}, {2}, int32);
  auto clean = [](auto&& fn) {
    try {
      Tensor t = fn();
      t.eval();
      return std::string("no exception");
    } catch (const DTypeError&) {
      return std::string();
    } catch (const UnsupportedError&) {
      return std::string();
    } catch (const std::exception& e) {
      return std::string("wrong exception: ") + e.what();
    }
  };
  EXPECT_EQ(clean([&] { return tmath::floor(c); }), "");
  EXPECT_EQ(clean([&] { return relu(c); }), "");
  EXPECT_EQ(clean([&] { return less(c, c); }), "");
  EXPECT_EQ(clean([&] { return softmax(c); }), "");
  EXPECT_EQ(clean([&] { return argmax(c); }), "");
  EXPECT_EQ(clean([&] { return random::uniform(random::key(1), {2}, int32); }), "");
  EXPECT_EQ(clean([&] { return random::normal(random::key(1), {2}, bool_); }), "");
  EXPECT_TRUE(tt::all_equal(i + 1, {2, 3}));
  EXPECT_TRUE(tt::all_close_c(c * 2.0, {{2, 4}, {6, -8}}, tt::tol_for(complex64)));
}
