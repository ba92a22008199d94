// Mixed-precision policy for matmul-class ops (matmul, tensordot, einsum, linalg products).
//
//  "highest": float32 inputs are multiplied in float32 (strict).
//  "high":    float32 products may use TF32 tensor cores (CUDA); CPU: as highest.
//  "medium":  float32 products may use bfloat16 inputs with float32 accumulation.
// float16/bfloat16 inputs always accumulate in float32.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "tmath/dtype.h"
#include "tmath/export.h"

namespace tmath {

enum class MatmulPrecision : uint8_t { Highest, High, Medium };

TMATH_API void set_matmul_precision(std::string_view p);  // ValueError on other strings
TMATH_API void set_matmul_precision(MatmulPrecision p);
TMATH_API MatmulPrecision matmul_precision();
TMATH_API std::string_view matmul_precision_name(MatmulPrecision p);

// Within the scope (this thread), float32 operands of matmul-class ops are cast
// to `dtype` (float16 or bfloat16) and results returned in `dtype`, as torch.autocast.
class TMATH_API AutocastScope {
 public:
  explicit AutocastScope(DType dtype = bfloat16, bool enabled = true);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  std::optional<DType> prev_;
};
// The autocast dtype active on this thread, if any.
TMATH_API std::optional<DType> autocast_dtype();

}  // namespace tmath
