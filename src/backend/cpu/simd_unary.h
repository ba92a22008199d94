// Vectorised contiguous float32/float64 unary kernels (simd_unary.cpp).
#pragma once

#include <cstddef>
#include <optional>

#include "tmath/backend.h"

namespace tmath::cpu {

enum class SimdOp : int { Exp, Expm1, Log, Log2, Log10, Log1p, Tanh, Sigmoid, Silu, GeluTanh, Sqrt };

inline std::optional<SimdOp> simd_op(OpCode op) {
  switch (op) {
    case OpCode::Exp: return SimdOp::Exp;
    case OpCode::Expm1: return SimdOp::Expm1;
    case OpCode::Log: return SimdOp::Log;
    case OpCode::Log2: return SimdOp::Log2;
    case OpCode::Log10: return SimdOp::Log10;
    case OpCode::Log1p: return SimdOp::Log1p;
    case OpCode::Tanh: return SimdOp::Tanh;
    case OpCode::Sigmoid: return SimdOp::Sigmoid;
    case OpCode::Silu: return SimdOp::Silu;
    case OpCode::GeluTanh: return SimdOp::GeluTanh;
    case OpCode::Sqrt: return SimdOp::Sqrt;
    default: return std::nullopt;
  }
}

enum class SimdBinaryOp : int { Add, Subtract, Multiply, Divide };

inline std::optional<SimdBinaryOp> simd_binary_op(OpCode op) {
  switch (op) {
    case OpCode::Add: return SimdBinaryOp::Add;
    case OpCode::Subtract: return SimdBinaryOp::Subtract;
    case OpCode::Multiply: return SimdBinaryOp::Multiply;
    case OpCode::Divide: return SimdBinaryOp::Divide;
    default: return std::nullopt;
  }
}

// y[i] = a[i or 0] op b[i or 0]; at most one of a, b is a single element.
bool simd_binary_f32(SimdBinaryOp op, const float* a, bool a_scalar, const float* b,
                     bool b_scalar, float* y, size_t n);
bool simd_binary_f64(SimdBinaryOp op, const double* a, bool a_scalar, const double* b,
                     bool b_scalar, double* y, size_t n);

bool simd_unary_f32(SimdOp op, const float* x, float* y, size_t n);

// float32 gelu (erf form) and g * gelu'(x) on contiguous arrays, evaluated in float64
// lanes (see simd_unary.cpp).
void simd_gelu_f32(const float* x, float* y, size_t n);
void simd_gelu_grad_f32(const float* g, const float* x, float* y, size_t n);
bool simd_unary_f64(SimdOp op, const double* x, double* y, size_t n);

// One step of a register chain: a vectorised unary op, or a binary op with one
// broadcast scalar operand (y = v op s, or s op v when scalar_left).
struct ChainStep {
  bool unary = false;
  SimdOp uop = SimdOp::Exp;
  SimdBinaryOp bop = SimdBinaryOp::Add;
  bool scalar_left = false;
  double value = 0.0;  // the scalar (exact: it is a value of the chain's dtype)
};
inline constexpr size_t kMaxChainSteps = 64;

// y[i] = steps applied in order to x[i], each rounded to the dtype as the
// separate kernels round it: bit-identical to running the steps one by one,
// without a pass over memory per step. `stream` writes y with non-temporal
// stores (for outputs far larger than the caches). nsteps <= kMaxChainSteps.
bool simd_chain_f32(const ChainStep* steps, size_t nsteps, const float* x, float* y, size_t n,
                    bool stream);
bool simd_chain_f64(const ChainStep* steps, size_t nsteps, const double* x, double* y, size_t n,
                    bool stream);

}  // namespace tmath::cpu
