// Elementwise launches: unary, binary, where, copy/cast, fill, arange.
//
// Operand layouts are collapsed on the host (size-1 dims dropped, dims that
// are contiguous for every operand merged). When every input is contiguous or
// a single element, the contiguous kernel runs, with 16-byte vector accesses
// when all pointers are aligned; anything else runs the strided kernel with
// 32-bit index arithmetic where the size allows.
#include <algorithm>
#include <array>
#include <complex>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/cuda/codegen.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/params.h"
#include "tmath/error.h"

namespace tmath::cuda {

// Grid-stride kernels get at most this many blocks per SM (env TMATH_CUDA_BLOCKS_PER_SM
// overrides it, for tuning).
int64_t blocks_per_sm() {
  static const int64_t v = [] {
    const char* e = std::getenv("TMATH_CUDA_BLOCKS_PER_SM");
    const long n = e ? std::strtol(e, nullptr, 10) : 0;
    return n > 0 ? static_cast<int64_t>(n) : int64_t{32};
  }();
  return v;
}

unsigned grid_for(const DeviceContext& dc, int64_t work) {
  const int64_t blocks = (work + kThreads - 1) / kThreads;
  const int64_t cap = int64_t{dc.props().sm_count} * blocks_per_sm();
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(blocks, cap)));
}

namespace {

using gen::Family;

std::string lower_name(OpCode op) {
  std::string n(op_name(op));
  for (auto& c : n) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return n;
}

// Operands of one elementwise launch; [0] is the output. Plain kernels take 4,
// fused programs up to TM_FMAX.
constexpr int kMaxOperands = TM_FMAX;
struct Operands {
  int count = 0;
  std::array<char*, kMaxOperands> data{};
  std::array<size_t, kMaxOperands> isz{};
  std::array<const int64_t*, kMaxOperands> strides{};
};

struct Collapsed {
  std::vector<int64_t> shape;
  std::array<std::vector<int64_t>, kMaxOperands> stride;
};

Collapsed collapse(std::span<const int64_t> shape, const Operands& ops) {
  Collapsed c;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    c.shape.push_back(shape[i]);
    for (int k = 0; k < ops.count; ++k) c.stride[k].push_back(ops.strides[k][i]);
  }
  for (int i = static_cast<int>(c.shape.size()) - 2; i >= 0; --i) {
    bool ok = true;
    for (int k = 0; k < ops.count && ok; ++k)
      ok = c.stride[k][i] == c.stride[k][i + 1] * c.shape[i + 1];
    if (!ok) continue;
    c.shape[i + 1] *= c.shape[i];
    c.shape.erase(c.shape.begin() + i);
    for (int k = 0; k < ops.count; ++k) c.stride[k].erase(c.stride[k].begin() + i);
  }
  return c;
}

// SP: the strided kernels' parameter struct (EwParams, FwParams). Prog: a Program,
// or anything that yields kernel k (0: contiguous, 1: vectorised, 2/3: strided
// with 32/64-bit indices) with operator[].
template <class SP, class Prog>
void launch_strided(DeviceContext& dc, const char* op, const Prog& prog, const Operands& ops,
                    const Collapsed& c, size_t dim0, std::array<int64_t, kMaxOperands> base) {
  const size_t nd = c.shape.size() - dim0;
  if (nd > TM_MAXD) {
    // More non-mergeable dims than a kernel takes: one launch per index of the outer dim.
    for (int64_t i = 0; i < c.shape[dim0]; ++i) {
      std::array<int64_t, kMaxOperands> b = base;
      for (int k = 0; k < ops.count; ++k) b[k] += i * c.stride[k][dim0];
      launch_strided<SP>(dc, op, prog, ops, c, dim0 + 1, b);
    }
    return;
  }
  SP p{};
  p.n = 1;
  p.nd = static_cast<long long>(nd);
  for (size_t d = 0; d < nd; ++d) {
    p.shape[d] = c.shape[dim0 + d];
    p.n *= p.shape[d];
    for (int k = 0; k < ops.count; ++k) p.stride[k][d] = c.stride[k][dim0 + d];
  }
  for (int k = 0; k < ops.count; ++k)
    p.ptr[k] = reinterpret_cast<unsigned long long>(ops.data[k] +
                                                    base[k] * static_cast<int64_t>(ops.isz[k]));
  const bool small = p.n < (int64_t{1} << 31);
  launch(op, prog[small ? 2 : 3], grid_for(dc, p.n), 1, kThreads, 0, dc.stream(), p);
}

