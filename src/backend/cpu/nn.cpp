// Softmax / LogSoftmax over the last axis and LayerNorm over trailing rows.
// float32 rows run on GCC vector extensions, compiled for SSE2 (the baseline),
// AVX2 and AVX-512 and picked at run time; float16/bfloat16 rows are widened to
// float32 and rounded back; float64 uses scalar double code. Row sums
// accumulate in float lanes over short chunks and in double across chunks.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/thread_pool.h"
#include "tmath/error.h"

namespace tmath::cpu {
namespace {

// Float sums fold 16 logical lanes (element i of a row goes to lane i % 16) in
// a fixed order, so every SIMD width below gives bit-identical results.
constexpr int64_t kPack = 16;
// Elements per float partial sum before it is folded into a double.
constexpr int64_t kChunk = 256;

#define TMATH_INLINE __attribute__((always_inline)) inline

template <int kW>
struct Simd {
  typedef float F __attribute__((vector_size(kW * 4)));
  typedef int32_t I __attribute__((vector_size(kW * 4)));
};

// Vector helpers take references: wide vectors passed by value would change
// the ABI between the baseline and the AVX entry points.
template <class V>
TMATH_INLINE void vload(V& v, const float* p) {
  std::memcpy(&v, p, sizeof v);
}
template <class V>
TMATH_INLINE void vstore(float* p, const V& v) {
  std::memcpy(p, &v, sizeof v);
}
template <class V>
TMATH_INLINE void vsplat(V& v, float a) {
  v = a - V{};  // exact broadcast, -0.0 included
}

// x = exp(x) per lane (Cephes expf: Cody-Waite reduction by ln2, degree-5
// polynomial; ~1 ulp). Inputs below -87.34 give 0; callers pass x <= 0.
template <class V, class I>
TMATH_INLINE void vexp(V& x) {
  V lo;
  vsplat(lo, -87.3365478515625f);
  const auto underflow = x < lo;
  x = underflow ? lo : x;
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const V n = (x * 1.44269504088896341f + magic) - magic;
  V r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  V p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const V y = p * (r * r) + r + 1.0f;
  const I e = (__builtin_convertvector(n, I) + 127) << 23;
  V scale;
  std::memcpy(&scale, &e, sizeof scale);
  const V zero{};
  x = underflow ? zero : y * scale;
}

TMATH_INLINE float fold16(float* lanes) {
  for (int w = 8; w >= 1; w /= 2) {
    for (int k = 0; k < w; ++k) lanes[k] = lanes[k] + lanes[k + w];
  }
  return lanes[0];
}

template <int kW>
struct Rows {
  using V = typename Simd<kW>::F;
  using I = typename Simd<kW>::I;
  static constexpr int kN = static_cast<int>(kPack / kW);

  static TMATH_INLINE float max(const float* x, int64_t d) {
    float m = -std::numeric_limits<float>::infinity();
    int64_t i = 0;
    if (d >= kW) {
      V acc;
      vsplat(acc, m);
      I nan{};
      for (; i + kW <= d; i += kW) {
        V v;
        vload(v, x + i);
        acc = v > acc ? v : acc;
        nan |= v != v;
      }
      for (int k = 0; k < kW; ++k) {
        if (nan[k]) return std::numeric_limits<float>::quiet_NaN();
        m = acc[k] > m ? acc[k] : m;
      }
    }
    for (; i < d; ++i) m = (m == m && (x[i] != x[i] || x[i] > m)) ? x[i] : m;
    return m;
  }

