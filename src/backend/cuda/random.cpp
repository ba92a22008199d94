// Philox samplers: the kernels include src/core/philox.h and convert words
// exactly as src/backend/cpu/random.cpp does (no FMA contraction), so a key
// gives bit-identical samples on CPU and CUDA. The host computes the bounds
// the CPU kernel derives from (a, b) with the same host code.
#include <cstring>
#include <string>

#include "backend/cuda/codegen.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/params.h"
#include "tmath/error.h"

namespace tmath::cuda {
namespace {

template <class U>
U bits_below(U b, U sign) {
  if ((b & static_cast<U>(~sign)) == 0) return static_cast<U>(sign | 1u);  // +-0
  return (b & sign) ? static_cast<U>(b + 1u) : static_cast<U>(b - 1u);
}

float float_below(float hi) {
  uint32_t u;
  std::memcpy(&u, &hi, 4);
  u = bits_below<uint32_t>(u, 0x80000000u);
  std::memcpy(&hi, &u, 4);
  return hi;
}

double double_below(double hi) {
  uint64_t u;
  std::memcpy(&u, &hi, 8);
  u = bits_below<uint64_t>(u, 0x8000000000000000ull);
  std::memcpy(&hi, &u, 8);
  return hi;
}

// Uniform bounds for a 16/32-bit float type T, as cpu::uniform_low computes them.
template <class T>
void uniform_low_bounds(const RandomArgs& args, RandParams& p) {
  const float lo = static_cast<float>(args.a);
  const float span = static_cast<float>(args.b - args.a);
  const T hi_t = T(static_cast<float>(args.b));
  const float hi = static_cast<float>(hi_t);
  float below;
  if constexpr (std::is_same_v<T, float>) {
    below = float_below(hi_t);
  } else {
    below = static_cast<float>(T::from_bits(bits_below<uint16_t>(hi_t.bits, 0x8000u)));
  }
  p.a = lo;
  p.b = span;
  p.hi = hi;
  p.below = below;
  p.clamp = static_cast<float>(T(lo)) < hi ? 1 : 0;
}

[[noreturn]] void bad_dtype(OpCode op, DType dt, const char* want) {
  throw DTypeError("[" + std::string(op_name(op)) + "] output dtype " +
                   std::string(dtype_name(dt)) + " is not supported (" + want + ")");
}

}  // namespace

void random(DeviceContext& dc, OpCode op, const RandomArgs& args, const ArrayRef& out) {
  const int64_t n = out.size();
  RandParams p{};
  p.out = reinterpret_cast<unsigned long long>(out.data);
  p.n = n;
  p.k0 = args.k0;
  p.k1 = args.k1;
  int64_t per = 4;
  switch (op) {
    case OpCode::RandomBits:
      if (out.dtype != DType::Int64) bad_dtype(op, out.dtype, "expected int64");
      break;
    case OpCode::RandomUniform:
      switch (out.dtype) {
        case DType::Float16:
          uniform_low_bounds<Half>(args, p);
          break;
        case DType::BFloat16:
          uniform_low_bounds<BFloat16>(args, p);
          break;
        case DType::Float32:
          uniform_low_bounds<float>(args, p);
          break;
        case DType::Float64:
          per = 2;
          p.a = args.a;
          p.b = args.b - args.a;
          p.hi = args.b;
          p.below = double_below(args.b);
          p.clamp = args.a < args.b ? 1 : 0;
          break;
        default:
          bad_dtype(op, out.dtype, "expected a real floating dtype");
      }
      break;
    case OpCode::RandomNormal:
      if (!is_floating(out.dtype)) bad_dtype(op, out.dtype, "expected a real floating dtype");
      per = 2;
      p.a = args.a;
      p.b = args.b;
      break;
    default:
      throw UnsupportedError("[random] op " + std::string(op_name(op)) +
                             " is not a random sampling op");
  }
  if (n == 0) return;
  const std::string name(op_name(op));
  const Program& prog = dc.program(
      gen::key(gen::Family::Random, static_cast<uint32_t>(op), static_cast<uint32_t>(out.dtype)),
      [&] { return gen::random(op, out.dtype); }, name.c_str());
  launch(name.c_str(), prog[0], grid_for(dc, (n + per - 1) / per), 1, kThreads, 0, dc.stream(), p);
}

}  // namespace tmath::cuda
