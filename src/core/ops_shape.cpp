// Shape, view and indexing ops.
#include <numeric>

#include "core/ops_internal.h"
#include "tmath/error.h"

namespace tmath {

using detail::make_node;
using detail::normalize_axis;
using detail::shape_str;

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape r(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw ShapeError("[broadcast] shapes " + shape_str(a) + " and " + shape_str(b) +
                       " are not compatible");
    r[i] = da == 1 ? db : da;
  }
  return r;
}

Tensor reshape(const Tensor& a, Shape shape) {
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) throw ShapeError("[reshape] only one dimension can be -1");
      infer = static_cast<int>(i);
    } else if (shape[i] < 0) {
      throw ShapeError("[reshape] invalid dimension " + std::to_string(shape[i]));
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || a.size() % known != 0)
      throw ShapeError("[reshape] cannot reshape " + shape_str(a.shape()) + " into " + shape_str(shape));
    shape[infer] = a.size() / known;
  } else if (known != a.size()) {
    throw ShapeError("[reshape] cannot reshape tensor of size " + std::to_string(a.size()) +
                     " into shape " + shape_str(shape));
  }
  if (shape == a.shape()) return a;
  static const auto prim = std::make_shared<ReshapePrim>();
  return make_node(std::move(shape), a.dtype(), a.device(), prim, {a});
}

Tensor flatten(const Tensor& a) { return reshape(a, {a.size()}); }

Tensor permute(const Tensor& a, std::vector<int> axes) {
  int nd = a.ndim();
  if (static_cast<int>(axes.size()) != nd)
    throw ShapeError("[transpose] axes has " + std::to_string(axes.size()) + " entries for a " +
                     std::to_string(nd) + "-d tensor");
  std::vector<bool> seen(nd, false);
  Shape shape(nd);
  bool identity = true;
  for (int i = 0; i < nd; ++i) {
    axes[i] = normalize_axis(axes[i], nd, "transpose");
    if (seen[axes[i]]) throw ShapeError("[transpose] repeated axis in permutation");
    seen[axes[i]] = true;
    shape[i] = a.shape()[axes[i]];
    identity = identity && axes[i] == i;
  }
  if (identity) return a;
  return make_node(std::move(shape), a.dtype(), a.device(),
                   std::make_shared<TransposePrim>(std::move(axes)), {a});
}

Tensor transpose(const Tensor& a, std::vector<int> axes) {
  if (axes.empty()) {
    axes.resize(a.ndim());
    for (int i = 0; i < a.ndim(); ++i) axes[i] = a.ndim() - 1 - i;
  }
  return permute(a, std::move(axes));
}

Tensor swapaxes(const Tensor& a, int axis1, int axis2) {
  int nd = a.ndim();
  std::vector<int> p(nd);
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[normalize_axis(axis1, nd, "swapaxes")], p[normalize_axis(axis2, nd, "swapaxes")]);
  return permute(a, p);
}

Tensor moveaxis(const Tensor& a, int source, int destination) {
  int nd = a.ndim();
  int s = normalize_axis(source, nd, "moveaxis"), d = normalize_axis(destination, nd, "moveaxis");
  std::vector<int> p;
  for (int i = 0; i < nd; ++i)
    if (i != s) p.push_back(i);
  p.insert(p.begin() + d, s);
  return permute(a, p);
}

Tensor broadcast_to(const Tensor& a, const Shape& shape) {
  if (a.shape() == shape) return a;
  if (shape.size() < a.shape().size())
    throw ShapeError("[broadcast_to] cannot broadcast " + shape_str(a.shape()) + " to " + shape_str(shape));
  Shape r;
  try {
    r = broadcast_shapes(a.shape(), shape);
  } catch (const ShapeError&) {
    r.clear();
  }
  if (r != shape)
    throw ShapeError("[broadcast_to] cannot broadcast " + shape_str(a.shape()) + " to " + shape_str(shape));
  static const auto prim = std::make_shared<BroadcastPrim>();
  return make_node(shape, a.dtype(), a.device(), prim, {a});
}

std::vector<Tensor> broadcast_tensors(const std::vector<Tensor>& xs) {
  Shape s;
  for (const auto& x : xs) s = broadcast_shapes(s, x.shape());
  std::vector<Tensor> r;
  for (const auto& x : xs) r.push_back(broadcast_to(x, s));
  return r;
}

