// Module-level functions: creation, elementwise, reductions, shape ops, matmul
// class, nn, evaluation control, memory and precision.
#include "common.h"

namespace tmpy {

using namespace nb::literals;

namespace {

using UnFn = Tensor (*)(const Tensor&);
using BinFn = Tensor (*)(const Tensor&, const Tensor&);
using RedFn = Tensor (*)(const Tensor&, const tmath::Axes&, bool);

// Unary functions take arrays (scalars become strongly typed 0-d tensors).
Tensor arg_array(nb::handle h, const char* op) {
  if (Py_TYPE(h.ptr()) == g_tensor_type) return tensor_ref(h);
  return asarray(h, std::nullopt, std::nullopt, std::nullopt, op);
}

// A signature string for nb::sig, kept alive for the module's lifetime.
const char* signature(std::string s) { return (new std::string(std::move(s)))->c_str(); }

// Elementwise functions take their arrays positionally only (as the Array API
// specifies). The arguments carry no nb::arg names, which also selects nanobind's
// cheapest call path; nb::sig gives them their names in docstrings and stubs.
template <UnFn F>
void def_unary(nb::module_& m, const char* name, const char* doc = nullptr) {
  m.def(
      name,
      [name](nb::handle x) {
        Tensor t = arg_array(x, name);
        return nogil_unless(small_input(t), [&] { return F(t); });
      },
      nb::sig(signature(std::string("def ") + name + "(x: object, /) -> Tensor")), doc ? doc : "");
}

// Binary functions: Python scalars are weakly typed, as with operators.
template <BinFn F>
void def_binary(nb::module_& m, const char* name) {
  m.def(
      name,
      [name](nb::handle a, nb::handle b) {
        Tensor ta = to_tensor(a, name), tb = to_tensor(b, name);
        return nogil_unless(small_binary(ta, tb), [&] { return F(ta, tb); });
      },
      nb::sig(signature(std::string("def ") + name + "(x1: object, x2: object, /) -> Tensor")));
}

template <RedFn F>
void def_reduce(nb::module_& m, const char* name) {
  m.def(
      name,
      [name](nb::handle x, nb::handle axis, bool keepdims, nb::handle dtype) {
        Tensor t = arg_array(x, name);
        auto axes = to_axes(axis, name);
        auto dt = to_dtype(dtype, name);
        return nogil_unless(small_input(t), [&] {
          Tensor in = dt ? tmath::astype(t, *dt) : t;
          Tensor r = F(in, axes, keepdims);
          return dt && r.dtype() != *dt ? tmath::astype(r, *dt) : r;
        });
      },
      "x"_a, nb::kw_only(), "axis"_a = nb::none(), "keepdims"_a = false, "dtype"_a = nb::none());
}


nb::dict stats_dict(const tmath::MemoryStats& s) {
  nb::dict d;
  d["active_bytes"] = s.active_bytes;
  d["peak_bytes"] = s.peak_bytes;
  d["cached_bytes"] = s.cached_bytes;
  d["requested_bytes"] = s.requested_bytes;
  d["allocations"] = s.allocations;
  d["cache_hits"] = s.cache_hits;
  d["cache_misses"] = s.cache_misses;
  d["oom_retries"] = s.oom_retries;
  d["limit_bytes"] = s.limit_bytes;
  d["host_to_device_copies"] = s.host_to_device_copies;
  d["host_to_device_bytes"] = s.host_to_device_bytes;
  d["device_to_host_copies"] = s.device_to_host_copies;
  d["device_to_host_bytes"] = s.device_to_host_bytes;
  return d;
}

struct EagerCtx {
  explicit EagerCtx(bool o) : on(o) {}
  bool on;
  std::unique_ptr<tmath::EagerScope> scope;
};
struct AutocastCtx {
  DType dt;
  bool enabled;
  std::unique_ptr<tmath::AutocastScope> scope;
};

}  // namespace

void bind_ops(nb::module_& m) {
  // ---- creation ----------------------------------------------------------------
  m.def(
      "asarray",
      [](nb::handle obj, nb::handle dtype, nb::handle device, nb::handle copy) {
        std::optional<bool> c;
        if (!copy.is_none()) c = nb::cast<bool>(copy);
        return asarray(obj, to_dtype(dtype, "asarray"), c, to_device(device, "asarray"), "asarray");
      },
      "obj"_a, nb::kw_only(), "dtype"_a = nb::none(), "device"_a = nb::none(), "copy"_a = nb::none(),
      "A tensor from a tensor, scalar, nested sequence or array (DLPack/buffer protocol/__array__). "
      "copy=None shares CPU memory with the source where it can.");
  m.def(
      "array",
      [](nb::handle obj, nb::handle dtype, bool copy, nb::handle device) {
        return asarray(obj, to_dtype(dtype, "array"), copy, to_device(device, "array"), "array");
      },
      "obj"_a, "dtype"_a = nb::none(), nb::kw_only(), "copy"_a = true, "device"_a = nb::none());
  m.def(
      "from_dlpack",
      [](nb::handle x, nb::handle device, nb::handle copy) {
        if (is_tensor(x)) return tensor_ref(x);
        auto t = import_array(x, "from_dlpack");
        if (!t)
          throw nb::type_error(("[from_dlpack] object of type '" + std::string(nb::type_name(x.type()).c_str()) +
                                "' has neither __dlpack__ nor the buffer protocol")
                                   .c_str());
        std::optional<bool> c;
        if (!copy.is_none()) c = nb::cast<bool>(copy);
        auto dev = to_device(device, "from_dlpack");
        if ((c && *c) || (dev && !(*dev == t->device()))) {
          Tensor src = *t;
          return nogil([&] {
            Tensor r = dev && !(*dev == src.device()) ? tmath::to_device(src, *dev) : tmath::copy(src);
            return r.eval();
          });
        }
        return *t;
      },
      "x"_a, nb::kw_only(), "device"_a = nb::none(), "copy"_a = nb::none(),
      "Imports a DLPack producer (NumPy, PyTorch, CuPy, ...) without a copy, on the CPU or a CUDA device. "
      "A CUDA producer is asked (stream=) to order the engine's stream after its pending work.");

  m.def(
      "zeros",
      [](nb::handle shape, nb::handle dtype, nb::handle device) {
        return tmath::zeros(to_shape(shape, "zeros"), to_dtype_or(dtype, tmath::float32, "zeros"),
                            to_device_or_default(device, "zeros"));
      },
      "shape"_a, nb::kw_only(), "dtype"_a = nb::none(), "device"_a = nb::none());
  m.def(
      "ones",
      [](nb::handle shape, nb::handle dtype, nb::handle device) {
        return tmath::ones(to_shape(shape, "ones"), to_dtype_or(dtype, tmath::float32, "ones"),
                           to_device_or_default(device, "ones"));
      },
      "shape"_a, nb::kw_only(), "dtype"_a = nb::none(), "device"_a = nb::none());
  m.def(
      "empty",
      [](nb::handle shape, nb::handle dtype, nb::handle device) {
        return tmath::empty(to_shape(shape, "empty"), to_dtype_or(dtype, tmath::float32, "empty"),
                            to_device_or_default(device, "empty"));
      },
      "shape"_a, nb::kw_only(), "dtype"_a = nb::none(), "device"_a = nb::none());
  m.def(
      "full",
      [](nb::handle shape, nb::handle value, nb::handle dtype, nb::handle device) {
        return tmath::full(to_shape(shape, "full"), to_scalar(value, "full"), to_dtype(dtype, "full"),
                           to_device_or_default(device, "full"));
      },
      "shape"_a, "fill_value"_a, nb::kw_only(), "dtype"_a = nb::none(), "device"_a = nb::none());
  auto like = [&m](const char* name, int which) {
    m.def(
        name,
        [name, which](nb::handle x, nb::handle dtype, nb::handle device) {
          Tensor t = arg_array(x, name);
          DType dt = to_dtype_or(dtype, t.dtype(), name);
          auto dev = to_device(device, name);
          Device d = dev ? *dev : t.device();
          if (which == 0) return tmath::zeros(t.shape(), dt, d);
          if (which == 1) return tmath::ones(t.shape(), dt, d);
          return tmath::empty(t.shape(), dt, d);
        },
        "x"_a, nb::kw_only(), "dtype"_a = nb::none(), "device"_a = nb::none());
  };
  like("zeros_like", 0);
  like("ones_like", 1);
  like("empty_like", 2);
  m.def(
      "full_like",
      [](nb::handle x, nb::handle value, nb::handle dtype, nb::handle device) {
        Tensor t = arg_array(x, "full_like");
        DType dt = to_dtype_or(dtype, t.dtype(), "full_like");
        auto dev = to_device(device, "full_like");
        return tmath::full(t.shape(), to_scalar(value, "full_like"), dt, dev ? *dev : t.device());
      },
      "x"_a, "fill_value"_a, nb::kw_only(), "dtype"_a = nb::none(), "device"_a = nb::none());
  m.def(
      "arange",
      [](nb::handle start, nb::handle stop, nb::handle step, nb::handle dtype, nb::handle device) {
        auto dt = to_dtype(dtype, "arange");
        Device d = to_device_or_default(device, "arange");
        if (stop.is_none()) return tmath::arange(tmath::Scalar(int64_t{0}), to_scalar(start, "arange"),
                                                 to_scalar(step, "arange"), dt, d);
        return tmath::arange(to_scalar(start, "arange"), to_scalar(stop, "arange"), to_scalar(step, "arange"), dt, d);
      },
      "start"_a, "stop"_a = nb::none(), "step"_a = 1, nb::kw_only(), "dtype"_a = nb::none(),
      "device"_a = nb::none());
  m.def(
      "linspace",
      [](double start, double stop, int64_t num, nb::handle dtype, nb::handle device, bool endpoint) {
        return tmath::linspace(start, stop, num, endpoint, to_dtype_or(dtype, tmath::float32, "linspace"),
                               to_device_or_default(device, "linspace"));
      },
      "start"_a, "stop"_a, "num"_a, nb::kw_only(), "dtype"_a = nb::none(), "device"_a = nb::none(),
      "endpoint"_a = true);
  m.def(
      "eye",
      [](int64_t n, std::optional<int64_t> m_, int64_t k, nb::handle dtype, nb::handle device) {
        return tmath::eye(n, m_, k, to_dtype_or(dtype, tmath::float32, "eye"), to_device_or_default(device, "eye"));
      },
      "n_rows"_a, "n_cols"_a = nb::none(), nb::kw_only(), "k"_a = 0, "dtype"_a = nb::none(),
      "device"_a = nb::none());

  // ---- elementwise unary ------------------------------------------------------------
  def_unary<tmath::neg>(m, "negative");
  def_unary<tmath::abs>(m, "abs");
  def_unary<tmath::sign>(m, "sign");
  def_unary<tmath::exp>(m, "exp");
  def_unary<tmath::expm1>(m, "expm1");
  def_unary<tmath::log>(m, "log");
  def_unary<tmath::log1p>(m, "log1p");
  def_unary<tmath::log2>(m, "log2");
  def_unary<tmath::log10>(m, "log10");
  def_unary<tmath::sqrt>(m, "sqrt");
  def_unary<tmath::rsqrt>(m, "rsqrt");
  def_unary<tmath::square>(m, "square");
  def_unary<tmath::reciprocal>(m, "reciprocal");
  def_unary<tmath::sin>(m, "sin");
  def_unary<tmath::cos>(m, "cos");
  def_unary<tmath::tan>(m, "tan");
  def_unary<tmath::asin>(m, "asin");
  def_unary<tmath::acos>(m, "acos");
  def_unary<tmath::atan>(m, "atan");
  def_unary<tmath::asinh>(m, "asinh");
  def_unary<tmath::acosh>(m, "acosh");
  def_unary<tmath::atanh>(m, "atanh");
  def_unary<tmath::sinh>(m, "sinh");
  def_unary<tmath::cosh>(m, "cosh");
  def_unary<tmath::tanh>(m, "tanh");
  def_unary<tmath::sigmoid>(m, "sigmoid");
  def_unary<tmath::relu>(m, "relu");
  def_unary<tmath::silu>(m, "silu");
  def_unary<tmath::erf>(m, "erf");
  def_unary<tmath::erfinv>(m, "erfinv");
  def_unary<tmath::floor>(m, "floor");
  def_unary<tmath::ceil>(m, "ceil");
  def_unary<tmath::round>(m, "round");
  def_unary<tmath::isnan>(m, "isnan");
  def_unary<tmath::isinf>(m, "isinf");
  def_unary<tmath::isfinite>(m, "isfinite");
  def_unary<tmath::logical_not>(m, "logical_not");
  def_unary<tmath::real>(m, "real");
  def_unary<tmath::imag>(m, "imag");
  def_unary<tmath::conj>(m, "conj");
  def_unary<tmath::bitwise_invert>(m, "bitwise_invert");
  m.def(
      "gelu",
      [](nb::handle x, bool approximate) {
        Tensor t = arg_array(x, "gelu");
        return nogil([&] { return tmath::gelu(t, approximate); });
      },
      "x"_a, nb::kw_only(), "approximate"_a = false);
  m.def(
      "gelu_grad",
      [](nb::handle g, nb::handle x, bool approximate) {
        Tensor tg = to_tensor(g, "gelu_grad"), tx = to_tensor(x, "gelu_grad");
        return nogil([&] { return tmath::gelu_grad(tg, tx, approximate); });
      },
      "g"_a, "x"_a, nb::kw_only(), "approximate"_a = false,
      "g * gelu'(x) as one elementwise op (the gradient gelu's vjp uses).");

  // ---- elementwise binary --------------------------------------------------------------
  def_binary<tmath::add>(m, "add");
  def_binary<tmath::subtract>(m, "subtract");
  def_binary<tmath::multiply>(m, "multiply");
  def_binary<tmath::divide>(m, "divide");
  def_binary<tmath::floor_divide>(m, "floor_divide");
  def_binary<tmath::remainder>(m, "remainder");
  def_binary<tmath::power>(m, "pow");
  def_binary<tmath::maximum>(m, "maximum");
  def_binary<tmath::minimum>(m, "minimum");
  def_binary<tmath::atan2>(m, "atan2");
  def_binary<tmath::hypot>(m, "hypot");
  def_binary<tmath::nextafter>(m, "nextafter");
  def_binary<tmath::equal>(m, "equal");
  def_binary<tmath::not_equal>(m, "not_equal");
  def_binary<tmath::less>(m, "less");
  def_binary<tmath::less_equal>(m, "less_equal");
  def_binary<tmath::greater>(m, "greater");
  def_binary<tmath::greater_equal>(m, "greater_equal");
  def_binary<tmath::logical_and>(m, "logical_and");
  def_binary<tmath::logical_or>(m, "logical_or");
  def_binary<tmath::logical_xor>(m, "logical_xor");
  def_binary<tmath::bitwise_and>(m, "bitwise_and");
  def_binary<tmath::bitwise_or>(m, "bitwise_or");
  def_binary<tmath::bitwise_xor>(m, "bitwise_xor");
  def_binary<tmath::bitwise_left_shift>(m, "bitwise_left_shift");
  def_binary<tmath::bitwise_right_shift>(m, "bitwise_right_shift");
  m.def(
      "where",
      [](nb::handle c, nb::handle a, nb::handle b) {
        Tensor tc = to_tensor(c, "where"), ta = to_tensor(a, "where"), tb = to_tensor(b, "where");
        return nogil([&] { return tmath::where(tc, ta, tb); });
      },
      "condition"_a, "x1"_a, "x2"_a);
  m.def(
      "clip",
      [](nb::handle x, nb::handle lo, nb::handle hi) {
        Tensor t = arg_array(x, "clip");
        std::optional<Tensor> l, h;
        if (!lo.is_none()) l = to_tensor(lo, "clip");
        if (!hi.is_none()) h = to_tensor(hi, "clip");
        return nogil([&] { return tmath::clip(t, l, h); });
      },
      "x"_a, "min"_a = nb::none(), "max"_a = nb::none());

  // ---- reductions ---------------------------------------------------------------------
  def_reduce<tmath::sum>(m, "sum");
  def_reduce<tmath::prod>(m, "prod");
  def_reduce<tmath::mean>(m, "mean");
  def_reduce<tmath::max>(m, "max");
  def_reduce<tmath::min>(m, "min");
  def_reduce<tmath::any>(m, "any");
  def_reduce<tmath::all>(m, "all");
  def_reduce<tmath::logsumexp>(m, "logsumexp");
  for (int which = 0; which < 2; ++which) {
    const char* name = which == 0 ? "var" : "std";
    m.def(
        name,
        [name, which](nb::handle x, nb::handle axis, double correction, bool keepdims) {
          Tensor t = arg_array(x, name);
          auto axes = to_axes(axis, name);
          return nogil([&] {
            return which == 0 ? tmath::var(t, axes, correction, keepdims) : tmath::std(t, axes, correction, keepdims);
          });
        },
        "x"_a, nb::kw_only(), "axis"_a = nb::none(), "correction"_a = 0.0, "keepdims"_a = false);
  }
  for (int which = 0; which < 2; ++which) {
    const char* name = which == 0 ? "argmax" : "argmin";
    m.def(
        name,
        [name, which](nb::handle x, std::optional<int> axis, bool keepdims) {
          Tensor t = arg_array(x, name);
          return nogil([&] { return which == 0 ? tmath::argmax(t, axis, keepdims) : tmath::argmin(t, axis, keepdims); });
        },
        "x"_a, nb::kw_only(), "axis"_a = nb::none(), "keepdims"_a = false);
  }
  for (int which = 0; which < 2; ++which) {
    const char* name = which == 0 ? "cumulative_sum" : "cumulative_prod";
    m.def(
        name,
        [name, which](nb::handle x, std::optional<int> axis, nb::handle dtype) {
          Tensor t = arg_array(x, name);
          auto dt = to_dtype(dtype, name);
          return nogil([&] {
            Tensor in = dt ? tmath::astype(t, *dt) : t;
            int ax = 0;
            if (axis) {
              ax = *axis;
            } else if (in.ndim() != 1) {
              in = tmath::flatten(in);
            }
            Tensor r = which == 0 ? tmath::cumsum(in, ax) : tmath::cumprod(in, ax);
            // An explicit dtype is the result's (NumPy): the int64/uint64 scan wraps back.
            return dt && r.dtype() != *dt ? tmath::astype(r, *dt) : r;
          });
        },
        "x"_a, nb::kw_only(), "axis"_a = nb::none(), "dtype"_a = nb::none());
  }

  // ---- shape ops ------------------------------------------------------------------------
  m.def(
      "reshape",
      [](nb::handle x, nb::handle shape, std::optional<bool> copy) {
        Tensor t = arg_array(x, "reshape");
        Shape s = to_shape(shape, "reshape");
        // copy=False: refuse what cannot be a view (a strided evaluated input).
        if (copy && !*copy && t.is_evaluated() && !t.is_contiguous())
          throw_value_error("[reshape] copy=False but the input is not contiguous: the result would be a copy");
        return nogil([&] { return copy && *copy ? tmath::copy(tmath::reshape(t, s)) : tmath::reshape(t, s); });
      },
      "x"_a, "shape"_a, nb::kw_only(), "copy"_a = nb::none());
  m.def("flatten", [](nb::handle x) { return tmath::flatten(arg_array(x, "flatten")); }, "x"_a);
  m.def(
      "permute_dims",
      [](nb::handle x, std::vector<int> axes) { return tmath::permute(arg_array(x, "permute_dims"), axes); }, "x"_a,
      "axes"_a);
  m.def(
      "transpose",
      [](nb::handle x, std::optional<std::vector<int>> axes) {
        return tmath::transpose(arg_array(x, "transpose"), axes.value_or(std::vector<int>{}));
      },
      "x"_a, "axes"_a = nb::none());
  m.def(
      "swapaxes", [](nb::handle x, int a, int b) { return tmath::swapaxes(arg_array(x, "swapaxes"), a, b); }, "x"_a,
      "axis1"_a, "axis2"_a);
  m.def(
      "moveaxis", [](nb::handle x, int s, int d) { return tmath::moveaxis(arg_array(x, "moveaxis"), s, d); }, "x"_a,
      "source"_a, "destination"_a);
  m.def(
      "broadcast_to",
      [](nb::handle x, nb::handle shape) {
        return tmath::broadcast_to(arg_array(x, "broadcast_to"), to_shape(shape, "broadcast_to"));
      },
      "x"_a, "shape"_a);
  m.def(
      "broadcast_arrays",
      [](nb::args xs) {
        std::vector<Tensor> ts;
        for (nb::handle h : xs) ts.push_back(arg_array(h, "broadcast_arrays"));
        return tmath::broadcast_tensors(ts);
      },
      "arrays"_a);
  m.def(
      "broadcast_shapes",
      [](nb::args shapes) {
        Shape r;
        for (nb::handle h : shapes) r = tmath::broadcast_shapes(r, to_shape(h, "broadcast_shapes"));
        return nb::tuple(nb::cast(r));
      },
      "shapes"_a);
  m.def(
      "expand_dims", [](nb::handle x, int axis) { return tmath::expand_dims(arg_array(x, "expand_dims"), axis); },
      "x"_a, nb::kw_only(), "axis"_a = 0);
  m.def(
      "squeeze",
      [](nb::handle x, nb::handle axis) {
        Tensor t = arg_array(x, "squeeze");
        if (axis.is_none()) return tmath::squeeze(t);
        return tmath::squeeze(t, to_axes(axis, "squeeze"));
      },
      "x"_a, "axis"_a = nb::none());
  m.def(
      "flip",
      [](nb::handle x, nb::handle axis) {
        Tensor t = arg_array(x, "flip");
        if (axis.is_none()) return tmath::flip(t);
        return tmath::flip(t, to_axes(axis, "flip"));
      },
      "x"_a, nb::kw_only(), "axis"_a = nb::none());
  m.def(
      "take",
      [](nb::handle x, nb::handle idx, std::optional<int> axis) {
        Tensor t = arg_array(x, "take"), i = arg_array(idx, "take");
        return nogil([&] { return tmath::take(t, i, axis); });
      },
      "x"_a, "indices"_a, nb::kw_only(), "axis"_a = nb::none());
  m.def(
      "put",
      [](nb::handle x, nb::handle idx, nb::handle values) {
        Tensor t = arg_array(x, "put"), i = arg_array(idx, "put"), v = to_tensor(values, "put");
        return nogil([&] { return tmath::put(t, i, v); });
      },
      "x"_a, "indices"_a, "values"_a,
      "A copy of x with the elements at flat positions `indices` set to `values` (np.put as a function).");
  m.def(
      "put_add",
      [](nb::handle x, nb::handle idx, nb::handle values) {
        Tensor t = arg_array(x, "put_add"), i = arg_array(idx, "put_add"), v = to_tensor(values, "put_add");
        return nogil([&] { return tmath::put_add(t, i, v); });
      },
      "x"_a, "indices"_a, "values"_a,
      "A copy of x with `values` added at flat positions `indices`, repeats accumulating (np.add.at).");
  m.def(
      "take_along_axis",
      [](nb::handle x, nb::handle idx, int axis) {
        Tensor t = arg_array(x, "take_along_axis"), i = arg_array(idx, "take_along_axis");
        return nogil([&] { return tmath::take_along_axis(t, i, axis); });
      },
      "x"_a, "indices"_a, nb::kw_only(), "axis"_a = -1);
  m.def(
      "concat",
      [](nb::handle xs, std::optional<int> axis) {
        auto ts = to_tensor_list(xs, "concat");
        if (!axis)
          for (auto& t : ts) t = tmath::flatten(t);
        return nogil([&] { return tmath::concatenate(ts, axis.value_or(0)); });
      },
      "arrays"_a, nb::kw_only(), "axis"_a = 0);
  m.def(
      "stack",
      [](nb::handle xs, int axis) {
        auto ts = to_tensor_list(xs, "stack");
        return nogil([&] { return tmath::stack(ts, axis); });
      },
      "arrays"_a, nb::kw_only(), "axis"_a = 0);
  m.def(
      "split",
      [](nb::handle x, nb::handle sections, int axis) {
        Tensor t = arg_array(x, "split");
        if (PyLong_Check(sections.ptr())) return tmath::split(t, nb::cast<int64_t>(sections), axis);
        return tmath::split(t, nb::cast<std::vector<int64_t>>(sections), axis);
      },
      "x"_a, "indices_or_sections"_a, "axis"_a = 0);
  m.def(
      "pad",
      [](nb::handle x, nb::handle pad_width, const std::string& mode, nb::handle value) {
        Tensor t = arg_array(x, "pad");
        std::vector<std::pair<int64_t, int64_t>> pw;
        if (PyLong_Check(pad_width.ptr())) {
          int64_t p = nb::cast<int64_t>(pad_width);
          pw.push_back({p, p});
        } else {
          nb::sequence seq = nb::borrow<nb::sequence>(pad_width);
          bool pairs = nb::len(seq) > 0 && !PyLong_Check(seq[0].ptr());
          if (pairs) {
            for (nb::handle e : seq) pw.push_back(nb::cast<std::pair<int64_t, int64_t>>(e));
          } else {
            pw.push_back(nb::cast<std::pair<int64_t, int64_t>>(pad_width));
          }
        }
        tmath::PadMode pm;
        if (mode == "constant") pm = tmath::PadMode::Constant;
        else if (mode == "edge") pm = tmath::PadMode::Edge;
        else if (mode == "reflect") pm = tmath::PadMode::Reflect;
        else throw tmath::ValueError("[pad] unknown mode '" + mode + "' (constant, edge, reflect)");
        return tmath::pad(t, pw, pm, to_scalar(value, "pad"));
      },
      "x"_a, "pad_width"_a, "mode"_a = "constant", "constant_values"_a = 0);
  m.def("tril", [](nb::handle x, int64_t k) { return tmath::tril(arg_array(x, "tril"), k); }, "x"_a, nb::kw_only(),
        "k"_a = 0);
  m.def("triu", [](nb::handle x, int64_t k) { return tmath::triu(arg_array(x, "triu"), k); }, "x"_a, nb::kw_only(),
        "k"_a = 0);

  // ---- nn and matmul class -------------------------------------------------------------------
  m.def(
      "softmax",
      [](nb::handle x, int axis) {
        Tensor t = arg_array(x, "softmax");
        return nogil([&] { return tmath::softmax(t, axis); });
      },
      "x"_a, nb::kw_only(), "axis"_a = -1);
  m.def(
      "log_softmax",
      [](nb::handle x, int axis) {
        Tensor t = arg_array(x, "log_softmax");
        return nogil([&] { return tmath::log_softmax(t, axis); });
      },
      "x"_a, nb::kw_only(), "axis"_a = -1);
  m.def(
      "layer_norm",
      [](nb::handle x, nb::handle w, nb::handle b, double eps, int nd) {
        Tensor t = arg_array(x, "layer_norm");
        std::optional<Tensor> tw, tb;
        if (!w.is_none()) tw = arg_array(w, "layer_norm");
        if (!b.is_none()) tb = arg_array(b, "layer_norm");
        return nogil([&] { return tmath::layer_norm(t, tw, tb, eps, nd); });
      },
      "x"_a, "weight"_a = nb::none(), "bias"_a = nb::none(), nb::kw_only(), "eps"_a = 1e-5,
      "normalized_ndim"_a = 1);
  m.def(
      "matmul",
      [](nb::handle a, nb::handle b) {
        Tensor ta = arg_array(a, "matmul"), tb = arg_array(b, "matmul");
        return nogil_unless(small_matmul(ta, tb), [&] { return tmath::matmul(ta, tb); });
      },
      "x1"_a, "x2"_a);
  m.def(
      "tensordot",
      [](nb::handle a, nb::handle b, nb::handle axes) {
        Tensor ta = arg_array(a, "tensordot"), tb = arg_array(b, "tensordot");
        if (PyLong_Check(axes.ptr())) {
          int n = nb::cast<int>(axes);
          return nogil([&] { return tmath::tensordot(ta, tb, n); });
        }
        auto pr = nb::cast<std::pair<std::vector<int>, std::vector<int>>>(axes);
        return nogil([&] { return tmath::tensordot(ta, tb, pr.first, pr.second); });
      },
      "x1"_a, "x2"_a, nb::kw_only(), "axes"_a = 2);
  m.def(
      "einsum",
      [](const std::string& sub, nb::args ops) {
        std::vector<Tensor> ts;
        for (nb::handle h : ops) ts.push_back(arg_array(h, "einsum"));
        return nogil([&] { return tmath::einsum(sub, ts); });
      },
      "subscripts"_a, "operands"_a);
  m.def(
      "outer",
      [](nb::handle a, nb::handle b) { return tmath::outer(arg_array(a, "outer"), arg_array(b, "outer")); }, "x1"_a,
      "x2"_a);
  m.def(
      "dot", [](nb::handle a, nb::handle b) { return tmath::dot(arg_array(a, "dot"), arg_array(b, "dot")); }, "x1"_a,
      "x2"_a);

  // ---- evaluation control --------------------------------------------------------------------
  m.def(
      "eval",
      [](nb::args xs) {
        std::vector<Tensor> ts;
        for (nb::handle h : xs) {
          if (!is_tensor(h)) throw nb::type_error("[eval] arguments must be tensors");
          ts.push_back(tensor_ref(h));
        }
        nogil([&] { tmath::eval(ts); return 0; });
      },
      "tensors"_a, "Evaluates all given tensors in one pass over their shared graph.");
  m.def("eager_mode", &tmath::eager_mode, "Whether ops are evaluated when recorded (this thread).");
  m.def("set_eager_mode", &tmath::set_eager_mode, "on"_a);
  m.def("set_max_graph_depth", &tmath::set_max_graph_depth, "depth"_a);
  nb::class_<EagerCtx>(m, "_EagerScope")
      .def(nb::init<bool>(), "on"_a = true)
      .def("__enter__", [](EagerCtx& c) { c.scope = std::make_unique<tmath::EagerScope>(c.on); })
      .def("__exit__", [](EagerCtx& c, nb::args) { c.scope.reset(); });
  nb::class_<AutocastCtx>(m, "_AutocastScope")
      .def(
          "__init__",
          [](AutocastCtx* c, nb::handle dtype, bool enabled) {
            new (c) AutocastCtx{to_dtype_or(dtype, tmath::bfloat16, "autocast"), enabled, nullptr};
          },
          "dtype"_a = nb::none(), "enabled"_a = true)
      .def("__enter__", [](AutocastCtx& c) { c.scope = std::make_unique<tmath::AutocastScope>(c.dt, c.enabled); })
      .def("__exit__", [](AutocastCtx& c, nb::args) { c.scope.reset(); });
  m.def("autocast_dtype", []() -> nb::object {
    auto d = tmath::autocast_dtype();
    return d ? dtype_object(*d) : nb::none();
  });

  // ---- backends: registry, selection, fallbacks ------------------------------------------------
  m.def(
      "backends",
      []() {
        nb::list out;
        for (const auto& b : tmath::backends()) {
          const tmath::BackendInfo bi = b->info();
          nb::dict d;
          d["name"] = std::string(b->name());
          d["device_type"] = Device(b->device_type()).str();
          d["built"] = bi.built;
          d["available"] = b->available();
          d["reason"] = bi.reason;
          d["devices"] = bi.devices;
          nb::dict libs;
          for (const auto& [lib, ver] : bi.libraries) libs[lib.c_str()] = ver;
          d["libraries"] = libs;
          out.append(d);
        }
        return out;
      },
      "The registered backends in priority order, as dicts (name, device_type, built, available, "
      "reason, devices, libraries).");
  m.def(
      "load_backend", [](const std::string& name) { return nogil([&] { return tmath::load_backend(name); }); },
      "name"_a,
      "Loads a backend that loads on demand ('torch': LibTorch on the cpu device, and 'torch:cuda' "
      "where LibTorch has CUDA) and returns whether it is available.");
  m.def("backend_priority", &tmath::backend_priority, "Backend names in the order they are tried.");
  m.def("set_backend_priority", &tmath::set_backend_priority, "names"_a,
        "Tries these backends first, in this order ('torch' also ranks 'torch:cuda'); the others "
        "follow in registration order.");
  m.def(
      "fallback_policy",
      []() {
        switch (tmath::fallback_policy()) {
          case tmath::FallbackPolicy::Allow: return "allow";
          case tmath::FallbackPolicy::Warn: return "warn";
          case tmath::FallbackPolicy::Error: return "error";
        }
        return "warn";
      },
      "What happens when no backend on a tensor's device runs an op: 'allow', 'warn' or 'error'.");
  m.def(
      "set_fallback_policy",
      [](const std::string& p) {
        if (p == "allow")
          tmath::set_fallback_policy(tmath::FallbackPolicy::Allow);
        else if (p == "warn")
          tmath::set_fallback_policy(tmath::FallbackPolicy::Warn);
        else if (p == "error")
          tmath::set_fallback_policy(tmath::FallbackPolicy::Error);
        else
          throw tmath::ValueError("[set_fallback_policy] unknown policy '" + p +
                                  "' (allow, warn, error)");
      },
      "policy"_a);
  m.def(
      "selection_policy",
      []() { return tmath::selection_policy() == tmath::SelectionPolicy::Cost ? "cost" : "priority"; },
      "How an op picks among several backends of its device: 'priority' (backend_priority() "
      "order) or 'cost' (the measured cheapest per op, dtype and size class).");
  m.def(
      "set_selection_policy",
      [](const std::string& p) {
        if (p == "priority")
          tmath::set_selection_policy(tmath::SelectionPolicy::Priority);
        else if (p == "cost")
          tmath::set_selection_policy(tmath::SelectionPolicy::Cost);
        else
          throw tmath::ValueError("[set_selection_policy] unknown policy '" + p +
                                  "' (priority, cost)");
      },
      "policy"_a);
  m.def(
      "cost_table",
      []() {
        nb::list rows;
        for (const tmath::CostEntry& e : tmath::cost_table()) {
          nb::dict d;
          d["device"] = e.device;
          d["op"] = e.op;
          d["dtype"] = e.dtype;
          d["size_class"] = e.size_class;
          nb::dict ms;
          for (const auto& [name, t] : e.ms) ms[name.c_str()] = t;
          d["ms"] = ms;
          d["chosen"] = e.chosen.empty() ? nb::none() : nb::cast(e.chosen);
          rows.append(d);
        }
        return rows;
      },
      "The cost model's measurements: one dict per (device, op, dtype, size class 2^k "
      "elements) with each candidate's best time in ms (nan until measured) and the chosen "
      "backend (None while calibrating).");
  m.def("reset_cost_table", &tmath::reset_cost_table);
  m.def(
      "dispatch_stats",
      []() {
        const tmath::DispatchStats s = tmath::dispatch_stats();
        nb::dict d;
        d["nodes_evaluated"] = s.nodes_evaluated;
        d["kernels_launched"] = s.kernels_launched;
        d["fallbacks"] = s.fallbacks;
        d["upcasts"] = s.upcasts;
        d["donated_buffers"] = s.donated_buffers;
        d["graph_evals"] = s.graph_evals;
        d["cost_calibrations"] = s.cost_calibrations;
        d["host_placements"] = s.host_placements;
        return d;
      },
      "Counters of the dispatcher since the last reset_dispatch_stats().");
  m.def("reset_dispatch_stats", &tmath::reset_dispatch_stats);

  // ---- devices, memory, precision ------------------------------------------------------------------
  m.def("default_device", &tmath::default_device);
  m.def(
      "set_default_device", [](nb::handle d) { tmath::set_default_device(*to_device(d, "set_default_device")); },
      "device"_a);
  m.def(
      "synchronize",
      [](nb::handle d) {
        Device dev = to_device_or_default(d, "synchronize");
        auto be = device_backend(dev, "synchronize");
        nogil([&] { be->synchronize(dev); return 0; });
      },
      "device"_a = nb::none(), "Waits until the engine's queued work on `device` (default: the default device) is done.");
  m.def(
      "native_stream",
      [](nb::handle d) {
        Device dev = to_device_or_default(d, "native_stream");
        auto be = device_backend(dev, "native_stream");
        return nogil([&] { return be->native_stream(dev); });
      },
      "device"_a = nb::none(),
      "The handle (int) of the stream the engine queues work on for `device`: a cudaStream_t on CUDA "
      "(for torch.cuda.ExternalStream / cupy.cuda.ExternalStream), 0 on the CPU.");
  m.def(
      "memory_stats",
      [](nb::handle d) { return stats_dict(tmath::memory_stats(to_device(d, "memory_stats").value_or(tmath::kCPU))); },
      "device"_a = nb::none());
  m.def(
      "reset_peak_memory_stats",
      [](nb::handle d) { tmath::reset_peak_memory_stats(to_device(d, "reset_peak_memory_stats").value_or(tmath::kCPU)); },
      "device"_a = nb::none());
  m.def(
      "empty_cache", [](nb::handle d) { tmath::empty_cache(to_device(d, "empty_cache").value_or(tmath::kCPU)); },
      "device"_a = nb::none());
  m.def(
      "set_memory_limit",
      [](uint64_t bytes, nb::handle d) {
        tmath::set_memory_limit(bytes, to_device(d, "set_memory_limit").value_or(tmath::kCPU));
      },
      "bytes"_a, "device"_a = nb::none());
  m.def(
      "set_matmul_precision", [](const std::string& p) { tmath::set_matmul_precision(std::string_view(p)); },
      "precision"_a);
  m.def("matmul_precision",
        []() { return std::string(tmath::matmul_precision_name(tmath::matmul_precision())); });
  m.def(
      "promote_types",
      [](nb::handle a, nb::handle b) {
        return dtype_object(tmath::promote_types(*to_dtype(a, "promote_types"), *to_dtype(b, "promote_types")));
      },
      "type1"_a, "type2"_a);
}

}  // namespace tmpy
