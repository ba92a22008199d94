// Memory statistics and cache control of the per-device caching allocators.
#pragma once

#include <cstdint>
#include <string>

#include "tmath/device.h"
#include "tmath/export.h"

namespace tmath {

struct TMATH_API MemoryStats {
  uint64_t active_bytes = 0;   // held by live buffers (size-class rounded)
  uint64_t peak_bytes = 0;     // max of active_bytes since start/reset
  uint64_t cached_bytes = 0;   // free blocks kept for reuse
  uint64_t requested_bytes = 0;  // held by live buffers, as requested
  uint64_t allocations = 0;    // allocate() calls
  uint64_t cache_hits = 0;     // served from the cache
  uint64_t cache_misses = 0;   // went to the system allocator
  uint64_t oom_retries = 0;    // system allocation failed, cache freed, retried
  uint64_t limit_bytes = 0;    // 0 = no limit
  // Transfers between this device and the host.
  uint64_t host_to_device_copies = 0, host_to_device_bytes = 0;
  uint64_t device_to_host_copies = 0, device_to_host_bytes = 0;
  std::string str() const;
};

TMATH_API MemoryStats memory_stats(Device d = kCPU);
TMATH_API void reset_peak_memory_stats(Device d = kCPU);
// Returns cached free blocks to the system.
TMATH_API void empty_cache(Device d = kCPU);
// Caps active+cached bytes; 0 removes the cap. Env: TMATH_MEMORY_LIMIT (bytes, or with K/M/G).
TMATH_API void set_memory_limit(uint64_t bytes, Device d = kCPU);

}  // namespace tmath
