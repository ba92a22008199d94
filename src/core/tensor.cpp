// Tensor handle methods, Scalar, host access and printing.
#include <cmath>
#include <cstring>
#include <iomanip>
#include <sstream>

#include "core/dispatch.h"
#include "core/tensor_impl.h"
#include "tmath/error.h"
#include "tmath/ops.h"
#include "tmath/transforms.h"

namespace tmath {

using detail::TensorImpl;

// ---- Scalar ------------------------------------------------------------
DType Scalar::natural_dtype() const {
  switch (kind_) {
    case Kind::Bool: return DType::Bool;
    case Kind::Int: return DType::Int64;
    case Kind::Float: return DType::Float64;
    case Kind::Complex: return DType::Complex128;
  }
  return DType::Float64;
}
double Scalar::as_double() const {
  return kind_ == Kind::Bool || kind_ == Kind::Int ? static_cast<double>(i_) : d_;
}
int64_t Scalar::as_int() const {
  return kind_ == Kind::Bool || kind_ == Kind::Int ? i_ : static_cast<int64_t>(d_);
}
std::complex<double> Scalar::as_complex() const {
  return kind_ == Kind::Complex ? std::complex<double>(d_, im_) : std::complex<double>(as_double(), 0);
}
std::string Scalar::str() const {
  std::ostringstream os;
  switch (kind_) {
    case Kind::Bool: os << (i_ ? "true" : "false"); break;
    case Kind::Int: os << i_; break;
    case Kind::Float: os << d_; break;
    case Kind::Complex: os << "(" << d_ << (im_ < 0 ? "" : "+") << im_ << "j)"; break;
  }
  return os.str();
}

namespace {
// Writes a scalar into one element of dtype dt.
void store_scalar(void* dst, DType dt, Scalar v) {
  switch (dt) {
    case DType::Bool: *static_cast<bool*>(dst) = v.kind() == Scalar::Kind::Complex ? std::abs(v.as_complex()) != 0 : v.as_double() != 0; break;
    case DType::Int8: *static_cast<int8_t*>(dst) = static_cast<int8_t>(v.as_int()); break;
    case DType::Int16: *static_cast<int16_t*>(dst) = static_cast<int16_t>(v.as_int()); break;
    case DType::Int32: *static_cast<int32_t*>(dst) = static_cast<int32_t>(v.as_int()); break;
    case DType::Int64: *static_cast<int64_t*>(dst) = v.as_int(); break;
    case DType::UInt8: *static_cast<uint8_t*>(dst) = static_cast<uint8_t>(v.as_int()); break;
    case DType::UInt16: *static_cast<uint16_t*>(dst) = static_cast<uint16_t>(v.as_int()); break;
    case DType::UInt32: *static_cast<uint32_t*>(dst) = static_cast<uint32_t>(v.as_int()); break;
    case DType::UInt64: *static_cast<uint64_t*>(dst) = static_cast<uint64_t>(v.as_int()); break;
    case DType::Float16: *static_cast<Half*>(dst) = Half(static_cast<float>(v.as_double())); break;
    case DType::BFloat16: *static_cast<BFloat16*>(dst) = BFloat16(static_cast<float>(v.as_double())); break;
    case DType::Float32: *static_cast<float*>(dst) = static_cast<float>(v.as_double()); break;
    case DType::Float64: *static_cast<double*>(dst) = v.as_double(); break;
    case DType::Complex64: *static_cast<complex64_t*>(dst) = complex64_t(v.as_complex()); break;
    case DType::Complex128: *static_cast<complex128_t*>(dst) = v.as_complex(); break;
  }
}

template <class T>
T load_as(const void* src, DType dt) {
  auto conv = [](auto v) -> T {
    using V = decltype(v);
    if constexpr (std::is_same_v<T, V>) {
      return v;
    } else if constexpr (std::is_same_v<T, complex64_t> || std::is_same_v<T, complex128_t>) {
      if constexpr (std::is_same_v<V, complex64_t> || std::is_same_v<V, complex128_t>)
        return T(static_cast<typename T::value_type>(v.real()), static_cast<typename T::value_type>(v.imag()));
      else
        return T(static_cast<typename T::value_type>(static_cast<double>(v)), 0);
    } else if constexpr (std::is_same_v<V, complex64_t> || std::is_same_v<V, complex128_t>) {
      if constexpr (std::is_same_v<T, bool>) return v != V(0);
      else return static_cast<T>(static_cast<double>(v.real()));
    } else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      return T(static_cast<float>(v));
    } else if constexpr (std::is_same_v<V, Half> || std::is_same_v<V, BFloat16>) {
      return static_cast<T>(static_cast<float>(v));
    } else {
      return static_cast<T>(v);
    }
  };
  switch (dt) {
    case DType::Bool: return conv(*static_cast<const bool*>(src));
    case DType::Int8: return conv(*static_cast<const int8_t*>(src));
    case DType::Int16: return conv(*static_cast<const int16_t*>(src));
    case DType::Int32: return conv(*static_cast<const int32_t*>(src));
    case DType::Int64: return conv(*static_cast<const int64_t*>(src));
    case DType::UInt8: return conv(*static_cast<const uint8_t*>(src));
    case DType::UInt16: return conv(*static_cast<const uint16_t*>(src));
    case DType::UInt32: return conv(*static_cast<const uint32_t*>(src));
    case DType::UInt64: return conv(*static_cast<const uint64_t*>(src));
    case DType::Float16: return conv(*static_cast<const Half*>(src));
    case DType::BFloat16: return conv(*static_cast<const BFloat16*>(src));
    case DType::Float32: return conv(*static_cast<const float*>(src));
    case DType::Float64: return conv(*static_cast<const double*>(src));
    case DType::Complex64: return conv(*static_cast<const complex64_t*>(src));
    case DType::Complex128: return conv(*static_cast<const complex128_t*>(src));
  }
  return T{};
}

// A contiguous host copy of an evaluated tensor (shares memory when possible).
Tensor host_contiguous(const Tensor& t) {
  t.eval();
  Tensor h = t.device().type == DeviceType::CPU ? t : to_device(t, kCPU).eval();
  if (!h.impl()->contiguous) h = copy(h).eval();
  return h;
}
}  // namespace

