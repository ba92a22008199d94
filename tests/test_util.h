// Shared helpers for the C++ tests: building tensors from host values, reading
// them back as float64/complex128, per-dtype tolerances and seeded random inputs.
//
// Everything here is independent of the engine's own conversions: half and
// bfloat16 are encoded/decoded with the reference functions below, and values
// are read back through copy() + data_ptr() as raw bytes, so a test compares
// the engine against arithmetic done in this file and in the test itself.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tmath/autodiff.h"
#include "tmath/backend.h"
#include "tmath/device.h"
#include "tmath/dtype.h"
#include "tmath/error.h"
#include "tmath/memory.h"
#include "tmath/ops.h"
#include "tmath/precision.h"
#include "tmath/random.h"
#include "tmath/tensor.h"
#include "tmath/transforms.h"

namespace tt {

using tmath::DType;
using tmath::Shape;
using tmath::Tensor;
using cplx = std::complex<double>;

// ---- reference float16 / bfloat16 conversions (round to nearest even) -------

inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float ref_half_to_float(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1u, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  double v;
  if (exp == 0) {
    v = std::ldexp(static_cast<double>(man), -24);
  } else if (exp == 31) {
    v = man ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  } else {
    v = std::ldexp(static_cast<double>(man | 0x400u), static_cast<int>(exp) - 25);
  }
  return static_cast<float>(sign ? -v : v);
}

// Exact round-to-nearest-even of a double to binary16 (works on the value, not bits).
inline uint16_t ref_double_to_half(double x) {
  const uint16_t sign = std::signbit(x) ? 0x8000u : 0u;
  if (std::isnan(x)) return 0x7e00u;
  double a = std::fabs(x);
  if (std::isinf(a)) return sign | 0x7c00u;
  // Largest finite half is 65504; halfway to the next (65536) rounds to even = inf.
  if (a >= 65520.0) return sign | 0x7c00u;
  int e;
  std::frexp(a, &e);         // a = m * 2^e, m in [0.5, 1)
  int exp_unbiased = e - 1;  // a in [2^exp, 2^(exp+1))
  if (a == 0.0) return sign;
  int q_exp = std::max(exp_unbiased, -14);
  // quantum = 2^(q_exp - 10)
  double scaled = std::ldexp(a, 10 - q_exp);  // in [0, 2048)
  double r = std::nearbyint(scaled);          // default rounding mode: nearest even
  uint32_t m = static_cast<uint32_t>(r);
  if (m == 0) return sign;
  if (q_exp == -14 && m < 0x400u) return sign | static_cast<uint16_t>(m);  // subnormal
  if (m >= 0x800u) {  // rounding carried into the next binade
    m >>= 1;
    q_exp += 1;
  }
  if (q_exp > 15) return sign | 0x7c00u;
  return sign | static_cast<uint16_t>(((q_exp + 15) << 10) | (m & 0x3ffu));
}
inline uint16_t ref_float_to_half(float f) {
  return ref_double_to_half(static_cast<double>(f));
}

inline float ref_bf16_to_float(uint16_t b) {
  return bits_f32(static_cast<uint32_t>(b) << 16);
}
inline uint16_t ref_float_to_bf16(float f) {
  if (std::isnan(f)) return static_cast<uint16_t>((f32_bits(f) >> 16) | 0x40u);
  uint32_t u = f32_bits(f);
  uint32_t upper = u >> 16, lower = u & 0xffffu;
  if (lower > 0x8000u || (lower == 0x8000u && (upper & 1u))) upper += 1;
  return static_cast<uint16_t>(upper);
}
// Double -> bf16 via float (double rounding is harmless for the values tests use).
inline uint16_t ref_double_to_bf16(double x) {
  return ref_float_to_bf16(static_cast<float>(x));
}

// ---- dtype helpers -------------------------------------------------------------

inline const std::vector<DType>& all_dtypes() {
  static const std::vector<DType> v = {
      DType::Bool,    DType::Int8,     DType::Int16,    DType::Int32,     DType::Int64,
      DType::UInt8,   DType::UInt16,   DType::UInt32,   DType::UInt64,    DType::Float16,
      DType::BFloat16, DType::Float32, DType::Float64,  DType::Complex64, DType::Complex128};
  return v;
}
inline const char* name_of(DType dt) {
  switch (dt) {
    case DType::Bool:
      return "bool";
    case DType::Int8:
      return "int8";
    case DType::Int16:
      return "int16";
    case DType::Int32:
      return "int32";
    case DType::Int64:
      return "int64";
    case DType::UInt8:
      return "uint8";
    case DType::UInt16:
      return "uint16";
    case DType::UInt32:
      return "uint32";
    case DType::UInt64:
      return "uint64";
    case DType::Float16:
      return "float16";
    case DType::BFloat16:
      return "bfloat16";
    case DType::Float32:
      return "float32";
    case DType::Float64:
      return "float64";
    case DType::Complex64:
      return "complex64";
    case DType::Complex128:
      return "complex128";
  }
  return "?";
}
inline size_t size_of(DType dt) {
  switch (dt) {
    case DType::Bool:
    case DType::Int8:
    case DType::UInt8:
      return 1;
    case DType::Int16:
    case DType::UInt16:
    case DType::Float16:
    case DType::BFloat16:
      return 2;
    case DType::Int32:
    case DType::UInt32:
    case DType::Float32:
      return 4;
    case DType::Int64:
    case DType::UInt64:
    case DType::Float64:
    case DType::Complex64:
      return 8;
    case DType::Complex128:
      return 16;
  }
  return 0;
}
inline bool is_int(DType dt) {
  return dt == DType::Int8 || dt == DType::Int16 || dt == DType::Int32 || dt == DType::Int64 ||
         dt == DType::UInt8 || dt == DType::UInt16 || dt == DType::UInt32 || dt == DType::UInt64;
}
inline bool is_uint(DType dt) {
  return dt == DType::UInt8 || dt == DType::UInt16 || dt == DType::UInt32 || dt == DType::UInt64;
}
inline bool is_float(DType dt) {
  return dt == DType::Float16 || dt == DType::BFloat16 || dt == DType::Float32 ||
         dt == DType::Float64;
}
inline bool is_cplx(DType dt) {
  return dt == DType::Complex64 || dt == DType::Complex128;
}
inline bool is_low(DType dt) {
  return dt == DType::Float16 || dt == DType::BFloat16;
}

// Wraps an integer to the two's complement range of an integer dtype.
inline int64_t wrap_int(int64_t v, DType dt) {
  switch (dt) {
    case DType::Int8:
      return static_cast<int8_t>(static_cast<uint64_t>(v));
    case DType::Int16:
      return static_cast<int16_t>(static_cast<uint64_t>(v));
    case DType::Int32:
      return static_cast<int32_t>(static_cast<uint64_t>(v));
    case DType::UInt8:
      return static_cast<uint8_t>(static_cast<uint64_t>(v));
    case DType::UInt16:
      return static_cast<uint16_t>(static_cast<uint64_t>(v));
    case DType::UInt32:
      return static_cast<uint32_t>(static_cast<uint64_t>(v));
    default:  // int64; uint64 keeps its bits (as_uint64 reads them back)
      return v;
  }
}

// double -> float -> double. Kept out of line: GCC 12's SLP vectorizer at -O3 drops the
// float rounding when both halves of a complex value are rounded together.
[[gnu::noinline]] inline double to_f32(double x) {
  volatile float f = static_cast<float>(x);
  return static_cast<double>(f);
}

// The value a double takes when stored in `dt` (round to nearest even for
// floats, truncation toward zero for integers, nonzero test for bool).
inline double round_to(double x, DType dt) {
  switch (dt) {
    case DType::Bool:
      return x != 0.0 ? 1.0 : 0.0;
    case DType::Int8:
    case DType::Int16:
    case DType::Int32:
    case DType::Int64:
    case DType::UInt8:
    case DType::UInt16:
    case DType::UInt32:
      return static_cast<double>(wrap_int(static_cast<int64_t>(x), dt));
    case DType::UInt64:  // negative values wrap (as NumPy's uint64 arithmetic)
      return x >= 9223372036854775808.0
                 ? std::trunc(x)
                 : static_cast<double>(static_cast<uint64_t>(static_cast<int64_t>(x)));
    case DType::Float16:
      return ref_half_to_float(ref_double_to_half(x));
    case DType::BFloat16:
      return ref_bf16_to_float(ref_double_to_bf16(x));
    case DType::Float32:
    case DType::Complex64:
      return to_f32(x);
    default:
      return x;
  }
}
inline cplx round_to(cplx x, DType dt) {
  if (is_cplx(dt)) return {round_to(x.real(), dt), round_to(x.imag(), dt)};
  return {round_to(x.real(), dt), 0.0};
}

// ---- building tensors and reading them back ------------------------------------

// Encodes one value into `dst` (itemsize bytes) as dtype dt.
inline void encode(cplx v, DType dt, void* dst) {
  const double x = v.real();
  switch (dt) {
    case DType::Bool: {
      uint8_t b = (x != 0.0 || v.imag() != 0.0) ? 1 : 0;
      std::memcpy(dst, &b, 1);
      break;
    }
    case DType::Int8: {
      int8_t i = static_cast<int8_t>(x);
      std::memcpy(dst, &i, 1);
      break;
    }
    case DType::Int16: {
      int16_t i = static_cast<int16_t>(x);
      std::memcpy(dst, &i, 2);
      break;
    }
    case DType::Int32: {
      int32_t i = static_cast<int32_t>(x);
      std::memcpy(dst, &i, 4);
      break;
    }
    case DType::Int64: {
      int64_t i = static_cast<int64_t>(x);
      std::memcpy(dst, &i, 8);
      break;
    }
    case DType::UInt8: {
      uint8_t i = static_cast<uint8_t>(static_cast<int64_t>(x));
      std::memcpy(dst, &i, 1);
      break;
    }
    case DType::UInt16: {
      uint16_t i = static_cast<uint16_t>(static_cast<int64_t>(x));
      std::memcpy(dst, &i, 2);
      break;
    }
    case DType::UInt32: {
      uint32_t i = static_cast<uint32_t>(static_cast<int64_t>(x));
      std::memcpy(dst, &i, 4);
      break;
    }
    case DType::UInt64: {
      uint64_t i = x >= 9223372036854775808.0 ? static_cast<uint64_t>(x)
                                                : static_cast<uint64_t>(static_cast<int64_t>(x));
      std::memcpy(dst, &i, 8);
      break;
    }
    case DType::Float16: {
      uint16_t h = ref_double_to_half(x);
      std::memcpy(dst, &h, 2);
      break;
    }
    case DType::BFloat16: {
      uint16_t h = ref_double_to_bf16(x);
      std::memcpy(dst, &h, 2);
      break;
    }
    case DType::Float32: {
      float f = static_cast<float>(x);
      std::memcpy(dst, &f, 4);
      break;
    }
    case DType::Float64:
      std::memcpy(dst, &x, 8);
      break;
    case DType::Complex64: {
      std::complex<float> c(static_cast<float>(v.real()), static_cast<float>(v.imag()));
      std::memcpy(dst, &c, 8);
      break;
    }
    case DType::Complex128:
      std::memcpy(dst, &v, 16);
      break;
  }
}

inline cplx decode(const void* src, DType dt) {
  switch (dt) {
    case DType::Bool: {
      uint8_t b;
      std::memcpy(&b, src, 1);
      return b;  // raw byte: a poisoned/garbage bool shows up as a value other than 0/1
    }
    case DType::Int8: {
      int8_t i;
      std::memcpy(&i, src, 1);
      return static_cast<double>(i);
    }
    case DType::Int16: {
      int16_t i;
      std::memcpy(&i, src, 2);
      return static_cast<double>(i);
    }
    case DType::Int32: {
      int32_t i;
      std::memcpy(&i, src, 4);
      return static_cast<double>(i);
    }
    case DType::Int64: {
      int64_t i;
      std::memcpy(&i, src, 8);
      return static_cast<double>(i);
    }
    case DType::UInt8: {
      uint8_t i;
      std::memcpy(&i, src, 1);
      return static_cast<double>(i);
    }
    case DType::UInt16: {
      uint16_t i;
      std::memcpy(&i, src, 2);
      return static_cast<double>(i);
    }
    case DType::UInt32: {
      uint32_t i;
      std::memcpy(&i, src, 4);
      return static_cast<double>(i);
    }
    case DType::UInt64: {
      uint64_t i;
      std::memcpy(&i, src, 8);
      return static_cast<double>(i);
    }
    case DType::Float16: {
      uint16_t h;
      std::memcpy(&h, src, 2);
      return static_cast<double>(ref_half_to_float(h));
    }
    case DType::BFloat16: {
      uint16_t h;
      std::memcpy(&h, src, 2);
      return static_cast<double>(ref_bf16_to_float(h));
    }
    case DType::Float32: {
      float f;
      std::memcpy(&f, src, 4);
      return static_cast<double>(f);
    }
    case DType::Float64: {
      double d;
      std::memcpy(&d, src, 8);
      return d;
    }
    case DType::Complex64: {
      std::complex<float> c;
      std::memcpy(&c, src, 8);
      return {c.real(), c.imag()};
    }
    case DType::Complex128: {
      cplx c;
      std::memcpy(&c, src, 16);
      return c;
    }
  }
  return 0.0;
}

inline int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

// Tensor of dtype `dt` holding `vals` (converted with the reference rules above).
inline Tensor make_c(const std::vector<cplx>& vals, const Shape& shape, DType dt) {
  EXPECT_EQ(numel(shape), static_cast<int64_t>(vals.size())) << "make_c: shape/values mismatch";
  std::vector<unsigned char> bytes(std::max<size_t>(1, vals.size() * size_of(dt)));
  for (size_t i = 0; i < vals.size(); ++i) encode(vals[i], dt, bytes.data() + i * size_of(dt));
  return tmath::from_data(bytes.data(), shape, dt);
}
inline Tensor make(const std::vector<double>& vals, const Shape& shape, DType dt) {
  return make_c(std::vector<cplx>(vals.begin(), vals.end()), shape, dt);
}
inline Tensor make(const std::vector<double>& vals, DType dt = DType::Float32) {
  return make(vals, {static_cast<int64_t>(vals.size())}, dt);
}

// All elements (row-major) as complex128, read through a contiguous host copy.
inline std::vector<cplx> read_c(const Tensor& t) {
  Tensor c = tmath::copy(t.device() == tmath::kCPU ? t : t.to(tmath::kCPU));
  c.eval();
  std::vector<cplx> out(static_cast<size_t>(c.size()));
  if (c.size() == 0) return out;
  const auto* p = static_cast<const unsigned char*>(c.data_ptr());
  const size_t is = size_of(c.dtype());
  for (size_t i = 0; i < out.size(); ++i) out[i] = decode(p + i * is, c.dtype());
  return out;
}
// Real parts as float64.
inline std::vector<double> read(const Tensor& t) {
  auto c = read_c(t);
  std::vector<double> out(c.size());
  for (size_t i = 0; i < c.size(); ++i) out[i] = c[i].real();
  return out;
}
inline double read1(const Tensor& t) {
  auto v = read(t);
  EXPECT_EQ(v.size(), 1u);
  return v.empty() ? std::nan("") : v[0];
}

// ---- tolerances --------------------------------------------------------------

struct Tol {
  double rtol = 0.0;
  double atol = 0.0;
};
// Per-dtype tolerances (DESIGN §7): exact for bool/integers.
inline Tol tol_for(DType dt) {
  switch (dt) {
    case DType::Float16:
      return {1e-2, 1e-3};
    case DType::BFloat16:
      return {1e-2, 1e-2};
    case DType::Float32:
    case DType::Complex64:
      return {1e-5, 1e-6};
    case DType::Float64:
    case DType::Complex128:
      return {1e-12, 1e-13};
    default:
      return {0.0, 0.0};
  }
}
inline Tol loosest(Tol a, Tol b) {
  return {std::max(a.rtol, b.rtol), std::max(a.atol, b.atol)};
}

inline bool close1(double a, double e, double rtol, double atol, double scale) {
  if (std::isnan(e)) return std::isnan(a);
  if (std::isinf(e)) return a == e;
  if (!std::isfinite(a)) return false;
  return std::fabs(a - e) <= atol + rtol * std::max(std::fabs(e), scale);
}

inline std::string fmt(cplx v) {
  std::ostringstream os;
  os.precision(17);
  if (v.imag() == 0.0)
    os << v.real();
  else
    os << "(" << v.real() << (v.imag() < 0 ? "" : "+") << v.imag() << "j)";
  return os.str();
}

// Compares every element of `actual` with `expected`; `scale` (optional, per element)
// is the magnitude rounding errors are relative to (e.g. sum of |terms| for a sum).
inline ::testing::AssertionResult all_close_c(const Tensor& actual,
                                              const std::vector<cplx>& expected, Tol tol,
                                              const std::vector<double>& scale = {}) {
  std::vector<cplx> got;
  try {
    got = read_c(actual);
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "reading the result threw: " << e.what();
  }
  if (got.size() != expected.size())
    return ::testing::AssertionFailure()
           << "size " << got.size() << " != expected " << expected.size();
  size_t bad = 0;
  std::ostringstream os;
  for (size_t i = 0; i < got.size(); ++i) {
    double s = scale.empty() ? 0.0 : scale[i];
    bool ok = close1(got[i].real(), expected[i].real(), tol.rtol, tol.atol, s) &&
              close1(got[i].imag(), expected[i].imag(), tol.rtol, tol.atol, s);
    if (!ok) {
      if (bad < 6)
        os << "\n  [" << i << "] got " << fmt(got[i]) << " expected " << fmt(expected[i]);
      ++bad;
    }
  }
  if (bad)
    return ::testing::AssertionFailure()
           << bad << " of " << got.size() << " elements differ (rtol " << tol.rtol << ", atol "
           << tol.atol << ", dtype " << name_of(actual.dtype()) << "):" << os.str();
  return ::testing::AssertionSuccess();
}
inline ::testing::AssertionResult all_close(const Tensor& actual,
                                            const std::vector<double>& expected, Tol tol,
                                            const std::vector<double>& scale = {}) {
  return all_close_c(actual, std::vector<cplx>(expected.begin(), expected.end()), tol, scale);
}
// Tolerance of the result's dtype.
inline ::testing::AssertionResult all_close(const Tensor& actual,
                                            const std::vector<double>& expected) {
  return all_close(actual, expected, tol_for(actual.dtype()));
}
inline ::testing::AssertionResult all_equal(const Tensor& actual,
                                            const std::vector<double>& expected) {
  return all_close(actual, expected, Tol{0.0, 0.0});
}

// ---- random inputs -----------------------------------------------------------

// n values drawn uniformly from [lo, hi] and rounded to dt (so the returned doubles
// are exactly what the tensor holds). Integers: uniform integers in [lo, hi].
// nonzero: zero is never produced; min_abs: floats closer to 0 than this are redrawn.
inline std::vector<double> random_values(std::mt19937& rng, size_t n, double lo, double hi,
                                         DType dt, bool nonzero = true, double min_abs = 0.0) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) {
    double x = 0.0;
    for (int tries = 0; tries < 1000; ++tries) {
      if (dt == DType::Bool) {
        x = nonzero ? 1.0 : static_cast<double>(rng() & 1u);
      } else if (is_int(dt)) {
        std::uniform_int_distribution<int64_t> d(static_cast<int64_t>(std::ceil(lo)),
                                                 static_cast<int64_t>(std::floor(hi)));
        x = static_cast<double>(d(rng));
      } else {
        std::uniform_real_distribution<double> d(lo, hi);
        x = round_to(d(rng), dt);
      }
      if (nonzero && x == 0.0) continue;
      if (std::fabs(x) < min_abs && dt != DType::Bool && !is_int(dt)) continue;
      break;
    }
    v[i] = x;
  }
  return v;
}

