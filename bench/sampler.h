// A sampling profiler for the plain bench programs, for machines without `perf`.
//
//   bench::Sampler s(20);   // a sample every 20 us of wall time of this thread
//   s.start(); ...work...; s.stop();
//   s.report(stdout, 25);   // the top functions by self and inclusive samples, and
//                           // library time (libc, driver) by the engine function calling it
//
// A POSIX timer on CLOCK_MONOTONIC signals the thread that called start() (SIGPROF);
// the handler stores the interrupted instruction and up to kDepth return addresses
// into preallocated memory. report() maps the addresses to (module, offset) with
// dladdr and names them with `addr2line -f -C` (binutils), one call per module;
// without addr2line the module+offset is printed. Unwinding runs in the signal
// handler through the unwinder of the C library (backtrace()), which is fine for a
// measuring program and not for production code: sample only around a loop that
// does not load libraries.
#pragma once

#include <dlfcn.h>
#include <execinfo.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace bench {

class Sampler {
 public:
  static constexpr int kDepth = 24;
  static constexpr size_t kMaxSamples = 200000;

  explicit Sampler(int period_us = 20) : period_us_(period_us) {
    frames_.assign(kMaxSamples * kDepth, nullptr);
    depth_.assign(kMaxSamples, 0);
    void* warm[4];
    backtrace(warm, 4);  // loads the unwinder outside the handler
  }
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;
  ~Sampler() { stop(); }

