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
// the caller and the workers claim with an atomic counter. Each job's counters
// live in the job itself, and a worker joins a job only under the lock while it
// is published: the caller unpublishes it and waits for every worker that joined
// to leave before the job (and the caller's function) goes away, so a slow
// worker can never claim a chunk of the next job with the previous job's function.
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
    Job job(fn, n, chunks);
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &job;
      ++generation_;
    }
    cv_.notify_all();
    job.work();
    while (job.remaining.load(std::memory_order_acquire) > 0) std::this_thread::yield();
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = nullptr;  // no worker joins from now on
    }
    while (job.workers.load(std::memory_order_acquire) > 0) std::this_thread::yield();
    if (job.error) std::rethrow_exception(job.error);
  }

 private:
  struct Job {
    Job(const std::function<void(int64_t, int64_t)>& f, int64_t n_, int64_t c)
        : fn(f), n(n_), chunks(c), remaining(c) {}
    const std::function<void(int64_t, int64_t)>& fn;
    const int64_t n, chunks;
    std::atomic<int64_t> next{0}, remaining;
    std::atomic<int> workers{0};  // pool threads inside work()
    std::mutex error_mu;
    std::exception_ptr error;

    void work() {
      for (;;) {
        int64_t c = next.fetch_add(1);
        if (c >= chunks) break;
        int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
        try {
          fn(b, e);
        } catch (...) {
          std::lock_guard<std::mutex> lk(error_mu);
          if (!error) error = std::current_exception();
        }
        remaining.fetch_sub(1, std::memory_order_release);
      }
    }
  };

  void ensure_workers(int want) {
    want = std::min(want, target_ - 1);
    while (static_cast<int>(workers_.size()) < want) workers_.emplace_back([this] { loop(); });
  }

  void loop() {
    t_in_pool = true;
    uint64_t seen = 0;
    for (;;) {
      Job* job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || (generation_ != seen && job_ != nullptr); });
        if (stop_) return;
        seen = generation_;
        job = job_;
        job->workers.fetch_add(1, std::memory_order_relaxed);
      }
      job->work();
      job->workers.fetch_sub(1, std::memory_order_release);
    }
  }

  int target_;
  std::vector<std::thread> workers_;
  std::mutex job_mu_, mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  uint64_t generation_ = 0;
  Job* job_ = nullptr;
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
