// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC 2011) and the conversions from its words to samples. Everything here is
// header-only, uses only integer ops and IEEE +, -, *, / and sqrt (all
// correctly rounded), and must be compiled without FMA contraction, so a CPU
// and a CUDA build give bit-identical samples for the same key.
//
// The stream of key (k0, k1): block c (uint64) is Philox4x32-10 applied to the
// counter {lo32(c), hi32(c), 0, 0}; it yields the words w[4c .. 4c+3].
//
// Samples, element i of a flat output:
//   bits     w[i] (stored as int64 in [0, 2^32)).
//   uniform  float32/float16/bfloat16: u = (w[i] >> 8) * 2^-24 in [0, 1);
//              v = float(a) + float(b - a) * u, evaluated in float32, then
//              rounded to the output dtype.
//            float64: words w[2i], w[2i+1]; m = (w[2i] << 21) | (w[2i+1] >> 11)
//              (53 bits), u = m * 2^-53 in [0, 1); v = a + (b - a) * u.
//            In every dtype a value that rounds to b or above is replaced by the
//            largest value of the dtype below b, so samples lie in [a, b).
//   normal   block c gives elements 2c and 2c+1 (Box-Muller, float64):
//              u1 = (m(w[4c], w[4c+1]) + 1) * 2^-53 in (0, 1]
//              u2 =  m(w[4c+2], w[4c+3]) * 2^-53 in [0, 1)
//              r = sqrt(-2 * det_log(u1)), t = kTwoPi * u2,
//              (s, c) = det_sincos(t), z[2c] = r * c, z[2c+1] = r * s,
//            then v = a + b * z in float64, rounded to float32 (and from there
//            to float16/bfloat16) or kept for float64.
#pragma once

#include <cstdint>
#include <cstring>

#ifndef TMATH_HD
#ifdef __CUDACC__
#define TMATH_HD __host__ __device__
#else
#define TMATH_HD
#endif
#endif

#ifndef __CUDA_ARCH__
#include <cmath>
#endif

namespace tmath::philox {

inline constexpr uint32_t kMul0 = 0xD2511F53u;
inline constexpr uint32_t kMul1 = 0xCD9E8D57u;
inline constexpr uint32_t kWeyl0 = 0x9E3779B9u;
inline constexpr uint32_t kWeyl1 = 0xBB67AE85u;

struct Block {
  uint32_t w[4];
};

// One Philox4x32 evaluation with 10 rounds.
TMATH_HD constexpr Block philox4x32_10(Block ctr, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += kWeyl0;
      k1 += kWeyl1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * ctr.w[0];
    const uint64_t p1 = static_cast<uint64_t>(kMul1) * ctr.w[2];
    const auto hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const auto hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    ctr = Block{{hi1 ^ ctr.w[1] ^ k0, lo1, hi0 ^ ctr.w[3] ^ k1, lo0}};
  }
  return ctr;
}

// Block c of the stream of key (k0, k1).
TMATH_HD constexpr Block block(uint32_t k0, uint32_t k1, uint64_t c) {
  return philox4x32_10(Block{{static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), 0u, 0u}},
                       k0, k1);
}

// Random123 known-answer vectors.
static_assert(philox4x32_10(Block{{0, 0, 0, 0}}, 0, 0).w[0] == 0x6627e8d5u &&
              philox4x32_10(Block{{0, 0, 0, 0}}, 0, 0).w[3] == 0x9b00dbd8u);
