// Fused elementwise programs on the CPU: a tile interpreter. The output is cut
// into tiles that fit in L1 (16 KiB per value); threads take whole tiles, and
// each instruction runs the ordinary vectorised kernel over one tile, reading
// and writing tile buffers that stay in cache. Memory sees one read of each
// input and one write of the output, as with generated code, and every
// instruction runs the exact kernel of the unfused op, so fused results are
// bit-identical to unfused ones.
#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/simd_unary.h"
#include "backend/cpu/thread_pool.h"
#include "tmath/error.h"

namespace tmath::cpu {
namespace {

using Kind = FusedInstr::Kind;

constexpr int64_t kTileBytes = 16384;
constexpr int64_t kStreamBytes = int64_t{32} << 20;

enum class InputMode : uint8_t { Contiguous, Scalar, Gather };

// Copies elements [start, start + len) (row-major over `shape`) of a strided view.
void gather(const ArrayRef& in, int64_t start, int64_t len, char* dst) {
  const int nd = in.ndim();
  const size_t isz = itemsize(in.dtype);
  std::vector<int64_t> idx(static_cast<size_t>(nd));
  int64_t rem = start, off = 0;
  for (int d = nd - 1; d >= 0; --d) {
    idx[d] = in.shape[d] ? rem % in.shape[d] : 0;
    rem = in.shape[d] ? rem / in.shape[d] : 0;
    off += idx[d] * in.strides[d];
  }
  const char* base = static_cast<const char*>(in.data);
  for (int64_t i = 0; i < len; ++i) {
    std::memcpy(dst + i * isz, base + off * static_cast<int64_t>(isz), isz);
    for (int d = nd - 1; d >= 0; --d) {
      off += in.strides[d];
      if (++idx[d] < in.shape[d]) break;
      off -= idx[d] * in.strides[d];
      idx[d] = 0;
    }
  }
}

// The vectorised float kernels the unfused ops use for contiguous operands (a
// scalar operand has stride 0), called directly: the generic entry points plan
// the strided iteration again for every tile. Returns false when not applicable.
bool simd_instr(const FusedInstr& in, DType ta, DType tb, const char* a, int64_t sa,
                const char* b, int64_t sb, char* y, int64_t len) {
  const auto n = static_cast<size_t>(len);
  if (in.dtype != DType::Float32 && in.dtype != DType::Float64) return false;
  const bool f32 = in.dtype == DType::Float32;
  if (f32 && in.kind == Kind::Unary && in.op == OpCode::Gelu && ta == in.dtype && sa == 1) {
    simd_gelu_f32(reinterpret_cast<const float*>(a), reinterpret_cast<float*>(y), n);
    return true;
  }
  if (f32 && in.kind == Kind::Binary && in.op == OpCode::GeluGrad && ta == in.dtype &&
      tb == in.dtype && sa == 1 && sb == 1) {
    simd_gelu_grad_f32(reinterpret_cast<const float*>(a), reinterpret_cast<const float*>(b),
                       reinterpret_cast<float*>(y), n);
    return true;
  }
  if (in.kind == Kind::Unary) {
    auto so = simd_op(in.op);
    if (!so || ta != in.dtype || sa != 1) return false;
    return f32 ? simd_unary_f32(*so, reinterpret_cast<const float*>(a), reinterpret_cast<float*>(y), n)
               : simd_unary_f64(*so, reinterpret_cast<const double*>(a),
                                reinterpret_cast<double*>(y), n);
  }
  if (in.kind == Kind::Binary) {
    auto so = simd_binary_op(in.op);
    if (!so || ta != in.dtype || tb != in.dtype || (sa == 0 && sb == 0)) return false;
    return f32 ? simd_binary_f32(*so, reinterpret_cast<const float*>(a), sa == 0,
                                 reinterpret_cast<const float*>(b), sb == 0,
                                 reinterpret_cast<float*>(y), n)
               : simd_binary_f64(*so, reinterpret_cast<const double*>(a), sa == 0,
                                 reinterpret_cast<const double*>(b), sb == 0,
                                 reinterpret_cast<double*>(y), n);
  }
  return false;
}

}  // namespace

bool supports_fused(const FusedProgram& p) {
  if (p.instrs.empty() || p.instrs.back().kind == Kind::Input) return false;
  for (const auto& in : p.instrs) {
    switch (in.kind) {
      case Kind::Unary:
        if (!supports_unary(in.op, p.instrs[in.a].dtype)) return false;
        break;
      case Kind::Binary:
        if (!supports_binary(in.op, p.instrs[in.a].dtype)) return false;
        break;
      default:
        break;
    }
  }
  return true;
}

void fused(const FusedProgram& p, std::span<const ArrayRef> inputs, const ArrayRef& out) {
  const int64_t n = out.size();
  if (n == 0) return;
  const int ni = static_cast<int>(p.instrs.size());
  size_t max_isz = 1;
  for (const auto& in : p.instrs) max_isz = std::max(max_isz, itemsize(in.dtype));
  // Tiles of 16 KiB per value, or the whole (rounded-up) output when it is smaller.
  const int64_t tile = std::min(std::max<int64_t>(64, kTileBytes / static_cast<int64_t>(max_isz)),
                                (n + 63) / 64 * 64);

  // How each input is read; contiguous inputs are used in place.
  std::vector<InputMode> mode(inputs.size());
  for (size_t k = 0; k < inputs.size(); ++k) {
    const ArrayRef& in = inputs[k];
    bool scalar = true;
    for (auto s : in.strides) scalar = scalar && s == 0;
    mode[k] = scalar ? InputMode::Scalar
                     : in.is_contiguous() ? InputMode::Contiguous : InputMode::Gather;
  }
  // Register chains: a run of vectorised unary ops and binary ops with a
  // broadcast scalar, each consuming the previous value and its only user, runs
  // as one pass (simd_chain_*) with the intermediate values in registers.
  // Chains[i] is set on the instruction that ends a chain; the instructions it
  // absorbs are skipped.
  std::vector<int> uses(ni, 0);
  for (const auto& in : p.instrs)
    if (in.kind != Kind::Input)
      for (int32_t o : {in.a, in.b, in.c})
        if (o >= 0) ++uses[o];
  auto scalar_input = [&](int32_t v) {
    return p.instrs[v].kind == Kind::Input && mode[p.instrs[v].a] == InputMode::Scalar;
  };
  struct Chain {
    int src = -1;
    std::vector<ChainStep> steps;
  };
  std::vector<Chain> chains(ni);
  std::vector<char> absorbed(ni, 0);
  for (int i = 0; i < ni; ++i) {
    const auto& in = p.instrs[i];
    const DType dt = in.dtype;
    if (dt != DType::Float32 && dt != DType::Float64) continue;
    ChainStep step;
    int src = -1;
    if (in.kind == Kind::Unary) {
      auto so = simd_op(in.op);
      if (!so || p.instrs[in.a].dtype != dt) continue;
      step.unary = true;
      step.uop = *so;
      src = in.a;
    } else if (in.kind == Kind::Binary) {
      auto so = simd_binary_op(in.op);
      if (!so || p.instrs[in.a].dtype != dt || p.instrs[in.b].dtype != dt) continue;
      const bool sa = scalar_input(in.a), sb = scalar_input(in.b);
      if (sa == sb) continue;
      step.bop = *so;
      step.scalar_left = sa;
      src = sa ? in.b : in.a;
      const ArrayRef& s = inputs[p.instrs[sa ? in.a : in.b].a];
      step.value = dt == DType::Float32 ? static_cast<double>(*static_cast<const float*>(s.data))
                                        : *static_cast<const double*>(s.data);
    } else {
      continue;
    }
    if (scalar_input(src)) continue;
    Chain& c = chains[i];
    if (!chains[src].steps.empty() && uses[src] == 1 &&
        chains[src].steps.size() < kMaxChainSteps) {
      c = std::move(chains[src]);
      chains[src] = Chain{};
      absorbed[src] = 1;
    } else {
      c.src = src;
    }
    c.steps.push_back(step);
  }
  // The values an instruction reads when it runs (a chain reads only its source).
  auto operands = [&](int i) -> std::array<int32_t, 3> {
    const auto& in = p.instrs[i];
    if (in.kind == Kind::Input || absorbed[i]) return {-1, -1, -1};
    if (!chains[i].steps.empty()) return {chains[i].src, -1, -1};
    return {in.a, in.b, in.c};
  };

  // Tile buffers: each computed value (and each gathered input) gets a slot,
  // reused after the value's last use. The last instruction writes the output.
  std::vector<int> last_use(ni, -1), slot(ni, -1);
  for (int i = 0; i < ni; ++i)
    for (int32_t o : operands(i))
      if (o >= 0) last_use[o] = i;
  int num_slots = 0;
  {
    std::vector<int> free_slots;
    for (int i = 0; i < ni; ++i) {
      const auto& in = p.instrs[i];
      // A value never shares a slot with its own operands (casts change the width).
      const bool needs = i != ni - 1 && !absorbed[i] &&
                         (in.kind != Kind::Input || mode[in.a] == InputMode::Gather);
      if (needs) {
        if (free_slots.empty()) {
          slot[i] = num_slots++;
        } else {
          slot[i] = free_slots.back();
          free_slots.pop_back();
        }
      }
      for (int32_t o : operands(i))
        if (o >= 0 && last_use[o] == i && slot[o] >= 0 &&
            std::find(free_slots.begin(), free_slots.end(), slot[o]) == free_slots.end())
          free_slots.push_back(slot[o]);
    }
  }
  // Outputs far larger than the caches are written with non-temporal stores
  // (no read for ownership of lines that are about to be overwritten).
  const bool stream = n * static_cast<int64_t>(itemsize(out.dtype)) >= kStreamBytes;
  const int64_t tiles = (n + tile - 1) / tile;
  const int64_t slot_bytes = tile * static_cast<int64_t>(max_isz);
  parallel_for(tiles, std::max<int64_t>(1, kGrain / tile), [&](int64_t t0, int64_t t1) {
    // Per-thread tile buffers, kept between calls (no allocation per call).
    thread_local std::vector<char> scratch;
    const size_t need = static_cast<size_t>(std::max(num_slots, 1) * slot_bytes) + 64;
    if (scratch.size() < need) scratch.resize(need);
    char* base = scratch.data() + (64 - reinterpret_cast<uintptr_t>(scratch.data()) % 64) % 64;
    std::vector<char*> ptr(ni);
    std::vector<int64_t> stride(ni);
    std::vector<int64_t> shape1(1);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t start = t * tile, len = std::min(tile, n - start);
      shape1[0] = len;
      auto view = [&](int v, DType dt) {
        return ArrayRef{ptr[v], dt, shape1, std::span<const int64_t>(&stride[v], 1), out.device};
      };
      for (int i = 0; i < ni; ++i) {
        const auto& in = p.instrs[i];
        const size_t isz = itemsize(in.dtype);
        if (in.kind == Kind::Input) {
          const ArrayRef& src = inputs[in.a];
          switch (mode[in.a]) {
            case InputMode::Contiguous:
              ptr[i] = static_cast<char*>(src.data) + start * static_cast<int64_t>(isz);
              stride[i] = 1;
              break;
            case InputMode::Scalar:
              ptr[i] = static_cast<char*>(src.data);
              stride[i] = 0;
              break;
            case InputMode::Gather:
              ptr[i] = base + slot[i] * slot_bytes;
              stride[i] = 1;
              gather(src, start, len, ptr[i]);
              break;
          }
          continue;
        }
        if (absorbed[i]) continue;
        ptr[i] = i == ni - 1 ? static_cast<char*>(out.data) + start * static_cast<int64_t>(isz)
                             : base + slot[i] * slot_bytes;
        stride[i] = 1;
        if (const Chain& c = chains[i]; !c.steps.empty() && (c.steps.size() > 1 || (stream && i == ni - 1))) {
          const bool st = stream && i == ni - 1;
          if (in.dtype == DType::Float32)
            simd_chain_f32(c.steps.data(), c.steps.size(), reinterpret_cast<const float*>(ptr[c.src]),
                           reinterpret_cast<float*>(ptr[i]), static_cast<size_t>(len), st);
          else
            simd_chain_f64(c.steps.data(), c.steps.size(), reinterpret_cast<const double*>(ptr[c.src]),
                           reinterpret_cast<double*>(ptr[i]), static_cast<size_t>(len), st);
          continue;
        }
        const DType ta = in.a >= 0 ? p.instrs[in.a].dtype : in.dtype;
        const DType tb = in.b >= 0 ? p.instrs[in.b].dtype : in.dtype;
        if ((in.kind == Kind::Unary || in.kind == Kind::Binary) &&
            simd_instr(in, ta, tb, ptr[in.a], stride[in.a], in.b >= 0 ? ptr[in.b] : nullptr,
                       in.b >= 0 ? stride[in.b] : 1, ptr[i], len))
          continue;
        const ArrayRef dst = view(i, in.dtype);
        switch (in.kind) {
          case Kind::Unary:
            unary(in.op, view(in.a, p.instrs[in.a].dtype), dst);
            break;
          case Kind::Binary:
            binary(in.op, view(in.a, p.instrs[in.a].dtype), view(in.b, p.instrs[in.b].dtype), dst);
            break;
          case Kind::Where:
            where(view(in.a, p.instrs[in.a].dtype), view(in.b, p.instrs[in.b].dtype),
                  view(in.c, p.instrs[in.c].dtype), dst);
            break;
          case Kind::Cast:
            copy(view(in.a, p.instrs[in.a].dtype), dst);
            break;
          case Kind::Input:
            break;
        }
      }
    }
  });
}

}  // namespace tmath::cpu
