// Creation, elementwise, reduction, shape and matmul-class operations.
// All ops are lazy: they record a node and return at once; results are
// computed on eval() or data access. Axes may be negative.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tmath/tensor.h"

namespace tmath {

using Axes = std::vector<int>;

// ---- creation ----------------------------------------------------------
TMATH_API Tensor zeros(const Shape& shape, DType dtype = float32, Device device = default_device());
TMATH_API Tensor ones(const Shape& shape, DType dtype = float32, Device device = default_device());
// dtype defaults to the value's natural kind: bool, int64, float32, complex64.
TMATH_API Tensor full(const Shape& shape, Scalar value, std::optional<DType> dtype = std::nullopt,
                      Device device = default_device());
// Uninitialised storage (contents unspecified).
TMATH_API Tensor empty(const Shape& shape, DType dtype = float32, Device device = default_device());
TMATH_API Tensor zeros_like(const Tensor& a);
TMATH_API Tensor ones_like(const Tensor& a);
TMATH_API Tensor full_like(const Tensor& a, Scalar value);
// [start, stop) with step; dtype defaults to int64 when all three are integers, else float32.
TMATH_API Tensor arange(Scalar start, Scalar stop, Scalar step = 1,
                        std::optional<DType> dtype = std::nullopt, Device device = default_device());
TMATH_API Tensor arange(Scalar stop, std::optional<DType> dtype = std::nullopt,
                        Device device = default_device());
TMATH_API Tensor linspace(double start, double stop, int64_t num, bool endpoint = true,
                          DType dtype = float32, Device device = default_device());
// (n, m) with ones on diagonal k.
TMATH_API Tensor eye(int64_t n, std::optional<int64_t> m = std::nullopt, int64_t k = 0,
                     DType dtype = float32, Device device = default_device());
// Copies `shape`-many elements from host memory (contiguous, row-major).
TMATH_API Tensor from_data(const void* data, const Shape& shape, DType dtype,
                           Device device = default_device());
template <class T>
Tensor from_vector(const std::vector<T>& v, const Shape& shape) {
  return from_data(v.data(), shape, dtype_v<T>);
}
template <class T>
Tensor from_vector(const std::vector<T>& v) {
  return from_data(v.data(), {static_cast<int64_t>(v.size())}, dtype_v<T>);
}
// Wraps existing memory without copying: host memory, or memory of `device` (a
// CUDA device pointer for cuda:i). `strides` in elements (row-major if empty).
// `deleter` (may be empty) runs when the last tensor using it dies, not when
// from_blob throws; the caller keeps the memory alive until then. The engine
// never frees, caches or writes into this memory itself.
TMATH_API Tensor from_blob(void* data, const Shape& shape, DType dtype, Strides strides = {},
                           std::function<void(void*)> deleter = {}, Device device = kCPU);
// Address of element 0 of `a` in its device's memory (evaluates `a`; a device
// pointer for cuda tensors; layout a.shape()/a.strides()), for handing the memory
// to another library (DLPack). Valid while a tensor sharing that storage lives.
TMATH_API void* device_data_ptr(const Tensor& a);
TMATH_API Tensor astype(const Tensor& a, DType dtype);
// A new tensor with its own contiguous storage.
TMATH_API Tensor copy(const Tensor& a);
TMATH_API Tensor to_device(const Tensor& a, Device device);

// ---- shape and indexing (views share storage where possible) -------------
TMATH_API Tensor reshape(const Tensor& a, Shape shape);  // one entry may be -1
TMATH_API Tensor flatten(const Tensor& a);
TMATH_API Tensor transpose(const Tensor& a, std::vector<int> axes = {});  // default: reverse
TMATH_API Tensor permute(const Tensor& a, std::vector<int> axes);
TMATH_API Tensor swapaxes(const Tensor& a, int axis1, int axis2);
TMATH_API Tensor moveaxis(const Tensor& a, int source, int destination);
TMATH_API Tensor broadcast_to(const Tensor& a, const Shape& shape);
TMATH_API std::vector<Tensor> broadcast_tensors(const std::vector<Tensor>& xs);
TMATH_API Shape broadcast_shapes(const Shape& a, const Shape& b);
TMATH_API Tensor expand_dims(const Tensor& a, int axis);
TMATH_API Tensor squeeze(const Tensor& a, std::optional<Axes> axes = std::nullopt);
// NumPy basic indexing: ints, slices with steps/negatives, newaxis, ellipsis.
TMATH_API Tensor index(const Tensor& a, const std::vector<Index>& idx);
TMATH_API Tensor slice(const Tensor& a, int axis, std::optional<int64_t> start,
                       std::optional<int64_t> stop, int64_t step = 1);
TMATH_API Tensor flip(const Tensor& a, std::optional<Axes> axes = std::nullopt);
// Elements of `a` at integer `indices` along `axis` (flattened if no axis);
// output shape: a.shape[:axis] + indices.shape + a.shape[axis+1:]. Negative indices wrap.
TMATH_API Tensor take(const Tensor& a, const Tensor& indices, std::optional<int> axis = std::nullopt);
// Scatter, the inverse of take without an axis: a copy of `a` whose elements at the
// flat (row-major) positions `indices` are replaced by (put) or increased by (put_add)
// `values`, broadcast to indices' shape and cast to a's dtype; `a` is left unchanged
// (NumPy's np.put and np.add.at as functions). Negative indices wrap; out-of-range ones
// raise ShapeError. With a position repeated, put keeps one of its values (which one
// is unspecified) and put_add adds them all.
TMATH_API Tensor put(const Tensor& a, const Tensor& indices, const Tensor& values);
TMATH_API Tensor put_add(const Tensor& a, const Tensor& indices, const Tensor& values);
// gather: indices has a's rank; out[i][j] = a[indices[i][j]][j] for axis 0 (NumPy take_along_axis).
TMATH_API Tensor take_along_axis(const Tensor& a, const Tensor& indices, int axis);
TMATH_API Tensor gather(const Tensor& a, const Tensor& indices, int axis);
TMATH_API Tensor concatenate(const std::vector<Tensor>& xs, int axis = 0);
TMATH_API Tensor stack(const std::vector<Tensor>& xs, int axis = 0);
// Into `sections` equal parts, or at the given indices.
TMATH_API std::vector<Tensor> split(const Tensor& a, int64_t sections, int axis = 0);
TMATH_API std::vector<Tensor> split(const Tensor& a, const std::vector<int64_t>& indices, int axis = 0);
enum class PadMode { Constant, Edge, Reflect };
// pad_width: one (before, after) pair per axis (or a single pair for all axes).
TMATH_API Tensor pad(const Tensor& a, const std::vector<std::pair<int64_t, int64_t>>& pad_width,
                     PadMode mode = PadMode::Constant, Scalar value = 0);
// Lower/upper triangle of the last two axes; k shifts the diagonal.
TMATH_API Tensor tril(const Tensor& a, int64_t k = 0);
TMATH_API Tensor triu(const Tensor& a, int64_t k = 0);

// ---- elementwise unary -----------------------------------------------------
// Float-valued functions of integer/bool inputs compute in float32.
TMATH_API Tensor neg(const Tensor& a);
TMATH_API Tensor abs(const Tensor& a);  // complex -> real magnitude
TMATH_API Tensor sign(const Tensor& a);
TMATH_API Tensor exp(const Tensor& a);
TMATH_API Tensor expm1(const Tensor& a);
TMATH_API Tensor log(const Tensor& a);
TMATH_API Tensor log1p(const Tensor& a);
TMATH_API Tensor log2(const Tensor& a);
TMATH_API Tensor log10(const Tensor& a);
TMATH_API Tensor sqrt(const Tensor& a);
TMATH_API Tensor rsqrt(const Tensor& a);
TMATH_API Tensor square(const Tensor& a);
TMATH_API Tensor reciprocal(const Tensor& a);
TMATH_API Tensor sin(const Tensor& a);
TMATH_API Tensor cos(const Tensor& a);
TMATH_API Tensor tan(const Tensor& a);
TMATH_API Tensor asin(const Tensor& a);
TMATH_API Tensor acos(const Tensor& a);
TMATH_API Tensor atan(const Tensor& a);
TMATH_API Tensor sinh(const Tensor& a);
TMATH_API Tensor cosh(const Tensor& a);
TMATH_API Tensor tanh(const Tensor& a);
TMATH_API Tensor asinh(const Tensor& a);
TMATH_API Tensor acosh(const Tensor& a);
TMATH_API Tensor atanh(const Tensor& a);
TMATH_API Tensor sigmoid(const Tensor& a);
TMATH_API Tensor relu(const Tensor& a);
// approximate=false: x*Phi(x) with erf; true: the tanh approximation.
TMATH_API Tensor gelu(const Tensor& a, bool approximate = false);
// g * gelu'(x) as one elementwise op (the vjp of gelu; real floating dtypes,
// broadcasting like any binary op). approximate selects the same form as gelu.
TMATH_API Tensor gelu_grad(const Tensor& g, const Tensor& x, bool approximate = false);
TMATH_API Tensor silu(const Tensor& a);
TMATH_API Tensor erf(const Tensor& a);
TMATH_API Tensor erfinv(const Tensor& a);
TMATH_API Tensor floor(const Tensor& a);
TMATH_API Tensor ceil(const Tensor& a);
TMATH_API Tensor round(const Tensor& a);  // half to even, as NumPy
TMATH_API Tensor isnan(const Tensor& a);
TMATH_API Tensor isinf(const Tensor& a);
TMATH_API Tensor isfinite(const Tensor& a);
TMATH_API Tensor logical_not(const Tensor& a);
TMATH_API Tensor real(const Tensor& a);
TMATH_API Tensor imag(const Tensor& a);
TMATH_API Tensor conj(const Tensor& a);

// ---- elementwise binary (broadcasting, Array API promotion) -----------------
TMATH_API Tensor add(const Tensor& a, const Tensor& b);
TMATH_API Tensor subtract(const Tensor& a, const Tensor& b);
TMATH_API Tensor multiply(const Tensor& a, const Tensor& b);
// True division: integer inputs give float32.
TMATH_API Tensor divide(const Tensor& a, const Tensor& b);
TMATH_API Tensor floor_divide(const Tensor& a, const Tensor& b);
// Sign follows the divisor (Python/NumPy). Integer division by zero gives 0.
TMATH_API Tensor remainder(const Tensor& a, const Tensor& b);
TMATH_API Tensor power(const Tensor& a, const Tensor& b);
TMATH_API Tensor maximum(const Tensor& a, const Tensor& b);  // NaN propagates
TMATH_API Tensor minimum(const Tensor& a, const Tensor& b);
TMATH_API Tensor atan2(const Tensor& a, const Tensor& b);
TMATH_API Tensor hypot(const Tensor& a, const Tensor& b);
// The representable value after a in the direction of b, in the result dtype's own
// format (float16/bfloat16 step by their bits): b when a == b (so +0 towards -0 is
// -0), NaN when either is NaN, the smallest subnormal with b's sign from zero, and
// the largest finite value from an infinity. Integer inputs compute in float32. Its
// gradient is zero (a step function).
TMATH_API Tensor nextafter(const Tensor& a, const Tensor& b);
TMATH_API Tensor equal(const Tensor& a, const Tensor& b);
TMATH_API Tensor not_equal(const Tensor& a, const Tensor& b);
TMATH_API Tensor less(const Tensor& a, const Tensor& b);
TMATH_API Tensor less_equal(const Tensor& a, const Tensor& b);
TMATH_API Tensor greater(const Tensor& a, const Tensor& b);
TMATH_API Tensor greater_equal(const Tensor& a, const Tensor& b);
TMATH_API Tensor logical_and(const Tensor& a, const Tensor& b);
TMATH_API Tensor logical_or(const Tensor& a, const Tensor& b);
TMATH_API Tensor logical_xor(const Tensor& a, const Tensor& b);

// ---- bitwise (bool and integer dtypes, NumPy semantics; float/complex: DTypeError) ----
// Integer operands promote as in add(); bool & bool stays bool.
TMATH_API Tensor bitwise_and(const Tensor& a, const Tensor& b);
TMATH_API Tensor bitwise_or(const Tensor& a, const Tensor& b);
TMATH_API Tensor bitwise_xor(const Tensor& a, const Tensor& b);
// ~a: ones' complement of integers, logical not of bool.
TMATH_API Tensor bitwise_invert(const Tensor& a);
// Integer dtypes only. A count that is negative or >= the bit width of the
// result dtype gives 0 for <<, and for >> 0 (a >= 0) or -1 (a < 0); >> of a
// signed value is arithmetic (copies the sign bit).
TMATH_API Tensor bitwise_left_shift(const Tensor& a, const Tensor& b);
TMATH_API Tensor bitwise_right_shift(const Tensor& a, const Tensor& b);
// cond ? a : b, broadcasting all three; cond is converted to bool.
TMATH_API Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
TMATH_API Tensor clip(const Tensor& a, std::optional<Tensor> lo, std::optional<Tensor> hi);

// ---- reductions ----------------------------------------------------------
// `axes` empty = all axes. Floats are summed pairwise; f16/bf16 accumulate in f32.
// sum, prod, cumsum and cumprod of bool and signed ints give int64, of unsigned ints
// uint64 (NumPy 2 and the Array API), wrapping around on overflow.
TMATH_API Tensor sum(const Tensor& a, const Axes& axes = {}, bool keepdims = false);
TMATH_API Tensor prod(const Tensor& a, const Axes& axes = {}, bool keepdims = false);
TMATH_API Tensor mean(const Tensor& a, const Axes& axes = {}, bool keepdims = false);
// Two-pass (mean, then squared deviations); ddof as NumPy.
TMATH_API Tensor var(const Tensor& a, const Axes& axes = {}, double ddof = 0, bool keepdims = false);
TMATH_API Tensor std(const Tensor& a, const Axes& axes = {}, double ddof = 0, bool keepdims = false);
TMATH_API Tensor max(const Tensor& a, const Axes& axes = {}, bool keepdims = false);
TMATH_API Tensor min(const Tensor& a, const Axes& axes = {}, bool keepdims = false);
// Index (int64) of the first extreme element; no axis = over the flattened tensor.
TMATH_API Tensor argmax(const Tensor& a, std::optional<int> axis = std::nullopt, bool keepdims = false);
TMATH_API Tensor argmin(const Tensor& a, std::optional<int> axis = std::nullopt, bool keepdims = false);
TMATH_API Tensor any(const Tensor& a, const Axes& axes = {}, bool keepdims = false);
TMATH_API Tensor all(const Tensor& a, const Axes& axes = {}, bool keepdims = false);
TMATH_API Tensor logsumexp(const Tensor& a, const Axes& axes = {}, bool keepdims = false);
TMATH_API Tensor cumsum(const Tensor& a, int axis);
TMATH_API Tensor cumprod(const Tensor& a, int axis);

// ---- neural-network style and matmul-class ops ---------------------------
TMATH_API Tensor softmax(const Tensor& a, int axis = -1);
TMATH_API Tensor log_softmax(const Tensor& a, int axis = -1);
// Normalises over the last `normalized_ndim` axes; weight/bias (if given) have
// that trailing shape. x: (..., *normalized)
TMATH_API Tensor layer_norm(const Tensor& x, std::optional<Tensor> weight = std::nullopt,
                            std::optional<Tensor> bias = std::nullopt, double eps = 1e-5,
                            int normalized_ndim = 1);
// NumPy matmul: a: (..., m, k), b: (..., k, n) -> (..., m, n) with broadcast
// batch axes; 1-D operands are promoted and the added axis removed.
TMATH_API Tensor matmul(const Tensor& a, const Tensor& b);
// Sum over the last `axes` axes of a and the first of b.
TMATH_API Tensor tensordot(const Tensor& a, const Tensor& b, int axes = 2);
TMATH_API Tensor tensordot(const Tensor& a, const Tensor& b, const std::vector<int>& axes_a,
                           const std::vector<int>& axes_b);
// Explicit or implicit-output einsum ("ij,jk->ik", "bij,bjk->bik", "ii->i", "ij->").
TMATH_API Tensor einsum(const std::string& subscripts, const std::vector<Tensor>& operands);
TMATH_API Tensor outer(const Tensor& a, const Tensor& b);
TMATH_API Tensor dot(const Tensor& a, const Tensor& b);

}  // namespace tmath
