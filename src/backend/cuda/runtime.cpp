#include "backend/cuda/runtime.h"

#include <cublasLt.h>
#include <nvrtc.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "backend/cuda/codegen.h"
#include "backend/cuda/nvrtc.h"
#include "core/dispatch.h"
#include "jit/jit.h"
#include "tmath/error.h"

namespace tmath::cuda {
namespace {

std::string version_str(int v) {  // 13000 -> "13.0"
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

// NVRTC option for a device: SASS for its own architecture, or PTX for the newest one
// this NVRTC knows where the device is newer (the driver JITs it).
std::string arch_option_for(const DeviceProps& props, int index) {
  const int want = props.major * 10 + props.minor;
  int n = 0;
  nvrtcResult r = nvrtcGetNumSupportedArchs(&n);
  if (r != NVRTC_SUCCESS) throw_nvrtc_error("device", "nvrtcGetNumSupportedArchs", r, {});
  std::vector<int> archs(static_cast<size_t>(n));
  r = nvrtcGetSupportedArchs(archs.data());
  if (r != NVRTC_SUCCESS) throw_nvrtc_error("device", "nvrtcGetSupportedArchs", r, {});
  if (std::find(archs.begin(), archs.end(), want) != archs.end())
    return "--gpu-architecture=sm_" + std::to_string(want);
  int best = -1;
  for (int a : archs)
    if (a <= want) best = std::max(best, a);
  if (best < 0)
    throw DeviceError("[device] cuda:" + std::to_string(index) + " (sm_" + std::to_string(want) +
                      ") is older than every architecture NVRTC " + "supports");
  return "--gpu-architecture=compute_" + std::to_string(best);
}

// A process's first NVRTC compile also pages in the compiler (libnvrtc, ~110 MB, and
// its builtins): 100-150 ms on a machine whose page cache has not seen them, against
// ~20 ms for the compile itself. Once the driver is up, one small program is compiled
// on a background thread (the result is dropped), so that the first program an op
// needs finds NVRTC resident. TMATH_NVRTC_WARMUP=0 turns it off.
const char* const kWarmUpSource = R"(
extern "C" __global__ void tm_warm_up(float* y, const float* x, long long n) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i < n) y[i] = tanhf(x[i] * 1.01f + 0.5f) + expf(x[i]) * erff(x[i]);
}
)";

struct WarmUp {
  std::thread thread;
  ~WarmUp() {  // at exit: NVRTC stays loaded until the compile is done
    if (thread.joinable()) thread.join();
  }
};

void warm_up_nvrtc(const DeviceProps& props) {
  if (detail::env_off("TMATH_NVRTC_WARMUP")) return;
  static WarmUp w;
  w.thread = std::thread([props] {
    try {
      ProgramSource src;
      src.name = "tm_warm_up";
      src.source = kWarmUpSource;
      src.kernels = {"tm_warm_up"};
      (void)compile_program(src, arch_option_for(props, 0), "nvrtc warm-up");
    } catch (...) {  // nothing depends on it: the first real compile reports any problem
    }
  });
}

}  // namespace

// ---- Runtime ---------------------------------------------------------------------

Runtime& Runtime::get() {
  // Intentionally never destroyed: device memory and contexts go with the process,
  // and tensors released during static destruction still find their allocator.
  static Runtime* r = new Runtime();
  return *r;
}

