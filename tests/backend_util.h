// Whether a registered backend can run here, and the reason it cannot (for test skips).
#pragma once

#include <string>

#include "tmath/tmath.h"

namespace tt {

inline bool backend_ok(const char* name) {
  auto b = tmath::get_backend(name);
  return b && b->available();
}
inline std::string backend_reason(const char* name) {
  auto b = tmath::get_backend(name);
  if (!b) return std::string("no ") + name + " backend registered";
  std::string r = b->info().reason;
  return r.empty() ? "unavailable" : r;
}

}  // namespace tt
