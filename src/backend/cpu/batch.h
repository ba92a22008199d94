// Batch loops of the CPU backend's matrix kernels (matmul, linalg).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "tmath/backend.h"

namespace tmath::cpu {

// Offsets (in elements) of each batch entry of an array of shape
// (batch..., core...) with `core_dims` trailing core dims, in row-major batch order.
inline std::vector<int64_t> batch_offsets(const ArrayRef& x, int core_dims) {
  const int nb = x.ndim() - core_dims;
  int64_t count = 1;
  for (int i = 0; i < nb; ++i) count *= x.shape[i];
  std::vector<int64_t> offs(static_cast<size_t>(count));
  std::vector<int64_t> idx(static_cast<size_t>(std::max(nb, 0)), 0);
  for (int64_t b = 0; b < count; ++b) {
    int64_t off = 0;
    for (int i = 0; i < nb; ++i) off += idx[i] * x.strides[i];
    offs[b] = off;
    for (int i = nb - 1; i >= 0; --i) {
      if (++idx[i] < x.shape[i]) break;
      idx[i] = 0;
    }
  }
  return offs;
}

}  // namespace tmath::cpu
