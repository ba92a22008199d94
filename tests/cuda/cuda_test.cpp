// CUDA backend: plugin registration, transfers, every kernel family against the
// CPU backend, matmul against float64 CPU results, Philox streams bit-identical
// to the CPU, allocator statistics and a device pipeline with no host copies.
// Without a usable CUDA device every device test skips and says why.
#include <functional>
#include <map>
#include <set>

#include "core/dispatch.h"
#include "int_reduce_util.h"
#include "test_util.h"
#include "tmath/autodiff.h"
#include "tmath/linalg.h"

using namespace tmath;
using tt::cplx;
using tt::Tol;

namespace {

const Device kGPU(DeviceType::CUDA, 0);

std::string cuda_reason() {
  auto b = get_backend("cuda");
  if (!b) return "no cuda backend registered";
  std::string r = b->info().reason;
  return r.empty() ? "unavailable" : r;
}

bool cuda_ok() {
  auto b = get_backend("cuda");
  return b && b->available();
}

#define REQUIRE_CUDA() \
  if (!cuda_ok()) GTEST_SKIP() << "no CUDA device: " << cuda_reason()

bool cpu_has(OpCode op, DType dt) {
  return get_backend("cpu")->supports(op, dt);
}
bool gpu_has(OpCode op, DType dt) {
  return get_backend("cuda")->supports(op, dt);
}

Tol gpu_tol(DType dt) {
  switch (dt) {
    case DType::Float16:
      return {2e-2, 2e-3};
    case DType::BFloat16:
      return {2e-2, 2e-2};
    case DType::Float32:
      return {2e-5, 1e-6};
    case DType::Complex64:
      return {1e-4, 1e-5};
    case DType::Float64:
      return {1e-12, 1e-13};
    case DType::Complex128:
      return {1e-10, 1e-12};
    default:
      return {0.0, 0.0};
  }
}

// Random tensor of dtype dt on the CPU with values in [lo, hi] (ints: integers).
Tensor rand_cpu(std::mt19937& rng, const Shape& shape, DType dt, double lo, double hi,
                bool nonzero = false) {
  if (tt::is_cplx(dt)) {
    const auto re = tt::random_values(rng, static_cast<size_t>(tt::numel(shape)), lo, hi,
                                      DType::Float64, nonzero);
    const auto im = tt::random_values(rng, re.size(), lo, hi, DType::Float64, nonzero);
    std::vector<cplx> v(re.size());
    for (size_t i = 0; i < v.size(); ++i) v[i] = {re[i], im[i]};
    return tt::make_c(v, shape, dt);
  }
  if (tt::is_uint(dt)) lo = std::max(lo, 0.0);
  return tt::rand_tensor(rng, shape, dt, lo, hi, nonzero).t;
}

// Compares a CUDA result with the same op on the CPU.
::testing::AssertionResult same_as_cpu(const Tensor& gpu, const Tensor& cpu, Tol tol,
                                       const std::string& what) {
  if (gpu.device() != kGPU)
    return ::testing::AssertionFailure() << what << ": result is on " << gpu.device().str();
  if (gpu.dtype() != cpu.dtype() || gpu.shape() != cpu.shape())
    return ::testing::AssertionFailure() << what << ": dtype/shape differ from the cpu result";
  auto r = tt::all_close_c(gpu, tt::read_c(cpu), tol);
  if (!r) return ::testing::AssertionFailure() << what << ": " << r.message();
  return ::testing::AssertionSuccess();
}

using UnaryFn = std::function<Tensor(const Tensor&)>;
using BinaryFn = std::function<Tensor(const Tensor&, const Tensor&)>;

const std::map<OpCode, UnaryFn>& unary_fns() {
  static const std::map<OpCode, UnaryFn> m = {
      {OpCode::Neg, [](const Tensor& a) { return neg(a); }},
      {OpCode::Abs, [](const Tensor& a) { return abs(a); }},
      {OpCode::Sign, [](const Tensor& a) { return sign(a); }},
      {OpCode::Exp, [](const Tensor& a) { return exp(a); }},
      {OpCode::Expm1, [](const Tensor& a) { return expm1(a); }},
      {OpCode::Log, [](const Tensor& a) { return log(a); }},
      {OpCode::Log1p, [](const Tensor& a) { return log1p(a); }},
      {OpCode::Log2, [](const Tensor& a) { return log2(a); }},
      {OpCode::Log10, [](const Tensor& a) { return log10(a); }},
      {OpCode::Sqrt, [](const Tensor& a) { return sqrt(a); }},
      {OpCode::Rsqrt, [](const Tensor& a) { return rsqrt(a); }},
      {OpCode::Square, [](const Tensor& a) { return square(a); }},
      {OpCode::Reciprocal, [](const Tensor& a) { return reciprocal(a); }},
      {OpCode::Sin, [](const Tensor& a) { return sin(a); }},
      {OpCode::Cos, [](const Tensor& a) { return cos(a); }},
      {OpCode::Tan, [](const Tensor& a) { return tan(a); }},
      {OpCode::Asin, [](const Tensor& a) { return asin(a); }},
      {OpCode::Acos, [](const Tensor& a) { return acos(a); }},
      {OpCode::Atan, [](const Tensor& a) { return atan(a); }},
      {OpCode::Sinh, [](const Tensor& a) { return sinh(a); }},
      {OpCode::Cosh, [](const Tensor& a) { return cosh(a); }},
      {OpCode::Tanh, [](const Tensor& a) { return tanh(a); }},
      {OpCode::Asinh, [](const Tensor& a) { return asinh(a); }},
      {OpCode::Acosh, [](const Tensor& a) { return acosh(a); }},
      {OpCode::Atanh, [](const Tensor& a) { return atanh(a); }},
      {OpCode::Sigmoid, [](const Tensor& a) { return sigmoid(a); }},
      {OpCode::Relu, [](const Tensor& a) { return relu(a); }},
      {OpCode::Gelu, [](const Tensor& a) { return gelu(a, false); }},
      {OpCode::GeluTanh, [](const Tensor& a) { return gelu(a, true); }},
      {OpCode::Silu, [](const Tensor& a) { return silu(a); }},
      {OpCode::Erf, [](const Tensor& a) { return erf(a); }},
      {OpCode::Erfinv, [](const Tensor& a) { return erfinv(a); }},
      {OpCode::Floor, [](const Tensor& a) { return floor(a); }},
      {OpCode::Ceil, [](const Tensor& a) { return ceil(a); }},
      {OpCode::Round, [](const Tensor& a) { return round(a); }},
      {OpCode::IsNan, [](const Tensor& a) { return isnan(a); }},
      {OpCode::IsInf, [](const Tensor& a) { return isinf(a); }},
      {OpCode::IsFinite, [](const Tensor& a) { return isfinite(a); }},
      {OpCode::LogicalNot, [](const Tensor& a) { return logical_not(a); }},
      {OpCode::Real, [](const Tensor& a) { return real(a); }},
      {OpCode::Imag, [](const Tensor& a) { return imag(a); }},
      {OpCode::Conj, [](const Tensor& a) { return conj(a); }},
  };
  return m;
}

const std::map<OpCode, BinaryFn>& binary_fns() {
  static const std::map<OpCode, BinaryFn> m = {
      {OpCode::Add, [](const Tensor& a, const Tensor& b) { return add(a, b); }},
      {OpCode::Subtract, [](const Tensor& a, const Tensor& b) { return subtract(a, b); }},
      {OpCode::Multiply, [](const Tensor& a, const Tensor& b) { return multiply(a, b); }},
      {OpCode::Divide, [](const Tensor& a, const Tensor& b) { return divide(a, b); }},
      {OpCode::FloorDivide, [](const Tensor& a, const Tensor& b) { return floor_divide(a, b); }},
      {OpCode::Remainder, [](const Tensor& a, const Tensor& b) { return remainder(a, b); }},
      {OpCode::Power, [](const Tensor& a, const Tensor& b) { return power(a, b); }},
      {OpCode::Maximum, [](const Tensor& a, const Tensor& b) { return maximum(a, b); }},
      {OpCode::Minimum, [](const Tensor& a, const Tensor& b) { return minimum(a, b); }},
      {OpCode::Atan2, [](const Tensor& a, const Tensor& b) { return atan2(a, b); }},
      {OpCode::Hypot, [](const Tensor& a, const Tensor& b) { return hypot(a, b); }},
      {OpCode::GeluGrad, [](const Tensor& a, const Tensor& b) { return gelu_grad(a, b); }},
      {OpCode::GeluTanhGrad, [](const Tensor& a, const Tensor& b) { return gelu_grad(a, b, true); }},
      {OpCode::Equal, [](const Tensor& a, const Tensor& b) { return equal(a, b); }},
      {OpCode::NotEqual, [](const Tensor& a, const Tensor& b) { return not_equal(a, b); }},
      {OpCode::Less, [](const Tensor& a, const Tensor& b) { return less(a, b); }},
      {OpCode::LessEqual, [](const Tensor& a, const Tensor& b) { return less_equal(a, b); }},
      {OpCode::Greater, [](const Tensor& a, const Tensor& b) { return greater(a, b); }},
      {OpCode::GreaterEqual, [](const Tensor& a, const Tensor& b) { return greater_equal(a, b); }},
      {OpCode::LogicalAnd, [](const Tensor& a, const Tensor& b) { return logical_and(a, b); }},
      {OpCode::LogicalOr, [](const Tensor& a, const Tensor& b) { return logical_or(a, b); }},
      {OpCode::LogicalXor, [](const Tensor& a, const Tensor& b) { return logical_xor(a, b); }},
  };
  return m;
}

// Input domain of a unary op for real dtypes.
std::pair<double, double> unary_domain(OpCode op) {
  switch (op) {
    case OpCode::Log:
    case OpCode::Log2:
    case OpCode::Log10:
    case OpCode::Sqrt:
    case OpCode::Rsqrt:
      return {0.05, 4.0};
    case OpCode::Asin:
    case OpCode::Acos:
    case OpCode::Atanh:
    case OpCode::Erfinv:
      return {-0.95, 0.95};
    case OpCode::Acosh:
      return {1.05, 4.0};
    case OpCode::Log1p:
      return {-0.9, 3.0};
    default:
      return {-3.0, 3.0};
  }
}

uint64_t h2d_copies() {
  return memory_stats(kGPU).host_to_device_copies;
}
uint64_t d2h_copies() {
  return memory_stats(kGPU).device_to_host_copies;
}

}  // namespace

// Runs everywhere: the loader always registers a "cuda" entry, usable or with a reason.
TEST(CudaPlugin, RegisteredWithAvailabilityOrReason) {
  auto b = get_backend("cuda");
  ASSERT_NE(b, nullptr) << "the plugin loader registers a cuda entry in every build";
  EXPECT_EQ(b->device_type(), DeviceType::CUDA);
  const BackendInfo info = b->info();
  if (b->available()) {
    EXPECT_TRUE(info.available);
    EXPECT_FALSE(info.devices.empty());
  } else {
    EXPECT_FALSE(info.available);
    EXPECT_FALSE(info.reason.empty()) << "an unavailable backend must say why";
    std::printf("[cuda] unavailable: %s\n", info.reason.c_str());
    TT_EXPECT_THROW_OP(tt::make({1, 2, 3}).to(kGPU).eval(), DeviceError, "");
  }
}

