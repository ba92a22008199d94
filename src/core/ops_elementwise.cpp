// Elementwise op front-end: dtype rules, broadcasting, node construction.
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "core/dispatch.h"
#include "core/ops_internal.h"
#include "tmath/error.h"

namespace tmath {
namespace detail {

std::string shape_str(const Shape& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ",";
    r += std::to_string(s[i]);
  }
  if (s.size() == 1) r += ",";
  return r + ")";
}

int normalize_axis(int axis, int ndim, const char* op) {
  int a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim)
    throw ShapeError(std::string("[") + op + "] axis " + std::to_string(axis) +
                     " is out of range for a " + std::to_string(ndim) + "-d tensor");
  return a;
}

std::vector<int> normalize_axes(const Axes& axes, int ndim, const char* op) {
  std::vector<int> r;
  if (axes.empty()) {
    r.resize(ndim);
    for (int i = 0; i < ndim; ++i) r[i] = i;
    return r;
  }
  for (int a : axes) r.push_back(normalize_axis(a, ndim, op));
  std::sort(r.begin(), r.end());
  if (std::adjacent_find(r.begin(), r.end()) != r.end())
    throw ShapeError(std::string("[") + op + "] repeated axis in axes");
  return r;
}

namespace {
int kind_rank(DType dt) {
  return static_cast<int>(kind(dt) == DTypeKind::UnsignedInt ? DTypeKind::SignedInt : kind(dt));
}

// Combines a strong dtype with a weakly typed scalar's dtype.
DType weak_combine(DType strong, DType weak) {
  if (kind_rank(weak) <= kind_rank(strong)) return strong;
  switch (kind(weak)) {
    case DTypeKind::SignedInt:
      return DType::Int64;  // strong is bool
    case DTypeKind::Float:
      return DType::Float32;  // strong is bool/int
    case DTypeKind::Complex:
      return is_floating(strong) ? complex_type(strong) : DType::Complex64;
    default:
      return strong;
  }
}
}  // namespace

DType result_type(const Tensor& a, const Tensor& b) {
  bool wa = a.weak_type(), wb = b.weak_type();
  if (wa && !wb) return weak_combine(b.dtype(), a.dtype());
  if (wb && !wa) return weak_combine(a.dtype(), b.dtype());
  return promote_types(a.dtype(), b.dtype());
}

Device common_device(const std::vector<Tensor>& ts, const char* op) {
  std::optional<Device> dev;
  for (const auto& t : ts) {
    if (!t.defined()) throw ValueError(std::string("[") + op + "] undefined tensor argument");
    if (t.weak_type()) continue;
    if (!dev)
      dev = t.device();
    else if (!(*dev == t.device()))
      throw DeviceError(std::string("[") + op + "] tensors are on different devices: " +
                        dev->str() + " and " + t.device().str());
  }
  return dev ? *dev : ts.empty() ? default_device() : ts[0].device();
}

namespace {
// Device copies of weakly typed scalar constants, so `x * 2.0` on a device
// tensor does not copy the constant host->device on every op.
struct ScalarKey {
  DType dt;
  Device device;
  uint64_t bits[2];
  bool operator<(const ScalarKey& o) const {
    return std::tie(dt, device.type, device.index, bits[0], bits[1]) <
           std::tie(o.dt, o.device.type, o.device.index, o.bits[0], o.bits[1]);
  }
};
struct ScalarCache {
  std::mutex mu;
  std::map<ScalarKey, Tensor> map;
};
ScalarCache& scalar_cache() {
  static auto* c = new ScalarCache();  // never destroyed: tensors may outlive static destruction
  return *c;
}
Tensor device_scalar(const Tensor& host, Device device) {
  ScalarCache& c = scalar_cache();
  ScalarKey k{host.dtype(), device, {0, 0}};
  std::memcpy(k.bits, host.impl()->data(), host.itemsize());
  std::lock_guard<std::mutex> lk(c.mu);
  auto it = c.map.find(k);
  if (it != c.map.end()) return it->second;
  if (c.map.size() >= 1024) c.map.clear();
  Tensor d = to_device(host, device).eval();
  d.impl()->weak = false;
  c.map.emplace(k, d);
  return d;
}
}  // namespace

void clear_device_scalars(Device device) {
  ScalarCache& c = scalar_cache();
  std::lock_guard<std::mutex> lk(c.mu);
  std::erase_if(c.map, [&](const auto& kv) { return kv.first.device == device; });
}

