// Lazy-graph fusion, compile() and the kernel cache. Fused results are checked
// bit for bit against the same graph evaluated op by op (JitScope(false)) and
// against float64 arithmetic done here; kernel counts come from the stats.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <unordered_map>

#include "../test_util.h"
#include "core/ptr_map.h"
#include "jit/jit.h"
#include "tmath/tmath.h"

namespace {

using namespace tmath;
using tt::read;
using tt::read_c;

std::string cuda_skip_reason() {
  auto b = get_backend("cuda");
  if (!b) return "no cuda backend registered";
  if (b->available()) return {};
  const std::string r = b->info().reason;
  return r.empty() ? "unavailable" : r;
}

class Fusion : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "cuda") {
      const std::string why = cuda_skip_reason();
      if (!why.empty()) GTEST_SKIP() << "no CUDA device: " << why;
      dev_ = Device{DeviceType::CUDA, 0};
    }
    reset_jit_stats();
    reset_dispatch_stats();
  }
  Tensor on(const Tensor& t) const { return dev_ == kCPU ? t : t.to(dev_).eval(); }
  Device dev_ = kCPU;
};

// x -> tanh(x * 1.01 + 0.5), five times.
Tensor chain10(Tensor x) {
  for (int i = 0; i < 5; ++i) x = tanh(x * 1.01 + 0.5);
  return x;
}

// Bitwise comparison through complex128 decoding (exact for every dtype).
::testing::AssertionResult same_values(const Tensor& a, const Tensor& b) {
  auto va = read_c(a), vb = read_c(b);
  if (va.size() != vb.size()) return ::testing::AssertionFailure() << "sizes differ";
  for (size_t i = 0; i < va.size(); ++i) {
    const bool nan_a = std::isnan(va[i].real()) || std::isnan(va[i].imag());
    const bool nan_b = std::isnan(vb[i].real()) || std::isnan(vb[i].imag());
    if (nan_a && nan_b) continue;
    if (va[i] != vb[i])
      return ::testing::AssertionFailure()
             << "element " << i << ": " << tt::fmt(va[i]) << " vs " << tt::fmt(vb[i]);
  }
  return ::testing::AssertionSuccess();
}

TEST_P(Fusion, Chain10RunsAsOneKernelAndMatchesUnfused) {
  std::mt19937 rng(7);
  auto x = tt::rand_tensor(rng, {256, 300}, DType::Float32, -2.0, 2.0);
  Tensor xd = on(x.t);
  chain10(xd).eval();  // first use of the constants puts them on the device (copies)
  reset_jit_stats();
  reset_dispatch_stats();
  Tensor fused = chain10(xd).eval();
  const JitStats js = jit_stats();
  const DispatchStats ds = dispatch_stats();
  EXPECT_EQ(js.fused_kernels, 1u);
  EXPECT_EQ(js.fused_ops, 15u);
  EXPECT_EQ(ds.kernels_launched, 1u);
  EXPECT_EQ(ds.nodes_evaluated, 15u);
  Tensor unfused;
  {
    JitScope off(false);
    reset_dispatch_stats();
    unfused = chain10(xd).eval();
    EXPECT_EQ(dispatch_stats().kernels_launched, 15u);
  }
  EXPECT_TRUE(same_values(fused, unfused));
  // Independent reference: float32 arithmetic step by step (tanh in double, rounded).
  std::vector<double> ref(x.v.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    float v = static_cast<float>(x.v[i]);
    for (int k = 0; k < 5; ++k) {
      v = v * 1.01f;
      v = v + 0.5f;
      v = static_cast<float>(std::tanh(static_cast<double>(v)));
    }
    ref[i] = v;
  }
  EXPECT_TRUE(tt::all_close(fused, ref, tt::Tol{1e-5, 1e-6}));
}