TEST(Cuda, InfoListsDevicesAndLibraries) {
  REQUIRE_CUDA();
  const BackendInfo info = get_backend("cuda")->info();
  ASSERT_FALSE(info.devices.empty());
  EXPECT_NE(info.devices[0].find("sm_"), std::string::npos) << info.devices[0];
  std::set<std::string> libs;
  for (const auto& [lib, ver] : info.libraries) libs.insert(lib);
  for (const char* want : {"CUDA runtime", "CUDA driver", "cuBLAS", "NVRTC"})
    EXPECT_TRUE(libs.count(want)) << "missing library version: " << want;
}

TEST(Cuda, RoundTripEveryDtypeCountsTransfers) {
  REQUIRE_CUDA();
  std::mt19937 rng(1);
  for (DType dt : tt::all_dtypes()) {
    Tensor h = rand_cpu(rng, {3, 17}, dt, -50, 50);
    const auto s0 = memory_stats(kGPU);
    Tensor d = h.to(kGPU).eval();
    const auto s1 = memory_stats(kGPU);
    EXPECT_EQ(s1.host_to_device_copies, s0.host_to_device_copies + 1) << tt::name_of(dt);
    EXPECT_EQ(s1.host_to_device_bytes, s0.host_to_device_bytes + h.nbytes()) << tt::name_of(dt);
    Tensor back = d.to(kCPU).eval();
    const auto s2 = memory_stats(kGPU);
    EXPECT_EQ(s2.device_to_host_copies, s1.device_to_host_copies + 1) << tt::name_of(dt);
    EXPECT_EQ(back.dtype(), dt);
    EXPECT_TRUE(tt::all_close_c(back, tt::read_c(h), {0, 0})) << tt::name_of(dt);
  }
}

TEST(Cuda, LargeTransferThroughStagingBuffers) {
  REQUIRE_CUDA();
  const int64_t n = (int64_t{11} << 20) + 12345;  // several staging chunks plus a tail
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<int32_t>(i * 2654435761u);
  Tensor d = from_data(v.data(), {n}, int32, kGPU).eval();
  std::vector<int32_t> back = d.to_vector<int32_t>();
  ASSERT_EQ(back.size(), v.size());
  EXPECT_TRUE(back == v);
}

TEST(Cuda, UnaryOpsMatchCpu) {
  REQUIRE_CUDA();
  std::mt19937 rng(2);
  for (const auto& [op, fn] : unary_fns()) {
    for (DType dt : tt::all_dtypes()) {
      if (!gpu_has(op, dt) || !cpu_has(op, dt)) continue;
      auto [lo, hi] = unary_domain(op);
      if (tt::is_int(dt)) lo = -20, hi = 20;
      if (tt::is_cplx(dt) && (lo > 0 || hi < 1.0)) lo = 0.1, hi = 0.9;
      Tensor x = rand_cpu(rng, {5, 37}, dt, lo, hi);
      const std::string what = std::string(op_name(op)) + " " + tt::name_of(dt);
      Tensor want = fn(x);
      const Tol tol = gpu_tol(want.dtype());
      Tensor xd = x.to(kGPU);
      EXPECT_TRUE(same_as_cpu(fn(xd).eval(), want, tol, what));
      // Strided view: every other column; broadcast: one row to many.
      Tensor xs = slice(x, 1, 1, std::nullopt, 2);
      EXPECT_TRUE(
          same_as_cpu(fn(slice(xd, 1, 1, std::nullopt, 2)).eval(), fn(xs), tol, what + " strided"));
      Tensor xb = broadcast_to(slice(x, 0, 0, 1), {4, 37});
      EXPECT_TRUE(same_as_cpu(fn(broadcast_to(slice(xd, 0, 0, 1), {4, 37})).eval(), fn(xb), tol,
                              what + " broadcast"));
    }
  }
}

TEST(Cuda, BinaryOpsMatchCpu) {
  REQUIRE_CUDA();
  std::mt19937 rng(3);
  for (const auto& [op, fn] : binary_fns()) {
    for (DType dt : tt::all_dtypes()) {
      if (!gpu_has(op, dt) || !cpu_has(op, dt)) continue;
      double lo = -4, hi = 4, blo = -4, bhi = 4;
      bool b_nonzero = op == OpCode::Divide || op == OpCode::FloorDivide || op == OpCode::Remainder;
      if (op == OpCode::Power) {
        lo = tt::is_int(dt) ? -3 : 0.1;
        hi = 3;
        blo = tt::is_int(dt) ? 0 : -2;
        bhi = 4;
      }
      if (tt::is_int(dt) && op != OpCode::Power) lo = blo = -30, hi = bhi = 30;
      const std::string what = std::string(op_name(op)) + " " + tt::name_of(dt);
      // Same shapes, and broadcasting (3,1,37) with (1,5,37).
      for (int bc = 0; bc < 2; ++bc) {
        Tensor a = rand_cpu(rng, bc ? Shape{3, 1, 37} : Shape{4, 37}, dt, lo, hi);
        Tensor b = rand_cpu(rng, bc ? Shape{1, 5, 37} : Shape{4, 37}, dt, blo, bhi,
                            b_nonzero && !tt::is_int(dt));
        Tensor want = fn(a, b);
        EXPECT_TRUE(same_as_cpu(fn(a.to(kGPU), b.to(kGPU)).eval(), want, gpu_tol(want.dtype()),
                                what + (bc ? " broadcast" : "")));
      }
      // Integer division by zero gives 0 on both backends.
      if (tt::is_int(dt) && b_nonzero) {
        Tensor a = rand_cpu(rng, {64}, dt, 0, 30);
        Tensor z = zeros({64}, dt, kCPU);
        EXPECT_TRUE(
            same_as_cpu(fn(a.to(kGPU), z.to(kGPU)).eval(), fn(a, z), {0, 0}, what + " by zero"));
      }
    }
  }
}

TEST(Cuda, CastsBetweenEveryDtypePair) {
  REQUIRE_CUDA();
  const std::vector<double> vals = {0.0,   1.0,    -1.0,  2.5, -2.5, 3.75,
                                    127.0, -128.0, 200.0, 1e5, -7.0, 0.5};
  for (DType from : tt::all_dtypes()) {
    Tensor x = tt::make(vals, {static_cast<int64_t>(vals.size())}, from);
    Tensor xd = x.to(kGPU);
    for (DType to : tt::all_dtypes()) {
      const std::string what = std::string(tt::name_of(from)) + " -> " + tt::name_of(to);
      EXPECT_TRUE(same_as_cpu(astype(xd, to).eval(), astype(x, to), {0, 0}, what));
      // Strided source and destination layouts go through the strided kernel.
      EXPECT_TRUE(
          same_as_cpu(astype(flip(xd), to).eval(), astype(flip(x), to), {0, 0}, what + " flipped"));
    }
  }
}

TEST(Cuda, WhereFillArangeMatchCpu) {
  REQUIRE_CUDA();
  std::mt19937 rng(4);
  for (DType dt : tt::all_dtypes()) {
    Tensor c = rand_cpu(rng, {6, 1}, DType::Bool, 0, 1);
    Tensor cbits = greater(rand_cpu(rng, {6, 1}, float32, -1, 1), Tensor(0.0));
    Tensor a = rand_cpu(rng, {6, 9}, dt, -9, 9), b = rand_cpu(rng, {9}, dt, -9, 9);
    EXPECT_TRUE(same_as_cpu(where(cbits.to(kGPU), a.to(kGPU), b.to(kGPU)).eval(),
                            where(cbits, a, b), {0, 0}, std::string("where ") + tt::name_of(dt)));
    (void)c;
    const Scalar v = tt::is_cplx(dt) ? Scalar(std::complex<double>(1.5, -2.25)) : Scalar(-3.5);
    EXPECT_TRUE(same_as_cpu(full({7, 5}, v, dt, kGPU).eval(), full({7, 5}, v, dt, kCPU), {0, 0},
                            std::string("full ") + tt::name_of(dt)));
    if (dt != DType::Bool && !tt::is_cplx(dt)) {
      EXPECT_TRUE(same_as_cpu(arange(Scalar(-3.0), Scalar(40.0), Scalar(0.75), dt, kGPU).eval(),
                              arange(Scalar(-3.0), Scalar(40.0), Scalar(0.75), dt, kCPU), {0, 0},
                              std::string("arange ") + tt::name_of(dt)));
    }
  }
}

TEST(Cuda, ReductionsMatchCpu) {
  REQUIRE_CUDA();
  std::mt19937 rng(5);
  const std::vector<Axes> axes_sets = {{}, {0}, {1}, {2}, {0, 2}, {1, 2}, {0, 1}};
  using RedFn = std::function<Tensor(const Tensor&, const Axes&)>;
  const std::vector<std::pair<const char*, RedFn>> fns = {
      {"sum", [](const Tensor& a, const Axes& ax) { return sum(a, ax); }},
      {"prod", [](const Tensor& a, const Axes& ax) { return prod(a, ax); }},
      {"max", [](const Tensor& a, const Axes& ax) { return max(a, ax); }},
      {"min", [](const Tensor& a, const Axes& ax) { return min(a, ax); }},
      {"any", [](const Tensor& a, const Axes& ax) { return any(a, ax); }},
      {"all", [](const Tensor& a, const Axes& ax) { return all(a, ax); }},
      {"mean", [](const Tensor& a, const Axes& ax) { return mean(a, ax); }},
  };
  for (DType dt :
       {DType::Bool, DType::Int8, DType::Int32, DType::Int64, DType::UInt8, DType::Float16,
        DType::BFloat16, DType::Float32, DType::Float64, DType::Complex64}) {
    // prod stays well conditioned with values near 1.
    Tensor x = rand_cpu(rng, {6, 33, 129}, dt, tt::is_int(dt) ? -3 : 0.9, tt::is_int(dt) ? 3 : 1.1);
    // Complex values on the unit circle: a product of 25k values near |z| = 1.4
    // overflows, and inf/nan patterns of complex overflow are not comparable.
    if (tt::is_cplx(dt)) x = (x / abs(x)).eval();
    Tensor xd = x.to(kGPU);
    Tensor xt = transpose(x, {2, 0, 1}), xtd = transpose(xd, {2, 0, 1});
    for (const auto& [name, fn] : fns) {
      if ((std::string(name) == "max" || std::string(name) == "min") && tt::is_cplx(dt)) continue;
      if (std::string(name) == "mean" && dt == DType::Bool) continue;
      for (const auto& ax : axes_sets) {
        const std::string what =
            std::string(name) + " " + tt::name_of(dt) + " axes " + std::to_string(ax.size());
        Tensor want = fn(x, ax);
        Tol tol = gpu_tol(want.dtype());
        if (tt::is_float(want.dtype()) || tt::is_cplx(want.dtype())) tol.rtol *= 50;
        EXPECT_TRUE(same_as_cpu(fn(xd, ax).eval(), want, tol, what));
        EXPECT_TRUE(same_as_cpu(fn(xtd, ax).eval(), fn(xt, ax), tol, what + " transposed"));
      }
    }
  }
  // Column reductions with a few hundred to 2048 rows (one kernel of row groups, as a
  // bias gradient of batch 256 x 512 takes) and just past that bound (split columns
  // plus a finishing pass).
  for (int64_t rows : {256, 1000, 2048, 2049}) {
    for (DType dt : {DType::Float32, DType::Float64, DType::Int32, DType::Complex64}) {
      Tensor a = rand_cpu(rng, {rows, 515}, dt, tt::is_int(dt) ? -3 : 0.5, tt::is_int(dt) ? 3 : 1.5);
      Tensor ad = a.to(kGPU);
      const std::string what = "columns of " + std::to_string(rows) + " " + tt::name_of(dt);
      Tol tol = gpu_tol(sum(a, {0}).dtype());
      if (!tt::is_int(dt)) tol.rtol *= 50;
      EXPECT_TRUE(same_as_cpu(sum(ad, {0}).eval(), sum(a, {0}), tol, "sum " + what));
      EXPECT_TRUE(same_as_cpu(mean(ad, {0}).eval(), mean(a, {0}), tol, "mean " + what));
      if (!tt::is_cplx(dt)) {
        EXPECT_TRUE(same_as_cpu(max(ad, {0}).eval(), max(a, {0}), {0, 0}, "max " + what));
      }
      // The same columns read through a transposed view (reduced dim contiguous: rows).
      EXPECT_TRUE(same_as_cpu(sum(transpose(ad, {1, 0}), {1}).eval(), sum(a, {0}), tol,
                              "sum transposed " + what));
    }
  }
  // One output over millions of elements (split reduction + finishing pass).
  Tensor big = rand_cpu(rng, {3000001}, float32, -1, 1);
  Tensor s_cpu = sum(big), s_gpu = sum(big.to(kGPU)).eval();
  Tensor scale = sum(abs(big));
  EXPECT_TRUE(tt::all_close(s_gpu, tt::read(s_cpu), {1e-5, 0.0}, tt::read(scale)));
}

