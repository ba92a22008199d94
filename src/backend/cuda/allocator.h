// Stream-aware caching allocator for one CUDA device.
//
// Requests are rounded to 512 bytes. Blocks up to 1 MiB come from 2 MiB
// segments (small pool); larger ones from 20 MiB segments or a segment of
// their own size rounded to 2 MiB (large pool). Free blocks are cached per
// stream, split when a smaller request takes them and merged with free
// neighbours when released, so a block is only reused by work ordered after
// its last use on the same stream. cudaMalloc failures free the cache and
// retry once before raising OutOfMemoryError with the statistics.
#pragma once

#include <cuda.h>
#include <cuda_runtime_api.h>

#include <mutex>
#include <set>
#include <unordered_map>

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
  void set_limit(uint64_t bytes) override;
  void count_transfer(bool to_device, uint64_t bytes) override;
  // Bytes held from the driver (live + cached).
  uint64_t reserved_bytes() const;

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
  };
  struct Order {
    bool operator()(const Block* a, const Block* b) const;
  };
  using Pool = std::set<Block*, Order>;

  Pool& pool(bool small) { return small ? small_free_ : large_free_; }
  Block* find_free_locked(size_t size, cudaStream_t stream, bool small);
  Block* new_segment_locked(size_t size, cudaStream_t stream, bool small, size_t nbytes);
  void release_cached_locked();
  void make_current() const;
  [[noreturn]] void throw_oom_locked(size_t nbytes, const std::string& why);

  int device_;
  CUcontext ctx_;
  cudaStream_t stream_;
  mutable std::mutex mu_;
  Pool small_free_, large_free_;
  std::unordered_map<void*, Block*> live_;
  uint64_t reserved_ = 0;
  MemoryStats st_;
};

}  // namespace tmath::cuda