Tensor cast_to(const Tensor& t, DType dt, Device device) {
  if (t.dtype() == dt && t.device() == device) return t;
  const TensorImpl& p = *t.impl();
  if (p.weak && p.evaluated() && p.device.type == DeviceType::CPU) {
    // Convert the constant on the host now instead of recording a cast node.
    Scalar v;
    switch (kind(p.dtype)) {
      case DTypeKind::Bool:
        v = Scalar(t.item<bool>());
        break;
      case DTypeKind::SignedInt:
      case DTypeKind::UnsignedInt:
        v = Scalar(t.item<int64_t>());
        break;
      case DTypeKind::Float:
        v = Scalar(t.item<double>());
        break;
      case DTypeKind::Complex:
        v = Scalar(t.item<complex128_t>());
        break;
    }
    Tensor c = make_evaluated({}, dt, kCPU);
    store_scalar_to(c.impl()->data(), dt, v);
    return device == kCPU ? c : device_scalar(c, device);
  }
  Tensor r = t.dtype() == dt ? t : astype(t, dt);
  return r.device() == device ? r : to_device(r, device);
}

namespace {
const std::shared_ptr<Primitive>& unary_prim(OpCode op) {
  static const auto table = [] {
    std::array<std::shared_ptr<Primitive>, kNumOpCodes> t;
    for (int i = 0; i < kNumOpCodes; ++i)
      if (is_unary(static_cast<OpCode>(i)))
        t[i] = std::make_shared<UnaryPrim>(static_cast<OpCode>(i));
    return t;
  }();
  return table[static_cast<size_t>(op)];
}

const std::shared_ptr<Primitive>& binary_prim(OpCode op) {
  static const auto table = [] {
    std::array<std::shared_ptr<Primitive>, kNumOpCodes> t;
    for (int i = 0; i < kNumOpCodes; ++i)
      if (is_binary(static_cast<OpCode>(i)))
        t[i] = std::make_shared<BinaryPrim>(static_cast<OpCode>(i));
    return t;
  }();
  return table[static_cast<size_t>(op)];
}

std::string lower_name(OpCode op) {
  return snake_name(op);
}

enum class UnaryRule {
  Same,
  FloatFn,
  RealFloatFn,
  Predicate,
  ToBool,
  Rounding,
  Abs,
  RealPart,
  Bitwise
};

UnaryRule unary_rule(OpCode op) {
  switch (op) {
    case OpCode::Neg:
    case OpCode::Sign:
    case OpCode::Square:
    case OpCode::Relu:
    case OpCode::Conj:
      return UnaryRule::Same;
    case OpCode::Abs:
      return UnaryRule::Abs;
    case OpCode::Floor:
    case OpCode::Ceil:
    case OpCode::Round:
      return UnaryRule::Rounding;
    case OpCode::IsNan:
    case OpCode::IsInf:
    case OpCode::IsFinite:
      return UnaryRule::Predicate;
    case OpCode::LogicalNot:
      return UnaryRule::ToBool;
    case OpCode::BitwiseInvert:
      return UnaryRule::Bitwise;
    case OpCode::Real:
    case OpCode::Imag:
      return UnaryRule::RealPart;
    case OpCode::Sigmoid:
    case OpCode::Gelu:
    case OpCode::GeluTanh:
    case OpCode::Silu:
    case OpCode::Erf:
    case OpCode::Erfinv:
    case OpCode::Rsqrt:
      return UnaryRule::RealFloatFn;
    default:
      // exp, expm1, log, log1p, log2, log10, sqrt, sin, cos, tan, asin, acos, atan, sinh,
      // cosh, tanh, asinh, acosh, atanh, reciprocal: complex too
      return UnaryRule::FloatFn;
  }
}

Tensor unary_node(OpCode op, const Tensor& x, DType out_dtype) {
  return make_node(x.shape(), out_dtype, x.device(), unary_prim(op), {x});
}

bool bool_or_int(DType dt) { return dt == DType::Bool || is_integral(dt); }

// "[bitwise_and] is only defined for bool and integer dtypes, got int32 and float32".
[[noreturn]] void throw_bitwise_dtype(const std::string& op, const char* what, DType a,
                                      const DType* b) {
  std::string got(dtype_name(a));
  if (b) got += " and " + std::string(dtype_name(*b));
  throw DTypeError("[" + op + "] is only defined for " + what + " dtypes, got " + got);
}
}  // namespace

