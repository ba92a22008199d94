// Integer sum, prod, cumsum and cumprod on one device against plain uint64 loops
// (arithmetic modulo 2^64, as NumPy's): the result dtypes of NumPy 2 and the Array API
// (int64 for bool and signed ints, uint64 for unsigned ints) and exact values,
// wrap-around included. Each backend's test file runs it on its device.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tmath/tmath.h"

namespace tt {

inline const std::vector<tmath::DType>& int_and_bool_dtypes() {
  using tmath::DType;
  static const std::vector<DType> v = {DType::Bool,   DType::Int8,   DType::Int16,
                                       DType::Int32,  DType::Int64,  DType::UInt8,
                                       DType::UInt16, DType::UInt32, DType::UInt64};
  return v;
}

// NumPy 2's result dtype of sum/prod/cumsum/cumprod without dtype=.
inline tmath::DType numpy_sum_dtype(tmath::DType dt) {
  using tmath::DType;
  const bool u =
      dt == DType::UInt8 || dt == DType::UInt16 || dt == DType::UInt32 || dt == DType::UInt64;
  return u ? DType::UInt64 : DType::Int64;
}

// An integer (or bool) tensor with its values as uint64 bits (sign-extended for signed
// dtypes, so uint64 arithmetic on them is the modulo-2^64 reference).
struct IntIn {
  tmath::Tensor t;
  std::vector<uint64_t> v;
  tmath::Shape shape;
};

inline IntIn int_in(const std::vector<uint64_t>& raw, const tmath::Shape& shape, tmath::DType dt,
                    tmath::Device dev) {
  const size_t isz = tmath::itemsize(dt);
  const int bits = static_cast<int>(isz) * 8;
  const bool sgn = tmath::kind(dt) == tmath::DTypeKind::SignedInt;
  IntIn in;
  in.shape = shape;
  std::vector<unsigned char> buf(raw.size() * isz);
  for (size_t i = 0; i < raw.size(); ++i) {
    uint64_t x = dt == tmath::DType::Bool ? (raw[i] & 1u) : raw[i];
    if (bits < 64) {
      x &= (uint64_t{1} << bits) - 1;
      if (sgn && (x >> (bits - 1)) != 0) x |= ~uint64_t{0} << bits;  // sign-extend
    }
    std::memcpy(buf.data() + i * isz, &x, isz);  // little-endian: the low bytes
    in.v.push_back(x);
  }
  in.t = tmath::from_data(buf.data(), shape, dt, tmath::kCPU).to(dev).eval();
  return in;
}

inline IntIn random_int_in(std::mt19937_64& rng, const tmath::Shape& shape, tmath::DType dt,
                           tmath::Device dev) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  std::vector<uint64_t> raw(static_cast<size_t>(n));
  for (auto& x : raw) x = rng();
  return int_in(raw, shape, dt, dev);
}

// The result as uint64 bits (it must be int64 or uint64).
inline std::vector<uint64_t> bits_of(const tmath::Tensor& r) {
  if (r.dtype() == tmath::DType::UInt64) return r.to_vector<uint64_t>();
  std::vector<uint64_t> out;
  for (int64_t x : r.to_vector<int64_t>()) out.push_back(static_cast<uint64_t>(x));
  return out;
}

inline ::testing::AssertionResult int_result(const tmath::Tensor& r, tmath::DType want_dt,
                                             const std::vector<uint64_t>& want) {
  if (r.dtype() != want_dt)
    return ::testing::AssertionFailure() << "dtype " << tmath::dtype_name(r.dtype())
                                         << ", NumPy 2: " << tmath::dtype_name(want_dt);
  const std::vector<uint64_t> got = bits_of(r);
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << got.size() << " elements, expected " << want.size();
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i]) {
      const bool sgn = want_dt == tmath::DType::Int64;
      auto str = [&](uint64_t x) {
        return sgn ? std::to_string(static_cast<int64_t>(x)) : std::to_string(x);
      };
      return ::testing::AssertionFailure()
             << "[" << i << "] got " << str(got[i]) << " want " << str(want[i]);
    }
  }
  return ::testing::AssertionSuccess();
}

// (rows, cols) row-major: the sum or product over `axis` (0, 1, or -1 for all).
inline std::vector<uint64_t> int_reduce_ref(const IntIn& x, int axis, bool prod) {
  const int64_t rows = x.shape[0], cols = x.shape.size() > 1 ? x.shape[1] : 1;
  auto at = [&](int64_t i, int64_t j) { return x.v[static_cast<size_t>(i * cols + j)]; };
  auto comb = [prod](uint64_t a, uint64_t b) { return prod ? a * b : a + b; };
  const uint64_t id = prod ? 1 : 0;
  std::vector<uint64_t> r;
  if (axis < 0) {
    uint64_t a = id;
    for (uint64_t v : x.v) a = comb(a, v);
    return {a};
  }
  const int64_t outer = axis == 0 ? cols : rows, inner = axis == 0 ? rows : cols;
  for (int64_t o = 0; o < outer; ++o) {
    uint64_t a = id;
    for (int64_t k = 0; k < inner; ++k) a = comb(a, axis == 0 ? at(k, o) : at(o, k));
    r.push_back(a);
  }
  return r;
}

