// CUDA driver/runtime state: lazy initialisation, per-device contexts (primary
// context, the engine's stream, allocator, cuBLAS and cuBLASLt handles with the
// matmul plan cache, pinned staging buffers and the NVRTC kernel cache) and
// kernel launches.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda.h>
#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/cuda/allocator.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/params.h"

namespace tmath::cuda {

struct DeviceProps {
  std::string name;
  int major = 0, minor = 0;
  uint64_t total_memory = 0;
  int sm_count = 1;
  int max_threads_per_sm = 2048;
  size_t shared_optin = 48 * 1024;  // shared memory a block may opt in to, bytes
};

// Source of one NVRTC program and the kernels to look up in it.
struct ProgramSource {
  std::string name;  // for error messages and the NVRTC program name
  std::string source;
  std::vector<std::string> kernels;
  bool philox = false;  // needs src/core/philox.h
};

struct Program {
  CUmodule module = nullptr;
  std::vector<CUfunction> fns;
  // Blocks of 256 threads (without dynamic shared memory) each kernel keeps resident
  // per SM: its occupancy, for grids sized to one full wave.
  std::vector<int> resident;
  CUfunction operator[](size_t i) const { return fns[i]; }
};

// What a cuBLASLt matmul plan depends on, in cuBLAS (column-major) terms: C (m x n)
// = op(A) (m x k) op(B) (k x n), with batch strides (0 when batch == 1) and the
// alignment (1..16 bytes) of every pointer the plan is used with.
struct LtMatmulKey {
  int32_t dtype = 0, compute = 0, transa = 0, transb = 0;
  int32_t m = 0, n = 0, k = 0, batch = 1;
  int64_t lda = 0, ldb = 0, ldc = 0, stride_a = 0, stride_b = 0, stride_c = 0;
  uint32_t align_a = 0, align_b = 0, align_c = 0;
  bool operator==(const LtMatmulKey&) const = default;
};

struct LtMatmulKeyHash {
  size_t operator()(const LtMatmulKey& k) const noexcept;
};

// Descriptors and the algorithm cublasLtMatmulAlgoGetHeuristic chose for one key
// (C also serves as D). usable == false: the heuristic offered nothing, or the
// algorithm turned out unsupported; such products go through cublasGemmEx.
struct LtMatmulPlan {
  LtMatmulPlan() = default;
  LtMatmulPlan(const LtMatmulPlan&) = delete;
  LtMatmulPlan& operator=(const LtMatmulPlan&) = delete;
  ~LtMatmulPlan();

  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;  // bytes the algorithm needs
  bool usable = false;
};

struct LtPlanStats {
  uint64_t hits = 0, misses = 0, evictions = 0;
  uint64_t fallbacks = 0;  // products routed to cublasGemmEx because no plan was usable
  size_t size = 0;
};

// Least-recently-used cache of matmul plans, bounded at `capacity` entries. Not
// synchronised: DeviceContext users hold blas_mutex().
class LtPlanCache {
 public:
  explicit LtPlanCache(size_t capacity) : cap_(capacity < 1 ? 1 : capacity) {}
  // The plan for `k` (now the most recent), or nullptr.
  LtMatmulPlan* find(const LtMatmulKey& k);
  // Stores `p` for `k`, evicting the least recently used plan when full.
  LtMatmulPlan* insert(const LtMatmulKey& k, std::unique_ptr<LtMatmulPlan> p);
  void count_fallback() { ++stats_.fallbacks; }
  LtPlanStats stats() const;
  void clear();

 private:
  using Entry = std::pair<LtMatmulKey, std::unique_ptr<LtMatmulPlan>>;
  size_t cap_;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<LtMatmulKey, std::list<Entry>::iterator, LtMatmulKeyHash> index_;
  LtPlanStats stats_;
};

class DeviceContext {
 public:
  explicit DeviceContext(int index, const DeviceProps& props);
  DeviceContext(const DeviceContext&) = delete;
  DeviceContext& operator=(const DeviceContext&) = delete;