// Integer sums, products and scans on the GPU (u64 accumulators for unsigned inputs,
// i64 for bool and signed ones): NumPy 2's dtypes and wrap-around values.
TEST(Cuda, IntegerSumsKeepNumPyDtypesAndWrap) {
  REQUIRE_CUDA();
  tt::check_int_sum_prod(kGPU);
}

TEST(Cuda, ArgReduceAndScansMatchCpu) {
  REQUIRE_CUDA();
  std::mt19937 rng(6);
  for (DType dt :
       {DType::Int8, DType::Int64, DType::UInt8, DType::Float16, DType::Float32, DType::Float64}) {
    // Small integer range: many ties, which both backends break to the first index.
    Tensor x = rand_cpu(rng, {9, 70, 5}, dt, tt::is_int(dt) ? 0 : -2, tt::is_int(dt) ? 6 : 2);
    Tensor xd = x.to(kGPU);
    for (int ax = 0; ax < 3; ++ax) {
      const std::string what = std::string(tt::name_of(dt)) + " axis " + std::to_string(ax);
      EXPECT_TRUE(same_as_cpu(argmax(xd, ax).eval(), argmax(x, ax), {0, 0}, "argmax " + what));
      EXPECT_TRUE(same_as_cpu(argmin(xd, ax).eval(), argmin(x, ax), {0, 0}, "argmin " + what));
      Tensor cs = cumsum(x, ax);
      Tol tol = gpu_tol(cs.dtype());
      tol.rtol *= 20;
      tol.atol = std::max(tol.atol, tt::is_low(dt) ? 5e-2 : 1e-5);
      EXPECT_TRUE(same_as_cpu(cumsum(xd, ax).eval(), cs, tol, "cumsum " + what));
    }
  }
  // A long line takes the block scan.
  Tensor line = rand_cpu(rng, {3, 5000}, int32, -100, 100);
  EXPECT_TRUE(same_as_cpu(cumsum(line.to(kGPU), 1).eval(), cumsum(line, 1), {0, 0}, "cumsum long"));
  Tensor near1 = rand_cpu(rng, {4, 300}, float64, 0.99, 1.01);
  EXPECT_TRUE(same_as_cpu(cumprod(near1.to(kGPU), 1).eval(), cumprod(near1, 1), {1e-12, 0},
                          "cumprod long"));
}

TEST(Cuda, SoftmaxAndLayerNormMatchCpu) {
  REQUIRE_CUDA();
  std::mt19937 rng(7);
  for (DType dt : {DType::Float16, DType::BFloat16, DType::Float32, DType::Float64}) {
    for (const Shape& shape : {Shape{5, 7}, Shape{3, 1000}, Shape{2, 3000}, Shape{4, 2, 33},
                               Shape{1024, 1024}, Shape{4096, 300}, Shape{3, 10000}}) {
      Tensor x = rand_cpu(rng, shape, dt, -4, 4);
      Tensor xd = x.to(kGPU);
      const std::string what = std::string(tt::name_of(dt)) + " " + tt::shape_str(shape);
      const Tol tol = gpu_tol(dt);
      EXPECT_TRUE(same_as_cpu(softmax(xd).eval(), softmax(x), tol, "softmax " + what));
      EXPECT_TRUE(same_as_cpu(log_softmax(xd).eval(), log_softmax(x), tol, "log_softmax " + what));
      EXPECT_TRUE(same_as_cpu(softmax(xd, 0).eval(), softmax(x, 0), tol, "softmax axis 0 " + what));
      const Shape ws{shape.back()};
      Tensor w = rand_cpu(rng, ws, dt, 0.5, 1.5), b = rand_cpu(rng, ws, dt, -1, 1);
      Tol ltol = tol;
      ltol.rtol *= 10;
      ltol.atol = std::max(ltol.atol, 1e-5);
      EXPECT_TRUE(same_as_cpu(layer_norm(xd, w.to(kGPU), b.to(kGPU)).eval(), layer_norm(x, w, b),
                              ltol, "layer_norm " + what));
      EXPECT_TRUE(
          same_as_cpu(layer_norm(xd).eval(), layer_norm(x), ltol, "layer_norm plain " + what));
    }
  }
}

TEST(Cuda, TakeAndTakeAlongAxisMatchCpu) {
  REQUIRE_CUDA();
  std::mt19937 rng(8);
  for (DType dt : {DType::Bool, DType::Int16, DType::Float32, DType::Float64, DType::Complex128}) {
    Tensor x = rand_cpu(rng, {4, 9, 6}, dt, -5, 5);
    Tensor xd = x.to(kGPU);
    Tensor idx = tt::make({0, 8, 3, -1, 2, 2}, {2, 3}, int64);
    for (int ax : {0, 1, 2}) {
      Tensor i = ax == 1 ? idx : tt::make({0, 3, -1, 2}, {2, 2}, int64);
      EXPECT_TRUE(same_as_cpu(take(xd, i.to(kGPU), ax).eval(), take(x, i, ax), {0, 0},
                              std::string("take ") + tt::name_of(dt)));
    }
    EXPECT_TRUE(same_as_cpu(take(xd, idx.to(kGPU)).eval(), take(x, idx), {0, 0}, "take flat"));
    Tensor along = argmax(astype(x, float32), 1, true);
    EXPECT_TRUE(same_as_cpu(take_along_axis(xd, along.to(kGPU), 1).eval(),
                            take_along_axis(x, along, 1), {0, 0}, "take_along_axis"));
  }
}

TEST(Cuda, ConcatenatePadAndSlicesMatchCpu) {
  REQUIRE_CUDA();
  std::mt19937 rng(9);
  Tensor a = rand_cpu(rng, {5, 7}, float32, -1, 1), b = rand_cpu(rng, {5, 3}, float32, -1, 1);
  EXPECT_TRUE(same_as_cpu(concatenate({a.to(kGPU), b.to(kGPU)}, 1).eval(), concatenate({a, b}, 1),
                          {0, 0}, "concatenate"));
  EXPECT_TRUE(same_as_cpu(pad(a.to(kGPU), {{1, 2}, {0, 3}}, PadMode::Constant, 0.5).eval(),
                          pad(a, {{1, 2}, {0, 3}}, PadMode::Constant, 0.5), {0, 0}, "pad"));
  EXPECT_TRUE(same_as_cpu(copy(transpose(a.to(kGPU))).eval(), copy(transpose(a)), {0, 0},
                          "transpose copy"));
}

TEST(Cuda, MatmulMatchesCpuFloat64) {
  REQUIRE_CUDA();
  std::mt19937 rng(10);
  struct Case {
    Shape a, b;
    bool ta, tb;
  };
  const std::vector<Case> cases = {
      {{1, 1}, {1, 1}, false, false},      {{7, 13}, {13, 5}, false, false},
      {{64, 128}, {128, 32}, true, false}, {{129, 257}, {257, 65}, false, true},
      {{4, 9, 11}, {11, 6}, false, false}, {{2, 1, 8, 5}, {1, 3, 5, 4}, false, false},
      {{3, 6, 10}, {3, 10, 7}, true, true}};
  for (DType dt : {DType::Float16, DType::BFloat16, DType::Float32, DType::Float64,
                   DType::Complex64, DType::Complex128}) {
    for (const auto& c : cases) {
      Shape as = c.a, bs = c.b;
      if (c.ta) std::swap(as[as.size() - 1], as[as.size() - 2]);
      if (c.tb) std::swap(bs[bs.size() - 1], bs[bs.size() - 2]);
      Tensor a = rand_cpu(rng, as, dt, -1, 1), b = rand_cpu(rng, bs, dt, -1, 1);
      if (c.ta) a = swapaxes(a, -1, -2);
      if (c.tb) b = swapaxes(b, -1, -2);
      const DType wide = tt::is_cplx(dt) ? DType::Complex128 : DType::Float64;
      Tensor want = matmul(astype(a, wide), astype(b, wide));
      Tensor scale = matmul(abs(astype(a, DType::Float64)), abs(astype(b, DType::Float64)));
      Tensor ad = a.to(kGPU), bd = b.to(kGPU);
      Tensor got = matmul(ad, bd).eval();
      const Tol tol = gpu_tol(dt);
      EXPECT_TRUE(tt::all_close_c(got, tt::read_c(want), tol, tt::read(scale)))
          << "matmul " << tt::name_of(dt) << " " << tt::shape_str(c.a) << " x "
          << tt::shape_str(c.b) << (c.ta ? " (a transposed)" : "")
          << (c.tb ? " (b transposed)" : "");
    }
  }
  // Operands with no BLAS layout (every other column) are packed first.
  Tensor a = rand_cpu(rng, {16, 40}, float32, -1, 1), b = rand_cpu(rng, {20, 9}, float32, -1, 1);
  Tensor as = slice(a, 1, 0, std::nullopt, 2);
  Tensor want = matmul(astype(as, float64), astype(b, float64));
  EXPECT_TRUE(tt::all_close(matmul(slice(a.to(kGPU), 1, 0, std::nullopt, 2), b.to(kGPU)).eval(),
                            tt::read(want), {1e-4, 1e-5}));
}

