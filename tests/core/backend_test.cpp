// Backend registry, selection, priority, dispatch statistics and fallback policy.
#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include "test_util.h"

using namespace tmath;

namespace {

// A backend that owns no kernels of its own except float32 Neg; everything else it
// is asked to do is forwarded to the CPU backend (so it can also own CPU memory).
class NegOnlyBackend : public Backend {
 public:
  NegOnlyBackend(std::string name, std::shared_ptr<Backend> cpu, bool avail = true)
      : name_(std::move(name)), cpu_(std::move(cpu)), avail_(avail) {}
  std::string_view name() const override { return name_; }
  DeviceType device_type() const override { return DeviceType::CPU; }
  BackendInfo info() const override {
    BackendInfo i;
    i.name = name_;
    i.available = avail_;
    i.devices = {"cpu"};
    return i;
  }
  bool available() const override { return avail_; }
  bool supports(OpCode op, DType dt) const override {
    return op == OpCode::Neg && dt == DType::Float32;
  }
  Allocator& allocator(Device d) override { return cpu_->allocator(d); }
  void copy_from_host(const void* src, const ArrayRef& dst) override {
    cpu_->copy_from_host(src, dst);
  }
  void copy_to_host(const ArrayRef& src, void* dst) override { cpu_->copy_to_host(src, dst); }
  void unary(OpCode op, const ArrayRef& x, const ArrayRef& out) override {
    if (op != OpCode::Neg || x.dtype != DType::Float32 || out.dtype != DType::Float32) {
      ++foreign_calls;
      cpu_->unary(op, x, out);
      return;
    }
    ++neg_calls;
    const int64_t n = out.size();
    const int nd = x.ndim();
    std::vector<int64_t> idx(nd, 0);
    for (int64_t i = 0; i < n; ++i) {
      int64_t off = 0;
      for (int d = 0; d < nd; ++d) off += idx[d] * x.strides[d];
      out.ptr<float>()[i] = -x.ptr<float>()[off];
      for (int d = nd - 1; d >= 0; --d) {
        if (++idx[d] < x.shape[d]) break;
        idx[d] = 0;
      }
    }
  }
  void binary(OpCode op, const ArrayRef& a, const ArrayRef& b, const ArrayRef& out) override {
    ++foreign_calls;
    cpu_->binary(op, a, b, out);
  }
  void where(const ArrayRef& c, const ArrayRef& a, const ArrayRef& b,
             const ArrayRef& out) override {
    cpu_->where(c, a, b, out);
  }
  void copy(const ArrayRef& src, const ArrayRef& dst) override { cpu_->copy(src, dst); }
  void fill(const ArrayRef& out, Scalar v) override { cpu_->fill(out, v); }
  void arange(const ArrayRef& out, double start, double step) override {
    cpu_->arange(out, start, step);
  }
  void reduce(OpCode op, const ArrayRef& x, std::span<const int> axes,
              const ArrayRef& out) override {
    ++foreign_calls;
    cpu_->reduce(op, x, axes, out);
  }
  void arg_reduce(OpCode op, const ArrayRef& x, int axis, const ArrayRef& out) override {
    cpu_->arg_reduce(op, x, axis, out);
  }
  void scan(OpCode op, const ArrayRef& x, int axis, const ArrayRef& out) override {
    cpu_->scan(op, x, axis, out);
  }
  void softmax(OpCode op, const ArrayRef& x, const ArrayRef& out) override {
    cpu_->softmax(op, x, out);
  }
  void layer_norm(const ArrayRef& x, const ArrayRef& w, const ArrayRef& b,
                  const LayerNormArgs& args, const ArrayRef& out) override {
    cpu_->layer_norm(x, w, b, args, out);
  }
  void matmul(const ArrayRef& a, const ArrayRef& b, const ArrayRef& out,
              const MatmulOptions& o) override {
    ++foreign_calls;
    cpu_->matmul(a, b, out, o);
  }
  void take(OpCode op, const ArrayRef& x, const ArrayRef& idx, int axis,
            const ArrayRef& out) override {
    cpu_->take(op, x, idx, axis, out);
  }
  void random(OpCode op, const RandomArgs& args, const ArrayRef& out) override {
    cpu_->random(op, args, out);
  }