  // Sum over one chunk of f(pack) for 16-element packs starting at x (n <= kChunk);
  // the last partial pack is padded with `pad`. f maps a loaded vector in place
  // and may store it (offset given).
  template <class F>
  static TMATH_INLINE float chunk_sum(const float* x, int64_t n, float pad, const F& f) {
    V acc[kN];
    for (auto& a : acc) a = V{};
    int64_t i = 0;
    for (; i + kPack <= n; i += kPack) {
      for (int j = 0; j < kN; ++j) {
        V v;
        vload(v, x + i + j * kW);
        f(v, i + j * kW, int64_t{kW});
        acc[j] += v;
      }
    }
    if (i < n) {
      alignas(64) float buf[kPack];
      for (int64_t k = 0; k < kPack; ++k) buf[k] = i + k < n ? x[i + k] : pad;
      for (int j = 0; j < kN; ++j) {
        V v;
        vload(v, buf + j * kW);
        f(v, i + j * kW, std::min<int64_t>(kW, std::max<int64_t>(0, n - i - j * kW)));
        acc[j] += v;
      }
    }
    alignas(64) float lanes[kPack];
    std::memcpy(lanes, acc, sizeof lanes);
    return fold16(lanes);
  }

  // Writes exp(x - m) to y (if non-null) and returns its sum.
  static TMATH_INLINE double exp_sum(const float* x, int64_t d, float m, float* y) {
    double total = 0.0;
    for (int64_t c = 0; c < d; c += kChunk) {
      const int64_t n = std::min(kChunk, d - c);
      float* yc = y ? y + c : nullptr;
      total += static_cast<double>(chunk_sum(
          x + c, n, -std::numeric_limits<float>::infinity(),
          [&](V & v, int64_t off, int64_t valid) __attribute__((always_inline)) {
            v = v - m;
            vexp<V, I>(v);
            if (yc) {
              if (valid == kW) {
                vstore(yc + off, v);
              } else {
                for (int64_t k = 0; k < valid; ++k) yc[off + k] = v[k];
              }
            }
          }));
    }
    return total;
  }

  static TMATH_INLINE void softmax(bool log, const float* x, float* y, int64_t d) {
    const float m = max(x, d);
    const double total = exp_sum(x, d, m, log ? nullptr : y);
    int64_t i = 0;
    if (!log) {
      const float inv = static_cast<float>(1.0 / total);
      for (; i + kW <= d; i += kW) {
        V v;
        vload(v, y + i);
        v = v * inv;
        vstore(y + i, v);
      }
      for (; i < d; ++i) y[i] = y[i] * inv;
      return;
    }
    const float lse = static_cast<float>(std::log(total));
    for (; i + kW <= d; i += kW) {
      V v;
      vload(v, x + i);
      v = (v - m) - lse;
      vstore(y + i, v);
    }
    for (; i < d; ++i) y[i] = (x[i] - m) - lse;
  }

  static TMATH_INLINE void layer_norm(const float* x, const float* w, const float* b, double eps,
                                      float* y, int64_t d) {
    double total = 0.0;
    for (int64_t c = 0; c < d; c += kChunk) {
      const int64_t n = std::min(kChunk, d - c);
      total += static_cast<double>(
          chunk_sum(x + c, n, 0.0f, [](V&, int64_t, int64_t) __attribute__((always_inline)){}));
    }
    const float mean = static_cast<float>(total / static_cast<double>(d));
    double sq = 0.0;
    for (int64_t c = 0; c < d; c += kChunk) {
      const int64_t n = std::min(kChunk, d - c);
      sq += static_cast<double>(chunk_sum(
          x + c, n, mean, [&](V & v, int64_t, int64_t) __attribute__((always_inline)) {
            v = v - mean;
            v = v * v;
          }));
    }
    const double var = sq / static_cast<double>(d);
    const float rstd = static_cast<float>(1.0 / std::sqrt(var + eps));
    int64_t i = 0;
    for (; i + kW <= d; i += kW) {
      V v;
      vload(v, x + i);
      v = (v - mean) * rstd;
      if (w) {
        V t;
        vload(t, w + i);
        v = v * t;
      }
      if (b) {
        V t;
        vload(t, b + i);
        v = v + t;
      }
      vstore(y + i, v);
    }
    for (; i < d; ++i) {
      float v = (x[i] - mean) * rstd;
      if (w) v = v * w[i];
      if (b) v = v + b[i];
      y[i] = v;
    }
  }
};

// Entry points per SIMD width over rows [r0, r1) of length d.
struct F32Rows {
  void (*softmax)(bool log, const float* x, float* y, int64_t d, int64_t r0, int64_t r1);
  void (*layer_norm)(const float* x, const float* w, const float* b, double eps, float* y,
                     int64_t d, int64_t r0, int64_t r1);
};

#define TMATH_ROW_ENTRY_POINTS(W, TARGET)                                                      \
  TARGET void softmax_rows_w##W(bool log, const float* x, float* y, int64_t d, int64_t r0,     \
                                int64_t r1) {                                                  \
    for (int64_t r = r0; r < r1; ++r) Rows<W>::softmax(log, x + r * d, y + r * d, d);          \
  }                                                                                            \
  TARGET void layer_norm_rows_w##W(const float* x, const float* w, const float* b, double eps, \
                                   float* y, int64_t d, int64_t r0, int64_t r1) {              \
    for (int64_t r = r0; r < r1; ++r) Rows<W>::layer_norm(x + r * d, w, b, eps, y + r * d, d); \
  }

