// Bitwise ops (and, or, xor, invert, left/right shift) on every integer dtype and
// bool, against references computed here on the C++ types: and/or/xor/invert with
// the built-in operators, shifts as multiplication and floor division by powers of
// two (counts outside [0, bits) give NumPy's results). Runs on the cpu and, where
// a GPU is present, on the cuda device.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <random>
#include <type_traits>

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

// The raw elements of t (row-major), which must have dtype dtype_v<T>.
template <class T>
std::vector<T> raw(const Tensor& t) {
  EXPECT_EQ(t.dtype(), dtype_v<T>) << "raw: dtype " << dtype_name(t.dtype());
  Tensor c = copy(t.device() == kCPU ? t : t.to(kCPU)).eval();
  std::vector<T> v(static_cast<size_t>(c.size()));
  if (!v.empty()) std::memcpy(v.data(), c.data_ptr(), v.size() * sizeof(T));
  return v;
}

template <class T>
Tensor host(const std::vector<T>& v) {
  return from_data(v.data(), {static_cast<int64_t>(v.size())}, dtype_v<T>);
}

// Values every test uses: the extremes, -1, 0, 1 and random bit patterns.
template <class T>
std::vector<T> samples(std::mt19937_64& rng, size_t n) {
  std::vector<T> v = {std::numeric_limits<T>::min(),
                      std::numeric_limits<T>::max(),
                      T(0),
                      T(1),
                      static_cast<T>(-1),
                      static_cast<T>(std::numeric_limits<T>::max() / 3)};
  while (v.size() < n) v.push_back(static_cast<T>(rng()));
  return v;
}

// Reference shifts without the shift operators. U: the unsigned type of T.
template <class T>
T ref_shl(T a, int64_t c) {
  using U = std::make_unsigned_t<T>;
  if (c < 0 || c >= static_cast<int64_t>(sizeof(T) * 8)) return T(0);
  const uint64_t p = uint64_t{1} << c;
  return static_cast<T>(static_cast<U>(static_cast<uint64_t>(static_cast<U>(a)) * p));
}
template <class T>
T ref_shr(T a, int64_t c) {
  if (c < 0 || c >= static_cast<int64_t>(sizeof(T) * 8)) return a < T(0) ? T(-1) : T(0);
  const uint64_t p = uint64_t{1} << c;
  if (a >= T(0)) return static_cast<T>(static_cast<uint64_t>(a) / p);
  // floor(a / p) for negative a: -((-(a + 1)) / p) - 1 (no overflow at the minimum).
  const auto m = static_cast<uint64_t>(-(static_cast<int64_t>(a) + 1));
  return static_cast<T>(-static_cast<int64_t>(m / p) - 1);
}