namespace detail {
void store_scalar_to(void* dst, DType dt, Scalar v) { store_scalar(dst, dt, v); }
}  // namespace detail

// ---- Tensor ---------------------------------------------------------------
Tensor::Tensor(Scalar v) {
  DType dt = v.natural_dtype();
  Tensor t = detail::make_evaluated({}, dt, kCPU);
  store_scalar(t.data_ptr(), dt, v);
  t.impl()->weak = true;
  impl_ = t.impl_;
}

namespace {
const TensorImpl& checked(const std::shared_ptr<TensorImpl>& p) {
  if (!p) throw ValueError("[tensor] use of an undefined (default-constructed) tensor");
  return *p;
}
}  // namespace

const Shape& Tensor::shape() const { return checked(impl_).shape; }
int64_t Tensor::shape(int axis) const {
  int nd = ndim();
  int a = axis < 0 ? axis + nd : axis;
  if (a < 0 || a >= nd)
    throw ShapeError("[shape] axis " + std::to_string(axis) + " is out of range for a " +
                     std::to_string(nd) + "-d tensor");
  return impl_->shape[a];
}
const Strides& Tensor::strides() const {
  eval();
  return impl_->strides;
}
int Tensor::ndim() const { return static_cast<int>(checked(impl_).shape.size()); }
int64_t Tensor::size() const { return checked(impl_).size; }
DType Tensor::dtype() const { return checked(impl_).dtype; }
Device Tensor::device() const { return checked(impl_).device; }
bool Tensor::weak_type() const { return checked(impl_).weak; }
bool Tensor::is_evaluated() const { return checked(impl_).evaluated(); }