TMATH_ROW_ENTRY_POINTS(4, )
#if defined(__x86_64__) && defined(__GNUC__)
TMATH_ROW_ENTRY_POINTS(8, __attribute__((target("avx2"))))
TMATH_ROW_ENTRY_POINTS(16, __attribute__((target("avx512f"))))
#endif

const F32Rows& f32_rows() {
  static const F32Rows rows = [] {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return F32Rows{softmax_rows_w16, layer_norm_rows_w16};
    if (__builtin_cpu_supports("avx2")) return F32Rows{softmax_rows_w8, layer_norm_rows_w8};
#endif
    return F32Rows{softmax_rows_w4, layer_norm_rows_w4};
  }();
  return rows;
}

void softmax_row_f64(bool log, const double* x, double* y, int64_t d) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < d; ++i) m = (x[i] >= m || std::isnan(x[i])) && !std::isnan(m) ? x[i] : m;
  double s0 = 0, s1 = 0;
  int64_t i = 0;
  for (; i + 2 <= d; i += 2) {
    const double e0 = std::exp(x[i] - m), e1 = std::exp(x[i + 1] - m);
    if (!log) y[i] = e0, y[i + 1] = e1;
    s0 += e0;
    s1 += e1;
  }
  for (; i < d; ++i) {
    const double e = std::exp(x[i] - m);
    if (!log) y[i] = e;
    s0 += e;
  }
  const double total = s0 + s1;
  if (log) {
    const double lse = std::log(total);
    for (int64_t k = 0; k < d; ++k) y[k] = (x[k] - m) - lse;
  } else {
    const double inv = 1.0 / total;
    for (int64_t k = 0; k < d; ++k) y[k] *= inv;
  }
}

void layer_norm_row_f64(const double* x, const double* w, const double* b, double eps, double* y,
                        int64_t d) {
  double s0 = 0, s1 = 0;
  int64_t i = 0;
  for (; i + 2 <= d; i += 2) s0 += x[i], s1 += x[i + 1];
  if (i < d) s0 += x[i];
  const double mean = (s0 + s1) / static_cast<double>(d);
  double q0 = 0, q1 = 0;
  for (i = 0; i + 2 <= d; i += 2) {
    const double a = x[i] - mean, c = x[i + 1] - mean;
    q0 += a * a;
    q1 += c * c;
  }
  if (i < d) q0 += (x[i] - mean) * (x[i] - mean);
  const double rstd = 1.0 / std::sqrt((q0 + q1) / static_cast<double>(d) + eps);
  for (i = 0; i < d; ++i) {
    double v = (x[i] - mean) * rstd;
    if (w) v = v * w[i];
    if (b) v = v + b[i];
    y[i] = v;
  }
}

