#include "core/philox.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>

namespace tmath::philox {
namespace {

void expect_block(Block got, Block want) {
  for (int i = 0; i < 4; ++i) EXPECT_EQ(got.w[i], want.w[i]) << "word " << i;
}

TEST(Philox, KnownAnswer) {
  expect_block(philox4x32_10(Block{{0, 0, 0, 0}}, 0, 0),
               Block{{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}});
  expect_block(philox4x32_10(Block{{~0u, ~0u, ~0u, ~0u}}, ~0u, ~0u),
               Block{{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}});
  expect_block(philox4x32_10(Block{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
                             0xa4093822u, 0x299f31d0u),
               Block{{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}});
}

TEST(Philox, BlockCounterLayout) {
  const uint64_t c = 0x0123456789abcdefull;
  expect_block(block(7, 9, c), philox4x32_10(Block{{0x89abcdefu, 0x01234567u, 0, 0}}, 7, 9));
}

TEST(Philox, UniformConversionsStayInUnitInterval) {
  EXPECT_EQ(u24(0), 0.0f);
  EXPECT_LT(u24(~0u), 1.0f);
  EXPECT_EQ(u53(0, 0), 0.0);
  EXPECT_LT(u53(~0u, ~0u), 1.0);
  EXPECT_EQ(u53(~0u, ~0u), 1.0 - 0x1p-53);
}

double rel_err(double got, double want) {
  if (got == want) return 0.0;
  return std::abs(got - want) / std::abs(want);
}

TEST(Philox, DetLogMatchesStd) {
  std::mt19937_64 gen(1);
  std::uniform_real_distribution<double> mant(1.0, 2.0);
  std::uniform_int_distribution<int> expo(-1074, 1023);
  double worst = 0.0;
  for (int i = 0; i < 200000; ++i) {
    const double x = std::ldexp(mant(gen), expo(gen));
    if (x == 0.0 || std::isinf(x)) continue;
    worst = std::max(worst, rel_err(det_log(x), std::log(x)));
  }
  std::uniform_real_distribution<double> near1(-1e-3, 1e-3);
  for (int i = 0; i < 200000; ++i) {
    const double x = 1.0 + near1(gen) * std::ldexp(1.0, -(i % 40));
    worst = std::max(worst, rel_err(det_log(x), std::log(x)));
  }
  for (double x : {0x1p-1074, 0x1p-1022, 0.5, 0.75, 1.0 - 0x1p-53, 1.0 + 0x1p-52, 2.0, 1e300}) {
    worst = std::max(worst, rel_err(det_log(x), std::log(x)));
  }
  EXPECT_LT(worst, 1e-14);
  EXPECT_EQ(det_log(1.0), 0.0);
  EXPECT_TRUE(std::isinf(det_log(0.0)) && det_log(0.0) < 0);
  EXPECT_TRUE(std::isnan(det_log(-1.0)));
  EXPECT_TRUE(std::isinf(det_log(INFINITY)));
  EXPECT_TRUE(std::isnan(det_log(NAN)));
}

TEST(Philox, DetSinCosMatchesStd) {
  std::mt19937_64 gen(2);
  double worst = 0.0;
  auto check = [&](double x) {
    double s, c;
    det_sincos(x, &s, &c);
    worst = std::max(worst, rel_err(s, std::sin(x)));
    worst = std::max(worst, rel_err(c, std::cos(x)));
  };
  for (double hi : {1.0, 8.0, 100.0, 1e4, kSinCosMaxArg}) {
    std::uniform_real_distribution<double> dist(-hi, hi);
    for (int i = 0; i < 100000; ++i) check(dist(gen));
  }
  // Near multiples of pi/2, where the reduction cancels.
  for (int k = -2000; k <= 2000; ++k) {
    const double x = k * (M_PI / 2);
    check(x);
    check(std::nextafter(x, 1e9));
    check(std::nextafter(x, -1e9));
  }
  for (double x : {0.0, -0.0, 1e-300, 0x1p-1074, 0.785398163397448, 1e-8, 3e5}) check(x);
  EXPECT_LT(worst, 1e-14);
  double s, c;
  det_sincos(INFINITY, &s, &c);
  EXPECT_TRUE(std::isnan(s) && std::isnan(c));
}

TEST(Philox, NormalMoments) {
  const int64_t pairs = 500000;
  double sum = 0, sum2 = 0, sum3 = 0, sum4 = 0, cross = 0;
  for (int64_t c = 0; c < pairs; ++c) {
    const NormalPair p = normal_pair(block(42, 7, static_cast<uint64_t>(c)));
    for (double z : {p.z0, p.z1}) {
      ASSERT_TRUE(std::isfinite(z));
      sum += z;
      sum2 += z * z;
      sum3 += z * z * z;
      sum4 += z * z * z * z;
    }
    cross += p.z0 * p.z1;
  }
  const double n = 2.0 * pairs;
  const double mean = sum / n;
  const double var = sum2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 5e-3);
  EXPECT_NEAR(var, 1.0, 5e-3);
  EXPECT_NEAR(sum3 / n, 0.0, 2e-2);
  EXPECT_NEAR(sum4 / n, 3.0, 3e-2);
  EXPECT_NEAR(cross / pairs, 0.0, 1e-2);
}

TEST(Philox, UniformMoments) {
  const int64_t blocks = 250000;
  double sum = 0, sum2 = 0;
  int64_t buckets[16] = {};
  for (int64_t c = 0; c < blocks; ++c) {
    const Block b = block(3, 5, static_cast<uint64_t>(c));
    for (uint32_t w : b.w) {
      const double u = u24(w);
      sum += u;
      sum2 += u * u;
      ++buckets[w >> 28];
    }
  }
  const double n = 4.0 * blocks;
  EXPECT_NEAR(sum / n, 0.5, 2e-3);
  EXPECT_NEAR(sum2 / n - (sum / n) * (sum / n), 1.0 / 12, 1e-3);
  for (int64_t count : buckets) EXPECT_NEAR(static_cast<double>(count), n / 16, n / 16 * 0.02);
}

}  // namespace
}  // namespace tmath::philox