const Tensor& Tensor::eval() const {
  checked(impl_);
  tmath::eval(*this);
  return *this;
}

bool Tensor::is_contiguous() const {
  eval();
  return impl_->contiguous;
}

void* Tensor::data_ptr() const {
  eval();
  if (impl_->device.type != DeviceType::CPU)
    throw DeviceError("[data_ptr] tensor is on " + impl_->device.str() +
                      "; copy it to the cpu first (to(\"cpu\"))");
  return impl_->data();
}

template <class T>
T Tensor::item() const {
  if (size() != 1)
    throw ShapeError("[item] only a tensor with one element converts to a scalar, got " +
                     std::to_string(size()) + " elements");
  Tensor h = host_contiguous(*this);
  return load_as<T>(h.impl()->data(), h.dtype());
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor h = host_contiguous(*this);
  std::vector<T> out(static_cast<size_t>(h.size()));
  const char* p = static_cast<const char*>(h.impl()->data());
  size_t isz = h.itemsize();
  if constexpr (!std::is_same_v<T, bool>) {
    if (h.dtype() == dtype_v<T>) {
      if (!out.empty()) std::memcpy(static_cast<void*>(out.data()), p, out.size() * sizeof(T));
      return out;
    }
  }
  {
    for (size_t i = 0; i < out.size(); ++i) out[i] = load_as<T>(p + i * isz, h.dtype());
  }
  return out;
}

#define TMATH_INSTANTIATE(T)                           \
  template T Tensor::item<T>() const;                  \
  template std::vector<T> Tensor::to_vector<T>() const;
TMATH_INSTANTIATE(bool)
TMATH_INSTANTIATE(int8_t)
TMATH_INSTANTIATE(int16_t)
TMATH_INSTANTIATE(int32_t)
TMATH_INSTANTIATE(int64_t)
TMATH_INSTANTIATE(uint8_t)
TMATH_INSTANTIATE(uint16_t)
TMATH_INSTANTIATE(uint32_t)
TMATH_INSTANTIATE(uint64_t)
TMATH_INSTANTIATE(Half)
TMATH_INSTANTIATE(BFloat16)
TMATH_INSTANTIATE(float)
TMATH_INSTANTIATE(double)
TMATH_INSTANTIATE(complex64_t)
TMATH_INSTANTIATE(complex128_t)
#undef TMATH_INSTANTIATE

Tensor Tensor::astype(DType dt) const { return tmath::astype(*this, dt); }
Tensor Tensor::to(Device d) const { return to_device(*this, d); }
Tensor Tensor::copy() const { return tmath::copy(*this); }
Tensor Tensor::reshape(Shape s) const { return tmath::reshape(*this, std::move(s)); }
Tensor Tensor::transpose() const { return tmath::transpose(*this); }
Tensor Tensor::permute(std::vector<int> axes) const { return tmath::permute(*this, std::move(axes)); }
Tensor Tensor::flatten() const { return tmath::flatten(*this); }
Tensor Tensor::squeeze() const { return tmath::squeeze(*this); }
Tensor Tensor::index(const std::vector<Index>& idx) const { return tmath::index(*this, idx); }
Tensor Tensor::operator[](int64_t i) const { return tmath::index(*this, {Index(i)}); }
Tensor Tensor::sum() const { return tmath::sum(*this); }
Tensor Tensor::mean() const { return tmath::mean(*this); }
Tensor Tensor::max() const { return tmath::max(*this); }
Tensor Tensor::min() const { return tmath::min(*this); }