struct RandT {
  Tensor t;
  std::vector<double> v;  // exact values held by t
};
inline RandT rand_tensor(std::mt19937& rng, const Shape& shape, DType dt, double lo = -1.0,
                         double hi = 1.0, bool nonzero = true, double min_abs = 0.0) {
  auto v = random_values(rng, static_cast<size_t>(numel(shape)), lo, hi, dt, nonzero, min_abs);
  return {make(v, shape, dt), v};
}

// ---- index helpers for reference loops ------------------------------------------

inline std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int i = static_cast<int>(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}
inline std::vector<int64_t> unravel(int64_t flat, const Shape& s) {
  std::vector<int64_t> idx(s.size());
  for (int i = static_cast<int>(s.size()) - 1; i >= 0; --i) {
    idx[i] = s[i] ? flat % s[i] : 0;
    flat = s[i] ? flat / s[i] : 0;
  }
  return idx;
}
inline int64_t ravel(const std::vector<int64_t>& idx, const Shape& s) {
  int64_t f = 0;
  for (size_t i = 0; i < s.size(); ++i) f = f * s[i] + idx[i];
  return f;
}
// Flat index into a (right-aligned, broadcast) input of shape `in` for an output index.
inline int64_t bcast_index(const std::vector<int64_t>& out_idx, const Shape& in) {
  const size_t off = out_idx.size() - in.size();
  int64_t f = 0;
  for (size_t i = 0; i < in.size(); ++i) f = f * in[i] + (in[i] == 1 ? 0 : out_idx[off + i]);
  return f;
}

