// Tensor: a cheap shared handle to a (possibly not yet evaluated) array.
#pragma once

#include <complex>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "tmath/device.h"
#include "tmath/dtype.h"
#include "tmath/export.h"

namespace tmath {

using Shape = std::vector<int64_t>;
using Strides = std::vector<int64_t>;  // in elements, may be 0 (broadcast) or negative (flip)

// A host scalar of one of four kinds; converts to any dtype on use.
class TMATH_API Scalar {
 public:
  enum class Kind : uint8_t { Bool, Int, Float, Complex };
  Scalar() = default;
  Scalar(bool v) : kind_(Kind::Bool), i_(v) {}  // NOLINT
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Scalar(T v) : kind_(Kind::Int), i_(static_cast<int64_t>(v)) {}  // NOLINT
  template <class T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
  Scalar(T v) : kind_(Kind::Float), d_(static_cast<double>(v)) {}  // NOLINT
  Scalar(Half v) : kind_(Kind::Float), d_(float(v)) {}      // NOLINT
  Scalar(BFloat16 v) : kind_(Kind::Float), d_(float(v)) {}  // NOLINT
  template <class T>
  Scalar(std::complex<T> v) : kind_(Kind::Complex), d_(v.real()), im_(v.imag()) {}  // NOLINT

  Kind kind() const { return kind_; }
  // The dtype that holds this value exactly: bool, int64, float64, complex128.
  DType natural_dtype() const;
  double as_double() const;
  int64_t as_int() const;
  std::complex<double> as_complex() const;
  std::string str() const;

 private:
  Kind kind_ = Kind::Float;
  int64_t i_ = 0;
  double d_ = 0.0;
  double im_ = 0.0;
};

namespace detail {
struct TensorImpl;
}

// One entry of an index expression: an integer, a slice, a new axis or an ellipsis.
struct Slice {
  std::optional<int64_t> start, stop;
  int64_t step = 1;
  Slice() = default;
  Slice(std::optional<int64_t> b, std::optional<int64_t> e, int64_t s = 1) : start(b), stop(e), step(s) {}
};
struct NewAxis {};
struct Ellipsis {};
using Index = std::variant<int64_t, Slice, NewAxis, Ellipsis>;
inline constexpr NewAxis newaxis{};
inline constexpr Ellipsis ellipsis{};

class TMATH_API Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<detail::TensorImpl> impl) : impl_(std::move(impl)) {}
  // A 0-d "weakly typed" constant: in a binary op it takes the other operand's
  // dtype when that is of the same or a higher kind (float32 x * 2.0 -> float32).
  Tensor(Scalar v);  // NOLINT(google-explicit-constructor)
  template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
  Tensor(T v) : Tensor(Scalar(v)) {}  // NOLINT
  template <class T>
  Tensor(std::complex<T> v) : Tensor(Scalar(v)) {}  // NOLINT

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t shape(int axis) const;  // negative axes count from the end
  const Strides& strides() const;  // valid once evaluated (eval() first)
  int ndim() const;
  int64_t size() const;
  DType dtype() const;
  Device device() const;
  size_t itemsize() const { return tmath::itemsize(dtype()); }
  size_t nbytes() const { return static_cast<size_t>(size()) * itemsize(); }
  bool weak_type() const;

  bool is_evaluated() const;
  // Materialises this tensor (and whatever it depends on); returns *this.
  const Tensor& eval() const;
  bool is_contiguous() const;  // evaluates

  // Host access. These evaluate; for non-CPU tensors they copy through the host.
  template <class T>
  T item() const;
  template <class T>
  std::vector<T> to_vector() const;
  // Pointer to element 0 of an evaluated CPU tensor (respecting offset).
  void* data_ptr() const;
  template <class T>
  T* data() const {
    return static_cast<T*>(data_ptr());
  }

  Tensor astype(DType dt) const;
  Tensor to(Device d) const;
  Tensor copy() const;
  Tensor reshape(Shape shape) const;
  Tensor transpose() const;  // reverses the axes
  Tensor permute(std::vector<int> axes) const;
  Tensor flatten() const;
  Tensor squeeze() const;
  Tensor index(const std::vector<Index>& idx) const;
  Tensor operator[](int64_t i) const;
  // Sum/mean/max/min over all axes.
  Tensor sum() const;
  Tensor mean() const;
  Tensor max() const;
  Tensor min() const;

  std::string str() const;  // values, forces evaluation
  std::string repr() const;

  const std::shared_ptr<detail::TensorImpl>& impl() const { return impl_; }
  // Identity of the underlying node (two handles to the same node compare equal).
  const void* id() const { return impl_.get(); }

 private:
  std::shared_ptr<detail::TensorImpl> impl_;
};

TMATH_API std::ostream& operator<<(std::ostream& os, const Tensor& t);

// C++ operators (elementwise, broadcasting, NumPy semantics).
TMATH_API Tensor operator+(const Tensor& a, const Tensor& b);
TMATH_API Tensor operator-(const Tensor& a, const Tensor& b);
TMATH_API Tensor operator*(const Tensor& a, const Tensor& b);
TMATH_API Tensor operator/(const Tensor& a, const Tensor& b);
TMATH_API Tensor operator%(const Tensor& a, const Tensor& b);
TMATH_API Tensor operator-(const Tensor& a);
TMATH_API Tensor operator!(const Tensor& a);
TMATH_API Tensor operator&&(const Tensor& a, const Tensor& b);
TMATH_API Tensor operator||(const Tensor& a, const Tensor& b);
// Bitwise (bool and integer dtypes): bitwise_and/or/xor/invert/left_shift/right_shift.
TMATH_API Tensor operator&(const Tensor& a, const Tensor& b);
TMATH_API Tensor operator|(const Tensor& a, const Tensor& b);
TMATH_API Tensor operator^(const Tensor& a, const Tensor& b);
TMATH_API Tensor operator~(const Tensor& a);
TMATH_API Tensor operator<<(const Tensor& a, const Tensor& b);
TMATH_API Tensor operator>>(const Tensor& a, const Tensor& b);
TMATH_API Tensor operator==(const Tensor& a, const Tensor& b);
TMATH_API Tensor operator!=(const Tensor& a, const Tensor& b);
TMATH_API Tensor operator<(const Tensor& a, const Tensor& b);
TMATH_API Tensor operator<=(const Tensor& a, const Tensor& b);
TMATH_API Tensor operator>(const Tensor& a, const Tensor& b);
TMATH_API Tensor operator>=(const Tensor& a, const Tensor& b);
TMATH_API Tensor& operator+=(Tensor& a, const Tensor& b);
TMATH_API Tensor& operator-=(Tensor& a, const Tensor& b);
TMATH_API Tensor& operator*=(Tensor& a, const Tensor& b);
TMATH_API Tensor& operator/=(Tensor& a, const Tensor& b);
TMATH_API Tensor& operator&=(Tensor& a, const Tensor& b);
TMATH_API Tensor& operator|=(Tensor& a, const Tensor& b);
TMATH_API Tensor& operator^=(Tensor& a, const Tensor& b);
TMATH_API Tensor& operator<<=(Tensor& a, const Tensor& b);
TMATH_API Tensor& operator>>=(Tensor& a, const Tensor& b);

}  // namespace tmath