TEST(Cuda, IntegerAndBoolMatmulMatchCpu) {
  REQUIRE_CUDA();
  std::mt19937 rng(12);
  for (DType dt : {DType::Bool, DType::Int8, DType::Int32, DType::Int64, DType::UInt8}) {
    Tensor a = rand_cpu(rng, {2, 1, 7, 9}, dt, -5, 5), b = rand_cpu(rng, {3, 9, 4}, dt, -5, 5);
    EXPECT_TRUE(same_as_cpu(matmul(a.to(kGPU), b.to(kGPU)).eval(), matmul(a, b), {0, 0},
                            std::string("matmul ") + tt::name_of(dt)));
    EXPECT_TRUE(
        same_as_cpu(matmul(swapaxes(b.to(kGPU), -1, -2), swapaxes(a.to(kGPU), -1, -2)).eval(),
                    matmul(swapaxes(b, -1, -2), swapaxes(a, -1, -2)), {0, 0},
                    std::string("matmul transposed ") + tt::name_of(dt)));
  }
}

TEST(Cuda, MatmulPrecisionPolicy) {
  REQUIRE_CUDA();
  std::mt19937 rng(11);
  Tensor a = rand_cpu(rng, {96, 200}, float32, -1, 1), b = rand_cpu(rng, {200, 80}, float32, -1, 1);
  Tensor want = matmul(astype(a, float64), astype(b, float64));
  Tensor scale = matmul(abs(astype(a, float64)), abs(astype(b, float64)));
  const auto saved = matmul_precision();
  const std::vector<std::pair<const char*, double>> levels = {
      {"highest", 1e-5}, {"high", 5e-3}, {"medium", 2e-2}};
  for (const auto& [p, rtol] : levels) {
    set_matmul_precision(p);
    Tensor got = matmul(a.to(kGPU), b.to(kGPU)).eval();
    EXPECT_TRUE(tt::all_close(got, tt::read(want), {rtol, 0.0}, tt::read(scale))) << p;
  }
  set_matmul_precision(saved);
}

TEST(Cuda, RandomStreamsBitIdenticalToCpu) {
  REQUIRE_CUDA();
  const auto k = random::key(1234);
  for (int64_t n : {1, 7, 1001, 65537}) {
    for (DType dt : {DType::Float16, DType::BFloat16, DType::Float32, DType::Float64}) {
      EXPECT_TRUE(same_as_cpu(random::uniform(k, {n}, dt, -2.0, 3.0, kGPU).eval(),
                              random::uniform(k, {n}, dt, -2.0, 3.0, kCPU), {0, 0},
                              std::string("uniform ") + tt::name_of(dt)));
      EXPECT_TRUE(same_as_cpu(random::normal(k, {n}, dt, 0.5, 2.0, kGPU).eval(),
                              random::normal(k, {n}, dt, 0.5, 2.0, kCPU), {0, 0},
                              std::string("normal ") + tt::name_of(dt)));
    }
    EXPECT_TRUE(
        same_as_cpu(random::bits(k, {n}, kGPU).eval(), random::bits(k, {n}, kCPU), {0, 0}, "bits"));
  }
}

TEST(Cuda, AllocatorCachesSplitsAndEmpties) {
  REQUIRE_CUDA();
  empty_cache(kGPU);
  const auto s0 = memory_stats(kGPU);
  {
    Tensor t = zeros({1 << 20}, float32, kGPU).eval();  // 4 MiB: large pool
    const auto s1 = memory_stats(kGPU);
    EXPECT_GE(s1.active_bytes, s0.active_bytes + (4u << 20));
    EXPECT_GE(s1.cache_misses, s0.cache_misses + 1);
    EXPECT_GE(s1.peak_bytes, s1.active_bytes);
  }
  const auto s2 = memory_stats(kGPU);
  EXPECT_GE(s2.cached_bytes, 4u << 20) << "the freed block is cached";
  for (int i = 0; i < 50; ++i) zeros({1 << 20}, float32, kGPU).eval();
  const auto s3 = memory_stats(kGPU);
  EXPECT_EQ(s3.cache_misses, s2.cache_misses) << "same-size allocations reuse the cached block";
  EXPECT_GE(s3.cache_hits, s2.cache_hits + 50);
  // Small blocks are carved from shared segments.
  std::vector<Tensor> small;
  for (int i = 0; i < 100; ++i) small.push_back(zeros({100}, float32, kGPU).eval());
  const auto s4 = memory_stats(kGPU);
  EXPECT_LE(s4.cache_misses, s3.cache_misses + 1) << "100 small blocks fit one 2 MiB segment";
  small.clear();
  empty_cache(kGPU);
  EXPECT_EQ(memory_stats(kGPU).cached_bytes, 0u);
}

TEST(Cuda, LimitAndOversizedRequestRaiseOutOfMemoryCleanly) {
  REQUIRE_CUDA();
  Tensor keep = full({1000}, 2.0, float32, kGPU).eval();
  // A request larger than any GPU.
  TT_EXPECT_THROW_OP(zeros({int64_t{1} << 50}, uint8, kGPU).eval(), OutOfMemoryError, "allocate");
  const auto s = memory_stats(kGPU);
  EXPECT_GE(s.oom_retries, 1u) << "the cache is freed and the request retried once";
  // A limit below the request.
  set_memory_limit(uint64_t{64} << 20, kGPU);
  TT_EXPECT_THROW_OP(zeros({int64_t{128} << 20}, uint8, kGPU).eval(), OutOfMemoryError, "allocate");
  set_memory_limit(0, kGPU);
  // The engine stays usable and the live tensor intact.
  Tensor y = (keep + keep).eval();
  EXPECT_TRUE(tt::all_equal(y, std::vector<double>(1000, 4.0)));
}

TEST(Cuda, HundredOpPipelineMakesNoHostCopies) {
  REQUIRE_CUDA();
  const auto k = random::key(7);
  Tensor x = random::normal(k, {256, 256}, float32, 0, 1, kGPU);
  Tensor w = random::normal(random::fold_in(k, 1), {256, 256}, float32, 0, 0.05, kGPU);
  Tensor one = ones({256}, float32, kGPU);
  const uint64_t h0 = h2d_copies(), d0 = d2h_copies();
  const auto disp0 = dispatch_stats();
  Tensor y = x;
  for (int i = 0; i < 20; ++i) {
    y = matmul(y, w);        // 1
    y = tanh(y + one);       // 2
    y = maximum(y, neg(y));  // 2
  }
  y = softmax(y) + layer_norm(y);
  y.eval();
  Tensor s = sum(y).eval();
  EXPECT_EQ(h2d_copies(), h0) << "host->device copies inside a device pipeline";
  EXPECT_EQ(d2h_copies(), d0) << "device->host copies inside a device pipeline";
  EXPECT_EQ(dispatch_stats().fallbacks, disp0.fallbacks) << "ops fell back to the cpu";
  // 102 ops ran (fusion runs the elementwise chains as fewer kernels).
  EXPECT_GE(dispatch_stats().nodes_evaluated - disp0.nodes_evaluated, 100u);
  const double total = s.item<float>();  // reading the result is the one copy
  EXPECT_TRUE(std::isfinite(total));
  EXPECT_EQ(d2h_copies(), d0 + 1);
}

// Weak scalar operands (x * 0.5 + 1) need no host->device copy per op: the core
// keeps device copies of scalar constants, so only a value's first use may copy it.
TEST(Cuda, ScalarOperandsMakeNoHostCopyPerOp) {
  REQUIRE_CUDA();
  Tensor x = random::uniform(random::key(3), {1024}, float32, 0, 1, kGPU).eval();
  Tensor y = (x * 0.5 + 1.0).eval();
  const uint64_t h0 = h2d_copies();
  for (int i = 0; i < 100; ++i) y = y * 0.5 + 1.0;
  y.eval();
  EXPECT_EQ(h2d_copies(), h0) << "scalar constants were copied host->device on every use";
  const auto v = y.to_vector<float>();
  EXPECT_NEAR(v[0], 2.0f, 1e-5f);  // the fixed point of y -> y / 2 + 1
}

// One output of a multi-output node read after the others were dropped: the
// unused outputs are computed into temporaries on the node's device.
TEST(Cuda, DroppedSiblingOutputsStayOnTheDevice) {
  REQUIRE_CUDA();
  const std::vector<double> v = {4, 1, 0, 1, 3, 1, 0, 1, 2};  // det 18
  Tensor a = tt::make(v, {3, 3}, float64).to(kGPU).eval();
  Tensor l;
  {
    linalg::SlogdetResult r = linalg::slogdet(a);
    l = r.logabsdet;
  }
  EXPECT_NEAR(l.item<double>(), std::log(18.0), 1e-12);
  Tensor w;
  {
    linalg::EighResult e = linalg::eigh(a);
    w = e.eigenvalues;
  }
  const std::vector<double> got = tt::read(w);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_NEAR(got[0] + got[1] + got[2], 9.0, 1e-12);  // trace
}

// Under the cost policy a small solve on device tensors has the host as a candidate:
// calibration runs both, every later call runs on the cheaper one with the same
// results, host runs are counted, and a large problem is never offered to the host.
TEST(Cuda, CostPolicyPlacesSmallLinalgOnTheHostWhenCheaper) {
  REQUIRE_CUDA();
  struct Restore {
    ~Restore() {
      set_selection_policy(SelectionPolicy::Priority);
      reset_cost_table();
    }
  } restore;
  const auto k = random::key(21);
  Tensor a = (random::normal(k, {8, 8}, float64) + eye(8, std::nullopt, 0, float64) * 8.0).eval();
  Tensor b = random::normal(random::fold_in(k, 1), {8, 3}, float64).eval();
  const std::vector<double> want = tt::read(linalg::solve(a, b));
  Tensor ad = a.to(kGPU).eval(), bd = b.to(kGPU).eval();
  set_selection_policy(SelectionPolicy::Cost);
  reset_cost_table();
  reset_dispatch_stats();
  // Candidates: the device's backends (cuda first; torch:cuda where the adapter is
  // built) and then, for this small problem, the host's ("cpu (host)", ...). Each is
  // timed kCostSamples times, then the cheapest runs every later call.
  const int calls = 8 * kCostSamples;
  for (int i = 0; i < calls; ++i) {
    Tensor x = linalg::solve(ad, bd);
    ASSERT_EQ(x.device(), kGPU) << "call " << i;
    const std::vector<double> got = tt::read(x);
    ASSERT_EQ(got.size(), want.size());
    for (size_t j = 0; j < got.size(); ++j) ASSERT_NEAR(got[j], want[j], 1e-12) << "call " << i;
  }
  const CostEntry* e = nullptr;
  const auto table = cost_table();
  for (const auto& row : table)
    if (row.op == "solve" && row.device == kGPU.str()) e = &row;
  ASSERT_NE(e, nullptr) << "no cost-table row for solve on the gpu";
  ASSERT_GE(e->ms.size(), 2u);
  ASSERT_LE(e->ms.size(), 4u);
  EXPECT_EQ(e->ms[0].first, "cuda");
  auto on_host = [](const std::string& name) { return name.ends_with(" (host)"); };
  size_t host_cands = 0, best = 0, cpu_host = e->ms.size();
  for (size_t i = 0; i < e->ms.size(); ++i) {
    if (on_host(e->ms[i].first)) ++host_cands;
    if (e->ms[i].first == "cpu (host)") cpu_host = i;
    if (e->ms[i].second < e->ms[best].second) best = i;
  }
  ASSERT_LT(cpu_host, e->ms.size()) << "the host was not a candidate";
  ASSERT_FALSE(e->chosen.empty());
  EXPECT_EQ(e->chosen, e->ms[best].first);
  const bool host = on_host(e->chosen);
  const uint64_t placed = dispatch_stats().host_placements;
  EXPECT_EQ(placed, uint64_t(host_cands * kCostSamples +
                             (host ? calls - e->ms.size() * kCostSamples : 0)));
  for (const auto& [name, ms] : e->ms)
    std::printf("  solve 8x8 float64 candidate %s: %.4g ms\n", name.c_str(), ms);
  std::printf("solve 8x8 float64 on %s -> %s\n", kGPU.str().c_str(), e->chosen.c_str());

  // 256 x 256 is above the host limit: no host candidate, no host run (a row exists
  // only where a second device backend, torch:cuda, is built).
  Tensor big = (random::normal(k, {256, 256}, float32, 0, 1, kGPU) +
                eye(256, std::nullopt, 0, float32).to(kGPU) * 64.0).eval();
  (void)linalg::inv(big).eval();
  for (const auto& row : cost_table()) {
    if (row.op != "inv") continue;
    for (const auto& [name, ms] : row.ms) {
      EXPECT_FALSE(on_host(name)) << "a 256 x 256 inv was timed on the host";
    }
  }
  EXPECT_EQ(dispatch_stats().host_placements, placed);
}

