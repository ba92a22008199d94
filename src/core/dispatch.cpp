#include "core/dispatch.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <tuple>

#include "core/linalg_text.h"
#include "core/primitives.h"
#include "jit/jit.h"
#include "tmath/error.h"
#include "tmath/ops.h"

namespace tmath {

// ---- op metadata -------------------------------------------------------
namespace {
constexpr std::array<std::string_view, kNumOpCodes> kOpNames{{
#define TMATH_X(name) #name,
    TMATH_UNARY_OPS(TMATH_X) TMATH_BINARY_OPS(TMATH_X) TMATH_REDUCE_OPS(TMATH_X)
        TMATH_OTHER_OPS(TMATH_X)
#undef TMATH_X
}};
#define TMATH_COUNT(name) +1
constexpr int kNumUnary = 0 TMATH_UNARY_OPS(TMATH_COUNT);
constexpr int kNumBinary = 0 TMATH_BINARY_OPS(TMATH_COUNT);
constexpr int kNumReduce = 0 TMATH_REDUCE_OPS(TMATH_COUNT);
#undef TMATH_COUNT
}  // namespace

std::string_view op_name(OpCode op) {
  return kOpNames[static_cast<size_t>(op)];
}
bool is_unary(OpCode op) {
  return static_cast<int>(op) < kNumUnary;
}
bool is_binary(OpCode op) {
  int i = static_cast<int>(op);
  return i >= kNumUnary && i < kNumUnary + kNumBinary;
}
bool is_reduce(OpCode op) {
  int i = static_cast<int>(op);
  return i >= kNumUnary + kNumBinary && i < kNumUnary + kNumBinary + kNumReduce;
}
bool is_predicate(OpCode op) {
  switch (op) {
    case OpCode::Equal:
    case OpCode::NotEqual:
    case OpCode::Less:
    case OpCode::LessEqual:
    case OpCode::Greater:
    case OpCode::GreaterEqual:
    case OpCode::LogicalAnd:
    case OpCode::LogicalOr:
    case OpCode::LogicalXor:
      return true;
    default:
      return false;
  }
}

// ---- devices -------------------------------------------------------------
Device::Device(std::string_view spec) {
  auto colon = spec.find(':');
  std::string_view kind = spec.substr(0, colon);
  if (kind == "cpu") {
    type = DeviceType::CPU;
  } else if (kind == "cuda") {
    type = DeviceType::CUDA;
  } else if (kind == "mlx") {
    type = DeviceType::MLX;
  } else {
    throw DeviceError("[device] unknown device '" + std::string(spec) +
                      "' (expected cpu, cuda[:N] or mlx)");
  }
  index = 0;
  if (colon != std::string_view::npos) {
    std::string num(spec.substr(colon + 1));
    char* end = nullptr;
    long v = std::strtol(num.c_str(), &end, 10);
    if (num.empty() || *end != '\0' || v < 0)
      throw DeviceError("[device] bad device index in '" + std::string(spec) + "'");
    index = static_cast<int>(v);
  }
}

std::string Device::str() const {
  switch (type) {
    case DeviceType::CPU:
      return "cpu";
    case DeviceType::MLX:
      return index == 0 ? std::string("mlx") : "mlx:" + std::to_string(index);
    default:
      return "cuda:" + std::to_string(index);
  }
}

namespace {
Device initial_device() {
  const char* e = std::getenv("TMATH_DEVICE");
  if (!e || !*e) return kCPU;
  return Device(std::string_view(e));
}
std::mutex g_device_mu;
Device g_default_device = initial_device();
}  // namespace

Device default_device() {
  std::lock_guard<std::mutex> lk(g_device_mu);
  return g_default_device;
}
void set_default_device(Device d) {
  std::lock_guard<std::mutex> lk(g_device_mu);
  g_default_device = d;
}

// ---- matmul precision ------------------------------------------------------
namespace {
std::atomic<MatmulPrecision> g_precision{MatmulPrecision::Highest};
thread_local std::optional<DType> t_autocast;
}  // namespace

void set_matmul_precision(MatmulPrecision p) {
  g_precision.store(p);
}
void set_matmul_precision(std::string_view p) {
  if (p == "highest")
    set_matmul_precision(MatmulPrecision::Highest);
  else if (p == "high")
    set_matmul_precision(MatmulPrecision::High);
  else if (p == "medium")
    set_matmul_precision(MatmulPrecision::Medium);
  else
    throw ValueError("[set_matmul_precision] expected \"highest\", \"high\" or \"medium\", got \"" +
                     std::string(p) + "\"");
}
MatmulPrecision matmul_precision() {
  return g_precision.load();
}
std::string_view matmul_precision_name(MatmulPrecision p) {
  switch (p) {
    case MatmulPrecision::Highest:
      return "highest";
    case MatmulPrecision::High:
      return "high";
    case MatmulPrecision::Medium:
      return "medium";
  }
  return "highest";
}
AutocastScope::AutocastScope(DType dtype, bool enabled) : prev_(t_autocast) {
  if (dtype != float16 && dtype != bfloat16)
    throw DTypeError("[autocast] dtype must be float16 or bfloat16, got " +
                     std::string(dtype_name(dtype)));
  t_autocast = enabled ? std::optional<DType>(dtype) : std::nullopt;
}
AutocastScope::~AutocastScope() {
  t_autocast = prev_;
}
std::optional<DType> autocast_dtype() {
  return t_autocast;
}

// ---- registry -------------------------------------------------------------
namespace {
struct Registry {
  std::shared_mutex mu;
  std::vector<std::shared_ptr<Backend>> list;  // in priority order
  std::vector<std::string> priority;
  std::atomic<uint64_t> generation{1};
};
Registry& registry() {
  static Registry r;
  return r;
}

// Per-thread selection cache keyed by (device type, op, dtype), invalidated by generation.
struct SelectCache {
  uint64_t generation = 0;
  std::array<Backend*, kNumDeviceTypes * kNumOpCodes * kNumDTypes> table{};
  std::array<bool, kNumDeviceTypes * kNumOpCodes * kNumDTypes> filled{};
};
thread_local SelectCache t_cache;

void reorder_locked(Registry& r) {
  std::stable_sort(r.list.begin(), r.list.end(), [&](const auto& a, const auto& b) {
    auto rank = [&](const std::shared_ptr<Backend>& x) {
      // "torch" also ranks "torch:cuda"
      const std::string_view n = x->name(), family = n.substr(0, n.find(':'));
      auto it = std::find_if(r.priority.begin(), r.priority.end(),
                             [&](const std::string& p) { return p == n || p == family; });
      return it == r.priority.end() ? r.priority.size()
                                    : static_cast<size_t>(it - r.priority.begin());
    };
    return rank(a) < rank(b);
  });
  r.generation.fetch_add(1);
}

std::vector<std::string> env_priority() {
  const char* e = std::getenv("TMATH_BACKEND");
  if (!e || !*e) return {};
  return {std::string(e)};
}

std::atomic<FallbackPolicy> g_fallback{[] {
  const char* e = std::getenv("TMATH_FALLBACK");
  std::string s = e ? e : "warn";
  if (s == "allow") return FallbackPolicy::Allow;
  if (s == "error") return FallbackPolicy::Error;
  return FallbackPolicy::Warn;
}()};

struct Counters {
  std::atomic<uint64_t> nodes{0}, kernels{0}, fallbacks{0}, upcasts{0}, donated{0}, evals{0},
      calibrations{0}, host_placements{0};
};
Counters g_counters;
}  // namespace

double Backend::time_ms(Device d, const std::function<void()>& fn, int reps) {
  synchronize(d);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) fn();
  synchronize(d);
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::milli>(t1 - t0).count() / std::max(reps, 1);
}