Tensor expand_dims(const Tensor& a, int axis) {
  int nd = a.ndim() + 1;
  int ax = normalize_axis(axis, nd, "expand_dims");
  Shape s = a.shape();
  s.insert(s.begin() + ax, 1);
  return reshape(a, s);
}

Tensor squeeze(const Tensor& a, std::optional<Axes> axes) {
  Shape s;
  if (!axes) {
    for (auto d : a.shape())
      if (d != 1) s.push_back(d);
  } else {
    auto ax = detail::normalize_axes(*axes, a.ndim(), "squeeze");
    if (axes->empty()) return a;
    for (int i = 0; i < a.ndim(); ++i) {
      bool drop = std::find(ax.begin(), ax.end(), i) != ax.end();
      if (drop && a.shape()[i] != 1)
        throw ShapeError("[squeeze] cannot squeeze axis " + std::to_string(i) + " of size " +
                         std::to_string(a.shape()[i]));
      if (!drop) s.push_back(a.shape()[i]);
    }
  }
  return reshape(a, s);
}

namespace {
// Resolves a Python-style slice against a dimension: (start, count, step).
struct Resolved {
  int64_t start, count, step;
};
Resolved resolve_slice(const Slice& s, int64_t dim) {
  if (s.step == 0) throw ValueError("[index] slice step cannot be zero");
  int64_t step = s.step;
  int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? dim : dim - 1;
  auto clampi = [&](std::optional<int64_t> v, int64_t def) {
    if (!v) return def;
    int64_t x = *v < 0 ? *v + dim : *v;
    return std::clamp(x, lo, hi);
  };
  int64_t start = clampi(s.start, step > 0 ? 0 : dim - 1);
  int64_t stop = clampi(s.stop, step > 0 ? dim : -1);
  int64_t count = step > 0 ? (stop - start + step - 1) / step : (start - stop + (-step) - 1) / (-step);
  count = std::max<int64_t>(count, 0);
  return {count > 0 ? start : 0, count, step};
}

Tensor strided_slice(const Tensor& a, const std::vector<int64_t>& start,
                     const std::vector<int64_t>& count, const std::vector<int64_t>& step) {
  bool identity = true;
  for (int i = 0; i < a.ndim(); ++i)
    identity = identity && start[i] == 0 && step[i] == 1 && count[i] == a.shape()[i];
  if (identity) return a;
  return make_node(Shape(count.begin(), count.end()), a.dtype(), a.device(),
                   std::make_shared<SlicePrim>(start, step), {a});
}
}  // namespace

Tensor slice(const Tensor& a, int axis, std::optional<int64_t> start, std::optional<int64_t> stop,
             int64_t step) {
  int ax = normalize_axis(axis, a.ndim(), "slice");
  std::vector<int64_t> st(a.ndim(), 0), cnt(a.shape()), stp(a.ndim(), 1);
  auto r = resolve_slice(Slice(start, stop, step), a.shape()[ax]);
  st[ax] = r.start;
  cnt[ax] = r.count;
  stp[ax] = r.step;
  return strided_slice(a, st, cnt, stp);
}

Tensor index(const Tensor& a, const std::vector<Index>& idx) {
  int consumed = 0, ellipses = 0;
  for (const auto& i : idx) {
    if (std::holds_alternative<int64_t>(i) || std::holds_alternative<Slice>(i)) ++consumed;
    if (std::holds_alternative<Ellipsis>(i)) ++ellipses;
  }
  if (ellipses > 1) throw ShapeError("[index] an index can only have a single ellipsis");
  if (consumed > a.ndim())
    throw ShapeError("[index] too many indices for a " + std::to_string(a.ndim()) + "-d tensor: " +
                     std::to_string(consumed));
  std::vector<int64_t> st, cnt, stp;
  Shape final_shape;
  int axis = 0;
  auto keep_axis = [&](int ax) {
    st.push_back(0);
    cnt.push_back(a.shape()[ax]);
    stp.push_back(1);
    final_shape.push_back(a.shape()[ax]);
  };
  for (const auto& i : idx) {
    if (auto* k = std::get_if<int64_t>(&i)) {
      int64_t dim = a.shape()[axis];
      int64_t v = *k < 0 ? *k + dim : *k;
      if (v < 0 || v >= dim)
        throw ShapeError("[index] index " + std::to_string(*k) + " is out of bounds for axis " +
                         std::to_string(axis) + " with size " + std::to_string(dim));
      st.push_back(v);
      cnt.push_back(1);
      stp.push_back(1);
      ++axis;
    } else if (auto* s = std::get_if<Slice>(&i)) {
      auto r = resolve_slice(*s, a.shape()[axis]);
      st.push_back(r.start);
      cnt.push_back(r.count);
      stp.push_back(r.step);
      final_shape.push_back(r.count);
      ++axis;
    } else if (std::holds_alternative<NewAxis>(i)) {
      final_shape.push_back(1);
    } else {
      int fill = a.ndim() - consumed;
      for (int k = 0; k < fill; ++k) keep_axis(axis++);
    }
  }
  while (axis < a.ndim()) keep_axis(axis++);
  Tensor r = strided_slice(a, st, cnt, stp);
  return final_shape == r.shape() ? r : reshape(r, final_shape);
}