// solve and inv with many right-hand sides apply getrf's row interchanges themselves
// and run two trsm (fewer: cuSOLVER's getrs). Both paths against the CPU in float64,
// with pivoting forced by a small leading entry, batched, for every dtype.
TEST(Cuda, SolveAndInvWithManyRightHandSidesMatchCpu) {
  REQUIRE_CUDA();
  for (DType dt : {float32, float64, complex64, complex128}) {
    for (int64_t n : {1, 5, 40}) {
      for (int64_t rhs : {1, 3, 17, 64}) {
        const auto k = random::key(static_cast<uint64_t>(n * 1000 + rhs));
        Tensor a = random::normal(k, {3, n, n}, float64) + eye(n, std::nullopt, 0, float64) * 0.5;
        a = a.astype(dt).eval();
        Tensor b = random::normal(random::fold_in(k, 1), {3, n, rhs}, float64).astype(dt).eval();
        const Tol tol = gpu_tol(dt);
        const double scale = dt == float32 || dt == complex64 ? 1e3 : 1e2;
        SCOPED_TRACE(std::string(dtype_name(dt)) + " n=" + std::to_string(n) +
                     " rhs=" + std::to_string(rhs));
        const Tol loose{tol.rtol * scale, tol.atol * scale};
        EXPECT_TRUE(tt::all_close_c(linalg::solve(a.to(kGPU), b.to(kGPU)).to(kCPU),
                                    tt::read_c(linalg::solve(a, b)), loose));
        if (rhs == 1) {
          EXPECT_TRUE(tt::all_close_c(linalg::inv(a.to(kGPU)).to(kCPU),
                                      tt::read_c(linalg::inv(a)), loose));
        }
      }
    }
  }
  // A singular matrix in the middle of a batch names its index, on the batched route
  // (n = 20) and on the trsm path (n = 70, above the batched routes' 64).
  for (int64_t n : {20, 70}) {
    std::vector<double> v =
        tt::read(eye(n, std::nullopt, 0, float64).reshape({1, n, n}) * ones({3, 1, 1}, float64));
    for (int64_t j = 0; j < n; ++j) v[static_cast<size_t>(n * n + 7 * n + j)] = 0.0;  // row 7 of entry 1
    Tensor sing = tt::make(v, {3, n, n}, float64).to(kGPU);
    try {
      (void)linalg::solve(sing, ones({3, n, 32}, float64, kGPU)).eval();
      ADD_FAILURE() << "no LinAlgError for a singular matrix, n = " << n;
    } catch (const LinAlgError& e) {
      EXPECT_NE(std::string(e.what()).find("singular matrix"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("(batch index (1,))"), std::string::npos) << e.what();
    }
  }
}

// Batches of small matrices (from two entries up to 64 x 64) are factored by one batched
// cuBLAS/cuSOLVER call (getrfBatched + getrsBatched, potrfBatched) instead of one call per
// entry; 65 x 65 takes the per-entry route; cholesky up to 32 x 32 runs as our one-warp
// kernel (any batch). Every result matches the CPU (LAPACK).
TEST(Cuda, BatchedSmallFactorisationsMatchCpu) {
  REQUIRE_CUDA();
  struct Shape3 {
    int64_t batch, n;
  };
  for (DType dt : {float32, float64, complex64, complex128})
    for (const Shape3 s : {Shape3{300, 8}, Shape3{5, 32}, Shape3{2, 33}, Shape3{2, 64},
                           Shape3{2, 65}, Shape3{7, 1}}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + std::to_string(s.batch) + " x " +
                   std::to_string(s.n));
      const auto k = random::key(static_cast<uint64_t>(s.batch * 100 + s.n));
      Tensor a = (random::normal(k, {s.batch, s.n, s.n}, float64) +
                  eye(s.n, std::nullopt, 0, float64) * 2.0)
                     .astype(dt)
                     .eval();
      Tensor b = random::normal(random::fold_in(k, 1), {s.batch, s.n, 3}, float64).astype(dt).eval();
      // Hermitian positive definite: a a^H / n + I.
      Tensor spd = (matmul(a, conj(swapaxes(a, -1, -2))) / double(s.n) +
                    eye(s.n, std::nullopt, 0, float64).astype(dt))
                       .eval();
      const Tol tol = gpu_tol(dt);
      const double scale = dt == float32 || dt == complex64 ? 1e3 : 1e2;
      const Tol loose{tol.rtol * scale, tol.atol * scale};
      Tensor ag = a.to(kGPU), bg = b.to(kGPU), sg = spd.to(kGPU);
      EXPECT_TRUE(tt::all_close_c(linalg::solve(ag, bg).to(kCPU), tt::read_c(linalg::solve(a, b)), loose));
      EXPECT_TRUE(tt::all_close_c(linalg::inv(ag).to(kCPU), tt::read_c(linalg::inv(a)), loose));
      EXPECT_TRUE(tt::all_close_c(linalg::det(ag).to(kCPU), tt::read_c(linalg::det(a)), loose));
      auto sl = linalg::slogdet(ag), sl_cpu = linalg::slogdet(a);
      EXPECT_TRUE(tt::all_close_c(sl.sign.to(kCPU), tt::read_c(sl_cpu.sign), loose));
      EXPECT_TRUE(tt::all_close_c(sl.logabsdet.to(kCPU), tt::read_c(sl_cpu.logabsdet), loose));
      // lu_solve from the CPU's factors (our kernel up to 32 x 32, getrsBatched up to 64),
      // also with 40 right-hand sides given as a transposed (non-contiguous) view.
      auto f = linalg::lu_factor(a);
      EXPECT_TRUE(tt::all_close_c(linalg::lu_solve(f.LU.to(kGPU), f.pivots.to(kGPU), bg).to(kCPU),
                                  tt::read_c(linalg::lu_solve(f.LU, f.pivots, b)), loose));
      Tensor bt = random::normal(random::fold_in(k, 2), {s.batch, 40, s.n}, float64).astype(dt).eval();
      EXPECT_TRUE(tt::all_close_c(
          linalg::lu_solve(f.LU.to(kGPU), f.pivots.to(kGPU), swapaxes(bt.to(kGPU), -1, -2)).to(kCPU),
          tt::read_c(linalg::lu_solve(f.LU, f.pivots, swapaxes(bt, -1, -2))), loose));
      auto lu = linalg::lu(ag), lu_cpu = linalg::lu(a);
      EXPECT_TRUE(tt::all_close_c(lu.P.to(kCPU), tt::read_c(lu_cpu.P), loose));
      EXPECT_TRUE(tt::all_close_c(lu.L.to(kCPU), tt::read_c(lu_cpu.L), loose));
      EXPECT_TRUE(tt::all_close_c(lu.U.to(kCPU), tt::read_c(lu_cpu.U), loose));
      for (bool upper : {false, true})
        EXPECT_TRUE(tt::all_close_c(linalg::cholesky(sg, upper).to(kCPU),
                                    tt::read_c(linalg::cholesky(spd, upper)), loose));
      // A transposed (non-contiguous) view: the conjugate matrix, for every route.
      EXPECT_TRUE(tt::all_close_c(linalg::cholesky(swapaxes(sg, -1, -2)).to(kCPU),
                                  tt::read_c(linalg::cholesky(swapaxes(spd, -1, -2))), loose));
      // Only the lower triangle is read (as NumPy): NaN above the diagonal changes nothing.
      if (s.n > 1) {
        Tensor above = triu(ones({s.n, s.n}, float64), 1) > 0.5;
        Tensor spd_nan = where(above, full_like(spd, std::nan("")), spd).eval();
        EXPECT_TRUE(tt::all_close_c(linalg::cholesky(spd_nan.to(kGPU)).to(kCPU),
                                    tt::read_c(linalg::cholesky(spd)), loose));
      }
      // The inputs are left intact.
      EXPECT_TRUE(tt::all_close_c(ag.to(kCPU), tt::read_c(a), Tol{0.0, 0.0}));
    }
  // Failures name their batch entry on the batched routes: a singular entry for inv and
  // a non-positive-definite one for cholesky (entry 5 of 9, 4 x 4).
  Tensor eye9 = eye(4, std::nullopt, 0, float32).reshape({1, 4, 4}) * ones({9, 1, 1}, float32);
  std::vector<double> v = tt::read(eye9);
  v[static_cast<size_t>(5 * 16 + 2 * 4 + 2)] = 0.0;   // a zero pivot
  Tensor sing = tt::make(v, {9, 4, 4}, float32).to(kGPU);
  v[static_cast<size_t>(5 * 16 + 2 * 4 + 2)] = -1.0;  // an indefinite entry
  Tensor indef = tt::make(v, {9, 4, 4}, float32).to(kGPU);
  // NaN below the diagonal of entry 3 (on the kernel's route, 4 x 4, and on potrfBatched's,
  // 40 x 40): a non-finite error naming that entry.
  for (int64_t n : {4, 40}) {
    std::vector<double> w =
        tt::read(eye(n, std::nullopt, 0, float64).reshape({1, n, n}) * ones({9, 1, 1}, float64));
    w[static_cast<size_t>(3 * n * n + 2 * n + 1)] = std::nan("");
    try {
      (void)linalg::cholesky(tt::make(w, {9, n, n}, float64).to(kGPU)).eval();
      ADD_FAILURE() << "no LinAlgError for NaN, n = " << n;
    } catch (const LinAlgError& e) {
      EXPECT_NE(std::string(e.what()).find("(batch index (3,))"), std::string::npos) << e.what();
    }
  }
  for (int op = 0; op < 2; ++op) {
    try {
      if (op == 0)
        (void)linalg::inv(sing).eval();
      else
        (void)linalg::cholesky(indef).eval();
      ADD_FAILURE() << "no LinAlgError, op " << op;
    } catch (const LinAlgError& e) {
      EXPECT_NE(std::string(e.what()).find("(batch index (5,))"), std::string::npos) << e.what();
    }
  }
  // lu_solve with an out-of-range pivot in entry 1 of 3 (checked on the device): named
  // on the kernel's route (n = 4), the batched one (n = 40) and the per-entry one (n =
  // 70); a zero on U's diagonal in entry 2 comes after it.
  for (int64_t n : {4, 40, 70}) {
    Tensor lu3 = eye(n, std::nullopt, 0, float64).reshape({1, n, n}) * ones({3, 1, 1}, float64);
    std::vector<double> lv = tt::read(lu3);
    lv[static_cast<size_t>(2 * n * n + n * (n - 1) + n - 1)] = 0.0;
    std::vector<double> pvals;
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t i = 0; i < n; ++i) pvals.push_back(b == 1 && i == 1 ? 0.0 : double(i));
    Tensor piv = tt::make(pvals, {3, n}, int32);
    try {
      (void)linalg::lu_solve(tt::make(lv, {3, n, n}, float64).to(kGPU), piv.to(kGPU),
                             ones({3, n, 2}, float64, kGPU))
          .eval();
      ADD_FAILURE() << "no LinAlgError for a bad pivot, n = " << n;
    } catch (const LinAlgError& e) {
      EXPECT_NE(std::string(e.what()).find("pivot indices out of range (batch index (1,))"),
                std::string::npos)
          << e.what();
    }
  }
  // det of the singular batch: 0 for entry 5, 1 for the others (no error).
  std::vector<double> want(9, 1.0);
  want[5] = 0.0;
  EXPECT_TRUE(tt::all_close(linalg::det(sing).to(kCPU), want, Tol{0.0, 0.0}));
}