  void start() {
    self() = this;
    struct sigaction sa {};
    sa.sa_sigaction = &Sampler::handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPROF, &sa, nullptr);
    struct sigevent ev {};
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGPROF;
    ev._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
    if (timer_create(CLOCK_MONOTONIC, &ev, &timer_) != 0) {
      std::perror("sampler: timer_create");
      return;
    }
    struct itimerspec its {};
    its.it_interval.tv_nsec = static_cast<long>(period_us_) * 1000;
    its.it_value = its.it_interval;
    timer_settime(timer_, 0, &its, nullptr);
    running_ = true;
  }

  void stop() {
    if (!running_) return;
    timer_delete(timer_);
    running_ = false;
    signal(SIGPROF, SIG_IGN);
  }

  size_t samples() const { return std::min(count_.load(), kMaxSamples); }

  void report(FILE* out, int top) const {
    const size_t n = samples();
    std::set<void*> addrs;
    for (size_t i = 0; i < n; ++i)
      for (int d = 0; d < depth_[i]; ++d) addrs.insert(frames_[i * kDepth + d]);
    const std::unordered_map<void*, std::string> names = resolve(addrs);
    std::map<std::string, size_t> self, incl, from;
    for (size_t i = 0; i < n; ++i) {
      if (depth_[i] == 0) continue;
      const std::string& leaf = names.at(frames_[i * kDepth]);
      ++self[leaf];
      // Library time (libc, the driver) charged to the innermost engine function.
      if (leaf.find("tmath::") == std::string::npos) {
        for (int d = 1; d < depth_[i]; ++d) {
          const std::string& f = names.at(frames_[i * kDepth + d]);
          if (f.find("tmath::") != std::string::npos) {
            ++from[leaf.substr(0, 40) + "  <-  " + f];
            break;
          }
        }
      }
      std::set<std::string> seen;
      for (int d = 0; d < depth_[i]; ++d) seen.insert(names.at(frames_[i * kDepth + d]));
      for (const std::string& s : seen) ++incl[s];
    }
    std::fprintf(out, "sampler: %zu samples every %d us (%zu dropped)\n", n, period_us_,
                 count_.load() > kMaxSamples ? count_.load() - kMaxSamples : size_t{0});
    print(out, "self", self, n, top);
    print(out, "inclusive", incl, n, top);
    print(out, "library time by engine caller", from, n, top);
  }

 private:
  static Sampler*& self() {
    static Sampler* s = nullptr;
    return s;
  }

  static void handler(int, siginfo_t*, void* uctx) {
    Sampler* s = self();
    if (!s) return;
    const size_t i = s->count_.fetch_add(1, std::memory_order_relaxed);
    if (i >= kMaxSamples) return;
    void* buf[kDepth + 4];
    const int got = backtrace(buf, kDepth + 4);
    auto* uc = static_cast<ucontext_t*>(uctx);
    void* pc = reinterpret_cast<void*>(uc->uc_mcontext.gregs[REG_RIP]);
    // Frames up to the signal trampoline belong to the handler; start at the
    // interrupted instruction (the unwinder reports it exactly) or after them.
    int first = -1;
    for (int k = 0; k < got; ++k)
      if (buf[k] == pc) {
        first = k;
        break;
      }
    void** dst = &s->frames_[i * kDepth];
    int d = 0;
    dst[d++] = pc;
    for (int k = (first >= 0 ? first + 1 : 3); k < got && d < kDepth; ++k)
      dst[d++] = static_cast<char*>(buf[k]) - 1;  // inside the call instruction
    s->depth_[i] = d;
  }

  static std::unordered_map<void*, std::string> resolve(const std::set<void*>& addrs) {
    std::unordered_map<void*, std::string> names;
    std::map<std::string, std::vector<std::pair<void*, uintptr_t>>> by_module;
    for (void* a : addrs) {
      Dl_info info{};
      if (dladdr(a, &info) && info.dli_fname) {
        const uintptr_t off = reinterpret_cast<uintptr_t>(a) - reinterpret_cast<uintptr_t>(info.dli_fbase);
        by_module[info.dli_fname].push_back({a, off});
      } else {
        names[a] = "??";
      }
    }
    for (auto& [mod, list] : by_module) {
      std::string base = mod.substr(mod.find_last_of('/') + 1);
      // addr2line reads offsets from stdin, one line per address; two lines come back
      // per address (-f: function, then file:line).
      const std::string tmp = "/tmp/tm_sampler_" + std::to_string(getpid()) + ".txt";
      FILE* f = std::fopen(tmp.c_str(), "w");
      for (auto& [a, off] : list) std::fprintf(f, "0x%lx\n", static_cast<unsigned long>(off));
      std::fclose(f);
      const std::string cmd = "addr2line -f -C -e '" + mod + "' < " + tmp + " 2>/dev/null";
      FILE* p = popen(cmd.c_str(), "r");
      char line[4096];
      size_t k = 0;
      bool ok = p != nullptr;
      while (ok && k < list.size() && std::fgets(line, sizeof line, p)) {
        std::string fn(line);
        while (!fn.empty() && (fn.back() == '\n' || fn.back() == '\r')) fn.pop_back();
        if (!std::fgets(line, sizeof line, p)) break;
        if (fn == "??") fn = base + "+0x" + hex(list[k].second);
        if (fn.size() > 110) fn = fn.substr(0, 107) + "...";
        names[list[k].first] = fn + "  [" + base + "]";
        ++k;
      }
      if (p) pclose(p);
      std::remove(tmp.c_str());
      for (; k < list.size(); ++k) names[list[k].first] = base + "+0x" + hex(list[k].second);
    }
    return names;
  }

  static std::string hex(uintptr_t v) {
    char b[32];
    std::snprintf(b, sizeof b, "%lx", static_cast<unsigned long>(v));
    return b;
  }

  static void print(FILE* out, const char* what, const std::map<std::string, size_t>& m, size_t n,
                    int top) {
    std::vector<std::pair<size_t, std::string>> v;
    for (auto& [k, c] : m) v.push_back({c, k});
    std::sort(v.rbegin(), v.rend());
    std::fprintf(out, "  -- %s --\n", what);
    for (int i = 0; i < top && i < static_cast<int>(v.size()); ++i)
      std::fprintf(out, "  %5.1f%%  %s\n", 100.0 * static_cast<double>(v[i].first) / static_cast<double>(std::max<size_t>(n, 1)),
                   v[i].second.c_str());
  }

  int period_us_;
  timer_t timer_{};
  bool running_ = false;
  std::atomic<size_t> count_{0};
  std::vector<void*> frames_;
  std::vector<int> depth_;
};

}  // namespace bench
