// DTypes: sizes, names, Array API promotion, weak scalars, half/bfloat16 conversion.
#include <cmath>
#include <map>
#include <optional>

#include "test_util.h"

using namespace tmath;
using tt::all_dtypes;

TEST(DType, ItemsizeOfEveryDtype) {
  const std::map<DType, size_t> expect = {
      {bool_, 1},   {int8, 1},     {int16, 2},   {int32, 4},   {int64, 8},     {uint8, 1},
      {uint16, 2},  {uint32, 4},   {uint64, 8},  {float16, 2}, {bfloat16, 2},  {float32, 4},
      {float64, 8}, {complex64, 8}, {complex128, 16}};
  ASSERT_EQ(expect.size(), static_cast<size_t>(kNumDTypes));
  for (auto [dt, n] : expect) EXPECT_EQ(itemsize(dt), n) << tt::name_of(dt);
  EXPECT_EQ(zeros({3, 2}, float64).itemsize(), 8u);
  EXPECT_EQ(zeros({3, 2}, float64).nbytes(), 48u);
}

TEST(DType, NamesRoundTrip) {
  for (DType dt : all_dtypes()) {
    EXPECT_EQ(std::string(dtype_name(dt)), tt::name_of(dt));
    EXPECT_EQ(dtype_from_name(dtype_name(dt)), dt) << tt::name_of(dt);
  }
  EXPECT_EQ(dtype_from_name("f32"), float32);
  EXPECT_EQ(dtype_from_name("uint16"), uint16);
  EXPECT_EQ(dtype_from_name("uint32"), uint32);
  EXPECT_EQ(dtype_from_name("uint64"), uint64);
  EXPECT_EQ(dtype_from_name("u1"), uint8);  // NumPy's codes: u<bytes>
  EXPECT_EQ(dtype_from_name("u2"), uint16);
  EXPECT_EQ(dtype_from_name("u4"), uint32);
  EXPECT_EQ(dtype_from_name("u8"), uint64);
  EXPECT_THROW(dtype_from_name("float33"), DTypeError);
  EXPECT_THROW(dtype_from_name(""), DTypeError);
}

TEST(DType, KindsAndPredicates) {
  EXPECT_EQ(kind(bool_), DTypeKind::Bool);
  for (DType dt : {int8, int16, int32, int64}) EXPECT_EQ(kind(dt), DTypeKind::SignedInt);
  for (DType dt : {uint8, uint16, uint32, uint64}) {
    EXPECT_EQ(kind(dt), DTypeKind::UnsignedInt);
    EXPECT_TRUE(is_integral(dt));
    EXPECT_EQ(to_inexact(dt), float32);
  }
  for (DType dt : {float16, bfloat16, float32, float64}) {
    EXPECT_EQ(kind(dt), DTypeKind::Float);
    EXPECT_TRUE(is_floating(dt));
    EXPECT_TRUE(is_inexact(dt));
    EXPECT_FALSE(is_integral(dt));
  }
  for (DType dt : {complex64, complex128}) {
    EXPECT_EQ(kind(dt), DTypeKind::Complex);
    EXPECT_TRUE(is_complex(dt));
    EXPECT_TRUE(is_inexact(dt));
  }
  EXPECT_TRUE(is_integral(uint8));
  EXPECT_FALSE(is_integral(bool_));
  EXPECT_TRUE(is_low_precision(float16));
  EXPECT_TRUE(is_low_precision(bfloat16));
  EXPECT_FALSE(is_low_precision(float32));
  EXPECT_EQ(real_type(complex64), float32);
  EXPECT_EQ(real_type(complex128), float64);
  EXPECT_EQ(real_type(float16), float16);
  EXPECT_EQ(complex_type(float32), complex64);
  EXPECT_EQ(complex_type(float64), complex128);
  EXPECT_EQ(to_inexact(int32), float32);
  EXPECT_EQ(to_inexact(bool_), float32);
  EXPECT_EQ(to_inexact(uint8), float32);
  EXPECT_EQ(to_inexact(float64), float64);
  EXPECT_EQ(to_inexact(bfloat16), bfloat16);
  EXPECT_EQ(to_inexact(complex64), complex64);
  EXPECT_EQ(accumulate_type(float16), float32);
  EXPECT_EQ(accumulate_type(bfloat16), float32);
  EXPECT_EQ(accumulate_type(float32), float32);
  EXPECT_EQ(accumulate_type(float64), float64);
  // NumPy 2 / Array API: bool and signed ints -> int64, unsigned ints -> uint64.
  for (DType dt : {bool_, int8, int16, int32, int64}) EXPECT_EQ(accumulate_type(dt), int64);
  for (DType dt : {uint8, uint16, uint32, uint64}) EXPECT_EQ(accumulate_type(dt), uint64);
  EXPECT_EQ(accumulate_type(complex64), complex64);
}