// Runs an elementwise program over `shape` (n elements); SP/CP: the parameter
// structs of its strided and contiguous kernels.
template <class SP = EwParams, class CP = EwcParams, class Prog = Program>
void run(DeviceContext& dc, const char* op, const Prog& prog, const Operands& ops,
         std::span<const int64_t> shape, int64_t n) {
  if (n == 0) return;
  const Collapsed c = collapse(shape, ops);
  bool contiguous = c.shape.size() <= 1;
  if (contiguous && !c.shape.empty()) {
    contiguous = c.stride[0][0] == 1;
    for (int k = 1; k < ops.count && contiguous; ++k)
      contiguous = c.stride[k][0] == 1 || c.stride[k][0] == 0;
  }
  if (!contiguous) {
    launch_strided<SP>(dc, op, prog, ops, c, 0, {});
    return;
  }
  CP p{};
  p.n = n;
  size_t max_isz = 0;
  for (int k = 0; k < ops.count; ++k) {
    p.ptr[k] = reinterpret_cast<unsigned long long>(ops.data[k]);
    if (k > 0 && (c.shape.empty() || c.stride[k][0] == 0)) p.scalar_mask |= 1LL << k;
    max_isz = std::max(max_isz, ops.isz[k]);
  }
  const int vec = gen::vec_width(max_isz);
  bool aligned = vec > 1 && n >= 4 * vec;
  for (int k = 0; k < ops.count && aligned; ++k) {
    if ((p.scalar_mask >> k) & 1) continue;
    aligned = p.ptr[k] % (ops.isz[k] * static_cast<size_t>(vec)) == 0;
  }
  if (aligned) {
    launch(op, prog[1], grid_for(dc, (n + vec - 1) / vec), 1, kThreads, 0, dc.stream(), p);
  } else {
    launch(op, prog[0], grid_for(dc, n), 1, kThreads, 0, dc.stream(), p);
  }
}

void add(Operands& o, const ArrayRef& a) {
  o.data[o.count] = static_cast<char*>(a.data);
  o.isz[o.count] = itemsize(a.dtype);
  o.strides[o.count] = a.strides.data();
  ++o.count;
}

[[noreturn]] void bad_dtype(OpCode op, DType dt) {
  throw DTypeError("[" + std::string(op_name(op)) + "] cuda kernel does not support dtype " +
                   std::string(dtype_name(dt)));
}

// Bytes of `v` stored as dtype dt (the CPU fill/scalar conversion rules).
std::array<unsigned char, 16> scalar_bytes(Scalar v, DType dt) {
  std::array<unsigned char, 16> b{};
  auto put = [&](auto x) { std::memcpy(b.data(), &x, sizeof x); };
  switch (dt) {
    case DType::Bool:
      put(static_cast<uint8_t>(v.kind() == Scalar::Kind::Complex ? std::abs(v.as_complex()) != 0
                                                                 : v.as_double() != 0));
      break;
    case DType::Int8:
      put(static_cast<int8_t>(v.as_int()));
      break;
    case DType::Int16:
      put(static_cast<int16_t>(v.as_int()));
      break;
    case DType::Int32:
      put(static_cast<int32_t>(v.as_int()));
      break;
    case DType::Int64:
      put(static_cast<int64_t>(v.as_int()));
      break;
    case DType::UInt8:
      put(static_cast<uint8_t>(v.as_int()));
      break;
    case DType::UInt16:
      put(static_cast<uint16_t>(v.as_int()));
      break;
    case DType::UInt32:
      put(static_cast<uint32_t>(v.as_int()));
      break;
    case DType::UInt64:
      put(static_cast<uint64_t>(v.as_int()));
      break;
    case DType::Float16:
      put(Half(static_cast<float>(v.as_double())).bits);
      break;
    case DType::BFloat16:
      put(BFloat16(static_cast<float>(v.as_double())).bits);
      break;
    case DType::Float32:
      put(static_cast<float>(v.as_double()));
      break;
    case DType::Float64:
      put(v.as_double());
      break;
    case DType::Complex64:
      put(complex64_t(v.as_complex()));
      break;
    case DType::Complex128:
      put(complex128_t(v.as_complex()));
      break;
  }
  return b;
}

