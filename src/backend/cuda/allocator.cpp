#include "backend/cuda/allocator.h"

#include <cstdlib>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "tmath/error.h"

namespace tmath::cuda {
namespace {
constexpr size_t kSmallSegment = size_t{2} << 20;
constexpr size_t kLargeSegment = size_t{20} << 20;
constexpr size_t kLargeUnit = size_t{2} << 20;
constexpr size_t kMidSize = size_t{10} << 20;

// The graph pool this thread allocates from (begin_capture .. end_capture).
thread_local DeviceAllocator::GraphPool* t_pool = nullptr;
thread_local const DeviceAllocator* t_pool_owner = nullptr;

uint64_t env_limit() {
  const char* e = std::getenv("TMATH_CUDA_MEMORY_LIMIT");
  if (!e || !*e) return 0;
  char* end = nullptr;
  double v = std::strtod(e, &end);
  switch (end && *end ? *end : ' ') {
    case 'k':
    case 'K':
      v *= 1024.0;
      break;
    case 'm':
    case 'M':
      v *= 1024.0 * 1024.0;
      break;
    case 'g':
    case 'G':
      v *= 1024.0 * 1024.0 * 1024.0;
      break;
    default:
      break;
  }
  return v > 0 ? static_cast<uint64_t>(v) : 0;
}

size_t segment_size(size_t size, bool small) {
  if (small) return kSmallSegment;
  if (size < kMidSize) return kLargeSegment;
  return (size + kLargeUnit - 1) / kLargeUnit * kLargeUnit;
}
}  // namespace

bool DeviceAllocator::Order::operator()(const Block* a, const Block* b) const {
  if (a->stream != b->stream) return a->stream < b->stream;
  if (a->size != b->size) return a->size < b->size;
  return a->ptr < b->ptr;
}

DeviceAllocator::DeviceAllocator(int device, CUcontext ctx, cudaStream_t stream)
    : device_(device), ctx_(ctx), stream_(stream) {
  st_.limit_bytes = env_limit();
}

// Device memory is returned with the context at process exit; blocks are only
// freed explicitly by empty_cache() and the OOM path.
DeviceAllocator::~DeviceAllocator() {
  for (Pool* p : {&small_free_, &large_free_})
    for (Block* b : *p) delete b;
  for (auto& [ptr, b] : live_) delete b;
}

size_t DeviceAllocator::round_size(size_t nbytes) {
  if (nbytes < kRound) return kRound;
  return (nbytes + kRound - 1) / kRound * kRound;
}

void DeviceAllocator::make_current() const {
  CUcontext cur = nullptr;
  TM_CU("allocate", cuCtxGetCurrent(&cur));
  if (cur != ctx_) TM_CU("allocate", cuCtxSetCurrent(ctx_));
}

DeviceAllocator::Block* DeviceAllocator::find_free_locked(size_t size, cudaStream_t stream,
                                                          bool small) {
  Pool& p = pool(small);
  Block key;
  key.size = size;
  key.stream = stream;
  auto it = p.lower_bound(&key);
  if (it == p.end() || (*it)->stream != stream) return nullptr;
  Block* b = *it;
  p.erase(it);
  const size_t rest = b->size - size;
  if (small ? rest >= kRound : rest > kSmallMax) {
    auto* r = new Block;
    r->ptr = b->ptr + size;
    r->size = rest;
    r->stream = stream;
    r->small = small;
    r->prev = b;
    r->next = b->next;
    if (b->next) b->next->prev = r;
    b->next = r;
    b->size = size;
    p.insert(r);
  }
  return b;
}

DeviceAllocator::Block* DeviceAllocator::new_segment_locked(size_t size, cudaStream_t stream,
                                                            bool small, size_t nbytes) {
  size_t seg = segment_size(size, small);
  if (st_.limit_bytes) {
    if (reserved_ + seg > st_.limit_bytes) release_cached_locked();
    if (reserved_ + seg > st_.limit_bytes && seg > size && reserved_ + size <= st_.limit_bytes)
      seg = size;  // a segment of exactly the request still fits
    if (reserved_ + seg > st_.limit_bytes)
      throw_oom_locked(nbytes, "the request exceeds the memory limit");
  }
  make_current();
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, seg);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    ++st_.oom_retries;
    release_cached_locked();
    e = cudaMalloc(&p, seg);
    if (e == cudaErrorMemoryAllocation && seg > size) {
      (void)cudaGetLastError();
      seg = size;
      e = cudaMalloc(&p, seg);
    }
    if (e == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      throw_oom_locked(nbytes,
                       "cudaMalloc failed after the cache was freed and the request retried");
    }
  }
  if (e != cudaSuccess) throw_cuda_error("allocate", "cudaMalloc", e);
  reserved_ += seg;
  auto* b = new Block;
  b->ptr = static_cast<char*>(p);
  b->size = seg;
  b->stream = stream;
  b->small = small;
  if (seg > size) {
    pool(small).insert(b);
    return find_free_locked(size, stream, small);
  }
  return b;
}