void Runtime::init() {
  CUresult cr = cuInit(0);
  if (cr != CUDA_SUCCESS) {
    reason_ = "cuInit failed: " + cu_error_text(cr);
    return;
  }
  int n = 0;
  cr = cuDeviceGetCount(&n);
  if (cr != CUDA_SUCCESS) {
    reason_ = "cuDeviceGetCount failed: " + cu_error_text(cr);
    return;
  }
  if (n == 0) {
    reason_ = "no CUDA device found";
    return;
  }
  int rn = 0;
  cudaError_t e = cudaGetDeviceCount(&rn);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    reason_ = "cudaGetDeviceCount failed: " + cuda_error_text(e);
    return;
  }
  for (int i = 0; i < rn; ++i) {
    cudaDeviceProp p{};
    e = cudaGetDeviceProperties(&p, i);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      reason_ = "cudaGetDeviceProperties(" + std::to_string(i) + ") failed: " + cuda_error_text(e);
      props_.clear();
      return;
    }
    DeviceProps d;
    d.name = p.name;
    d.major = p.major;
    d.minor = p.minor;
    d.total_memory = p.totalGlobalMem;
    d.sm_count = std::max(1, p.multiProcessorCount);
    d.max_threads_per_sm = std::max(256, p.maxThreadsPerMultiProcessor);
    d.shared_optin = p.sharedMemPerBlockOptin;
    props_.push_back(std::move(d));
  }
  if (props_.empty()) {
    reason_ = "no CUDA device visible to the runtime";
    return;
  }
  ctxs_.resize(props_.size());
  ok_ = true;
  warm_up_nvrtc(props_[0]);
}

bool Runtime::available() {
  std::call_once(once_, [this] { init(); });
  return ok_;
}

const std::string& Runtime::reason() {
  available();
  return reason_;
}

int Runtime::device_count() {
  return available() ? static_cast<int>(props_.size()) : 0;
}

const std::vector<DeviceProps>& Runtime::devices() {
  available();
  return props_;
}

DeviceContext& Runtime::device(int i, const char* op) {
  if (i >= 0 && i < kFastSlots) {
    if (DeviceContext* c = fast_[i].load(std::memory_order_acquire)) {
      c->make_current();
      return *c;
    }
  }
  if (!available())
    throw DeviceError("[" + std::string(op) + "] the cuda backend is unavailable: " + reason_);
  if (i < 0 || i >= static_cast<int>(props_.size()))
    throw DeviceError("[" + std::string(op) + "] device cuda:" + std::to_string(i) +
                      " does not exist (" + std::to_string(props_.size()) + " CUDA device" +
                      (props_.size() == 1 ? "" : "s") + ")");
  std::lock_guard<std::mutex> lk(mu_);
  auto& slot = ctxs_[static_cast<size_t>(i)];
  if (!slot) slot = std::make_unique<DeviceContext>(i, props_[static_cast<size_t>(i)]);
  if (i < kFastSlots) fast_[i].store(slot.get(), std::memory_order_release);
  slot->make_current();
  return *slot;
}

// ---- DeviceContext -------------------------------------------------------------------

DeviceContext::DeviceContext(int index, const DeviceProps& props) : index_(index), props_(props) {
  TM_CU("device", cuDeviceGet(&dev_, index));
  TM_CU("device", cuDevicePrimaryCtxRetain(&ctx_, dev_));
  TM_CU("device", cuCtxSetCurrent(ctx_));
  TM_CUDA("device", cudaSetDevice(index));
  TM_CUDA("device", cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  alloc_ = std::make_unique<DeviceAllocator>(index, ctx_, stream_);
  // Queued tiny ops may write blocks that are back in the cache: they run before
  // the allocator hands memory back to the driver.
  alloc_->set_before_release([this] { flush_tiny(); });
  arch_opt_ = arch_option();
}

void DeviceContext::make_current() const {
  CUcontext cur = nullptr;
  TM_CU("device", cuCtxGetCurrent(&cur));
  if (cur != ctx_) TM_CU("device", cuCtxSetCurrent(ctx_));
}

std::string DeviceContext::arch_option() const { return arch_option_for(props_, index_); }

std::unique_ptr<Program> DeviceContext::build(const ProgramSource& src, const char* op) {
  const std::string image = compile_program_cached(src, arch_opt_, op);
  auto prog = std::make_unique<Program>();
  TM_CU(op, cuModuleLoadData(&prog->module, image.data()));
  for (const auto& k : src.kernels) {
    CUfunction f = nullptr;
    const CUresult e = cuModuleGetFunction(&f, prog->module, k.c_str());
    if (e != CUDA_SUCCESS) {
      cuModuleUnload(prog->module);
      throw_cu_error(op, "cuModuleGetFunction(" + k + ")", e);
    }
    prog->fns.push_back(f);
    int blocks = 0;
    if (cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, f, 256, 0) != CUDA_SUCCESS)
      blocks = 0;
    prog->resident.push_back(blocks);
  }
  return prog;
}

