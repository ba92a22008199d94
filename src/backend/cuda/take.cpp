// take / take_along_axis: one gather kernel; put / put_add: one scatter kernel. Each output dim either moves through
// x (pre/post dims) or through the int64 index array (index dims); the index
// value then steps along x's axis.
#include <string>
#include <vector>

#include "backend/cuda/codegen.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/params.h"
#include "tmath/error.h"

namespace tmath::cuda {

void take(DeviceContext& dc, OpCode op, const ArrayRef& x, const ArrayRef& idx, int axis,
          const ArrayRef& out) {
  const char* name = op == OpCode::Take ? "take" : "take_along_axis";
  if (op != OpCode::Take && op != OpCode::TakeAlongAxis)
    throw UnsupportedError("[take] " + std::string(op_name(op)) + " is not a gather");
  if (idx.dtype != DType::Int64)
    throw DTypeError(std::string("[") + name + "] indices must be int64, got " +
                     std::string(dtype_name(idx.dtype)));
  if (axis < 0 || axis >= x.ndim())
    throw ShapeError(std::string("[") + name + "] axis " + std::to_string(axis) +
                     " out of range for " + std::to_string(x.ndim()) + " dims");
  const int64_t n = out.size();
  if (n == 0) return;
  struct D {
    int64_t size, xs, is;
  };
  std::vector<D> dims;
  if (op == OpCode::Take) {
    for (int d = 0; d < axis; ++d) dims.push_back({x.shape[d], x.strides[d], 0});
    for (int e = 0; e < idx.ndim(); ++e) dims.push_back({idx.shape[e], 0, idx.strides[e]});
    for (int d = axis + 1; d < x.ndim(); ++d) dims.push_back({x.shape[d], x.strides[d], 0});
  } else {
    for (int d = 0; d < out.ndim(); ++d)
      dims.push_back({out.shape[d], d == axis ? 0 : x.strides[d], idx.strides[d]});
  }
  std::vector<D> merged;
  for (const D& d : dims) {
    if (d.size == 1) continue;
    if (!merged.empty() && merged.back().xs == d.xs * d.size && merged.back().is == d.is * d.size) {
      merged.back() = {merged.back().size * d.size, d.xs, d.is};
    } else {
      merged.push_back(d);
    }
  }
  if (merged.size() > 2 * TM_MAXD)
    throw UnsupportedError(std::string("[") + name + "] the cuda kernel takes at most " +
                           std::to_string(2 * TM_MAXD) + " dims after merging");
  TakeParams p{};
  p.x = reinterpret_cast<unsigned long long>(x.data);
  p.idx = reinterpret_cast<unsigned long long>(idx.data);
  p.out = reinterpret_cast<unsigned long long>(out.data);
  p.n = n;
  p.nd = static_cast<long long>(merged.size());
  p.axis = axis;
  p.axis_stride = x.strides[axis];
  for (size_t i = 0; i < merged.size(); ++i) {
    p.shape[i] = merged[i].size;
    p.xstride[i] = merged[i].xs;
    p.istride[i] = merged[i].is;
  }
  const size_t isz = itemsize(x.dtype);
  const Program& prog = dc.program(
      gen::key(gen::Family::Take, static_cast<uint32_t>(isz)), [&] { return gen::take(isz); },
      name);
  launch(name, prog[0], grid_for(dc, n), 1, kThreads, 0, dc.stream(), p);
}

void put(DeviceContext& dc, OpCode op, const ArrayRef& idx, const ArrayRef& values,
         const ArrayRef& out) {
  const char* name = op == OpCode::Put ? "put" : "put_add";
  if (op != OpCode::Put && op != OpCode::PutAdd)
    throw UnsupportedError("[put] " + std::string(op_name(op)) + " is not a scatter op");
  if (idx.dtype != DType::Int64 || idx.ndim() != 1 || values.ndim() != 1 ||
      values.shape[0] != idx.shape[0] || values.dtype != out.dtype)
    throw ShapeError(std::string("[") + name +
                     "] expects 1-d int64 positions and values of their length and the output's dtype");
  if (!gen::put_supported(op, out.dtype))
    throw UnsupportedError(std::string("[") + name + "] no cuda kernel for " +
                           std::string(dtype_name(out.dtype)));
  const int64_t n = idx.shape[0];
  if (n == 0) return;
  PutParams p{};
  p.out = reinterpret_cast<unsigned long long>(out.data);
  p.idx = reinterpret_cast<unsigned long long>(idx.data);
  p.val = reinterpret_cast<unsigned long long>(values.data);
  p.n = n;
  p.is = idx.strides[0];
  p.vs = values.strides[0];
  const uint32_t code = op == OpCode::Put ? static_cast<uint32_t>(itemsize(out.dtype))
                                          : 100u + static_cast<uint32_t>(out.dtype);
  const Program& prog = dc.program(
      gen::key(gen::Family::Put, code), [&] { return gen::put(op, out.dtype); }, name);
  launch(name, prog[0], grid_for(dc, n), 1, kThreads, 0, dc.stream(), p);
}

}  // namespace tmath::cuda