// qr of matrices up to 32 x 32, and of batches of taller ones up to 256 x 32 whose A and
// Q fit in shared memory, runs as one launch of our Householder kernel for the whole
// batch (tm_la_qr_small); the rest takes cuSOLVER's geqrf + orgqr per entry: 2 x 33 x 5,
// 3 x 64 x 10 and 2 x 200 x 32 (reduced and r) on the kernel's tall route; 1 x 64 x 10 (a
// single tall matrix), 2 x 300 x 4 (too tall) and 2 x 200 x 32 complete (Q too large for
// shared memory) on cuSOLVER's. Both follow
// LAPACK's conventions, so Q and R match the CPU's (LAPACK) in every mode; Q is
// orthonormal and Q R = A; exact zero columns (rank deficiency) and an all-zero entry
// give the CPU's R; NaN names its batch entry; the input is left intact.
TEST(Cuda, SmallQrKernelMatchesCpu) {
  REQUIRE_CUDA();
  struct Shape3 {
    int64_t batch, m, n;
  };
  for (DType dt : {float32, float64, complex64, complex128})
    for (const Shape3 s : {Shape3{300, 8, 8}, Shape3{5, 32, 32}, Shape3{4, 32, 20},
                           Shape3{4, 20, 32}, Shape3{3, 1, 1}, Shape3{2, 1, 6}, Shape3{2, 6, 1},
                           Shape3{2, 33, 5}, Shape3{1, 12, 7}, Shape3{3, 64, 10},
                           Shape3{2, 200, 32}, Shape3{1, 64, 10}, Shape3{2, 300, 4}}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + std::to_string(s.batch) + " x " +
                   std::to_string(s.m) + " x " + std::to_string(s.n));
      const auto key = random::key(static_cast<uint64_t>(s.batch * 10000 + s.m * 100 + s.n));
      Tensor a = random::normal(key, {s.batch, s.m, s.n}, float64);
      if (tt::is_cplx(dt))
        a = a + random::normal(random::fold_in(key, 1), {s.batch, s.m, s.n}, float64) *
                    Tensor(cplx{0.0, 1.0});
      a = a.astype(dt).eval();
      if (s.batch >= 3 && s.n >= 3) {  // entry 1: column 2 zero; entry 2: all zero
        Tensor zero_col = (arange(s.n, float64) == 2.0).reshape({1, 1, s.n}) &
                          (arange(s.batch, float64) == 1.0).reshape({s.batch, 1, 1});
        Tensor zero_all = (arange(s.batch, float64) == 2.0).reshape({s.batch, 1, 1});
        a = where(zero_col | zero_all, zeros_like(a), a).eval();
      }
      const Tol tol = gpu_tol(dt);
      const Tol loose{tol.rtol * 1e2, tol.atol * 1e2};
      const int64_t k = std::min(s.m, s.n);
      Tensor ag = a.to(kGPU);
      for (linalg::QrMode mode : {linalg::QrMode::Reduced, linalg::QrMode::Complete, linalg::QrMode::R}) {
        SCOPED_TRACE(mode == linalg::QrMode::Reduced    ? "reduced"
                     : mode == linalg::QrMode::Complete ? "complete"
                                                        : "r");
        auto g = linalg::qr(ag, mode), want = linalg::qr(a, mode);
        EXPECT_TRUE(tt::all_close_c(g.R.to(kCPU), tt::read_c(want.R), loose));
        if (mode == linalg::QrMode::R) continue;
        EXPECT_TRUE(tt::all_close_c(g.Q.to(kCPU), tt::read_c(want.Q), loose));
        // Q^H Q = I and Q R = A, computed in float64 on the host.
        Tensor q = g.Q.to(kCPU).astype(tt::is_cplx(dt) ? complex128 : float64);
        Tensor r = g.R.to(kCPU).astype(q.dtype());
        const int64_t qc = mode == linalg::QrMode::Complete ? s.m : k;
        Tensor qhq = matmul(conj(swapaxes(q, -1, -2)), q);
        Tensor eye_b = eye(qc, std::nullopt, 0, q.dtype()).reshape({1, qc, qc}) *
                       ones({s.batch, 1, 1}, q.dtype());
        EXPECT_TRUE(tt::all_close_c(qhq, tt::read_c(eye_b), Tol{0.0, 40.0 * tol.rtol}));
        EXPECT_TRUE(tt::all_close_c(matmul(q, r), tt::read_c(a.astype(q.dtype())),
                                    Tol{0.0, 40.0 * tol.rtol * std::sqrt(double(s.m))}));
      }
      // The inputs are left intact.
      EXPECT_TRUE(tt::all_close_c(ag.to(kCPU), tt::read_c(a), Tol{0.0, 0.0}));
    }
  // NaN in entry 3 of 5 names that entry, on the kernel's routes and on cuSOLVER's.
  for (int64_t m : {6, 40, 300}) {
    std::vector<double> v = tt::read(ones({5, m, 4}, float64));
    v[static_cast<size_t>(3 * m * 4 + 5)] = std::nan("");
    Tensor bad = tt::make(v, {5, m, 4}, float64).to(kGPU);
    try {
      (void)linalg::qr(bad).Q.eval();
      ADD_FAILURE() << "no LinAlgError for NaN, m = " << m;
    } catch (const LinAlgError& e) {
      EXPECT_NE(std::string(e.what()).find("(batch index (3,))"), std::string::npos) << e.what();
    }
  }
}

// Real-dtype matmuls run through cuBLASLt plans cached per configuration (shape,
// layout, batch strides, pointer alignment). Every case runs twice (the second
// time from the cache, after the other cases' plans were built) and must match
// the CPU in float64; unaligned views, broadcast and host-looped batches and
// odd sizes get plans of their own, and more configurations than the cache
// holds (256) evict and rebuild plans.
TEST(Cuda, MatmulPlanCacheReuseViewsAndEviction) {
  REQUIRE_CUDA();
  std::mt19937 rng(13);
  const auto saved = matmul_precision();
  set_matmul_precision("highest");
  using View = std::function<std::pair<Tensor, Tensor>(const Tensor&, const Tensor&)>;
  const View same = [](const Tensor& a, const Tensor& b) { return std::make_pair(a, b); };
  struct Case {
    const char* what;
    Shape a, b;
    View view;
  };
  const std::vector<Case> cases = {
      {"33x17 @ 17x65", {33, 17}, {17, 65}, same},
      {"offset views (unaligned pointers, ld 66)",
       {34, 17},
       {17, 66},
       [](const Tensor& a, const Tensor& b) {
         return std::make_pair(slice(a, 0, 1, std::nullopt), slice(b, 1, 1, std::nullopt));
       }},
      {"batched, b broadcast", {4, 33, 17}, {17, 65}, same},
      {"batched, a broadcast_to",
       {33, 17},
       {3, 17, 65},
       [](const Tensor& a, const Tensor& b) {
         return std::make_pair(broadcast_to(a, {3, 33, 17}), b);
       }},
      {"transposed views",
       {5, 17, 33},
       {5, 65, 17},
       [](const Tensor& a, const Tensor& b) {
         return std::make_pair(swapaxes(a, -1, -2), swapaxes(b, -1, -2));
       }},
      {"host-looped outer batch", {2, 3, 33, 17}, {2, 1, 17, 65}, same},
      {"every other batch",
       {6, 33, 17},
       {3, 17, 65},
       [](const Tensor& a, const Tensor& b) {
         return std::make_pair(slice(a, 0, 0, std::nullopt, 2), b);
       }},
      {"flipped batch (negative batch stride)",
       {3, 33, 17},
       {3, 17, 65},
       [](const Tensor& a, const Tensor& b) { return std::make_pair(flip(a, Axes{0}), b); }},
      {"row times column", {1, 17}, {17, 1}, same},
      {"outer product (k = 1)", {33, 1}, {1, 65}, same},
      {"33x17 @ 17x65 again", {33, 17}, {17, 65}, same},
  };
  for (DType dt : {DType::Float16, DType::BFloat16, DType::Float32, DType::Float64}) {
    std::vector<std::pair<Tensor, Tensor>> inputs;
    for (const auto& c : cases)
      inputs.emplace_back(rand_cpu(rng, c.a, dt, -1, 1), rand_cpu(rng, c.b, dt, -1, 1));
    for (int pass = 0; pass < 2; ++pass) {
      for (size_t i = 0; i < cases.size(); ++i) {
        const auto [a, b] = cases[i].view(inputs[i].first, inputs[i].second);
        const auto [ad, bd] = cases[i].view(inputs[i].first.to(kGPU), inputs[i].second.to(kGPU));
        Tensor want = matmul(astype(a, float64), astype(b, float64));
        Tensor scale = matmul(abs(astype(a, float64)), abs(astype(b, float64)));
        Tensor got = matmul(ad, bd).eval();
        EXPECT_TRUE(tt::all_close(got, tt::read(want), gpu_tol(dt), tt::read(scale)))
            << "matmul " << tt::name_of(dt) << " " << cases[i].what << " (pass " << pass << ")";
      }
    }
  }
  // 300 configurations (one per width) overflow the plan cache; the second pass
  // rebuilds evicted plans.
  Tensor a = rand_cpu(rng, {2, 3}, float32, -1, 1), w = rand_cpu(rng, {3, 300}, float32, -1, 1);
  Tensor ad = a.to(kGPU), wd = w.to(kGPU);
  for (int pass = 0; pass < 2; ++pass) {
    for (int64_t n = 1; n <= 300; n += pass ? 37 : 1) {
      Tensor want = matmul(astype(a, float64), astype(slice(w, 1, 0, n), float64));
      Tensor scale = matmul(abs(astype(a, float64)), abs(astype(slice(w, 1, 0, n), float64)));
      Tensor got = matmul(ad, slice(wd, 1, 0, n)).eval();
      EXPECT_TRUE(tt::all_close(got, tt::read(want), gpu_tol(float32), tt::read(scale)))
          << "matmul float32 2x3 @ 3x" << n << " (pass " << pass << ")";
    }
  }
  set_matmul_precision(saved);
}