static_assert(philox4x32_10(Block{{~0u, ~0u, ~0u, ~0u}}, ~0u, ~0u).w[1] == 0x41c83b0eu);
static_assert(philox4x32_10(Block{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
                            0xa4093822u, 0x299f31d0u)
                  .w[2] == 0x5001e420u);

// Uniform float in [0, 1) with 24 random bits (exact).
TMATH_HD inline float u24(uint32_t w) {
  return static_cast<float>(w >> 8) * 0x1p-24f;
}

// 53 random bits from two words.
TMATH_HD constexpr uint64_t bits53(uint32_t hi, uint32_t lo) {
  return (static_cast<uint64_t>(hi) << 21) | (lo >> 11);
}
// Uniform double in [0, 1) (exact).
TMATH_HD inline double u53(uint32_t hi, uint32_t lo) {
  return static_cast<double>(bits53(hi, lo)) * 0x1p-53;
}

TMATH_HD inline uint64_t double_bits(double x) {
#ifdef __CUDA_ARCH__
  return static_cast<uint64_t>(__double_as_longlong(x));
#else
  uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}
TMATH_HD inline double double_from_bits(uint64_t u) {
#ifdef __CUDA_ARCH__
  return __longlong_as_double(static_cast<long long>(u));
#else
  double x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}
TMATH_HD inline double det_sqrt(double x) {
#ifdef __CUDA_ARCH__
  return __dsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}

// Natural logarithm, error below 1 ulp (the fdlibm algorithm: reduce to
// m * 2^k with m in [sqrt(2)/2, sqrt(2)), then a minimax series in s = f/(2+f)).
TMATH_HD inline double det_log(double x) {
  constexpr double kLn2Hi = 6.93147180369123816490e-01;
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  constexpr double kLg1 = 6.666666666666735130e-01, kLg2 = 3.999999999940941908e-01,
                   kLg3 = 2.857142874366239149e-01, kLg4 = 2.222219843214978396e-01,
                   kLg5 = 1.818357216161805012e-01, kLg6 = 1.531383769920937332e-01,
                   kLg7 = 1.479819860511658591e-01;
  uint64_t u = double_bits(x);
  auto hx = static_cast<int32_t>(u >> 32);
  int k = 0;
  if (hx < 0x00100000) {  // x < 2^-1022, or negative
    if ((u & 0x7fffffffffffffffull) == 0) return double_from_bits(0xfff0000000000000ull);
    if (hx < 0) return double_from_bits(0x7ff8000000000000ull);
    k -= 54;  // subnormal: scale up by 2^54
    x *= 0x1p54;
    u = double_bits(x);
    hx = static_cast<int32_t>(u >> 32);
  }
  if (hx >= 0x7ff00000) return x + x;  // inf or NaN
  k += (hx >> 20) - 1023;
  hx &= 0x000fffff;
  const int32_t i = (hx + 0x95f64) & 0x100000;
  // Normalise the mantissa to [sqrt(2)/2, sqrt(2)).
  u = (static_cast<uint64_t>(static_cast<uint32_t>(hx | (i ^ 0x3ff00000))) << 32) |
      (u & 0xffffffffull);
  x = double_from_bits(u);
  k += i >> 20;
  const double f = x - 1.0;
  const double dk = static_cast<double>(k);
  if ((0x000fffff & (2 + hx)) < 3) {  // |f| < 2^-20
    if (f == 0.0) return k == 0 ? 0.0 : dk * kLn2Hi + dk * kLn2Lo;
    const double r = f * f * (0.5 - 0.33333333333333333 * f);
    return k == 0 ? f - r : dk * kLn2Hi - ((r - dk * kLn2Lo) - f);
  }
  const double s = f / (2.0 + f);
  const double z = s * s;
  const double w = z * z;
  const double t1 = w * (kLg2 + w * (kLg4 + w * kLg6));
  const double t2 = z * (kLg1 + w * (kLg3 + w * (kLg5 + w * kLg7)));
  const double r = t2 + t1;
  if (((hx - 0x6147a) | (0x6b851 - hx)) > 0) {
    const double hfsq = 0.5 * f * f;
    if (k == 0) return f - (hfsq - s * (hfsq + r));
    return dk * kLn2Hi - ((hfsq - (s * (hfsq + r) + dk * kLn2Lo)) - f);
  }
  if (k == 0) return f - s * (f - r);
  return dk * kLn2Hi - ((s * (f - r) - dk * kLn2Lo) - f);
}

namespace detail {

// sin(x + y) for |x + y| <= pi/4, y the tail of x.
TMATH_HD inline double kernel_sin(double x, double y) {
  constexpr double kS1 = -1.66666666666666324348e-01, kS2 = 8.33333333332248946124e-03,
                   kS3 = -1.98412698298579493134e-04, kS4 = 2.75573137070700676789e-06,
                   kS5 = -2.50507602534068634195e-08, kS6 = 1.58969099521155010221e-10;
  const double z = x * x;
  const double v = z * x;
  const double r = kS2 + z * (kS3 + z * (kS4 + z * (kS5 + z * kS6)));
  return x - ((z * (0.5 * y - v * r) - y) - v * kS1);
}

// cos(x + y) for |x + y| <= pi/4.
TMATH_HD inline double kernel_cos(double x, double y) {
  constexpr double kC1 = 4.16666666666666019037e-02, kC2 = -1.38888888888741095749e-03,
                   kC3 = 2.48015872894767294178e-05, kC4 = -2.75573143513906633035e-07,
                   kC5 = 2.08757232129817482790e-09, kC6 = -1.13596475577881948265e-11;
  const auto ix = static_cast<uint32_t>(double_bits(x) >> 32) & 0x7fffffffu;
  const double z = x * x;
  const double r = z * (kC1 + z * (kC2 + z * (kC3 + z * (kC4 + z * (kC5 + z * kC6)))));
  if (ix < 0x3fd33333u) return 1.0 - (0.5 * z - (z * r - x * y));  // |x| < 0.3
  // Split 1 - z/2 as (1 - q) - (z/2 - q) with q ~ x^2/4 exact, to keep the ulp.
  const double q =
      ix > 0x3fe90000u ? 0.28125 : double_from_bits(static_cast<uint64_t>(ix - 0x00200000u) << 32);
  const double hz = 0.5 * z - q;
  const double a = 1.0 - q;
  return a - (hz - (z * r - x * y));
}

}  // namespace detail

// Largest |x| det_sincos accepts (2^20 * pi/2): below it, the Cody-Waite
// reduction with pi/2 in three 33-bit parts is exact enough for < 2 ulp.
inline constexpr double kSinCosMaxArg = 1647099.3291652855;

// sin(x) and cos(x), error within 2 ulp for |x| <= kSinCosMaxArg; NaN beyond it
// and for inf/NaN (the samplers only need [0, 2pi)).
TMATH_HD inline void det_sincos(double x, double* s, double* c) {
  constexpr double kInvPio2 = 6.36619772367581382433e-01;
  constexpr double kPio2_1 = 1.57079632673412561417e+00, kPio2_1t = 6.07710050650619224932e-11;
  constexpr double kPio2_2 = 6.07710050630396597660e-11, kPio2_2t = 2.02226624879595063154e-21;
  constexpr double kPio2_3 = 2.02226624871116645580e-21, kPio2_3t = 8.47842766036889956997e-32;
  const double t = x < 0 ? -x : x;
  if (!(t <= kSinCosMaxArg)) {
    *s = *c = double_from_bits(0x7ff8000000000000ull);
    return;
  }
  double y0 = x, y1 = 0.0;
  int n = 0;
  const auto ix = static_cast<int32_t>(double_bits(t) >> 32);
  if (ix > 0x3fe921fb) {  // |x| > ~pi/4: reduce t = n * pi/2 + (y0 + y1)
    n = static_cast<int>(t * kInvPio2 + 0.5);
    const double fn = static_cast<double>(n);
    double r = t - fn * kPio2_1;  // exact: fn * kPio2_1 fits 53 bits
    double w = fn * kPio2_1t;
    y0 = r - w;
    const int j = ix >> 20;
    int e = j - static_cast<int>((double_bits(y0) >> 52) & 0x7ff);
    if (e > 16) {  // cancellation: add the next 33 bits of pi/2
      double u = r;
      w = fn * kPio2_2;
      r = u - w;
      w = fn * kPio2_2t - ((u - r) - w);
      y0 = r - w;
      e = j - static_cast<int>((double_bits(y0) >> 52) & 0x7ff);
      if (e > 49) {
        u = r;
        w = fn * kPio2_3;
        r = u - w;
        w = fn * kPio2_3t - ((u - r) - w);
        y0 = r - w;
      }
    }
    y1 = (r - y0) - w;
    if (x < 0) {
      y0 = -y0;
      y1 = -y1;
      n = -n;
    }
  }
  const double ks = detail::kernel_sin(y0, y1);
  const double kc = detail::kernel_cos(y0, y1);
  switch (n & 3) {
    case 0:
      *s = ks;
      *c = kc;
      break;
    case 1:
      *s = kc;
      *c = -ks;
      break;
    case 2:
      *s = -ks;
      *c = -kc;
      break;
    default:
      *s = -kc;
      *c = ks;
      break;
  }
}

inline constexpr double kTwoPi = 6.28318530717958647692;

struct NormalPair {
  double z0, z1;
};

// Two standard normals from one block (see the header comment).
TMATH_HD inline NormalPair normal_pair(Block b) {
  const double u1 = static_cast<double>(bits53(b.w[0], b.w[1]) + 1) * 0x1p-53;
  const double u2 = u53(b.w[2], b.w[3]);
  const double r = det_sqrt(-2.0 * det_log(u1));
  double s, c;
  det_sincos(kTwoPi * u2, &s, &c);
  return {r * c, r * s};
}

}  // namespace tmath::philox
