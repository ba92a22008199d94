// Every exception kind, message format ("[op] ..."), and inputs left intact after a failure.
#include "test_util.h"

using namespace tmath;
using tt::make;

namespace {
// Evaluates inside the statement so data-dependent errors surface too.
void force(const Tensor& t) {
  t.eval();
}
}  // namespace

TEST(Errors, HierarchyDerivesFromError) {
  EXPECT_THROW(throw ShapeError("[x] y"), Error);
  EXPECT_THROW(throw DTypeError("[x] y"), Error);
  EXPECT_THROW(throw DeviceError("[x] y"), Error);
  EXPECT_THROW(throw UnsupportedError("[x] y"), Error);
  EXPECT_THROW(throw OutOfMemoryError("[x] y"), Error);
  EXPECT_THROW(throw LinAlgError("[x] y"), Error);
  EXPECT_THROW(throw ValueError("[x] y"), Error);
  EXPECT_THROW(throw Error("[x] y"), std::runtime_error);
}

TEST(Errors, ShapeErrorMismatchedBroadcast) {
  Tensor a = zeros({2, 3}), b = zeros({4});
  TT_EXPECT_THROW_OP(add(a, b), ShapeError, "add");
  TT_EXPECT_THROW_OP(a * b, ShapeError, "multiply");
  TT_EXPECT_THROW_OP(broadcast_to(a, {3, 3}), ShapeError, "broadcast_to");
  TT_EXPECT_THROW_OP(broadcast_to(a, {3}), ShapeError, "broadcast_to");
  EXPECT_THROW(broadcast_shapes({2, 3}, {3, 2}), ShapeError);
  TT_EXPECT_THROW_OP(where(zeros({5}, bool_), a, a), ShapeError, "where");
  TT_EXPECT_THROW_OP(maximum(zeros({2}), zeros({3})), ShapeError, "maximum");
  TT_EXPECT_THROW_OP(less(zeros({2}), zeros({3})), ShapeError, "less");
}

TEST(Errors, ShapeErrorMatmul) {
  Tensor a = zeros({3, 4}), b = zeros({5, 6});
  try {
    matmul(a, b);
    ADD_FAILURE() << "matmul did not throw";
  } catch (const ShapeError& e) {
    const std::string msg = e.what();
    EXPECT_TRUE(tt::starts_with_op(msg, "matmul"));
    EXPECT_NE(msg.find("(3,4)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(5,6)"), std::string::npos) << msg;
  }
  TT_EXPECT_THROW_OP(matmul(zeros({2, 3, 4}), zeros({3, 4, 5})), ShapeError, "matmul");
  TT_EXPECT_THROW_OP(matmul(zeros({3}), zeros({4})), ShapeError, "matmul");
  TT_EXPECT_THROW_OP(matmul(zeros({}), zeros({4})), ShapeError, "matmul");
  TT_EXPECT_THROW_OP(tensordot(zeros({3, 4}), zeros({5, 6}), 1), ShapeError, "tensordot");
  EXPECT_THROW(einsum("ij,jk->ik", {zeros({2, 3}), zeros({4, 5})}), ShapeError);
  EXPECT_THROW(einsum("ij,jk->ik", {zeros({2, 3})}), Error);
  EXPECT_THROW(einsum("ij->ijk", {zeros({2, 3})}), Error);
}

TEST(Errors, ShapeErrorBadAxes) {
  Tensor a = zeros({2, 3});
  TT_EXPECT_THROW_OP(sum(a, {2}), ShapeError, "sum");
  TT_EXPECT_THROW_OP(sum(a, {-3}), ShapeError, "sum");
  EXPECT_THROW(sum(a, {0, 0}), ShapeError);
  TT_EXPECT_THROW_OP(mean(a, {5}), ShapeError, "mean");
  TT_EXPECT_THROW_OP(argmax(a, 2), ShapeError, "argmax");
  TT_EXPECT_THROW_OP(cumsum(a, -3), ShapeError, "cumsum");
  TT_EXPECT_THROW_OP(softmax(a, 2), ShapeError, "softmax");
  TT_EXPECT_THROW_OP(transpose(a, {0, 0}), ShapeError, "transpose");
  TT_EXPECT_THROW_OP(transpose(a, {0}), ShapeError, "transpose");
  EXPECT_THROW(permute(a, {0, 2}), ShapeError);
  EXPECT_THROW(swapaxes(a, 0, 2), ShapeError);
  EXPECT_THROW(expand_dims(a, 4), ShapeError);
  TT_EXPECT_THROW_OP(squeeze(a, Axes{0}), ShapeError, "squeeze");  // size 2, not 1
  EXPECT_THROW(flip(a, Axes{3}), ShapeError);
  EXPECT_THROW(concatenate({a, zeros({2, 4})}, 0), ShapeError);
  EXPECT_THROW(concatenate({a, a}, 2), ShapeError);
  EXPECT_THROW(stack({a, zeros({3, 2})}), ShapeError);
  EXPECT_THROW(slice(a, 2, 0, 1), ShapeError);
  EXPECT_THROW(a.shape(2), ShapeError);
  EXPECT_THROW(layer_norm(zeros({2, 3}), zeros({4})), ShapeError);
  EXPECT_THROW(pad(a, {{1, 1}, {1, 1}, {1, 1}}), Error);
}