TEST_P(Fusion, BitwiseChainRunsAsOneKernel) {
  std::mt19937 rng(13);
  auto a = tt::rand_tensor(rng, {64, 33}, DType::Int32, -1000.0, 1000.0);
  auto b = tt::rand_tensor(rng, {64, 33}, DType::Int32, -40.0, 40.0);  // counts beyond [0, 32)
  Tensor A = on(a.t), B = on(b.t);
  auto f = [&] { return (((A & B) | 5) ^ (A >> B)) << 3; };
  f().eval();  // first use of the constants puts them on the device
  reset_jit_stats();
  reset_dispatch_stats();
  Tensor fused = f().eval();
  EXPECT_EQ(jit_stats().fused_kernels, 1u);
  EXPECT_EQ(dispatch_stats().kernels_launched, 1u);
  Tensor unfused;
  {
    JitScope off(false);
    unfused = f().eval();
  }
  EXPECT_TRUE(same_values(fused, unfused));
  std::vector<double> ref(a.v.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    const auto x = static_cast<int32_t>(a.v[i]), y = static_cast<int32_t>(b.v[i]);
    // x >> y as floor division by 2^y; a count outside [0, 32) gives 0 or -1.
    const int32_t sh = (y < 0 || y >= 32) ? (x < 0 ? -1 : 0)
                                          : static_cast<int32_t>(std::floor(x / std::ldexp(1.0, y)));
    const int32_t v = ((x & y) | 5) ^ sh;
    ref[i] = static_cast<int32_t>(static_cast<uint32_t>(v) * 8u);
  }
  EXPECT_TRUE(tt::all_equal(fused, ref));
}

TEST_P(Fusion, BroadcastScalarsAndWhere) {
  std::mt19937 rng(11);
  auto a = tt::rand_tensor(rng, {6, 1}, DType::Float32, -1.0, 1.0);
  auto b = tt::rand_tensor(rng, {1, 7}, DType::Float32, -1.0, 1.0);
  auto c = tt::rand_tensor(rng, {6, 7}, DType::Float32, -1.0, 1.0);
  Tensor A = on(a.t), B = on(b.t), C = on(c.t);
  auto f = [&] {
    Tensor s = A * B + C;
    return where(s > 0.0, exp(s) * 2.0, neg(s)).eval();
  };
  reset_jit_stats();
  Tensor fused = f();
  EXPECT_EQ(jit_stats().fused_kernels, 1u);
  EXPECT_EQ(jit_stats().fused_ops, 7u);  // mul, add, greater, exp, mul, neg, where
  Tensor unfused;
  {
    JitScope off(false);
    unfused = f();
  }
  EXPECT_TRUE(same_values(fused, unfused));
  std::vector<double> ref(42);
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 7; ++j) {
      float s = static_cast<float>(a.v[i]) * static_cast<float>(b.v[j]);
      s = s + static_cast<float>(c.v[i * 7 + j]);
      ref[i * 7 + j] = s > 0 ? static_cast<float>(std::exp(static_cast<double>(s))) * 2.0f : -s;
    }
  EXPECT_TRUE(tt::all_close(fused, ref, tt::Tol{1e-6, 1e-7}));
}

// A chain of every vectorised unary op and of binary ops with a scalar on either
// side runs in registers on the CPU (one pass per tile); it must equal the
// op-by-op result bit for bit, at lengths with and without a vector tail and for
// an output large enough for non-temporal stores (>= 32 MiB).
TEST_P(Fusion, RegisterChainsOfEveryStepKindMatchUnfused) {
  auto f = [](Tensor x) {
    x = 3.0 - x * 0.75;
    x = exp(x / 4.0);
    x = log(x + 1.0);
    x = sigmoid(2.0 * x);
    x = sqrt(x);
    x = silu(x - 0.1);
    x = gelu(x, true);
    x = tanh(x * 3.0);
    x = expm1(x);
    x = log2(1.5 + x);
    x = log10(x * 10.0);
    x = log1p(x);
    return 1.0 / (x / 3.0);
  };
  std::mt19937 rng(11);
  for (DType dt : {DType::Float32, DType::Float64}) {
    for (int64_t n : {int64_t{1}, int64_t{63}, int64_t{64 * 37 + 5}, int64_t{9 << 20}}) {
      if (n > 100000 && dt == DType::Float64) continue;
      auto x = tt::rand_tensor(rng, {n}, dt, -4.0, 4.0);
      Tensor xd = on(x.t);
      f(xd).eval();
      reset_jit_stats();
      Tensor fused = f(xd).eval();
      EXPECT_EQ(jit_stats().fused_kernels, 1u) << dtype_name(dt) << " n=" << n;
      Tensor unfused;
      {
        JitScope off(false);
        unfused = f(xd).eval();
      }
      EXPECT_TRUE(same_values(fused, unfused)) << dtype_name(dt) << " n=" << n;
    }
  }
}

