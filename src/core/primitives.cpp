// Evaluation and gradient rules of the primitives.
#include "core/primitives.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <numeric>

#include "core/dispatch.h"
#include "core/ops_internal.h"
#include "tmath/error.h"
#include "tmath/ops.h"

namespace tmath {

using detail::Buffer;
using detail::contiguous_strides;

// ---- defaults ------------------------------------------------------------------
std::vector<Tensor> Primitive::vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                                   const std::vector<int>&, const std::vector<Tensor>&) {
  throw UnsupportedError("[" + name() + "] has no reverse-mode gradient rule");
}

std::vector<Tensor> Primitive::jvp(const std::vector<Tensor>& primals,
                                   const std::vector<Tensor>& tangents,
                                   const std::vector<int>& argnums) {
  throw UnsupportedError("[" + name() + "] has no forward-mode gradient rule");
}

void alloc_output(TensorImpl& out, const std::vector<Tensor>& inputs, bool allow_donation,
                  int only_input) {
  size_t nbytes = static_cast<size_t>(out.size) * itemsize(out.dtype);
  if (allow_donation) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (only_input >= 0 && static_cast<size_t>(only_input) != i) continue;
      const auto& p = inputs[i].impl();
      if (p.use_count() == 1 && !p->weak && p->contiguous && p->offset == 0 && p->buffer &&
          p->buffer.use_count() == 1 && p->buffer->allocator && p->buffer->nbytes == nbytes &&
          p->size == out.size && itemsize(p->dtype) == itemsize(out.dtype) &&
          p->device == out.device) {
        out.set_contiguous(p->buffer);
        detail::count_donation();
        return;
      }
    }
  }
  out.set_contiguous(detail::allocate_buffer(nbytes, out.device));
}

namespace {
// Strides of `t` broadcast to `shape` (right-aligned, 0 on broadcast axes).
Strides broadcast_strides(const TensorImpl& t, const Shape& shape) {
  Strides st(shape.size(), 0);
  size_t off = shape.size() - t.shape.size();
  for (size_t i = 0; i < t.shape.size(); ++i)
    st[off + i] = t.shape[i] == 1 ? 0 : t.strides[i];
  return st;
}

ArrayRef ref_with(const TensorImpl& t, const Shape& shape, const Strides& strides) {
  return ArrayRef{t.data(), t.dtype, shape, strides, t.device};
}

// Sum `g` down to `shape` (reverse of broadcasting).
Tensor unbroadcast(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  int extra = g.ndim() - static_cast<int>(shape.size());
  Axes axes;
  for (int i = 0; i < g.ndim(); ++i)
    if (i < extra || (shape[i - extra] == 1 && g.shape(i) != 1)) axes.push_back(i);
  Tensor r = sum(g, axes, true);
  return reshape(r, shape);
}
}  // namespace

// ---- elementwise -------------------------------------------------------------
std::string UnaryPrim::name() const {
  return detail::snake_name(op_);
}

bool UnaryPrim::is_equivalent(const Primitive& o) const {
  auto* u = dynamic_cast<const UnaryPrim*>(&o);
  return u && u->op_ == op_;
}

void UnaryPrim::eval(Backend* be, const std::vector<Tensor>& in,
                     const std::vector<TensorImpl*>& out) {
  alloc_output(*out[0], in, true);
  be->unary(op_, in[0].impl()->ref(), out[0]->ref());
  detail::count_kernel();
}