void Backend::put(OpCode op, const ArrayRef&, const ArrayRef&, const ArrayRef&) {
  throw UnsupportedError("[" + std::string(op_name(op)) + "] backend '" + std::string(name()) +
                         "' has no scatter kernel");
}

void Backend::fused(const FusedProgram&, std::span<const ArrayRef>, const ArrayRef&) {
  throw UnsupportedError("[fused] backend '" + std::string(name()) +
                         "' does not run fused programs");
}

std::optional<Backend::NativeReference> Backend::native_reference(std::string_view,
                                                                  std::span<const ArrayRef>,
                                                                  MatmulPrecision) {
  return std::nullopt;
}

void register_backend(std::shared_ptr<Backend> b) {
  auto& r = registry();
  std::unique_lock lk(r.mu);
  if (r.priority.empty()) r.priority = env_priority();
  auto it = std::find_if(r.list.begin(), r.list.end(),
                         [&](const auto& x) { return x->name() == b->name(); });
  if (it != r.list.end())
    *it = std::move(b);
  else
    r.list.push_back(std::move(b));
  reorder_locked(r);
}

void unregister_backend(std::string_view name) {
  auto& r = registry();
  std::unique_lock lk(r.mu);
  std::erase_if(r.list, [&](const auto& x) { return x->name() == name; });
  r.generation.fetch_add(1);
}

