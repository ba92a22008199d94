// JIT switches, statistics, logging, program signatures and the on-disk kernel cache.
#include "jit/jit.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>

#include "core/dispatch.h"
#include "tmath/error.h"
#include "tmath/transforms.h"

namespace tmath {

// ---- program signature ----
std::string FusedProgram::signature() const {
  std::string s;
  s.reserve(instrs.size() * 12);
  for (const auto& in : instrs) {
    s += static_cast<char>('A' + static_cast<int>(in.kind));
    s += std::to_string(static_cast<int>(in.op));
    s += ':';
    s += std::to_string(static_cast<int>(in.dtype));
    for (int32_t o : {in.a, in.b, in.c}) {
      if (o < 0) break;
      s += ',';
      s += std::to_string(o);
    }
    s += ';';
  }
  return s;
}

namespace jit {
namespace {

std::atomic<bool> g_enabled{!tmath::detail::env_off("TMATH_JIT")};
thread_local int t_override = -1;  // -1: none, 0/1: JitScope

struct Counters {
  std::atomic<uint64_t> fused_kernels{0}, fused_ops{0}, skipped{0}, mem_hits{0}, disk_hits{0},
      misses{0}, rejected{0}, traces{0}, calls{0}, graph_captures{0}, graph_replays{0},
      graph_fallbacks{0}, graph_lane_ops{0}, queued_ops{0}, queue_launches{0};
  std::atomic<int64_t> compile_us{0};
};
Counters g_c;

// TMATH_LOG: comma-separated topics, or "all".
struct LogTopics {
  std::string list;
  bool all = false;
  LogTopics() {
    const char* e = std::getenv("TMATH_LOG");
    list = e ? e : "";
    all = list == "all" || list == "1";
  }
};
const LogTopics& topics() {
  static const LogTopics t;
  return t;
}
std::mutex g_log_mu;

}  // namespace

bool enabled() { return t_override >= 0 ? t_override != 0 : g_enabled.load(); }

bool log_enabled(std::string_view topic) {
  const LogTopics& t = topics();
  if (t.all) return true;
  if (t.list.empty()) return false;
  size_t pos = 0;
  while (pos <= t.list.size()) {
    size_t end = t.list.find(',', pos);
    if (end == std::string::npos) end = t.list.size();
    if (std::string_view(t.list).substr(pos, end - pos) == topic) return true;
    pos = end + 1;
  }
  return false;
}

void log(std::string_view topic, const std::string& msg) {
  std::lock_guard<std::mutex> lk(g_log_mu);
  std::cerr << "tmath[" << topic << "]: " << msg << "\n";
}

void count_cache(CacheEvent e, double compile_ms) {
  switch (e) {
    case CacheEvent::MemoryHit:
      g_c.mem_hits.fetch_add(1, std::memory_order_relaxed);
      break;
    case CacheEvent::DiskHit:
      g_c.disk_hits.fetch_add(1, std::memory_order_relaxed);
      break;
    case CacheEvent::Miss:
      g_c.misses.fetch_add(1, std::memory_order_relaxed);
      break;
    case CacheEvent::Rejected:
      g_c.rejected.fetch_add(1, std::memory_order_relaxed);
      break;
  }
  if (compile_ms > 0)
    g_c.compile_us.fetch_add(static_cast<int64_t>(compile_ms * 1000.0), std::memory_order_relaxed);
}
void count_fused(uint64_t ops) {
  g_c.fused_kernels.fetch_add(1, std::memory_order_relaxed);
  g_c.fused_ops.fetch_add(ops, std::memory_order_relaxed);
}
void count_queue(uint64_t ops) {
  g_c.queue_launches.fetch_add(1, std::memory_order_relaxed);
  g_c.queued_ops.fetch_add(ops, std::memory_order_relaxed);
}
void count_skipped() { g_c.skipped.fetch_add(1, std::memory_order_relaxed); }
void count_trace() { g_c.traces.fetch_add(1, std::memory_order_relaxed); }
void count_compiled_call() { g_c.calls.fetch_add(1, std::memory_order_relaxed); }
void count_graph(GraphEvent e) {
  auto& c = e == GraphEvent::Capture    ? g_c.graph_captures
            : e == GraphEvent::Replay   ? g_c.graph_replays
            : e == GraphEvent::Fallback ? g_c.graph_fallbacks
                                        : g_c.graph_lane_ops;
  c.fetch_add(1, std::memory_order_relaxed);
}

// ---- disk cache ----
namespace {

uint64_t fnv1a(std::string_view s, uint64_t h = 1469598103934665603ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

constexpr char kMagic[8] = {'T', 'M', 'K', 'C', 'A', 'C', 'H', '1'};

struct Header {
  char magic[8];
  uint64_t key_size;
  uint64_t blob_size;
  uint64_t checksum;  // over key and blob
};

uint64_t checksum(std::string_view key, std::string_view blob) {
  return fnv1a(blob, fnv1a(key) ^ 0x9e3779b97f4a7c15ULL);
}

}  // namespace

std::string cache_path(std::string_view kind, const std::string& key) {
  const std::string dir = kernel_cache_dir();
  if (dir.empty()) return {};
  // Two independent 64-bit hashes name the file; the stored key decides a hit.
  return dir + "/" + std::string(kind) + "/" + hex(fnv1a(key)) +
         hex(fnv1a(key, 0x84222325cbf29ce4ULL)) + ".bin";
}

std::optional<std::string> cache_load(std::string_view kind, const std::string& key) {
  const std::string path = cache_path(kind, key);
  if (path.empty()) return std::nullopt;
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  auto reject = [&](const char* why) -> std::optional<std::string> {
    f.close();
    std::error_code ec;
    std::filesystem::remove(path, ec);
    count_cache(CacheEvent::Rejected);
    if (log_enabled("jit")) log("jit", "kernel cache: " + std::string(why) + ", deleted " + path);
    return std::nullopt;
  };
  Header h{};
  if (!f.read(reinterpret_cast<char*>(&h), sizeof h)) return reject("truncated header");
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) return reject("bad magic");
  if (h.key_size != key.size() || h.blob_size > (uint64_t{1} << 32))
    return reject("key mismatch (stale entry)");
  std::string stored_key(h.key_size, '\0'), blob(h.blob_size, '\0');
  if (!f.read(stored_key.data(), static_cast<std::streamsize>(h.key_size)) ||
      !f.read(blob.data(), static_cast<std::streamsize>(h.blob_size)))
    return reject("truncated file");
  if (f.peek() != std::char_traits<char>::eof()) return reject("trailing bytes");
  if (stored_key != key) return reject("key mismatch (hash collision or stale entry)");
  if (checksum(stored_key, blob) != h.checksum) return reject("checksum mismatch");
  return blob;
}

void cache_store(std::string_view kind, const std::string& key, const std::string& blob) {
  const std::string path = cache_path(kind, key);
  if (path.empty()) return;
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path final_path(path);
  fs::create_directories(final_path.parent_path(), ec);
  if (ec) {
    if (log_enabled("jit")) log("jit", "kernel cache: cannot create " + final_path.parent_path().string());
    return;
  }
  static std::atomic<uint64_t> seq{0};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." +
                          std::to_string(seq.fetch_add(1));
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return;
    Header h{};
    std::memcpy(h.magic, kMagic, sizeof kMagic);
    h.key_size = key.size();
    h.blob_size = blob.size();
    h.checksum = checksum(key, blob);
    f.write(reinterpret_cast<const char*>(&h), sizeof h);
    f.write(key.data(), static_cast<std::streamsize>(key.size()));
    f.write(blob.data(), static_cast<std::streamsize>(blob.size()));
    f.flush();
    if (!f) {
      f.close();
      fs::remove(tmp, ec);
      return;
    }
  }
  fs::rename(tmp, final_path, ec);  // atomic: readers see the old file or the whole new one
  if (ec) fs::remove(tmp, ec);
}

}  // namespace jit

