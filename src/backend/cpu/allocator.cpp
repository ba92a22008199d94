#include "backend/cpu/allocator.h"

#include <cstdlib>
#include <new>
#include <string>

#include "tmath/error.h"

namespace tmath::cpu {
namespace {
constexpr size_t kAlign = 64;
constexpr size_t kSmall = size_t{1} << 20;

uint64_t env_limit() {
  const char* e = std::getenv("TMATH_MEMORY_LIMIT");
  if (!e || !*e) return 0;
  char* end = nullptr;
  double v = std::strtod(e, &end);
  switch (end && *end ? *end : ' ') {
    case 'k': case 'K': v *= 1024.0; break;
    case 'm': case 'M': v *= 1024.0 * 1024.0; break;
    case 'g': case 'G': v *= 1024.0 * 1024.0 * 1024.0; break;
    default: break;
  }
  return v > 0 ? static_cast<uint64_t>(v) : 0;
}

// Blocks carry their size in a kAlign-byte header so deallocation needs no lookup.
void* to_user(void* raw, size_t sz) {
  *static_cast<size_t*>(raw) = sz;
  return static_cast<char*>(raw) + kAlign;
}
void* to_raw(void* user) { return static_cast<char*>(user) - kAlign; }
size_t block_size(void* user) { return *static_cast<size_t*>(to_raw(user)); }
}  // namespace

CachingAllocator::CachingAllocator() { st_.limit_bytes = env_limit(); }

CachingAllocator::~CachingAllocator() {
  for (auto& [size, v] : free_)
    for (void* p : v) std::free(to_raw(p));
}


size_t CachingAllocator::size_class(size_t nbytes) {
  if (nbytes == 0) return kAlign;
  if (nbytes < kSmall) return (nbytes + 255) & ~size_t{255};
  // Large blocks: 64 KiB granularity.
  constexpr size_t g = size_t{1} << 16;
  return (nbytes + g - 1) & ~(g - 1);
}

void* CachingAllocator::system_alloc(size_t bytes) {
  void* p = std::aligned_alloc(kAlign, bytes + kAlign);
  if (!p) {
    ++st_.oom_retries;
    release_cached_locked();
    p = std::aligned_alloc(kAlign, bytes + kAlign);
  }
  return p ? to_user(p, bytes) : nullptr;
}

void CachingAllocator::release_cached_locked() {
  for (auto& [size, v] : free_)
    for (void* p : v) std::free(to_raw(p));
  free_.clear();
  st_.cached_bytes = 0;
}

void* CachingAllocator::allocate(size_t nbytes) {
  size_t sz = size_class(nbytes);
  std::lock_guard<std::mutex> lk(mu_);
  ++st_.allocations;
  // Best fit among cached blocks, accepting up to 1/8 slack for large blocks.
  size_t slack = sz < kSmall ? 0 : sz / 8;
  for (auto it = free_.lower_bound(sz); it != free_.end() && it->first <= sz + slack; ++it) {
    if (it->second.empty()) continue;
    void* p = it->second.back();
    it->second.pop_back();
    size_t bsz = it->first;
    st_.cached_bytes -= bsz;
    ++st_.cache_hits;
    st_.active_bytes += bsz;
    st_.requested_bytes += nbytes;
    st_.peak_bytes = std::max(st_.peak_bytes, st_.active_bytes);
    return p;
  }
  ++st_.cache_misses;
  if (st_.limit_bytes) {
    if (st_.active_bytes + st_.cached_bytes + sz > st_.limit_bytes) release_cached_locked();
    if (st_.active_bytes + sz > st_.limit_bytes) {
      MemoryStats s = st_;
      throw OutOfMemoryError("[allocate] cpu: request of " + std::to_string(nbytes) +
                             " bytes exceeds the memory limit; " + s.str());
    }
  }
  void* p = system_alloc(sz);
  if (!p) {
    MemoryStats s = st_;
    throw OutOfMemoryError("[allocate] cpu: out of memory allocating " + std::to_string(nbytes) +
                           " bytes (cache freed and retried); " + s.str());
  }
  st_.active_bytes += sz;
  st_.requested_bytes += nbytes;
  st_.peak_bytes = std::max(st_.peak_bytes, st_.active_bytes);
  return p;
}

void CachingAllocator::deallocate(void* p, size_t nbytes) {
  if (!p) return;
  size_t sz = block_size(p);
  std::lock_guard<std::mutex> lk(mu_);
  st_.active_bytes -= sz;
  st_.requested_bytes -= nbytes;
  if (st_.limit_bytes && st_.active_bytes + st_.cached_bytes + sz > st_.limit_bytes) {
    std::free(to_raw(p));
    return;
  }
  free_[sz].push_back(p);
  st_.cached_bytes += sz;
}

MemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return st_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lk(mu_);
  st_.peak_bytes = st_.active_bytes;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lk(mu_);
  release_cached_locked();
}

void CachingAllocator::set_limit(uint64_t bytes) {
  std::lock_guard<std::mutex> lk(mu_);
  st_.limit_bytes = bytes;
  if (bytes && st_.active_bytes + st_.cached_bytes > bytes) release_cached_locked();
}

}  // namespace tmath::cpu