class Bitwise : public ::testing::TestWithParam<std::string> {
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
  void check_and_or_xor_invert() {
    SCOPED_TRACE(std::string(dtype_name(dtype_v<T>)));
    std::mt19937_64 rng(sizeof(T) * 31 + std::is_signed_v<T>);
    const std::vector<T> a = samples<T>(rng, 200), b = samples<T>(rng, 206);
    std::vector<T> bb(b.begin() + 6, b.end());  // other random patterns against the extremes
    Tensor ta = on(host(a)), tb = on(host(bb));
    const auto and_ = raw<T>(bitwise_and(ta, tb)), or_ = raw<T>(bitwise_or(ta, tb));
    const auto xor_ = raw<T>(ta ^ tb), inv = raw<T>(~ta);
    ASSERT_EQ(and_.size(), a.size());
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(and_[i], static_cast<T>(a[i] & bb[i])) << i;
      ASSERT_EQ(or_[i], static_cast<T>(a[i] | bb[i])) << i;
      ASSERT_EQ(xor_[i], static_cast<T>(a[i] ^ bb[i])) << i;
      ASSERT_EQ(inv[i], static_cast<T>(~a[i])) << i;
    }
    // Operators and broadcasting against a 0-d tensor of the same dtype and a weak scalar.
    const T m = static_cast<T>(0x5a);
    Tensor tm = on(from_data(&m, {}, dtype_v<T>));
    const auto r1 = raw<T>(ta & tm), r2 = raw<T>(ta | 3);
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(r1[i], static_cast<T>(a[i] & m)) << i;
      ASSERT_EQ(r2[i], static_cast<T>(a[i] | T(3))) << i;
    }
  }

  template <class T>
  void check_shifts() {
    SCOPED_TRACE(std::string(dtype_name(dtype_v<T>)));
    constexpr int bits = sizeof(T) * 8;
    std::mt19937_64 rng(bits + 7);
    std::vector<T> vals = samples<T>(rng, 24);
    // Every count from -3 (signed) to bits + 3, and the extremes of T as counts.
    std::vector<T> counts;
    for (int c = std::is_signed_v<T> ? -3 : 0; c <= bits + 3; ++c)
      if (static_cast<double>(c) <= static_cast<double>(std::numeric_limits<T>::max()))
        counts.push_back(static_cast<T>(c));
    counts.push_back(std::numeric_limits<T>::max());
    counts.push_back(std::numeric_limits<T>::min());
    std::vector<T> a, c;
    for (T v : vals)
      for (T k : counts) a.push_back(v), c.push_back(k);
    Tensor ta = on(host(a)), tc = on(host(c));
    const auto l = raw<T>(bitwise_left_shift(ta, tc)), r = raw<T>(ta >> tc);
    ASSERT_EQ(l.size(), a.size());
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(l[i], ref_shl(a[i], c[i])) << +a[i] << " << " << +c[i];
      ASSERT_EQ(r[i], ref_shr(a[i], c[i])) << +a[i] << " >> " << +c[i];
    }
    // A strided, broadcast count column: (n, 1) values against (1, k) counts.
    Tensor tv = reshape(on(host(vals)), {static_cast<int64_t>(vals.size()), 1});
    Tensor tk = reshape(on(host(counts)), {1, static_cast<int64_t>(counts.size())});
    const auto lb = raw<T>(tv << tk), rb = raw<T>(bitwise_right_shift(tv, tk));
    ASSERT_EQ(lb.size(), vals.size() * counts.size());
    for (size_t i = 0; i < vals.size(); ++i)
      for (size_t j = 0; j < counts.size(); ++j) {
        ASSERT_EQ(lb[i * counts.size() + j], ref_shl(vals[i], counts[j]));
        ASSERT_EQ(rb[i * counts.size() + j], ref_shr(vals[i], counts[j]));
      }
  }

  Device dev_ = kCPU;
};

TEST_P(Bitwise, AndOrXorInvertEveryIntegerDtype) {
  check_and_or_xor_invert<int8_t>();
  check_and_or_xor_invert<int16_t>();
  check_and_or_xor_invert<int32_t>();
  check_and_or_xor_invert<int64_t>();
  check_and_or_xor_invert<uint8_t>();
  check_and_or_xor_invert<uint16_t>();
  check_and_or_xor_invert<uint32_t>();
  check_and_or_xor_invert<uint64_t>();
}

TEST_P(Bitwise, ShiftsEveryCountEveryIntegerDtype) {
  check_shifts<int8_t>();
  check_shifts<int16_t>();
  check_shifts<int32_t>();
  check_shifts<int64_t>();
  check_shifts<uint8_t>();
  check_shifts<uint16_t>();
  check_shifts<uint32_t>();
  check_shifts<uint64_t>();
}