std::vector<Tensor> UnaryPrim::vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                                   const std::vector<int>&, const std::vector<Tensor>& outs) {
  const Tensor& x = p[0];
  const Tensor& g = ct[0];
  const Tensor& y = outs[0];
  switch (op_) {
    case OpCode::Neg: return {neg(g)};
    case OpCode::Exp: return {g * y};
    case OpCode::Expm1: return {g * (y + 1)};
    case OpCode::Log: return {g / x};
    case OpCode::Log1p: return {g / (x + 1)};
    case OpCode::Log2: return {g / (x * 0.6931471805599453)};
    case OpCode::Log10: return {g / (x * 2.302585092994046)};
    case OpCode::Sqrt: return {g / (y * 2)};
    case OpCode::Rsqrt: return {g * y * y * y * -0.5};
    case OpCode::Square: return {g * x * 2};
    case OpCode::Reciprocal: return {neg(g) * y * y};
    case OpCode::Sin: return {g * cos(x)};
    case OpCode::Cos: return {neg(g) * sin(x)};
    case OpCode::Tan: return {g * (y * y + 1)};
    case OpCode::Asin: return {g / sqrt(1 - x * x)};  // sqrt, not rsqrt: complex too
    case OpCode::Acos: return {neg(g) / sqrt(1 - x * x)};
    case OpCode::Atan: return {g / (x * x + 1)};
    case OpCode::Sinh: return {g * cosh(x)};
    case OpCode::Cosh: return {g * sinh(x)};
    case OpCode::Tanh: return {g * (1 - y * y)};
    case OpCode::Asinh: return {g / sqrt(x * x + 1)};
    case OpCode::Acosh: return {g / (sqrt(x - 1) * sqrt(x + 1))};
    case OpCode::Atanh: return {g / (1 - x * x)};
    case OpCode::Sigmoid: return {g * y * (1 - y)};
    case OpCode::Relu: return {where(x > 0, g, zeros_like(g))};
    case OpCode::Silu: {
      Tensor s = sigmoid(x);
      return {g * s * (1 + x * (1 - s))};
    }
    case OpCode::Erf: return {g * exp(neg(x * x)) * 1.1283791670955126};
    case OpCode::Erfinv: return {g * exp(y * y) * 0.886226925452758};
    case OpCode::Gelu: return {gelu_grad(g, x)};
    case OpCode::GeluTanh: return {gelu_grad(g, x, true)};
    case OpCode::Real: return {is_complex(x.dtype()) ? astype(g, x.dtype()) : g};
    case OpCode::Imag:
      return {astype(g, x.dtype()) * Tensor(std::complex<double>(0.0, -1.0))};
    case OpCode::Conj: return {conj(g)};
    // |z| of a complex z: d|z| = Re(conj(z)/|z| dz), so the gradient is conj(z)/|z|.
    case OpCode::Abs: return {is_complex(x.dtype()) ? g * conj(sign(x)) : g * sign(x)};
    case OpCode::Sign: case OpCode::Floor: case OpCode::Ceil: case OpCode::Round:
      return {zeros_like(x)};
    default: return Primitive::vjp(p, ct, {0}, outs);
  }
}

std::vector<Tensor> UnaryPrim::jvp(const std::vector<Tensor>& p, const std::vector<Tensor>& t,
                                   const std::vector<int>& argnums) {
  // For elementwise unary f, the jvp equals the vjp with the tangent as cotangent,
  // except for |z| of a complex z (real output): Re(conj(z)/|z| dz).
  if (op_ == OpCode::Abs && is_complex(p[0].dtype())) return {real(t[0] * conj(sign(p[0])))};
  std::vector<Tensor> outs{detail::apply_unary(op_, p[0])};
  return vjp(p, t, argnums, outs);
}

std::string BinaryPrim::name() const {
  return detail::snake_name(op_);
}

bool BinaryPrim::is_equivalent(const Primitive& o) const {
  auto* b = dynamic_cast<const BinaryPrim*>(&o);
  return b && b->op_ == op_;
}

void BinaryPrim::eval(Backend* be, const std::vector<Tensor>& in,
                      const std::vector<TensorImpl*>& out) {
  TensorImpl& o = *out[0];
  const TensorImpl& a = *in[0].impl();
  const TensorImpl& b = *in[1].impl();
  Strides sa = broadcast_strides(a, o.shape), sb = broadcast_strides(b, o.shape);
  alloc_output(o, in, true);
  be->binary(op_, ref_with(a, o.shape, sa), ref_with(b, o.shape, sb), o.ref());
  detail::count_kernel();
}

