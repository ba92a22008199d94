// Caching host allocator (size classes, reuse, limit, stats).
#pragma once

#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "tmath/backend.h"

namespace tmath::cpu {

class CachingAllocator final : public Allocator {
 public:
  CachingAllocator();
  ~CachingAllocator() override;
  void* allocate(size_t nbytes) override;
  void deallocate(void* p, size_t nbytes) override;
  MemoryStats stats() const override;
  void reset_peak() override;
  void empty_cache() override;
  void set_limit(uint64_t bytes) override;

  // Rounded size a request of nbytes occupies.
  static size_t size_class(size_t nbytes);

 private:
  void* system_alloc(size_t bytes);
  void release_cached_locked();

  mutable std::mutex mu_;
  // Cached blocks by size; vectors keep their capacity so steady-state reuse
  // does not allocate. Each block's size is stored in a header before it.
  std::map<size_t, std::vector<void*>> free_;
  MemoryStats st_;
};

}  // namespace tmath::cpu
