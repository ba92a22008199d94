// Softmax / LogSoftmax over the last axis and LayerNorm over trailing rows.
// float32 rows run on 4-lane SIMD packs (GCC vector extensions, SSE2 baseline);
// float16/bfloat16 rows are widened to float32 and rounded back; float64 uses
// scalar double code. Row sums accumulate in float lanes over short chunks and
// in double across chunks.
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

typedef float VecF __attribute__((vector_size(16)));
typedef int32_t VecI __attribute__((vector_size(16)));
constexpr int64_t kLanes = 4;
// Elements per float partial sum before it is folded into a double.
constexpr int64_t kChunk = 256;

inline VecF load(const float* p) {
  VecF v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, VecF v) {
  std::memcpy(p, &v, sizeof v);
}
inline VecF splat(float a) {
  return VecF{a, a, a, a};
}
inline float hsum(VecF v) {
  return (v[0] + v[1]) + (v[2] + v[3]);
}
inline VecF vmax(VecF a, VecF b) {
  return ((a >= b) | (a != a)) ? a : b;
}

// exp for float lanes (Cephes expf: Cody-Waite reduction by ln2, degree-5
// polynomial; ~1 ulp). Inputs below -87.34 give 0; callers pass x <= 0.
inline VecF vexp(VecF x) {
  const VecF lo = splat(-87.3365478515625f);
  const auto underflow = x < lo;
  x = underflow ? lo : x;
  const VecF magic = splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const VecF n = (x * splat(1.44269504088896341f) + magic) - magic;
  VecF r = x - n * splat(0.693359375f);
  r = r - n * splat(-2.12194440e-4f);
  VecF p = splat(1.9875691500e-4f);
  p = p * r + splat(1.3981999507e-3f);
  p = p * r + splat(8.3334519073e-3f);
  p = p * r + splat(4.1665795894e-2f);
  p = p * r + splat(1.6666665459e-1f);
  p = p * r + splat(5.0000001201e-1f);
  const VecF y = p * (r * r) + r + splat(1.0f);
  const VecI e = (__builtin_convertvector(n, VecI) + 127) << 23;
  VecF scale;
  std::memcpy(&scale, &e, sizeof scale);
  const VecF result = y * scale;
  return underflow ? splat(0.0f) : result;
}

// Pads a short tail into a full pack.
inline VecF load_tail(const float* p, int64_t n, float pad) {
  VecF v = splat(pad);
  for (int64_t i = 0; i < n; ++i) v[i] = p[i];
  return v;
}
inline void store_tail(float* p, VecF v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) p[i] = v[i];
}

float row_max(const float* x, int64_t d) {
  const float ninf = -std::numeric_limits<float>::infinity();
  VecF m0 = splat(ninf), m1 = m0, m2 = m0, m3 = m0;
  int64_t i = 0;
  for (; i + 4 * kLanes <= d; i += 4 * kLanes) {
    m0 = vmax(m0, load(x + i));
    m1 = vmax(m1, load(x + i + kLanes));
    m2 = vmax(m2, load(x + i + 2 * kLanes));
    m3 = vmax(m3, load(x + i + 3 * kLanes));
  }
  for (; i < d; i += kLanes) m0 = vmax(m0, load_tail(x + i, std::min(kLanes, d - i), ninf));
  const VecF m = vmax(vmax(m0, m1), vmax(m2, m3));
  const float a = std::isnan(m[0]) || m[0] >= m[1] ? m[0] : m[1];
  const float b = std::isnan(m[2]) || m[2] >= m[3] ? m[2] : m[3];
  return std::isnan(a) || a >= b ? a : b;
}

// Writes exp(x - m) to y (if non-null) and returns its sum.
double exp_sum(const float* x, int64_t d, float m, float* y) {
  const VecF vm = splat(m);
  double total = 0.0;
  for (int64_t c = 0; c < d; c += kChunk) {
    const int64_t end = std::min(d, c + kChunk);
    VecF s0 = splat(0.0f), s1 = s0;
    int64_t i = c;
    for (; i + 2 * kLanes <= end; i += 2 * kLanes) {
      const VecF e0 = vexp(load(x + i) - vm);
      const VecF e1 = vexp(load(x + i + kLanes) - vm);
      if (y) {
        store(y + i, e0);
        store(y + i + kLanes, e1);
      }
      s0 += e0;
      s1 += e1;
    }
    for (; i < end; i += kLanes) {
      const int64_t n = std::min(kLanes, end - i);
      const VecF e = vexp(load_tail(x + i, n, -std::numeric_limits<float>::infinity()) - vm);
      if (y) store_tail(y + i, e, n);
      s0 += e;
    }
    total += static_cast<double>(hsum(s0 + s1));
  }
  return total;
}