std::vector<std::shared_ptr<Backend>> backends() {
  auto& r = registry();
  std::shared_lock lk(r.mu);
  return r.list;
}

std::shared_ptr<Backend> get_backend(std::string_view name) {
  auto& r = registry();
  std::shared_lock lk(r.mu);
  for (auto& b : r.list)
    if (b->name() == name) return b;
  return nullptr;
}

void set_backend_priority(const std::vector<std::string>& names) {
  auto& r = registry();
  std::unique_lock lk(r.mu);
  r.priority = names;
  reorder_locked(r);
}

std::vector<std::string> backend_priority() {
  auto& r = registry();
  std::shared_lock lk(r.mu);
  std::vector<std::string> out;
  for (auto& b : r.list) out.emplace_back(b->name());
  return out;
}

Backend* select_backend(OpCode op, DType dt, Device device) {
  auto& r = registry();
  uint64_t gen = r.generation.load(std::memory_order_acquire);
  if (t_cache.generation != gen) {
    t_cache.filled.fill(false);
    t_cache.generation = gen;
  }
  size_t key =
      (static_cast<size_t>(device.type) * kNumOpCodes + static_cast<size_t>(op)) * kNumDTypes +
      static_cast<size_t>(dt);
  if (t_cache.filled[key]) return t_cache.table[key];
  Backend* found = nullptr;
  {
    std::shared_lock lk(r.mu);
    for (auto& b : r.list) {
      if (b->device_type() == device.type && b->available() && b->supports(op, dt)) {
        found = b.get();
        break;
      }
    }
  }
  t_cache.table[key] = found;
  t_cache.filled[key] = true;
  return found;
}

void set_fallback_policy(FallbackPolicy p) {
  g_fallback.store(p);
}
FallbackPolicy fallback_policy() {
  return g_fallback.load();
}

DispatchStats dispatch_stats() {
  DispatchStats s;
  s.nodes_evaluated = g_counters.nodes.load();
  s.kernels_launched = g_counters.kernels.load();
  s.fallbacks = g_counters.fallbacks.load();
  s.upcasts = g_counters.upcasts.load();
  s.host_placements = g_counters.host_placements.load();
  s.donated_buffers = g_counters.donated.load();
  s.graph_evals = g_counters.evals.load();
  s.cost_calibrations = g_counters.calibrations.load();
  return s;
}

void reset_dispatch_stats() {
  g_counters.nodes = 0;
  g_counters.kernels = 0;
  g_counters.fallbacks = 0;
  g_counters.upcasts = 0;
  g_counters.donated = 0;
  g_counters.evals = 0;
  g_counters.calibrations = 0;
}