  std::atomic<int> neg_calls{0}, foreign_calls{0};

 private:
  std::string name_;
  std::shared_ptr<Backend> cpu_;
  bool avail_;
};

// NegOnlyBackend with 2 ms added to every Neg: a backend the cost model must learn to
// avoid although it is first in priority order.
class SlowNegBackend : public NegOnlyBackend {
 public:
  using NegOnlyBackend::NegOnlyBackend;
  void unary(OpCode op, const ArrayRef& x, const ArrayRef& out) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    NegOnlyBackend::unary(op, x, out);
  }
};

// Restores the registry and policies whatever a test does.
class BackendRegistry : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_order_ = backend_priority();
    saved_policy_ = fallback_policy();
    cpu_ = get_backend("cpu");
    ASSERT_NE(cpu_, nullptr);
  }
  void TearDown() override {
    for (const char* n : {"test_neg", "test_neg_off", "test_dup", "fake_cuda", "test_slow_neg"})
      unregister_backend(n);
    set_backend_priority(saved_order_);
    set_fallback_policy(saved_policy_);
    set_selection_policy(saved_selection_);
    reset_cost_table();
  }
  std::vector<std::string> saved_order_;
  FallbackPolicy saved_policy_{};
  SelectionPolicy saved_selection_ = selection_policy();
  std::shared_ptr<Backend> cpu_;
};

}  // namespace

TEST(Backend, CpuIsRegisteredAndAvailable) {
  bool found = false;
  for (const auto& b : backends()) {
    ASSERT_NE(b, nullptr);
    if (b->name() == "cpu") {
      found = true;
      EXPECT_TRUE(b->available());
      EXPECT_EQ(b->device_type(), DeviceType::CPU);
      BackendInfo info = b->info();
      EXPECT_EQ(info.name, "cpu");
      EXPECT_TRUE(info.built);
      EXPECT_TRUE(info.available);
      EXPECT_GE(info.threads, 1);
      EXPECT_FALSE(info.libraries.empty()) << "BLAS library and version expected";
    }
  }
  EXPECT_TRUE(found) << "backends() has no \"cpu\"";
  auto cpu = get_backend("cpu");
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(get_backend("no_such_backend"), nullptr);
  EXPECT_EQ(select_backend(OpCode::Add, float32, kCPU), cpu.get());
  EXPECT_EQ(select_backend(OpCode::Matmul, float64, kCPU), cpu.get());
  EXPECT_EQ(select_backend(OpCode::Exp, float32, kCPU), cpu.get());
  // The CPU backend claims the core float kernels.
  for (OpCode op : {OpCode::Add, OpCode::Exp, OpCode::Sum, OpCode::Matmul, OpCode::Copy})
    for (DType dt : {float32, float64}) EXPECT_TRUE(cpu->supports(op, dt)) << op_name(op);
}

TEST(Backend, OpMetadata) {
  EXPECT_EQ(op_name(OpCode::Add), "Add");
  EXPECT_EQ(op_name(OpCode::Neg), "Neg");
  EXPECT_EQ(op_name(OpCode::RandomNormal), "RandomNormal");
  EXPECT_TRUE(is_unary(OpCode::Tanh));
  EXPECT_FALSE(is_unary(OpCode::Add));
  EXPECT_TRUE(is_binary(OpCode::Hypot));
  EXPECT_FALSE(is_binary(OpCode::Sum));
  EXPECT_TRUE(is_reduce(OpCode::All));
  EXPECT_FALSE(is_reduce(OpCode::ArgMax));
  EXPECT_TRUE(is_predicate(OpCode::Less));
  EXPECT_TRUE(is_predicate(OpCode::LogicalXor));
  EXPECT_FALSE(is_predicate(OpCode::Add));
  int unary = 0, binary = 0, reduce = 0;
  for (int i = 0; i < kNumOpCodes; ++i) {
    auto op = static_cast<OpCode>(i);
    unary += is_unary(op);
    binary += is_binary(op);
    reduce += is_reduce(op);
    EXPECT_FALSE(op_name(op).empty());
  }
#define TT_COUNT(x) +1
  EXPECT_EQ(unary, 0 TMATH_UNARY_OPS(TT_COUNT));
  EXPECT_EQ(binary, 0 TMATH_BINARY_OPS(TT_COUNT));
  EXPECT_EQ(reduce, 0 TMATH_REDUCE_OPS(TT_COUNT));
#undef TT_COUNT
}