Tensor flip(const Tensor& a, std::optional<Axes> axes) {
  std::vector<int> ax = axes ? detail::normalize_axes(*axes, a.ndim(), "flip")
                             : detail::normalize_axes({}, a.ndim(), "flip");
  std::vector<int64_t> st(a.ndim(), 0), cnt(a.shape()), stp(a.ndim(), 1);
  for (int i : ax) {
    if (a.shape()[i] == 0) continue;
    st[i] = a.shape()[i] - 1;
    stp[i] = -1;
  }
  return strided_slice(a, st, cnt, stp);
}

namespace {
// Checks bounds and wraps negative indices. The check evaluates the indices and
// reads them on the host (for device tensors: one device->host copy of the
// indices, the one host sync of take/take_along_axis).
Tensor checked_indices(const Tensor& indices, int64_t dim, const char* op) {
  if (!is_integral(indices.dtype()))
    throw DTypeError(std::string("[") + op + "] indices must be integers, got " +
                     std::string(dtype_name(indices.dtype())));
  Tensor idx = astype(indices, int64);
  // Validate now: indexing with out-of-range values must not read out of bounds.
  idx.eval();
  auto v = idx.to_vector<int64_t>();
  for (auto x : v)
    if (x < -dim || x >= dim)
      throw ShapeError(std::string("[") + op + "] index " + std::to_string(x) +
                       " is out of bounds for axis with size " + std::to_string(dim));
  return where(idx < 0, idx + dim, idx);
}
}  // namespace

Tensor take(const Tensor& a, const Tensor& indices, std::optional<int> axis) {
  Tensor src = axis ? a : flatten(a);
  int ax = axis ? normalize_axis(*axis, a.ndim(), "take") : 0;
  if (!axis && src.size() == 0 && indices.size() > 0)
    throw ShapeError("[take] cannot take from an empty tensor");
  Tensor idx = checked_indices(indices, src.shape()[ax], "take");
  Shape out(src.shape().begin(), src.shape().begin() + ax);
  out.insert(out.end(), idx.shape().begin(), idx.shape().end());
  out.insert(out.end(), src.shape().begin() + ax + 1, src.shape().end());
  return make_node(std::move(out), a.dtype(), a.device(),
                   std::make_shared<TakePrim>(OpCode::Take, ax), {src, idx});
}

namespace {
Tensor put_impl(OpCode op, const Tensor& a, const Tensor& indices, const Tensor& values,
                bool check = true) {
  const char* name = op == OpCode::Put ? "put" : "put_add";
  Device dev = detail::common_device({a, values}, name);
  if (a.size() == 0 && indices.size() > 0)
    throw ShapeError(std::string("[") + name + "] cannot put into an empty tensor");
  Tensor idx = reshape(check ? checked_indices(indices, a.size(), name) : indices, {-1});
  if (!(idx.device() == dev)) idx = to_device(idx, dev);
  Tensor v;
  try {
    v = broadcast_to(astype(values, a.dtype()), indices.shape());
  } catch (const ShapeError&) {
    throw ShapeError(std::string("[") + name + "] values of shape " + shape_str(values.shape()) +
                     " do not broadcast to the indices' shape " + shape_str(indices.shape()));
  }
  v = reshape(v, {-1});
  if (!(v.device() == dev)) v = to_device(v, dev);
  return make_node(a.shape(), a.dtype(), dev, std::make_shared<PutPrim>(op), {a, idx, v});
}
}  // namespace

