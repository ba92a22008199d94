// CPU caching allocator: statistics, cache reuse, empty_cache, limits, and the
// steady-state loop of the issue (hit rate and peak memory).
#include "test_util.h"

using namespace tmath;

namespace {
Tensor alloc_eval(int64_t n, DType dt = float32) {
  Tensor t = zeros({n}, dt);
  t.eval();
  return t;
}
}  // namespace

TEST(Memory, StatsMoveAsExpected) {
  empty_cache();
  const auto s0 = memory_stats();
  EXPECT_EQ(s0.cached_bytes, 0u);
  const int64_t n = 1 << 18;  // 1 MiB of float32
  Tensor t = alloc_eval(n);
  const auto s1 = memory_stats();
  EXPECT_GE(s1.allocations, s0.allocations + 1);
  EXPECT_GE(s1.cache_misses, s0.cache_misses + 1) << "the cache was empty";
  EXPECT_GE(s1.active_bytes, s0.active_bytes + n * 4);
  EXPECT_GE(s1.requested_bytes, s0.requested_bytes + n * 4);
  EXPECT_GE(s1.peak_bytes, s1.active_bytes);
  t = Tensor();
  const auto s2 = memory_stats();
  EXPECT_LE(s2.active_bytes, s1.active_bytes - n * 4);
  EXPECT_GE(s2.cached_bytes, static_cast<uint64_t>(n * 4)) << "freed block should be cached";
  EXPECT_EQ(s2.peak_bytes, s1.peak_bytes) << "peak does not drop on free";
  EXPECT_EQ(s2.allocations, s1.allocations) << "free is not an allocation";
}

TEST(Memory, SameSizeAllocationsHitTheCache) {
  empty_cache();
  const int64_t n = 100000;
  alloc_eval(n);  // fills the cache with one block of this size
  const auto s1 = memory_stats();
  for (int i = 0; i < 20; ++i) alloc_eval(n);
  const auto s2 = memory_stats();
  EXPECT_GE(s2.allocations - s1.allocations, 20u);
  EXPECT_EQ(s2.cache_misses, s1.cache_misses) << "same-size allocations must reuse the block";
  EXPECT_GE(s2.cache_hits - s1.cache_hits, 20u);
  EXPECT_EQ(s2.allocations - s1.allocations,
            (s2.cache_hits - s1.cache_hits) + (s2.cache_misses - s1.cache_misses));
  // A slightly smaller request in the same size class also hits.
  alloc_eval(n - 3);
  EXPECT_EQ(memory_stats().cache_misses, s2.cache_misses);
}

TEST(Memory, EmptyCacheDropsCachedBytes) {
  for (int64_t n : {1000, 50000, 300000}) alloc_eval(n);
  EXPECT_GT(memory_stats().cached_bytes, 0u);
  empty_cache();
  EXPECT_EQ(memory_stats().cached_bytes, 0u);
  // Live tensors are not touched.
  Tensor keep = tt::make({1, 2, 3});
  keep.eval();
  empty_cache();
  EXPECT_TRUE(tt::all_equal(keep, {1, 2, 3}));
  // After empty_cache the next allocation misses.
  const auto s = memory_stats();
  alloc_eval(123456);
  EXPECT_GE(memory_stats().cache_misses, s.cache_misses + 1);
}

TEST(Memory, ResetPeak) {
  { Tensor big = alloc_eval(1 << 20); }
  const auto before = memory_stats();
  EXPECT_GE(before.peak_bytes, uint64_t{4} << 20);
  reset_peak_memory_stats();
  const auto after = memory_stats();
  EXPECT_EQ(after.peak_bytes, after.active_bytes);
}

TEST(Memory, LimitCapsAndCanBeRemoved) {
  empty_cache();
  {
    // Fill the cache with blocks no later request can reuse directly: 1 + 2 + 4 MiB.
    Tensor a = alloc_eval(1 << 18), b = alloc_eval(1 << 19), c = alloc_eval(1 << 20);
  }
  set_memory_limit(uint64_t{10} << 20);
  EXPECT_EQ(memory_stats().limit_bytes, uint64_t{10} << 20);
  // 8 MiB only fits under the 10 MiB cap (which counts cached bytes) once the cache is freed.
  Tensor big;
  EXPECT_NO_THROW(big = alloc_eval(1 << 21));
  EXPECT_EQ(big.size(), 1 << 21);
  // With 8 MiB alive, another 4 MiB exceeds the cap.
  EXPECT_THROW(alloc_eval(1 << 20), OutOfMemoryError);
  EXPECT_TRUE(tt::all_equal(sum(big), {0.0})) << "the live tensor survives the failed request";
  big = Tensor();
  set_memory_limit(0);
  EXPECT_EQ(memory_stats().limit_bytes, 0u);
  EXPECT_NO_THROW(alloc_eval(1 << 22));
}

// The steady-state loop: y = tanh(x @ w + b) at 512x512 float32, lazy mode.
TEST(Memory, SteadyStateLoopHitRateAndPeak) {
  EagerScope lazy(false);
  const int64_t n = 512;
  auto k = random::split(random::key(77), 3);
  Tensor x = random::uniform(k[0], {n, n}, float32, -1, 1);
  Tensor w = random::uniform(k[1], {n, n}, float32, -0.05, 0.05);
  Tensor b = random::uniform(k[2], {n}, float32, -1, 1);
  tmath::eval({x, w, b});
  Tensor y;
  for (int i = 0; i < 5; ++i) {  // warm-up
    y = tanh(matmul(x, w) + b);
    y.eval();
  }
  const auto s0 = memory_stats();
  reset_peak_memory_stats();
  const int iters = 200;
  for (int i = 0; i < iters; ++i) {
    y = tanh(matmul(x, w) + b);
    y.eval();
  }
  const auto s1 = memory_stats();
  const uint64_t allocs = s1.allocations - s0.allocations;
  const uint64_t hits = s1.cache_hits - s0.cache_hits;
  ASSERT_GT(allocs, 0u);
  const double hit_rate = static_cast<double>(hits) / static_cast<double>(allocs);
  EXPECT_GE(hit_rate, 0.99) << hits << " hits of " << allocs << " allocations";
  // Bytes alive at the end: x, w, b, y (and whatever other tests keep alive, in both).
  const uint64_t alive = s1.active_bytes;
  EXPECT_GE(alive, static_cast<uint64_t>(3 * n * n * 4 + n * 4));
  EXPECT_LE(static_cast<double>(s1.peak_bytes), 1.05 * static_cast<double>(alive))
      << "peak " << s1.peak_bytes << " vs alive " << alive
      << " (x, w, b, y = " << (x.nbytes() + w.nbytes() + b.nbytes() + y.nbytes()) << ")";
  // The result is right.
  auto xv = tt::read(x), wv = tt::read(w), bv = tt::read(b), yv = tt::read(y);
  for (int i : {0, 17, 511}) {
    for (int j : {0, 300, 511}) {
      double acc = 0;
      for (int p = 0; p < n; ++p) acc += xv[i * n + p] * wv[p * n + j];
      EXPECT_NEAR(yv[i * n + j], std::tanh(acc + bv[j]), 1e-5) << i << "," << j;
    }
  }
}