TEST(Errors, ShapeErrorBadReshape) {
  Tensor a = zeros({2, 3});
  TT_EXPECT_THROW_OP(a.reshape({4, 2}), ShapeError, "reshape");
  TT_EXPECT_THROW_OP(reshape(a, {-1, -1}), ShapeError, "reshape");
  TT_EXPECT_THROW_OP(reshape(a, {4, -1}), ShapeError, "reshape");
  EXPECT_THROW(reshape(a, {7}), ShapeError);
}

TEST(Errors, ShapeErrorIndexing) {
  Tensor a = make({1, 2, 3, 4, 5, 6}, {2, 3}, float32);
  EXPECT_THROW(a[2], ShapeError);
  EXPECT_THROW(a[-3], ShapeError);
  EXPECT_THROW(a.index({0, 0, 0}), ShapeError);
  EXPECT_THROW(a.index({ellipsis, 0, ellipsis}), Error);
  EXPECT_THROW(a.index({Slice(0, 2, 0)}), Error);  // zero step
  // Out-of-bounds take indices: may throw at construction or at eval.
  TT_EXPECT_THROW_OP(force(take(a, make({0, 6}, {2}, int64))), ShapeError, "take");
  TT_EXPECT_THROW_OP(force(take(a, make({-7}, {1}, int64))), ShapeError, "take");
  TT_EXPECT_THROW_OP(force(take(a, make({3}, {1}, int64), 1)), ShapeError, "take");
  EXPECT_THROW(force(take_along_axis(a, make({0, 5, 0}, {1, 3}, int64), 1)), ShapeError);
  EXPECT_THROW(force(take_along_axis(a, make({0}, {1}, int64), 1)), ShapeError);  // rank
  EXPECT_THROW(take(a, make({0.5}, {1}, float32)), DTypeError);  // non-integer indices
  // Splitting into unequal sections.
  EXPECT_THROW(split(zeros({5}), 2), Error);
}

TEST(Errors, DTypeErrors) {
  Tensor c = tt::make_c({{1, 1}, {2, -1}}, {2}, complex64);
  TT_EXPECT_THROW_OP(less(c, c), DTypeError, "less");
  TT_EXPECT_THROW_OP(greater_equal(c, c), DTypeError, "greater_equal");
  EXPECT_THROW(c < c, DTypeError);
  EXPECT_THROW(tmath::floor(c), DTypeError);
  EXPECT_THROW(tmath::ceil(c), DTypeError);
  EXPECT_THROW(atan2(c, c), DTypeError);
  EXPECT_THROW(erf(c), DTypeError);
  EXPECT_THROW(tmath::max(c), DTypeError);
  EXPECT_THROW(argmax(c), DTypeError);
  EXPECT_THROW(floor_divide(c, c), DTypeError);
  EXPECT_THROW(remainder(c, c), DTypeError);
  EXPECT_THROW(random::uniform(random::key(0), {3}, int32), DTypeError);
  EXPECT_THROW(random::normal(random::key(0), {3}, int64), DTypeError);
  EXPECT_THROW(random::integers(random::key(0), {3}, 0, 5, float32), DTypeError);
  EXPECT_THROW(dtype_from_name("int128"), DTypeError);
  EXPECT_THROW(AutocastScope bad(int32), Error);
}

TEST(Errors, ValueErrors) {
  TT_EXPECT_THROW_OP(zeros({-1}), ValueError, "zeros");
  TT_EXPECT_THROW_OP(ones({2, -3}), ValueError, "ones");
  EXPECT_THROW(full({-2}, 1.0), ValueError);
  EXPECT_THROW(empty({-5}), ValueError);
  EXPECT_THROW(eye(-1), ValueError);
  EXPECT_THROW(linspace(0, 1, -2), ValueError);
  EXPECT_THROW(arange(0, 10, 0), ValueError);
  EXPECT_THROW(random::uniform(random::key(0), {-1}), ValueError);
  EXPECT_THROW(random::bernoulli(random::key(0), {3}, 1.5), ValueError);
  EXPECT_THROW(random::integers(random::key(0), {3}, 5, 5), ValueError);
  EXPECT_THROW(random::split(random::key(0), -1), ValueError);
  const auto before = matmul_precision();
  TT_EXPECT_THROW_OP(set_matmul_precision("fastest"), ValueError, "");
  EXPECT_THROW(set_matmul_precision("HIGHEST "), ValueError);
  EXPECT_EQ(matmul_precision(), before);
}