TEST(DType, DtypeOfCppTypes) {
  EXPECT_EQ(dtype_v<bool>, bool_);
  EXPECT_EQ(dtype_v<int8_t>, int8);
  EXPECT_EQ(dtype_v<uint8_t>, uint8);
  EXPECT_EQ(dtype_v<uint16_t>, uint16);
  EXPECT_EQ(dtype_v<uint32_t>, uint32);
  EXPECT_EQ(dtype_v<uint64_t>, uint64);
  EXPECT_EQ(dtype_v<Half>, float16);
  EXPECT_EQ(dtype_v<BFloat16>, bfloat16);
  EXPECT_EQ(dtype_v<complex128_t>, complex128);
}

namespace {

// Independent model of the Array API promotion lattice (plus the documented
// extensions: any integer with a float gives the float, f16+bf16 = f32, and
// NumPy 2's uint64 with a signed int = float64).
// NOLINTNEXTLINE(readability-function-cognitive-complexity)
std::optional<DType> expected_promotion(DType a, DType b) {
  auto rank_int = [](DType d) -> int {
    switch (d) {
      case DType::Int8:
        return 8;
      case DType::Int16:
        return 16;
      case DType::Int32:
        return 32;
      case DType::Int64:
        return 64;
      default:
        return 0;
    }
  };
  auto rank_uint = [](DType d) -> int {
    switch (d) {
      case DType::UInt8:
        return 8;
      case DType::UInt16:
        return 16;
      case DType::UInt32:
        return 32;
      case DType::UInt64:
        return 64;
      default:
        return 0;
    }
  };
  auto signed_of = [](int bits) {
    switch (bits) {
      case 8:
        return int8;
      case 16:
        return int16;
      case 32:
        return int32;
      default:
        return int64;
    }
  };
  auto fbits = [](DType d) -> int {
    switch (d) {
      case DType::Float16:
      case DType::BFloat16:
        return 16;
      case DType::Float32:
        return 32;
      case DType::Float64:
        return 64;
      case DType::Complex64:
        return 32;
      case DType::Complex128:
        return 64;
      default:
        return 0;
    }
  };
  const bool ab = a == bool_, bb = b == bool_;
  if (ab && bb) return bool_;
  if (ab || bb) return std::nullopt;  // bool with numeric: not specified by the standard
  const bool ai = tt::is_int(a), bi = tt::is_int(b);
  if (ai && bi) {
    const int ua = rank_uint(a), ub = rank_uint(b);
    if (ua && ub) return ua >= ub ? a : b;
    if (ua || ub) {  // one unsigned, one signed
      const int u = ua ? ua : ub, s = ua ? rank_int(b) : rank_int(a);
      if (u == 64) return float64;
      return signed_of(std::max(2 * u, s));
    }
    return signed_of(std::max(rank_int(a), rank_int(b)));
  }
  if (ai) return b;  // int with float/complex: the inexact type
  if (bi) return a;
  const bool ac = tt::is_cplx(a), bc = tt::is_cplx(b);
  if (!ac && !bc) {
    if (a == b) return a;
    if ((a == float16 && b == bfloat16) || (a == bfloat16 && b == float16)) return float32;
    return fbits(a) >= fbits(b) ? a : b;
  }
  const int bits = std::max(fbits(a), fbits(b));
  return bits >= 64 ? complex128 : complex64;
}

}  // namespace