void softmax_row_f32(bool log, const float* x, float* y, int64_t d) {
  const float m = row_max(x, d);
  if (!log) {
    const double total = exp_sum(x, d, m, y);
    const VecF inv = splat(static_cast<float>(1.0 / total));
    int64_t i = 0;
    for (; i + kLanes <= d; i += kLanes) store(y + i, load(y + i) * inv);
    for (; i < d; ++i) y[i] *= inv[0];
    return;
  }
  const double total = exp_sum(x, d, m, nullptr);
  const VecF vm = splat(m);
  const VecF lse = splat(static_cast<float>(std::log(total)));
  int64_t i = 0;
  for (; i + kLanes <= d; i += kLanes) store(y + i, (load(x + i) - vm) - lse);
  for (; i < d; ++i) y[i] = (x[i] - m) - lse[0];
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

void layer_norm_row_f32(const float* x, const float* w, const float* b, double eps, float* y,
                        int64_t d) {
  double total = 0.0;
  for (int64_t c = 0; c < d; c += kChunk) {
    const int64_t end = std::min(d, c + kChunk);
    VecF s0 = splat(0.0f), s1 = s0;
    int64_t i = c;
    for (; i + 2 * kLanes <= end; i += 2 * kLanes) {
      s0 += load(x + i);
      s1 += load(x + i + kLanes);
    }
    for (; i < end; i += kLanes) s0 += load_tail(x + i, std::min(kLanes, end - i), 0.0f);
    total += static_cast<double>(hsum(s0 + s1));
  }
  const float mean = static_cast<float>(total / static_cast<double>(d));
  const VecF vmean = splat(mean);
  double sq = 0.0;
  for (int64_t c = 0; c < d; c += kChunk) {
    const int64_t end = std::min(d, c + kChunk);
    VecF s0 = splat(0.0f), s1 = s0;
    int64_t i = c;
    for (; i + 2 * kLanes <= end; i += 2 * kLanes) {
      const VecF a = load(x + i) - vmean, e = load(x + i + kLanes) - vmean;
      s0 += a * a;
      s1 += e * e;
    }
    for (; i < end; i += kLanes) {
      const VecF a = load_tail(x + i, std::min(kLanes, end - i), mean) - vmean;
      s0 += a * a;
    }
    sq += static_cast<double>(hsum(s0 + s1));
  }
  const double var = sq / static_cast<double>(d);
  const float rstd = static_cast<float>(1.0 / std::sqrt(var + eps));
  const VecF vr = splat(rstd);
  int64_t i = 0;
  for (; i + kLanes <= d; i += kLanes) {
    VecF v = (load(x + i) - vmean) * vr;
    if (w) v = v * load(w + i);
    if (b) v = v + load(b + i);
    store(y + i, v);
  }
  for (; i < d; ++i) {
    float v = (x[i] - mean) * rstd;
    if (w) v = v * w[i];
    if (b) v = v + b[i];
    y[i] = v;
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
    parallel_for(rows, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) softmax_row_f32(log, xp + r * d, yp + r * d, d);
    });
  } else if (x.dtype == DType::Float64 && out.dtype == DType::Float64) {
    const double* xp = x.ptr<double>();
    double* yp = out.ptr<double>();
    parallel_for(rows, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) softmax_row_f64(log, xp + r * d, yp + r * d, d);
    });
  } else {
    parallel_for(rows, grain, [&](int64_t b, int64_t e) {
      std::vector<float> in(static_cast<size_t>(d)), res(static_cast<size_t>(d));
      for (int64_t r = b; r < e; ++r) {
        to_float(x.dtype, byte_ptr(x, r * d), d, in.data());
        softmax_row_f32(log, in.data(), res.data(), d);
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
    parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        layer_norm_row_f32(xp + r * d, w, b, eps, yp + r * d, d);
      }
    });
    return;
  }
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    std::vector<float> in(static_cast<size_t>(d)), res(static_cast<size_t>(d));
    for (int64_t r = r0; r < r1; ++r) {
      to_float(x.dtype, byte_ptr(x, r * d), d, in.data());
      layer_norm_row_f32(in.data(), w, b, eps, res.data(), d);
      from_float(res.data(), d, out.dtype, byte_ptr_mut(out, r * d));
    }
  });
}

}  // namespace tmath::cpu
