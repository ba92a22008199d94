// Shared helpers of the tmath Python extension (nanobind).
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tmath/tmath.h"

namespace nb = nanobind;

namespace tmpy {

using tmath::Device;
using tmath::DType;
using tmath::Shape;
using tmath::Tensor;

// A dtype as a Python object: one immutable singleton per DType (tmath.float32, ...).
struct PyDType {
  DType dt;
};

// The Python objects of the 12 dtypes, indexed by DType (filled by bind_dtypes).
nb::object dtype_object(DType dt);

// The Tensor Python type (set when the class is bound); used for fast exact-type checks.
extern PyTypeObject* g_tensor_type;

inline bool is_tensor(nb::handle h) {
  return Py_TYPE(h.ptr()) == g_tensor_type || nb::isinstance<Tensor>(h);
}
inline Tensor& tensor_ref(nb::handle h) { return *nb::inst_ptr<Tensor>(h); }

// Conversion of Python values. `op` names the calling function in error messages.
//   to_tensor:  Tensor as is; Python bool/int/float/complex as weakly typed
//               0-d constants; anything else through asarray.
//   asarray:    nested lists/tuples of scalars, NumPy arrays and anything with
//               __dlpack__ or the buffer protocol, scalars (strongly typed).
//               copy: true = always copy, false = never (error if needed),
//               nullopt = share memory where possible.
Tensor to_tensor(nb::handle h, const char* op);
Tensor asarray(nb::handle h, std::optional<DType> dtype, std::optional<bool> copy,
               std::optional<Device> device, const char* op);
// Zero-copy import of a DLPack (CPU or CUDA) or buffer-protocol producer; nullopt when `h` is
// neither. A CUDA producer's __dlpack__ gets stream=<the engine's stream on that device>.
std::optional<Tensor> import_array(nb::handle h, const char* op);
// The backend that owns memory on `d` (DeviceError naming `op` when none is available).
std::shared_ptr<tmath::Backend> device_backend(Device d, const char* op);
std::optional<DType> to_dtype(nb::handle h, const char* op);        // None -> nullopt
DType to_dtype_or(nb::handle h, DType def, const char* op);
std::optional<Device> to_device(nb::handle h, const char* op);      // None -> nullopt
Device to_device_or_default(nb::handle h, const char* op);
std::vector<int> to_axes(nb::handle h, const char* op);             // None -> {} (all)
Shape to_shape(nb::handle h, const char* op);                       // int or sequence
tmath::Scalar to_scalar(nb::handle h, const char* op);
std::vector<Tensor> to_tensor_list(nb::handle h, const char* op);

// Tensor -> Python.
nb::object item(const Tensor& t);
nb::object tolist(const Tensor& t);
// A no-copy nb::ndarray view of a CPU or CUDA tensor (evaluates; keeps the tensor alive).
nb::ndarray<nb::array_api> export_ndarray(const Tensor& t);
nb::object to_numpy(const Tensor& t);

// Basic and simple advanced indexing (x[key]).
Tensor getitem(const Tensor& t, nb::handle key);
// t[key] = value: t is rebound to tmath::put(t, positions of key, value).
void setitem(Tensor& t, nb::handle key, nb::handle value);

// Runs `f` with the GIL released (ops may evaluate: eager mode, graph-depth bound, data reads).
template <class F>
inline auto nogil(F&& f) {
  nb::gil_scoped_release release;
  return f();
}

// Ops on small evaluated inputs keep the GIL: releasing and re-taking it costs about as much
// as the whole engine call of a tiny op. An unevaluated input may stand for a large pending
// graph that the op evaluates (eager mode), so it always releases. The limit bounds the work
// done with the GIL held to a few microseconds.
constexpr int64_t kHoldGilElems = 4096;
inline bool small_input(const Tensor& t) { return t.size() <= kHoldGilElems && t.is_evaluated(); }
// Elements of the broadcast of two shapes (no validation: the op reports bad shapes).
inline int64_t broadcast_size(const Shape& a, const Shape& b) {
  const size_t na = a.size(), nb_ = b.size(), n = na > nb_ ? na : nb_;
  int64_t s = 1;
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < na ? a[na - 1 - i] : 1, db = i < nb_ ? b[nb_ - 1 - i] : 1;
    s *= da == 1 ? db : da;
  }
  return s;
}
inline bool small_binary(const Tensor& a, const Tensor& b) {
  return small_input(a) && small_input(b) && broadcast_size(a.shape(), b.shape()) <= kHoldGilElems;
}
// Matmul's work is bounded by the product of its operands' sizes.
inline bool small_matmul(const Tensor& a, const Tensor& b) {
  return small_input(a) && small_input(b) && a.size() * b.size() <= 64 * kHoldGilElems;
}
// Runs `f` with the GIL held when `small`, else released.
template <class F>
inline auto nogil_unless(bool small, F&& f) {
  if (small) return f();
  nb::gil_scoped_release release;
  return f();
}

[[noreturn]] void throw_type_error(const std::string& msg);
[[noreturn]] void throw_value_error(const std::string& msg);

void bind_dtypes(nb::module_& m);
void bind_tensor(nb::module_& m);
void bind_ops(nb::module_& m);
void bind_random(nb::module_& m);
void bind_errors(nb::module_& m);

}  // namespace tmpy
