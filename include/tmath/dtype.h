// Element types, their properties and Array API type promotion.
#pragma once

#include <complex>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "tmath/export.h"

namespace tmath {

enum class DType : uint8_t {
  Bool,
  Int8,
  Int16,
  Int32,
  Int64,
  UInt8,
  UInt16,
  UInt32,
  UInt64,
  Float16,
  BFloat16,
  Float32,
  Float64,
  Complex64,
  Complex128,
};
inline constexpr int kNumDTypes = 15;

enum class DTypeKind : uint8_t { Bool, SignedInt, UnsignedInt, Float, Complex };

// IEEE binary16, stored as bits; arithmetic goes through float.
struct Half {
  uint16_t bits = 0;
  Half() = default;
  Half(float f);  // NOLINT(google-explicit-constructor): numeric type
  operator float() const;  // NOLINT(google-explicit-constructor)
  static Half from_bits(uint16_t b) {
    Half h;
    h.bits = b;
    return h;
  }
};

// bfloat16 (upper half of a float32), round-to-nearest-even on conversion.
struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  BFloat16(float f) {  // NOLINT(google-explicit-constructor)
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
      bits = static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
    } else {
      u += 0x7fffu + ((u >> 16) & 1u);
      bits = static_cast<uint16_t>(u >> 16);
    }
  }
  operator float() const {  // NOLINT(google-explicit-constructor)
    uint32_t u = static_cast<uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  static BFloat16 from_bits(uint16_t b) {
    BFloat16 h;
    h.bits = b;
    return h;
  }
};

TMATH_API float half_to_float(uint16_t bits);
TMATH_API uint16_t float_to_half(float f);
inline Half::Half(float f) : bits(float_to_half(f)) {}
inline Half::operator float() const { return half_to_float(bits); }

using complex64_t = std::complex<float>;
using complex128_t = std::complex<double>;

// Size in bytes of one element.
TMATH_API size_t itemsize(DType dt);
TMATH_API DTypeKind kind(DType dt);
TMATH_API std::string_view dtype_name(DType dt);
// Parses "float32", "f32", "bfloat16", ...; throws DTypeError on unknown names.
TMATH_API DType dtype_from_name(std::string_view name);

inline bool is_floating(DType dt) { return kind(dt) == DTypeKind::Float; }
inline bool is_complex(DType dt) { return kind(dt) == DTypeKind::Complex; }
inline bool is_inexact(DType dt) { return is_floating(dt) || is_complex(dt); }
inline bool is_integral(DType dt) {
  return kind(dt) == DTypeKind::SignedInt || kind(dt) == DTypeKind::UnsignedInt;
}
inline bool is_low_precision(DType dt) { return dt == DType::Float16 || dt == DType::BFloat16; }

// Array API promotion of two array dtypes. bool+bool=bool; ints follow the
// standard's lattice (int8+uint8=int16, uint16+int16=int32, uint32+int32=int64,
// int64+uint8=int64, unsigned+unsigned=the wider) and NumPy 2 where the standard
// leaves it open (uint64 with any signed int gives float64); any integer with a
// floating dtype gives that floating dtype; float16+bfloat16=float32; real with
// complex gives the complex of the wider precision.
TMATH_API DType promote_types(DType a, DType b);
// Accumulation dtype for reductions: f16/bf16 -> f32, bool and signed ints -> int64,
// unsigned ints -> uint64 (sum/prod/cumsum/cumprod result dtypes, as in NumPy 2 and
// the Array API); other dtypes keep their own.
TMATH_API DType accumulate_type(DType dt);
// Real dtype of a complex dtype (complex64 -> float32); identity otherwise.
TMATH_API DType real_type(DType dt);
// Complex dtype with the precision of a real float dtype.
TMATH_API DType complex_type(DType dt);
// Default float dtype for integer/bool inputs of float-valued ops (float32).
TMATH_API DType to_inexact(DType dt);

// C++ type -> DType.
template <class T>
struct dtype_of;
template <> struct dtype_of<bool> { static constexpr DType value = DType::Bool; };
template <> struct dtype_of<int8_t> { static constexpr DType value = DType::Int8; };
template <> struct dtype_of<int16_t> { static constexpr DType value = DType::Int16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::Int32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::Int64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::UInt8; };
template <> struct dtype_of<uint16_t> { static constexpr DType value = DType::UInt16; };
template <> struct dtype_of<uint32_t> { static constexpr DType value = DType::UInt32; };
template <> struct dtype_of<uint64_t> { static constexpr DType value = DType::UInt64; };
template <> struct dtype_of<Half> { static constexpr DType value = DType::Float16; };
template <> struct dtype_of<BFloat16> { static constexpr DType value = DType::BFloat16; };
template <> struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::Float64; };
template <> struct dtype_of<complex64_t> { static constexpr DType value = DType::Complex64; };
template <> struct dtype_of<complex128_t> { static constexpr DType value = DType::Complex128; };
template <class T>
inline constexpr DType dtype_v = dtype_of<T>::value;

inline constexpr DType bool_ = DType::Bool;
inline constexpr DType int8 = DType::Int8;
inline constexpr DType int16 = DType::Int16;
inline constexpr DType int32 = DType::Int32;
inline constexpr DType int64 = DType::Int64;
inline constexpr DType uint8 = DType::UInt8;
inline constexpr DType uint16 = DType::UInt16;
inline constexpr DType uint32 = DType::UInt32;
inline constexpr DType uint64 = DType::UInt64;
inline constexpr DType float16 = DType::Float16;
inline constexpr DType bfloat16 = DType::BFloat16;
inline constexpr DType float32 = DType::Float32;
inline constexpr DType float64 = DType::Float64;
inline constexpr DType complex64 = DType::Complex64;
inline constexpr DType complex128 = DType::Complex128;

}  // namespace tmath