namespace {
void format_value(std::ostream& os, const char* p, DType dt) {
  switch (kind(dt)) {
    case DTypeKind::Bool: os << (load_as<bool>(p, dt) ? "true" : "false"); break;
    case DTypeKind::SignedInt: os << load_as<int64_t>(p, dt); break;
    case DTypeKind::UnsignedInt: os << load_as<uint64_t>(p, dt); break;
    case DTypeKind::Float: os << load_as<double>(p, dt); break;
    case DTypeKind::Complex: {
      auto c = load_as<complex128_t>(p, dt);
      os << c.real() << (c.imag() < 0 || std::signbit(c.imag()) ? "" : "+") << c.imag() << "j";
      break;
    }
  }
}

void format_rec(std::ostream& os, const char* base, const Shape& shape, const Strides& strides,
                size_t isz, DType dt, size_t axis, int indent) {
  if (axis == shape.size()) {
    format_value(os, base, dt);
    return;
  }
  constexpr int64_t kEdge = 3;
  int64_t n = shape[axis];
  bool summarise = n > 2 * kEdge + 1;
  os << "[";
  for (int64_t i = 0; i < n; ++i) {
    if (summarise && i == kEdge) {
      os << "...";
      i = n - kEdge - 1;
      os << (axis + 1 == shape.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
      continue;
    }
    format_rec(os, base + i * strides[axis] * static_cast<int64_t>(isz), shape, strides, isz, dt,
               axis + 1, indent + 1);
    if (i + 1 < n) os << (axis + 1 == shape.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
  }
  os << "]";
}
}  // namespace

std::string Tensor::str() const {
  Tensor h = host_contiguous(*this);
  std::ostringstream os;
  os << std::setprecision(dtype() == float64 || dtype() == complex128 ? 8 : 6);
  format_rec(os, static_cast<const char*>(h.impl()->data()), h.shape(), h.impl()->strides,
             h.itemsize(), h.dtype(), 0, 0);
  return os.str();
}

std::string Tensor::repr() const {
  std::ostringstream os;
  os << "tensor(" << str() << ", dtype=" << dtype_name(dtype());
  if (device().type != DeviceType::CPU) os << ", device=" << device().str();
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.repr(); }

// ---- operators -----------------------------------------------------------
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return subtract(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return multiply(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return divide(a, b); }
Tensor operator%(const Tensor& a, const Tensor& b) { return remainder(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator!(const Tensor& a) { return logical_not(a); }
Tensor operator&&(const Tensor& a, const Tensor& b) { return logical_and(a, b); }
Tensor operator||(const Tensor& a, const Tensor& b) { return logical_or(a, b); }
Tensor operator&(const Tensor& a, const Tensor& b) { return bitwise_and(a, b); }
Tensor operator|(const Tensor& a, const Tensor& b) { return bitwise_or(a, b); }
Tensor operator^(const Tensor& a, const Tensor& b) { return bitwise_xor(a, b); }
Tensor operator~(const Tensor& a) { return bitwise_invert(a); }
Tensor operator<<(const Tensor& a, const Tensor& b) { return bitwise_left_shift(a, b); }
Tensor operator>>(const Tensor& a, const Tensor& b) { return bitwise_right_shift(a, b); }
Tensor operator==(const Tensor& a, const Tensor& b) { return equal(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return not_equal(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return less(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return less_equal(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return greater(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return greater_equal(a, b); }
Tensor& operator+=(Tensor& a, const Tensor& b) { return a = add(a, b); }
Tensor& operator-=(Tensor& a, const Tensor& b) { return a = subtract(a, b); }
Tensor& operator*=(Tensor& a, const Tensor& b) { return a = multiply(a, b); }
Tensor& operator/=(Tensor& a, const Tensor& b) { return a = divide(a, b); }
Tensor& operator&=(Tensor& a, const Tensor& b) { return a = bitwise_and(a, b); }
Tensor& operator|=(Tensor& a, const Tensor& b) { return a = bitwise_or(a, b); }
Tensor& operator^=(Tensor& a, const Tensor& b) { return a = bitwise_xor(a, b); }
Tensor& operator<<=(Tensor& a, const Tensor& b) { return a = bitwise_left_shift(a, b); }
Tensor& operator>>=(Tensor& a, const Tensor& b) { return a = bitwise_right_shift(a, b); }

}  // namespace tmath
