// Independent tensors used from several threads at once (also run under ASan in CI).
#include <atomic>
#include <set>
#include <thread>

#include "backend/cpu/thread_pool.h"
#include "ref_util.h"
#include "test_util.h"

using namespace tmath;

namespace {

// A mixed workload on one thread's own tensors; returns everything it computed.
std::vector<std::vector<double>> workload(int seed, int iters) {
  std::mt19937 rng(seed);
  auto a = tt::rand_tensor(rng, {48, 64}, float32, -1, 1);
  auto b = tt::rand_tensor(rng, {64, 32}, float32, -1, 1);
  auto c = tt::rand_tensor(rng, {48, 32}, float64, -1, 1);
  std::vector<std::vector<double>> out;
  for (int i = 0; i < iters; ++i) {
    Tensor m = matmul(a.t, b.t);                                 // BLAS
    Tensor e = tanh(m * 0.5f + 1.0f) - sigmoid(m);               // elementwise chain
    Tensor s = softmax(e, -1);                                   // row kernel
    Tensor r = sum(s * m, {1}, true);                            // reduction
    Tensor v = var(c.t + static_cast<double>(i), {0});           // float64 two-pass
    Tensor t = transpose(e).index({Slice(1, std::nullopt, 3)});  // views
    Tensor cs = cumsum(t, 1);
    Tensor am = argmax(e, 1).astype(float64);
    Tensor rn = random::uniform(random::fold_in(random::key(seed), i), {257}, float32);
    Tensor ln = layer_norm(e);
    Tensor big = exp(broadcast_to(r, {48, 2000}) * 0.01f);  // large enough to use the pool
    Tensor bs = sum(big, {1});
    tmath::eval({r, v, cs, am, rn, ln, bs});
    for (const Tensor& x : {r, v, cs, am, rn, ln, bs}) out.push_back(tt::read(x));
  }
  return out;
}

}  // namespace

TEST(Threads, MixedOpsFromFourThreadsMatchSingleThreaded) {
  const int kThreads = 4, kIters = 6;
  std::vector<std::vector<std::vector<double>>> ref(kThreads), got(kThreads);
  for (int t = 0; t < kThreads; ++t) ref[t] = workload(100 + t, kIters);
  std::vector<std::thread> pool;
  std::vector<std::string> errors(kThreads);
  for (int t = 0; t < kThreads; ++t)
    pool.emplace_back([&, t] {
      try {
        got[t] = workload(100 + t, kIters);
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    });
  for (auto& th : pool) th.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(errors[t], "") << "thread " << t;
    ASSERT_EQ(got[t].size(), ref[t].size());
    for (size_t i = 0; i < ref[t].size(); ++i) {
      ASSERT_EQ(got[t][i].size(), ref[t][i].size());
      for (size_t j = 0; j < ref[t][i].size(); ++j)
        ASSERT_NEAR(got[t][i][j], ref[t][i][j], 1e-6 * (1 + std::fabs(ref[t][i][j])))
            << "thread " << t << " result " << i << " element " << j;
    }
  }
}

TEST(Threads, PoolJobsFromSeveralThreadsEachRunOnlyTheirOwnFunction) {
  // Many short parallel jobs started from four threads at once: every chunk of a job
  // must run that job's function exactly once (a worker that lingers after one job
  // must not take a chunk of the next job with the old function).
  const int kThreads = 4, kJobs = 5000, kN = 64;
  const int saved_threads = cpu::num_threads();
  cpu::set_num_threads(4);  // more pool threads than cores: workers get preempted mid-job
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> pool;
  for (int t = 0; t < kThreads; ++t)
    pool.emplace_back([&, t] {
      std::vector<int> hits(kN);
      for (int j = 0; j < kJobs && errors[t].empty(); ++j) {
        std::fill(hits.begin(), hits.end(), 0);
        const int tag = t * kJobs + j;
        std::vector<int> seen(kN, -1);
        cpu::parallel_for(kN, 1, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) {
            seen[i] = tag;
            ++hits[i];
          }
        });
        for (int i = 0; i < kN; ++i)
          if (seen[i] != tag || hits[i] != 1) {
            errors[t] = "job " + std::to_string(j) + " element " + std::to_string(i) +
                        ": tag " + std::to_string(seen[i]) + ", hits " + std::to_string(hits[i]);
            break;
          }
      }
    });
  for (auto& th : pool) th.join();
  cpu::set_num_threads(saved_threads);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(errors[t], "") << "thread " << t;
}

TEST(Threads, SharedInputReadConcurrently) {
  // Reading one evaluated tensor from several threads (ops on it) is safe.
  std::mt19937 rng(5);
  auto a = tt::rand_tensor(rng, {128, 128}, float64, -1, 1);
  a.t.eval();
  const auto want = tt::read(sum(exp(a.t), {0}));
  std::vector<std::vector<double>> got(4);
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t)
    pool.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) got[t] = tt::read(sum(exp(a.t), {0}));
    });
  for (auto& th : pool) th.join();
  for (int t = 0; t < 4; ++t) {
    ASSERT_EQ(got[t].size(), want.size());
    for (size_t j = 0; j < want.size(); ++j) EXPECT_NEAR(got[t][j], want[j], 1e-12 * want[j]);
  }
}

TEST(Threads, DefaultGeneratorKeysAreUniqueAcrossThreads) {
  random::seed(123);
  std::vector<std::vector<random::Key>> keys(4);
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t)
    pool.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) keys[t].push_back(random::next_key());
    });
  for (auto& th : pool) th.join();
  std::set<std::pair<uint32_t, uint32_t>> all;
  for (auto& v : keys)
    for (auto k : v) all.insert({k.k0, k.k1});
  EXPECT_EQ(all.size(), 2000u) << "next_key handed out the same key twice";
  random::seed(0);
}

TEST(Threads, EagerAndAutocastScopesArePerThread) {
  // AutocastScope is documented per thread: another thread's matmul is unaffected.
  std::atomic<bool> in_scope{false}, done{false};
  DType other_dtype = float64;
  std::thread th([&] {
    while (!in_scope.load()) std::this_thread::yield();
    other_dtype = matmul(ones({2, 2}), ones({2, 2})).dtype();
    done = true;
  });
  {
    AutocastScope ac(bfloat16);
    in_scope = true;
    while (!done.load()) std::this_thread::yield();
    EXPECT_EQ(matmul(ones({2, 2}), ones({2, 2})).dtype(), bfloat16);
  }
  th.join();
  EXPECT_EQ(other_dtype, float32);
}
