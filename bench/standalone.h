// Shared pieces of the plain (non-Google-Benchmark) measurement programs in bench/:
// a wall clock and the backend named on the command line.
#pragma once

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "tmath/tmath.h"

namespace bench {

inline double now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The backend argv[1] names ("cpu" when absent) and its first device; `be` is null
// (with a message printed) when that backend is not available here.
struct Target {
  std::string name;
  tmath::Device dev = tmath::kCPU;
  std::shared_ptr<tmath::Backend> be;
};
inline Target target_from_args(int argc, char** argv) {
  Target t;
  t.name = argc > 1 ? argv[1] : "cpu";
  t.dev = t.name == "cuda" ? tmath::Device{tmath::DeviceType::CUDA, 0} : tmath::kCPU;
  t.be = tmath::get_backend(t.name);
  if (t.be && !t.be->available()) t.be = nullptr;
  if (!t.be) std::printf("backend %s not available\n", t.name.c_str());
  return t;
}

}  // namespace bench
