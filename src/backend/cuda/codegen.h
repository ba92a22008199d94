// CUDA C++ source generation for the NVRTC kernels. Pure string building (no
// CUDA calls), so every program can be compiled and checked without a GPU.
//
// Element types on the device: bool is stored as a byte (b8_t), float16 and
// bfloat16 as 16-bit patterns converted to float for arithmetic (round to
// nearest even on the way back, bit-identical to the CPU conversions),
// complex as {re, im} structs with their own arithmetic. Op semantics follow
// the CPU kernels (src/backend/cpu/elementwise.cpp, reduce.cpp, random.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/cuda/runtime.h"
#include "tmath/backend.h"

namespace tmath::cuda::gen {

// Program keys: family in the top byte, then op and dtype codes.
enum class Family : uint8_t {
  Unary = 1,
  Binary,
  Where,
  Copy,
  Fill,
  Arange,
  Reduce,
  ArgReduce,
  Scan,
  Softmax,
  LayerNorm,
  Take,
  Random,
  IntMatmul,
  Tiny,
  Put,
};
uint64_t key(Family f, uint32_t op, uint32_t a = 0, uint32_t b = 0, uint32_t c = 0);

// Which (op, dtype) pairs have kernels: the CPU backend's table.
bool unary_supported(OpCode op, DType dt);
bool binary_supported(OpCode op, DType dt);

// Elements per thread of the vectorised contiguous kernel (16-byte accesses).
int vec_width(size_t max_itemsize);

// Elementwise programs; kernels: {contiguous, contiguous vectorised, strided u32, strided u64}.
// `in` is the input dtype, `out` the output dtype.
ProgramSource unary(OpCode op, DType in, DType out);
ProgramSource binary(OpCode op, DType in, DType out);
ProgramSource where(size_t itemsize);
// A fused elementwise program (src/jit) with FwcParams / FwParams (up to TM_FMAX
// operands). variant -1: the four kernels of unary/binary; 0..3: only kernel
// {tm_c, tm_v, tm_s32, tm_s64}[variant] (a first call compiles one kernel).
bool fused_supported(const FusedProgram& p);
ProgramSource fused(const FusedProgram& p, int variant = -1);
ProgramSource copy(DType src, DType dst);  // same dtype: byte copy by itemsize
// Contiguous only; kernels: {fill or arange}.
ProgramSource fill(size_t itemsize);
ProgramSource arange(DType out);

// Accumulator dtype of a reduction (its arithmetic type): int64 sums of bool/ints,
// float32 for float16/bfloat16, bool for any/all.
DType reduce_acc(OpCode op, DType in);

// Reductions; kernels: {row (warp teams), row (block teams), column, finish}.
ProgramSource reduce(OpCode op, DType in, DType out);
// Kernels: {warp per line, thread per line}.
ProgramSource arg_reduce(OpCode op, DType in);
// Kernels: {block per line, thread per line}.
ProgramSource scan(OpCode op, DType in, DType out);
// Kernels: {warp per row with 1, 2, 4, 8, 16, 32 elements per lane, block per row streaming
// from memory, block per row held in registers (up to 8192 elements)}; variant >= 0: only
// that kernel of the list (what launches compile: one kernel per program).
ProgramSource softmax(OpCode op, DType dt, int variant = -1);
// Kernels: as softmax; flags bit 0: weight, bit 1: bias.
ProgramSource layer_norm(DType dt, int flags, int variant = -1);
// Kernels: {take, take_along_axis} by item size.
ProgramSource take(size_t itemsize);
// Kernels: {put}; put by item size, put_add by dtype (atomicAdd).
bool put_supported(OpCode op, DType dt);
ProgramSource put(OpCode op, DType dt);
ProgramSource random(OpCode op, DType dt);
// Integer and bool matmul (exact, accumulates in the dtype as the CPU does); kernels: {matmul}.
ProgramSource int_matmul(DType dt);

// The tiny-op queue (DeviceContext::queue_tiny): one kernel, tm_tiny (TinyParams),
// runs a list of small float32 ops in order in one block. An op's code is its index
// in tiny_ops(); elementwise ones compute exactly what the op's own kernel computes.
struct TinyEntry {
  // ReduceAll: every element of a into out[0] (Sum, Max, Min), with the combine,
  // identity and accumulator of the op's reduction kernel (its order: a block tree).
  // Dot: out[0] = sum of a[i] b[i] (a 1 x k by k x 1 matmul), float32 accumulation.
  enum class Kind : uint8_t { Unary, Binary, Fill32, ReduceAll, Dot } kind;
  OpCode op;  // Fill for Fill32 (a fill of any 4-byte dtype: the value's bits)
};
const std::vector<TinyEntry>& tiny_ops();
ProgramSource tiny();

// The whole prelude (types, conversions, complex math, helpers, parameter structs), for
// tools that check sources; a generated program holds only the parts its text uses.
const std::string& prelude();

}  // namespace tmath::cuda::gen