// ---- the tiny-op queue (DeviceContext::queue_tiny) ----

// Code of (kind, op) in gen::tiny_ops(), or -1.
int tiny_code(gen::TinyEntry::Kind kind, OpCode op) {
  constexpr size_t kKinds = 5;  // TinyEntry::Kind
  static const auto table = [] {
    std::vector<int16_t> t(kKinds * (static_cast<size_t>(kNumOpCodes) + 1), -1);
    const auto& ops = gen::tiny_ops();
    for (size_t c = 0; c < ops.size(); ++c)
      t[kKinds * static_cast<size_t>(ops[c].op) + static_cast<size_t>(ops[c].kind)] =
          static_cast<int16_t>(c);
    return t;
  }();
  return table[kKinds * static_cast<size_t>(op) + static_cast<size_t>(kind)];
}

// Every element of r at one address (a broadcast scalar).
bool single(const ArrayRef& r) {
  for (size_t i = 0; i < r.shape.size(); ++i)
    if (r.shape[i] != 1 && r.strides[i] != 0) return false;
  return true;
}

}  // namespace

bool queue_tiny(DeviceContext& dc, gen::TinyEntry::Kind kind, OpCode op, const ArrayRef& out,
                const ArrayRef* a, const ArrayRef* b, uint64_t bits) {
  const bool reduce = kind == gen::TinyEntry::Kind::ReduceAll || kind == gen::TinyEntry::Kind::Dot;
  const int64_t n = reduce ? a->size() : out.size();
  if (n == 0 || n > DeviceContext::tiny_max_elements() || !out.is_contiguous()) return false;
  if (reduce && (out.size() != 1 || !a->is_contiguous() || (b && !b->is_contiguous())))
    return false;
  const bool fill = kind == gen::TinyEntry::Kind::Fill32;
  if (fill ? itemsize(out.dtype) != 4 : out.dtype != DType::Float32) return false;
  const int code = tiny_code(kind, op);
  if (code < 0) return false;
  TinyOp t{};
  t.out = reinterpret_cast<unsigned long long>(out.data);
  long long flags = 0;
  int k = 0;
  for (const ArrayRef* in : {a, b}) {
    if (in) {
      if (in->dtype != DType::Float32) return false;
      const bool one = single(*in);
      if (!one && !in->is_contiguous()) return false;
      (k == 0 ? t.a : t.b) = reinterpret_cast<unsigned long long>(in->data);
      if (one) flags |= 1LL << k;
    }
    ++k;
  }
  if (fill) t.b = bits;
  t.nc = static_cast<long long>(n) | (static_cast<long long>(code) << 32) | (flags << 48);
  return dc.queue_tiny(t);
}

void unary(DeviceContext& dc, OpCode op, const ArrayRef& x, const ArrayRef& out) {
  if (!gen::unary_supported(op, x.dtype)) bad_dtype(op, x.dtype);
  if (queue_tiny(dc, gen::TinyEntry::Kind::Unary, op, out, &x, nullptr)) return;
  const std::string name = lower_name(op);
  const Program& prog = dc.program(
      gen::key(Family::Unary, static_cast<uint32_t>(op), static_cast<uint32_t>(x.dtype),
               static_cast<uint32_t>(out.dtype)),
      [&] { return gen::unary(op, x.dtype, out.dtype); }, name.c_str());
  Operands o;
  add(o, out);
  add(o, x);
  run(dc, name.c_str(), prog, o, out.shape, out.size());
}

