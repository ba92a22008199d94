// mlx backend: plugin registration, transfers, a device pipeline without host
// round trips, views and partial writes, and the visible fallback for what MLX
// does not run. (Every primitive x dtype runs in tests/backend_ops.) Without the
// plugin (a build without MLX) the device tests skip and say why.
#include <cstdio>

#include "backend_util.h"
#include "test_util.h"
#include "tmath/linalg.h"
#include "tmath/random.h"

using namespace tmath;

namespace {

const Device kMlx(DeviceType::MLX, 0);

bool mlx_ok() { return tt::backend_ok("mlx"); }
std::string mlx_reason() { return tt::backend_reason("mlx"); }

#define REQUIRE_MLX() \
  if (!mlx_ok()) GTEST_SKIP() << "no mlx backend: " << mlx_reason()

// Runs the test body with the mlx backend first and fallbacks allowed (not logged).
class MlxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_ = backend_priority();
    policy_ = fallback_policy();
    set_fallback_policy(FallbackPolicy::Allow);
  }
  void TearDown() override {
    set_backend_priority(saved_);
    set_fallback_policy(policy_);
  }
  std::vector<std::string> saved_;
  FallbackPolicy policy_{};
};

}  // namespace

TEST(MlxPlugin, RegisteredWithAvailabilityOrReason) {
  auto b = get_backend("mlx");
  ASSERT_NE(b, nullptr) << "the plugin loader registers an mlx entry in every build";
  EXPECT_EQ(b->device_type(), DeviceType::MLX);
  EXPECT_EQ(Device("mlx"), kMlx);
  EXPECT_EQ(kMlx.str(), "mlx");
  const BackendInfo info = b->info();
  if (b->available()) {
    ASSERT_FALSE(info.libraries.empty());
    EXPECT_EQ(info.libraries[0].first, "libmlx");
    EXPECT_FALSE(info.libraries[0].second.empty());
    EXPECT_FALSE(info.devices.empty());
  } else {
    EXPECT_FALSE(info.reason.empty()) << "an unavailable backend must say why";
    std::printf("[mlx] unavailable: %s\n", info.reason.c_str());
    TT_EXPECT_THROW_OP(tt::make({1, 2, 3}).to(kMlx).eval(), DeviceError, "");
  }
}

TEST_F(MlxTest, TransfersRoundTripEveryDtypeAndAreCounted) {
  REQUIRE_MLX();
  std::mt19937 rng(1);
  for (DType dt : tt::all_dtypes()) {
    Tensor h = tt::rand_tensor(rng, {3, 5}, dt).t;
    const auto s0 = memory_stats(kMlx);
    Tensor d = h.to(kMlx).eval();
    const auto s1 = memory_stats(kMlx);
    EXPECT_EQ(s1.host_to_device_copies, s0.host_to_device_copies + 1) << tt::name_of(dt);
    // Back to the cpu: MLX's CPU memory is lent, not copied.
    Tensor back = d.to(kCPU).eval();
    EXPECT_EQ(memory_stats(kMlx).device_to_host_copies, s1.device_to_host_copies);
    EXPECT_TRUE(tt::all_close_c(back, tt::read_c(h), {0, 0})) << tt::name_of(dt);
  }
}

// A 100-op pipeline stays in MLX: one upload, one read, no fallback, no other copy.
TEST_F(MlxTest, PipelineMakesNoHostRoundTrips) {
  REQUIRE_MLX();
  set_backend_priority({"mlx"});
  std::vector<double> v(64 * 64);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.1 * double(i));
  Tensor x = tt::make(v, {64, 64}, float32).to(kMlx).eval();
  Tensor w = tt::make(v, {64, 64}, float32).to(kMlx).eval();
  auto pipeline = [&] {
    Tensor y = x;
    for (int i = 0; i < 25; ++i) y = tanh(matmul(y, w) * 0.05 + x) - 0.01;  // 4 ops each
    return y.eval();
  };
  (void)pipeline();  // the scalar constants move to the device once and stay cached
  const auto s0 = memory_stats(kMlx);
  reset_dispatch_stats();
  Tensor y = pipeline();
  const auto s1 = memory_stats(kMlx);
  EXPECT_EQ(dispatch_stats().fallbacks, 0u);
  EXPECT_EQ(s1.host_to_device_copies, s0.host_to_device_copies);
  EXPECT_EQ(s1.device_to_host_copies, s0.device_to_host_copies);
  // Same result as the cpu backend.
  Tensor xc = x.to(kCPU), wc = w.to(kCPU);
  Tensor yc = xc;
  for (int i = 0; i < 25; ++i) yc = tanh(matmul(yc, wc) * 0.05 + xc) - 0.01;
  EXPECT_TRUE(tt::all_close(y.to(kCPU), tt::read(yc), {1e-4, 1e-5}));
}