// ---- public API ----
bool jit_enabled() { return jit::enabled(); }
void set_jit_enabled(bool on) { jit::g_enabled.store(on); }

JitScope::JitScope(bool on) : prev_(jit::t_override) { jit::t_override = on ? 1 : 0; }
JitScope::~JitScope() { jit::t_override = prev_; }

JitStats jit_stats() {
  JitStats s;
  s.fused_kernels = jit::g_c.fused_kernels.load();
  s.fused_ops = jit::g_c.fused_ops.load();
  s.fusion_skipped = jit::g_c.skipped.load();
  s.cache_memory_hits = jit::g_c.mem_hits.load();
  s.cache_disk_hits = jit::g_c.disk_hits.load();
  s.cache_misses = jit::g_c.misses.load();
  s.cache_rejected = jit::g_c.rejected.load();
  s.compile_ms = static_cast<double>(jit::g_c.compile_us.load()) / 1000.0;
  s.traces = jit::g_c.traces.load();
  s.compiled_calls = jit::g_c.calls.load();
  s.graph_captures = jit::g_c.graph_captures.load();
  s.graph_replays = jit::g_c.graph_replays.load();
  s.graph_fallbacks = jit::g_c.graph_fallbacks.load();
  s.graph_lane_ops = jit::g_c.graph_lane_ops.load();
  s.queued_ops = jit::g_c.queued_ops.load();
  s.queue_launches = jit::g_c.queue_launches.load();
  return s;
}

void reset_jit_stats() {
  auto& c = jit::g_c;
  for (auto* a : {&c.fused_kernels, &c.fused_ops, &c.skipped, &c.mem_hits, &c.disk_hits,
                  &c.misses, &c.rejected, &c.traces, &c.calls, &c.graph_captures,
                  &c.graph_replays, &c.graph_fallbacks, &c.graph_lane_ops, &c.queued_ops,
                  &c.queue_launches})
    a->store(0);
  c.compile_us.store(0);
}

std::string kernel_cache_dir() {
  if (const char* d = std::getenv("TMATH_CACHE_DIR")) {
    if (std::strcmp(d, "off") == 0 || std::strcmp(d, "0") == 0) return {};
    if (*d) return d;
  }
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/tmath";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/tmath";
  return {};
}

}  // namespace tmath
