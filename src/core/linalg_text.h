// Wording shared by the linear-algebra errors of every backend (internal).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "tmath/export.h"

namespace tmath::detail {

// " (batch index (i, j))" for flat batch entry `flat` of a batch of shape `batch`
// (" (batch index (i,))" for one batch dimension, "" for none): the suffix of a
// LinAlgError that names the failing matrix.
TMATH_API std::string batch_index_text(std::span<const int64_t> batch, int64_t flat);

}  // namespace tmath::detail
