#include "tmath/memory.h"

#include <sstream>

#include "core/dispatch.h"

namespace tmath {

std::string MemoryStats::str() const {
  std::ostringstream os;
  os << "active " << active_bytes << " B, peak " << peak_bytes << " B, cached " << cached_bytes
     << " B, limit " << (limit_bytes ? std::to_string(limit_bytes) + " B" : std::string("none"))
     << ", allocations " << allocations << " (hits " << cache_hits << ", misses " << cache_misses
     << ", oom retries " << oom_retries << ")";
  if (host_to_device_copies || device_to_host_copies)
    os << ", h2d " << host_to_device_copies << " (" << host_to_device_bytes << " B), d2h "
       << device_to_host_copies << " (" << device_to_host_bytes << " B)";
  return os.str();
}

MemoryStats memory_stats(Device d) {
  return detail::primary_backend(d).allocator(d).stats();
}
void reset_peak_memory_stats(Device d) {
  detail::primary_backend(d).allocator(d).reset_peak();
}
void empty_cache(Device d) {
  detail::clear_device_scalars(d);  // their blocks would pin otherwise free segments
  detail::primary_backend(d).allocator(d).empty_cache();
}
void set_memory_limit(uint64_t bytes, Device d) {
  detail::primary_backend(d).allocator(d).set_limit(bytes);
}

}  // namespace tmath