void binary(DeviceContext& dc, OpCode op, const ArrayRef& a, const ArrayRef& b,
            const ArrayRef& out) {
  if (!gen::binary_supported(op, a.dtype)) bad_dtype(op, a.dtype);
  if (b.dtype != a.dtype)
    throw DTypeError("[" + lower_name(op) + "] operands must share a dtype, got " +
                     std::string(dtype_name(a.dtype)) + " and " + std::string(dtype_name(b.dtype)));
  if (queue_tiny(dc, gen::TinyEntry::Kind::Binary, op, out, &a, &b)) return;
  const std::string name = lower_name(op);
  const Program& prog = dc.program(
      gen::key(Family::Binary, static_cast<uint32_t>(op), static_cast<uint32_t>(a.dtype),
               static_cast<uint32_t>(out.dtype)),
      [&] { return gen::binary(op, a.dtype, out.dtype); }, name.c_str());
  Operands o;
  add(o, out);
  add(o, a);
  add(o, b);
  run(dc, name.c_str(), prog, o, out.shape, out.size());
}

void where(DeviceContext& dc, const ArrayRef& cond, const ArrayRef& a, const ArrayRef& b,
           const ArrayRef& out) {
  if (cond.dtype != DType::Bool)
    throw DTypeError("[where] condition must be bool, got " + std::string(dtype_name(cond.dtype)));
  const size_t isz = itemsize(out.dtype);
  const Program& prog = dc.program(
      gen::key(Family::Where, static_cast<uint32_t>(isz)), [&] { return gen::where(isz); },
      "where");
  Operands o;
  add(o, out);
  add(o, cond);
  add(o, a);
  add(o, b);
  run(dc, "where", prog, o, out.shape, out.size());
}

namespace {
bool same_instrs(const std::vector<FusedInstr>& a, const std::vector<FusedInstr>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].kind != b[i].kind || a[i].op != b[i].op || a[i].dtype != b[i].dtype ||
        a[i].a != b[i].a || a[i].b != b[i].b || a[i].c != b[i].c)
      return false;
  return true;
}

// The compiled kernel `variant` (0: contiguous, 1: vectorised, 2/3: strided) of a
// fused program. Each variant is its own NVRTC program, compiled when first used,
// so a first call compiles one kernel instead of four. A small per-thread list of
// the kernels used last answers repeated calls (a loop, a compiled function)
// without building the signature text; a miss goes through the device's cache
// (memory, then disk).
CUfunction fused_kernel(DeviceContext& dc, const FusedProgram& p, int variant) {
  struct Recent {
    DeviceContext* dc;
    int variant;
    std::vector<FusedInstr> instrs;
    CUfunction fn;
  };
  thread_local std::vector<Recent> recent;
  for (size_t i = 0; i < recent.size(); ++i) {
    if (recent[i].dc == &dc && recent[i].variant == variant &&
        same_instrs(recent[i].instrs, p.instrs)) {
      if (i > 0) std::swap(recent[i], recent[0]);
      return recent[0].fn;
    }
  }
  if (!gen::fused_supported(p))
    throw UnsupportedError("[fused] the cuda backend cannot run this program");
  const Program& prog = dc.program(p.signature() + "#" + std::to_string(variant),
                                   [&] { return gen::fused(p, variant); }, "fused");
  if (recent.size() >= 16) recent.pop_back();
  recent.insert(recent.begin(), Recent{&dc, variant, p.instrs, prog[0]});
  return prog[0];
}

// The four kernels of a fused program, compiled on demand.
struct FusedKernels {
  DeviceContext& dc;
  const FusedProgram& p;
  CUfunction operator[](size_t k) const { return fused_kernel(dc, p, static_cast<int>(k)); }
};
}  // namespace

void fused(DeviceContext& dc, const FusedProgram& p, std::span<const ArrayRef> inputs,
           const ArrayRef& out) {
  Operands o;
  add(o, out);
  for (const auto& in : inputs) add(o, in);
  run<FwParams, FwcParams>(dc, "fused", FusedKernels{dc, p}, o, out.shape, out.size());
}