TEST(DTypePromotion, FullLatticeMatchesArrayApi) {
  int checked = 0;
  for (DType a : all_dtypes()) {
    for (DType b : all_dtypes()) {
      auto want = expected_promotion(a, b);
      if (!want) continue;
      DType got{};
      ASSERT_NO_THROW(got = promote_types(a, b)) << tt::name_of(a) << "+" << tt::name_of(b);
      EXPECT_EQ(got, *want) << tt::name_of(a) << " + " << tt::name_of(b) << " gave "
                            << tt::name_of(got) << ", expected " << tt::name_of(*want);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 14 * 14 + 1);
}

TEST(DTypePromotion, SpotChecks) {
  EXPECT_EQ(promote_types(int8, uint8), int16);
  EXPECT_EQ(promote_types(uint8, int8), int16);
  EXPECT_EQ(promote_types(int64, uint8), int64);
  EXPECT_EQ(promote_types(uint8, int16), int16);
  EXPECT_EQ(promote_types(uint8, int32), int32);
  EXPECT_EQ(promote_types(uint8, uint16), uint16);
  EXPECT_EQ(promote_types(uint32, uint16), uint32);
  EXPECT_EQ(promote_types(uint8, uint64), uint64);
  EXPECT_EQ(promote_types(uint16, int8), int32);
  EXPECT_EQ(promote_types(uint16, int16), int32);
  EXPECT_EQ(promote_types(int64, uint16), int64);
  EXPECT_EQ(promote_types(uint32, int8), int64);
  EXPECT_EQ(promote_types(int32, uint32), int64);
  EXPECT_EQ(promote_types(uint64, int8), float64);
  EXPECT_EQ(promote_types(int64, uint64), float64);
  EXPECT_EQ(promote_types(uint64, float32), float32);
  EXPECT_EQ(promote_types(uint32, float16), float16);
  EXPECT_EQ(promote_types(int16, int32), int32);
  EXPECT_EQ(promote_types(float16, bfloat16), float32);
  EXPECT_EQ(promote_types(bfloat16, float16), float32);
  EXPECT_EQ(promote_types(int32, float16), float16);
  EXPECT_EQ(promote_types(int64, bfloat16), bfloat16);
  EXPECT_EQ(promote_types(float32, float64), float64);
  EXPECT_EQ(promote_types(complex64, float64), complex128);
  EXPECT_EQ(promote_types(complex64, float32), complex64);
  EXPECT_EQ(promote_types(float16, complex64), complex64);
  EXPECT_EQ(promote_types(complex64, complex128), complex128);
  EXPECT_EQ(promote_types(bool_, bool_), bool_);
}

TEST(DTypePromotion, BinaryOpResultDtypeFollowsPromotion) {
  // The op-level promotion must agree with promote_types for arrays (not scalars).
  for (auto [a, b] : std::vector<std::pair<DType, DType>>{{int8, uint8},
                                                          {uint8, int16},
                                                          {int32, float16},
                                                          {float16, bfloat16},
                                                          {float32, float64},
                                                          {complex64, float64},
                                                          {int64, uint8},
                                                          {uint16, int16},
                                                          {uint32, uint8},
                                                          {int32, uint32},
                                                          {uint64, int64}}) {
    Tensor x = ones({3}, a), y = ones({3}, b);
    Tensor z = add(x, y);
    EXPECT_EQ(z.dtype(), promote_types(a, b)) << tt::name_of(a) << "+" << tt::name_of(b);
    EXPECT_TRUE(tt::all_close(z, {2, 2, 2}, tt::tol_for(z.dtype())));
  }
}

TEST(DTypeWeakScalar, ScalarKeepsTensorDtype) {
  Tensor x = tt::make({1.5, -2.0, 3.0}, float32);
  Tensor y = x * 2.0;
  EXPECT_EQ(y.dtype(), float32);
  EXPECT_TRUE(tt::all_close(y, {3.0, -4.0, 6.0}));
  EXPECT_EQ((2.0 * x).dtype(), float32);
  EXPECT_EQ((x + 1).dtype(), float32);

  Tensor h = tt::make({1.0, 2.0}, {2}, float16);
  EXPECT_EQ((h + 2.5).dtype(), float16);
  EXPECT_EQ((h * 3).dtype(), float16);
  Tensor bf = tt::make({1.0, 2.0}, {2}, bfloat16);
  EXPECT_EQ((bf - 1.0).dtype(), bfloat16);

  Tensor i8 = tt::make({3, -4, 5}, {3}, int8);
  Tensor r = i8 + 1;
  EXPECT_EQ(r.dtype(), int8);
  EXPECT_TRUE(tt::all_equal(r, {4, -3, 6}));
  Tensor u8 = tt::make({3, 4}, {2}, uint8);
  EXPECT_EQ((u8 * 2).dtype(), uint8);
  EXPECT_EQ((tt::make({1, 2}, {2}, int16) - 7).dtype(), int16);
}

TEST(DTypeWeakScalar, HigherKindScalarPromotes) {
  Tensor i32 = tt::make({1, 2, 3}, {3}, int32);
  Tensor r = i32 + 2.5;
  EXPECT_EQ(r.dtype(), float32);
  EXPECT_TRUE(tt::all_close(r, {3.5, 4.5, 5.5}));
  EXPECT_EQ((2.5 + i32).dtype(), float32);

  Tensor f64 = tt::make({1.0, 2.0}, {2}, float64);
  EXPECT_EQ((f64 * 2.0f).dtype(), float64);
  Tensor c = f64 + std::complex<double>(0.0, 1.0);
  EXPECT_EQ(c.dtype(), complex128);
  EXPECT_TRUE(tt::all_close_c(c, {{1.0, 1.0}, {2.0, 1.0}}, tt::tol_for(complex128)));
  Tensor f32 = tt::make({1.0}, {1}, float32);
  EXPECT_EQ((f32 + std::complex<double>(1.0, 1.0)).dtype(), complex64);
}

TEST(DTypeWeakScalar, ScalarTensorIsWeak) {
  Tensor s(2.0);
  EXPECT_TRUE(s.weak_type());
  EXPECT_EQ(s.ndim(), 0);
  EXPECT_EQ(s.size(), 1);
  EXPECT_FALSE(tt::make({1.0}, float32).weak_type());
  // Two weak scalars still compute correctly.
  EXPECT_DOUBLE_EQ(tt::read1(Tensor(2.0) * Tensor(3.0)), 6.0);
}

TEST(DTypeScalar, NaturalDtypesAndAccessors) {
  EXPECT_EQ(Scalar(true).natural_dtype(), bool_);
  EXPECT_EQ(Scalar(3).natural_dtype(), int64);
  EXPECT_EQ(Scalar(int8_t{3}).natural_dtype(), int64);
  EXPECT_EQ(Scalar(2.5).natural_dtype(), float64);
  EXPECT_EQ(Scalar(2.5f).natural_dtype(), float64);
  EXPECT_EQ(Scalar(std::complex<float>(1, 2)).natural_dtype(), complex128);
  EXPECT_EQ(Scalar(7).as_int(), 7);
  EXPECT_DOUBLE_EQ(Scalar(7).as_double(), 7.0);
  EXPECT_DOUBLE_EQ(Scalar(2.5).as_double(), 2.5);
  EXPECT_EQ(Scalar(std::complex<double>(1, -2)).as_complex(), std::complex<double>(1, -2));
  EXPECT_EQ(Scalar(-3).kind(), Scalar::Kind::Int);
  EXPECT_EQ(Scalar(Half(1.5f)).kind(), Scalar::Kind::Float);
}

// ---- float16 ------------------------------------------------------------------

TEST(Half, AllBitPatternsDecodeExactly) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const uint16_t bits = static_cast<uint16_t>(b);
    const float want = tt::ref_half_to_float(bits);
    const float got = half_to_float(bits);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << "bits 0x" << std::hex << b;
    } else {
      ASSERT_EQ(tt::f32_bits(got), tt::f32_bits(want)) << "bits 0x" << std::hex << b;
    }
    // Round trip of every non-NaN pattern is the identity (incl. -0, subnormals, inf).
    if (!std::isnan(want)) {
      ASSERT_EQ(float_to_half(got), bits) << "bits 0x" << std::hex << b;
    }
    // Through the struct.
    ASSERT_EQ(Half::from_bits(bits).bits, bits);
  }
}

