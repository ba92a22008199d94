// Stream-aware caching allocator for one CUDA device.
//
// Requests are rounded to 512 bytes. Blocks up to 1 MiB come from 2 MiB
// segments (small pool); larger ones from 20 MiB segments or a segment of
// their own size rounded to 2 MiB (large pool). Free blocks are cached per
// stream, split when a smaller request takes them and merged with free
// neighbours when released, so a block is only reused by work ordered after
// its last use on the same stream. cudaMalloc failures free the cache and
// retry once before raising OutOfMemoryError with the statistics.
//
// Graph pools: while a thread records a CUDA graph, its allocations come from a
// pool private to that recording. Blocks released during the recording return
// to the pool (later allocations of the same recording reuse them, in stream
// order); after it, the pool keeps every block for the graph's replays, and the
// outputs the graph hands out return to it when released. Destroying the pool
// gives its free blocks back to the cache; blocks still held are released to
// the cache when their holder lets go. Pool memory counts as active.
#pragma once

#include <cuda.h>
#include <cuda_runtime_api.h>

#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "tmath/backend.h"

namespace tmath::cuda {

class DeviceAllocator final : public Allocator {
 public:
  DeviceAllocator(int device, CUcontext ctx, cudaStream_t stream);
  ~DeviceAllocator() override;
  DeviceAllocator(const DeviceAllocator&) = delete;
  DeviceAllocator& operator=(const DeviceAllocator&) = delete;

  void* allocate(size_t nbytes) override;
  void* allocate_on(size_t nbytes, cudaStream_t stream);
  void deallocate(void* p, size_t nbytes) override;
  MemoryStats stats() const override;
  void reset_peak() override;
  void empty_cache() override;
  // Runs before cached blocks go back to the driver (the device context launches its
  // tiny-op queue, whose ops may still write such blocks). Set once, before use.
  void set_before_release(std::function<void()> f) { before_release_ = std::move(f); }
  void set_limit(uint64_t bytes) override;
  void count_transfer(bool to_device, uint64_t bytes) override;
  // Bytes held from the driver (live + cached).
  uint64_t reserved_bytes() const;

  // ---- graph pools ----
  struct GraphPool;
  GraphPool* create_pool();
  // Routes this thread's allocations on this allocator to `p` (nullptr: back to the cache).
  void use_pool(GraphPool* p);
  // Gives the pool's free blocks back to the cache and detaches the held ones.
  void destroy_pool(GraphPool* p);
  // No block of the pool is held outside it.
  bool pool_idle(const GraphPool* p) const;
  bool pool_owns(const GraphPool* p, const void* ptr) const;
  uint64_t pool_bytes(const GraphPool* p) const;
  // Hands out again the free pool block starting at ptr (a graph output).
  void pool_take(GraphPool* p, void* ptr);
  // While deferring, blocks released to the pool are set aside instead of being
  // reused; pool_flush makes them reusable (recording lanes: work on the second
  // lane is not ordered before later first-lane work until the lanes join); it also
  // ends deferring.
  void pool_defer(GraphPool* p, bool on);
  void pool_flush(GraphPool* p);

  static constexpr size_t kRound = 512;
  static constexpr size_t kSmallMax = size_t{1} << 20;
  static size_t round_size(size_t nbytes);

 private:
  struct Block {
    char* ptr = nullptr;
    size_t size = 0;
    size_t requested = 0;
    cudaStream_t stream = nullptr;
    bool allocated = false;
    bool small = false;
    Block* prev = nullptr;  // neighbours within the segment
    Block* next = nullptr;
    GraphPool* graph = nullptr;  // owned by a graph pool (stays `allocated` meanwhile)
    bool pool_free = false;      // ... and currently not handed out
  };

 public:
  struct GraphPool {
    std::multimap<size_t, Block*> free;  // by size
    std::unordered_map<const void*, Block*> blocks;
    int64_t held = 0;  // blocks handed out
    bool defer = false;
    std::vector<Block*> deferred;  // released while deferring, not yet reusable
    uint64_t bytes = 0;
  };

 private:
  struct Order {
    bool operator()(const Block* a, const Block* b) const;
  };
  using Pool = std::set<Block*, Order>;

  Pool& pool(bool small) { return small ? small_free_ : large_free_; }
  Block* find_free_locked(size_t size, cudaStream_t stream, bool small);
  Block* new_segment_locked(size_t size, cudaStream_t stream, bool small, size_t nbytes);
  void release_cached_locked();
  void free_block_locked(Block* b);  // returns a live block to the cache
  Block* pool_allocate_locked(GraphPool* gp, size_t size, size_t nbytes);
  // A block from the cache (or a new segment), marked live and counted.
  Block* take_block_locked(size_t size, cudaStream_t stream, bool small, size_t nbytes);
  void make_current() const;
  [[noreturn]] void throw_oom_locked(size_t nbytes, const std::string& why);

  int device_;
  CUcontext ctx_;
  cudaStream_t stream_;
  std::function<void()> before_release_;
  mutable std::mutex mu_;
  Pool small_free_, large_free_;
  std::unordered_map<void*, Block*> live_;
  uint64_t reserved_ = 0;
  MemoryStats st_;
};

}  // namespace tmath::cuda
