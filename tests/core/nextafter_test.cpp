// nextafter: float32/float64 bit for bit against std::nextafter; float16 and bfloat16
// against the neighbours found in the sorted list of all their values (every bit
// pattern as x), so the 16-bit formats are checked in their own precision. Runs on
// the cpu and, where a GPU is present, on the cuda device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "test_util.h"
#include "tmath/autodiff.h"

using namespace tmath;

namespace {

std::string cuda_skip_reason() {
  auto b = get_backend("cuda");
  if (!b) return "no cuda backend registered";
  if (b->available()) return {};
  const std::string r = b->info().reason;
  return r.empty() ? "unavailable" : r;
}

template <class T>
std::vector<T> raw(const Tensor& t) {
  EXPECT_EQ(t.dtype(), dtype_v<T>);
  Tensor c = copy(t.device() == kCPU ? t : t.to(kCPU)).eval();
  std::vector<T> v(static_cast<size_t>(c.size()));
  if (!v.empty()) std::memcpy(v.data(), c.data_ptr(), v.size() * sizeof(T));
  return v;
}

template <class T>
bool same_bits(T a, T b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

template <class T>
std::vector<T> edges() {
  using L = std::numeric_limits<T>;
  std::vector<T> v = {T(0),          -T(0),          L::denorm_min(), -L::denorm_min(),
                      L::min(),      -L::min(),      L::max(),        -L::max(),
                      L::infinity(), -L::infinity(), L::quiet_NaN(),  T(1),
                      T(-1),         T(1.5),         T(-3.25),        L::min() - L::denorm_min()};
  return v;
}

class Nextafter : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "cuda") {
      const std::string why = cuda_skip_reason();
      if (!why.empty()) GTEST_SKIP() << "no CUDA device: " << why;
      dev_ = Device{DeviceType::CUDA, 0};
    }
  }
  Tensor on(const Tensor& t) const { return dev_ == kCPU ? t : t.to(dev_).eval(); }

  template <class T>
  void check_against_std() {
    SCOPED_TRACE(std::string(dtype_name(dtype_v<T>)));
    std::vector<T> xs = edges<T>();
    std::mt19937 rng(5);
    std::uniform_real_distribution<double> u(-1e3, 1e3);
    for (int i = 0; i < 32; ++i) xs.push_back(static_cast<T>(u(rng)));
    std::vector<T> a, b;
    for (T x : xs)
      for (T y : xs) a.push_back(x), b.push_back(y);
    const Shape s{static_cast<int64_t>(a.size())};
    Tensor r =
        nextafter(on(from_data(a.data(), s, dtype_v<T>)), on(from_data(b.data(), s, dtype_v<T>)));
    ASSERT_EQ(r.dtype(), dtype_v<T>);
    const auto got = raw<T>(r);
    for (size_t i = 0; i < a.size(); ++i)
      ASSERT_TRUE(same_bits(got[i], std::nextafter(a[i], b[i])))
          << "nextafter(" << a[i] << ", " << b[i] << ") = " << got[i] << ", std::nextafter "
          << std::nextafter(a[i], b[i]);
  }

  // Every bit pattern of a 16-bit format as x, against y in {-inf, -1, -0, +0, 1, +inf, nan}
  // and y = x; the expected value is x's neighbour in the sorted list of all values.
  void check_16bit(DType dt) {
    SCOPED_TRACE(std::string(dtype_name(dt)));
    auto value = [&](uint16_t bits) {
      return dt == float16 ? static_cast<double>(tt::ref_half_to_float(bits))
                           : static_cast<double>(tt::ref_bf16_to_float(bits));
    };
    std::vector<double> sorted;
    for (uint32_t b = 0; b < 65536; ++b) {
      const double v = value(static_cast<uint16_t>(b));
      if (!std::isnan(v)) sorted.push_back(v);
    }
    std::sort(sorted.begin(), sorted.end());
    const double inf = std::numeric_limits<double>::infinity();
    const std::vector<double> ys = {-inf, -1.0, -0.0, 0.0, 1.0, inf, std::nan("")};
    std::vector<uint16_t> xb(65536);
    for (uint32_t b = 0; b < 65536; ++b) xb[b] = static_cast<uint16_t>(b);
    Tensor x = on(from_data(xb.data(), {65536}, dt));
    for (int yi = -1; yi < static_cast<int>(ys.size()); ++yi) {
      Tensor y = yi < 0 ? x : on(full({65536}, ys[static_cast<size_t>(yi)], dt));
      const auto got = tt::read(nextafter(x, y));
      for (uint32_t b = 0; b < 65536; ++b) {
        const double xv = value(static_cast<uint16_t>(b));
        const double yv = yi < 0 ? xv : ys[static_cast<size_t>(yi)];
        double want;
        if (std::isnan(xv) || std::isnan(yv))
          want = std::nan("");
        else if (xv == yv)
          want = yv;
        else if (yv > xv)
          want = *std::upper_bound(sorted.begin(), sorted.end(), xv);
        else
          want = *(std::lower_bound(sorted.begin(), sorted.end(), xv) - 1);
        // A zero result keeps x's sign (the step from +-min subnormal towards zero).
        if (want == 0.0 && xv != yv) want = std::copysign(0.0, xv);
        const bool ok = std::isnan(want)
                            ? std::isnan(got[b])
                            : got[b] == want && std::signbit(got[b]) == std::signbit(want);
        ASSERT_TRUE(ok) << "x bits 0x" << std::hex << b << std::dec << " (" << xv << "), y " << yv
                        << ": got " << got[b] << ", want " << want;
      }
    }
  }

  Device dev_ = kCPU;
};

