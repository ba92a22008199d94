// A small persistent thread pool for the CPU kernels (exported for the tests).
#pragma once

#include <cstdint>
#include <functional>

#include "tmath/export.h"

namespace tmath::cpu {

// Number of threads kernels use (env TMATH_NUM_THREADS, default: hardware threads).
TMATH_API int num_threads();
TMATH_API void set_num_threads(int n);

// Calls fn(begin, end) over [0, n) split into at most num_threads() contiguous
// chunks of at least `grain` items each; runs inline when one chunk suffices or
// when called from inside a pool task. Exceptions from fn are rethrown here.
TMATH_API void parallel_run(int64_t n, int64_t chunks, const std::function<void(int64_t, int64_t)>& fn);
TMATH_API bool in_pool_thread();

template <class F>
void parallel_for(int64_t n, int64_t grain, F&& fn) {
  if (n <= 0) return;
  int64_t g = grain > 0 ? grain : 1;
  int64_t chunks = (n + g - 1) / g;
  int64_t nt = num_threads();
  if (chunks > nt) chunks = nt;
  if (chunks <= 1 || in_pool_thread()) {
    fn(int64_t{0}, n);
    return;
  }
  parallel_run(n, chunks, std::function<void(int64_t, int64_t)>(std::ref(fn)));
}

}  // namespace tmath::cpu
