// Host entry points of the CUDA kernels, one function per kernel family. The
// CudaBackend class (cuda_backend.cpp) forwards its virtual methods here after
// making the device current.
#pragma once

#include <span>

#include "backend/cuda/codegen.h"
#include "backend/cuda/runtime.h"
#include "tmath/backend.h"

namespace tmath::cuda {

inline constexpr unsigned kThreads = 256;
// Blocks for `work` items at kThreads per block, capped for grid-stride loops.
unsigned grid_for(const DeviceContext& dc, int64_t work);

// elementwise.cpp
void unary(DeviceContext& dc, OpCode op, const ArrayRef& x, const ArrayRef& out);
void binary(DeviceContext& dc, OpCode op, const ArrayRef& a, const ArrayRef& b,
            const ArrayRef& out);
void where(DeviceContext& dc, const ArrayRef& cond, const ArrayRef& a, const ArrayRef& b,
           const ArrayRef& out);
void copy(DeviceContext& dc, const ArrayRef& src, const ArrayRef& dst, const char* op = "copy");
// A fused elementwise program (src/jit): one kernel, NVRTC-compiled per program.
void fused(DeviceContext& dc, const FusedProgram& p, std::span<const ArrayRef> inputs,
           const ArrayRef& out);
void fill(DeviceContext& dc, const ArrayRef& out, Scalar value, const char* op = "fill");
void arange(DeviceContext& dc, const ArrayRef& out, double start, double step);

// reduce.cpp
void reduce(DeviceContext& dc, OpCode op, const ArrayRef& x, std::span<const int> axes,
            const ArrayRef& out);
void arg_reduce(DeviceContext& dc, OpCode op, const ArrayRef& x, int axis, const ArrayRef& out);
void scan(DeviceContext& dc, OpCode op, const ArrayRef& x, int axis, const ArrayRef& out);

// Queues out = op(a[, b]) on the device's tiny-op queue (DeviceContext::queue_tiny) when
// it is small, float32 and dense (inputs dense or single elements; a ReduceAll's input
// and a Dot's inputs dense, the output one element); false: the caller launches it.
// bits: a fill's value.
bool queue_tiny(DeviceContext& dc, gen::TinyEntry::Kind kind, OpCode op, const ArrayRef& out,
                const ArrayRef* a, const ArrayRef* b, uint64_t bits = 0);

// nn.cpp
void softmax(DeviceContext& dc, OpCode op, const ArrayRef& x, const ArrayRef& out);
void layer_norm(DeviceContext& dc, const ArrayRef& x, const ArrayRef& weight, const ArrayRef& bias,
                const LayerNormArgs& args, const ArrayRef& out);

// matmul.cpp
bool matmul_supported(DType dt);
void matmul(DeviceContext& dc, const ArrayRef& a, const ArrayRef& b, const ArrayRef& out,
            const MatmulOptions& opts);

// linalg.cpp (cuSOLVER): Backend::linalg
bool linalg_supported(OpCode op, DType dt);
void linalg(DeviceContext& dc, OpCode op, std::span<const ArrayRef> in,
            std::span<const ArrayRef> out, const LinalgArgs& args);

// take.cpp
void take(DeviceContext& dc, OpCode op, const ArrayRef& x, const ArrayRef& idx, int axis,
          const ArrayRef& out);
void put(DeviceContext& dc, OpCode op, const ArrayRef& idx, const ArrayRef& values,
         const ArrayRef& out);
// random.cpp
void random(DeviceContext& dc, OpCode op, const RandomArgs& args, const ArrayRef& out);

// profile.cpp: Backend::time_ms / native_reference
double time_ms(DeviceContext& dc, const std::function<void()>& fn, int reps);
std::optional<Backend::NativeReference> native_reference(DeviceContext& dc, std::string_view op,
                                                         std::span<const ArrayRef> inputs,
                                                         MatmulPrecision prec);

}  // namespace tmath::cuda