TEST(Errors, DeviceErrors) {
  EXPECT_THROW(Device("tpu"), DeviceError);
  EXPECT_THROW(Device("gpu"), DeviceError);
  EXPECT_THROW(Device("cuda:x"), DeviceError);
  EXPECT_THROW(Device("cuda:-1"), DeviceError);
  EXPECT_THROW(Device(""), DeviceError);
  EXPECT_EQ(Device("cpu"), kCPU);
  EXPECT_EQ(Device("cuda:1"), Device(DeviceType::CUDA, 1));
  EXPECT_EQ(Device("cuda"), Device(DeviceType::CUDA, 0));
  EXPECT_EQ(Device("cuda:1").str(), "cuda:1");
  EXPECT_EQ(kCPU.str(), "cpu");
  // A device no available backend serves.
  bool cuda_available = false;
  for (auto& b : backends())
    if (b->device_type() == DeviceType::CUDA && b->available()) cuda_available = true;
  if (!cuda_available) {
    EXPECT_THROW(force(zeros({3}, float32, Device("cuda:0"))), DeviceError);
    EXPECT_THROW(force(make({1, 2}).to(Device("cuda:0"))), DeviceError);
  }
}

TEST(Errors, OutOfMemoryAndRecovery) {
  set_memory_limit(1 << 20);  // 1 MiB
  EXPECT_EQ(memory_stats().limit_bytes, uint64_t{1} << 20);
  bool thrown = false;
  try {
    Tensor big = zeros({1 << 24}, float32);  // 64 MiB
    big.eval();
  } catch (const OutOfMemoryError& e) {
    thrown = true;
    EXPECT_TRUE(tt::starts_with_bracket(e.what()));
    // The message carries the allocator stats.
    EXPECT_NE(std::string(e.what()).find("active"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(thrown) << "no OutOfMemoryError with a 1 MiB limit";
  // Small allocations still work under the limit.
  EXPECT_TRUE(tt::all_equal(ones({16}) + 1, std::vector<double>(16, 2.0)));
  set_memory_limit(0);
  EXPECT_EQ(memory_stats().limit_bytes, 0u);
  Tensor big = ones({1 << 24}, float32);
  EXPECT_EQ(tt::read1(sum(big)), double(1 << 24));
}

TEST(Errors, InputsIntactAfterFailedOp) {
  std::vector<double> av = {1, 2, 3, 4, 5, 6}, bv = {1, 2, 3, 4};
  Tensor a = make(av, {2, 3}, float32), b = make(bv, {4}, float32);
  Tensor lazy_a = a * 1;  // an unevaluated input
  EXPECT_THROW(add(a, b), ShapeError);
  EXPECT_THROW(matmul(lazy_a, b), ShapeError);
  EXPECT_THROW(a.reshape({5}), ShapeError);
  EXPECT_THROW(sum(lazy_a, {3}), ShapeError);
  EXPECT_THROW(force(take(a, make({100}, {1}, int64))), ShapeError);
  EXPECT_TRUE(tt::all_equal(a, av));
  EXPECT_TRUE(tt::all_equal(b, bv));
  EXPECT_TRUE(tt::all_equal(lazy_a, av));
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  // Still usable.
  EXPECT_TRUE(tt::all_equal(a + 1, {2, 3, 4, 5, 6, 7}));
  EXPECT_TRUE(tt::all_equal(b * 2, {2, 4, 6, 8}));
  // After an OOM the inputs are intact too.
  Tensor x = make({1, 2, 3}, float32);
  set_memory_limit(1 << 16);
  EXPECT_THROW(force(broadcast_to(x, {1 << 20, 3}) + 1), OutOfMemoryError);
  set_memory_limit(0);
  EXPECT_TRUE(tt::all_equal(x, {1, 2, 3}));
  EXPECT_TRUE(tt::all_equal(x * x, {1, 4, 9}));
}

TEST(Errors, MessagesNameTheOp) {
  auto msg = [](auto&& fn) -> std::string {
    try {
      fn();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no exception)";
  };
  EXPECT_TRUE(tt::starts_with_op(msg([] { subtract(zeros({2}), zeros({3})); }), "subtract"));
  EXPECT_TRUE(tt::starts_with_op(msg([] {
                                   concatenate({zeros({2}), zeros({2, 1})});
                                 }),
                                 "concatenate"));
  EXPECT_TRUE(tt::starts_with_op(msg([] { reshape(zeros({6}), {4}); }), "reshape"));
  EXPECT_TRUE(tt::starts_with_op(msg([] { prod(zeros({6}), {1}); }), "prod"));
  EXPECT_TRUE(tt::starts_with_bracket(msg([] { dtype_from_name("nope"); })));
  EXPECT_TRUE(tt::starts_with_bracket(msg([] { Device("tpu"); })));
  EXPECT_TRUE(tt::starts_with_bracket(msg([] { zeros({-1}); })));
}