TEST(Half, NaNStaysNaN) {
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(std::nanf("")))));
  EXPECT_TRUE(std::isnan(static_cast<float>(Half(-std::nanf("")))));
  const uint16_t h = float_to_half(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(h & 0x7c00u, 0x7c00u);
  EXPECT_NE(h & 0x03ffu, 0u);
  // A signalling-NaN payload that would truncate to zero mantissa must stay NaN.
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(tt::bits_f32(0x7f800001u)))));
}

TEST(Half, SpecialValues) {
  EXPECT_EQ(float_to_half(0.0f), 0x0000);
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(-2.0f), 0xc000);
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(float_to_half(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_EQ(float_to_half(1e6f), 0x7c00);      // overflow -> inf
  EXPECT_EQ(float_to_half(65519.0f), 0x7bff);  // below the halfway point: max finite
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);  // halfway to 65536 rounds (to even) to inf
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);  // tie -> even (0)
  EXPECT_EQ(float_to_half(std::ldexp(1.5f, -25)), 0x0001);  // above the tie
  EXPECT_EQ(float_to_half(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 quanta: tie -> even (2)
  EXPECT_EQ(float_to_half(std::ldexp(5.0f, -25)), 0x0002);  // 2.5 quanta: tie -> even (2)
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -26)), 0x0000);  // underflow
  EXPECT_EQ(float_to_half(-std::ldexp(1.0f, -26)), 0x8000);
  EXPECT_EQ(float_to_half(std::ldexp(1023.0f, -24)), 0x03ff);  // largest subnormal
  // 1023.5 quanta of the subnormal range: tie rounds up to the smallest normal (even).
  EXPECT_EQ(float_to_half(std::ldexp(2047.0f, -25)), 0x0400);
}

