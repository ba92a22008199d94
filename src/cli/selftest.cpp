// `tmath selftest`: quick end-to-end checks against hand-computed values.
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "tmath/error.h"
#include "tmath/ops.h"
#include "tmath/random.h"
#include "tmath/transforms.h"

namespace tmath::cli {
namespace {

struct Check {
  const char* name;
  std::function<std::string()> run;  // empty string: passed; otherwise what went wrong
};

template <class T>
std::string expect_near(const Tensor& got, const std::vector<T>& want, double tol) {
  const std::vector<T> v = got.to_vector<T>();
  if (v.size() != want.size()) {
    return "expected " + std::to_string(want.size()) + " values, got " + std::to_string(v.size());
  }
  for (size_t i = 0; i < v.size(); ++i) {
    const double g = static_cast<double>(v[i]), w = static_cast<double>(want[i]);
    if (!(std::fabs(g - w) <= tol * (1.0 + std::fabs(w)))) {
      char buf[128];
      std::snprintf(buf, sizeof buf, "element %zu: got %.9g, expected %.9g", i, g, w);
      return buf;
    }
  }
  return {};
}

std::string expect_shape(const Tensor& t, const Shape& want) {
  if (t.shape() == want) return {};
  std::string s = "shape (";
  for (auto d : t.shape()) s += std::to_string(d) + ",";
  return s + ") is not the expected one";
}

const Check kChecks[] = {
    {"add and multiply",
     [] {
       const Tensor a = from_vector<float>({1, 2, 3}), b = from_vector<float>({10, 20, 30});
       return expect_near<float>(a + b * 2.0f, {21, 42, 63}, 0);
     }},
    {"broadcasting (2,1) + (1,3)",
     [] {
       const Tensor a = from_vector<float>({1, 2}, {2, 1}),
                    b = from_vector<float>({10, 20, 30}, {1, 3});
       const Tensor c = a + b;
       if (auto e = expect_shape(c, {2, 3}); !e.empty()) return e;
       return expect_near<float>(c, {11, 21, 31, 12, 22, 32}, 0);
     }},
    {"matmul float32 (2,3) @ (3,2)",
     [] {
       const Tensor a = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
       const Tensor b = from_vector<float>({7, 8, 9, 10, 11, 12}, {3, 2});
       return expect_near<float>(matmul(a, b), {58, 64, 139, 154}, 0);
     }},
    {"matmul float64 (2,2) @ (2,2)",
     [] {
       const Tensor a = from_vector<double>({1.5, -2, 0.25, 4}, {2, 2});
       const Tensor b = from_vector<double>({2, 1, -1, 3}, {2, 2});
       return expect_near<double>(matmul(a, b), {5, -4.5, -3.5, 12.25}, 0);
     }},
    {"matmul bfloat16 accumulates in float32",
     [] {
       // 512 ones: a bfloat16 accumulator stops at 256 (256 + 1 rounds back to 256).
       const Tensor a = ones({1, 512}, bfloat16), b = ones({512, 1}, bfloat16);
       return expect_near<float>(matmul(a, b).astype(float32), {512}, 0);
     }},
    {"sum of arange(10) is 45 (int64)",
     [] {
       const Tensor s = sum(arange(10));
       if (s.dtype() != int64) return std::string("dtype is ") + std::string(dtype_name(s.dtype()));
       return expect_near<int64_t>(s, {45}, 0);
     }},
    {"mean and var over an axis",
     [] {
       const Tensor x = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
       if (auto e = expect_near<float>(mean(x, {1}), {2, 5}, 1e-7); !e.empty()) return e;
       return expect_near<float>(var(x, {0}), {2.25f, 2.25f, 2.25f}, 1e-7);
     }},
    {"exp, tanh, relu",
     [] {
       const Tensor x = from_vector<float>({-1, 0, 1});
       if (auto e = expect_near<float>(exp(x), {0.36787944f, 1, 2.7182817f}, 1e-6); !e.empty()) {
         return e;
       }
       if (auto e = expect_near<float>(tanh(x), {-0.76159416f, 0, 0.76159416f}, 1e-6); !e.empty()) {
         return e;
       }
       return expect_near<float>(relu(x), {0, 0, 1}, 0);
     }},
    {"softmax of (0, ln 2) is (1/3, 2/3)",
     [] {
       const Tensor x = from_vector<double>({0.0, std::log(2.0)});
       return expect_near<double>(softmax(x), {1.0 / 3, 2.0 / 3}, 1e-12);
     }},
    {"layer_norm of (1, 2, 3, 4)",
     [] {
       const double inv = 1.0 / std::sqrt(1.25 + 1e-5);
       return expect_near<double>(layer_norm(from_vector<double>({1, 2, 3, 4})),
                                  {-1.5 * inv, -0.5 * inv, 0.5 * inv, 1.5 * inv}, 1e-12);
     }},
    {"transpose view",
     [] {
       const Tensor x = from_vector<int32_t>({1, 2, 3, 4, 5, 6}, {2, 3});
       return expect_near<int32_t>(copy(x.transpose()), {1, 4, 2, 5, 3, 6}, 0);
     }},
    {"ops are lazy until eval",
     [] {
       const Tensor x = from_vector<float>({1, 2});
       const Tensor y = x * 3.0f;
       if (!eager_mode() && y.is_evaluated()) return std::string("evaluated before eval()");
       y.eval();
       if (!y.is_evaluated()) return std::string("not evaluated after eval()");
       return expect_near<float>(y, {3, 6}, 0);
     }},
    {"same random key, same numbers",
     [] {
       const auto k = random::key(42);
       const Tensor a = random::normal(k, {1000}), b = random::normal(k, {1000});
       if (auto e = expect_near<float>(a, b.to_vector<float>(), 0); !e.empty()) return e;
       const double m = random::normal(k, {100000}).mean().item<float>();
       if (std::fabs(m) > 0.02) return "mean of 100000 normals is " + std::to_string(m);
       return std::string();
     }},
    {"mismatched matmul raises ShapeError",
     [] {
       try {
         matmul(ones({3, 4}), ones({5, 6})).eval();
       } catch (const ShapeError& e) {
         if (std::string(e.what()).rfind("[matmul]", 0) != 0) {
           return std::string("message does not start with [matmul]: ") + e.what();
         }
         return std::string();
       } catch (const std::exception& e) {
         return std::string("wrong exception type: ") + e.what();
       }
       return std::string("no exception");
     }},
};

}  // namespace

int run_selftest(const Args& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "tmath selftest: unexpected argument '%s'\n\n", args[0].c_str());
    print_usage();
    return kUsageError;
  }
  int passed = 0, failed = 0;
  for (const Check& c : kChecks) {
    std::string err;
    try {
      err = c.run();
    } catch (const std::exception& e) {
      err = std::string("exception: ") + e.what();
    }
    if (err.empty()) {
      ++passed;
      std::printf("ok    %s\n", c.name);
    } else {
      ++failed;
      std::printf("FAIL  %s: %s\n", c.name, err.c_str());
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

}  // namespace tmath::cli
