// Creation ops, dtype conversion and device transfers.
#include <cmath>
#include <cstring>

#include "core/dispatch.h"
#include "core/ops_internal.h"
#include "tmath/error.h"

namespace tmath {

using detail::make_node;

namespace {
void check_shape(const Shape& shape, const char* op) {
  for (auto d : shape)
    if (d < 0)
      throw ValueError(std::string("[") + op + "] negative dimension in shape " +
                       detail::shape_str(shape));
}

DType natural_default(const Scalar& v) {
  switch (v.kind()) {
    case Scalar::Kind::Bool: return bool_;
    case Scalar::Kind::Int: return int64;
    case Scalar::Kind::Float: return float32;
    case Scalar::Kind::Complex: return complex64;
  }
  return float32;
}
}  // namespace

Tensor full(const Shape& shape, Scalar value, std::optional<DType> dtype, Device device) {
  check_shape(shape, "full");
  DType dt = dtype.value_or(natural_default(value));
  return make_node(shape, dt, device, std::make_shared<FillPrim>(value), {});
}

Tensor zeros(const Shape& shape, DType dtype, Device device) {
  check_shape(shape, "zeros");
  return full(shape, 0, dtype, device);
}
Tensor ones(const Shape& shape, DType dtype, Device device) {
  check_shape(shape, "ones");
  return full(shape, 1, dtype, device);
}
Tensor empty(const Shape& shape, DType dtype, Device device) {
  check_shape(shape, "empty");
  return detail::make_evaluated(shape, dtype, device);
}
Tensor zeros_like(const Tensor& a) { return zeros(a.shape(), a.dtype(), a.device()); }
Tensor ones_like(const Tensor& a) { return ones(a.shape(), a.dtype(), a.device()); }
Tensor full_like(const Tensor& a, Scalar value) { return full(a.shape(), value, a.dtype(), a.device()); }

Tensor arange(Scalar start, Scalar stop, Scalar step, std::optional<DType> dtype, Device device) {
  bool all_int = start.kind() == Scalar::Kind::Int && stop.kind() == Scalar::Kind::Int &&
                 step.kind() == Scalar::Kind::Int;
  if (start.kind() == Scalar::Kind::Complex || stop.kind() == Scalar::Kind::Complex ||
      step.kind() == Scalar::Kind::Complex)
    throw DTypeError("[arange] complex bounds are not supported");
  DType dt = dtype.value_or(all_int ? int64 : float32);
  double s = step.as_double();
  if (s == 0) throw ValueError("[arange] step must be nonzero");
  int64_t n;
  if (all_int) {
    int64_t b = start.as_int(), e = stop.as_int(), st = step.as_int();
    n = st > 0 ? (e - b + st - 1) / st : (b - e + (-st) - 1) / (-st);
  } else {
    n = static_cast<int64_t>(std::ceil((stop.as_double() - start.as_double()) / s));
  }
  n = std::max<int64_t>(n, 0);
  return make_node({n}, dt, device, std::make_shared<ArangePrim>(start.as_double(), s), {});
}

Tensor arange(Scalar stop, std::optional<DType> dtype, Device device) {
  return arange(stop.kind() == Scalar::Kind::Int ? Scalar(int64_t{0}) : Scalar(0.0), stop, int64_t{1},
                dtype, device);
}

Tensor linspace(double start, double stop, int64_t num, bool endpoint, DType dtype, Device device) {
  if (num < 0) throw ValueError("[linspace] num must be non-negative, got " + std::to_string(num));
  if (!is_inexact(dtype) && !is_integral(dtype))
    throw DTypeError("[linspace] dtype must be numeric");
  int64_t div = endpoint ? num - 1 : num;
  double step = div > 0 ? (stop - start) / static_cast<double>(div) : 0.0;
  Tensor r = make_node({num}, float64, device, std::make_shared<ArangePrim>(start, step), {});
  if (endpoint && num > 1) {
    // Make the last element exactly `stop`, as NumPy does.
    Tensor last = full({1}, stop, float64, device);
    r = concatenate({slice(r, 0, 0, num - 1), last}, 0);
  }
  return dtype == float64 ? r : astype(r, dtype);
}

Tensor eye(int64_t n, std::optional<int64_t> m, int64_t k, DType dtype, Device device) {
  int64_t cols = m.value_or(n);
  if (n < 0 || cols < 0) throw ValueError("[eye] negative dimension");
  Tensor i = reshape(arange(int64_t{0}, n, int64_t{1}, int64, device), {n, 1});
  Tensor j = reshape(arange(int64_t{0}, cols, int64_t{1}, int64, device), {1, cols});
  return astype(equal(j - i, Tensor(k)), dtype);
}

Tensor from_data(const void* data, const Shape& shape, DType dtype, Device device) {
  check_shape(shape, "from_data");
  Tensor t = detail::make_evaluated(shape, dtype, kCPU);
  size_t nbytes = t.nbytes();
  if (nbytes) {
    if (!data) throw ValueError("[from_data] null data pointer for a non-empty tensor");
    std::memcpy(t.impl()->data(), data, nbytes);
  }
  return device == kCPU ? t : to_device(t, device);
}

Tensor from_blob(void* data, const Shape& shape, DType dtype, Strides strides,
                 std::function<void(void*)> deleter, Device device) {
  check_shape(shape, "from_blob");
  if (!strides.empty() && strides.size() != shape.size())
    throw ShapeError("[from_blob] strides has " + std::to_string(strides.size()) +
                     " entries for a " + std::to_string(shape.size()) + "-d shape");
  if (!data && detail::shape_size(shape) > 0) throw ValueError("[from_blob] null data pointer");
  if (device.type != DeviceType::CPU) detail::primary_backend(device);  // DeviceError if none
  auto p = std::make_shared<TensorImpl>();
  p->shape = shape;
  p->size = detail::shape_size(shape);
  p->dtype = dtype;
  p->device = device;
  if (strides.empty()) strides = detail::contiguous_strides(shape);
  auto buf = std::make_shared<detail::Buffer>();
  buf->ptr = data;
  buf->nbytes = 0;  // unknown extent: never donated or reused
  buf->device = device;
  buf->deleter = std::move(deleter);  // last: nothing below throws, so a throw never runs it
  p->set_view(std::move(buf), std::move(strides), 0);  // no allocator: never cached or freed
  return Tensor(std::move(p));
}

void* device_data_ptr(const Tensor& a) {
  if (!a.defined()) throw ValueError("[device_data_ptr] undefined tensor");
  a.eval();
  return a.impl()->data();
}

Tensor astype(const Tensor& a, DType dtype) {
  if (!a.defined()) throw ValueError("[astype] undefined tensor");
  if (a.dtype() == dtype) return a;
  static const auto prim = std::make_shared<AsTypePrim>();
  return make_node(a.shape(), dtype, a.device(), prim, {a});
}

Tensor copy(const Tensor& a) {
  if (!a.defined()) throw ValueError("[copy] undefined tensor");
  static const auto prim = std::make_shared<AsTypePrim>();
  return make_node(a.shape(), a.dtype(), a.device(), prim, {a});
}

Tensor to_device(const Tensor& a, Device device) {
  if (!a.defined()) throw ValueError("[to_device] undefined tensor");
  if (a.device() == device) return a;
  detail::primary_backend(device);  // DeviceError now if the device has no backend
  static const auto prim = std::make_shared<ToDevicePrim>();
  return make_node(a.shape(), a.dtype(), device, prim, {a});
}

}  // namespace tmath
