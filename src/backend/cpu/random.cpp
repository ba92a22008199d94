// Random sampling kernels: Philox4x32-10 words converted exactly as
// src/core/philox.h specifies, so results match other backends bit for bit and
// do not depend on the thread count.
#include <algorithm>
#include <cstdint>
#include <string>

#include "backend/cpu/kernels.h"
#include "backend/cpu/thread_pool.h"
#include "core/philox.h"
#include "tmath/error.h"

namespace tmath::cpu {
namespace {

// Bits of the largest value below the IEEE value with bits `b` (sign bit `sign`).
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

// Calls emit(c, block) for every Philox block c covering n elements of which
// each block produces `per_block`.
template <class Emit>
void for_blocks(int64_t n, int64_t per_block, int64_t grain, const RandomArgs& args,
                const Emit& emit) {
  const int64_t nb = (n + per_block - 1) / per_block;
  parallel_for(nb, std::max<int64_t>(1, grain / per_block), [&](int64_t b0, int64_t b1) {
    for (int64_t c = b0; c < b1; ++c) {
      emit(c, philox::block(args.k0, args.k1, static_cast<uint64_t>(c)));
    }
  });
}

void random_bits(const RandomArgs& args, const ArrayRef& out) {
  const int64_t n = out.size();
  auto* o = out.ptr<int64_t>();
  for_blocks(n, 4, kGrain, args, [&](int64_t c, const philox::Block& b) {
    const int64_t base = 4 * c;
    const int64_t m = std::min<int64_t>(4, n - base);
    for (int64_t j = 0; j < m; ++j) o[base + j] = b.w[j];
  });
}

// Uniform float32 values before rounding to T; the bound check happens in T.
template <class T>
void uniform_low(const RandomArgs& args, const ArrayRef& out) {
  const int64_t n = out.size();
  T* o = out.ptr<T>();
  const float lo = static_cast<float>(args.a);
  const float span = static_cast<float>(args.b - args.a);
  const T hi_t = T(static_cast<float>(args.b));
  const float hi = static_cast<float>(hi_t);
  const bool clamp = static_cast<float>(T(lo)) < hi;
  T below;
  if constexpr (std::is_same_v<T, float>) {
    below = float_below(hi_t);
  } else {
    below = T::from_bits(bits_below<uint16_t>(hi_t.bits, 0x8000u));
  }
  for_blocks(n, 4, kGrain, args, [&](int64_t c, const philox::Block& b) {
    const int64_t base = 4 * c;
    const int64_t m = std::min<int64_t>(4, n - base);
    for (int64_t j = 0; j < m; ++j) {
      const float v = lo + span * philox::u24(b.w[j]);
      T r = T(v);
      if (clamp && !(static_cast<float>(r) < hi)) r = below;
      o[base + j] = r;
    }
  });
}

void uniform_f64(const RandomArgs& args, const ArrayRef& out) {
  const int64_t n = out.size();
  auto* o = out.ptr<double>();
  const double lo = args.a, span = args.b - args.a, hi = args.b;
  const bool clamp = lo < hi;
  const double below = double_below(hi);
  for_blocks(n, 2, kGrain, args, [&](int64_t c, const philox::Block& b) {
    const int64_t base = 2 * c;
    const int64_t m = std::min<int64_t>(2, n - base);
    for (int64_t j = 0; j < m; ++j) {
      double v = lo + span * philox::u53(b.w[2 * j], b.w[2 * j + 1]);
      if (clamp && !(v < hi)) v = below;
      o[base + j] = v;
    }
  });
}

template <class T>
void normal(const RandomArgs& args, const ArrayRef& out) {
  const int64_t n = out.size();
  T* o = out.ptr<T>();
  const double mean = args.a, stddev = args.b;
  for_blocks(n, 2, kGrain / 16, args, [&](int64_t c, const philox::Block& b) {
    const philox::NormalPair p = philox::normal_pair(b);
    const double z[2] = {mean + stddev * p.z0, mean + stddev * p.z1};
    const int64_t base = 2 * c;
    const int64_t m = std::min<int64_t>(2, n - base);
    for (int64_t j = 0; j < m; ++j) {
      if constexpr (std::is_same_v<T, double>) {
        o[base + j] = z[j];
      } else if constexpr (std::is_same_v<T, float>) {
        o[base + j] = static_cast<float>(z[j]);
      } else {
        o[base + j] = T(static_cast<float>(z[j]));
      }
    }
  });
}

[[noreturn]] void bad_dtype(OpCode op, DType dt, const char* want) {
  throw DTypeError("[" + std::string(op_name(op)) + "] output dtype " +
                   std::string(dtype_name(dt)) + " is not supported (" + want + ")");
}

}  // namespace

void random(OpCode op, const RandomArgs& args, const ArrayRef& out) {
  if (out.size() == 0) return;
  switch (op) {
    case OpCode::RandomBits:
      if (out.dtype != DType::Int64) bad_dtype(op, out.dtype, "expected int64");
      random_bits(args, out);
      return;
    case OpCode::RandomUniform:
      switch (out.dtype) {
        case DType::Float16:
          return uniform_low<Half>(args, out);
        case DType::BFloat16:
          return uniform_low<BFloat16>(args, out);
        case DType::Float32:
          return uniform_low<float>(args, out);
        case DType::Float64:
          return uniform_f64(args, out);
        default:
          bad_dtype(op, out.dtype, "expected a real floating dtype");
      }
    case OpCode::RandomNormal:
      switch (out.dtype) {
        case DType::Float16:
          return normal<Half>(args, out);
        case DType::BFloat16:
          return normal<BFloat16>(args, out);
        case DType::Float32:
          return normal<float>(args, out);
        case DType::Float64:
          return normal<double>(args, out);
        default:
          bad_dtype(op, out.dtype, "expected a real floating dtype");
      }
    default:
      throw UnsupportedError("[random] op " + std::string(op_name(op)) +
                             " is not a random sampling op");
  }
}

}  // namespace tmath::cpu