Tensor apply_unary(OpCode op, const Tensor& a) {
  if (!a.defined()) throw ValueError("[" + lower_name(op) + "] undefined tensor argument");
  DType dt = a.dtype();
  switch (unary_rule(op)) {
    case UnaryRule::Same:
      if (dt == DType::Bool && op != OpCode::Relu && op != OpCode::Conj)
        throw DTypeError("[" + lower_name(op) + "] not defined for bool tensors");
      if (is_complex(dt) && op == OpCode::Relu)
        throw DTypeError("[relu] not defined for complex tensors");
      if (op == OpCode::Conj && !is_complex(dt)) return a;
      return unary_node(op, a, dt);
    case UnaryRule::Abs:
      if (dt == DType::Bool) return a;
      return unary_node(op, a, real_type(dt));
    case UnaryRule::Rounding:
      if (is_complex(dt) && op == OpCode::Round)  // the real and imaginary parts separately
        return astype(apply_unary(op, real(a)), dt) +
               astype(apply_unary(op, imag(a)), dt) * Tensor(Scalar(std::complex<double>(0.0, 1.0)));
      if (is_complex(dt))
        throw DTypeError("[" + lower_name(op) + "] not defined for complex tensors");
      if (!is_floating(dt)) return a;
      return unary_node(op, a, dt);
    case UnaryRule::Predicate:
      if (!is_inexact(dt)) return full(a.shape(), op == OpCode::IsFinite, bool_, a.device());
      return unary_node(op, a, bool_);
    case UnaryRule::ToBool:
      return unary_node(op, cast_to(a, bool_, a.device()), bool_);
    case UnaryRule::RealPart:
      if (!is_complex(dt)) return op == OpCode::Real ? a : zeros_like(a);
      return unary_node(op, a, real_type(dt));
    case UnaryRule::Bitwise:
      if (!bool_or_int(dt)) throw_bitwise_dtype(lower_name(op), "bool and integer", dt, nullptr);
      return unary_node(op, a, dt);
    case UnaryRule::RealFloatFn:
      if (is_complex(dt))
        throw DTypeError("[" + lower_name(op) + "] not defined for complex tensors");
      [[fallthrough]];
    case UnaryRule::FloatFn: {
      DType ft = to_inexact(dt);
      return unary_node(op, cast_to(a, ft, a.device()), ft);
    }
  }
  return a;
}

namespace {
enum class BinaryRule { Arith, TrueDiv, RealArith, Compare, Equality, Logical, Bitwise, Shift };

BinaryRule binary_rule(OpCode op) {
  switch (op) {
    case OpCode::Divide:
      return BinaryRule::TrueDiv;
    case OpCode::Atan2:
    case OpCode::Hypot:
    case OpCode::Nextafter:
    case OpCode::GeluGrad:
    case OpCode::GeluTanhGrad:
      return BinaryRule::TrueDiv;
    case OpCode::FloorDivide:
    case OpCode::Remainder:
    case OpCode::Maximum:
    case OpCode::Minimum:
      return BinaryRule::RealArith;
    case OpCode::Equal:
    case OpCode::NotEqual:
      return BinaryRule::Equality;
    case OpCode::Less:
    case OpCode::LessEqual:
    case OpCode::Greater:
    case OpCode::GreaterEqual:
      return BinaryRule::Compare;
    case OpCode::LogicalAnd:
    case OpCode::LogicalOr:
    case OpCode::LogicalXor:
      return BinaryRule::Logical;
    case OpCode::BitwiseAnd:
    case OpCode::BitwiseOr:
    case OpCode::BitwiseXor:
      return BinaryRule::Bitwise;
    case OpCode::BitwiseLeftShift:
    case OpCode::BitwiseRightShift:
      return BinaryRule::Shift;
    default:
      return BinaryRule::Arith;  // add, subtract, multiply, power
  }
}
}  // namespace

