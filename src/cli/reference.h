// Native references for the profile: OpenBLAS called directly for matmul and
// plain single-threaded, single-pass C++ loops for the elementwise, row-wise
// and reduction ops. Inputs are row-major (rows x cols) float32; `out` is
// preallocated. Shared by `tmath profile` and bench/bench_ops.cpp.
#pragma once

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace tmath::reference {

inline void sgemm(const float* a, const float* b, float* c, int n) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
}
inline void dgemm(const double* a, const double* b, double* c, int n) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n, b, n, 0.0, c, n);
}

// Signature shared by all loop references: a, b (unused by unary ops), out.
using LoopFn = void (*)(const float* a, const float* b, float* out, int64_t rows, int64_t cols);

inline void add(const float* a, const float* b, float* out, int64_t rows, int64_t cols) {
  for (int64_t i = 0, n = rows * cols; i < n; ++i) out[i] = a[i] + b[i];
}
inline void relu(const float* a, const float*, float* out, int64_t rows, int64_t cols) {
  for (int64_t i = 0, n = rows * cols; i < n; ++i) out[i] = std::max(a[i], 0.0f);
}
// Exact GELU: x * Phi(x).
inline void gelu(const float* a, const float*, float* out, int64_t rows, int64_t cols) {
  for (int64_t i = 0, n = rows * cols; i < n; ++i) {
    out[i] = 0.5f * a[i] * (1.0f + std::erf(a[i] * 0.70710678f));
  }
}
inline void tanh(const float* a, const float*, float* out, int64_t rows, int64_t cols) {
  for (int64_t i = 0, n = rows * cols; i < n; ++i) out[i] = std::tanh(a[i]);
}
// chain10: x -> tanh(x * 1.01 + 0.5), five times, in one pass (a hand-fused loop).
inline void chain10(const float* a, const float*, float* out, int64_t rows, int64_t cols) {
  for (int64_t i = 0, n = rows * cols; i < n; ++i) {
    float v = a[i];
    for (int k = 0; k < 5; ++k) v = std::tanh(v * 1.01f + 0.5f);
    out[i] = v;
  }
}
inline void exp(const float* a, const float*, float* out, int64_t rows, int64_t cols) {
  for (int64_t i = 0, n = rows * cols; i < n; ++i) out[i] = std::exp(a[i]);
}
// Softmax over each row (max-subtracted).
inline void softmax(const float* a, const float*, float* out, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = a + r * cols;
    float* y = out + r * cols;
    float m = x[0];
    for (int64_t j = 1; j < cols; ++j) m = std::max(m, x[j]);
    float s = 0.0f;
    for (int64_t j = 0; j < cols; ++j) s += (y[j] = std::exp(x[j] - m));
    const float inv = 1.0f / s;
    for (int64_t j = 0; j < cols; ++j) y[j] *= inv;
  }
}
// Layer norm over each row, no affine parameters, eps = 1e-5.
inline void layer_norm(const float* a, const float*, float* out, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = a + r * cols;
    float* y = out + r * cols;
    float mean = 0.0f;
    for (int64_t j = 0; j < cols; ++j) mean += x[j];
    mean /= static_cast<float>(cols);
    float var = 0.0f;
    for (int64_t j = 0; j < cols; ++j) var += (x[j] - mean) * (x[j] - mean);
    const float inv = 1.0f / std::sqrt(var / static_cast<float>(cols) + 1e-5f);
    for (int64_t j = 0; j < cols; ++j) y[j] = (x[j] - mean) * inv;
  }
}
// Sum of all elements into out[0], accumulated in double.
inline void sum(const float* a, const float*, float* out, int64_t rows, int64_t cols) {
  double s = 0.0;
  for (int64_t i = 0, n = rows * cols; i < n; ++i) s += a[i];
  out[0] = static_cast<float>(s);
}

// One iteration of y = tanh(x @ w + b): x, w, y are n x n, b (n) is broadcast over rows.
inline void dense_tanh(const float* x, const float* w, const float* b, float* y, int n) {
  sgemm(x, w, y, n);
  for (int64_t r = 0; r < n; ++r) {
    float* row = y + r * n;
    for (int64_t j = 0; j < n; ++j) row[j] = std::tanh(row[j] + b[j]);
  }
}

}  // namespace tmath::reference