// ---- float16/bfloat16 (and mixed) rows go through float32 buffers ------------

bool is_float_dtype(DType dt) {
  return dt == DType::Float16 || dt == DType::BFloat16 || dt == DType::Float32 ||
         dt == DType::Float64;
}

void to_float(DType dt, const void* src, int64_t n, float* dst) {
  switch (dt) {
    case DType::Float16: {
      const auto* s = static_cast<const Half*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
      return;
    }
    case DType::BFloat16: {
      const auto* s = static_cast<const BFloat16*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
      return;
    }
    case DType::Float32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::Float64: {
      const auto* s = static_cast<const double*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
      return;
    }
    default:
      throw DTypeError("[nn] unexpected dtype " + std::string(dtype_name(dt)));
  }
}

void from_float(const float* src, int64_t n, DType dt, void* dst) {
  switch (dt) {
    case DType::Float16: {
      auto* d = static_cast<Half*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = Half(src[i]);
      return;
    }
    case DType::BFloat16: {
      auto* d = static_cast<BFloat16*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = BFloat16(src[i]);
      return;
    }
    case DType::Float32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::Float64: {
      auto* d = static_cast<double*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = static_cast<double>(src[i]);
      return;
    }
    default:
      throw DTypeError("[nn] unexpected dtype " + std::string(dtype_name(dt)));
  }
}

void check_float(const char* name, const ArrayRef& a, const char* what) {
  if (!is_float_dtype(a.dtype)) {
    throw DTypeError(std::string("[") + name + "] " + what + " dtype " +
                     std::string(dtype_name(a.dtype)) +
                     " is not supported (expected float16, bfloat16, float32 or float64)");
  }
}

void check_contiguous(const char* name, const ArrayRef& a, const char* what) {
  if (!a.is_contiguous()) {
    throw UnsupportedError(std::string("[") + name + "] " + what + " must be contiguous");
  }
}

const char* byte_ptr(const ArrayRef& a, int64_t elem) {
  return static_cast<const char*>(a.data) + elem * static_cast<int64_t>(itemsize(a.dtype));
}
char* byte_ptr_mut(const ArrayRef& a, int64_t elem) {
  return static_cast<char*>(a.data) + elem * static_cast<int64_t>(itemsize(a.dtype));
}

}  // namespace

void softmax(OpCode op, const ArrayRef& x, const ArrayRef& out) {
  if (op != OpCode::Softmax && op != OpCode::LogSoftmax) {
    throw UnsupportedError("[softmax] " + std::string(op_name(op)) + " is not a softmax op");
  }
  const char* name = op == OpCode::Softmax ? "softmax" : "log_softmax";
  const bool log = op == OpCode::LogSoftmax;
  check_float(name, x, "input");
  check_float(name, out, "output");
  check_contiguous(name, x, "input");
  const int64_t n = x.size();
  if (n == 0) return;
  const int64_t d = x.ndim() == 0 ? 1 : x.shape.back();
  const int64_t rows = n / d;
  const int64_t grain = std::max<int64_t>(1, kGrain / d);
  if (x.dtype == DType::Float32 && out.dtype == DType::Float32) {
    const float* xp = x.ptr<float>();
    float* yp = out.ptr<float>();
    const auto fn = f32_rows().softmax;
    parallel_for(rows, grain, [&](int64_t b, int64_t e) { fn(log, xp, yp, d, b, e); });
  } else if (x.dtype == DType::Float64 && out.dtype == DType::Float64) {
    const double* xp = x.ptr<double>();
    double* yp = out.ptr<double>();
    parallel_for(rows, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) softmax_row_f64(log, xp + r * d, yp + r * d, d);
    });
  } else {
    const auto fn = f32_rows().softmax;
    parallel_for(rows, grain, [&](int64_t b, int64_t e) {
      std::vector<float> in(static_cast<size_t>(d)), res(static_cast<size_t>(d));
      for (int64_t r = b; r < e; ++r) {
        to_float(x.dtype, byte_ptr(x, r * d), d, in.data());
        fn(log, in.data(), res.data(), d, 0, 1);
        from_float(res.data(), d, out.dtype, byte_ptr_mut(out, r * d));
      }
    });
  }
}

