// A small persistent thread pool for the CPU kernels.
#pragma once

#include <cstdint>
#include <functional>

namespace tmath::cpu {

// Number of threads kernels use (env TMATH_NUM_THREADS, default: hardware threads).
int num_threads();
void set_num_threads(int n);

// Calls fn(begin, end) over [0, n) split into at most num_threads() contiguous
// chunks of at least `grain` items each; runs inline when one chunk suffices or
// when called from inside a pool task. Exceptions from fn are rethrown here.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace tmath::cpu