// ---- cost model (SelectionPolicy::Cost) --------------------------------------
namespace {
std::atomic<SelectionPolicy> g_selection{[] {
  const char* e = std::getenv("TMATH_SELECT");
  return e && std::string_view(e) == "cost" ? SelectionPolicy::Cost : SelectionPolicy::Priority;
}()};

// (device type, device index, op, dtype, size class)
using CostKey = std::tuple<int, int, int, int, int>;
struct CostRow {
  std::vector<std::shared_ptr<Backend>> cands;  // in priority order
  std::vector<int> samples;
  std::vector<double> best_ms;
  Backend* chosen = nullptr;
};
struct CostModel {
  std::mutex mu;
  std::map<CostKey, CostRow> rows;
};
CostModel& cost_model() {
  static CostModel m;
  return m;
}

// The available backends of `device` that support (op, dt), in priority order.
std::vector<std::shared_ptr<Backend>> candidates(OpCode op, DType dt, Device device) {
  std::vector<std::shared_ptr<Backend>> out;
  auto& r = registry();
  std::shared_lock lk(r.mu);
  for (auto& b : r.list)
    if (b->device_type() == device.type && b->available() && b->supports(op, dt)) out.push_back(b);
  return out;
}

// A candidate's name in the table and the log; a cpu backend for another device's
// tensor is host placement.
std::string candidate_name(const Backend& b, Device device) {
  std::string n(b.name());
  if (b.device_type() != device.type) n += " (host)";
  return n;
}

bool same_candidates(const CostRow& row, const std::vector<std::shared_ptr<Backend>>& c) {
  return row.cands.size() == c.size() &&
         std::equal(c.begin(), c.end(), row.cands.begin(),
                    [](const auto& a, const auto& b) { return a.get() == b.get(); });
}
}  // namespace

void set_selection_policy(SelectionPolicy p) { g_selection.store(p); }
SelectionPolicy selection_policy() { return g_selection.load(); }

std::vector<CostEntry> cost_table() {
  auto& m = cost_model();
  std::lock_guard<std::mutex> lk(m.mu);
  std::vector<CostEntry> out;
  for (const auto& [key, row] : m.rows) {
    CostEntry e;
    const auto [type, index, op, dt, cls] = key;
    e.device = Device(static_cast<DeviceType>(type), index).str();
    e.op = detail::snake_name(static_cast<OpCode>(op));
    e.dtype = std::string(dtype_name(static_cast<DType>(dt)));
    e.size_class = cls;
    const Device dev(static_cast<DeviceType>(type), index);
    for (size_t i = 0; i < row.cands.size(); ++i)
      e.ms.emplace_back(candidate_name(*row.cands[i], dev),
                        row.samples[i] ? row.best_ms[i] : std::nan(""));
    if (row.chosen) e.chosen = candidate_name(*row.chosen, dev);
    out.push_back(std::move(e));
  }
  return out;
}

void reset_cost_table() {
  auto& m = cost_model();
  std::lock_guard<std::mutex> lk(m.mu);
  m.rows.clear();
}