TEST_F(BackendRegistry, PriorityPicksRegisteredBackendForItsOpsOnly) {
  auto neg_be = std::make_shared<NegOnlyBackend>("test_neg", cpu_);
  register_backend(neg_be);
  ASSERT_EQ(get_backend("test_neg"), neg_be);
  set_backend_priority({"test_neg", "cpu"});
  EXPECT_EQ(backend_priority().front(), "test_neg");
  EXPECT_EQ(select_backend(OpCode::Neg, float32, kCPU), neg_be.get());
  EXPECT_EQ(select_backend(OpCode::Neg, float64, kCPU), cpu_.get()) << "unsupported dtype";
  EXPECT_EQ(select_backend(OpCode::Add, float32, kCPU), cpu_.get()) << "unsupported op";

  EagerScope lazy(false);
  Tensor x = tt::make({1.5, -2.0, 3.25, 0.0}, float32);
  x.eval();
  reset_dispatch_stats();
  Tensor y = neg(x);
  y.eval();
  EXPECT_EQ(neg_be->neg_calls.load(), 1) << "Neg float32 did not dispatch to the test backend";
  EXPECT_TRUE(tt::all_equal(y, {-1.5, 2.0, -3.25, 0.0}));
  const auto st = dispatch_stats();
  EXPECT_GE(st.nodes_evaluated, 1u);
  EXPECT_GE(st.kernels_launched, 1u);
  EXPECT_GE(st.graph_evals, 1u);
  EXPECT_EQ(st.fallbacks, 0u);
  // Strided input reaches the kernel as a view.
  Tensor m = tt::make({1, 2, 3, 4, 5, 6}, {2, 3}, float32);
  EXPECT_TRUE(tt::all_equal(neg(transpose(m)), {-1, -4, -2, -5, -3, -6}));
  EXPECT_EQ(neg_be->neg_calls.load(), 2);
  // float64 and other ops still run on the CPU backend.
  EXPECT_TRUE(tt::all_equal(neg(tt::make({2.0}, {1}, float64)), {-2.0}));
  EXPECT_TRUE(tt::all_equal(x + x, {3.0, -4.0, 6.5, 0.0}));
  EXPECT_EQ(neg_be->neg_calls.load(), 2);
  EXPECT_EQ(neg_be->foreign_calls.load(), 0) << "ops it does not support were sent to it";

  // Back to cpu first: the test backend is no longer used.
  set_backend_priority({"cpu", "test_neg"});
  EXPECT_EQ(select_backend(OpCode::Neg, float32, kCPU), cpu_.get());
  EXPECT_TRUE(tt::all_equal(neg(x), {-1.5, 2.0, -3.25, 0.0}));
  EXPECT_EQ(neg_be->neg_calls.load(), 2);

  unregister_backend("test_neg");
  EXPECT_EQ(get_backend("test_neg"), nullptr);
  set_backend_priority({"test_neg"});
  EXPECT_EQ(select_backend(OpCode::Neg, float32, kCPU), cpu_.get());
}

TEST_F(BackendRegistry, UnavailableBackendIsNeverSelected) {
  auto off = std::make_shared<NegOnlyBackend>("test_neg_off", cpu_, /*avail=*/false);
  register_backend(off);
  set_backend_priority({"test_neg_off"});
  EXPECT_EQ(select_backend(OpCode::Neg, float32, kCPU), cpu_.get());
  EXPECT_TRUE(tt::all_equal(neg(tt::make({1.0})), {-1.0}));
  EXPECT_EQ(off->neg_calls.load(), 0);
}

