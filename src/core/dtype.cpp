#include "tmath/dtype.h"

#include <array>
#include <string>

#include "tmath/error.h"

namespace tmath {

namespace {
struct DTypeInfo {
  DType dt;
  size_t size;
  DTypeKind kind;
  std::string_view name;
  std::string_view alias;
};
constexpr std::array<DTypeInfo, kNumDTypes> kInfo{{
    {DType::Bool, 1, DTypeKind::Bool, "bool", "b1"},
    {DType::Int8, 1, DTypeKind::SignedInt, "int8", "i1"},
    {DType::Int16, 2, DTypeKind::SignedInt, "int16", "i2"},
    {DType::Int32, 4, DTypeKind::SignedInt, "int32", "i4"},
    {DType::Int64, 8, DTypeKind::SignedInt, "int64", "i8"},
    {DType::UInt8, 1, DTypeKind::UnsignedInt, "uint8", "u1"},
    {DType::UInt16, 2, DTypeKind::UnsignedInt, "uint16", "u2"},
    {DType::UInt32, 4, DTypeKind::UnsignedInt, "uint32", "u4"},
    {DType::UInt64, 8, DTypeKind::UnsignedInt, "uint64", "u8"},
    {DType::Float16, 2, DTypeKind::Float, "float16", "f2"},
    {DType::BFloat16, 2, DTypeKind::Float, "bfloat16", "bf16"},
    {DType::Float32, 4, DTypeKind::Float, "float32", "f4"},
    {DType::Float64, 8, DTypeKind::Float, "float64", "f8"},
    {DType::Complex64, 8, DTypeKind::Complex, "complex64", "c8"},
    {DType::Complex128, 16, DTypeKind::Complex, "complex128", "c16"},
}};
const DTypeInfo& info(DType dt) { return kInfo[static_cast<size_t>(dt)]; }

// Rank among signed ints / floats by width.
int int_bits(DType dt) { return static_cast<int>(itemsize(dt)) * 8; }
DType signed_int_of_bits(int bits) {
  switch (bits) {
    case 8: return DType::Int8;
    case 16: return DType::Int16;
    case 32: return DType::Int32;
    default: return DType::Int64;
  }
}
}  // namespace

size_t itemsize(DType dt) { return info(dt).size; }
DTypeKind kind(DType dt) { return info(dt).kind; }
std::string_view dtype_name(DType dt) { return info(dt).name; }

DType dtype_from_name(std::string_view name) {
  for (const auto& i : kInfo)
    if (name == i.name || name == i.alias) return i.dt;
  if (name == "half" || name == "f16") return DType::Float16;
  if (name == "float" || name == "f32") return DType::Float32;
  if (name == "double" || name == "f64") return DType::Float64;
  throw DTypeError("[dtype] unknown dtype name '" + std::string(name) + "'");
}

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  DTypeKind ka = kind(a), kb = kind(b);
  // Order so that ka <= kb in the kind lattice.
  if (static_cast<int>(ka) > static_cast<int>(kb)) {
    std::swap(a, b);
    std::swap(ka, kb);
  }
  switch (kb) {
    case DTypeKind::Bool:
      return DType::Bool;
    case DTypeKind::SignedInt:
      if (ka == DTypeKind::Bool) return b;
      return signed_int_of_bits(std::max(int_bits(a), int_bits(b)));
    case DTypeKind::UnsignedInt:
      if (ka == DTypeKind::Bool) return b;
      if (ka == DTypeKind::UnsignedInt) return int_bits(a) >= int_bits(b) ? a : b;
      // signed a with unsigned b: the smallest signed int wider than b that also
      // holds a; no signed int holds uint64, so that gives float64 (NumPy 2).
      if (int_bits(b) == 64) return DType::Float64;
      return signed_int_of_bits(std::max(int_bits(a), 2 * int_bits(b)));
    case DTypeKind::Float:
      if (ka != DTypeKind::Float) return b;
      if ((a == DType::Float16 && b == DType::BFloat16) ||
          (a == DType::BFloat16 && b == DType::Float16))
        return DType::Float32;
      return itemsize(a) >= itemsize(b) ? a : b;
    case DTypeKind::Complex: {
      if (ka == DTypeKind::Complex) return itemsize(a) >= itemsize(b) ? a : b;
      if (ka == DTypeKind::Float && a == DType::Float64) return DType::Complex128;
      return b;
    }
  }
  return b;
}

DType accumulate_type(DType dt) {
  switch (dt) {
    case DType::Float16:
    case DType::BFloat16: return DType::Float32;
    case DType::Bool:
    case DType::Int8:
    case DType::Int16:
    case DType::Int32: return DType::Int64;
    case DType::UInt8:
    case DType::UInt16:
    case DType::UInt32: return DType::UInt64;
    default: return dt;
  }
}

DType real_type(DType dt) {
  if (dt == DType::Complex64) return DType::Float32;
  if (dt == DType::Complex128) return DType::Float64;
  return dt;
}

DType complex_type(DType dt) {
  return dt == DType::Float64 || dt == DType::Complex128 ? DType::Complex128 : DType::Complex64;
}

DType to_inexact(DType dt) { return is_inexact(dt) ? dt : DType::Float32; }

// IEEE half conversion with round-to-nearest-even, subnormals, inf and NaN.
float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        mant <<= 1;
        ++e;
      } while ((mant & 0x400u) == 0);
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (ax < 0x38800000u) {  // result subnormal or zero
    if (ax < 0x33000000u) return static_cast<uint16_t>(sign);  // < half of min subnormal
    uint32_t e = ax >> 23;
    uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;  // 14 + (113 - e) - ... : bits to drop for 2^-24 units
    uint32_t half_m = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_m & 1u))) ++half_m;
    return static_cast<uint16_t>(sign | half_m);
  }
  uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u) - 0x38000000u;  // rebias + round to even
  return static_cast<uint16_t>(sign | (r >> 13));
}

}  // namespace tmath