TEST(Half, RoundingTiesToEven) {
  // Between 1 and 1+2^-10: the midpoint 1+2^-11 rounds down to 1 (even mantissa).
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  // Midpoint between 1+2^-10 (odd) and 1+2^-9 rounds up to the even one.
  EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  // Just above a midpoint rounds up, just below rounds down.
  EXPECT_EQ(float_to_half(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)), 0x3c01);
  EXPECT_EQ(float_to_half(std::nextafter(1.0f + 3 * std::ldexp(1.0f, -11), 0.0f)), 0x3c01);
  // Rounding that carries into the exponent: 2047.5 -> 2048 (mantissa overflow).
  EXPECT_EQ(float_to_half(2047.5f), 0x6800);
  EXPECT_EQ(float_to_half(2046.5f), 0x67fe);  // tie between 2046 (even) and 2047
}

TEST(Half, RandomFloatsMatchReference) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    uint32_t u = bits(rng);
    // Bias toward the half range: exponent in [-30, 20].
    if (i % 2) u = (u & 0x807fffffu) | (static_cast<uint32_t>(97 + (u >> 23) % 51) << 23);
    const float f = tt::bits_f32(u);
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_half(f), tt::ref_float_to_half(f)) << "float bits 0x" << std::hex << u;
    ASSERT_EQ(Half(f).bits, tt::ref_float_to_half(f));
  }
}