  int index() const { return index_; }
  const DeviceProps& props() const { return props_; }
  // The stream work is queued on: the engine's stream, or while this thread records
  // a graph on this device (begin_capture), the recording stream.
  // Asking for the engine's stream launches the tiny-op queue first (see queue_tiny):
  // whoever queues work on the stream gets it through here, so that work runs after
  // the queued ops.
  cudaStream_t stream() const {
    if (t_capture_.dc == this) return t_capture_.lane ? t_capture_.side : t_capture_.stream;
    if (tiny_pending_.load(std::memory_order_relaxed)) flush_tiny();
    return stream_;
  }
  // The tiny-op queue: small float32 elementwise ops (gen::tiny_ops) wait here and run
  // in order, up to TM_TINY_MAX of them as one kernel launch, when anything else is
  // queued on the stream (stream()), the host copies or waits, memory goes back to the
  // driver, a graph recording starts, or the queue is full. One launch costs the host
  // about as much as the op it runs, so eager code on tiny tensors pays it once per
  // batch instead of once per op. False (the caller launches the op itself) when the
  // queue is off (TMATH_CUDA_TINY=0), this thread records a graph here, or the queue's
  // program is unavailable.
  bool queue_tiny(const TinyOp& op);
  // Launches the queued ops, if any, on the engine's stream.
  void flush_tiny() const;
  // Elements up to which an op may be queued (TMATH_CUDA_TINY_MAX, default 1024).
  static int64_t tiny_max_elements();
  bool capturing() const { return t_capture_.dc == this; }
  // Throws UnsupportedError naming `op` while this thread records a graph here:
  // for operations that need the host (copies to or from it, waits).
  void refuse_in_capture(const char* op, const char* what) const;
  // Graph recording (compile(): CUDA graphs). begin_capture routes this thread's
  // work on this device to a recording stream and its allocations to a private
  // pool; end_capture instantiates the graph (nullptr with `why` on failure).
  void begin_capture();
  std::unique_ptr<CapturedWork> end_capture(bool keep, std::string& why);
  // Lanes of the recording (Backend::lanes): 2 while this thread records here
  // (TMATH_CUDA_LANES=0: 1). The second lane is a second recording stream forked
  // from and joined to the first with events; it has its own cuBLAS workspace and
  // reduction counters, and blocks released while it queues work return to the
  // recording's pool only at the join.
  int lanes() const;
  void set_lane(int k);
  void join_lanes();
  // The lane this thread queues work on here (0 unless recording on the second).
  int lane() const { return t_capture_.dc == this ? t_capture_.lane : 0; }
  DeviceAllocator& allocator() { return *alloc_; }
  // Makes this device's primary context current on the calling thread.
  void make_current() const;

  // The compiled program for `key`, compiling gen() on first use (or loading
  // it from the on-disk kernel cache, src/jit).
  const Program& program(uint64_t key, const std::function<ProgramSource()>& gen, const char* op);
  // The same for programs named by text (fused programs: their signature).
  const Program& program(const std::string& key, const std::function<ProgramSource()>& gen,
                         const char* op);

  // cuBLAS handle bound to the stream (created on first use). A handle must not be
  // used by two threads at once: hold blas_mutex() around calls that use it.
  cublasHandle_t blas(const char* op);
  std::mutex& blas_mutex() { return blas_call_mu_; }
  // cuBLASLt handle (created on first use) and the workspace it shares with the
  // cuBLAS handle; both libraries run on stream(), so the workspace is never used
  // by two calls at once (each lane of a recording has its own). The plan cache is
  // guarded by blas_mutex().
  cublasLtHandle_t blas_lt(const char* op);
  void* blas_workspace() const { return blas_workspace_[lane()]; }
  size_t blas_workspace_size() const { return blas_workspace_bytes_; }
  LtPlanCache& matmul_plans() { return lt_plans_; }
  static constexpr size_t kMatmulPlanCapacity = 256;

  // kReduceCounters zeroed uints on this device (stream-ordered use only: kernels
  // that take them leave them zero again), allocated on first use; one set per lane.
  static constexpr int64_t kReduceCounters = 4096;
  unsigned* reduce_counters(const char* op);

  void copy_from_host(const void* src, void* dst, size_t nbytes);
  void copy_to_host(const void* src, void* dst, size_t nbytes);
  void synchronize(const char* op);

  // Temporary device memory, ordered on the stream: valid for work queued
  // on the stream before the Scratch is destroyed.
  class Scratch {
   public:
    Scratch(DeviceContext& dc, size_t nbytes)
        : dc_(dc), n_(nbytes), p_(dc.alloc_->allocate(nbytes)) {}
    ~Scratch() { dc_.alloc_->deallocate(p_, n_); }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    void* get() const { return p_; }

