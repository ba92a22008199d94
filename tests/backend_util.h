// Whether a registered backend can run here, and the reason it cannot (for test skips).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

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

// A test fixture parameterised over the backend a suite runs on: "cpu" as registered,
// "torch" (LibTorch on the cpu device) loaded on demand and ranked first, with a check
// that it takes `op` (skipped where the plugin was not built). Restores the priority.
// Param: the backend name, or a tuple whose last element is it.
template <class Param = std::string>
class OnBackend : public ::testing::TestWithParam<Param> {
 protected:
  static const std::string& backend_of(const std::string& p) { return p; }
  template <class... T>
  static const std::string& backend_of(const std::tuple<T...>& p) {
    return std::get<sizeof...(T) - 1>(p);
  }
  const std::string& backend() const { return backend_of(this->GetParam()); }

  void SetUp() override {
    if (backend() == "cpu") return;
    if (!tmath::load_backend(backend()))
      GTEST_SKIP() << backend() << " backend: " << backend_reason(backend().c_str());
    saved_ = tmath::backend_priority();
    prioritised_ = true;
    tmath::set_backend_priority({backend()});
    for (tmath::DType dt : {tmath::float32, tmath::float64, tmath::complex64, tmath::complex128})
      for (tmath::OpCode op : {tmath::OpCode::Solve, tmath::OpCode::Svd, tmath::OpCode::Eig,
                               tmath::OpCode::LuSolve}) {
        tmath::Backend* b = tmath::select_backend(op, dt, tmath::kCPU);
        ASSERT_TRUE(b && b->name() == backend())
            << tmath::op_name(op) << " " << tmath::dtype_name(dt) << " runs on "
            << (b ? std::string(b->name()) : std::string("nothing"));
      }
  }
  void TearDown() override {
    if (prioritised_) tmath::set_backend_priority(saved_);
  }

 private:
  std::vector<std::string> saved_;
  bool prioritised_ = false;
};

// The backends the linalg suites run on (cpu device).
inline const std::vector<std::string>& cpu_linalg_backends() {
  static const std::vector<std::string> v = {"cpu", "torch"};
  return v;
}

}  // namespace tt