// Every float dtype, with casts inside the chain: fused == unfused bit for bit.
TEST_P(Fusion, MixedDtypesWithCastsMatchUnfused) {
  for (DType dt : {DType::Float16, DType::BFloat16, DType::Float32, DType::Float64}) {
    SCOPED_TRACE(tt::name_of(dt));
    std::mt19937 rng(3);
    auto x = tt::rand_tensor(rng, {1000}, dt, 0.1, 3.0);
    auto n = tt::rand_tensor(rng, {1000}, DType::Int32, -5, 5);
    Tensor X = on(x.t), N = on(n.t);
    auto f = [&] {
      Tensor y = sqrt(X) * 3.0 - log(X);
      Tensor z = y.astype(DType::Float32) + N.astype(DType::Float32);
      return maximum(z, sigmoid(z)).astype(dt).eval();
    };
    reset_jit_stats();
    Tensor fused = f();
    EXPECT_EQ(jit_stats().fused_kernels, 1u);
    Tensor unfused;
    {
      JitScope off(false);
      unfused = f();
    }
    EXPECT_TRUE(same_values(fused, unfused));
  }
}

// A value the user holds is fused into the chain that consumes it (it is not
// written to memory) and stays pending: reading it later computes it. Evaluating
// both together materialises it once and feeds it to the consumer.
TEST_P(Fusion, HeldIntermediates) {
  std::mt19937 rng(5);
  auto x = tt::rand_tensor(rng, {64, 33}, DType::Float32);
  Tensor X = on(x.t);
  std::vector<double> ry(x.v.size()), rz(x.v.size());
  for (size_t i = 0; i < x.v.size(); ++i) {
    float v = static_cast<float>(x.v[i]) * 2.0f + 1.0f;
    ry[i] = v;
    rz[i] = static_cast<float>(std::exp(static_cast<double>(v))) - v * v;
  }
  {
    Tensor y = X * 2.0 + 1.0;   // held
    Tensor z = exp(y) - y * y;  // uses y twice
    reset_jit_stats();
    reset_dispatch_stats();
    z.eval();
    EXPECT_EQ(jit_stats().fused_kernels, 1u);  // mul, add, exp, mul, sub
    EXPECT_EQ(jit_stats().fused_ops, 5u);
    EXPECT_FALSE(y.impl()->evaluated());
    EXPECT_TRUE(tt::all_close(z, rz, tt::Tol{1e-6, 1e-6}));
    EXPECT_TRUE(tt::all_close(y, ry, tt::Tol{0, 0}));  // computed now
  }
  {
    Tensor y = X * 2.0 + 1.0;
    Tensor z = exp(y) - y * y;
    reset_jit_stats();
    reset_dispatch_stats();
    eval({y, z});
    // {mul, add} -> y, then {exp, mul, sub} reading y.
    EXPECT_EQ(jit_stats().fused_kernels, 2u);
    EXPECT_EQ(dispatch_stats().kernels_launched, 2u);
    EXPECT_TRUE(y.impl()->evaluated());
    EXPECT_TRUE(tt::all_close(y, ry, tt::Tol{0, 0}));
    EXPECT_TRUE(tt::all_close(z, rz, tt::Tol{1e-6, 1e-6}));
  }
  {  // A consumer outside the chain also needs the value: it is materialised once.
    Tensor y = X * 2.0 + 1.0;
    Tensor z = exp(y) - y * y;
    Tensor w = sum(y);
    reset_dispatch_stats();
    eval({z, w});
    EXPECT_EQ(dispatch_stats().kernels_launched, 3u);  // y, z, sum
    EXPECT_TRUE(tt::all_close(z, rz, tt::Tol{1e-6, 1e-6}));
  }
}