void copy(DeviceContext& dc, const ArrayRef& src, const ArrayRef& dst, const char* op) {
  const int64_t n = dst.size();
  if (n == 0) return;
  Operands o;
  add(o, dst);
  add(o, src);
  if (src.dtype == dst.dtype) {
    const size_t isz = itemsize(src.dtype);
    const Collapsed c = collapse(dst.shape, o);
    const auto bytes = static_cast<size_t>(n) * isz;
    if (c.shape.size() <= 1 && (c.shape.empty() || (c.stride[0][0] == 1 && c.stride[1][0] == 1))) {
      TM_CUDA(op,
              cudaMemcpyAsync(dst.data, src.data, bytes, cudaMemcpyDeviceToDevice, dc.stream()));
      return;
    }
    if (c.shape.size() == 2 && c.stride[0][1] == 1 && c.stride[1][1] == 1 &&
        c.stride[0][0] >= c.shape[1] && c.stride[1][0] >= c.shape[1] &&
        static_cast<size_t>(std::max(c.stride[0][0], c.stride[1][0])) * isz < (size_t{1} << 31)) {
      // Rows of contiguous elements (slices, concatenation): a 2-D DMA copy.
      TM_CUDA(op, cudaMemcpy2DAsync(dst.data, static_cast<size_t>(c.stride[0][0]) * isz, src.data,
                                    static_cast<size_t>(c.stride[1][0]) * isz,
                                    static_cast<size_t>(c.shape[1]) * isz,
                                    static_cast<size_t>(c.shape[0]), cudaMemcpyDeviceToDevice,
                                    dc.stream()));
      return;
    }
    const Program& prog = dc.program(
        gen::key(Family::Copy, 1, static_cast<uint32_t>(isz)),
        [&] { return gen::copy(src.dtype, dst.dtype); }, op);
    run(dc, op, prog, o, dst.shape, n);
    return;
  }
  const Program& prog = dc.program(
      gen::key(Family::Copy, 0, static_cast<uint32_t>(src.dtype), static_cast<uint32_t>(dst.dtype)),
      [&] { return gen::copy(src.dtype, dst.dtype); }, op);
  run(dc, op, prog, o, dst.shape, n);
}

void fill(DeviceContext& dc, const ArrayRef& out, Scalar value, const char* op) {
  const int64_t n = out.size();
  if (n == 0) return;
  const size_t isz = itemsize(out.dtype);
  const auto b = scalar_bytes(value, out.dtype);
  const auto ptr = reinterpret_cast<CUdeviceptr>(out.data);
  const auto count = static_cast<size_t>(n);
  uint32_t w[4];
  std::memcpy(w, b.data(), sizeof w);
  if (isz == 4 && queue_tiny(dc, gen::TinyEntry::Kind::Fill32, OpCode::Fill, out, nullptr, nullptr, w[0]))
    return;
  switch (isz) {
    case 1:
      TM_CU(op, cuMemsetD8Async(ptr, b[0], count, dc.stream()));
      return;
    case 2: {
      uint16_t h;
      std::memcpy(&h, b.data(), 2);
      TM_CU(op, cuMemsetD16Async(ptr, h, count, dc.stream()));
      return;
    }
    case 4:
      TM_CU(op, cuMemsetD32Async(ptr, w[0], count, dc.stream()));
      return;
    case 8:
      if (w[0] == w[1]) {
        TM_CU(op, cuMemsetD32Async(ptr, w[0], 2 * count, dc.stream()));
        return;
      }
      break;
    default:
      if (w[0] == w[1] && w[1] == w[2] && w[2] == w[3]) {
        TM_CU(op, cuMemsetD32Async(ptr, w[0], 4 * count, dc.stream()));
        return;
      }
      break;
  }
  const Program& prog = dc.program(
      gen::key(Family::Fill, static_cast<uint32_t>(isz)), [&] { return gen::fill(isz); }, op);
  EwParams p{};
  p.n = n;
  p.ptr[0] = reinterpret_cast<unsigned long long>(out.data);
  std::memcpy(p.bits, b.data(), sizeof p.bits);
  launch(op, prog[0], grid_for(dc, n), 1, kThreads, 0, dc.stream(), p);
}

void arange(DeviceContext& dc, const ArrayRef& out, double start, double step) {
  const int64_t n = out.size();
  if (n == 0) return;
  const Program& prog = dc.program(
      gen::key(Family::Arange, static_cast<uint32_t>(out.dtype)),
      [&] { return gen::arange(out.dtype); }, "arange");
  EwParams p{};
  p.n = n;
  p.ptr[0] = reinterpret_cast<unsigned long long>(out.data);
  p.d0 = start;
  p.d1 = step;
  launch("arange", prog[0], grid_for(dc, n), 1, kThreads, 0, dc.stream(), p);
}

}  // namespace tmath::cuda