const Program& DeviceContext::program(uint64_t key, const std::function<ProgramSource()>& gen,
                                      const char* op) {
  std::lock_guard<std::mutex> lk(jit_mu_);
  auto it = programs_.find(key);
  if (it != programs_.end()) return *it->second;
  auto& slot = programs_[key];
  slot = build(gen(), op);
  return *slot;
}

const Program& DeviceContext::program(const std::string& key,
                                      const std::function<ProgramSource()>& gen, const char* op) {
  std::lock_guard<std::mutex> lk(jit_mu_);
  auto it = named_programs_.find(key);
  if (it != named_programs_.end()) {
    jit::count_cache(jit::CacheEvent::MemoryHit);
    return *it->second;
  }
  auto prog = build(gen(), op);
  auto& slot = named_programs_[key];
  slot = std::move(prog);
  return *slot;
}

void DeviceContext::ensure_blas_workspace(const char* op, int k) {
  if (blas_workspace_[k]) return;
  const size_t ws = props_.major >= 9 ? (size_t{32} << 20) : (size_t{4} << 20);
  TM_CUDA(op, cudaMalloc(&blas_workspace_[k], ws));
  blas_workspace_bytes_ = ws;
}

unsigned* DeviceContext::reduce_counters(const char* op) { return counters(op, lane()); }

unsigned* DeviceContext::counters(const char* op, int k) {
  std::lock_guard<std::mutex> lk(counters_mu_);
  if (reduce_counters_[k]) return reduce_counters_[k];
  const size_t bytes = static_cast<size_t>(kReduceCounters) * sizeof(unsigned);
  void* p = nullptr;
  TM_CUDA(op, cudaMalloc(&p, bytes));
  if (cudaError_t e = cudaMemsetAsync(p, 0, bytes, stream_); e != cudaSuccess) {
    cudaFree(p);
    TM_CUDA(op, e);
  }
  reduce_counters_[k] = static_cast<unsigned*>(p);
  return reduce_counters_[k];
}