namespace {
// Partial derivatives of a binary op times g, before reduction to the input shapes
// (g broadcasts against them). False for ops without a rule.
bool binary_partials(OpCode op, const Tensor& a, const Tensor& b, const Tensor& g,
                     const Tensor& out, Tensor& ga, Tensor& gb) {
  switch (op) {
    case OpCode::Add: ga = g; gb = g; break;
    case OpCode::Subtract: ga = g; gb = neg(g); break;
    case OpCode::Multiply: ga = g * b; gb = g * a; break;
    case OpCode::Divide: ga = g / b; gb = neg(g) * a / (b * b); break;
    case OpCode::Power:
      ga = g * b * power(a, b - 1);
      gb = g * out * log(a);
      break;
    case OpCode::Maximum: {
      Tensor m = astype(a >= b, g.dtype());
      ga = g * m; gb = g * (1 - m);
      break;
    }
    case OpCode::Minimum: {
      Tensor m = astype(a <= b, g.dtype());
      ga = g * m; gb = g * (1 - m);
      break;
    }
    case OpCode::Atan2: {
      Tensor d = a * a + b * b;
      ga = g * b / d; gb = neg(g) * a / d;
      break;
    }
    case OpCode::Hypot: ga = g * a / out; gb = g * b / out; break;
    // out = a * gelu'(b): d/da = gelu'(b), d/db = a * gelu''(b).
    case OpCode::GeluGrad: {
      // gelu'' = pdf(b) (2 - b^2) for gelu = b Phi(b).
      Tensor pdf = exp(b * b * -0.5) * 0.3989422804014327;
      ga = gelu_grad(g, b);
      gb = g * a * pdf * (2 - b * b);
      break;
    }
    case OpCode::GeluTanhGrad: {
      // gelu = 0.5 b (1 + t), t = tanh(u), u = c (b + k b^3):
      // gelu'' = (1 - t^2) (u' - b t u'^2 + 3 c k b^2), u' = c (1 + 3 k b^2).
      const double c = 0.7978845608028654, k = 0.044715;
      Tensor t = tanh((b + b * b * b * k) * c);
      Tensor du = (b * b * (3 * k) + 1) * c;
      ga = gelu_grad(g, b, true);
      gb = g * a * (1 - t * t) * (du - b * t * du * du + b * b * (3 * c * k));
      break;
    }
    // A step function of both operands (JAX's convention: zero, not undefined).
    case OpCode::Nextafter: ga = zeros_like(g); gb = zeros_like(g); break;
    case OpCode::Remainder: ga = g; gb = neg(g) * floor_divide(a, b); break;
    default: return false;
  }
  return true;
}
}  // namespace

std::vector<Tensor> BinaryPrim::vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                                    const std::vector<int>& argnums,
                                    const std::vector<Tensor>& outs) {
  Tensor ga, gb;
  if (!binary_partials(op_, p[0], p[1], ct[0], outs[0], ga, gb))
    return Primitive::vjp(p, ct, argnums, outs);
  std::vector<Tensor> r;
  for (int i : argnums) r.push_back(unbroadcast(i == 0 ? ga : gb, p[i].shape()));
  return r;
}

std::vector<Tensor> BinaryPrim::jvp(const std::vector<Tensor>& p, const std::vector<Tensor>& t,
                                    const std::vector<int>& argnums) {
  Tensor out = detail::apply_binary(op_, p[0], p[1]);
  Tensor acc;
  for (size_t k = 0; k < argnums.size(); ++k) {
    // d out = sum_i (d out / d x_i) * t_i: the partials with the tangent in place of g.
    Tensor ga, gb;
    if (!binary_partials(op_, p[0], p[1], t[k], out, ga, gb))
      return Primitive::jvp(p, t, argnums);
    Tensor term = broadcast_to(argnums[k] == 0 ? ga : gb, out.shape());
    acc = acc.defined() ? acc + term : term;
  }
  return {acc};
}

void WherePrim::eval(Backend* be, const std::vector<Tensor>& in,
                     const std::vector<TensorImpl*>& out) {
  TensorImpl& o = *out[0];
  const TensorImpl &c = *in[0].impl(), &a = *in[1].impl(), &b = *in[2].impl();
  Strides sc = broadcast_strides(c, o.shape), sa = broadcast_strides(a, o.shape),
          sb = broadcast_strides(b, o.shape);
  alloc_output(o, {in[1], in[2]}, true);
  be->where(ref_with(c, o.shape, sc), ref_with(a, o.shape, sa), ref_with(b, o.shape, sb), o.ref());
  detail::count_kernel();
}

std::vector<Tensor> WherePrim::vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                                   const std::vector<int>& argnums, const std::vector<Tensor>&) {
  const Tensor& g = ct[0];
  Tensor z = zeros_like(g);
  std::vector<Tensor> r;
  for (int i : argnums) {
    if (i == 0) r.push_back(zeros_like(p[0]));
    else if (i == 1) r.push_back(unbroadcast(where(p[0], g, z), p[1].shape()));
    else r.push_back(unbroadcast(where(p[0], z, g), p[2].shape()));
  }
  return r;
}

void AsTypePrim::eval(Backend* be, const std::vector<Tensor>& in,
                      const std::vector<TensorImpl*>& out) {
  alloc_output(*out[0], in, in[0].dtype() == out[0]->dtype);
  if (out[0]->buffer == in[0].impl()->buffer) return;  // donated same-dtype copy: nothing to do
  be->copy(in[0].impl()->ref(), out[0]->ref());
  detail::count_kernel();
}

