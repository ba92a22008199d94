// Reductions over any set of axes, arg-reductions and scans along one axis.
//
// reduce(): kept dims (in output order) and reduced dims (sorted by stride,
// merged where contiguous) are passed to one of three kernels: "row" teams (a
// warp or a block per output) when the reduced elements are contiguous,
// "column" threads (one per output, consecutive outputs adjacent in memory)
// otherwise; when there are too few outputs to fill the GPU the reduced range
// is split and a second kernel combines the partial results in a fixed order,
// so results are deterministic. Columns with at most kColBlockMaxRows reduced rows
// that would need splits run as one kernel of row groups instead (tm_col_block).
#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <string>

#include "backend/cuda/codegen.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/params.h"
#include "core/dispatch.h"
#include "tmath/error.h"

namespace tmath::cuda {
namespace {

using gen::Family;

constexpr int64_t kColBlockMaxRows = 2048;

// TMATH_CUDA_COL_BLOCK=0 keeps the split column kernels (for comparisons).
bool col_block_enabled() {
  static const bool on = !detail::env_off("TMATH_CUDA_COL_BLOCK");
  return on;
}

const char* red_name(OpCode op) {
  switch (op) {
    case OpCode::Sum:
      return "sum";
    case OpCode::Prod:
      return "prod";
    case OpCode::Max:
      return "max";
    case OpCode::Min:
      return "min";
    case OpCode::Any:
      return "any";
    case OpCode::All:
      return "all";
    case OpCode::ArgMax:
      return "argmax";
    case OpCode::ArgMin:
      return "argmin";
    case OpCode::CumSum:
      return "cumsum";
    case OpCode::CumProd:
      return "cumprod";
    default:
      return "reduce";
  }
}

struct Dim {
  int64_t size, xs, os;
};

// Merges adjacent dims (in the given order) that are contiguous for both strides.
std::vector<Dim> merge(const std::vector<Dim>& dims) {
  std::vector<Dim> out;
  for (const Dim& d : dims) {
    if (!out.empty() && out.back().xs == d.xs * d.size && out.back().os == d.os * d.size) {
      out.back() = {out.back().size * d.size, d.xs, d.os};
    } else {
      out.push_back(d);
    }
  }
  return out;
}

void check_dims(size_t n, const char* op, const char* what) {
  if (n > TM_MAXD)
    throw UnsupportedError(std::string("[") + op + "] the cuda kernel takes at most " +
                           std::to_string(TM_MAXD) + " " + what + " dims after merging, got " +
                           std::to_string(n));
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Kept dims (all but `axis`, size > 1) of an axis kernel, merged.
std::vector<Dim> other_dims(const ArrayRef& x, int axis, const ArrayRef& out) {
  std::vector<Dim> dims;
  for (int d = 0; d < x.ndim(); ++d) {
    if (d == axis || x.shape[d] == 1) continue;
    dims.push_back({x.shape[d], x.strides[d], out.strides[d]});
  }
  return merge(dims);
}

AxisParams axis_params(const ArrayRef& x, int axis, const ArrayRef& out, const char* name) {
  if (axis < 0 || axis >= x.ndim())
    throw ShapeError(std::string("[") + name + "] axis " + std::to_string(axis) +
                     " out of range for " + std::to_string(x.ndim()) + " dims");
  const auto dims = other_dims(x, axis, out);
  check_dims(dims.size(), name, "kept");
  AxisParams p{};
  p.x = reinterpret_cast<unsigned long long>(x.data);
  p.out = reinterpret_cast<unsigned long long>(out.data);
  p.n = x.shape[axis];
  p.xa = x.strides[axis];
  p.oa = out.strides[axis];
  p.nk = static_cast<long long>(dims.size());
  p.lines = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    p.kshape[i] = dims[i].size;
    p.kstride[i] = dims[i].xs;
    p.ostride[i] = dims[i].os;
    p.lines *= dims[i].size;
  }
  return p;
}

}  // namespace

void reduce(DeviceContext& dc, OpCode op, const ArrayRef& x, std::span<const int> axes,
            const ArrayRef& out) {
  const char* name = red_name(op);
  const bool ordered = op == OpCode::Max || op == OpCode::Min;
  if (ordered && is_complex(x.dtype))
    throw DTypeError(std::string("[") + name + "] complex dtype " +
                     std::string(dtype_name(x.dtype)) + " has no ordering");
  const int64_t n_out = out.size();
  if (n_out == 0) return;
  const int nd = x.ndim();
  std::vector<bool> red(static_cast<size_t>(nd), false);
  int64_t n_red = 1;
  for (int a : axes) {
    if (a < 0 || a >= nd)
      throw ShapeError(std::string("[") + name + "] axis " + std::to_string(a) +
                       " out of range for " + std::to_string(nd) + " dims");
    red[static_cast<size_t>(a)] = true;
    n_red *= x.shape[a];
  }
  if (n_red == 0) {
    if (ordered) throw ShapeError(std::string("[") + name + "] zero-size reduction");
    const Scalar id = op == OpCode::Sum    ? Scalar(0)
                      : op == OpCode::Prod ? Scalar(1)
                      : op == OpCode::Any  ? Scalar(false)
                                           : Scalar(true);
    fill(dc, out, id, name);
    return;
  }

  if ((op == OpCode::Sum || op == OpCode::Max || op == OpCode::Min) && n_out == 1 &&
      out.dtype == DType::Float32 &&
      queue_tiny(dc, gen::TinyEntry::Kind::ReduceAll, op, out, &x, nullptr))
    return;

  char* base = static_cast<char*>(x.data);
  const auto isz = static_cast<int64_t>(itemsize(x.dtype));
  std::vector<Dim> kept, rdims;
  for (int d = 0; d < nd; ++d) {
    if (x.shape[d] == 1) continue;
    if (red[d]) {
      int64_t xs = x.strides[d];
      if (xs < 0) {  // walk reversed dims forwards
        base += (x.shape[d] - 1) * xs * isz;
        xs = -xs;
      }
      rdims.push_back({x.shape[d], xs, 0});
    } else {
      kept.push_back({x.shape[d], x.strides[d], 0});
    }
  }
  kept = merge(kept);
  std::stable_sort(rdims.begin(), rdims.end(),
                   [](const Dim& a, const Dim& b) { return a.xs > b.xs; });
  rdims = merge(rdims);
  check_dims(kept.size(), name, "kept");
  check_dims(rdims.size(), name, "reduced");

  RedParams p{};
  p.x = reinterpret_cast<unsigned long long>(base);
  p.out = reinterpret_cast<unsigned long long>(out.data);
  p.n_out = n_out;
  p.n_red = n_red;
  p.nk = static_cast<long long>(kept.size());
  p.nr = static_cast<long long>(rdims.size());
  for (size_t i = 0; i < kept.size(); ++i) p.kshape[i] = kept[i].size, p.kstride[i] = kept[i].xs;
  for (size_t i = 0; i < rdims.size(); ++i) p.rshape[i] = rdims[i].size, p.rstride[i] = rdims[i].xs;
  if (p.nr == 0) {  // every reduced dim has size 1: a copy through the accumulator
    p.nr = 1;
    p.rshape[0] = 1;
    p.rstride[0] = 0;
  }

  const bool red_inner = !rdims.empty() && rdims.back().xs == 1;
  const bool kept_inner = !kept.empty() && kept.back().xs == 1;
  const bool row = red_inner || (!kept_inner && n_red >= 32);
  const int64_t target = int64_t{dc.props().sm_count} * dc.props().max_threads_per_sm;

  const Program& prog = dc.program(
      gen::key(Family::Reduce, static_cast<uint32_t>(op), static_cast<uint32_t>(x.dtype),
               static_cast<uint32_t>(out.dtype)),
      [&] { return gen::reduce(op, x.dtype, out.dtype); }, name);

  int64_t splits = 1;
  int kernel;
  if (row) {
    const int64_t team = n_red >= 2048 ? kThreads : 32;
    kernel = team == 32 ? 0 : 1;
    // As many teams as the device holds at once for this kernel (its register use
    // decides the occupancy): a grid of more would end in a partial second wave.
    const int per_sm = prog.resident[static_cast<size_t>(kernel)];
    const int64_t resident =
        per_sm > 0 ? int64_t{dc.props().sm_count} * per_sm * kThreads : target;
    const int64_t teams = ceil_div(resident, team);
    if (n_out < teams)
      splits = std::max<int64_t>(1, std::min(ceil_div(teams, n_out), n_red / (team * 16)));
  } else {
    kernel = 2;
    if (n_out < target)
      splits = std::max<int64_t>(1, std::min(ceil_div(target, n_out), n_red / 16));
    splits = std::max<int64_t>(splits, ceil_div(n_red, 4096));  // bounded sequential runs
    splits = std::min<int64_t>(splits, 65535);
  }
  // Columns with few reduced rows that would need splits (and a second kernel to
  // combine them): one block per C = 256 / G outputs with G row groups instead
  // (tm_col_block). G grows while the grid is under two blocks per SM.
  if (!row && splits > 1 && n_red <= kColBlockMaxRows && col_block_enabled()) {
    int64_t groups = 8;
    while (groups < 32 && ceil_div(n_out, kThreads / (groups * 2)) <= 2 * dc.props().sm_count &&
           n_red >= 8 * groups * 2)
      groups *= 2;
    p.chunk = groups;
    p.splits = 1;
    launch(name, prog[5], static_cast<unsigned>(ceil_div(n_out, kThreads / groups)), 1, kThreads,
           0, dc.stream(), p);
    return;
  }
  // Column kernels reduce a contiguous chunk of rows per split. The splits of a row
  // interleave (see row_acc); their count above keeps at least 16 elements per thread.
  if (!row) {
    p.chunk = ceil_div(n_red, splits);
    splits = ceil_div(n_red, p.chunk);
  }
  p.splits = splits;

  const DType acc = gen::reduce_acc(op, x.dtype);
  std::unique_ptr<DeviceContext::Scratch> partial;
  if (splits > 1) {
    partial = std::make_unique<DeviceContext::Scratch>(
        dc, static_cast<size_t>(n_out * splits) * itemsize(acc));
    p.partial = reinterpret_cast<unsigned long long>(partial->get());
  }
  const int64_t work = n_out * splits;
  // Many splits of few outputs in blocks: the last block of each output combines
  // its partials in the same kernel (a second launch costs more than the combine).
  const bool combine_in_place = splits >= 64 && n_out <= DeviceContext::kReduceCounters && kernel == 1;
  if (combine_in_place) p.counter = reinterpret_cast<unsigned long long>(dc.reduce_counters(name));
  if (kernel == 0) {
    launch(name, prog[0], static_cast<unsigned>(ceil_div(work, kThreads / 32)), 1, kThreads, 0,
           dc.stream(), p);
  } else if (kernel == 1) {
    launch(name, prog[1], static_cast<unsigned>(work), 1, kThreads, 0, dc.stream(), p);
  } else {
    launch(name, prog[2], static_cast<unsigned>(ceil_div(n_out, kThreads)),
           static_cast<unsigned>(splits), kThreads, 0, dc.stream(), p);
  }
  if (splits > 1 && !combine_in_place) {
    // Many splits per output and few outputs: a block per output combines them
    // (a thread walking 1000 partials one after another is latency-bound).
    if (splits >= 64 && n_out <= 4096) {
      launch(name, prog[4], static_cast<unsigned>(n_out), 1, kThreads, 0, dc.stream(), p);
    } else {
      launch(name, prog[3], static_cast<unsigned>(ceil_div(n_out, kThreads)), 1, kThreads, 0,
             dc.stream(), p);
    }
  }
}

void arg_reduce(DeviceContext& dc, OpCode op, const ArrayRef& x, int axis, const ArrayRef& out) {
  const char* name = red_name(op);
  if (op != OpCode::ArgMax && op != OpCode::ArgMin)
    throw UnsupportedError("[arg_reduce] " + std::string(op_name(op)) + " is not an arg-reduction");
  if (out.dtype != DType::Int64)
    throw DTypeError(std::string("[") + name + "] output dtype must be int64, got " +
                     std::string(dtype_name(out.dtype)));
  if (is_complex(x.dtype))
    throw DTypeError(std::string("[") + name + "] complex dtype " +
                     std::string(dtype_name(x.dtype)) + " has no ordering");
  if (out.size() == 0) return;
  AxisParams p = axis_params(x, axis, out, name);
  if (p.n == 0) throw ShapeError(std::string("[") + name + "] zero-size reduction");
  const Program& prog = dc.program(
      gen::key(Family::ArgReduce, static_cast<uint32_t>(op), static_cast<uint32_t>(x.dtype)),
      [&] { return gen::arg_reduce(op, x.dtype); }, name);
  const bool thread =
      p.n < 32 || (p.xa != 1 && p.nk > 0 && p.kstride[p.nk - 1] == 1 && p.lines >= 2048);
  if (thread) {
    launch(name, prog[1], static_cast<unsigned>(ceil_div(p.lines, kThreads)), 1, kThreads, 0,
           dc.stream(), p);
  } else {
    launch(name, prog[0], static_cast<unsigned>(ceil_div(p.lines, kThreads / 32)), 1, kThreads, 0,
           dc.stream(), p);
  }
}

void scan(DeviceContext& dc, OpCode op, const ArrayRef& x, int axis, const ArrayRef& out) {
  const char* name = red_name(op);
  if (op != OpCode::CumSum && op != OpCode::CumProd)
    throw UnsupportedError("[scan] " + std::string(op_name(op)) + " is not a scan");
  if (out.size() == 0) return;
  AxisParams p = axis_params(x, axis, out, name);
  const Program& prog = dc.program(
      gen::key(Family::Scan, static_cast<uint32_t>(op), static_cast<uint32_t>(x.dtype),
               static_cast<uint32_t>(out.dtype)),
      [&] { return gen::scan(op, x.dtype, out.dtype); }, name);
  const bool block = p.n >= 256 && (p.xa == 1 || p.lines < 1024);
  if (block) {
    launch(name, prog[0], static_cast<unsigned>(p.lines), 1, kThreads, 0, dc.stream(), p);
  } else {
    launch(name, prog[1], static_cast<unsigned>(ceil_div(p.lines, kThreads)), 1, kThreads, 0,
           dc.stream(), p);
  }
}

}  // namespace tmath::cuda