TEST_F(BackendRegistry, SameNameReplaces) {
  auto a = std::make_shared<NegOnlyBackend>("test_dup", cpu_);
  auto b = std::make_shared<NegOnlyBackend>("test_dup", cpu_);
  register_backend(a);
  register_backend(b);
  int count = 0;
  for (const auto& x : backends()) count += x->name() == "test_dup";
  EXPECT_EQ(count, 1);
  EXPECT_EQ(get_backend("test_dup"), b);
  set_backend_priority({"test_dup"});
  EXPECT_EQ(select_backend(OpCode::Neg, float32, kCPU), b.get());
}

TEST_F(BackendRegistry, FallbackPolicySetters) {
  for (auto p : {FallbackPolicy::Allow, FallbackPolicy::Warn, FallbackPolicy::Error}) {
    set_fallback_policy(p);
    EXPECT_EQ(fallback_policy(), p);
  }
  // CPU ops never need a fallback, whatever the policy.
  set_fallback_policy(FallbackPolicy::Error);
  reset_dispatch_stats();
  EXPECT_TRUE(tt::all_close(tmath::exp(tt::make({0.0, 1.0}, float32)), {1.0, std::exp(1.0)}));
  EXPECT_EQ(dispatch_stats().fallbacks, 0u);
}

namespace {
// A stand-in accelerator: a "CUDA" device whose memory is host memory and whose
// only kernels are Fill, Copy and Add (float32). Everything else must fall back.
class FakeCudaBackend : public NegOnlyBackend {
 public:
  explicit FakeCudaBackend(std::shared_ptr<Backend> cpu)
      : NegOnlyBackend("fake_cuda", cpu), cpu2_(std::move(cpu)) {}
  DeviceType device_type() const override { return DeviceType::CUDA; }
  BackendInfo info() const override {
    BackendInfo i;
    i.name = "fake_cuda";
    i.devices = {"cuda:0"};
    return i;
  }
  bool supports(OpCode op, DType dt) const override {
    return (op == OpCode::Fill || op == OpCode::Copy || op == OpCode::Add) && dt == float32;
  }
  Allocator& allocator(Device) override { return cpu2_->allocator(kCPU); }
  void copy_from_host(const void* src, const ArrayRef& dst) override {
    ++h2d;
    ArrayRef d = dst;
    d.device = kCPU;
    cpu2_->copy_from_host(src, d);
  }
  void copy_to_host(const ArrayRef& src, void* dst) override {
    ++d2h;
    ArrayRef s = src;
    s.device = kCPU;
    cpu2_->copy_to_host(s, dst);
  }
  std::atomic<int> h2d{0}, d2h{0};

 private:
  std::shared_ptr<Backend> cpu2_;
};
}  // namespace

TEST_F(BackendRegistry, CrossDeviceFallbackFollowsPolicy) {
  for (const auto& b : backends())
    if (b->device_type() == DeviceType::CUDA && b->available())
      GTEST_SKIP() << "a real CUDA backend is available; the fake device test needs none";
  auto fake = std::make_shared<FakeCudaBackend>(cpu_);
  register_backend(fake);
  const Device dev("cuda:0");
  Tensor x = tt::make({0.0, 1.0, 2.0}, float32).to(dev);
  x.eval();
  EXPECT_EQ(x.device(), dev);
  EXPECT_GE(fake->h2d.load(), 1);
  // Supported on the device: no fallback.
  reset_dispatch_stats();
  Tensor s = x + x;
  s.eval();
  EXPECT_EQ(s.device(), dev);
  EXPECT_EQ(dispatch_stats().fallbacks, 0u);
  EXPECT_TRUE(tt::all_equal(s, {0, 2, 4}));
  // Not supported there: runs on the CPU with copies, counted, result back on the device.
  set_fallback_policy(FallbackPolicy::Allow);
  reset_dispatch_stats();
  Tensor e = tmath::exp(x);
  e.eval();
  EXPECT_EQ(e.device(), dev);
  EXPECT_GE(dispatch_stats().fallbacks, 1u);
  EXPECT_TRUE(tt::all_close(e, {1.0, std::exp(1.0), std::exp(2.0)}));
  // Warn: same result (a one-time log line).
  set_fallback_policy(FallbackPolicy::Warn);
  EXPECT_TRUE(tt::all_close(tmath::tanh(x), {0.0, std::tanh(1.0), std::tanh(2.0)}));
  // Error: UnsupportedError naming the op; the input stays usable.
  set_fallback_policy(FallbackPolicy::Error);
  try {
    Tensor bad = tmath::sin(x);
    bad.eval();
    ADD_FAILURE() << "fallback policy 'error' did not raise";
  } catch (const UnsupportedError& err) {
    EXPECT_TRUE(tt::starts_with_bracket(err.what()));
  }
  EXPECT_TRUE(tt::all_equal(x, {0, 1, 2}));
  EXPECT_TRUE(tt::all_equal(x + x, {0, 2, 4}));
  set_fallback_policy(FallbackPolicy::Allow);
  unregister_backend("fake_cuda");
}