void* DeviceAllocator::allocate(size_t nbytes) {
  return allocate_on(nbytes, stream_);
}

void* DeviceAllocator::allocate_on(size_t nbytes, cudaStream_t stream) {
  const size_t size = round_size(nbytes);
  const bool small = size <= kSmallMax;
  std::lock_guard<std::mutex> lk(mu_);
  ++st_.allocations;
  if (t_pool && t_pool_owner == this) return pool_allocate_locked(t_pool, size, nbytes)->ptr;
  return take_block_locked(size, stream, small, nbytes)->ptr;
}

DeviceAllocator::Block* DeviceAllocator::take_block_locked(size_t size, cudaStream_t stream,
                                                           bool small, size_t nbytes) {
  Block* b = find_free_locked(size, stream, small);
  if (b) {
    ++st_.cache_hits;
  } else {
    ++st_.cache_misses;
    b = new_segment_locked(size, stream, small, nbytes);
  }
  b->allocated = true;
  b->requested = nbytes;
  live_.emplace(b->ptr, b);
  st_.active_bytes += b->size;
  st_.requested_bytes += nbytes;
  if (st_.active_bytes > st_.peak_bytes) st_.peak_bytes = st_.active_bytes;
  st_.cached_bytes = reserved_ - st_.active_bytes;
  return b;
}

void DeviceAllocator::deallocate(void* p, size_t) {
  if (!p) return;
  std::lock_guard<std::mutex> lk(mu_);
  auto it = live_.find(p);
  if (it == live_.end()) return;
  Block* b = it->second;
  if (b->graph) {  // back to its graph pool, still reserved for the graph
    if (!b->pool_free) {
      b->pool_free = true;
      if (b->graph->defer)
        b->graph->deferred.push_back(b);
      else
        b->graph->free.emplace(b->size, b);
      --b->graph->held;
    }
    return;
  }
  free_block_locked(b);
}

void DeviceAllocator::free_block_locked(Block* b) {
  live_.erase(b->ptr);
  st_.active_bytes -= b->size;
  st_.requested_bytes -= b->requested;
  b->allocated = false;
  b->requested = 0;
  Pool& pl = pool(b->small);
  // Merge with free neighbours of the same segment.
  if (b->prev && !b->prev->allocated) {
    Block* a = b->prev;
    pl.erase(a);
    a->size += b->size;
    a->next = b->next;
    if (b->next) b->next->prev = a;
    delete b;
    b = a;
  }
  if (b->next && !b->next->allocated) {
    Block* c = b->next;
    pl.erase(c);
    b->size += c->size;
    b->next = c->next;
    if (c->next) c->next->prev = b;
    delete c;
  }
  pl.insert(b);
  st_.cached_bytes = reserved_ - st_.active_bytes;
}

void DeviceAllocator::release_cached_locked() {
  bool current = false;
  for (Pool* p : {&small_free_, &large_free_}) {
    for (auto it = p->begin(); it != p->end();) {
      Block* b = *it;
      if (b->prev || b->next) {  // part of a segment that is still in use
        ++it;
        continue;
      }
      if (!current) {
        // Kernels queued before the block was released may still use it.
        if (before_release_) before_release_();
        make_current();
        TM_CUDA("empty_cache", cudaDeviceSynchronize());
        current = true;
      }
      cudaError_t e = cudaFree(b->ptr);
      if (e != cudaSuccess) throw_cuda_error("empty_cache", "cudaFree", e);
      reserved_ -= b->size;
      it = p->erase(it);
      delete b;
    }
  }
  st_.cached_bytes = reserved_ - st_.active_bytes;
}