// ---- compile() through CUDA graphs ------------------------------------------------------

namespace {

std::vector<Tensor> mlp3(const std::vector<Tensor>& a) {
  Tensor h = a[0];
  for (int i = 0; i < 3; ++i) h = gelu(matmul(h, a[1]) + a[2]);
  return {sum(h * h, {1}), h};
}

std::vector<Tensor> mlp3_args(uint64_t seed) {
  const auto k = random::key(seed);
  return {random::normal(k, {64, 128}, float32, 0, 1, kGPU).eval(),
          random::normal(random::fold_in(k, 1), {128, 128}, float32, 0, 0.09, kGPU).eval(),
          random::normal(random::fold_in(k, 2), {128}, float32, 0, 0.1, kGPU).eval()};
}

void expect_same(const std::vector<Tensor>& got, const std::vector<std::vector<double>>& want,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].device(), kGPU) << what;
    EXPECT_EQ(tt::read(got[i]), want[i]) << what << ", output " << i;
  }
}

std::vector<std::vector<double>> read_all(const std::vector<Tensor>& ts) {
  std::vector<std::vector<double>> v;
  for (const auto& t : ts) v.push_back(tt::read(t));
  return v;
}

}  // namespace

// The second call of a signature is recorded as one CUDA graph and later calls launch
// it: the results are bit-identical to the node-by-node first call (same kernels) and
// match the uncompiled function.
TEST(CudaGraphs, CompiledReplayLaunchesOneGraphWithTheSameResults) {
  REQUIRE_CUDA();
  const auto args = mlp3_args(21);
  const auto eager = read_all([&] { auto r = mlp3(args); eval(r); return r; }());
  auto f = compile(mlp3);
  reset_jit_stats();
  const auto first = read_all(f(args));
  for (size_t i = 0; i < first.size(); ++i)
    for (size_t j = 0; j < first[i].size(); ++j)
      ASSERT_NEAR(first[i][j], eager[i][j], 1e-4 * (1.0 + std::abs(eager[i][j])));
  for (int i = 0; i < 5; ++i) expect_same(f(args), first, "replay " + std::to_string(i));
  const JitStats js = jit_stats();
  EXPECT_EQ(js.graph_captures, 1u);
  EXPECT_EQ(js.graph_replays, 5u);
  EXPECT_EQ(js.graph_fallbacks, 0u);
  EXPECT_EQ(f.traces(), 1);
}

// While the outputs of the last launch are held, a second recording serves the call;
// with both held the call runs node by node. Held outputs are never overwritten.
TEST(CudaGraphs, HeldOutputsAreNeverOverwritten) {
  REQUIRE_CUDA();
  const auto args = mlp3_args(22);
  auto f = compile(mlp3);
  const auto want = read_all(f(args));
  reset_jit_stats();
  auto a = f(args);  // recording 1
  auto b = f(args);  // recording 1 is busy: recording 2
  auto c = f(args);  // both busy: node by node
  JitStats js = jit_stats();
  EXPECT_EQ(js.graph_captures, 2u);
  EXPECT_EQ(js.graph_replays, 2u);
  EXPECT_EQ(js.graph_fallbacks, 1u);
  expect_same(a, want, "first held result");
  expect_same(b, want, "second held result");
  expect_same(c, want, "node-by-node result");
  a.clear();
  expect_same(f(args), want, "after releasing the first");
  expect_same(b, want, "second held result after another launch");
  EXPECT_EQ(jit_stats().graph_replays, 3u);
}

// Arguments with new storage on every call are copied into the recording: after one
// re-recording every call is a graph launch, each with its own inputs' result.
TEST(CudaGraphs, NewArgumentsEveryCallAreCopiedIn) {
  REQUIRE_CUDA();
  const auto params = mlp3_args(23);
  auto f = compile(mlp3);
  reset_jit_stats();
  for (uint64_t i = 0; i < 6; ++i) {
    const Tensor x = random::normal(random::key(100 + i), {64, 128}, float32, 0, 1, kGPU).eval();
    const std::vector<Tensor> args{x, params[1], params[2]};
    auto want = mlp3(args);
    eval(want);
    const auto got = f(args);
    for (size_t o = 0; o < got.size(); ++o)
      EXPECT_TRUE(same_as_cpu(got[o], want[o].to(kCPU), Tol{1e-5, 1e-6},
                              "call " + std::to_string(i) + " output " + std::to_string(o)));
  }
  const JitStats js = jit_stats();
  EXPECT_EQ(js.graph_captures, 2u) << "once in place, once more with the argument copied in";
  EXPECT_EQ(js.graph_replays, 5u);
}

// A loop that feeds the outputs back as arguments (an optimiser step) alternates
// between two recordings and matches the uncompiled loop.
TEST(CudaGraphs, OutputsFedBackAsArguments) {
  REQUIRE_CUDA();
  const auto k = random::key(24);
  const Tensor p0 = random::normal(k, {32, 64}, float32, 0, 1, kGPU).eval();
  const Tensor w = random::normal(random::fold_in(k, 1), {64, 64}, float32, 0, 0.1, kGPU).eval();
  auto step = [](const std::vector<Tensor>& a) {
    return std::vector<Tensor>{a[0] * 0.5 + tanh(matmul(a[0], a[1]))};
  };
  auto f = compile(step);
  reset_jit_stats();
  Tensor p = p0, q = p0;
  for (int i = 0; i < 10; ++i) {
    p = f({p, w})[0];
    q = step({q, w})[0].eval();
  }
  EXPECT_TRUE(same_as_cpu(p, q.to(kCPU), Tol{1e-5, 1e-6}, "10 compiled steps"));
  const JitStats js = jit_stats();
  EXPECT_LE(js.graph_captures, 3u);
  EXPECT_GE(js.graph_replays, 8u);
  EXPECT_EQ(js.graph_fallbacks, 0u);
}

// A compiled gradient records its weight and bias gradients (outputs nothing else
// reads) on the graph's second lane, beside the chain of activation gradients. The
// replays match the node-by-node first call bit for bit (the same kernels on the
// same data: a buffer reused too early by the other lane would show) and the
// uncompiled gradient, also when the outputs are released and the memory of the
// recording is reused by the next launch.
TEST(CudaGraphs, GradientLanesGiveTheSameResults) {
  REQUIRE_CUDA();
  constexpr int kL = 4;
  auto loss = [](const TensorList& a) {
    Tensor h = a[0];
    for (int i = 0; i < kL; ++i) h = gelu(matmul(h, a[1 + i]) + a[1 + kL + i]);
    return mean(h * h);
  };
  const auto k = random::key(25);
  TensorList args{random::normal(k, {64, 96}, float32, 0, 1, kGPU)};
  for (int i = 0; i < kL; ++i)
    args.push_back(random::normal(random::fold_in(k, 1 + i), {96, 96}, float32, 0, 0.1, kGPU));
  for (int i = 0; i < kL; ++i)
    args.push_back(random::normal(random::fold_in(k, 9 + i), {96}, float32, 0, 0.1, kGPU));
  eval(args);
  std::vector<int> params;
  for (int i = 1; i <= 2 * kL; ++i) params.push_back(i);
  const Function flat = tt::value_and_grad_list(loss, params);
  const auto eager = read_all([&] {
    auto r = flat(args);
    eval(r);
    return r;
  }());
  auto f = compile(flat);
  reset_jit_stats();
  const auto first = read_all(f(args));
  ASSERT_EQ(first.size(), eager.size());
  for (size_t o = 0; o < eager.size(); ++o)
    for (size_t j = 0; j < eager[o].size(); ++j)
      ASSERT_NEAR(first[o][j], eager[o][j], 1e-4 * (1.0 + std::abs(eager[o][j])))
          << "output " << o << " entry " << j;
  for (int i = 0; i < 6; ++i) expect_same(f(args), first, "replay " + std::to_string(i));
  const JitStats js = jit_stats();
  EXPECT_EQ(js.graph_captures, 1u);
  EXPECT_EQ(js.graph_replays, 6u);
  if (tmath::detail::env_off("TMATH_CUDA_LANES"))
    EXPECT_EQ(js.graph_lane_ops, 0u);
  else  // the 2 kL - 1 parameter gradients before the last layer's
    EXPECT_GE(js.graph_lane_ops, static_cast<uint64_t>(kL));
}

// Functions the device cannot record (a solver that reports to the host) run node by
// node, correctly, and recording is not attempted again for that signature.
TEST(CudaGraphs, UnrecordableFunctionsRunNodeByNode) {
  REQUIRE_CUDA();
  const std::vector<double> av = {4, 1, 0, 1, 3, 1, 0, 1, 2};
  const Tensor a = tt::make(av, {3, 3}, float64).to(kGPU).eval();
  const Tensor b = tt::make({1, 2, 3}, {3}, float64).to(kGPU).eval();
  auto f = compile([](const std::vector<Tensor>& x) {
    return std::vector<Tensor>{linalg::solve(x[0], x[1]) * 2.0};
  });
  reset_jit_stats();
  const auto want = tt::read(linalg::solve(a, b) * 2.0);
  for (int i = 0; i < 4; ++i) {
    const auto got = tt::read(f({a, b})[0]);
    ASSERT_EQ(got.size(), 3u);
    for (size_t j = 0; j < 3; ++j) EXPECT_NEAR(got[j], want[j], 1e-12);
  }
  const JitStats js = jit_stats();
  EXPECT_EQ(js.graph_captures, 0u);
  EXPECT_EQ(js.graph_replays, 0u);
  EXPECT_EQ(js.graph_fallbacks, 1u);
}

// Outputs that are an argument or a view of one, and constants, come back right
// from a launch; the recording's memory returns to the cache with the function.
TEST(CudaGraphs, AliasedOutputsAndMemoryReturn) {
  REQUIRE_CUDA();
  const auto args = mlp3_args(25);
  const Tensor c = full({4}, 3.0, float32, kGPU).eval();
  const MemoryStats m0 = memory_stats(kGPU);
  {
    auto f = compile([c](const std::vector<Tensor>& a) {
      return std::vector<Tensor>{a[0], reshape(a[1], {128 * 128}), c, exp(a[2])};
    });
    const auto want = read_all(f(args));
    reset_jit_stats();
    for (int i = 0; i < 3; ++i) expect_same(f(args), want, "aliased outputs");
    EXPECT_EQ(jit_stats().graph_replays, 3u);
  }
  const MemoryStats m1 = memory_stats(kGPU);
  EXPECT_EQ(m1.active_bytes, m0.active_bytes) << "the recording kept memory after it died";
}

