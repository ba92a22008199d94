// Evaluation control.
#pragma once

#include <vector>

#include "tmath/tensor.h"

namespace tmath {

// Materialises all given tensors in one pass over their shared graph.
TMATH_API void eval(const std::vector<Tensor>& xs);
TMATH_API void eval(const Tensor& x);

// Eager mode: every op is evaluated when recorded. Default from TMATH_EAGER=1.
TMATH_API bool eager_mode();
TMATH_API void set_eager_mode(bool on);
class TMATH_API EagerScope {
 public:
  explicit EagerScope(bool on = true);
  ~EagerScope();
  EagerScope(const EagerScope&) = delete;
  EagerScope& operator=(const EagerScope&) = delete;

 private:
  bool prev_;
};

// Unevaluated graphs deeper than this are evaluated when the next op is
// recorded, which bounds memory and recursion in long loops (default 2048).
TMATH_API void set_max_graph_depth(int depth);

}  // namespace tmath
