// CPU kernel entry points, one function per kernel family. The CpuBackend
// class (cpu_backend.cpp) forwards its virtual methods here.
#pragma once

#include <cstdint>
#include <span>
#include <type_traits>

#include "tmath/backend.h"

namespace tmath::cpu {

// The type integer arithmetic on T runs in so that it wraps in T's width: uint16 in
// uint32 (C++ promotes uint16 to int, where a product can overflow); T otherwise.
template <class T>
using IntCalc = std::conditional_t<std::is_same_v<T, uint16_t>, uint32_t, T>;

// Elements per parallel task below which kernels stay single-threaded.
inline constexpr int64_t kGrain = 32768;

void unary(OpCode op, const ArrayRef& x, const ArrayRef& out);
void binary(OpCode op, const ArrayRef& a, const ArrayRef& b, const ArrayRef& out);
void where(const ArrayRef& cond, const ArrayRef& a, const ArrayRef& b, const ArrayRef& out);
void copy(const ArrayRef& src, const ArrayRef& dst);
void fill(const ArrayRef& out, Scalar value);
void arange(const ArrayRef& out, double start, double step);
bool supports_unary(OpCode op, DType dt);
bool supports_binary(OpCode op, DType dt);

// fused.cpp: fused elementwise programs (src/jit)
bool supports_fused(const FusedProgram& p);
void fused(const FusedProgram& p, std::span<const ArrayRef> inputs, const ArrayRef& out);

// reduce.cpp
void reduce(OpCode op, const ArrayRef& x, std::span<const int> axes, const ArrayRef& out);
void arg_reduce(OpCode op, const ArrayRef& x, int axis, const ArrayRef& out);
void scan(OpCode op, const ArrayRef& x, int axis, const ArrayRef& out);
// nn.cpp
void softmax(OpCode op, const ArrayRef& x, const ArrayRef& out);
void layer_norm(const ArrayRef& x, const ArrayRef& weight, const ArrayRef& bias,
                const LayerNormArgs& args, const ArrayRef& out);
// matmul.cpp
void matmul(const ArrayRef& a, const ArrayRef& b, const ArrayRef& out, const MatmulOptions& opts);
// take.cpp
void take(OpCode op, const ArrayRef& x, const ArrayRef& idx, int axis, const ArrayRef& out);
void put(OpCode op, const ArrayRef& idx, const ArrayRef& values, const ArrayRef& out);
// random.cpp
void random(OpCode op, const RandomArgs& args, const ArrayRef& out);

}  // namespace tmath::cpu
