// Counter-based random numbers (Philox4x32-10) with explicit keys.
//
// A Key names a stream; the same key gives the same numbers on every backend.
// Derive independent keys with split/fold_in instead of reusing one key.
#pragma once

#include <cstdint>
#include <vector>

#include "tmath/tensor.h"

namespace tmath::random {

struct Key {
  uint32_t k0 = 0, k1 = 0;
  friend bool operator==(Key a, Key b) { return a.k0 == b.k0 && a.k1 == b.k1; }
};

TMATH_API Key key(uint64_t seed);
// n keys, independent of each other and of `k`.
TMATH_API std::vector<Key> split(Key k, int n = 2);
// A key derived from `k` and `data` (e.g. a step or chain index).
TMATH_API Key fold_in(Key k, uint64_t data);

// Seeds the default generator used when no key is given (seed 0 at start-up).
TMATH_API void seed(uint64_t s);
// Next key from the default generator (thread-safe).
TMATH_API Key next_key();

// Uniform in [low, high). float dtypes only.
TMATH_API Tensor uniform(Key k, const Shape& shape, DType dtype = float32, double low = 0.0,
                         double high = 1.0, Device device = default_device());
// Normal(mean, stddev) by Box-Muller on Philox output.
TMATH_API Tensor normal(Key k, const Shape& shape, DType dtype = float32, double mean = 0.0,
                        double stddev = 1.0, Device device = default_device());
// Integers uniform in [low, high).
TMATH_API Tensor integers(Key k, const Shape& shape, int64_t low, int64_t high,
                          DType dtype = int64, Device device = default_device());
// Bool with P(true) = p.
TMATH_API Tensor bernoulli(Key k, const Shape& shape, double p = 0.5,
                           Device device = default_device());
// Raw 32-bit words (as int64 values in [0, 2^32)); the stream every sampler draws from.
TMATH_API Tensor bits(Key k, const Shape& shape, Device device = default_device());

// Default-generator forms.
TMATH_API Tensor uniform(const Shape& shape, DType dtype = float32, double low = 0.0,
                         double high = 1.0);
TMATH_API Tensor normal(const Shape& shape, DType dtype = float32, double mean = 0.0,
                        double stddev = 1.0);

}  // namespace tmath::random