std::vector<Tensor> AsTypePrim::vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                                    const std::vector<int>&, const std::vector<Tensor>&) {
  return {astype(ct[0], p[0].dtype())};
}

void FillPrim::eval(Backend* be, const std::vector<Tensor>& in,
                    const std::vector<TensorImpl*>& out) {
  alloc_output(*out[0], in, false);
  be->fill(out[0]->ref(), value_);
  detail::count_kernel();
}

void ArangePrim::eval(Backend* be, const std::vector<Tensor>& in,
                      const std::vector<TensorImpl*>& out) {
  alloc_output(*out[0], in, false);
  be->arange(out[0]->ref(), start_, step_);
  detail::count_kernel();
}

// ---- views ---------------------------------------------------------------------
namespace {
// Strides for viewing (shape, strides) as new_shape without a copy, if possible
// (NumPy's rule: each group of merged/split axes must be contiguous in itself).
bool reshape_strides(const Shape& shape, const Strides& strides, const Shape& new_shape,
                     Strides& out) {
  Shape os;
  Strides ost;
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] != 1) {
      os.push_back(shape[i]);
      ost.push_back(strides[i]);
    }
  out.assign(new_shape.size(), 0);
  size_t oi = 0, oj = 1, ni = 0, nj = 1;
  size_t on = os.size(), nn = new_shape.size();
  while (ni < nn && oi < on) {
    int64_t np = new_shape[ni], op = os[oi];
    while (np != op) {
      if (np < op) np *= new_shape[nj++];
      else op *= os[oj++];
    }
    for (size_t k = oi; k + 1 < oj; ++k)
      if (ost[k] != os[k + 1] * ost[k + 1]) return false;
    out[nj - 1] = ost[oj - 1];
    for (size_t k = nj - 1; k > ni; --k) out[k - 1] = out[k] * new_shape[k];
    ni = nj++;
    oi = oj++;
  }
  // Trailing size-1 axes.
  int64_t last = ni > 0 ? out[ni - 1] : 1;
  for (size_t k = ni; k < nn; ++k) out[k] = last;
  return true;
}
}  // namespace

void ReshapePrim::eval(Backend* be, const std::vector<Tensor>& in,
                       const std::vector<TensorImpl*>& out) {
  const TensorImpl& x = *in[0].impl();
  TensorImpl& o = *out[0];
  if (x.contiguous) {
    o.set_view(x.buffer, contiguous_strides(o.shape), x.offset);
    return;
  }
  Strides st;
  if (o.size > 0 && reshape_strides(x.shape, x.strides, o.shape, st)) {
    o.set_view(x.buffer, std::move(st), x.offset);
    return;
  }
  alloc_output(o, {}, false);
  Strides cs = contiguous_strides(x.shape);
  ArrayRef dst{o.data(), o.dtype, x.shape, cs, o.device};
  be->copy(x.ref(), dst);
  detail::count_kernel();
}

std::vector<Tensor> ReshapePrim::vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                                     const std::vector<int>&, const std::vector<Tensor>&) {
  return {reshape(ct[0], p[0].shape())};
}

void TransposePrim::eval(Backend*, const std::vector<Tensor>& in,
                         const std::vector<TensorImpl*>& out) {
  const TensorImpl& x = *in[0].impl();
  Strides st(perm_.size());
  for (size_t i = 0; i < perm_.size(); ++i) st[i] = x.strides[perm_[i]];
  out[0]->set_view(x.buffer, std::move(st), x.offset);
}

std::vector<Tensor> TransposePrim::vjp(const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                                       const std::vector<int>&, const std::vector<Tensor>&) {
  std::vector<int> inv(perm_.size());
  for (size_t i = 0; i < perm_.size(); ++i) inv[perm_[i]] = static_cast<int>(i);
  return {transpose(ct[0], inv)};
}

void SlicePrim::eval(Backend*, const std::vector<Tensor>& in,
                     const std::vector<TensorImpl*>& out) {
  const TensorImpl& x = *in[0].impl();
  Strides st(x.strides.size());
  int64_t off = x.offset;
  for (size_t i = 0; i < st.size(); ++i) {
    if (out[0]->shape[i] > 0) off += start_[i] * x.strides[i];
    st[i] = x.strides[i] * step_[i];
  }
  out[0]->set_view(x.buffer, std::move(st), off);
}

