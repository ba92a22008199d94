// Helpers shared by the op front-end files (internal).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/primitives.h"
#include "core/tensor_impl.h"
#include "tmath/ops.h"

namespace tmath::detail {

// Normalises a possibly negative axis; ShapeError naming `op` if out of range.
int normalize_axis(int axis, int ndim, const char* op);
// Sorted unique normalised axes; empty input = all axes.
std::vector<int> normalize_axes(const Axes& axes, int ndim, const char* op);
std::string shape_str(const Shape& s);
// Result dtype of a binary op, honouring weakly typed scalar operands.
DType result_type(const Tensor& a, const Tensor& b);
// Moves/casts a weak 0-d constant or any tensor to (dtype, device) if needed.
Tensor cast_to(const Tensor& t, DType dt, Device device);
// Checks that all tensors live on one device and returns it (weak CPU scalars adapt).
Device common_device(const std::vector<Tensor>& ts, const char* op);

// Elementwise op by opcode (used by gradient rules).
Tensor apply_unary(OpCode op, const Tensor& a);
Tensor apply_binary(OpCode op, const Tensor& a, const Tensor& b);

void store_scalar_to(void* dst, DType dt, Scalar v);

// sum() in a's own dtype, as NumPy's einsum and vecdot give it: integer and bool sums
// (int64/uint64 by accumulate_type) are cast back, which wraps exactly as accumulating
// in the narrow type would (and is a logical or for bool).
Tensor sum_in_dtype(const Tensor& a, const Axes& axes);

// take (flat) and put/put_add for indices already known to be int64 in [0, size):
// no bounds check, so no host read (gradient rules, which may run while work is
// recorded for replay).
Tensor take_flat_unchecked(const Tensor& a, const Tensor& flat_idx);
Tensor put_unchecked(OpCode op, const Tensor& a, const Tensor& flat_idx, const Tensor& values);

}  // namespace tmath::detail