// A cheap op over materialised values whose consumers are all elementwise (z = x W + b,
// read by gelu(z) and by another chain, as in a layer's forward and backward passes) is
// computed inside both fused groups: no kernel writes z. When a consumer is not
// elementwise, z is written once as before.
TEST_P(Fusion, SharedCheapOpsAreComputedInEachGroup) {
  std::mt19937 rng(9);
  auto x = tt::rand_tensor(rng, {48, 32}, DType::Float32, -1.0, 1.0);
  auto w = tt::rand_tensor(rng, {32, 40}, DType::Float32, -0.3, 0.3);
  auto b = tt::rand_tensor(rng, {40}, DType::Float32, -0.5, 0.5);
  Tensor X = on(x.t), W = on(w.t), B = on(b.t);
  auto outputs = [&] {
    Tensor z = matmul(X, W) + B;
    return std::vector<Tensor>{gelu(z), exp(z) * 0.5 - z};
  };
  std::vector<Tensor> unfused;
  {
    JitScope off(false);
    unfused = outputs();
    eval(unfused);
  }
  outputs();  // constants onto the device
  reset_jit_stats();
  reset_dispatch_stats();
  std::vector<Tensor> fused = outputs();
  eval(fused);
  EXPECT_EQ(jit_stats().fused_kernels, 2u);
  EXPECT_EQ(dispatch_stats().kernels_launched, 3u) << "matmul and two fused groups, none for z";
  for (size_t i = 0; i < fused.size(); ++i) EXPECT_TRUE(same_values(fused[i], unfused[i])) << i;
  {  // A reduction also reads z: z is materialised, the groups read it.
    Tensor z = matmul(X, W) + B;
    std::vector<Tensor> r{gelu(z), exp(z) * 0.5 - z, sum(z)};
    reset_dispatch_stats();
    eval(r);
    EXPECT_EQ(dispatch_stats().kernels_launched, 5u);  // matmul, z, two groups, sum
    EXPECT_TRUE(same_values(r[0], unfused[0]));
    EXPECT_TRUE(same_values(r[1], unfused[1]));
  }
}

// Strided (transposed, sliced) inputs are read in place.
TEST_P(Fusion, StridedInputs) {
  std::mt19937 rng(9);
  auto x = tt::rand_tensor(rng, {40, 50}, DType::Float32);
  Tensor X = on(x.t);
  Tensor xt = transpose(X);  // (50, 40) view
  auto f = [&] { return (xt * 3.0 + 1.0).eval(); };
  Tensor fused = f();
  Tensor unfused;
  {
    JitScope off(false);
    unfused = f();
  }
  EXPECT_TRUE(same_values(fused, unfused));
  std::vector<double> ref(2000);
  for (int i = 0; i < 50; ++i)
    for (int j = 0; j < 40; ++j)
      ref[i * 40 + j] = static_cast<float>(x.v[j * 50 + i]) * 3.0f + 1.0f;
  EXPECT_TRUE(tt::all_close(fused, ref, tt::Tol{0, 0}));
}

TEST_P(Fusion, JitOffRunsEveryOp) {
  std::mt19937 rng(1);
  auto x = tt::rand_tensor(rng, {128}, DType::Float32);
  Tensor X = on(x.t);
  JitScope off(false);
  EXPECT_FALSE(jit_enabled());
  reset_jit_stats();
  chain10(X).eval();
  EXPECT_EQ(jit_stats().fused_kernels, 0u);
}

TEST_P(Fusion, CompileTracesOncePerSignatureAndFolds) {
  std::mt19937 rng(2);
  auto x = tt::rand_tensor(rng, {3, 100}, DType::Float32);
  Tensor X = on(x.t);
  int calls = 0;
  // The captured constant is a pending graph: compile evaluates it once.
  Tensor scale = full({100}, 0.5, DType::Float32, dev_) * 2.02;
  auto f = compile([&](const std::vector<Tensor>& a) {
    ++calls;
    Tensor u = tanh(a[0] * scale + 0.5);
    Tensor v = tanh(a[0] * scale + 0.5);  // same value: merged
    return std::vector<Tensor>{u + v, chain10(a[0])};
  });
  reset_jit_stats();
  auto r1 = f({X});
  auto r2 = f({X});
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(f.traces(), 1);
  const JitStats js = jit_stats();
  EXPECT_EQ(js.traces, 1u);
  EXPECT_EQ(js.compiled_calls, 2u);
  EXPECT_TRUE(same_values(r1[0], r2[0]));
  // Eager reference, and the merged subexpression: 3 ops + add in one kernel.
  Tensor e0 = tanh(X * scale + 0.5);
  EXPECT_TRUE(same_values(r1[0], (e0 + e0).eval()));
  EXPECT_TRUE(same_values(r1[1], chain10(X).eval()));
  // A new shape traces again.
  auto y = tt::rand_tensor(rng, {5, 100}, DType::Float32);
  f({on(y.t)});
  EXPECT_EQ(f.traces(), 2);
  EXPECT_EQ(calls, 2);
}

