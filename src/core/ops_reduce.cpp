// Reductions, scans, softmax and layer_norm front-end.
#include <cmath>
#include <limits>

#include "core/ops_internal.h"
#include "tmath/error.h"

namespace tmath {

using detail::make_node;
using detail::normalize_axes;
using detail::normalize_axis;

namespace {
Shape kept_shape(const Shape& s, const std::vector<int>& axes) {
  Shape r = s;
  for (int a : axes) r[a] = 1;
  return r;
}
Shape dropped_shape(const Shape& s, const std::vector<int>& axes) {
  Shape r;
  for (int i = 0; i < static_cast<int>(s.size()); ++i)
    if (std::find(axes.begin(), axes.end(), i) == axes.end()) r.push_back(s[i]);
  return r;
}

const char* reduce_name(OpCode op) {
  switch (op) {
    case OpCode::Sum: return "sum";
    case OpCode::Prod: return "prod";
    case OpCode::Max: return "max";
    case OpCode::Min: return "min";
    case OpCode::Any: return "any";
    default: return "all";
  }
}

Tensor reduce_op(OpCode op, const Tensor& a, const Axes& axes_in, bool keepdims) {
  const char* name = reduce_name(op);
  if (!a.defined()) throw ValueError(std::string("[") + name + "] undefined tensor");
  auto axes = normalize_axes(axes_in, a.ndim(), name);
  DType out_dt = a.dtype();
  switch (op) {
    case OpCode::Sum:
    case OpCode::Prod:
      if (!is_inexact(out_dt)) out_dt = accumulate_type(out_dt);  // int64 or uint64 (NumPy 2)
      break;
    case OpCode::Max:
    case OpCode::Min:
      if (is_complex(out_dt))
        throw DTypeError(std::string("[") + name + "] ordering is not defined for complex tensors");
      for (int ax : axes)
        if (a.shape()[ax] == 0)
          throw ShapeError(std::string("[") + name + "] zero-size reduction along axis " +
                           std::to_string(ax) + " has no identity");
      break;
    default:
      out_dt = bool_;
  }
  Tensor r = make_node(kept_shape(a.shape(), axes), out_dt, a.device(),
                       std::make_shared<ReducePrim>(op, axes), {a});
  return keepdims ? r : reshape(r, dropped_shape(a.shape(), axes));
}

int64_t reduced_count(const Tensor& a, const std::vector<int>& axes) {
  int64_t n = 1;
  for (int ax : axes) n *= a.shape()[ax];
  return n;
}
}  // namespace

Tensor sum(const Tensor& a, const Axes& axes, bool keepdims) {
  return reduce_op(OpCode::Sum, a, axes, keepdims);
}
Tensor detail::sum_in_dtype(const Tensor& a, const Axes& axes) {
  Tensor s = sum(a, axes);
  return s.dtype() == a.dtype() ? s : astype(s, a.dtype());
}
Tensor prod(const Tensor& a, const Axes& axes, bool keepdims) {
  return reduce_op(OpCode::Prod, a, axes, keepdims);
}
Tensor max(const Tensor& a, const Axes& axes, bool keepdims) {
  return reduce_op(OpCode::Max, a, axes, keepdims);
}
Tensor min(const Tensor& a, const Axes& axes, bool keepdims) {
  return reduce_op(OpCode::Min, a, axes, keepdims);
}
Tensor any(const Tensor& a, const Axes& axes, bool keepdims) {
  return reduce_op(OpCode::Any, a, axes, keepdims);
}
Tensor all(const Tensor& a, const Axes& axes, bool keepdims) {
  return reduce_op(OpCode::All, a, axes, keepdims);
}

Tensor mean(const Tensor& a, const Axes& axes, bool keepdims) {
  auto ax = normalize_axes(axes, a.ndim(), "mean");
  DType dt = to_inexact(a.dtype());
  Tensor x = detail::cast_to(a, dt, a.device());
  int64_t n = reduced_count(a, ax);
  Tensor s = sum(x, axes, keepdims);
  double inv = n > 0 ? 1.0 / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
  return s * inv;
}

Tensor var(const Tensor& a, const Axes& axes, double ddof, bool keepdims) {
  auto ax = normalize_axes(axes, a.ndim(), "var");
  DType dt = to_inexact(a.dtype());
  Tensor x = detail::cast_to(a, dt, a.device());
  int64_t n = reduced_count(a, ax);
  Tensor d = x - mean(x, axes, true);
  Tensor sq = is_complex(dt) ? real(d * conj(d)) : d * d;
  double denom = static_cast<double>(n) - ddof;
  double scale = denom > 0 ? 1.0 / denom : std::numeric_limits<double>::quiet_NaN();
  return sum(sq, axes, keepdims) * scale;
}

Tensor std(const Tensor& a, const Axes& axes, double ddof, bool keepdims) {
  return sqrt(var(a, axes, ddof, keepdims));
}

namespace {
Tensor arg_reduce(OpCode op, const Tensor& a, std::optional<int> axis, bool keepdims) {
  const char* name = op == OpCode::ArgMax ? "argmax" : "argmin";
  if (is_complex(a.dtype()))
    throw DTypeError(std::string("[") + name + "] ordering is not defined for complex tensors");
  Tensor x = axis ? a : flatten(a);
  int ax = axis ? normalize_axis(*axis, a.ndim(), name) : 0;
  if (x.shape()[ax] == 0)
    throw ShapeError(std::string("[") + name + "] attempt to get " + name + " of an empty sequence");
  Shape ks = x.shape();
  ks[ax] = 1;
  Tensor r = make_node(ks, int64, a.device(), std::make_shared<ArgReducePrim>(op, ax), {x});
  if (!axis) {
    if (!keepdims) return reshape(r, {});
    return reshape(r, Shape(a.ndim(), 1));
  }
  return keepdims ? r : reshape(r, dropped_shape(x.shape(), {ax}));
}

Tensor scan(OpCode op, const Tensor& a, int axis) {
  const char* name = op == OpCode::CumSum ? "cumsum" : "cumprod";
  int ax = normalize_axis(axis, a.ndim(), name);
  DType dt = is_inexact(a.dtype()) ? a.dtype() : accumulate_type(a.dtype());
  return make_node(a.shape(), dt, a.device(), std::make_shared<ScanPrim>(op, ax), {a});
}
}  // namespace

Tensor argmax(const Tensor& a, std::optional<int> axis, bool keepdims) {
  return arg_reduce(OpCode::ArgMax, a, axis, keepdims);
}
Tensor argmin(const Tensor& a, std::optional<int> axis, bool keepdims) {
  return arg_reduce(OpCode::ArgMin, a, axis, keepdims);
}
Tensor cumsum(const Tensor& a, int axis) { return scan(OpCode::CumSum, a, axis); }
Tensor cumprod(const Tensor& a, int axis) { return scan(OpCode::CumProd, a, axis); }

Tensor logsumexp(const Tensor& a, const Axes& axes, bool keepdims) {
  if (is_complex(a.dtype())) throw DTypeError("[logsumexp] not defined for complex tensors");
  Tensor x = detail::cast_to(a, to_inexact(a.dtype()), a.device());
  Tensor m = max(x, axes, true);
  // Infinite maxima would give inf - inf = nan; shift by zero there instead.
  Tensor shift = where(isfinite(m), m, zeros_like(m));
  Tensor r = log(sum(exp(x - shift), axes, true)) + shift;
  if (keepdims) return r;
  auto ax = normalize_axes(axes, a.ndim(), "logsumexp");
  return reshape(r, dropped_shape(a.shape(), ax));
}

namespace {
Tensor softmax_op(OpCode op, const Tensor& a, int axis) {
  const char* name = op == OpCode::Softmax ? "softmax" : "log_softmax";
  if (a.ndim() == 0) throw ShapeError(std::string("[") + name + "] input must be at least 1-d");
  if (!is_floating(a.dtype()) && is_complex(a.dtype()))
    throw DTypeError(std::string("[") + name + "] not defined for complex tensors");
  int ax = normalize_axis(axis, a.ndim(), name);
  DType dt = to_inexact(a.dtype());
  Tensor x = detail::cast_to(a, dt, a.device());
  bool last = ax == a.ndim() - 1;
  if (!last) x = moveaxis(x, ax, -1);
  Tensor r = make_node(x.shape(), dt, a.device(), std::make_shared<SoftmaxPrim>(op), {x});
  return last ? r : moveaxis(r, -1, ax);
}
}  // namespace

Tensor softmax(const Tensor& a, int axis) { return softmax_op(OpCode::Softmax, a, axis); }
Tensor log_softmax(const Tensor& a, int axis) { return softmax_op(OpCode::LogSoftmax, a, axis); }

Tensor layer_norm(const Tensor& x, std::optional<Tensor> weight, std::optional<Tensor> bias,
                  double eps, int normalized_ndim) {
  if (normalized_ndim < 1 || normalized_ndim > x.ndim())
    throw ShapeError("[layer_norm] normalized_ndim " + std::to_string(normalized_ndim) +
                     " is out of range for a " + std::to_string(x.ndim()) + "-d input");
  if (is_complex(x.dtype())) throw DTypeError("[layer_norm] not defined for complex tensors");
  DType dt = to_inexact(x.dtype());
  Shape norm_shape(x.shape().end() - normalized_ndim, x.shape().end());
  int64_t inner = detail::shape_size(norm_shape);
  std::vector<Tensor> ins{detail::cast_to(x, dt, x.device())};
  for (auto* p : {&weight, &bias}) {
    if (!*p) continue;
    if ((*p)->shape() != norm_shape)
      throw ShapeError("[layer_norm] weight/bias shape " + detail::shape_str((*p)->shape()) +
                       " does not match the normalized shape " + detail::shape_str(norm_shape));
    ins.push_back(detail::cast_to(**p, dt, x.device()));
  }
  return make_node(x.shape(), dt, x.device(),
                   std::make_shared<LayerNormPrim>(eps, inner, weight.has_value(), bias.has_value()),
                   std::move(ins));
}

}  // namespace tmath