// SelectionPolicy::Cost: each candidate runs kCostSamples timed calls per size class,
// then the measured cheapest takes every later call; Priority ignores the measurements.
TEST_F(BackendRegistry, CostPolicyLearnsToAvoidASlowBackend) {
  auto slow = std::make_shared<SlowNegBackend>("test_slow_neg", cpu_);
  register_backend(slow);
  set_backend_priority({"test_slow_neg", "cpu"});
  EagerScope lazy(false);
  Tensor x = tt::make({1.5, -2.0, 3.25, 0.0}, float32);
  x.eval();

  set_selection_policy(SelectionPolicy::Priority);
  EXPECT_TRUE(tt::all_equal(neg(x), {-1.5, 2.0, -3.25, 0.0}));
  EXPECT_EQ(slow->neg_calls.load(), 1) << "priority: the first listed backend runs Neg";

  set_selection_policy(SelectionPolicy::Cost);
  EXPECT_EQ(selection_policy(), SelectionPolicy::Cost);
  reset_cost_table();
  reset_dispatch_stats();
  for (int i = 0; i < 12; ++i)
    ASSERT_TRUE(tt::all_equal(neg(x), {-1.5, 2.0, -3.25, 0.0})) << "call " << i;
  EXPECT_EQ(slow->neg_calls.load(), 1 + kCostSamples) << "only its calibration runs";
  EXPECT_EQ(dispatch_stats().cost_calibrations, uint64_t(2 * kCostSamples));
  // The table: both measured, the slow one at >= 2 ms, cpu chosen.
  const auto table = cost_table();
  const CostEntry* e = nullptr;
  for (const auto& row : table)
    if (row.op == "neg" && row.dtype == "float32" && row.device == "cpu" && row.size_class == 2)
      e = &row;
  ASSERT_NE(e, nullptr) << "no cost-table row for neg float32 (4 elements: class 2^2)";
  ASSERT_EQ(e->ms.size(), 2u);
  EXPECT_EQ(e->ms[0].first, "test_slow_neg");
  EXPECT_EQ(e->ms[1].first, "cpu");
  EXPECT_GE(e->ms[0].second, 2.0);
  EXPECT_LT(e->ms[1].second, e->ms[0].second);
  EXPECT_EQ(e->chosen, "cpu");

  // Another size class is measured on its own; an op with one candidate never is.
  Tensor big = full({1000}, 2.0, float32);
  big.eval();
  for (int i = 0; i < 2 * kCostSamples + 2; ++i) neg(big).eval();
  EXPECT_EQ(slow->neg_calls.load(), 1 + 2 * kCostSamples);
  EXPECT_TRUE(tt::all_equal(x + x, {3.0, -4.0, 6.5, 0.0}));
  EXPECT_EQ(dispatch_stats().cost_calibrations, uint64_t(4 * kCostSamples));

  // Forgetting the table calibrates again; back to Priority, the slow one runs again.
  reset_cost_table();
  EXPECT_TRUE(cost_table().empty());
  set_selection_policy(SelectionPolicy::Priority);
  (void)neg(x).eval();
  EXPECT_EQ(slow->neg_calls.load(), 2 + 2 * kCostSamples);
}