TEST_P(Bitwise, HandCheckedShifts) {
  // NumPy: np.int8(-128) >> 7 == -1, np.int8(1) << 7 == -128, np.int32(5) << 32 == 0,
  // np.int32(-5) >> 40 == -1, np.int32(5) >> -1 == 0, np.uint8(255) >> 9 == 0.
  Tensor a = on(tt::make({-128, 1, 5, -5, 5, -7, 6}, DType::Int32).astype(int8));
  EXPECT_TRUE(tt::all_equal(a >> 7, {-1, 0, 0, -1, 0, -1, 0}));
  EXPECT_TRUE(tt::all_equal(a << 7, {0, -128, -128, -128, -128, -128, 0}));
  Tensor b = on(tt::make({5, -5, 5, -7, 1}, int32));
  Tensor k = on(tt::make({32, 40, -1, 1, 31}, int32));
  EXPECT_TRUE(tt::all_equal(b << k, {0, 0, 0, -14, -2147483648.0}));
  EXPECT_TRUE(tt::all_equal(b >> k, {0, -1, 0, -4, 0}));
  Tensor u = on(tt::make({255, 255, 128}, uint8));
  EXPECT_TRUE(tt::all_equal(u >> on(tt::make({9, 7, 3}, uint8)), {0, 1, 16}));
  EXPECT_TRUE(tt::all_equal(u << on(tt::make({1, 8, 0}, uint8)), {254, 0, 128}));
  // Unsigned right shifts are logical: np.uint64(2**63) >> 63 == 1, np.uint32(2**31) >> 31 == 1.
  const std::vector<uint64_t> top = {uint64_t{1} << 63, ~uint64_t{0}};
  Tensor u64 = on(host(top));
  EXPECT_EQ(raw<uint64_t>(u64 >> 63), (std::vector<uint64_t>{1, 1}));
  EXPECT_EQ(raw<uint64_t>(u64 >> 1), (std::vector<uint64_t>{uint64_t{1} << 62, ~uint64_t{0} >> 1}));
  const std::vector<uint32_t> top32 = {uint32_t{1} << 31, 0xffffffffu};
  EXPECT_EQ(raw<uint32_t>(on(host(top32)) >> 31), (std::vector<uint32_t>{1, 1}));
  const std::vector<uint16_t> top16 = {0x8000, 0xffff};
  EXPECT_EQ(raw<uint16_t>(on(host(top16)) >> 15), (std::vector<uint16_t>{1, 1}));
}

TEST_P(Bitwise, BoolAndOrXorInvert) {
  Tensor a = on(tt::make({0, 0, 1, 1}, bool_)), b = on(tt::make({0, 1, 0, 1}, bool_));
  for (const Tensor& r : {a & b, a | b, a ^ b, ~a}) EXPECT_EQ(r.dtype(), bool_);
  EXPECT_TRUE(tt::all_equal(a & b, {0, 0, 0, 1}));
  EXPECT_TRUE(tt::all_equal(bitwise_or(a, b), {0, 1, 1, 1}));
  EXPECT_TRUE(tt::all_equal(bitwise_xor(a, b), {0, 1, 1, 0}));
  EXPECT_TRUE(tt::all_equal(bitwise_invert(a), {1, 1, 0, 0}));
  // bool with a weak Python int: int64 (as NumPy's True & 3).
  Tensor r = a | 2;
  EXPECT_EQ(r.dtype(), int64);
  EXPECT_TRUE(tt::all_equal(r, {2, 2, 3, 3}));
}

TEST_P(Bitwise, IntegerPromotion) {
  Tensor i8 = on(tt::make({-1, 2}, int8)), u8 = on(tt::make({255, 3}, uint8));
  Tensor i32 = on(tt::make({7, -8}, int32));
  Tensor r = i8 & u8;  // int8 with uint8: int16
  EXPECT_EQ(r.dtype(), int16);
  EXPECT_TRUE(tt::all_equal(r, {255, 2}));
  EXPECT_EQ((u8 | i32).dtype(), int32);
  EXPECT_TRUE(tt::all_equal(u8 | i32, {255, -5}));
  EXPECT_EQ((i8 << i32).dtype(), int32);
  EXPECT_EQ((i8 ^ 1).dtype(), int8);  // weak scalar keeps the tensor's dtype
  EXPECT_TRUE(tt::all_equal(u8 >> 1, {127, 1}));
  EXPECT_EQ((u8 >> 1).dtype(), uint8);
  // Wider unsigned dtypes (NumPy 2): uint16 & int16 -> int32, uint32 | int8 -> int64,
  // uint64 with a signed int has no integer result (float64), so no bitwise op.
  Tensor u16 = on(tt::make({65535, 3}, uint16)), i16 = on(tt::make({-1, 2}, int16));
  EXPECT_EQ((u16 & i16).dtype(), int32);
  EXPECT_TRUE(tt::all_equal(u16 & i16, {65535, 2}));
  Tensor u32 = on(tt::make({4294967295.0, 3}, uint32));
  EXPECT_EQ((u32 | i8).dtype(), int64);
  EXPECT_TRUE(tt::all_equal(u32 | i8, {-1, 3}));
  EXPECT_EQ((u32 ^ u16).dtype(), uint32);
  EXPECT_EQ((u16 << 3).dtype(), uint16);
}

