// What the backends share about linear algebra (internal): which ops it is, why a
// batch entry failed and the wording of the resulting errors.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "tmath/backend.h"
#include "tmath/export.h"

namespace tmath::detail {

// The linear-algebra primitives (OpCode::Solve .. OpCode::Eig).
inline bool is_linalg_op(OpCode op) {
  return static_cast<int>(op) >= static_cast<int>(OpCode::Solve) &&
         static_cast<int>(op) <= static_cast<int>(OpCode::Eig);
}

// Why a batch entry failed, in the order the native backends test it (src/backend/cpu/
// linalg.cpp), as the per-entry status codes of the framework backends.
enum LinalgFail : int32_t {
  kOk = 0,
  kNonFinite,
  kSingular,
  kNotPositiveDefinite,
  kNoConvergence,
  kBadPivots,
};

// The message of a LinAlgError for a failure code (the cpu backend's words).
inline const char* linalg_fail_text(int32_t f) {
  switch (f) {
    case kNonFinite: return "input contains NaN or Inf";
    case kSingular: return "singular matrix";
    case kNotPositiveDefinite: return "matrix is not positive definite";
    case kNoConvergence: return "the algorithm did not converge";
    case kBadPivots: return "pivot indices out of range";
    default: return "LAPACK reported an invalid argument";
  }
}

// " (batch index (i, j))" for flat batch entry `flat` of a batch of shape `batch`
// (" (batch index (i,))" for one batch dimension, "" for none): the suffix of a
// LinAlgError that names the failing matrix.
TMATH_API std::string batch_index_text(std::span<const int64_t> batch, int64_t flat);

}  // namespace tmath::detail
