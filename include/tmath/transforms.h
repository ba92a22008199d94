// Evaluation control, lazy-graph fusion and compile.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tmath/tensor.h"

namespace tmath {

// Materialises all given tensors in one pass over their shared graph.
TMATH_API void eval(const std::vector<Tensor>& xs);
TMATH_API void eval(const Tensor& x);

// Eager mode: every op is evaluated when recorded. Default from TMATH_EAGER=1.
TMATH_API bool eager_mode();
TMATH_API void set_eager_mode(bool on);
class TMATH_API EagerScope {
 public:
  explicit EagerScope(bool on = true);
  ~EagerScope();
  EagerScope(const EagerScope&) = delete;
  EagerScope& operator=(const EagerScope&) = delete;

 private:
  bool prev_;
};

// Unevaluated graphs deeper than this are evaluated when the next op is
// recorded, which bounds memory and recursion in long loops (default 2048).
TMATH_API void set_max_graph_depth(int depth);

// ---- lazy-graph fusion ---------------------------------------------------------
// At eval time chains of elementwise primitives (with broadcasts, scalar operands,
// casts and `where`) run as one fused kernel per chain on backends that support
// it. On by default; TMATH_JIT=0 (or set_jit_enabled(false)) runs every primitive
// as its own kernel, with the same results. TMATH_LOG=jit logs each fusion
// decision and kernel-cache event to stderr.
TMATH_API bool jit_enabled();
TMATH_API void set_jit_enabled(bool on);
// Turns fusion on or off for the current thread while the scope lives.
class TMATH_API JitScope {
 public:
  explicit JitScope(bool on);
  ~JitScope();
  JitScope(const JitScope&) = delete;
  JitScope& operator=(const JitScope&) = delete;

 private:
  int prev_;
};

struct JitStats {
  uint64_t fused_kernels = 0;       // fused programs run
  uint64_t fused_ops = 0;           // primitives run inside them
  uint64_t fusion_skipped = 0;      // fusible chains run op by op (no backend took them)
  uint64_t cache_memory_hits = 0;   // compiled kernels found in memory
  uint64_t cache_disk_hits = 0;     // ... loaded from the disk cache
  uint64_t cache_misses = 0;        // ... compiled
  uint64_t cache_rejected = 0;      // disk cache files found corrupt or stale (deleted)
  double compile_ms = 0.0;          // time spent compiling kernels
  uint64_t traces = 0;              // compile(): functions traced
  uint64_t compiled_calls = 0;      // compile(): calls replayed from a trace
  uint64_t graph_captures = 0;      // compile(): replays recorded as a device graph
  uint64_t graph_replays = 0;       // compile(): calls run as one graph launch
  uint64_t graph_fallbacks = 0;     // compile(): calls that could have, but ran node by node
                                    // (recording failed, or the last outputs still held)
  uint64_t graph_lane_ops = 0;      // compile(): operations recorded on a second lane of a
                                    // device graph (run beside the rest in its replays)
  uint64_t queued_ops = 0;          // tiny elementwise ops run through a device's op queue
  uint64_t queue_launches = 0;      // ... and the launches that ran them (CUDA; docs/jit.md)
};
TMATH_API JitStats jit_stats();
TMATH_API void reset_jit_stats();
// Directory of the on-disk kernel cache: TMATH_CACHE_DIR, else
// $XDG_CACHE_HOME/tmath, else ~/.cache/tmath. TMATH_CACHE_DIR=off disables it.
TMATH_API std::string kernel_cache_dir();

// ---- compile ----------------------------------------------------------------------
// compile(fn) traces fn once per argument signature (shapes, dtypes, devices) into
// a graph, simplifies it (constant subgraphs evaluated once, common elementwise
// subexpressions merged), and replays it on later calls: the result is
// evaluated, with fusion as at any eval. A call with a new signature traces again
// (retraces are counted in traces()). fn must be a pure function of its tensor
// arguments: it may not read tensor data (item, tolist, printing) while tracing,
// and tensors it captures are treated as constants.
using TensorFunction = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

class TMATH_API CompiledFunction {
 public:
  struct Impl;
  explicit CompiledFunction(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::vector<Tensor> operator()(const std::vector<Tensor>& args) const;
  // Number of traces so far (one per distinct argument signature seen).
  int64_t traces() const;

 private:
  std::shared_ptr<Impl> impl_;
};
TMATH_API CompiledFunction compile(TensorFunction fn);

}  // namespace tmath