TEST_P(Fusion, CompileRejectsDataDependentFunctions) {
  auto f = compile([](const std::vector<Tensor>& a) {
    const double s = sum(a[0]).item<double>();
    return std::vector<Tensor>{a[0] * s};
  });
  Tensor X = on(tt::make({1.0, 2.0, 3.0}));
  try {
    f({X});
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_TRUE(tt::starts_with_op(e.what(), "compile"));
  }
  // The engine is still usable.
  EXPECT_DOUBLE_EQ(tt::read1(sum(X)), 6.0);
}

INSTANTIATE_TEST_SUITE_P(Devices, Fusion, ::testing::Values("cpu", "cuda"),
                         [](const auto& info) { return info.param; });

// ---- kernel cache ----

class KernelCache : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tmath_cache_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    const char* old = std::getenv("TMATH_CACHE_DIR");
    had_old_ = old != nullptr;
    if (old) old_ = old;
    ::setenv("TMATH_CACHE_DIR", dir_.c_str(), 1);
    reset_jit_stats();
  }
  void TearDown() override {
    if (had_old_)
      ::setenv("TMATH_CACHE_DIR", old_.c_str(), 1);
    else
      ::unsetenv("TMATH_CACHE_DIR");
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::string old_;
  bool had_old_ = false;
};

TEST_F(KernelCache, RoundTripAndDirectory) {
  EXPECT_EQ(kernel_cache_dir(), dir_.string());
  const std::string key = "engine 1|sm_90|nvrtc 13.0|-O3|kernel text", blob(5000, 'x');
  EXPECT_FALSE(jit::cache_load("test", key).has_value());
  jit::cache_store("test", key, blob);
  auto got = jit::cache_load("test", key);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, blob);
  // No temporary files are left behind.
  int files = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir_))
    if (e.is_regular_file()) {
      ++files;
      EXPECT_EQ(e.path().extension(), ".bin");
    }
  EXPECT_EQ(files, 1);
  // A different key (other arch, compiler or text) misses.
  EXPECT_FALSE(jit::cache_load("test", key + " ").has_value());
}

TEST_F(KernelCache, CorruptAndTruncatedFilesAreRejectedAndDeleted) {
  const std::string key = "k", blob = "0123456789abcdef0123456789abcdef";
  jit::cache_store("test", key, blob);
  const std::string path = jit::cache_path("test", key);
  ASSERT_TRUE(std::filesystem::exists(path));
  {  // flip one byte of the payload
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('#');
  }
  EXPECT_FALSE(jit::cache_load("test", key).has_value());
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(jit_stats().cache_rejected, 1u);
  // Truncated file.
  jit::cache_store("test", key, blob);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 7);
  EXPECT_FALSE(jit::cache_load("test", key).has_value());
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(jit_stats().cache_rejected, 2u);
  // Rebuilt after the rejection.
  jit::cache_store("test", key, blob);
  EXPECT_EQ(jit::cache_load("test", key).value_or(""), blob);
}

TEST_F(KernelCache, OffDisablesIt) {
  ::setenv("TMATH_CACHE_DIR", "off", 1);
  EXPECT_EQ(kernel_cache_dir(), "");
  jit::cache_store("test", "k", "v");
  EXPECT_FALSE(jit::cache_load("test", "k").has_value());
}

}  // namespace

// The planner's pointer map against std::unordered_map: inserts that grow it from
// its smallest size, repeated keys, overwrites and misses.
TEST(PtrMap, MatchesUnorderedMap) {
  std::vector<int64_t> storage(5000);
  std::mt19937 rng(7);
  std::uniform_int_distribution<size_t> pick(0, storage.size() - 1);
  tmath::detail::PtrMap m(1);
  std::unordered_map<const void*, int> ref;
  for (int i = 0; i < 20000; ++i) {
    const void* k = &storage[pick(rng)];
    const int v = i % 1000;
    if (i % 3 == 0) {
      m.set(k, v);
      ref[k] = v;
    } else {
      EXPECT_EQ(m.insert(k, v), ref.emplace(k, v).second);
    }
  }
  EXPECT_EQ(m.size(), ref.size());
  for (const auto& x : storage) {
    auto it = ref.find(&x);
    EXPECT_EQ(m.find(&x), it == ref.end() ? -1 : it->second);
  }
  EXPECT_EQ(m.find(nullptr), -1);
  m.reset(4);
  EXPECT_EQ(m.size(), 0u);
  EXPECT_FALSE(m.contains(&storage[0]));
}