Tensor apply_binary(OpCode op, const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined())
    throw ValueError("[" + lower_name(op) + "] undefined tensor argument");
  Device dev = a.device();
  if (!(dev == b.device())) {
    if (a.weak_type())
      dev = b.device();
    else if (!b.weak_type())
      throw DeviceError("[" + lower_name(op) + "] tensors are on different devices: " +
                        a.device().str() + " and " + b.device().str());
  }
  const auto opn = [op] { return lower_name(op); };
  Shape shape;
  try {
    shape = broadcast_shapes(a.shape(), b.shape());
  } catch (const ShapeError&) {
    throw ShapeError("[" + opn() + "] operands could not be broadcast together with shapes " +
                     shape_str(a.shape()) + " and " + shape_str(b.shape()));
  }
  DType common = result_type(a, b);
  DType in_dt = common, out_dt = common;
  switch (binary_rule(op)) {
    case BinaryRule::Arith:
      if (common == DType::Bool && op != OpCode::Add && op != OpCode::Multiply)
        throw DTypeError("[" + opn() + "] not defined for bool tensors");
      break;
    case BinaryRule::TrueDiv:
      if (op != OpCode::Divide && is_complex(common))
        throw DTypeError("[" + opn() + "] not defined for complex tensors");
      in_dt = out_dt = to_inexact(common);
      break;
    case BinaryRule::RealArith:
      if (is_complex(common)) throw DTypeError("[" + opn() + "] not defined for complex tensors");
      if (common == DType::Bool && (op == OpCode::FloorDivide || op == OpCode::Remainder))
        throw DTypeError("[" + opn() + "] not defined for bool tensors");
      break;
    case BinaryRule::Compare:
      if (is_complex(common))
        throw DTypeError("[" + opn() + "] ordering is not defined for complex tensors");
      out_dt = DType::Bool;
      break;
    case BinaryRule::Equality:
      out_dt = DType::Bool;
      break;
    case BinaryRule::Logical:
      in_dt = out_dt = DType::Bool;
      break;
    case BinaryRule::Bitwise:
    case BinaryRule::Shift: {
      const bool shift = binary_rule(op) == BinaryRule::Shift;
      const auto ok = [&](DType dt) { return shift ? is_integral(dt) : bool_or_int(dt); };
      // The operands' own dtypes decide (a weak Python float makes the result float).
      const char* what = shift ? "integer" : "bool and integer";
      const DType da = a.dtype(), db = b.dtype();
      if (!ok(da) || !ok(db)) throw_bitwise_dtype(opn(), what, da, da == db ? nullptr : &db);
      if (!ok(common))  // uint64 with a signed integer: NumPy promotes to float64
        throw DTypeError("[" + opn() + "] " + std::string(dtype_name(da)) + " and " +
                         std::string(dtype_name(db)) + " promote to " +
                         std::string(dtype_name(common)) + ", which is not an integer dtype");
      break;
    }
  }
  Tensor x = cast_to(a, in_dt, dev), y = cast_to(b, in_dt, dev);
  Tensor r =
      make_node(std::move(shape), out_dt, dev, binary_prim(op), {std::move(x), std::move(y)});
  if (a.weak_type() && b.weak_type()) r.impl()->weak = true;
  return r;
}

}  // namespace detail

using detail::apply_binary;
using detail::apply_unary;

#define TMATH_UNARY_FN(fn, OP)         \
  Tensor fn(const Tensor& a) {         \
    return apply_unary(OpCode::OP, a); \
  }
TMATH_UNARY_FN(neg, Neg)
TMATH_UNARY_FN(abs, Abs)
TMATH_UNARY_FN(sign, Sign)
TMATH_UNARY_FN(exp, Exp)
TMATH_UNARY_FN(expm1, Expm1)
TMATH_UNARY_FN(log, Log)
TMATH_UNARY_FN(log1p, Log1p)
TMATH_UNARY_FN(log2, Log2)
TMATH_UNARY_FN(log10, Log10)
TMATH_UNARY_FN(sqrt, Sqrt)
TMATH_UNARY_FN(rsqrt, Rsqrt)
TMATH_UNARY_FN(square, Square)
TMATH_UNARY_FN(reciprocal, Reciprocal)
TMATH_UNARY_FN(sin, Sin)
TMATH_UNARY_FN(cos, Cos)
TMATH_UNARY_FN(tan, Tan)
TMATH_UNARY_FN(asin, Asin)
TMATH_UNARY_FN(acos, Acos)
TMATH_UNARY_FN(atan, Atan)
TMATH_UNARY_FN(sinh, Sinh)
TMATH_UNARY_FN(cosh, Cosh)
TMATH_UNARY_FN(tanh, Tanh)
TMATH_UNARY_FN(asinh, Asinh)
TMATH_UNARY_FN(acosh, Acosh)
TMATH_UNARY_FN(atanh, Atanh)
TMATH_UNARY_FN(sigmoid, Sigmoid)
TMATH_UNARY_FN(relu, Relu)
TMATH_UNARY_FN(silu, Silu)
TMATH_UNARY_FN(erf, Erf)
TMATH_UNARY_FN(erfinv, Erfinv)
TMATH_UNARY_FN(floor, Floor)
TMATH_UNARY_FN(ceil, Ceil)
TMATH_UNARY_FN(round, Round)
TMATH_UNARY_FN(isnan, IsNan)
TMATH_UNARY_FN(isinf, IsInf)
TMATH_UNARY_FN(isfinite, IsFinite)
TMATH_UNARY_FN(logical_not, LogicalNot)
TMATH_UNARY_FN(real, Real)
TMATH_UNARY_FN(imag, Imag)
TMATH_UNARY_FN(conj, Conj)
TMATH_UNARY_FN(bitwise_invert, BitwiseInvert)
#undef TMATH_UNARY_FN