std::vector<Tensor> SlicePrim::vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                                   const std::vector<int>&, const std::vector<Tensor>&) {
  // Scatter the cotangent back: negative steps are flipped first, steps k > 1 interleave
  // k - 1 zeros after each element, then padding restores the untouched positions.
  Tensor g = ct[0];
  std::vector<std::pair<int64_t, int64_t>> widths;
  for (size_t i = 0; i < step_.size(); ++i) {
    const int ax = static_cast<int>(i);
    const int64_t n = g.shape(ax), dim = p[0].shape(ax);
    const int64_t k = step_[i] < 0 ? -step_[i] : step_[i];
    if (n == 0) {
      widths.emplace_back(dim, 0);
      continue;
    }
    if (step_[i] < 0) g = flip(g, Axes{ax});
    const int64_t first = step_[i] < 0 ? start_[i] - (n - 1) * k : start_[i];
    if (k > 1) {
      Shape zs = g.shape();
      zs.insert(zs.begin() + ax + 1, k - 1);
      Tensor zero = zeros(zs, g.dtype(), g.device());
      Tensor spread = concatenate({expand_dims(g, ax + 1), zero}, ax + 1);
      Shape merged = g.shape();
      merged[ax] = n * k;
      g = slice(reshape(spread, merged), ax, 0, (n - 1) * k + 1);
    }
    const int64_t span = (n - 1) * k + 1;
    widths.emplace_back(first, dim - first - span);
  }
  return {pad(g, widths)};
}

void BroadcastPrim::eval(Backend*, const std::vector<Tensor>& in,
                         const std::vector<TensorImpl*>& out) {
  const TensorImpl& x = *in[0].impl();
  out[0]->set_view(x.buffer, broadcast_strides(x, out[0]->shape), x.offset);
}

std::vector<Tensor> BroadcastPrim::vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                                       const std::vector<int>&, const std::vector<Tensor>&) {
  return {unbroadcast(ct[0], p[0].shape())};
}

// ---- reductions and scans ----------------------------------------------------------
std::string ReducePrim::name() const {
  return detail::snake_name(op_);
}

void ReducePrim::eval(Backend* be, const std::vector<Tensor>& in,
                      const std::vector<TensorImpl*>& out) {
  alloc_output(*out[0], in, false);
  be->reduce(op_, in[0].impl()->ref(), axes_, out[0]->ref());
  detail::count_kernel();
}

std::vector<Tensor> ReducePrim::vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                                    const std::vector<int>&, const std::vector<Tensor>& outs) {
  // Outputs keep reduced axes (size 1), so cotangents broadcast back directly.
  const Tensor& x = p[0];
  const Tensor& g = ct[0];
  switch (op_) {
    case OpCode::Sum: return {broadcast_to(g, x.shape())};
    case OpCode::Prod: return {broadcast_to(g * outs[0], x.shape()) / x};
    case OpCode::Max:
    case OpCode::Min: {
      Tensor mask = astype(equal(x, outs[0]), g.dtype());
      Tensor count = sum(mask, axes_, true);
      return {mask * g / count};
    }
    default: return Primitive::vjp(p, ct, {0}, outs);
  }
}

void ArgReducePrim::eval(Backend* be, const std::vector<Tensor>& in,
                         const std::vector<TensorImpl*>& out) {
  alloc_output(*out[0], in, false);
  be->arg_reduce(op_, in[0].impl()->ref(), axis_, out[0]->ref());
  detail::count_kernel();
}

void ScanPrim::eval(Backend* be, const std::vector<Tensor>& in,
                    const std::vector<TensorImpl*>& out) {
  alloc_output(*out[0], in, false);
  be->scan(op_, in[0].impl()->ref(), axis_, out[0]->ref());
  detail::count_kernel();
}

std::vector<Tensor> ScanPrim::vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                                  const std::vector<int>&, const std::vector<Tensor>& outs) {
  // Reverse cumulative sum of the cotangent; cumprod divides by x (nonzero inputs).
  auto rev_cumsum = [&](const Tensor& t) {
    return flip(cumsum(flip(t, Axes{axis_}), axis_), Axes{axis_});
  };
  if (op_ == OpCode::CumSum) return {rev_cumsum(ct[0])};
  return {rev_cumsum(ct[0] * outs[0]) / p[0]};
}

namespace {
// Row kernels (softmax, layer_norm) read contiguous rows.
Tensor contiguous(const Tensor& t) { return t.impl()->contiguous ? t : copy(t).eval(); }
}  // namespace