TEST_P(Nextafter, Float32AndFloat64MatchStdNextafter) {
  check_against_std<float>();
  check_against_std<double>();
}

TEST_P(Nextafter, Float16AndBFloat16StepInTheirOwnFormat) {
  check_16bit(float16);
  check_16bit(bfloat16);
}

TEST_P(Nextafter, HandCheckedValues) {
  // 1 + 2^-23 (float32), 1 - 2^-24 (float32), +0 towards -0 gives -0, float16 1 + 2^-10.
  Tensor r =
      nextafter(on(tt::make({1.0, 1.0, 0.0}, float32)), on(tt::make({2.0, 0.0, -0.0}, float32)));
  const auto v = raw<float>(r);
  EXPECT_EQ(v[0], 1.0f + std::ldexp(1.0f, -23));
  EXPECT_EQ(v[1], 1.0f - std::ldexp(1.0f, -24));
  EXPECT_TRUE(v[2] == 0.0f && std::signbit(v[2]));
  EXPECT_EQ(tt::read1(nextafter(on(tt::make({1.0}, float16)), 2.0)), 1.0 + std::ldexp(1.0, -10));
  EXPECT_EQ(tt::read1(nextafter(on(tt::make({1.0}, bfloat16)), 2.0)), 1.0 + std::ldexp(1.0, -7));
  EXPECT_EQ(tt::read1(nextafter(on(tt::make({65504.0}, float16)), INFINITY)), INFINITY);
  // Weak scalars take the tensor's dtype; integers compute in float32.
  EXPECT_EQ(nextafter(on(tt::make({1.0}, float64)), 2.0).dtype(), float64);
  Tensor ri = nextafter(on(tt::make({1, 2}, int32)), on(tt::make({0, 3}, int32)));
  EXPECT_EQ(ri.dtype(), float32);
  EXPECT_EQ(raw<float>(ri)[1], std::nextafter(2.0f, 3.0f));
}

INSTANTIATE_TEST_SUITE_P(Devices, Nextafter, ::testing::Values("cpu", "cuda"),
                         [](const auto& info) { return info.param; });

TEST(NextafterErrors, ComplexInputIsADTypeError) {
  Tensor c = tt::make_c({{1, 2}}, {1}, complex64);
  try {
    nextafter(c, c).eval();
    ADD_FAILURE() << "no exception";
  } catch (const DTypeError& e) {
    EXPECT_NE(std::string(e.what()).find("[nextafter]"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(tt::all_close_c(c, {{1, 2}}, tt::Tol{0, 0}));  // input intact
}

TEST(NextafterGrad, ZeroGradientForBothOperands) {
  Tensor x = tt::make({1.0, -2.0, 0.5}, float32), y = tt::make({3.0, -5.0, 0.0}, float32);
  auto g = grad([](const std::vector<Tensor>& a) { return sum(nextafter(a[0], a[1]) * 3.0); },
                {0, 1})({x, y});
  ASSERT_EQ(g.size(), 2u);
  EXPECT_TRUE(tt::all_equal(g[0], {0, 0, 0}));
  EXPECT_TRUE(tt::all_equal(g[1], {0, 0, 0}));
  // Forward mode agrees.
  auto [out, tan] =
      jvp([](const std::vector<Tensor>& a) { return std::vector<Tensor>{nextafter(a[0], a[1])}; },
          {x, y}, {ones_like(x), ones_like(y)});
  EXPECT_TRUE(tt::all_equal(tan[0], {0, 0, 0}));
}

}  // namespace
