// Exception types. Messages start with the op in brackets:
//   [matmul] shapes (3,4) and (5,6) are not aligned: 4 != 5
#pragma once

#include <stdexcept>
#include <string>

#include "tmath/export.h"

namespace tmath {

class TMATH_API Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// Incompatible shapes, bad axes, out-of-range indices.
class TMATH_API ShapeError : public Error {
 public:
  using Error::Error;
};
// Invalid dtype or dtype combination for an op.
class TMATH_API DTypeError : public Error {
 public:
  using Error::Error;
};
// Unknown/unavailable device, tensors on different devices, disallowed fallback.
class TMATH_API DeviceError : public Error {
 public:
  using Error::Error;
};
// A valid request that no backend can run (e.g. fallback policy "error").
class TMATH_API UnsupportedError : public Error {
 public:
  using Error::Error;
};
// Allocation failed after the cache was freed and the request retried once.
class TMATH_API OutOfMemoryError : public Error {
 public:
  using Error::Error;
};
// Singular matrix, non-convergence, non-finite input to a decomposition.
class TMATH_API LinAlgError : public Error {
 public:
  using Error::Error;
};
// Any other invalid argument value (negative size, bad option string, ...).
class TMATH_API ValueError : public Error {
 public:
  using Error::Error;
};

}  // namespace tmath