namespace detail {
Tensor put_unchecked(OpCode op, const Tensor& a, const Tensor& flat_idx, const Tensor& values) {
  return put_impl(op, a, flat_idx, values, false);
}

Tensor take_flat_unchecked(const Tensor& a, const Tensor& flat_idx) {
  return make_node(flat_idx.shape(), a.dtype(), a.device(),
                   std::make_shared<TakePrim>(OpCode::Take, 0), {flatten(a), flat_idx});
}
}  // namespace detail

Tensor put(const Tensor& a, const Tensor& indices, const Tensor& values) {
  return put_impl(OpCode::Put, a, indices, values);
}

Tensor put_add(const Tensor& a, const Tensor& indices, const Tensor& values) {
  return put_impl(OpCode::PutAdd, a, indices, values);
}

Tensor take_along_axis(const Tensor& a, const Tensor& indices, int axis) {
  int ax = normalize_axis(axis, a.ndim(), "take_along_axis");
  if (indices.ndim() != a.ndim())
    throw ShapeError("[take_along_axis] indices must have the same rank as the tensor (" +
                     std::to_string(a.ndim()) + "), got " + std::to_string(indices.ndim()));
  Tensor idx = checked_indices(indices, a.shape()[ax], "take_along_axis");
  Shape target = a.shape();
  target[ax] = idx.shape()[ax];
  Shape bshape;
  try {
    bshape = broadcast_shapes(idx.shape(), target);
  } catch (const ShapeError&) {
    throw ShapeError("[take_along_axis] indices shape " + shape_str(idx.shape()) +
                     " does not broadcast against " + shape_str(a.shape()));
  }
  idx = broadcast_to(idx, bshape);
  Shape src_shape = bshape;
  src_shape[ax] = a.shape()[ax];
  Tensor src = broadcast_to(a, src_shape);
  return make_node(bshape, a.dtype(), a.device(),
                   std::make_shared<TakePrim>(OpCode::TakeAlongAxis, ax), {src, idx});
}

Tensor gather(const Tensor& a, const Tensor& indices, int axis) {
  return take_along_axis(a, indices, axis);
}

Tensor concatenate(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) throw ValueError("[concatenate] need at least one tensor");
  Device dev = detail::common_device(xs, "concatenate");
  int nd = xs[0].ndim();
  if (nd == 0) throw ShapeError("[concatenate] zero-dimensional tensors cannot be concatenated");
  int ax = normalize_axis(axis, nd, "concatenate");
  DType dt = xs[0].dtype();
  Shape shape = xs[0].shape();
  shape[ax] = 0;
  for (const auto& x : xs) {
    if (x.ndim() != nd)
      throw ShapeError("[concatenate] all tensors must have the same rank: " +
                       shape_str(xs[0].shape()) + " vs " + shape_str(x.shape()));
    for (int i = 0; i < nd; ++i)
      if (i != ax && x.shape()[i] != xs[0].shape()[i])
        throw ShapeError("[concatenate] shapes " + shape_str(xs[0].shape()) + " and " +
                         shape_str(x.shape()) + " differ outside axis " + std::to_string(ax));
    shape[ax] += x.shape()[ax];
    dt = promote_types(dt, x.dtype());
  }
  if (xs.size() == 1) return astype(xs[0], dt);
  std::vector<Tensor> ins;
  for (const auto& x : xs) ins.push_back(detail::cast_to(x, dt, dev));
  return make_node(std::move(shape), dt, dev, std::make_shared<ConcatenatePrim>(ax), std::move(ins));
}

Tensor stack(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) throw ValueError("[stack] need at least one tensor");
  int ax = normalize_axis(axis, xs[0].ndim() + 1, "stack");
  std::vector<Tensor> e;
  for (const auto& x : xs) {
    if (x.shape() != xs[0].shape())
      throw ShapeError("[stack] all tensors must have the same shape: " + shape_str(xs[0].shape()) +
                       " vs " + shape_str(x.shape()));
    e.push_back(expand_dims(x, ax));
  }
  return concatenate(e, ax);
}