void SoftmaxPrim::eval(Backend* be, const std::vector<Tensor>& in,
                       const std::vector<TensorImpl*>& out) {
  if (!in[0].impl()->contiguous) return eval(be, {contiguous(in[0])}, out);
  alloc_output(*out[0], in, true);
  be->softmax(op_, in[0].impl()->ref(), out[0]->ref());
  detail::count_kernel();
}

std::vector<Tensor> SoftmaxPrim::vjp(const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                                     const std::vector<int>&, const std::vector<Tensor>& outs) {
  const Tensor &g = ct[0], &y = outs[0];
  if (op_ == OpCode::Softmax) return {y * (g - sum(g * y, {-1}, true))};
  return {g - exp(y) * sum(g, {-1}, true)};
}

void LayerNormPrim::eval(Backend* be, const std::vector<Tensor>& in,
                         const std::vector<TensorImpl*>& out) {
  for (const auto& t : in)
    if (!t.impl()->contiguous) {
      std::vector<Tensor> c;
      for (const auto& u : in) c.push_back(contiguous(u));
      return eval(be, c, out);
    }
  alloc_output(*out[0], {in[0]}, true);
  ArrayRef none{nullptr, in[0].dtype(), {}, {}, in[0].device()};
  ArrayRef w = has_w_ ? in[1].impl()->ref() : none;
  ArrayRef b = has_b_ ? in[has_w_ ? 2 : 1].impl()->ref() : none;
  be->layer_norm(in[0].impl()->ref(), w, b, LayerNormArgs{eps_, inner_}, out[0]->ref());
  detail::count_kernel();
}

std::vector<Tensor> LayerNormPrim::vjp(const std::vector<Tensor>& p,
                                       const std::vector<Tensor>& ct,
                                       const std::vector<int>& argnums,
                                       const std::vector<Tensor>&) {
  // Rows of `inner_` normalized elements; xhat = (x - mean) * rstd.
  const Tensor& x = p[0];
  const int64_t n = inner_;
  const int64_t rows = n > 0 ? x.size() / n : 0;
  Tensor xr = reshape(x, {rows, n});
  Tensor xc = xr - mean(xr, {-1}, true);
  Tensor rstd = rsqrt(mean(xc * xc, {-1}, true) + eps_);
  Tensor xhat = xc * rstd;
  Tensor g = reshape(ct[0], {rows, n});
  Tensor gxhat = has_w_ ? g * reshape(p[1], {n}) : g;
  std::vector<Tensor> r;
  for (int i : argnums) {
    if (i == 0) {
      Tensor gx = rstd * (gxhat - mean(gxhat, {-1}, true) -
                          xhat * mean(gxhat * xhat, {-1}, true));
      r.push_back(reshape(gx, x.shape()));
    } else if (i == 1 && has_w_) {
      r.push_back(reshape(sum(g * xhat, {0}), p[1].shape()));
    } else {
      r.push_back(reshape(sum(g, {0}), p[i].shape()));
    }
  }
  return r;
}

// ---- matmul, gather, concatenate, pad, random, transfers ---------------------------
void MatmulPrim::eval(Backend* be, const std::vector<Tensor>& in,
                      const std::vector<TensorImpl*>& out) {
  alloc_output(*out[0], in, false);
  be->matmul(in[0].impl()->ref(), in[1].impl()->ref(), out[0]->ref(), MatmulOptions{precision_});
  detail::count_kernel();
}

std::vector<Tensor> MatmulPrim::vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                                    const std::vector<int>& argnums, const std::vector<Tensor>&) {
  std::vector<Tensor> r;
  for (int i : argnums) {
    if (i == 0) r.push_back(matmul(ct[0], swapaxes(p[1], -1, -2)));
    else r.push_back(matmul(swapaxes(p[0], -1, -2), ct[0]));
  }
  return r;
}

void TakePrim::eval(Backend* be, const std::vector<Tensor>& in,
                    const std::vector<TensorImpl*>& out) {
  alloc_output(*out[0], in, false);
  be->take(op_, in[0].impl()->ref(), in[1].impl()->ref(), axis_, out[0]->ref());
  detail::count_kernel();
}

