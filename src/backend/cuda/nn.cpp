// softmax / log_softmax over the last axis and layer_norm over contiguous rows:
// a warp per row holding the row in registers up to 1024 elements, a block per
// row in registers up to 8192, a block per row streaming from memory beyond
// that. float16/bfloat16 compute in float32.
#include <string>

#include "backend/cuda/codegen.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/params.h"
#include "tmath/error.h"

namespace tmath::cuda {
namespace {

// Launches kernel k of the set {w1, w2, w4, w8, w16, w32, block, block in registers with
// 8, 16, 32 elements per thread} (gen::row_kernel_names) for rows of p.len; prog(k) is
// the program of that one kernel.
template <class GetProgram>
void launch_rows(DeviceContext& dc, const char* op, GetProgram&& prog, const RowParams& p) {
  if (p.rows == 0 || p.len == 0) return;
  // Warp per row, unless that leaves most of the GPU idle (fewer than two blocks per
  // SM) for rows long enough to share a block: then block per row in registers.
  const int64_t warp_blocks = (p.rows + kThreads / 32 - 1) / (kThreads / 32);
  const bool few_rows = warp_blocks < 2 * int64_t{dc.props().sm_count} && p.len > 256;
  if (p.len <= 1024 && !few_rows) {
    int k = 0;
    while ((int64_t{32} << k) < p.len) ++k;
    launch(op, prog(k)[0], static_cast<unsigned>(warp_blocks), 1, kThreads, 0, dc.stream(), p);
  } else if (p.len <= int64_t{32} * kThreads) {
    const int k = p.len <= int64_t{8} * kThreads ? 7 : p.len <= int64_t{16} * kThreads ? 8 : 9;
    launch(op, prog(k)[0], static_cast<unsigned>(p.rows), 1, kThreads, 0, dc.stream(), p);
  } else {
    launch(op, prog(6)[0], static_cast<unsigned>(p.rows), 1, kThreads, 0, dc.stream(), p);
  }
}

void check_float(DType dt, const char* op) {
  if (!is_floating(dt))
    throw DTypeError(std::string("[") + op + "] cuda kernel needs a real floating dtype, got " +
                     std::string(dtype_name(dt)));
}

}  // namespace

void softmax(DeviceContext& dc, OpCode op, const ArrayRef& x, const ArrayRef& out) {
  const char* name = op == OpCode::Softmax ? "softmax" : "log_softmax";
  check_float(x.dtype, name);
  if (!x.is_contiguous())
    throw UnsupportedError(std::string("[") + name + "] cuda kernel needs a contiguous input");
  const int64_t n = x.size();
  if (n == 0) return;
  RowParams p{};
  p.x = reinterpret_cast<unsigned long long>(x.data);
  p.out = reinterpret_cast<unsigned long long>(out.data);
  p.len = x.ndim() == 0 ? 1 : x.shape[x.ndim() - 1];
  p.rows = p.len == 0 ? 0 : n / p.len;
  auto prog = [&](int k) -> const Program& {
    return dc.program(gen::key(gen::Family::Softmax, static_cast<uint32_t>(op),
                               static_cast<uint32_t>(x.dtype), static_cast<uint32_t>(k)),
                      [&] { return gen::softmax(op, x.dtype, k); }, name);
  };
  launch_rows(dc, name, prog, p);
}

void layer_norm(DeviceContext& dc, const ArrayRef& x, const ArrayRef& weight, const ArrayRef& bias,
                const LayerNormArgs& args, const ArrayRef& out) {
  check_float(x.dtype, "layer_norm");
  const bool has_w = weight.data != nullptr, has_b = bias.data != nullptr;
  for (const ArrayRef* t : {&x, &weight, &bias}) {
    if (t->data == nullptr) continue;
    if (t->dtype != x.dtype)
      throw DTypeError("[layer_norm] weight/bias dtype " + std::string(dtype_name(t->dtype)) +
                       " differs from the input's " + std::string(dtype_name(x.dtype)));
    if (!t->is_contiguous())
      throw UnsupportedError("[layer_norm] cuda kernel needs contiguous operands");
  }
  const int64_t n = x.size();
  if (n == 0 || args.inner <= 0) return;
  RowParams p{};
  p.x = reinterpret_cast<unsigned long long>(x.data);
  p.out = reinterpret_cast<unsigned long long>(out.data);
  p.w = reinterpret_cast<unsigned long long>(weight.data);
  p.b = reinterpret_cast<unsigned long long>(bias.data);
  p.len = args.inner;
  p.rows = n / args.inner;
  p.eps = args.eps;
  const int flags = (has_w ? 1 : 0) | (has_b ? 2 : 0);
  auto prog = [&](int k) -> const Program& {
    return dc.program(gen::key(gen::Family::LayerNorm, static_cast<uint32_t>(flags),
                               static_cast<uint32_t>(x.dtype), static_cast<uint32_t>(k)),
                      [&] { return gen::layer_norm(x.dtype, flags, k); }, "layer_norm");
  };
  launch_rows(dc, "layer_norm", prog, p);
}

}  // namespace tmath::cuda