// (rows, cols) row-major: the inclusive scan along `axis`, same layout.
inline std::vector<uint64_t> int_scan_ref(const IntIn& x, int axis, bool prod) {
  const int64_t rows = x.shape[0], cols = x.shape[1];
  std::vector<uint64_t> r(x.v.size());
  const int64_t outer = axis == 0 ? cols : rows, inner = axis == 0 ? rows : cols;
  for (int64_t o = 0; o < outer; ++o) {
    uint64_t a = prod ? 1 : 0;
    for (int64_t k = 0; k < inner; ++k) {
      const size_t idx = static_cast<size_t>(axis == 0 ? k * cols + o : o * cols + k);
      a = prod ? a * x.v[idx] : a + x.v[idx];
      r[idx] = a;
    }
  }
  return r;
}

// Every integer dtype and bool on `dev`: random full-range values (sums past 2^32 and
// 2^64, products overflowing 2^64) over each axis and all axes, long vectors (the
// parallel and split paths), and a few hand-computed wrap-around cases.
inline void check_int_sum_prod(tmath::Device dev) {
  using namespace tmath;
  std::mt19937_64 rng(0x5eed);
  for (DType dt : int_and_bool_dtypes()) {
    SCOPED_TRACE(std::string(dtype_name(dt)) + " on " + dev.str());
    const DType want = numpy_sum_dtype(dt);
    IntIn a = random_int_in(rng, {5, 33}, dt, dev);
    EXPECT_TRUE(int_result(sum(a.t, {0}), want, int_reduce_ref(a, 0, false))) << "sum axis 0";
    EXPECT_TRUE(int_result(sum(a.t, {1}), want, int_reduce_ref(a, 1, false))) << "sum axis 1";
    EXPECT_TRUE(int_result(sum(a.t), want, int_reduce_ref(a, -1, false))) << "sum";
    IntIn l = random_int_in(rng, {70001}, dt, dev);
    EXPECT_TRUE(int_result(sum(l.t), want, int_reduce_ref(l, -1, false))) << "long sum";
    IntIn p = random_int_in(rng, {4, 9}, dt, dev);
    EXPECT_TRUE(int_result(prod(p.t, {0}), want, int_reduce_ref(p, 0, true))) << "prod axis 0";
    EXPECT_TRUE(int_result(prod(p.t, {1}), want, int_reduce_ref(p, 1, true))) << "prod axis 1";
    EXPECT_TRUE(int_result(prod(p.t), want, int_reduce_ref(p, -1, true))) << "prod";
    IntIn s = random_int_in(rng, {3, 40}, dt, dev);
    for (int ax : {0, 1}) {
      const std::string at = " axis " + std::to_string(ax);
      EXPECT_TRUE(int_result(cumsum(s.t, ax), want, int_scan_ref(s, ax, false))) << "cumsum" << at;
      EXPECT_TRUE(int_result(cumprod(s.t, ax), want, int_scan_ref(s, ax, true))) << "cumprod" << at;
    }
    IntIn ls = random_int_in(rng, {2, 3000}, dt, dev);
    EXPECT_TRUE(int_result(cumsum(ls.t, 1), want, int_scan_ref(ls, 1, false))) << "long cumsum";
  }
  SCOPED_TRACE("wrap-around on " + dev.str());
  const uint64_t u32max = 0xffffffffu;
  // uint32 sums past 2^32 (not wrapped at 32 bits).
  IntIn u32 = int_in(std::vector<uint64_t>(5, u32max), {5}, uint32, dev);
  EXPECT_TRUE(int_result(sum(u32.t), uint64, {21474836475u}));
  // uint32 product past 2^64: (2^32 - 1)^2 * 3 mod 2^64.
  IntIn u32p = int_in({u32max, u32max, 3}, {3}, uint32, dev);
  EXPECT_TRUE(int_result(prod(u32p.t), uint64, {18446744047939747843u}));
  // uint64 sum past 2^64: 2^63 + (2^63 + 5) + 7 = 12 mod 2^64.
  IntIn u64 = int_in({uint64_t{1} << 63, (uint64_t{1} << 63) + 5, 7}, {3}, uint64, dev);
  EXPECT_TRUE(int_result(sum(u64.t), uint64, {12}));
  // uint16 scan past 2^16, uint8 products of 255 past 2^64 (255^9, 255^10 wrap).
  IntIn u16 = int_in({65535, 65535, 2}, {3}, uint16, dev);
  EXPECT_TRUE(int_result(cumsum(u16.t, 0), uint64, {65535, 131070, 131072}));
  IntIn u8 = int_in(std::vector<uint64_t>(10, 255), {10}, uint8, dev);
  EXPECT_TRUE(int_result(
      cumprod(u8.t, 0), uint64,
      {255u, 65025u, 16581375u, 4228250625u, 1078203909375u, 274941996890625u, 70110209207109375u,
       17878103347812890625u, 2570567486027860223u, 9858666357270050305u}));
  // int64 wraps to negative: (2^63 - 1) + 1 = -2^63.
  IntIn i64 = int_in({(uint64_t{1} << 63) - 1, 1}, {2}, int64, dev);
  EXPECT_TRUE(int_result(sum(i64.t), int64, {uint64_t{1} << 63}));
}

}  // namespace tt