TEST_P(Bitwise, CompoundAssignmentOperators) {
  Tensor a = on(tt::make({12, 10}, int32));
  const Tensor orig = a;
  a &= on(tt::make({10, 6}, int32));
  EXPECT_TRUE(tt::all_equal(a, {8, 2}));
  a |= 1;
  a ^= 3;
  a <<= 2;
  a >>= 1;
  EXPECT_TRUE(tt::all_equal(a, {20, 0}));
  EXPECT_TRUE(tt::all_equal(orig, {12, 10}));  // a new node each time, the input unchanged
}

INSTANTIATE_TEST_SUITE_P(Devices, Bitwise, ::testing::Values("cpu", "cuda"),
                         [](const auto& info) { return info.param; });

TEST(BitwiseErrors, FloatAndComplexInputsNameTheOp) {
  Tensor f = tt::make({1.5, 2.0}, float32), i = tt::make({1, 2}, int32);
  Tensor c = tt::make_c({{1, 2}, {3, 4}}, {2}, complex64), b = tt::make({1, 0}, bool_);
  auto message = [](auto&& fn) -> std::string {
    try {
      fn().eval();
    } catch (const DTypeError& e) {
      return e.what();
    } catch (const std::exception& e) {
      return std::string("wrong exception: ") + e.what();
    }
    return "no exception";
  };
  auto has = [](const std::string& s, const char* part) {
    return s.find(part) != std::string::npos;
  };
  std::string m = message([&] { return bitwise_and(f, i); });
  EXPECT_TRUE(has(m, "[bitwise_and]") && has(m, "float32") && has(m, "int32")) << m;
  m = message([&] { return bitwise_or(i, 2.5); });
  EXPECT_TRUE(has(m, "[bitwise_or]") && has(m, "float64")) << m;
  m = message([&] { return ~f; });
  EXPECT_TRUE(has(m, "[bitwise_invert]") && has(m, "float32")) << m;
  m = message([&] { return bitwise_xor(c, c); });
  EXPECT_TRUE(has(m, "[bitwise_xor]") && has(m, "complex64")) << m;
  m = message([&] { return bitwise_left_shift(f, i); });
  EXPECT_TRUE(has(m, "[bitwise_left_shift]") && has(m, "float32")) << m;
  m = message([&] { return bitwise_right_shift(b, b); });  // shifts: integers only
  EXPECT_TRUE(has(m, "[bitwise_right_shift]") && has(m, "bool")) << m;
  m = message([&] { return b << 1; });
  EXPECT_TRUE(has(m, "[bitwise_left_shift]") && has(m, "bool")) << m;
  // The failed ops left their inputs intact and usable.
  EXPECT_TRUE(tt::all_equal(f, {1.5, 2.0}));
  EXPECT_TRUE(tt::all_equal(i & 3, {1, 2}));
  EXPECT_TRUE(tt::all_equal(b ^ b, {0, 0}));
}

TEST(BitwiseErrors, NotDifferentiable) {
  // Integer results carry no gradient: a function through them is constant.
  Tensor x = tt::make({1.0, 2.0}, float32);
  auto g = grad([](const std::vector<Tensor>& a) {
    Tensor k = astype(a[0], int32) << 1;
    return sum(astype(k, float32) * a[0]);
  })({x});
  ASSERT_EQ(g.size(), 1u);
  EXPECT_TRUE(tt::all_close(g[0], {2.0, 4.0}, tt::Tol{0, 0}));  // d/dx (c * x) with c held fixed
}

}  // namespace
