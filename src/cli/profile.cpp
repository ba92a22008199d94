// `tmath profile`: the op table, timed on every available backend next to the
// native references measured in the same run (OpenBLAS called directly, plain
// C++ loops, and NumPy when .venv has it).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cli/cli.h"
#include "cli/json.h"
#include "cli/profile_linalg.h"
#include "cli/reference.h"
#include "core/tensor_impl.h"
#include "tmath/backend.h"
#include "tmath/error.h"
#include "tmath/memory.h"
#include "tmath/ops.h"
#include "tmath/random.h"
#include "tmath/transforms.h"

namespace tmath::cli {
namespace {

constexpr double kNone = std::numeric_limits<double>::quiet_NaN();

// ---- options ---------------------------------------------------------------

struct Options {
  bool quick = false;
  bool numpy = true;
  bool torch = true;
  std::string json_path;
  std::string backend;        // empty: every available backend
  std::set<std::string> ops;  // empty: all ops
  std::set<DType> dtypes;     // empty: every dtype of the table
  std::set<int64_t> sizes;    // empty: every size of the table
};

// ---- timing ----------------------------------------------------------------

struct Budget {
  int warmup;        // at least this many warm-up calls
  double warmup_ms;  // and at least this long: sleeping BLAS/pool threads take a few calls to wake
  int min_reps;
  int max_reps;
  double target_ms;  // keep repeating (up to max_reps) until this much time was measured
};
constexpr Budget kQuickBudget{1, 50.0, 3, 30, 60.0};
constexpr Budget kFullBudget{3, 200.0, 10, 300, 600.0};
constexpr int kMaxWarmup = 1000;

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// Median wall time of fn() in milliseconds, after warm-up.
template <class F>
double median_ms(F&& fn, const Budget& b) {
  const double start = now_ms();
  for (int i = 0; i < b.warmup || (now_ms() - start < b.warmup_ms && i < kMaxWarmup); ++i) fn();
  std::vector<double> ts;
  double total = 0.0;
  while (static_cast<int>(ts.size()) < b.max_reps &&
         (static_cast<int>(ts.size()) < b.min_reps || total < b.target_ms)) {
    const double t0 = now_ms();
    fn();
    ts.push_back(now_ms() - t0);
    total += ts.back();
  }
  std::nth_element(ts.begin(), ts.begin() + ts.size() / 2, ts.end());
  return ts[ts.size() / 2];
}

// Milliseconds per call of fn once warm: back-to-back calls, 1, 4, 16, ... of them
// until they take 0.5 ms (at most 1024), then one synchronisation. Warm-up times
// are no guide: a first call may compile kernels or plan a GEMM (50-1100 ms on a
// GPU machine with a cold kernel cache), and a batch sized from that estimate is
// a single call whose timing includes its launch.
double per_call_ms(Backend& be, Device dev, const std::function<void()>& fn) {
  be.synchronize(dev);
  for (int n = 1;; n *= 4) {
    const double t0 = now_ms();
    for (int i = 0; i < n; ++i) fn();
    be.synchronize(dev);
    const double dt = now_ms() - t0;
    if (dt >= 0.5 || n >= 1024) return std::max(dt / n, 1e-4);
  }
}

// Calls per timed batch for a call of per_ms: about 2 ms of work, 1 to 1000 calls.
int batch_for(double per_ms) { return std::clamp(static_cast<int>(2.0 / per_ms), 1, 1000); }

// Median milliseconds per call of fn on a backend, timed by the backend's clock
// (CUDA events on a GPU): after warm-up, batches of back-to-back calls sized to
// about 2 ms each (one call when a call takes longer), median of the batch means.
template <class F>
double backend_median_ms(Backend& be, Device dev, F&& fn, const Budget& b) {
  const double start = now_ms();
  const std::function<void()> call = fn;
  for (int warm = 0; warm < b.warmup || (now_ms() - start < b.warmup_ms && warm < kMaxWarmup);
       ++warm)
    call();
  const int batch = batch_for(per_call_ms(be, dev, call));
  std::vector<double> ts;
  double total = 0.0;
  while (static_cast<int>(ts.size()) < b.max_reps &&
         (static_cast<int>(ts.size()) < b.min_reps || total < b.target_ms)) {
    ts.push_back(be.time_ms(dev, call, batch));
    total += ts.back() * batch;
  }
  std::nth_element(ts.begin(), ts.begin() + ts.size() / 2, ts.end());
  return ts[ts.size() / 2];
}

// Median milliseconds per call of the engine (fn) and of a native reference (ref)
// on one device, measured in alternating batches after both are warm, so both
// see the same clocks (a GPU under sustained load lowers its clock: the side
// measured second would otherwise pay for the first's heat).
template <class F>
std::pair<double, double> interleaved_median_ms(Backend& be, Device dev, F&& fn,
                                                const std::function<void()>& ref, const Budget& b,
                                                bool single_batch) {
  const std::function<void()> call = fn;
  auto warm = [&](const std::function<void()>& f) {
    const double start = now_ms();
    for (int n = 0; n < b.warmup || (now_ms() - start < b.warmup_ms / 2 && n < kMaxWarmup); ++n)
      f();
    return per_call_ms(be, dev, f);
  };
  const double per_fn = warm(call), per_ref = warm(ref);
  const int bf = single_batch ? 1 : batch_for(per_fn);
  const int br = single_batch ? 1 : batch_for(per_ref);
  std::vector<double> tf, tr;
  double total = 0.0;
  while (static_cast<int>(tf.size()) < b.max_reps &&
         (static_cast<int>(tf.size()) < b.min_reps || total < b.target_ms)) {
    tf.push_back(be.time_ms(dev, call, bf));
    tr.push_back(be.time_ms(dev, ref, br));
    total += tf.back() * bf + tr.back() * br;
  }
  auto median = [](std::vector<double>& v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  const std::pair<double, double> r{median(tf), median(tr)};
  // TMATH_PROFILE_TRACE=1: how each interleaved row was batched (stderr).
  if (const char* e = std::getenv("TMATH_PROFILE_TRACE"); e && *e == '1') {
    auto [lo_f, hi_f] = std::minmax_element(tf.begin(), tf.end());
    std::fprintf(stderr,
                 "[profile trace] per call once warm %.4f / %.4f ms, batches %d / %d, %zu rounds, "
                 "median %.4f / %.4f ms, engine min %.4f max %.4f\n",
                 per_fn, per_ref, bf, br, tf.size(), r.first, r.second, *lo_f, *hi_f);
  }
  return r;
}

// ---- the op table ----------------------------------------------------------

// x -> tanh(x * 1.01 + 0.5), five times (15 elementwise ops).
Tensor chain10(Tensor x) {
  for (int i = 0; i < 5; ++i) x = tanh(x * 1.01 + 0.5);
  return x;
}

// Row-wise / elementwise ops on (n, n) float32 and their plain-loop references.
struct LoopOp {
  const char* name;
  Tensor (*engine)(const Tensor& a, const Tensor& b);
  reference::LoopFn loop;
};
const LoopOp kLoopOps[] = {
    {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, reference::add},
    {"relu", [](const Tensor& a, const Tensor&) { return relu(a); }, reference::relu},
    {"gelu", [](const Tensor& a, const Tensor&) { return gelu(a); }, reference::gelu},
    {"tanh", [](const Tensor& a, const Tensor&) { return tanh(a); }, reference::tanh},
    {"exp", [](const Tensor& a, const Tensor&) { return exp(a); }, reference::exp},
    {"softmax", [](const Tensor& a, const Tensor&) { return softmax(a, -1); }, reference::softmax},
    {"layer_norm", [](const Tensor& a, const Tensor&) { return layer_norm(a); },
     reference::layer_norm},
    {"sum", [](const Tensor& a, const Tensor&) { return sum(a); }, reference::sum},
    // Lazy-graph fusion: the chain runs as one kernel; unfused: one kernel per op;
    // compiled: traced once by compile(), replayed.
    {"chain10", [](const Tensor& a, const Tensor&) { return chain10(a); }, reference::chain10},
    {"chain10_unfused",
     [](const Tensor& a, const Tensor&) {
       JitScope off(false);
       return chain10(a).eval();
     },
     reference::chain10},
    {"chain10_compiled",
     [](const Tensor& a, const Tensor&) {
       static const CompiledFunction f =
           compile([](const std::vector<Tensor>& x) { return std::vector<Tensor>{chain10(x[0])}; });
       return f({a})[0];
     },
     reference::chain10},
};
// 4096 runs on device backends only (a float64 product of that size takes seconds on 2 cores).
const int64_t kMatmulSizes[] = {128, 256, 512, 1024, 2048, 4096};
const DType kMatmulDTypes[] = {float32, float16, bfloat16,
                               float64};  // f32 first: f16/bf16 reuse its inputs and reference
const int64_t kLoopSizes[] = {1024, 4096};
constexpr int kTinyAdds = 10000;         // add_tiny: adds per timed batch
constexpr int64_t kTinySize = 8;         // add_tiny: elements per add
constexpr int kAllocIterations = 1000;   // alloc_loop: timed iterations
constexpr int64_t kAllocSize = 512;      // alloc_loop on the CPU: x, w are (n, n), b is (n)
constexpr int64_t kAllocSizeGpu = 2048;  // alloc_loop on device backends

enum class Kind { Matmul, Loop, TinyAdd, AllocLoop };
// Which backends run a case: all, the host (cpu) backend, or device backends.
enum class Scope { All, Host, Device };

struct Case {
  Kind kind;
  std::string op;
  Shape shape;
  DType dtype;
  const LoopOp* loop = nullptr;
  MatmulPrecision precision = MatmulPrecision::Highest;  // matmul_tf32: High
  Scope scope = Scope::All;

  std::string shape_str() const {
    std::string s;
    for (auto d : shape) s += (s.empty() ? "" : "x") + std::to_string(d);
    return s;
  }
  // Also the key numpy_ref.py and torch_ref.py report under.
  std::string key() const { return op + " " + shape_str() + " " + std::string(dtype_name(dtype)); }
  bool runs_on(const Backend& be) const {
    const bool host = be.device_type() == DeviceType::CPU;
    // The mlx backend of a Linux build computes on the host (MLX's CPU stream): it runs
    // the rows every backend runs, not the GPU-sized ones.
    if (be.device_type() == DeviceType::MLX) return scope == Scope::All;
    return scope == Scope::All || (scope == Scope::Host) == host;
  }
};

std::vector<Case> make_cases(const Options& opt) {
  std::vector<Case> cases;
  auto wanted = [&](const std::string& op) { return opt.ops.empty() || opt.ops.count(op); };
  auto size_ok = [&](int64_t n) { return opt.sizes.empty() || opt.sizes.count(n); };
  auto dtype_ok = [&](DType dt) { return opt.dtypes.empty() || opt.dtypes.count(dt); };
  for (int64_t n : kMatmulSizes) {
    if (!size_ok(n)) continue;
    const Scope size_scope = n > 2048 ? Scope::Device : Scope::All;
    for (DType dt : kMatmulDTypes) {
      if (!dtype_ok(dt)) continue;
      // --quick keeps the host's low-precision rows to n <= 1024 (2048 costs seconds each).
      const Scope scope =
          opt.quick && is_low_precision(dt) && n > 1024 ? Scope::Device : size_scope;
      if (wanted("matmul"))
        cases.push_back(
            {Kind::Matmul, "matmul", {n, n}, dt, nullptr, MatmulPrecision::Highest, scope});
      // TF32 tensor cores (precision "high"): a device-only row after the strict float32 one.
      if (dt == float32 && wanted("matmul_tf32")) {
        cases.push_back({Kind::Matmul,
                         "matmul_tf32",
                         {n, n},
                         dt,
                         nullptr,
                         MatmulPrecision::High,
                         Scope::Device});
      }
    }
  }
  for (int64_t n : kLoopSizes) {
    if (!size_ok(n) || !dtype_ok(float32)) continue;
    for (const LoopOp& op : kLoopOps) {
      if (wanted(op.name)) cases.push_back({Kind::Loop, op.name, {n, n}, float32, &op});
    }
  }
  if (wanted("add_tiny")) cases.push_back({Kind::TinyAdd, "add_tiny", {kTinySize}, float32});
  if (wanted("alloc_loop")) {
    cases.push_back({Kind::AllocLoop,
                     "alloc_loop",
                     {kAllocSize, kAllocSize},
                     float32,
                     nullptr,
                     MatmulPrecision::Highest,
                     Scope::Host});
    cases.push_back({Kind::AllocLoop,
                     "alloc_loop",
                     {kAllocSizeGpu, kAllocSizeGpu},
                     float32,
                     nullptr,
                     MatmulPrecision::Highest,
                     Scope::Device});
  }
  return cases;
}

bool known_op(const std::string& op) {
  if (is_linalg_profile_op(op)) return true;
  if (op == "matmul" || op == "matmul_tf32" || op == "add_tiny" || op == "alloc_loop") return true;
  return std::any_of(std::begin(kLoopOps), std::end(kLoopOps),
                     [&](const LoopOp& l) { return op == l.name; });
}

// ---- results ---------------------------------------------------------------

struct Row {
  std::string op, shape, dtype, backend;
  double ms = kNone;
  std::string reference;
  double reference_ms = kNone;
  std::vector<std::pair<std::string, double>> extra;  // op-specific numbers (JSON only)
};

// An engine measurement of one case on one backend.
struct EngineResult {
  double ms = kNone;
  std::vector<std::pair<std::string, double>> extra;
};

// ---- progress line ---------------------------------------------------------

class Progress {
 public:
  explicit Progress(int total) : total_(total), tty_(isatty(STDERR_FILENO)) {}
  void step(const std::string& what) {
    ++done_;
    std::string line = "[" + std::to_string(done_) + "/" + std::to_string(total_) + "] " + what;
    if (tty_) {
      std::fprintf(stderr, "\r%-78.78s", line.c_str());
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  }
  void note(const std::string& msg) {
    clear();
    std::fprintf(stderr, "%s\n", msg.c_str());
  }
  void clear() {
    if (tty_) std::fprintf(stderr, "\r%78s\r", "");
  }

 private:
  int total_;
  int done_ = 0;
  bool tty_;
};

// ---- Python references (NumPy, PyTorch) -------------------------------------

struct PythonRef {
  std::string version;  // empty: not run
  std::string device;   // what the reference ran on (PyTorch: the GPU's name)
  std::map<std::string, double> ms;
};

bool file_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs bench/<script> (searched next to the executable's parent directory and in
// the current directory) for the given row keys, with .venv's Python first and
// then each of `more_pythons`, until one succeeds. The script prints one JSON
// object: {"<version_key>": version, "device": ..., "results": {key: ms}}; it
// exits non-zero when its library is missing, which moves on to the next Python.
PythonRef run_python_ref(const std::string& script_name, const std::string& version_key,
                         const std::vector<std::string>& more_pythons,
                         const std::vector<std::string>& keys, bool quick, Progress& progress) {
  PythonRef ref;
  std::string script;
  std::vector<std::string> pythons;
  for (const std::string& root : {executable_dir() + "/..", std::string(".")}) {
    if (file_exists(root + "/bench/" + script_name)) {
      script = root + "/bench/" + script_name;
      if (file_exists(root + "/.venv/bin/python")) pythons.push_back(root + "/.venv/bin/python");
      break;
    }
  }
  for (const auto& p : more_pythons) {
    if (!p.empty()) pythons.push_back(p);
  }
  if (script.empty() || pythons.empty()) {
    progress.note(version_key + " reference skipped: no bench/" + script_name +
                  " with a .venv/bin/python found");
    return ref;
  }
  std::string args = shell_quote(script) + (quick ? " --quick" : "");
  for (const auto& k : keys) args += " " + shell_quote(k);
  for (const auto& python : pythons) {
    FILE* p = popen((shell_quote(python) + " " + args + " 2>/dev/null").c_str(), "r");
    if (!p) continue;
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int status = pclose(p);
    std::map<std::string, std::string> kv;
    if (status != 0 || !JsonReader(out).parse(kv)) continue;
    ref.version = kv[version_key];
    ref.device = kv["device"];
    for (const auto& [path, v] : kv) {
      if (path.rfind("results/", 0) == 0) ref.ms[path.substr(8)] = std::strtod(v.c_str(), nullptr);
    }
    return ref;
  }
  progress.note(version_key + " reference skipped: bench/" + script_name + " found no " +
                version_key + " (tried " + std::to_string(pythons.size()) + " Python(s))");
  return ref;
}

// ---- native references ---------------------------------------------------------

// Host copies of the inputs of one case: float32 (or float64 for f64 matmul).
struct HostInputs {
  std::vector<float> a, b, c;
  std::vector<double> a64, b64;
};

struct NativeResult {
  std::string name;
  double ms = kNone;
};

NativeResult measure_native(const Case& c, const HostInputs& in, const Budget& budget) {
  const int64_t rows = c.shape[0], cols = c.shape.size() > 1 ? c.shape[1] : 1;
  switch (c.kind) {
    case Kind::Matmul: {
      const int n = static_cast<int>(rows);
      if (c.dtype == float64) {
        std::vector<double> out(rows * cols);
        return {"openblas dgemm",
                median_ms([&] { reference::dgemm(in.a64.data(), in.b64.data(), out.data(), n); },
                          budget)};
      }
      std::vector<float> out(rows * cols);
      return {
          c.dtype == float32 ? "openblas sgemm" : "openblas sgemm (f32)",
          median_ms([&] { reference::sgemm(in.a.data(), in.b.data(), out.data(), n); }, budget)};
    }
    case Kind::Loop: {
      std::vector<float> out(rows * cols);
      return {"loop",
              median_ms([&] { c.loop->loop(in.a.data(), in.b.data(), out.data(), rows, cols); },
                        budget)};
    }
    case Kind::AllocLoop: {
      std::vector<float> out(rows * cols);
      return {"openblas+loop", median_ms(
                                   [&] {
                                     reference::dense_tanh(in.a.data(), in.b.data(), in.c.data(),
                                                           out.data(), static_cast<int>(rows));
                                   },
                                   budget)};
    }
    case Kind::TinyAdd:
      break;
  }
  return {"none", kNone};
}

// ---- engine measurements ---------------------------------------------------------

struct Target {
  Backend* backend;
  Device device;
};

Tensor on(const Tensor& x, const Target& t, DType dt) {
  Tensor y = x.device() == t.device ? x : x.to(t.device);
  if (y.dtype() != dt) y = y.astype(dt);
  y.eval();
  return y;
}

// Restores the matmul precision on scope exit.
class PrecisionScope {
 public:
  explicit PrecisionScope(MatmulPrecision p) : saved_(matmul_precision()) {
    set_matmul_precision(p);
  }
  ~PrecisionScope() { set_matmul_precision(saved_); }
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  MatmulPrecision saved_;
};

// `in`: the case's inputs on the target's device in the case's dtype.
// With `ref` (device backends), the engine and the reference are timed in
// alternating batches and the reference's time is stored in *ref_ms.
EngineResult measure_engine(const Case& c, const std::vector<Tensor>& in, const Target& t,
                            const Budget& budget, const Backend::NativeReference* ref = nullptr,
                            double* ref_ms = nullptr) {
  EngineResult r;
  Backend& be = *t.backend;
  // Times fn alone, or alternating with the reference when there is one.
  auto timed = [&](auto&& fn, const Budget& b, bool single_batch) {
    if (ref && ref_ms) {
      const auto [e, n] = interleaved_median_ms(be, t.device, fn, ref->run, b, single_batch);
      *ref_ms = n;
      return e;
    }
    return backend_median_ms(be, t.device, fn, b);
  };
  switch (c.kind) {
    case Kind::Matmul: {
      const Tensor &a = in[0], &b = in[1];
      PrecisionScope precision(c.precision);
      r.ms = timed([&] { matmul(a, b).eval(); }, budget, false);
      r.extra.emplace_back("gflops", 2.0 * std::pow(double(c.shape[0]), 3) / (r.ms * 1e6));
      break;
    }
    case Kind::Loop: {
      const Tensor &a = in[0], &b = in[1];
      r.ms = timed([&] { c.loop->engine(a, b).eval(); }, budget, false);
      break;
    }
    case Kind::TinyAdd: {
      // Many adds queued, one synchronisation: the per-op host overhead.
      const Tensor &a = in[0], &b = in[1];
      const Budget batch{1, 0.0, budget.min_reps, budget.min_reps, 0.0};
      const Backend::NativeReference* one = ref;
      Backend::NativeReference many;  // the reference's call, kTinyAdds times
      if (ref) {
        many = {ref->name, [one] {
                  for (int i = 0; i < kTinyAdds; ++i) one->run();
                }};
        ref = &many;
      }
      r.ms = timed(
                 [&] {
                   for (int i = 0; i < kTinyAdds; ++i) add(a, b).eval();
                 },
                 batch, true) /
             kTinyAdds;
      if (ref && ref_ms) *ref_ms /= kTinyAdds;
      ref = one;
      r.extra.emplace_back("us_per_op", r.ms * 1e3);
      // The host's side alone: wall time to issue the ops, before the synchronisation
      // (on a device backend the queue may still be running when this ends).
      be.synchronize(t.device);
      const double h0 = now_ms();
      for (int i = 0; i < kTinyAdds; ++i) add(a, b).eval();
      const double host_ms = now_ms() - h0;
      be.synchronize(t.device);
      r.extra.emplace_back("host_us_per_op", host_ms * 1e3 / kTinyAdds);
      // The same adds recorded lazily as chains of 100 (y = y + b) and evaluated once
      // per chain: fusion runs each chain as one kernel.
      const std::function<void()> chains = [&] {
        for (int c = 0; c < kTinyAdds / 100; ++c) {
          Tensor y = a;
          for (int i = 0; i < 100; ++i) y = add(y, b);
          y.eval();
        }
      };
      chains();
      r.extra.emplace_back("lazy_chain_us_per_op", be.time_ms(t.device, chains, 3) * 1e3 / kTinyAdds);
      break;
    }
    case Kind::AllocLoop: {
      const Tensor &x = in[0], &w = in[1], &b = in[2];
      Tensor y;
      const std::function<void()> step = [&] {
        y = tanh(matmul(x, w) + b);
        y.eval();
      };
      for (int i = 0; i < 20; ++i) step();
      be.synchronize(t.device);
      reset_peak_memory_stats(t.device);
      const MemoryStats s0 = memory_stats(t.device);
      r.ms = be.time_ms(t.device, step, kAllocIterations);
      const MemoryStats s1 = memory_stats(t.device);
      const double allocs = double(s1.allocations - s0.allocations);
      const double hits = double(s1.cache_hits - s0.cache_hits);
      const double alive = double(s1.requested_bytes);
      r.extra = {{"iterations", kAllocIterations},
                 {"allocations", allocs},
                 {"cache_hit_rate", allocs > 0 ? hits / allocs : 1.0},
                 {"peak_bytes", double(s1.peak_bytes)},
                 {"alive_bytes", alive},
                 {"peak_alive_ratio", alive > 0 ? double(s1.peak_bytes) / alive : kNone}};
      break;
    }
  }
  return r;
}

// The engine's view of an evaluated tensor (a device address for device tensors).
ArrayRef array_ref(const Tensor& t) {
  return t.impl()->ref();
}

// The native reference of a case on a device backend: the backend's library called
// directly (matmul), a device-to-device copy of one input (elementwise and row ops:
// the bandwidth yardstick) or the raw launch of the add kernel (add_tiny).
std::optional<Backend::NativeReference> device_reference(const Case& c,
                                                         const std::vector<Tensor>& in,
                                                         Backend& be) {
  std::vector<ArrayRef> refs;
  for (const Tensor& t : in) refs.push_back(array_ref(t));
  // A framework backend (mlx) names the framework's own op for a loop case; the others
  // answer nothing there and are compared with a device copy of the input.
  if (c.kind == Kind::Loop) {
    if (auto r = be.native_reference(c.op, refs, c.precision)) return r;
  }
  const char* op = c.kind == Kind::Matmul    ? "matmul"
                   : c.kind == Kind::Loop    ? "copy"
                   : c.kind == Kind::TinyAdd ? "launch"
                                             : nullptr;
  if (!op) return std::nullopt;
  const std::span<const ArrayRef> args(refs.data(), c.kind == Kind::Loop ? 1 : 2);
  return be.native_reference(op, args, c.precision);
}

// Random standard-normal inputs of a case on the CPU (evaluated), and their host copies.
struct Inputs {
  std::vector<Tensor> tensors;
  HostInputs host;
};

// Generation dtype of a case's inputs (float16/bfloat16 rows convert from float32).
DType gen_dtype(const Case& c) {
  return c.dtype == float64 ? float64 : float32;
}

// Cases with the same key share their inputs (e.g. all elementwise ops at one size).
std::string inputs_key(const Case& c) {
  return std::to_string(static_cast<int>(c.kind == Kind::AllocLoop)) + " " + c.shape_str() + " " +
         std::string(dtype_name(gen_dtype(c)));
}

void make_inputs(const Case& c, uint64_t seed, Inputs& in) {
  auto keys = random::split(random::key(seed), 3);
  const DType gen = gen_dtype(c);
  HostInputs& host = in.host;
  std::vector<Tensor>& xs = in.tensors;
  if (c.kind == Kind::AllocLoop) {
    const int64_t n = c.shape[0];
    xs = {random::normal(keys[0], c.shape, gen, 0.0, 1.0, kCPU),
          random::normal(keys[1], c.shape, gen, 0.0, 1.0 / std::sqrt(double(n)), kCPU),
          random::normal(keys[2], {n}, gen, 0.0, 1.0, kCPU)};
  } else {
    xs = {random::normal(keys[0], c.shape, gen, 0.0, 1.0, kCPU),
          random::normal(keys[1], c.shape, gen, 0.0, 1.0, kCPU)};
  }
  eval(xs);
  if (gen == float64) {
    host.a64 = xs[0].to_vector<double>();
    host.b64 = xs[1].to_vector<double>();
  } else {
    host.a = xs[0].to_vector<float>();
    host.b = xs[1].to_vector<float>();
    if (xs.size() > 2) host.c = xs[2].to_vector<float>();
  }
}

// ---- output ------------------------------------------------------------------

std::string fmt_ms(double ms) {
  if (std::isnan(ms)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, ms >= 1000 ? "%.0f" : "%.4g", ms);
  return buf;
}

std::string fmt_ratio(double ms, double ref) {
  if (std::isnan(ms) || std::isnan(ref) || ref <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", ms / ref);
  return buf;
}

void print_table(const std::vector<Row>& rows) {
  const std::vector<std::string> head = {"op", "shape",     "dtype",        "backend",
                                         "ms", "reference", "reference ms", "ratio"};
  std::vector<std::vector<std::string>> cells;
  for (const Row& r : rows) {
    cells.push_back({r.op, r.shape, r.dtype, r.backend, fmt_ms(r.ms), r.reference,
                     fmt_ms(r.reference_ms), fmt_ratio(r.ms, r.reference_ms)});
  }
  std::vector<size_t> w(head.size());
  for (size_t i = 0; i < head.size(); ++i) {
    w[i] = head[i].size();
    for (const auto& c : cells) w[i] = std::max(w[i], c[i].size());
  }
  auto line = [&](const std::vector<std::string>& c) {
    std::string s = "|";
    for (size_t i = 0; i < c.size(); ++i) {
      const bool right = i == 4 || i >= 6;  // numbers
      const std::string pad(w[i] - c[i].size(), ' ');
      s += " " + (right ? pad + c[i] : c[i] + pad) + " |";
    }
    std::printf("%s\n", s.c_str());
  };
  line(head);
  std::string sep = "|";
  for (size_t i = 0; i < head.size(); ++i) {
    const bool right = i == 4 || i >= 6;
    sep += std::string(w[i] + 1, '-') + (right ? ":|" : "-|");
  }
  std::printf("%s\n", sep.c_str());
  for (const auto& c : cells) line(c);
}

// Looks up rows of one backend and collects the target lines.
class TargetCheck {
 public:
  TargetCheck(const std::vector<Row>& rows, std::string backend)
      : rows_(rows), backend_(std::move(backend)) {}

  const Row* find(const std::string& op, const std::string& shape, const std::string& dtype,
                  const std::string& ref_prefix) const {
    for (const Row& r : rows_) {
      if (r.op == op && r.shape == shape && r.dtype == dtype && r.backend == backend_ &&
          r.reference.rfind(ref_prefix, 0) == 0) {
        return &r;
      }
    }
    return nullptr;
  }
  static double extra(const Row& r, const std::string& k) {
    for (const auto& [name, v] : r.extra) {
      if (name == k) return v;
    }
    return kNone;
  }
  void check(const std::string& what, double value, const char* unit, bool ok,
             const std::string& goal) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "- %-46s %8.3g%-2s (target %s) %s", what.c_str(), value, unit,
                  goal.c_str(), ok ? "ok" : "MISSED");
    lines_.push_back(buf);
  }
  void note(const std::string& what, double value, const char* unit) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "- %-46s %8.3g%-2s (for information)", what.c_str(), value,
                  unit);
    lines_.push_back(buf);
  }
  void print() const {
    if (lines_.empty()) return;
    std::printf("\nTargets (%s backend):\n", backend_.c_str());
    for (const auto& l : lines_) std::printf("%s\n", l.c_str());
  }

  // Allocator loop: hit rate and peak over bytes alive.
  void alloc_loop(int64_t n) {
    const std::string shape = std::to_string(n) + "x" + std::to_string(n);
    if (const Row* r = find("alloc_loop", shape, "float32", "")) {
      const double hit = extra(*r, "cache_hit_rate"), ratio = extra(*r, "peak_alive_ratio");
      check("alloc_loop " + shape + " cache hit rate", hit * 100, "%", hit >= 0.99, ">= 99%");
      check("alloc_loop " + shape + " peak / bytes alive", ratio, "x", ratio <= 1.05, "<= 1.05x");
    }
  }
  void tiny_add(double bound_us) {
    if (const Row* r = find("add_tiny", std::to_string(kTinySize), "float32", "")) {
      const double us = r->ms * 1e3;
      char goal[32];
      std::snprintf(goal, sizeof goal, "<= %.3g us", bound_us);
      check("add_tiny: one 8-element add (queued)", us, "us", us <= bound_us, goal);
      const double lazy = extra(*r, "lazy_chain_us_per_op");
      if (!std::isnan(lazy))
        check("add_tiny: per add in lazy chains of 100", lazy, "us", lazy <= bound_us, goal);
    }
  }
  // chain10 at 4096^2: fused vs NumPy (or PyTorch eager / torch.compile on a device) and vs
  // the same chain unfused (TMATH_JIT=0); a bound of 0 reports the ratio without a target.
  void chain10(double vs_python, double vs_unfused) {
    const std::string shape = "4096x4096";
    const Row* fused = find("chain10", shape, "float32", "");
    const Row* unfused = find("chain10_unfused", shape, "float32", "");
    if (!fused) return;
    for (const char* py : {"numpy", "torch"}) {
      if (const Row* r = find("chain10", shape, "float32", py)) {
        const double q = r->reference_ms / r->ms;
        char goal[32];
        std::snprintf(goal, sizeof goal, ">= %.3gx", vs_python);
        if (vs_python > 0)
          check(std::string("chain10 4096 speed-up over ") + py, q, "x", q >= vs_python, goal);
        else
          note(std::string("chain10 4096 speed-up over ") + py + " eager", q, "x");
      }
    }
    if (const Row* r = find("chain10_compiled", shape, "float32", "torch")) {
      const double q = r->ms / r->reference_ms;
      check("chain10_compiled 4096 / torch.compile", q, "x", q <= 1.0, "<= 1x");
    }
    if (unfused) {
      const double q = unfused->ms / fused->ms;
      char goal[32];
      std::snprintf(goal, sizeof goal, ">= %.3gx", vs_unfused);
      if (vs_unfused > 0)
        check("chain10 4096 fused speed-up over unfused", q, "x", q >= vs_unfused, goal);
      else
        note("chain10 4096 fused speed-up over unfused", q, "x");
    }
  }
  // The engine's time of a row within `bound` ms.
  void time_bound(const std::string& op, const std::string& shape, const std::string& dtype,
                  double bound) {
    if (const Row* r = find(op, shape, dtype, "")) {
      char goal[32];
      std::snprintf(goal, sizeof goal, "<= %.3g ms", bound);
      check(op + " " + shape + " " + dtype + " time", r->ms, "ms", r->ms <= bound, goal);
    }
  }

 private:
  const std::vector<Row>& rows_;
  std::string backend_;
  std::vector<std::string> lines_;
};

// The targets of the host (cpu) backend.
void print_host_targets(const std::vector<Row>& rows, const std::string& backend) {
  TargetCheck t(rows, backend);
  for (const char* dt : {"float32", "float64"}) {
    if (const Row* r = t.find("matmul", "1024x1024", dt, "openblas")) {
      const double q = r->ms / r->reference_ms;
      t.check(std::string("matmul 1024 ") + dt + " / OpenBLAS", q, "x", q <= 1.05, "<= 1.05x");
    }
  }
  const struct {
    const char* op;
    double speedup;  // engine must be this many times faster than NumPy (<1: may be slower)
  } vs_numpy[] = {{"tanh", 5.0}, {"exp", 3.0}, {"add", 1.0 / 1.1}, {"sum", 1.0 / 1.1}};
  for (const auto& v : vs_numpy) {
    if (const Row* r = t.find(v.op, "4096x4096", "float32", "numpy")) {
      const double s = r->reference_ms / r->ms;
      char goal[32];
      std::snprintf(goal, sizeof goal, ">= %.3gx", v.speedup);
      t.check(std::string(v.op) + " 4096 speed-up over NumPy", s, "x", s >= v.speedup, goal);
    }
  }
  t.tiny_add(2.0);
  t.alloc_loop(kAllocSize);
  t.chain10(10.0, 4.0);
  t.print();
}

// The targets of a device (GPU) backend.
void print_device_targets(const std::vector<Row>& rows, const std::string& backend) {
  TargetCheck t(rows, backend);
  // Every matmul size within 1.03x of cuBLAS called directly: the worst size per precision.
  for (const auto& [op, dt] :
       std::vector<std::pair<std::string, std::string>>{{"matmul", "float32"},
                                                        {"matmul_tf32", "float32"},
                                                        {"matmul", "bfloat16"},
                                                        {"matmul", "float16"}}) {
    double worst = kNone;
    std::string at;
    for (int64_t n : kMatmulSizes) {
      const std::string shape = std::to_string(n) + "x" + std::to_string(n);
      if (const Row* r = t.find(op, shape, dt, "cublas")) {
        const double q = r->ms / r->reference_ms;
        if (std::isnan(worst) || q > worst) worst = q, at = std::to_string(n);
      }
    }
    if (!std::isnan(worst)) {
      t.check(op + " " + dt + " / cuBLAS, worst size (" + at + ")", worst, "x", worst <= 1.03,
              "<= 1.03x");
    }
  }
  t.time_bound("matmul", "1024x1024", "float32", 0.08);
  t.time_bound("matmul", "1024x1024", "bfloat16", 0.04);
  t.time_bound("chain10", "4096x4096", "float32", 0.10);
  t.chain10(0.0, 0.0);
  t.time_bound("add", "1024x1024", "float32", 0.1);
  for (const char* op : {"relu", "gelu", "tanh"}) t.time_bound(op, "1024x1024", "float32", 0.05);
  // add reads two inputs and writes one: 1.5x the bytes of the copy.
  if (const Row* r = t.find("add", "4096x4096", "float32", "cudaMemcpy")) {
    const double frac = 1.5 * r->reference_ms / r->ms;
    t.check("add 4096 bandwidth / d2d copy bandwidth", frac * 100, "%", frac >= 0.9, ">= 90%");
  }
  for (const char* op : {"relu", "gelu", "tanh", "softmax", "layer_norm", "sum"}) {
    for (const char* shape : {"1024x1024", "4096x4096"}) {
      if (const Row* r = t.find(op, shape, "float32", "torch")) {
        const double q = r->ms / r->reference_ms;
        t.check(std::string(op) + " " + shape + " / PyTorch", q, "x", q <= 1.0, "<= 1x");
      }
    }
  }
  t.tiny_add(3.0);
  const std::string tiny = std::to_string(kTinySize);
  if (const Row* r = t.find("add_tiny", tiny, "float32", "cuLaunchKernel")) {
    t.note("add_tiny: raw launch of the same kernel", r->reference_ms * 1e3, "us");
    t.note("add_tiny: host time to issue one add", TargetCheck::extra(*r, "host_us_per_op"), "us");
  }
  t.alloc_loop(kAllocSizeGpu);
  t.print();
}

// The targets of a framework adapter (mlx, torch, torch:cuda): the engine's time over
// the framework called directly on the same inputs in the same run.
void print_adapter_targets(const std::vector<Row>& rows, const std::string& backend) {
  TargetCheck t(rows, backend);
  const std::string ref = backend.substr(0, backend.find(':')) + " ";  // "torch ", "mlx "
  auto overhead = [&](const std::string& op, const std::string& shape) {
    if (const Row* r = t.find(op, shape, "float32", ref)) {
      const double q = r->ms / r->reference_ms;
      t.check(op + " " + shape + " / " + ref + "direct", q, "x", q <= 1.05, "<= 1.05x");
    }
  };
  for (int64_t n : {512, 1024, 2048})
    overhead("matmul", std::to_string(n) + "x" + std::to_string(n));
  for (const char* op : {"add", "relu", "tanh", "softmax"})
    for (const char* shape : {"1024x1024", "4096x4096"}) overhead(op, shape);
  // Fused chains against the framework's own compiler (mx::compile) and eager mode.
  for (const char* op : {"chain10", "chain10_compiled", "chain10_unfused"})
    for (const char* shape : {"1024x1024", "4096x4096"}) overhead(op, shape);
  t.print();
}

void write_json(const std::string& path, const MachineInfo& m, const PythonRef& np,
                const PythonRef& torch, const std::vector<Row>& rows, bool quick) {
  auto opt_str = [](const std::string& v) {
    return v.empty() ? std::string("null") : "\"" + json_escape(v) + "\"";
  };
  std::ofstream f(path);
  if (!f) throw Error("[profile] cannot write " + path);
  f << "{\n  \"machine\": {"
    << "\"cpu\": \"" << json_escape(m.cpu_model) << "\", \"cores\": " << m.cores << ", \"simd\": \""
    << json_escape(m.simd) << "\", \"threads\": " << m.engine_threads << ", \"blas\": \""
    << json_escape(m.blas) << "\", \"blas_threads\": " << m.blas_threads << ", \"version\": \""
    << json_escape(m.version) << "\", \"compiler\": \"" << json_escape(m.compiler)
    << "\", \"numpy\": " << opt_str(np.version) << ", \"torch\": " << opt_str(torch.version)
    << ", \"torch_device\": " << opt_str(torch.device)
    << ", \"quick\": " << (quick ? "true" : "false") << "},\n  \"results\": [";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    f << (i ? ",\n    " : "\n    ") << "{\"op\": \"" << json_escape(r.op) << "\", \"shape\": \""
      << r.shape << "\", \"dtype\": \"" << r.dtype << "\", \"backend\": \"" << r.backend
      << "\", \"ms\": " << json_number(r.ms) << ", \"reference\": \"" << json_escape(r.reference)
      << "\", \"reference_ms\": " << json_number(r.reference_ms);
    for (const auto& [k, v] : r.extra) f << ", \"" << k << "\": " << json_number(v);
    f << "}";
  }
  f << "\n  ]\n}\n";
  if (!f) throw Error("[profile] cannot write " + path);
}

// ---- command -------------------------------------------------------------------

bool parse_options(const Args& args, Options& opt) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& dst) {
      if (i + 1 >= args.size()) return false;
      dst = args[++i];
      return true;
    };
    if (a == "--quick") {
      opt.quick = true;
    } else if (a == "--no-numpy") {
      opt.numpy = false;
    } else if (a == "--no-torch") {
      opt.torch = false;
    } else if (a == "--json") {
      if (!value(opt.json_path)) return false;
    } else if (a == "--backend") {
      if (!value(opt.backend)) return false;
    } else if (a == "--ops") {
      std::string list;
      if (!value(list)) return false;
      std::stringstream ss(list);
      for (std::string op; std::getline(ss, op, ',');) {
        if (!known_op(op)) {
          std::fprintf(stderr, "tmath profile: unknown op '%s'\n", op.c_str());
          return false;
        }
        opt.ops.insert(op);
      }
    } else if (a == "--dtypes" || a == "--sizes") {
      std::string list;
      if (!value(list)) return false;
      std::stringstream ss(list);
      for (std::string item; std::getline(ss, item, ',');) {
        try {
          if (a == "--dtypes")
            opt.dtypes.insert(dtype_from_name(item));
          else
            opt.sizes.insert(std::stoll(item));
        } catch (const std::exception&) {
          std::fprintf(stderr, "tmath profile: bad %s entry '%s'\n", a.c_str() + 2, item.c_str());
          return false;
        }
      }
    } else {
      std::fprintf(stderr, "tmath profile: unknown option '%s'\n", a.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace

int run_profile(const Args& args) {
  Options opt;
  if (!parse_options(args, opt)) {
    std::fprintf(stderr, "\n");
    print_usage();
    return kUsageError;
  }
  const Budget budget = opt.quick ? kQuickBudget : kFullBudget;

  // The LibTorch adapter loads on demand: the comparison report loads it where it was
  // built (about a second) unless another backend was asked for.
  if (opt.backend.empty() || opt.backend.rfind("torch", 0) == 0) (void)load_backend("torch");
  std::vector<std::shared_ptr<Backend>> selected;
  for (const auto& b : backends()) {
    if (!b->available()) continue;
    if (opt.backend.empty() || b->name() == opt.backend) selected.push_back(b);
  }
  if (selected.empty()) {
    std::fprintf(stderr, "tmath profile: no available backend%s%s (see `tmath info`)\n",
                 opt.backend.empty() ? "" : " named ", opt.backend.c_str());
    return kUsageError;
  }

  const std::vector<Case> cases = make_cases(opt);
  const bool any_host = std::any_of(selected.begin(), selected.end(), [](const auto& b) {
    return b->device_type() == DeviceType::CPU;
  });
  const bool any_device = std::any_of(selected.begin(), selected.end(), [](const auto& b) {
    return b->device_type() != DeviceType::CPU;
  });
  int steps = 0;
  for (const Case& c : cases) {
    for (const auto& be : selected) steps += c.runs_on(*be) ? 2 : 0;
  }
  const bool run_np = opt.numpy && any_host, run_torch = opt.torch && any_device;
  Progress progress(steps + (run_np ? 1 : 0) + (run_torch ? 1 : 0));

  auto keys_for = [&](Scope skip) {
    std::vector<std::string> keys;
    for (const Case& c : cases) {
      if (c.scope != skip) keys.push_back(c.key());
    }
    return keys;
  };
  PythonRef np, torch;
  if (run_np) {
    progress.step("numpy reference (bench/numpy_ref.py)");
    np = run_python_ref("numpy_ref.py", "numpy", {}, keys_for(Scope::Device), opt.quick, progress);
  }
  if (run_torch) {
    progress.step("pytorch reference (bench/torch_ref.py)");
    const char* env = std::getenv("TMATH_TORCH_PYTHON");
    torch = run_python_ref("torch_ref.py", "torch", {env ? env : "", "python3"},
                           keys_for(Scope::Host), opt.quick, progress);
  }

  const std::vector<std::string> saved_priority = backend_priority();
  std::vector<Row> rows;
  std::map<std::string, NativeResult> f32_matmul;  // host f16/bf16 rows reuse the f32 reference
  std::set<std::string> warmed;  // devices whose first row has run untimed once
  int failures = 0;
  uint64_t seed = 1;
  Inputs inputs;
  std::string inputs_for;
  for (const Case& c : cases) {
    if (std::none_of(selected.begin(), selected.end(),
                     [&](const auto& be) { return c.runs_on(*be); })) {
      continue;
    }
    const std::string ikey = inputs_key(c);
    if (ikey != inputs_for) {
      inputs = Inputs();  // free the previous size first
      make_inputs(c, seed++, inputs);
      inputs_for = ikey;
    }

    for (const auto& be : selected) {
      if (!c.runs_on(*be)) continue;
      const std::string name(be->name());
      const bool host = be->device_type() == DeviceType::CPU;
      progress.step(c.key() + " " + name + " reference");
      NativeResult native{"none", kNone};
      const Target target{be.get(), Device(be->device_type(), 0)};
      std::vector<Tensor> in;
      std::optional<Backend::NativeReference> device_ref;
      try {
        set_backend_priority({name});
        for (const Tensor& x : inputs.tensors) in.push_back(on(x, target, c.dtype));
        const std::string f32_key = "matmul " + c.shape_str();
        // Device backends and framework adapters on the host (torch) answer with their
        // library called directly, timed with the engine below; the cpu backend is
        // compared with OpenBLAS and plain loops measured here.
        if (!host || name != "cpu") {
          device_ref = device_reference(c, in, *be);
          if (device_ref) native.name = device_ref->name;
        } else if (c.kind == Kind::Matmul && c.dtype != float64 && f32_matmul.count(f32_key)) {
          native = f32_matmul[f32_key];
          if (c.dtype != float32) native.name = "openblas sgemm (f32)";
        } else {
          native = measure_native(c, inputs.host, budget);
          if (c.kind == Kind::Matmul && c.dtype == float32) f32_matmul[f32_key] = native;
        }
      } catch (const std::exception& e) {
        progress.note("tmath profile: " + c.key() + " reference on " + name +
                      " failed: " + e.what());
        ++failures;
      }

      progress.step(c.key() + " " + name);
      if (c.kind == Kind::Matmul && !be->supports(OpCode::Matmul, c.dtype)) continue;
      EngineResult er;
      try {
        if (in.size() != inputs.tensors.size()) throw Error("the inputs could not be placed");
        set_backend_priority({name});
        // A device's first row would also measure its wake-up (clocks, first library
        // calls on both sides): run that row once untimed first.
        if (!host && warmed.insert(name).second)
          (void)measure_engine(c, in, target, budget, device_ref ? &*device_ref : nullptr,
                               &native.ms);
        er = measure_engine(c, in, target, budget, device_ref ? &*device_ref : nullptr, &native.ms);
      } catch (const std::exception& e) {
        progress.note("tmath profile: " + c.key() + " on " + name + " failed: " + e.what());
        ++failures;
        continue;
      }
      Row row;
      row.op = c.op;
      row.shape = c.shape_str();
      row.dtype = dtype_name(c.dtype);
      row.backend = name;
      row.ms = er.ms;
      row.extra = er.extra;
      if (c.kind == Kind::TinyAdd) row.extra.emplace_back("adds", kTinyAdds);
      const PythonRef& py = host ? np : torch;
      const bool has_py = py.ms.count(c.key()) > 0;
      if (!std::isnan(native.ms) || !has_py) {
        row.reference = native.name;
        row.reference_ms = native.ms;
        rows.push_back(row);
      }
      if (has_py) {
        row.reference = host ? "numpy" : "torch";
        row.reference_ms = py.ms.at(c.key());
        rows.push_back(row);
      }
    }
  }
  set_backend_priority(saved_priority);
  progress.clear();

  const MachineInfo m = machine_info();
  std::printf("tmath %s profile%s on %s (%d cores), %s, engine threads %d%s%s", m.version.c_str(),
              opt.quick ? " --quick" : "", m.cpu_model.c_str(), m.cores, m.blas.c_str(),
              m.engine_threads, np.version.empty() ? "" : ", numpy ", np.version.c_str());
  if (!torch.version.empty()) {
    std::printf(", torch %s on %s", torch.version.c_str(), torch.device.c_str());
  }
  std::printf("\n\n");
  print_table(rows);
  for (const auto& be : selected) {
    const std::string name(be->name());
    if (name == "cpu") {
      print_host_targets(rows, name);
    } else if (name == "cuda") {
      print_device_targets(rows, name);
    } else {
      print_adapter_targets(rows, name);  // mlx, torch, torch:cuda
    }
  }
  failures += run_profile_linalg({opt.quick, opt.backend, opt.ops});  // its own table
  if (!opt.json_path.empty()) {
    write_json(opt.json_path, m, np, torch, rows, opt.quick);
    std::printf("\nwrote %s\n", opt.json_path.c_str());
  }
  if (failures) std::fprintf(stderr, "tmath profile: %d measurement(s) failed\n", failures);
  return failures ? 1 : 0;
}

}  // namespace tmath::cli