// A gradient of a compiled function sees its nodes (no graph while a transform records).
TEST(CudaGraphs, TransformsOfCompiledFunctionsStillDifferentiate) {
  REQUIRE_CUDA();
  const auto args = mlp3_args(26);
  auto f = compile([](const std::vector<Tensor>& a) { return std::vector<Tensor>{sum(mlp3(a)[0])}; });
  auto g = grad([&](const std::vector<Tensor>& a) { return f(a)[0]; }, {1});
  auto ge = grad([](const std::vector<Tensor>& a) { return sum(mlp3(a)[0]); }, {1});
  for (int i = 0; i < 3; ++i) {
    const Tensor got = g(args)[0];
    EXPECT_TRUE(same_as_cpu(got, ge(args)[0].to(kCPU), Tol{1e-4, 1e-5}, "gradient"));
  }
}

// ---- the tiny-op queue (DeviceContext::queue_tiny) ----------------------------------

namespace {
uint64_t queued_ops() { return jit_stats().queued_ops; }
uint64_t queue_launches() { return jit_stats().queue_launches; }
const std::set<OpCode>& tiny_unary_ops() {
  static const std::set<OpCode> s = {
      OpCode::Neg,     OpCode::Abs,   OpCode::Sign,       OpCode::Exp,    OpCode::Expm1,
      OpCode::Log,     OpCode::Log1p, OpCode::Sqrt,       OpCode::Rsqrt,  OpCode::Square,
      OpCode::Reciprocal, OpCode::Sin, OpCode::Cos,       OpCode::Tanh,   OpCode::Sigmoid,
      OpCode::Relu,    OpCode::Silu,  OpCode::GeluTanh,   OpCode::Floor,  OpCode::Ceil,
      OpCode::Round};
  return s;
}
}  // namespace

// Eager float32 ops on small tensors go through the queue: every queued op gives
// bit for bit what its own kernel gives (the same op on a tensor too large for the
// queue, whose leading elements are the small tensor's), and many ops share a launch.
TEST(CudaTinyQueue, QueuedOpsEqualTheirOwnKernels) {
  REQUIRE_CUDA();
  std::mt19937 rng(41);
  const int64_t big = 4096, n = 45;  // the queue takes up to 1024 elements by default
  const uint64_t q0 = queued_ops(), l0 = queue_launches();
  int ops = 0;
  for (const auto& [op, fn] : unary_fns()) {
    if (!tiny_unary_ops().count(op)) continue;
    auto [lo, hi] = unary_domain(op);
    Tensor xb = rand_cpu(rng, {big}, float32, lo, hi).to(kGPU).eval();
    Tensor xs = copy(slice(xb, 0, 0, n)).eval();
    const std::vector<float> want = fn(xb).to_vector<float>();  // its own kernel
    const std::vector<float> got = fn(xs).eval().to_vector<float>();
    ++ops;
    ASSERT_EQ(got.size(), static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      EXPECT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
          << op_name(op) << " element " << i << ": " << got[i] << " vs " << want[i];
  }
  for (OpCode op : {OpCode::Add, OpCode::Subtract, OpCode::Multiply, OpCode::Divide,
                    OpCode::Maximum, OpCode::Minimum}) {
    const BinaryFn& fn = binary_fns().at(op);
    Tensor ab = rand_cpu(rng, {big}, float32, -3, 3, true).to(kGPU).eval();
    Tensor bb = rand_cpu(rng, {big}, float32, -3, 3, true).to(kGPU).eval();
    Tensor as = copy(slice(ab, 0, 0, n)).eval(), bs = copy(slice(bb, 0, 0, n)).eval();
    Tensor b0 = slice(bb, 0, 0, 1).reshape({}).eval();  // a single element, broadcast
    const std::vector<float> want = fn(ab, bb).to_vector<float>();
    const std::vector<float> want0 = fn(ab, b0).to_vector<float>();
    const std::vector<float> got = fn(as, bs).eval().to_vector<float>();
    const std::vector<float> got0 = fn(as, b0).eval().to_vector<float>();
    ops += 2;
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
          << op_name(op) << " element " << i;
      EXPECT_EQ(std::bit_cast<uint32_t>(got0[i]), std::bit_cast<uint32_t>(want0[i]))
          << op_name(op) << " with a scalar, element " << i;
    }
  }
  EXPECT_GE(queued_ops() - q0, static_cast<uint64_t>(ops)) << "small ops bypassed the queue";
  // Many eager ops before one read: one launch per TM_TINY_MAX (120) of them.
  Tensor x = rand_cpu(rng, {8}, float32, -1, 1).to(kGPU).eval();
  const uint64_t q1 = queued_ops(), l1 = queue_launches();
  Tensor y = x;
  for (int i = 0; i < 300; ++i) y = (i % 2 ? tanh(y) : y * x).eval();
  (void)y.to_vector<float>();
  EXPECT_EQ(queued_ops() - q1, 300u);
  EXPECT_EQ(queue_launches() - l1, 3u);  // 120 + 120 + 60 (the read launches the rest)
  EXPECT_GT(queue_launches(), l0);
}

// Work around queued ops: intermediates dropped while queued (their blocks reused by
// later ops), a matmul, a reduction and a copy from the host, all in program order,
// against the same eager code on the CPU.
TEST(CudaTinyQueue, QueuedOpsStayInOrderWithOtherWork) {
  REQUIRE_CUDA();
  auto run = [](Device d) {
    Tensor x = random::uniform(random::key(5), {16}, float32, -1, 1).to(d).eval();
    Tensor w = random::uniform(random::key(6), {16, 16}, float32, -0.3, 0.3).to(d).eval();
    Tensor y = x;
    for (int i = 0; i < 200; ++i) {
      y = (y * 0.9f).eval();
      y = tanh(y + x).eval();
      if (i % 50 == 7) y = matmul(w, y).eval();                    // cuBLAS
      if (i % 50 == 19) y = (y - mean(y)).eval();                  // a reduction kernel
      if (i % 50 == 31) y = (y + from_vector(std::vector<float>(16, 0.25f), {16}).to(d)).eval();
    }
    return y.to_vector<float>();
  };
  const std::vector<float> want = run(kCPU);
  const uint64_t q0 = queued_ops();
  const std::vector<float> got = run(kGPU);
  EXPECT_GE(queued_ops() - q0, 200u);  // y * 0.9 (tanh(y + x) is one fused kernel)
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 2e-5) << "element " << i;
}

// Blocks the queued ops write may be in the cache when it goes back to the driver:
// the queue runs first (no illegal address), and the engine stays usable.
TEST(CudaTinyQueue, EmptyCacheRunsTheQueueFirst) {
  REQUIRE_CUDA();
  Tensor x = random::uniform(random::key(8), {64}, float32, 0, 1).to(kGPU).eval();
  const std::vector<float> xv = x.to_vector<float>();
  for (int i = 0; i < 10; ++i) {
    { Tensor dropped = exp(x).eval(); }  // queued; its block goes back to the cache
    empty_cache(kGPU);
  }
  Tensor y = exp(x).eval();
  empty_cache(kGPU);
  get_backend("cuda")->synchronize(kGPU);
  const std::vector<float> yv = y.to_vector<float>();
  for (size_t i = 0; i < xv.size(); ++i) EXPECT_NEAR(yv[i], std::exp(xv[i]), 1e-6 * std::exp(xv[i]));
}

// sum, max and min of a whole small float32 tensor run in the queue: results against
// float64 sums of the same values, exact maxima and minima, NaN propagated.
TEST(CudaTinyQueue, WholeTensorReductions) {
  REQUIRE_CUDA();
  std::mt19937 rng(43);
  const uint64_t q0 = queued_ops();
  for (int64_t n : {1, 7, 256, 1000}) {
    Tensor x = rand_cpu(rng, {2, n / 2 > 0 ? n / 2 : 1}, float32, -2, 2);
    const std::vector<float> v = x.to_vector<float>();
    Tensor xd = x.to(kGPU).eval();
    double s = 0, mag = 0;
    float mx = -INFINITY, mn = INFINITY;
    for (float e : v) {
      s += e;
      mag += std::fabs(e);
      mx = std::max(mx, e);
      mn = std::min(mn, e);
    }
    EXPECT_NEAR(sum(xd).item<float>(), s, 1e-6 * mag + 1e-7) << "n " << v.size();
    EXPECT_EQ(max(xd).item<float>(), mx) << "n " << v.size();
    EXPECT_EQ(min(xd).item<float>(), mn) << "n " << v.size();
  }
  Tensor xn = from_vector(std::vector<float>{1.0f, NAN, 3.0f}, {3}).to(kGPU).eval();
  EXPECT_TRUE(std::isnan(max(xn).item<float>()));
  EXPECT_TRUE(std::isnan(min(xn).item<float>()));
  EXPECT_TRUE(std::isnan(sum(xn).item<float>()));
  EXPECT_GE(queued_ops() - q0, 15u);
  // Along an axis (not a whole-tensor reduction): the reduction kernels, same values.
  Tensor m = rand_cpu(rng, {4, 6}, float32, -1, 1);
  const std::vector<float> want = sum(m, {1}).to_vector<float>();
  const std::vector<float> got = sum(m.to(kGPU), {1}).to_vector<float>();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6);
}

// x @ y of small float32 vectors runs in the queue (a 1 x k by k x 1 product); larger
// ones through cuBLAS. Both against float64 dot products of the same values.
TEST(CudaTinyQueue, SmallDotProducts) {
  REQUIRE_CUDA();
  std::mt19937 rng(47);
  for (int64_t k : {1, 8, 1000, 2000}) {
    Tensor x = rand_cpu(rng, {k}, float32, -1, 1), y = rand_cpu(rng, {k}, float32, -1, 1);
    const std::vector<float> xv = x.to_vector<float>(), yv = y.to_vector<float>();
    double want = 0, mag = 0;
    for (int64_t i = 0; i < k; ++i) {
      want += static_cast<double>(xv[i]) * yv[i];
      mag += std::fabs(static_cast<double>(xv[i]) * yv[i]);
    }
    Tensor xd = x.to(kGPU).eval(), yd = y.to(kGPU).eval();
    const uint64_t q0 = queued_ops();
    const float got = matmul(xd, yd).item<float>();
    const float got2 = matmul(reshape(xd, {1, k}), reshape(yd, {k, 1})).item<float>();
    EXPECT_EQ(queued_ops() - q0, k <= 1024 ? 2u : 0u) << "k " << k;
    EXPECT_NEAR(got, want, 1e-6 * mag + 1e-7) << "k " << k;
    EXPECT_NEAR(got2, want, 1e-6 * mag + 1e-7) << "k " << k;
  }
}