cublasHandle_t DeviceContext::blas(const char* op) {
  std::lock_guard<std::mutex> lk(blas_mu_);
  if (blas_) return blas_;
  cublasHandle_t h = nullptr;
  TM_CUBLAS(op, cublasCreate(&h));
  try {
    TM_CUBLAS(op, cublasSetStream(h, stream_));
    // Tensor cores where the compute type allows them; split-K reductions stay in float32.
    TM_CUBLAS(op, cublasSetMathMode(h, static_cast<cublasMath_t>(
                                           CUBLAS_DEFAULT_MATH |
                                           CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
    ensure_blas_workspace(op);
    TM_CUBLAS(op, cublasSetWorkspace(h, blas_workspace_[0], blas_workspace_bytes_));
  } catch (...) {
    cublasDestroy(h);
    throw;
  }
  blas_ = h;
  return blas_;
}

void DeviceContext::LtHandleDeleter::operator()(cublasLtContext* h) const noexcept {
  cublasLtDestroy(h);
}

cublasLtHandle_t DeviceContext::blas_lt(const char* op) {
  std::lock_guard<std::mutex> lk(blas_mu_);
  if (blas_lt_) return blas_lt_.get();
  ensure_blas_workspace(op);
  cublasLtHandle_t h = nullptr;
  TM_CUBLAS(op, cublasLtCreate(&h));
  blas_lt_.reset(h);
  return h;
}

// ---- cuBLASLt matmul plans ------------------------------------------------------------

size_t LtMatmulKeyHash::operator()(const LtMatmulKey& k) const noexcept {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0x100000001b3ull;
  };
  mix(static_cast<uint64_t>(static_cast<uint32_t>(k.dtype)) |
      static_cast<uint64_t>(static_cast<uint32_t>(k.compute)) << 32);
  mix(static_cast<uint64_t>(k.transa) | static_cast<uint64_t>(k.transb) << 8 |
      static_cast<uint64_t>(k.align_a) << 16 | static_cast<uint64_t>(k.align_b) << 32 |
      static_cast<uint64_t>(k.align_c) << 48);
  mix(static_cast<uint64_t>(static_cast<uint32_t>(k.m)) |
      static_cast<uint64_t>(static_cast<uint32_t>(k.n)) << 32);
  mix(static_cast<uint64_t>(static_cast<uint32_t>(k.k)) |
      static_cast<uint64_t>(static_cast<uint32_t>(k.batch)) << 32);
  for (int64_t v : {k.lda, k.ldb, k.ldc, k.stride_a, k.stride_b, k.stride_c})
    mix(static_cast<uint64_t>(v));
  return static_cast<size_t>(h);
}

LtMatmulPlan::~LtMatmulPlan() {
  if (c) cublasLtMatrixLayoutDestroy(c);
  if (b) cublasLtMatrixLayoutDestroy(b);
  if (a) cublasLtMatrixLayoutDestroy(a);
  if (desc) cublasLtMatmulDescDestroy(desc);
}

LtMatmulPlan* LtPlanCache::find(const LtMatmulKey& k) {
  auto it = index_.find(k);
  if (it == index_.end()) return nullptr;
  ++stats_.hits;
  if (it->second != lru_.begin()) lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second.get();
}

LtMatmulPlan* LtPlanCache::insert(const LtMatmulKey& k, std::unique_ptr<LtMatmulPlan> p) {
  ++stats_.misses;
  if (auto it = index_.find(k); it != index_.end()) {  // replace (not reached by matmul)
    it->second->second = std::move(p);
    lru_.splice(lru_.begin(), lru_, it->second);
    return lru_.front().second.get();
  }
  while (lru_.size() >= cap_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
    ++stats_.evictions;
  }
  lru_.emplace_front(k, std::move(p));
  index_.emplace(k, lru_.begin());
  return lru_.front().second.get();
}

LtPlanStats LtPlanCache::stats() const {
  LtPlanStats s = stats_;
  s.size = lru_.size();
  return s;
}

void LtPlanCache::clear() {
  index_.clear();
  lru_.clear();
}

// ---- the tiny-op queue ----------------------------------------------------------------

int64_t DeviceContext::tiny_max_elements() {
  static const int64_t v = [] {
    const char* e = std::getenv("TMATH_CUDA_TINY_MAX");
    const long n = e ? std::strtol(e, nullptr, 10) : -1;
    return n >= 0 ? static_cast<int64_t>(n) : int64_t{1024};
  }();
  return v;
}

bool DeviceContext::queue_tiny(const TinyOp& op) {
  if (capturing()) return false;
  int state = tiny_state_.load(std::memory_order_acquire);
  if (state == 0) {
    static const bool on = !detail::env_off("TMATH_CUDA_TINY");
    state = -1;
    if (on) {
      try {
        tiny_fn_ = program(gen::key(gen::Family::Tiny, 0), [] { return gen::tiny(); }, "tiny")[0];
        state = 1;
      } catch (const std::exception& e) {
        if (jit::log_enabled("dispatch"))
          jit::log("dispatch", std::string("cuda tiny-op queue unavailable: ") + e.what());
      }
    }
    tiny_state_.store(state, std::memory_order_release);
  }
  if (state != 1) return false;
  std::lock_guard<std::mutex> lk(tiny_mu_);
  if (tiny_.count == TM_TINY_MAX) launch_tiny_locked();
  tiny_.op[tiny_.count++] = op;
  tiny_pending_.store(true, std::memory_order_relaxed);
  return true;
}

void DeviceContext::flush_tiny() const {
  std::lock_guard<std::mutex> lk(tiny_mu_);
  if (tiny_.count > 0) launch_tiny_locked();
}

void DeviceContext::launch_tiny_locked() const {
  const auto n = static_cast<uint64_t>(tiny_.count);
  struct Empty {  // the queue empties also when the launch fails (the error is thrown)
    TinyParams& t;
    std::atomic<bool>& pending;
    ~Empty() {
      t.count = 0;
      pending.store(false, std::memory_order_relaxed);
    }
  } empty{tiny_, tiny_pending_};
  launch("tiny", tiny_fn_, 1, 1, kTinyThreads, 0, stream_, tiny_);  // copies the parameters
  jit::count_queue(n);
}

void DeviceContext::copy_from_host(const void* src, void* dst, size_t nbytes) {
  if (nbytes == 0) return;
  refuse_in_capture("copy_from_host", "a copy from the host");
  flush_tiny();
  std::lock_guard<std::mutex> lk(staging_mu_);
  if (!staging_[0]) {
    for (int i = 0; i < 2; ++i) {
      TM_CUDA("copy_from_host", cudaHostAlloc(&staging_[i], kStagingBytes, cudaHostAllocPortable));
      TM_CUDA("copy_from_host",
              cudaEventCreateWithFlags(&staging_done_[i], cudaEventDisableTiming));
    }
  }
  // Double-buffered through pinned memory: the host copy into one buffer overlaps
  // the DMA out of the other; returns once the source has been read.
  const auto* s = static_cast<const char*>(src);
  auto* d = static_cast<char*>(dst);
  int k = 0;
  for (size_t off = 0; off < nbytes; off += kStagingBytes, k ^= 1) {
    const size_t len = std::min(kStagingBytes, nbytes - off);
    TM_CUDA("copy_from_host", cudaEventSynchronize(staging_done_[k]));
    std::memcpy(staging_[k], s + off, len);
    TM_CUDA("copy_from_host",
            cudaMemcpyAsync(d + off, staging_[k], len, cudaMemcpyHostToDevice, stream_));
    TM_CUDA("copy_from_host", cudaEventRecord(staging_done_[k], stream_));
  }
}

void DeviceContext::copy_to_host(const void* src, void* dst, size_t nbytes) {
  if (nbytes == 0) return;
  refuse_in_capture("copy_to_host", "a copy to the host");
  flush_tiny();
  TM_CUDA("copy_to_host", cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, stream_));
  TM_CUDA("copy_to_host", cudaStreamSynchronize(stream_));
}

void DeviceContext::synchronize(const char* op) {
  refuse_in_capture(op, "waiting for the device");
  flush_tiny();
  TM_CUDA(op, cudaStreamSynchronize(stream_));
}

// ---- graph recording ------------------------------------------------------------------

thread_local DeviceContext::CaptureTarget DeviceContext::t_capture_;

void DeviceContext::refuse_in_capture(const char* op, const char* what) const {
  if (capturing())
    throw UnsupportedError("[" + std::string(op) + "] " + what +
                           " cannot be recorded in a CUDA graph");
}

namespace {

// An instantiated graph and the pool that holds the memory its nodes write.
class CudaCapturedWork final : public CapturedWork {
 public:
  CudaCapturedWork(DeviceContext& dc, cudaGraphExec_t exec, DeviceAllocator::GraphPool* pool,
                   size_t nodes)
      : dc_(dc), exec_(exec), pool_(pool), nodes_(nodes) {}
  ~CudaCapturedWork() override {
    // Replays already queued finish before the pool's memory can be handed to others;
    // the allocator's stream order covers that, the exec is released after them.
    (void)cudaGraphExecDestroy(exec_);
    dc_.allocator().destroy_pool(pool_);
  }
  bool idle() const override { return dc_.allocator().pool_idle(pool_); }
  bool owns(const void* p) const override { return dc_.allocator().pool_owns(pool_, p); }
  uint64_t bytes() const override { return dc_.allocator().pool_bytes(pool_); }
  size_t operations() const override { return nodes_; }
  void replay(std::span<void* const> outputs) override {
    if (!idle()) throw Error("[compile] internal: graph replayed while its outputs are held");
    for (void* p : outputs) dc_.allocator().pool_take(pool_, p);
    dc_.make_current();
    TM_CUDA("compile", cudaGraphLaunch(exec_, dc_.stream()));
  }

 private:
  DeviceContext& dc_;
  cudaGraphExec_t exec_;
  DeviceAllocator::GraphPool* pool_;
  size_t nodes_;
};

}  // namespace

int DeviceContext::lanes() const { return capturing() && t_capture_.side ? 2 : 1; }

void DeviceContext::set_lane(int k) {
  if (!capturing() || !t_capture_.side) return;
  CaptureTarget& t = t_capture_;
  k = k ? 1 : 0;
  if (k == t.lane) return;
  if (k == 1) {  // after everything queued so far on either lane
    TM_CUDA("compile", cudaEventRecord(t.fork, t.stream));
    TM_CUDA("compile", cudaStreamWaitEvent(t.side, t.fork, 0));
    alloc_->pool_defer(t.pool, true);
    t.side_pending = true;
  } else {
    alloc_->pool_defer(t.pool, false);
  }
  t.lane = k;
}

cudaError_t DeviceContext::join_side(CaptureTarget& t) {
  t.side_pending = false;
  const cudaError_t e = cudaEventRecord(t.join, t.side);
  return e == cudaSuccess ? cudaStreamWaitEvent(t.stream, t.join, 0) : e;
}

void DeviceContext::join_lanes() {
  if (!capturing() || !t_capture_.side) return;
  CaptureTarget& t = t_capture_;
  set_lane(0);
  if (!t.side_pending) return;
  TM_CUDA("compile", join_side(t));
  alloc_->pool_flush(t.pool);
}

void DeviceContext::begin_capture() {
  if (t_capture_.dc) throw Error("[compile] internal: nested graph recording");
  make_current();
  flush_tiny();
  CaptureTarget t;
  auto fail = [&t](const char* what, cudaError_t e) {
    destroy_streams(t);
    throw_cuda_error("compile", what, e);
  };
  int least = 0, greatest = 0;
  static const bool lanes_on = !detail::env_off("TMATH_CUDA_LANES");
  if (lanes_on) {
    {  // the second lane's workspace and counters, before the recording starts
      std::lock_guard<std::mutex> lk(blas_mu_);
      ensure_blas_workspace("compile", 1);
    }
    counters("compile", 1);
    // The first lane (the chain the result waits for) before the second where both
    // have blocks waiting for room on the device.
    if (cudaDeviceGetStreamPriorityRange(&least, &greatest) != cudaSuccess) {
      (void)cudaGetLastError();
      least = greatest = 0;
    }
    if (cudaError_t e = cudaStreamCreateWithPriority(&t.side, cudaStreamNonBlocking, least);
        e != cudaSuccess)
      fail("cudaStreamCreateWithPriority", e);
    for (cudaEvent_t* ev : {&t.fork, &t.join})
      if (cudaError_t e = cudaEventCreateWithFlags(ev, cudaEventDisableTiming); e != cudaSuccess)
        fail("cudaEventCreateWithFlags", e);
  }
  if (cudaError_t e = cudaStreamCreateWithPriority(&t.stream, cudaStreamNonBlocking, greatest);
      e != cudaSuccess)
    fail("cudaStreamCreateWithPriority", e);
  // Relaxed: the pool may take a new segment from cudaMalloc while recording (the
  // stricter modes refuse it); the memory is real, not part of the graph.
  if (cudaError_t e = cudaStreamBeginCapture(t.stream, cudaStreamCaptureModeRelaxed);
      e != cudaSuccess)
    fail("cudaStreamBeginCapture", e);
  t.pool = alloc_->create_pool();
  t.dc = this;
  t_capture_ = t;
  alloc_->use_pool(t_capture_.pool);
}

void DeviceContext::destroy_streams(CaptureTarget& t) {
  (void)cudaGetLastError();
  for (cudaStream_t s : {t.stream, t.side})
    if (s) (void)cudaStreamDestroy(s);
  for (cudaEvent_t ev : {t.fork, t.join})
    if (ev) (void)cudaEventDestroy(ev);
  t.stream = t.side = nullptr;
  t.fork = t.join = nullptr;
}

std::unique_ptr<CapturedWork> DeviceContext::end_capture(bool keep, std::string& why) {
  if (t_capture_.dc != this) throw Error("[compile] internal: no graph recording to end");
  if (t_capture_.side_pending) {  // left by a failed evaluation: the capture must join
    t_capture_.lane = 0;
    (void)join_side(t_capture_);
  }
  CaptureTarget t = t_capture_;
  t_capture_ = CaptureTarget{};
  alloc_->pool_flush(t.pool);
  alloc_->use_pool(nullptr);
  cudaGraph_t graph = nullptr;
  cudaError_t e = cudaStreamEndCapture(t.stream, &graph);
  destroy_streams(t);
  cudaGraphExec_t exec = nullptr;
  size_t nodes = 0;
  if (e == cudaSuccess && graph && cudaGraphGetNodes(graph, nullptr, &nodes) != cudaSuccess) {
    (void)cudaGetLastError();
    nodes = 0;
  }
  if (e == cudaSuccess && keep && graph) {
    e = cudaGraphInstantiate(&exec, graph, 0);
    if (e == cudaSuccess) e = cudaGraphUpload(exec, stream_);
    if (e != cudaSuccess) why = std::string("cudaGraphInstantiate: ") + cudaGetErrorString(e);
  } else if (e != cudaSuccess) {
    why = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(e);
  } else if (!keep) {
    why = "the recording was abandoned";
  }
  if (graph) (void)cudaGraphDestroy(graph);
  if (e != cudaSuccess || !keep || !exec) {
    (void)cudaGetLastError();
    if (exec) (void)cudaGraphExecDestroy(exec);
    alloc_->destroy_pool(t.pool);
    return nullptr;
  }
  return std::make_unique<CudaCapturedWork>(*this, exec, t.pool, nodes);
}

// ---- versions ---------------------------------------------------------------------------

namespace {
// "major.minor.patch" from a library's get-property entry point; empty where it fails.
template <class Get, class Status>
std::string property_version(const Get& get, Status ok) {
  int ma = 0, mi = 0, pa = 0;
  if (get(MAJOR_VERSION, &ma) != ok || get(MINOR_VERSION, &mi) != ok || get(PATCH_LEVEL, &pa) != ok)
    return {};
  return std::to_string(ma) + "." + std::to_string(mi) + "." + std::to_string(pa);
}
}  // namespace

std::vector<std::pair<std::string, std::string>> library_versions() {
  std::vector<std::pair<std::string, std::string>> v;
  int rt = 0;
  if (cudaRuntimeGetVersion(&rt) == cudaSuccess) v.emplace_back("CUDA runtime", version_str(rt));
  int drv = 0;
  if (cudaDriverGetVersion(&drv) == cudaSuccess)
    v.emplace_back("CUDA driver", drv ? version_str(drv) : std::string("none"));
  (void)cudaGetLastError();
  // cuBLAS, cuBLASLt and cuSOLVER are opened on first use (cuda_libs.h): a listing of
  // the backends does not open them. Loaded ones report what is running, the others
  // the version the backend was built against.
  auto report = [&v](const char* name, CudaLib lib, int built_major, int built_minor,
                     const std::function<std::string()>& running) {
    if (!cuda_lib_loaded(lib)) {
      v.emplace_back(name, "not loaded (opened on first use; built with " +
                               std::to_string(built_major) + "." + std::to_string(built_minor) +
                               ")");
    } else if (std::string r = running(); !r.empty()) {
      v.emplace_back(name, r);
    }
  };
  report("cuBLAS", CudaLib::cublas, CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR,
         [] { return property_version(cublasGetProperty, CUBLAS_STATUS_SUCCESS); });
  report("cuBLASLt", CudaLib::cublasLt, CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR, [] {
    const size_t lt = cublasLtGetVersion();
    return std::to_string(lt / 10000) + "." + std::to_string((lt / 100) % 100) + "." +
           std::to_string(lt % 100);
  });
  report("cuSOLVER", CudaLib::cusolver, CUSOLVER_VER_MAJOR, CUSOLVER_VER_MINOR,
         [] { return property_version(cusolverGetProperty, CUSOLVER_STATUS_SUCCESS); });
  int ma = 0, mi = 0;
  if (nvrtcVersion(&ma, &mi) == NVRTC_SUCCESS)
    v.emplace_back("NVRTC", std::to_string(ma) + "." + std::to_string(mi));
  return v;
}

}  // namespace tmath::cuda