std::vector<Tensor> split(const Tensor& a, int64_t sections, int axis) {
  int ax = normalize_axis(axis, a.ndim(), "split");
  if (sections <= 0) throw ValueError("[split] number of sections must be positive");
  int64_t dim = a.shape()[ax];
  if (dim % sections != 0)
    throw ShapeError("[split] axis of size " + std::to_string(dim) + " does not divide into " +
                     std::to_string(sections) + " equal sections");
  std::vector<int64_t> at;
  for (int64_t i = 1; i < sections; ++i) at.push_back(i * (dim / sections));
  return split(a, at, axis);
}

std::vector<Tensor> split(const Tensor& a, const std::vector<int64_t>& indices, int axis) {
  int ax = normalize_axis(axis, a.ndim(), "split");
  int64_t dim = a.shape()[ax];
  std::vector<Tensor> out;
  int64_t prev = 0;
  for (size_t i = 0; i <= indices.size(); ++i) {
    int64_t end = i < indices.size() ? std::clamp<int64_t>(indices[i], 0, dim) : dim;
    out.push_back(slice(a, ax, prev, std::max(prev, end)));
    prev = std::max(prev, end);
  }
  return out;
}

Tensor pad(const Tensor& a, const std::vector<std::pair<int64_t, int64_t>>& pad_width,
           PadMode mode, Scalar value) {
  int nd = a.ndim();
  std::vector<std::pair<int64_t, int64_t>> w = pad_width;
  if (w.size() == 1 && nd != 1) w.assign(nd, pad_width[0]);
  if (static_cast<int>(w.size()) != nd)
    throw ShapeError("[pad] pad_width has " + std::to_string(pad_width.size()) +
                     " entries for a " + std::to_string(nd) + "-d tensor");
  for (auto [b, e] : w)
    if (b < 0 || e < 0) throw ValueError("[pad] pad widths must be non-negative");
  if (mode == PadMode::Constant) {
    Shape s = a.shape();
    std::vector<int64_t> before;
    for (int i = 0; i < nd; ++i) {
      s[i] += w[i].first + w[i].second;
      before.push_back(w[i].first);
    }
    return make_node(std::move(s), a.dtype(), a.device(),
                     std::make_shared<PadPrim>(std::move(before), value), {a});
  }
  // Edge/reflect: build each axis from slices of the input.
  Tensor r = a;
  for (int i = 0; i < nd; ++i) {
    auto [b, e] = w[i];
    if (b == 0 && e == 0) continue;
    int64_t n = r.shape()[i];
    if (n == 0) throw ShapeError("[pad] cannot pad an empty axis in edge/reflect mode");
    if (mode == PadMode::Reflect && (b >= n || e >= n))
      throw ShapeError("[pad] reflect padding of " + std::to_string(std::max(b, e)) +
                       " needs an axis longer than that, got " + std::to_string(n));
    std::vector<Tensor> parts;
    if (b > 0) {
      parts.push_back(mode == PadMode::Edge
                          ? broadcast_to(slice(r, i, 0, 1), [&] { Shape s = r.shape(); s[i] = b; return s; }())
                          : flip(slice(r, i, 1, b + 1), Axes{i}));
    }
    parts.push_back(r);
    if (e > 0) {
      parts.push_back(mode == PadMode::Edge
                          ? broadcast_to(slice(r, i, n - 1, n), [&] { Shape s = r.shape(); s[i] = e; return s; }())
                          : flip(slice(r, i, n - 1 - e, n - 1), Axes{i}));
    }
    r = concatenate(parts, i);
  }
  return r;
}

namespace {
Tensor tri_mask(const Tensor& a, int64_t k, bool lower, const char* op) {
  if (a.ndim() < 2) throw ShapeError(std::string("[") + op + "] input must be at least 2-d");
  int64_t n = a.shape()[a.ndim() - 2], m = a.shape()[a.ndim() - 1];
  Tensor i = reshape(arange(int64_t{0}, n, int64_t{1}, int64, a.device()), {n, 1});
  Tensor j = reshape(arange(int64_t{0}, m, int64_t{1}, int64, a.device()), {1, m});
  Tensor d = j - i;
  Tensor mask = lower ? less_equal(d, Tensor(k)) : greater_equal(d, Tensor(k));
  return where(mask, a, zeros({}, a.dtype(), a.device()));
}
}  // namespace

Tensor tril(const Tensor& a, int64_t k) { return tri_mask(a, k, true, "tril"); }
Tensor triu(const Tensor& a, int64_t k) { return tri_mask(a, k, false, "triu"); }

}  // namespace tmath