   private:
    DeviceContext& dc_;
    size_t n_;
    void* p_;
  };

 private:
  std::string arch_option() const;

  struct CaptureTarget {
    const DeviceContext* dc = nullptr;
    cudaStream_t stream = nullptr;
    DeviceAllocator::GraphPool* pool = nullptr;
    cudaStream_t side = nullptr;  // the second lane (created on first use)
    cudaEvent_t fork = nullptr, join = nullptr;
    int lane = 0;
    bool side_pending = false;  // the second lane has work the first has not joined
  };
  static thread_local CaptureTarget t_capture_;
  static void destroy_streams(CaptureTarget& t);  // and events (errors cleared)
  // Orders the first lane after the second's work so far.
  static cudaError_t join_side(CaptureTarget& t);

  int index_;
  DeviceProps props_;
  CUdevice dev_ = 0;
  CUcontext ctx_ = nullptr;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<DeviceAllocator> alloc_;

  std::mutex jit_mu_;
  std::unordered_map<uint64_t, std::unique_ptr<Program>> programs_;
  std::unordered_map<std::string, std::unique_ptr<Program>> named_programs_;
  std::unique_ptr<Program> build(const ProgramSource& src, const char* op);
  std::string arch_opt_;
  bool arch_is_sass_ = true;

  std::mutex blas_mu_, blas_call_mu_;
  cublasHandle_t blas_ = nullptr;
  void* blas_workspace_[2] = {nullptr, nullptr};  // per lane
  size_t blas_workspace_bytes_ = 0;
  void ensure_blas_workspace(const char* op, int k = 0);  // caller holds blas_mu_
  struct LtHandleDeleter {
    void operator()(cublasLtContext* h) const noexcept;
  };
  std::unique_ptr<cublasLtContext, LtHandleDeleter> blas_lt_;  // destroyed after lt_plans_
  LtPlanCache lt_plans_{kMatmulPlanCapacity};

  std::mutex counters_mu_;
  unsigned* reduce_counters_[2] = {nullptr, nullptr};  // per lane
  unsigned* counters(const char* op, int k);  // lane k's

  static constexpr unsigned kTinyThreads = 256;  // tm_tiny's block
  void launch_tiny_locked() const;               // runs and empties the queue (tiny_mu_ held)
  mutable std::mutex tiny_mu_;
  mutable std::atomic<bool> tiny_pending_{false};
  mutable TinyParams tiny_{};  // the queued ops (guarded by tiny_mu_)
  CUfunction tiny_fn_ = nullptr;
  std::atomic<int> tiny_state_{0};  // 0: not tried, 1: ready, -1: unavailable or off

  std::mutex staging_mu_;
  static constexpr size_t kStagingBytes = size_t{4} << 20;
  void* staging_[2] = {nullptr, nullptr};
  cudaEvent_t staging_done_[2] = {nullptr, nullptr};
};

class Runtime {
 public:
  static Runtime& get();
  // Initialises the driver on first call; false with reason() when unusable.
  bool available();
  const std::string& reason();
  int device_count();
  const std::vector<DeviceProps>& devices();
  // Context of device i (created on first use); DeviceError for a bad index.
  DeviceContext& device(int i, const char* op = "device");

 private:
  Runtime() = default;
  void init();

  std::once_flag once_;
  bool ok_ = false;
  std::string reason_;
  std::vector<DeviceProps> props_;
  std::mutex mu_;
  std::vector<std::unique_ptr<DeviceContext>> ctxs_;
  // The contexts once created (they live as long as the process), read without mu_:
  // device() runs a few times per op.
  static constexpr int kFastSlots = 16;
  std::atomic<DeviceContext*> fast_[kFastSlots] = {};
};

// Launches `f` with one by-value parameter struct.
template <class P>
void launch(const char* op, CUfunction f, unsigned gx, unsigned gy, unsigned bx, size_t smem,
            cudaStream_t s, const P& params) {
  void* args[] = {const_cast<P*>(&params)};
  TM_CU(op, cuLaunchKernel(f, gx, gy, 1, bx, 1, 1, static_cast<unsigned>(smem), s, args, nullptr));
}

// Library versions for BackendInfo.
std::vector<std::pair<std::string, std::string>> library_versions();

}  // namespace tmath::cuda