Tensor gelu(const Tensor& a, bool approximate) {
  return apply_unary(approximate ? OpCode::GeluTanh : OpCode::Gelu, a);
}

Tensor gelu_grad(const Tensor& g, const Tensor& x, bool approximate) {
  return apply_binary(approximate ? OpCode::GeluTanhGrad : OpCode::GeluGrad, g, x);
}

#define TMATH_BINARY_FN(fn, OP)                 \
  Tensor fn(const Tensor& a, const Tensor& b) { \
    return apply_binary(OpCode::OP, a, b);      \
  }
TMATH_BINARY_FN(add, Add)
TMATH_BINARY_FN(subtract, Subtract)
TMATH_BINARY_FN(multiply, Multiply)
TMATH_BINARY_FN(divide, Divide)
TMATH_BINARY_FN(floor_divide, FloorDivide)
TMATH_BINARY_FN(remainder, Remainder)
TMATH_BINARY_FN(power, Power)
TMATH_BINARY_FN(maximum, Maximum)
TMATH_BINARY_FN(minimum, Minimum)
TMATH_BINARY_FN(atan2, Atan2)
TMATH_BINARY_FN(hypot, Hypot)
TMATH_BINARY_FN(nextafter, Nextafter)
TMATH_BINARY_FN(equal, Equal)
TMATH_BINARY_FN(not_equal, NotEqual)
TMATH_BINARY_FN(less, Less)
TMATH_BINARY_FN(less_equal, LessEqual)
TMATH_BINARY_FN(greater, Greater)
TMATH_BINARY_FN(greater_equal, GreaterEqual)
TMATH_BINARY_FN(logical_and, LogicalAnd)
TMATH_BINARY_FN(logical_or, LogicalOr)
TMATH_BINARY_FN(logical_xor, LogicalXor)
TMATH_BINARY_FN(bitwise_and, BitwiseAnd)
TMATH_BINARY_FN(bitwise_or, BitwiseOr)
TMATH_BINARY_FN(bitwise_xor, BitwiseXor)
TMATH_BINARY_FN(bitwise_left_shift, BitwiseLeftShift)
TMATH_BINARY_FN(bitwise_right_shift, BitwiseRightShift)
#undef TMATH_BINARY_FN

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Device dev = detail::common_device({cond, a, b}, "where");
  Shape shape;
  try {
    shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape()), b.shape());
  } catch (const ShapeError&) {
    throw ShapeError("[where] shapes " + detail::shape_str(cond.shape()) + ", " +
                     detail::shape_str(a.shape()) + " and " + detail::shape_str(b.shape()) +
                     " could not be broadcast together");
  }
  DType dt = detail::result_type(a, b);
  static const auto prim = std::make_shared<WherePrim>();
  return detail::make_node(std::move(shape), dt, dev, prim,
                           {detail::cast_to(cond, bool_, dev), detail::cast_to(a, dt, dev),
                            detail::cast_to(b, dt, dev)});
}

Tensor clip(const Tensor& a, std::optional<Tensor> lo, std::optional<Tensor> hi) {
  if (is_complex(a.dtype())) throw DTypeError("[clip] not defined for complex tensors");
  Tensor r = a;
  if (lo) r = maximum(r, *lo);
  if (hi) r = minimum(r, *hi);
  return r;
}

}  // namespace tmath