void layer_norm(const ArrayRef& x, const ArrayRef& weight, const ArrayRef& bias,
                const LayerNormArgs& args, const ArrayRef& out) {
  const char* name = "layer_norm";
  check_float(name, x, "input");
  check_float(name, out, "output");
  check_contiguous(name, x, "input");
  const bool has_w = weight.data != nullptr, has_b = bias.data != nullptr;
  const int64_t n = x.size();
  const int64_t d = args.inner;
  for (const ArrayRef* p : {&weight, &bias}) {
    if (p->data == nullptr) continue;
    check_float(name, *p, p == &weight ? "weight" : "bias");
    check_contiguous(name, *p, p == &weight ? "weight" : "bias");
    if (p->size() != d) {
      throw ShapeError("[layer_norm] " + std::string(p == &weight ? "weight" : "bias") + " has " +
                       std::to_string(p->size()) + " elements, expected " + std::to_string(d));
    }
  }
  if (n == 0) return;
  if (d <= 0 || n % d != 0) {
    throw ShapeError("[layer_norm] normalised size " + std::to_string(d) +
                     " does not divide the input size " + std::to_string(n));
  }
  const int64_t rows = n / d;
  const int64_t grain = std::max<int64_t>(1, kGrain / d);
  const double eps = args.eps;
  const bool same = (!has_w || weight.dtype == x.dtype) && (!has_b || bias.dtype == x.dtype);
  if (x.dtype == DType::Float64 && out.dtype == DType::Float64 && same) {
    const double* xp = x.ptr<double>();
    double* yp = out.ptr<double>();
    const double* w = has_w ? weight.ptr<double>() : nullptr;
    const double* b = has_b ? bias.ptr<double>() : nullptr;
    parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) layer_norm_row_f64(xp + r * d, w, b, eps, yp + r * d, d);
    });
    return;
  }
  // float32 kernel; other dtypes convert weights once and rows on the fly.
  std::vector<float> wbuf, bbuf;
  const float* w = nullptr;
  const float* b = nullptr;
  if (has_w) {
    if (weight.dtype == DType::Float32) {
      w = weight.ptr<float>();
    } else {
      wbuf.resize(static_cast<size_t>(d));
      to_float(weight.dtype, weight.data, d, wbuf.data());
      w = wbuf.data();
    }
  }
  if (has_b) {
    if (bias.dtype == DType::Float32) {
      b = bias.ptr<float>();
    } else {
      bbuf.resize(static_cast<size_t>(d));
      to_float(bias.dtype, bias.data, d, bbuf.data());
      b = bbuf.data();
    }
  }
  if (x.dtype == DType::Float32 && out.dtype == DType::Float32) {
    const float* xp = x.ptr<float>();
    float* yp = out.ptr<float>();
    const auto fn = f32_rows().layer_norm;
    parallel_for(rows, grain, [&](int64_t r0, int64_t r1) { fn(xp, w, b, eps, yp, d, r0, r1); });
    return;
  }
  const auto fn = f32_rows().layer_norm;
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    std::vector<float> in(static_cast<size_t>(d)), res(static_cast<size_t>(d));
    for (int64_t r = r0; r < r1; ++r) {
      to_float(x.dtype, byte_ptr(x, r * d), d, in.data());
      fn(in.data(), w, b, eps, res.data(), d, 0, 1);
      from_float(res.data(), d, out.dtype, byte_ptr_mut(out, r * d));
    }
  });
}

}  // namespace tmath::cpu