namespace detail {

std::string snake_name(OpCode op) {
  std::string r;
  for (char c : op_name(op)) {
    if (std::isupper(static_cast<unsigned char>(c))) {
      if (!r.empty()) r += '_';
      r += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      r += c;
    }
  }
  return r;
}

void count_graph_eval() {
  g_counters.evals.fetch_add(1, std::memory_order_relaxed);
}
void count_nodes(uint64_t n) { g_counters.nodes.fetch_add(n, std::memory_order_relaxed); }

void count_kernel() {
  g_counters.kernels.fetch_add(1, std::memory_order_relaxed);
}
void count_donation() {
  g_counters.donated.fetch_add(1, std::memory_order_relaxed);
}

Backend& primary_backend(Device device) {
  auto& r = registry();
  thread_local uint64_t cached_gen = 0;
  thread_local std::array<Backend*, kNumDeviceTypes> cached{};
  uint64_t gen = r.generation.load(std::memory_order_acquire);
  if (cached_gen != gen) {
    cached.fill(nullptr);
    cached_gen = gen;
  }
  auto& slot = cached[static_cast<size_t>(device.type)];
  if (slot) return *slot;
  std::shared_lock lk(r.mu);
  for (auto& b : r.list)
    if (b->device_type() == device.type && b->available()) return *(slot = b.get());
  throw DeviceError("[device] no available backend for device " + device.str());
}

namespace {
std::mutex g_warn_mu;
std::set<std::pair<int, int>> g_warned;

void note_fallback(OpCode op, DType dt, Device device) {
  g_counters.fallbacks.fetch_add(1, std::memory_order_relaxed);
  FallbackPolicy p = fallback_policy();
  if (p == FallbackPolicy::Error)
    throw UnsupportedError("[" + std::string(op_name(op)) + "] no backend on " + device.str() +
                           " supports dtype " + std::string(dtype_name(dt)) +
                           " and the fallback policy is 'error'");
  if (p == FallbackPolicy::Warn) {
    std::lock_guard<std::mutex> lk(g_warn_mu);
    if (g_warned.insert({static_cast<int>(op), static_cast<int>(dt)}).second)
      std::cerr << "tmath: [" << op_name(op) << "] dtype " << dtype_name(dt) << " on "
                << device.str() << " falls back to the cpu backend (copies counted)\n";
  }
}
}  // namespace

namespace {
// Runs `prim` on the cpu backend `cpu` for a tensor of another device: the inputs are
// copied to the host, the outputs back (copies counted by the transfer stats).
void run_on_host(Primitive& prim, Backend* cpu, Device device, const std::vector<Tensor>& inputs,
                 const std::vector<TensorImpl*>& outputs) {
  std::vector<Tensor> host_inputs;
  for (const auto& in : inputs) host_inputs.push_back(to_device(in, kCPU).eval());
  std::vector<std::shared_ptr<TensorImpl>> host_outs;
  std::vector<TensorImpl*> host_ptrs;
  for (auto* o : outputs) {
    auto h = std::make_shared<TensorImpl>();
    h->shape = o->shape;
    h->size = o->size;
    h->dtype = o->dtype;
    h->device = kCPU;
    host_ptrs.push_back(h.get());
    host_outs.push_back(std::move(h));
  }
  prim.eval(cpu, host_inputs, host_ptrs);
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor dev = to_device(Tensor(host_outs[i]), device).eval();
    outputs[i]->set_view(dev.impl()->buffer, dev.impl()->strides, dev.impl()->offset);
  }
}

// Under the cost policy a linear-algebra problem this small on a device tensor may run
// on the host instead (the cpu backend is then one more candidate): at most
// kHostMatrixElements per matrix and kHostTotalElements over the whole input.
constexpr int64_t kHostMatrixElements = 128 * 128;
constexpr int64_t kHostTotalElements = int64_t{1} << 20;
bool host_candidate(OpCode op, Device device, const std::vector<Tensor>& inputs) {
  if (device.type == DeviceType::CPU || !detail::is_linalg_op(op) || inputs.empty()) return false;
  int64_t total = 0;
  for (const Tensor& t : inputs) {
    const Shape& sh = t.shape();
    if (sh.size() >= 2 && sh[sh.size() - 1] * sh[sh.size() - 2] > kHostMatrixElements)
      return false;
    total += t.size();
  }
  return total <= kHostTotalElements;
}

// Runs `prim` on `be`: a backend of `device`, or a cpu backend (host placement).
void run_on(Primitive& prim, Backend* be, Device device, const std::vector<Tensor>& inputs,
            const std::vector<TensorImpl*>& outputs) {
  if (be->device_type() == device.type) {
    prim.eval(be, inputs, outputs);
    return;
  }
  g_counters.host_placements.fetch_add(1, std::memory_order_relaxed);
  run_on_host(prim, be, device, inputs, outputs);
}

// SelectionPolicy::Cost: runs `prim` on the measured cheapest of several candidate
// backends of `device` (calibrating first); false when there is no choice to make.
bool run_by_cost(Primitive& prim, OpCode op, DType dt, Device device,
                 const std::vector<Tensor>& inputs, const std::vector<TensorImpl*>& outputs) {
  std::vector<std::shared_ptr<Backend>> cands = candidates(op, dt, device);
  if (cands.empty()) return false;  // the fallback path
  if (host_candidate(op, device, inputs))
    for (auto& b : candidates(op, dt, kCPU)) cands.push_back(b);
  if (cands.size() < 2) return false;
  const uint64_t elements = static_cast<uint64_t>(std::max<int64_t>(outputs[0]->size, 1));
  const int cls = static_cast<int>(std::bit_width(elements)) - 1;
  const CostKey key{static_cast<int>(device.type), device.index, static_cast<int>(op),
                    static_cast<int>(dt), cls};
  auto& m = cost_model();
  Backend* be = nullptr;
  size_t slot = 0;
  bool timed = false;
  {
    std::lock_guard<std::mutex> lk(m.mu);
    CostRow& row = m.rows[key];
    if (!same_candidates(row, cands)) {  // new, or the registry changed
      row.cands = cands;
      row.samples.assign(cands.size(), 0);
      row.best_ms.assign(cands.size(), std::numeric_limits<double>::infinity());
      row.chosen = nullptr;
    }
    if (row.chosen) {
      be = row.chosen;
    } else {
      while (slot + 1 < cands.size() && row.samples[slot] >= kCostSamples) ++slot;
      be = cands[slot].get();
      timed = true;
    }
  }
  if (!timed) {  // decided
    run_on(prim, be, device, inputs, outputs);
    return true;
  }
  // A timed run: what is queued finishes first, then this op alone.
  Backend& dev_be = *cands[0];
  dev_be.synchronize(device);
  const auto t0 = std::chrono::steady_clock::now();
  run_on(prim, be, device, inputs, outputs);
  dev_be.synchronize(device);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  g_counters.calibrations.fetch_add(1, std::memory_order_relaxed);
  std::string decided;
  {
    std::lock_guard<std::mutex> lk(m.mu);
    CostRow& row = m.rows[key];
    if (same_candidates(row, cands) && !row.chosen) {
      row.best_ms[slot] = std::min(row.best_ms[slot], ms);
      ++row.samples[slot];
      if (std::all_of(row.samples.begin(), row.samples.end(),
                      [](int n) { return n >= kCostSamples; })) {
        const size_t k = static_cast<size_t>(
            std::min_element(row.best_ms.begin(), row.best_ms.end()) - row.best_ms.begin());
        row.chosen = row.cands[k].get();
        if (jit::log_enabled("dispatch")) {
          decided = "cost model: " + snake_name(op) + " " + std::string(dtype_name(dt)) +
                    " ~2^" + std::to_string(cls) + " elements on " + device.str() + ":";
          for (size_t i = 0; i < row.cands.size(); ++i) {
            char buf[64];
            std::snprintf(buf, sizeof buf, " %.4g ms", row.best_ms[i]);
            decided += " " + candidate_name(*row.cands[i], device) + buf;
          }
          decided += " -> " + candidate_name(*row.chosen, device);
        }
      }
    }
  }
  if (!decided.empty()) jit::log("dispatch", decided);
  return true;
}
}  // namespace

