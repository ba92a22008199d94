// Internal interface of the JIT layer: fusion planning over the lazy graph,
// statistics, logging, and the on-disk kernel cache that device backends use.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor_impl.h"
#include "tmath/backend.h"
#include "tmath/export.h"

namespace tmath::jit {

using detail::TensorImpl;

// ---- logging (TMATH_LOG=jit,dispatch,... or all) ----
TMATH_API bool log_enabled(std::string_view topic);
TMATH_API void log(std::string_view topic, const std::string& msg);

// ---- fusion ----
bool enabled();

// One fused chain: `members` (topological order, root last) run as one program
// whose inputs are `leaves`, on `backend`.
struct Group {
  TensorImpl* root = nullptr;
  std::vector<TensorImpl*> members;
  std::vector<TensorImpl*> leaves;
  FusedProgram program;
  Backend* backend = nullptr;
  bool members_die = true;  // no member is held outside the graph
};

struct Plan {
  std::vector<Group> groups;
  std::vector<int> group_of;  // per entry of the order: its group, or -1
};

// Plans fusion over `order`, a post-order of the pending nodes of one eval
// whose results are `roots` (always materialised).
Plan plan(const std::vector<TensorImpl*>& order, const std::vector<TensorImpl*>& roots);
// Runs a planned group: allocates (or donates) the root's buffer, runs the
// program, and releases the members.
void run(Group& g);
// Runs `p` on `be` into `out` (storage set) with `leaves` (evaluated) broadcast to
// out's shape; counts one kernel and `ops` fused ops.
void launch(Backend& be, const FusedProgram& p, std::span<TensorImpl* const> leaves,
            TensorImpl& out, size_t ops);

// ---- kernel cache events (device backends report them) ----
enum class CacheEvent { MemoryHit, DiskHit, Miss, Rejected };
TMATH_API void count_cache(CacheEvent e, double compile_ms = 0.0);
void count_fused(uint64_t ops);
// A device's tiny-op queue ran `ops` ops as one launch.
TMATH_API void count_queue(uint64_t ops);
void count_skipped();
void count_trace();
// True while compile() traces a function on this thread (its arguments are
// placeholders: nothing may be evaluated).
bool tracing();
void count_compiled_call();
enum class GraphEvent { Capture, Replay, Fallback, LaneOp };
void count_graph(GraphEvent e);

// On-disk cache of compiled kernels. `key` is the full text that determines the
// binary (engine version, device arch, compiler version, options, program text);
// files hold the key and a checksum, so a stale, truncated or corrupt file is
// detected, deleted, and reported as a miss. Writes are atomic (temp + rename).
TMATH_API std::optional<std::string> cache_load(std::string_view kind, const std::string& key);
TMATH_API void cache_store(std::string_view kind, const std::string& key, const std::string& blob);
// The file a key maps to (tests use it to damage entries).
TMATH_API std::string cache_path(std::string_view kind, const std::string& key);

}  // namespace tmath::jit