void DeviceAllocator::throw_oom_locked(size_t nbytes, const std::string& why) {
  st_.cached_bytes = reserved_ - st_.active_bytes;
  std::string msg = "[allocate] cuda:" + std::to_string(device_) + ": out of memory allocating " +
                    std::to_string(nbytes) + " bytes (" + why + ")";
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
    msg += "; device free " + std::to_string(free_b) + " of " + std::to_string(total_b) + " B";
  else
    (void)cudaGetLastError();
  msg += "; " + st_.str();
  throw OutOfMemoryError(msg);
}

MemoryStats DeviceAllocator::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  MemoryStats s = st_;
  s.cached_bytes = reserved_ - st_.active_bytes;
  return s;
}

uint64_t DeviceAllocator::reserved_bytes() const {
  std::lock_guard<std::mutex> lk(mu_);
  return reserved_;
}

void DeviceAllocator::reset_peak() {
  std::lock_guard<std::mutex> lk(mu_);
  st_.peak_bytes = st_.active_bytes;
}

void DeviceAllocator::empty_cache() {
  std::lock_guard<std::mutex> lk(mu_);
  release_cached_locked();
}

void DeviceAllocator::set_limit(uint64_t bytes) {
  std::lock_guard<std::mutex> lk(mu_);
  st_.limit_bytes = bytes;
  if (bytes && reserved_ > bytes) release_cached_locked();
}

// ---- graph pools ----

DeviceAllocator::Block* DeviceAllocator::pool_allocate_locked(GraphPool* gp, size_t size,
                                                              size_t nbytes) {
  Block* b = nullptr;
  if (auto it = gp->free.lower_bound(size); it != gp->free.end()) {
    b = it->second;
    gp->free.erase(it);
    ++st_.cache_hits;
  } else {
    b = take_block_locked(size, stream_, size <= kSmallMax, nbytes);
    b->graph = gp;
    gp->blocks.emplace(b->ptr, b);
    gp->bytes += b->size;
  }
  b->pool_free = false;
  ++gp->held;
  return b;
}

DeviceAllocator::GraphPool* DeviceAllocator::create_pool() {
  return new GraphPool;
}

void DeviceAllocator::use_pool(GraphPool* p) {
  t_pool = p;
  t_pool_owner = p ? this : nullptr;
}

void DeviceAllocator::destroy_pool(GraphPool* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& [ptr, b] : p->blocks) {
    b->graph = nullptr;
    if (b->pool_free) {
      b->pool_free = false;
      free_block_locked(b);
    }
  }
  if (t_pool == p) use_pool(nullptr);
  delete p;
}

bool DeviceAllocator::pool_idle(const GraphPool* p) const {
  std::lock_guard<std::mutex> lk(mu_);
  return p->held == 0;
}

bool DeviceAllocator::pool_owns(const GraphPool* p, const void* ptr) const {
  std::lock_guard<std::mutex> lk(mu_);
  return p->blocks.count(ptr) > 0;
}

uint64_t DeviceAllocator::pool_bytes(const GraphPool* p) const {
  std::lock_guard<std::mutex> lk(mu_);
  return p->bytes;
}

void DeviceAllocator::pool_take(GraphPool* p, void* ptr) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = p->blocks.find(ptr);
  if (it == p->blocks.end() || !it->second->pool_free)
    throw Error("[compile] internal: graph output block is not free in its pool");
  Block* b = it->second;
  auto [lo, hi] = p->free.equal_range(b->size);
  for (auto f = lo; f != hi; ++f)
    if (f->second == b) {
      p->free.erase(f);
      break;
    }
  b->pool_free = false;
  ++p->held;
  ++st_.allocations;
}

void DeviceAllocator::pool_defer(GraphPool* p, bool on) {
  if (!p) return;
  std::lock_guard<std::mutex> lk(mu_);
  p->defer = on;
}

void DeviceAllocator::pool_flush(GraphPool* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lk(mu_);
  p->defer = false;
  for (Block* b : p->deferred)
    if (b->pool_free) p->free.emplace(b->size, b);
  p->deferred.clear();
}

void DeviceAllocator::count_transfer(bool to_device, uint64_t bytes) {
  std::lock_guard<std::mutex> lk(mu_);
  if (to_device) {
    ++st_.host_to_device_copies;
    st_.host_to_device_bytes += bytes;
  } else {
    ++st_.device_to_host_copies;
    st_.device_to_host_bytes += bytes;
  }
}

}  // namespace tmath::cuda