void run_primitive(Primitive& prim, const std::vector<Tensor>& inputs,
                   const std::vector<TensorImpl*>& outputs) {
  g_counters.nodes.fetch_add(1, std::memory_order_relaxed);
  auto op = prim.opcode();
  TensorImpl& out0 = *outputs[0];
  if (!op) {
    prim.eval(nullptr, inputs, outputs);
    return;
  }
  DType dt = prim.dispatch_dtype(inputs, out0);
  Device device = out0.device;
  // An unused first output of a multi-output node (svd(x).S, qr(x).R) arrives as a bare
  // temporary with the default device: linear algebra runs where its input lives.
  if (detail::is_linalg_op(*op) && !inputs.empty()) device = inputs[0].device();
  if (g_selection.load(std::memory_order_relaxed) == SelectionPolicy::Cost &&
      run_by_cost(prim, *op, dt, device, inputs, outputs))
    return;
  if (Backend* be = select_backend(*op, dt, device)) {
    prim.eval(be, inputs, outputs);
    return;
  }
  // Nothing on this device runs it.
  if (device.type == DeviceType::CPU) {
    throw UnsupportedError("[" + prim.name() + "] no backend supports dtype " +
                           std::string(dtype_name(dt)) + " on cpu");
  }
  note_fallback(*op, dt, device);
  Backend* cpu = select_backend(*op, dt, kCPU);
  if (!cpu)
    throw UnsupportedError("[" + prim.name() + "] no backend supports dtype " +
                           std::string(dtype_name(dt)) + " on " + device.str() + " or cpu");
  run_on_host(prim, cpu, device, inputs, outputs);
}

}  // namespace detail
}  // namespace tmath