std::vector<Tensor> TakePrim::vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                                  const std::vector<int>& argnums, const std::vector<Tensor>&) {
  // Scatter-add of the cotangent into the source's flat positions (put_add): O(indices)
  // memory. The indices were checked (and wrapped) when the take was recorded.
  const Tensor &src = p[0], &g = ct[0];
  const Tensor idx = p[1].device() == src.device() ? p[1] : to_device(p[1], src.device());
  const Device dev = src.device();
  const int nd = src.ndim();
  std::vector<int64_t> st(static_cast<size_t>(nd), 1);  // src's row-major strides
  for (int d = nd - 2; d >= 0; --d) st[d] = st[d + 1] * src.shape(d + 1);
  Tensor pos;
  if (op_ == OpCode::Take) {
    // g: src.shape[:axis] + idx.shape + src.shape[axis+1:], seen as (pre, k, post).
    int64_t pre = 1, post = 1;
    for (int i = 0; i < axis_; ++i) pre *= src.shape(i);
    for (int i = axis_ + 1; i < nd; ++i) post *= src.shape(i);
    const int64_t n = src.shape(axis_), k = idx.size();
    pos = reshape(arange(0, pre, 1, int64, dev) * (n * post), {pre, 1, 1}) +
          reshape(idx, {1, k, 1}) * post + reshape(arange(0, post, 1, int64, dev), {1, 1, post});
  } else {
    // g has idx's shape; element (i_0, ..., i_nd-1) came from src with i_axis = idx[...].
    const Shape& os = idx.shape();
    pos = idx * st[static_cast<size_t>(axis_)];
    for (int d = 0; d < nd; ++d) {
      if (d == axis_) continue;
      Shape s(static_cast<size_t>(nd), 1);
      s[static_cast<size_t>(d)] = os[static_cast<size_t>(d)];
      pos = pos + reshape(arange(0, os[static_cast<size_t>(d)], 1, int64, dev) * st[static_cast<size_t>(d)], s);
    }
  }
  Tensor ga = reshape(detail::put_unchecked(OpCode::PutAdd, zeros({src.size()}, g.dtype(), dev),
                                            reshape(pos, {-1}), reshape(g, {-1})),
                      src.shape());
  std::vector<Tensor> r;
  for (int i : argnums) r.push_back(i == 0 ? ga : zeros_like(p[1]));
  return r;
}

void PutPrim::eval(Backend* be, const std::vector<Tensor>& in,
                   const std::vector<TensorImpl*>& out) {
  TensorImpl& o = *out[0];
  const TensorImpl& a = *in[0].impl();
  alloc_output(o, in, true, 0);  // a dead input is updated in place
  if (o.size == 0) return;
  if (o.data() != a.data()) {
    be->copy(a.ref(), o.ref());
    detail::count_kernel();
  }
  if (in[1].size() == 0) return;
  be->put(op_, in[1].impl()->ref(), in[2].impl()->ref(), o.ref());
  detail::count_kernel();
}

std::vector<Tensor> PutPrim::vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                                 const std::vector<int>& argnums, const std::vector<Tensor>&) {
  // put: the overwritten positions take no gradient from a; each value gets the
  // cotangent at its position (with repeated positions every copy gets it). The
  // positions were checked when the put was recorded.
  const Tensor& g = ct[0];
  std::vector<Tensor> r;
  for (int i : argnums) {
    if (i == 0)
      r.push_back(op_ == OpCode::Put
                      ? detail::put_unchecked(op_, g, p[1], zeros({}, g.dtype(), g.device()))
                      : g);
    else if (i == 1)
      r.push_back(zeros_like(p[1]));
    else
      r.push_back(detail::take_flat_unchecked(g, p[1]));
  }
  return r;
}

std::vector<Tensor> PutPrim::jvp(const std::vector<Tensor>& p, const std::vector<Tensor>& t,
                                 const std::vector<int>& argnums) {
  Tensor ta, tv;
  for (size_t k = 0; k < argnums.size(); ++k) {
    if (argnums[k] == 0) ta = t[k];
    if (argnums[k] == 2) tv = t[k];
  }
  if (!ta.defined()) ta = zeros_like(p[0]);
  if (!tv.defined()) tv = zeros({}, p[0].dtype(), p[0].device());
  return {detail::put_unchecked(op_, ta, p[1], tv)};
}

void ConcatenatePrim::eval(Backend* be, const std::vector<Tensor>& in,
                           const std::vector<TensorImpl*>& out) {
  TensorImpl& o = *out[0];
  alloc_output(o, {}, false);
  int64_t pos = 0;
  const Strides& ost = o.strides;
  for (const auto& t : in) {
    const TensorImpl& x = *t.impl();
    if (x.size > 0) {
      void* dst = static_cast<char*>(o.data()) +
                  pos * ost[axis_] * static_cast<int64_t>(itemsize(o.dtype));
      be->copy(x.ref(), ArrayRef{dst, o.dtype, x.shape, ost, o.device});
      detail::count_kernel();
    }
    pos += x.shape[axis_];
  }
}