TEST_F(MlxTest, ViewsBroadcastsAndPartialWrites) {
  REQUIRE_MLX();
  set_backend_priority({"mlx"});
  Tensor a = tt::make({1, 2, 3, 4, 5, 6}, {2, 3}, float32).to(kMlx);
  Tensor b = tt::make({10, 20, 30}, {3}, float32).to(kMlx);
  EXPECT_TRUE(tt::all_equal(a + b, {11, 22, 33, 14, 25, 36}));               // broadcast
  EXPECT_TRUE(tt::all_equal(transpose(a) * 2.0, {2, 8, 4, 10, 6, 12}));      // strided view
  EXPECT_TRUE(tt::all_equal(slice(a, 1, 1, 3) + 0.0, {2, 3, 5, 6}));         // offset view
  EXPECT_TRUE(tt::all_equal(concatenate({a, a}, 0), {1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}));
  EXPECT_TRUE(tt::all_equal(astype(a, int32) + 1, {2, 3, 4, 5, 6, 7}));
  EXPECT_TRUE(tt::all_equal(sum(a, std::vector<int>{1}), {6, 15}));
  EXPECT_TRUE(tt::all_equal(argmax(a, 1), {2, 2}));
  Tensor c = tt::make_c({{1, 2}, {3, -4}}, {2}, complex128).to(kMlx);
  EXPECT_TRUE(tt::all_close_c(c * 2.0, {{2, 4}, {6, -8}}, {0, 0}));  // fallback, same device
  EXPECT_EQ((c * 2.0).device(), kMlx);
}

// What MLX does not run (Philox random streams, linear algebra) goes through the
// counted fallback, and TMATH_FALLBACK=error refuses it.
TEST_F(MlxTest, UnclaimedOpsFallBackVisibly) {
  REQUIRE_MLX();
  set_backend_priority({"mlx"});
  Tensor a = tt::make({4, 1, 1, 3}, {2, 2}, float32).to(kMlx);
  reset_dispatch_stats();
  Tensor inv_a = linalg::inv(a);
  EXPECT_TRUE(tt::all_close(inv_a, {3.0 / 11, -1.0 / 11, -1.0 / 11, 4.0 / 11}, {1e-6, 1e-6}));
  EXPECT_EQ(inv_a.device(), kMlx);
  EXPECT_GE(dispatch_stats().fallbacks, 1u);
  set_fallback_policy(FallbackPolicy::Error);
  EXPECT_THROW(random::normal(random::key(1), {4}, float32, 0.0, 1.0, kMlx).eval(),
               UnsupportedError);
}

TEST_F(MlxTest, FusedChainsRunThroughMlxCompile) {
  REQUIRE_MLX();
  // chain10 (15 elementwise ops) on mlx is one fused program, run as one MLX function
  // through mx::compile; it matches the same chain op by op and float64 arithmetic.
  const std::vector<double> xs = {-2.0, -0.75, 0.0, 0.3, 1.5, 4.0};
  Tensor x = tt::make(xs, {2, 3}, float32).to(kMlx).eval();
  auto chain = [](Tensor y) {
    for (int i = 0; i < 5; ++i) y = tanh(y * 1.01 + 0.5);
    return y;
  };
  reset_jit_stats();
  Tensor fused = chain(x).eval();
  const JitStats js = jit_stats();
  EXPECT_EQ(js.fused_kernels, 1u);
  EXPECT_EQ(js.fused_ops, 15u);
  Tensor unfused;
  {
    JitScope off(false);
    unfused = chain(x).eval();
  }
  std::vector<double> want = xs;
  for (double& v : want)
    for (int i = 0; i < 5; ++i) v = std::tanh(static_cast<double>(static_cast<float>(v * 1.01 + 0.5)));
  EXPECT_TRUE(tt::all_close(fused, want, {1e-6, 1e-7}));
  EXPECT_TRUE(tt::all_close(fused, tt::read(unfused), {1e-6, 1e-7}));
  // A program with a comparison, where and a cast, and a broadcast scalar input.
  Tensor c = where(greater(x, Tensor(0.5f)), x * 2.0f, exp(x)).astype(float16);
  std::vector<double> wc;
  for (double v : xs) wc.push_back(v > 0.5 ? v * 2 : std::exp(static_cast<float>(v)));
  EXPECT_TRUE(tt::all_close(c, wc, tt::tol_for(float16)));
  EXPECT_EQ(c.device(), kMlx);
}
