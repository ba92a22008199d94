#include "backend/cpu/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace tmath::cpu {
namespace {

int default_threads() {
  if (const char* e = std::getenv("TMATH_NUM_THREADS")) {
    int n = std::atoi(e);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

thread_local bool t_in_pool = false;

// Workers sleep on a condition variable; a job is a range split in chunks that
// the caller and the workers claim with an atomic counter.
class Pool {
 public:
  explicit Pool(int n) : target_(n) {}
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  int size() const { return target_; }
  void resize(int n) { target_ = std::max(1, n); }

  void run(int64_t n, int64_t chunks, const std::function<void(int64_t, int64_t)>& fn) {
    std::lock_guard<std::mutex> job_lock(job_mu_);  // one parallel job at a time
    ensure_workers(static_cast<int>(chunks) - 1);
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = &fn;
      n_ = n;
      chunks_ = chunks;
      next_.store(0);
      remaining_.store(chunks);
      error_ = nullptr;
      ++generation_;
    }
    cv_.notify_all();
    work();
    while (remaining_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
    std::exception_ptr err;
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = nullptr;
      err = error_;
    }
    if (err) std::rethrow_exception(err);
  }

 private:
  void ensure_workers(int want) {
    want = std::min(want, target_ - 1);
    while (static_cast<int>(workers_.size()) < want) workers_.emplace_back([this] { loop(); });
  }

  void work() {
    const auto& fn = *fn_;
    for (;;) {
      int64_t c = next_.fetch_add(1);
      if (c >= chunks_) break;
      int64_t b = n_ * c / chunks_, e = n_ * (c + 1) / chunks_;
      try {
        fn(b, e);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu_);
        if (!error_) error_ = std::current_exception();
      }
      remaining_.fetch_sub(1, std::memory_order_release);
    }
  }

  void loop() {
    t_in_pool = true;
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || (generation_ != seen && fn_ != nullptr); });
        if (stop_) return;
        seen = generation_;
      }
      work();
    }
  }

  int target_;
  std::vector<std::thread> workers_;
  std::mutex job_mu_, mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  uint64_t generation_ = 0;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0, chunks_ = 0;
  std::atomic<int64_t> next_{0}, remaining_{0};
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool p(default_threads());
  return p;
}
}  // namespace

int num_threads() { return pool().size(); }
void set_num_threads(int n) { pool().resize(n); }

bool in_pool_thread() { return t_in_pool; }

void parallel_run(int64_t n, int64_t chunks, const std::function<void(int64_t, int64_t)>& fn) {
  pool().run(n, chunks, fn);
}

}  // namespace tmath::cpu