std::vector<Tensor> ConcatenatePrim::vjp(const std::vector<Tensor>& p,
                                         const std::vector<Tensor>& ct,
                                         const std::vector<int>& argnums,
                                         const std::vector<Tensor>&) {
  std::vector<int64_t> starts;
  int64_t pos = 0;
  for (const auto& t : p) {
    starts.push_back(pos);
    pos += t.shape(axis_);
  }
  std::vector<Tensor> r;
  for (int i : argnums)
    r.push_back(slice(ct[0], axis_, starts[i], starts[i] + p[i].shape(axis_)));
  return r;
}

void PadPrim::eval(Backend* be, const std::vector<Tensor>& in,
                   const std::vector<TensorImpl*>& out) {
  TensorImpl& o = *out[0];
  const TensorImpl& x = *in[0].impl();
  alloc_output(o, {}, false);
  be->fill(o.ref(), value_);
  detail::count_kernel();
  if (x.size == 0) return;
  int64_t off = 0;
  for (size_t i = 0; i < before_.size(); ++i) off += before_[i] * o.strides[i];
  void* dst = static_cast<char*>(o.data()) + off * static_cast<int64_t>(itemsize(o.dtype));
  be->copy(x.ref(), ArrayRef{dst, o.dtype, x.shape, o.strides, o.device});
  detail::count_kernel();
}

std::vector<Tensor> PadPrim::vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                                 const std::vector<int>&, const std::vector<Tensor>&) {
  Tensor g = ct[0];
  for (size_t i = 0; i < before_.size(); ++i) {
    int ax = static_cast<int>(i);
    g = slice(g, ax, before_[i], before_[i] + p[0].shape(ax));
  }
  return {g};
}

std::string RandomPrim::name() const {
  switch (op_) {
    case OpCode::RandomBits: return "random_bits";
    case OpCode::RandomUniform: return "uniform";
    default: return "normal";
  }
}

void RandomPrim::eval(Backend* be, const std::vector<Tensor>& in,
                      const std::vector<TensorImpl*>& out) {
  alloc_output(*out[0], in, false);
  be->random(op_, args_, out[0]->ref());
  detail::count_kernel();
}

void ToDevicePrim::eval(Backend*, const std::vector<Tensor>& in,
                        const std::vector<TensorImpl*>& out) {
  const TensorImpl& x = *in[0].impl();
  TensorImpl& o = *out[0];
  Tensor src = in[0];
  if (!x.contiguous) src = copy(in[0]).eval();
  const TensorImpl& s = *src.impl();
  size_t nbytes = static_cast<size_t>(o.size) * itemsize(o.dtype);
  if (o.device.type == DeviceType::CPU && s.device.type != DeviceType::CPU) {
    // A device whose memory is host memory may lend it instead of copying (never
    // donated or reused: the buffer has no allocator).
    std::function<void(void*)> release;
    if (void* p = detail::primary_backend(s.device).share_with_host(s.ref(), release)) {
      auto buf = std::make_shared<detail::Buffer>();
      buf->ptr = p;
      buf->nbytes = nbytes;
      buf->device = kCPU;
      buf->deleter = std::move(release);
      o.set_contiguous(std::move(buf));
      return;
    }
  }
  alloc_output(o, {}, false);
  if (s.device.type == DeviceType::CPU && o.device.type == DeviceType::CPU) {
    if (nbytes) std::memcpy(o.data(), s.data(), nbytes);
  } else if (s.device.type == DeviceType::CPU) {
    Backend& dev = detail::primary_backend(o.device);
    dev.copy_from_host(s.data(), o.ref());
    dev.allocator(o.device).count_transfer(true, nbytes);
  } else if (o.device.type == DeviceType::CPU) {
    Backend& dev = detail::primary_backend(s.device);
    dev.copy_to_host(s.ref(), o.data());
    dev.allocator(s.device).count_transfer(false, nbytes);
  } else {
    Tensor host = to_device(src, kCPU).eval();
    Backend& dev = detail::primary_backend(o.device);
    dev.copy_from_host(host.impl()->data(), o.ref());
    dev.allocator(o.device).count_transfer(true, nbytes);
  }
  detail::count_kernel();
}

std::vector<Tensor> ToDevicePrim::vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                                      const std::vector<int>&, const std::vector<Tensor>&) {
  return {to_device(ct[0], p[0].device())};
}

}  // namespace tmath