// ---- bfloat16 -----------------------------------------------------------------

TEST(BFloat16, AllBitPatternsRoundTrip) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const uint16_t bits = static_cast<uint16_t>(b);
    const float f = static_cast<float>(BFloat16::from_bits(bits));
    const float want = tt::ref_bf16_to_float(bits);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(f));
      ASSERT_TRUE(std::isnan(static_cast<float>(BFloat16(f))));
    } else {
      ASSERT_EQ(tt::f32_bits(f), tt::f32_bits(want));
      ASSERT_EQ(BFloat16(f).bits, bits) << std::hex << b;
    }
  }
}

TEST(BFloat16, RoundingTiesAndSpecials) {
  // 1 + 2^-8 is the midpoint between 1 and 1+2^-7: ties to even -> 1.
  EXPECT_EQ(BFloat16(1.0f + std::ldexp(1.0f, -8)).bits, 0x3f80);
  EXPECT_EQ(BFloat16(1.0f + 3 * std::ldexp(1.0f, -8)).bits, 0x3f82);
  EXPECT_EQ(BFloat16(std::nextafter(1.0f + std::ldexp(1.0f, -8), 2.0f)).bits, 0x3f81);
  EXPECT_EQ(BFloat16(std::numeric_limits<float>::infinity()).bits, 0x7f80);
  EXPECT_EQ(BFloat16(-0.0f).bits, 0x8000);
  EXPECT_EQ(BFloat16(std::numeric_limits<float>::max()).bits, 0x7f80);  // rounds to inf
  EXPECT_EQ(BFloat16(tt::bits_f32(0x00010000u)).bits, 0x0001);          // subnormal kept
  EXPECT_TRUE(std::isnan(static_cast<float>(BFloat16(tt::bits_f32(0x7f800001u)))));
  std::mt19937 rng(99);
  for (int i = 0; i < 100000; ++i) {
    const float f = tt::bits_f32(static_cast<uint32_t>(rng()));
    if (std::isnan(f)) continue;
    ASSERT_EQ(BFloat16(f).bits, tt::ref_float_to_bf16(f));
  }
}

TEST(Half, TensorRoundTripThroughEngine) {
  // float32 -> float16 -> float32 through astype agrees with the reference rounding.
  std::vector<double> vals = {0.1,       -0.1, 1.0 / 3, 65504.0,  70000.0,
                              1e-5,      6e-8, 2.98e-8, -65519.0, 1.0009765625 + 0.00048828125,
                              3.14159265};
  Tensor x = tt::make(vals, float32);
  Tensor h = x.astype(float16);
  EXPECT_EQ(h.dtype(), float16);
  auto got = tt::read(h.astype(float32));
  for (size_t i = 0; i < vals.size(); ++i) {
    const float f32v = static_cast<float>(vals[i]);
    EXPECT_EQ(tt::f32_bits(static_cast<float>(got[i])),
              tt::f32_bits(tt::ref_half_to_float(tt::ref_float_to_half(f32v))))
        << "value " << vals[i];
  }
  Tensor b = x.astype(bfloat16);
  auto gotb = tt::read(b.astype(float32));
  for (size_t i = 0; i < vals.size(); ++i) {
    const float f32v = static_cast<float>(vals[i]);
    EXPECT_EQ(static_cast<float>(gotb[i]), tt::ref_bf16_to_float(tt::ref_float_to_bf16(f32v)))
        << "value " << vals[i];
  }
}
