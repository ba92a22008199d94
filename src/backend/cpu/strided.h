// N-d strided iteration for elementwise kernels: collapses dimensions that are
// contiguous for every operand, then walks rows of the innermost dimension,
// split across threads.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/thread_pool.h"
#include "tmath/backend.h"
#include "tmath/error.h"
#include <string>

namespace tmath::cpu {

// Fixed-capacity vector for per-dimension data (no heap use on the hot path).
inline constexpr int kMaxDims = 32;
struct DimVec {
  std::array<int64_t, kMaxDims> v{};
  int n = 0;
  void push_back(int64_t x) { v[n++] = x; }
  void erase_at(int i) {
    for (int k = i; k + 1 < n; ++k) v[k] = v[k + 1];
    --n;
  }
  size_t size() const { return static_cast<size_t>(n); }
  bool empty() const { return n == 0; }
  int64_t back() const { return v[n - 1]; }
  int64_t& operator[](size_t i) { return v[i]; }
  int64_t operator[](size_t i) const { return v[i]; }
};

template <int N>
struct StridedPlan {
  DimVec shape;                   // collapsed, innermost last
  std::array<DimVec, N> strides;  // in bytes
  int64_t inner = 1;              // shape.back()
  int64_t rows = 1;               // product of outer dims
};

// arrays[0] is usually the output. All share `shape`.
template <int N>
StridedPlan<N> make_plan(std::span<const int64_t> shape, const std::array<const ArrayRef*, N>& arrays) {
  StridedPlan<N> p;
  int nd = static_cast<int>(shape.size());
  if (nd > kMaxDims)
    throw ShapeError("[elementwise] tensors with more than " + std::to_string(kMaxDims) +
                     " dimensions are not supported");
  for (int i = 0; i < nd; ++i) {
    if (shape[i] == 1) continue;  // size-1 axes never move the pointers
    p.shape.push_back(shape[i]);
    for (int k = 0; k < N; ++k)
      p.strides[k].push_back(arrays[k]->strides[i] * static_cast<int64_t>(itemsize(arrays[k]->dtype)));
  }
  // Merge axis i into i+1 when stride[i] == stride[i+1] * shape[i+1] for all arrays.
  for (int i = static_cast<int>(p.shape.size()) - 2; i >= 0; --i) {
    bool ok = true;
    for (int k = 0; k < N && ok; ++k) ok = p.strides[k][i] == p.strides[k][i + 1] * p.shape[i + 1];
    if (!ok) continue;
    p.shape[i + 1] *= p.shape[i];
    p.shape.erase_at(i);
    for (int k = 0; k < N; ++k) p.strides[k].erase_at(i);
  }
  if (p.shape.empty()) {
    p.shape.push_back(1);
    for (int k = 0; k < N; ++k) p.strides[k].push_back(0);
  }
  p.inner = p.shape.back();
  p.rows = 1;
  for (size_t i = 0; i + 1 < p.shape.size(); ++i) p.rows *= p.shape[i];
  return p;
}

// Calls row(ptrs, n, inner_strides) for every innermost row; rows (or, for a
// single row, chunks of it) are split across threads.
template <int N, class Row>
void for_each_row(const StridedPlan<N>& p, std::array<char*, N> base, Row&& row) {
  std::array<int64_t, N> is;
  for (int k = 0; k < N; ++k) is[k] = p.strides[k].back();
  if (p.rows == 1) {
    parallel_for(p.inner, kGrain, [&](int64_t b, int64_t e) {
      std::array<char*, N> ptr;
      for (int k = 0; k < N; ++k) ptr[k] = base[k] + b * is[k];
      row(ptr, e - b, is);
    });
    return;
  }
  int outer_nd = static_cast<int>(p.shape.size()) - 1;
  int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(p.inner, 1));
  parallel_for(p.rows, grain, [&](int64_t rb, int64_t re) {
    std::array<int64_t, kMaxDims> idx{};
    int64_t r = rb;
    for (int d = outer_nd - 1; d >= 0; --d) {
      idx[d] = r % p.shape[d];
      r /= p.shape[d];
    }
    for (int64_t rr = rb; rr < re; ++rr) {
      std::array<char*, N> ptr;
      for (int k = 0; k < N; ++k) {
        int64_t off = 0;
        for (int d = 0; d < outer_nd; ++d) off += idx[d] * p.strides[k][d];
        ptr[k] = base[k] + off;
      }
      row(ptr, p.inner, is);
      for (int d = outer_nd - 1; d >= 0; --d) {
        if (++idx[d] < p.shape[d]) break;
        idx[d] = 0;
      }
    }
  });
}

}  // namespace tmath::cpu