inline std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? "," : "") << s[i];
  os << ")";
  return os.str();
}

// True when `msg` starts with "[" + op + "]".
inline ::testing::AssertionResult starts_with_op(const std::string& msg, const std::string& op) {
  const std::string want = "[" + op + "]";
  if (msg.rfind(want, 0) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "message \"" << msg << "\" does not start with " << want;
}
inline ::testing::AssertionResult starts_with_bracket(const std::string& msg) {
  if (msg.size() > 2 && msg[0] == '[' && msg.find(']') != std::string::npos)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "message \"" << msg << "\" does not start with [op]";
}

// value_and_grad(f, argnums) as one function returning {value, gradients...}: the
// list form compile() takes.
inline tmath::Function value_and_grad_list(tmath::ScalarFunction f, std::vector<int> argnums) {
  auto vg = tmath::value_and_grad(std::move(f), std::move(argnums));
  return [vg](const tmath::TensorList& a) {
    auto [v, g] = vg(a);
    tmath::TensorList out{v};
    out.insert(out.end(), g.begin(), g.end());
    return out;
  };
}

}  // namespace tt

// Expects `stmt` to throw `Exc` whose message starts with "[op]" (op may be "" to
// only require a bracketed prefix).
#define TT_EXPECT_THROW_OP(stmt, Exc, op)                                     \
  do {                                                                        \
    bool tt_caught_ = false;                                                  \
    try {                                                                     \
      stmt;                                                                   \
    } catch (const Exc& e) {                                                  \
      tt_caught_ = true;                                                      \
      if (std::string(op).empty())                                            \
        EXPECT_TRUE(::tt::starts_with_bracket(e.what()));                     \
      else                                                                    \
        EXPECT_TRUE(::tt::starts_with_op(e.what(), op));                      \
    } catch (const std::exception& e) {                                       \
      ADD_FAILURE() << #stmt " threw the wrong exception type: " << e.what(); \
      tt_caught_ = true;                                                      \
    }                                                                         \
    if (!tt_caught_) ADD_FAILURE() << #stmt " did not throw " #Exc;           \
  } while (0)
