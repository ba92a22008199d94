// Linear algebra on CUDA devices through cuSOLVER (64-bit X* API where it exists)
// and cuBLAS (trsm). Each matrix of the batch is first copied, with the copy kernel,
// into a column-major scratch buffer (cuSOLVER overwrites its arguments and the inputs
// must stay intact), and checked for NaN/Inf there by a small kernel that sets one
// flag per batch entry. The factorisations run one batch entry after another on the
// engine's stream, each writing its own `info`, except for batches of small matrices:
// LU (solve, inv, det, lu) and Cholesky up to 64 x 64 run as one cuBLAS getrfBatched /
// getrsBatched or cuSOLVER potrfBatched call, small real SVDs use our one-sided
// Jacobi kernel (linalg_kernels.cpp), small complex batched SVDs and eigh
// gesvdjBatched / XsyevBatched. The flags and infos come back to the host in one
// copy at the end (the only synchronisation, except where a result is computed on
// the host: det/slogdet from the LU diagonal, lu's pivots and lu_solve's pivot check),
// and the first failing batch entry raises LinAlgError naming its index.
#include <cublas_v2.h>
#include <cusolverDn.h>

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <complex>
#include <cstdlib>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "backend/cuda/kernels.h"
#include "backend/cuda/linalg_kernels.h"
#include "core/dispatch.h"
#include "core/linalg_text.h"
#include "tmath/error.h"

namespace tmath::cuda {
namespace {


const char* cusolver_status_name(cusolverStatus_t s) {
  switch (s) {
    case CUSOLVER_STATUS_SUCCESS: return "CUSOLVER_STATUS_SUCCESS";
    case CUSOLVER_STATUS_NOT_INITIALIZED: return "CUSOLVER_STATUS_NOT_INITIALIZED";
    case CUSOLVER_STATUS_ALLOC_FAILED: return "CUSOLVER_STATUS_ALLOC_FAILED";
    case CUSOLVER_STATUS_INVALID_VALUE: return "CUSOLVER_STATUS_INVALID_VALUE";
    case CUSOLVER_STATUS_ARCH_MISMATCH: return "CUSOLVER_STATUS_ARCH_MISMATCH";
    case CUSOLVER_STATUS_MAPPING_ERROR: return "CUSOLVER_STATUS_MAPPING_ERROR";
    case CUSOLVER_STATUS_EXECUTION_FAILED: return "CUSOLVER_STATUS_EXECUTION_FAILED";
    case CUSOLVER_STATUS_INTERNAL_ERROR: return "CUSOLVER_STATUS_INTERNAL_ERROR";
    case CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED:
      return "CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED";
    case CUSOLVER_STATUS_NOT_SUPPORTED: return "CUSOLVER_STATUS_NOT_SUPPORTED";
    case CUSOLVER_STATUS_ZERO_PIVOT: return "CUSOLVER_STATUS_ZERO_PIVOT";
    case CUSOLVER_STATUS_INVALID_LICENSE: return "CUSOLVER_STATUS_INVALID_LICENSE";
    case CUSOLVER_STATUS_INVALID_WORKSPACE: return "CUSOLVER_STATUS_INVALID_WORKSPACE";
    default: return "cusolverStatus_t (other)";
  }
}

[[noreturn]] void throw_cusolver(const char* op, std::string_view call, cusolverStatus_t s) {
  std::string msg = "[" + std::string(op) + "] " + std::string(call) + " failed: " +
                    cusolver_status_name(s) + " (" + std::to_string(static_cast<int>(s)) + ")";
  if (s == CUSOLVER_STATUS_ALLOC_FAILED) throw OutOfMemoryError(msg);
  if (s == CUSOLVER_STATUS_NOT_SUPPORTED || s == CUSOLVER_STATUS_ARCH_MISMATCH)
    throw UnsupportedError(msg);
  throw Error(msg);
}

}  // namespace
}  // namespace tmath::cuda

#define TM_CUSOLVER(op, expr)                                                    \
  do {                                                                           \
    const cusolverStatus_t tm_s_ = (expr);                                       \
    if (tm_s_ != CUSOLVER_STATUS_SUCCESS)                                        \
      ::tmath::cuda::throw_cusolver(op, ::tmath::cuda::call_name(#expr), tm_s_); \
  } while (0)

namespace tmath::cuda {
namespace {

// One cuSOLVER handle (and X-API params) per device, bound to the engine's stream;
// like the cuBLAS handle it is used by one thread at a time. Never destroyed (the
// backend outlives every tensor and makes no CUDA calls at exit).
struct Solver {
  cusolverDnHandle_t handle = nullptr;
  cusolverDnParams_t params = nullptr;
  std::mutex mu;
};

Solver& solver(DeviceContext& dc, const char* op) {
  static std::mutex mu;
  static auto* all = new std::unordered_map<int, Solver*>();
  std::lock_guard<std::mutex> lock(mu);
  Solver*& s = (*all)[dc.index()];
  if (!s) {
    auto fresh = std::make_unique<Solver>();
    dc.make_current();
    TM_CUSOLVER(op, cusolverDnCreate(&fresh->handle));
    TM_CUSOLVER(op, cusolverDnSetStream(fresh->handle, dc.stream()));
    TM_CUSOLVER(op, cusolverDnCreateParams(&fresh->params));
    s = fresh.release();
  }
  return *s;
}

cudaDataType cuda_type(DType dt) {
  switch (dt) {
    case DType::Float32: return CUDA_R_32F;
    case DType::Float64: return CUDA_R_64F;
    case DType::Complex64: return CUDA_C_32F;
    case DType::Complex128: return CUDA_C_64F;
    default:
      throw DTypeError("[linalg] the cuda kernels take float32, float64, complex64 or "
                       "complex128, got " + std::string(dtype_name(dt)));
  }
}

int to_int(int64_t v, const char* op) {
  if (v < 0 || v > INT_MAX)
    throw ValueError("[" + std::string(op) + "] dimension " + std::to_string(v) +
                     " exceeds the 32-bit limit of the cuSOLVER/cuBLAS routine");
  return static_cast<int>(v);
}

// Device scratch of at least one byte (the allocator does not take 0).
using ScratchPtr = std::unique_ptr<DeviceContext::Scratch>;
ScratchPtr scratch(DeviceContext& dc, size_t nbytes) {
  return std::make_unique<DeviceContext::Scratch>(dc, std::max<size_t>(nbytes, 16));
}
template <class T = char>
T* at(const ScratchPtr& s, int64_t elem_offset = 0, size_t isz = sizeof(T)) {
  return reinterpret_cast<T*>(static_cast<char*>(s->get()) + elem_offset * static_cast<int64_t>(isz));
}

// A (batch..., rows, cols) strided view of device memory with row stride rs, column
// stride cs and contiguous batch entries `bstride` elements apart.
class View {
 public:
  View(void* data, DType dt, Device dev, std::span<const int64_t> batch, int64_t rows,
       int64_t cols, int64_t rs, int64_t cs, int64_t bstride) {
    shape_.assign(batch.begin(), batch.end());
    shape_.push_back(rows);
    shape_.push_back(cols);
    strides_.assign(shape_.size(), 0);
    int64_t s = bstride;
    for (size_t i = batch.size(); i-- > 0;) {
      strides_[i] = s;
      s *= batch[i];
    }
    strides_[batch.size()] = rs;
    strides_[batch.size() + 1] = cs;
    ref_ = ArrayRef{data, dt, shape_, strides_, dev};
  }
  View(const View&) = delete;
  View& operator=(const View&) = delete;
  const ArrayRef& ref() const { return ref_; }

 private:
  std::vector<int64_t> shape_, strides_;
  ArrayRef ref_;
};

// What info > 0 of the op's main routine means: the failure it reports (core/
// linalg_text.h), or nothing.
enum class InfoMeaning : int32_t {
  Ignore = detail::kOk,
  Singular = detail::kSingular,
  NotPositiveDefinite = detail::kNotPositiveDefinite,
  NoConvergence = detail::kNoConvergence,
};

// The state of one linalg call: handles, the batch, the flags and infos checked at the end.
class Call {
 public:
  Call(DeviceContext& dc, OpCode op, const ArrayRef& a, DType dt)
      : dc_(dc), label_(detail::snake_name(op)), op_(label_.c_str()), dt_(dt),
        isz_(itemsize(dt)), s_(solver(dc, op_)),
        lock_(s_.mu) {
    batch_.assign(a.shape.begin(), a.shape.end() - 2);
    for (int64_t d : batch_) count_ *= d;
    dev_ = a.device;
    dc_.make_current();
    // One block: flags [0, count), infos [count, 2 count), the spare info last; one
    // memset here and one read-back in finish().
    status_ = scratch(dc_, status_bytes());
    TM_CUDA(op_, cudaMemsetAsync(status_->get(), 0, status_bytes(), dc_.stream()));
  }

  const char* op() const { return op_; }
  int64_t count() const { return count_; }
  std::span<const int64_t> batch() const { return batch_; }
  DType dtype() const { return dt_; }
  size_t isz() const { return isz_; }
  cusolverDnHandle_t h() const { return s_.handle; }
  cusolverDnParams_t params() const { return s_.params; }
  DeviceContext& dc() const { return dc_; }
  Device device() const { return dev_; }
  int* info(int64_t b) const { return at<int>(status_, count_ + b); }
  // The per-entry flags tm_la_check sets (bit 0: NaN/Inf).
  int* flags() const { return at<int>(status_); }
  // A spare info slot for routines whose info only reports bad arguments.
  int* aux_info() const { return at<int>(status_, 2 * count_); }

  // Copies `in` (batch..., rows, cols) into column-major scratch (leading dimension
  // ld, batch entries bstride elements apart), converting to dst_dt.
  void pack(const ArrayRef& in, void* dst, DType dst_dt, int64_t rows, int64_t cols, int64_t ld,
            int64_t bstride) {
    View v(dst, dst_dt, dev_, batch_, rows, cols, 1, ld, bstride);
    copy(dc_, in, v.ref(), op_);
  }
  // out (row-major contiguous) from column-major scratch through a strided view.
  void unpack_plain(const void* src, DType src_dt, int64_t rows, int64_t cols, int64_t rs,
                    int64_t cs, int64_t bstride, const ArrayRef& out) {
    View v(const_cast<void*>(src), src_dt, dev_, batch_, rows, cols, rs, cs, bstride);
    copy(dc_, v.ref(), out, op_);
  }
  // The helper kernels (dtype dt_).
  // `entries`: how many batch entries (default: the whole batch).
  void unpack(const void* src, int64_t ld, int64_t sbs, void* dst, int64_t dbs, int64_t rows,
              int64_t cols, int mode, bool trans, bool conj, DType dt, int64_t entries = -1) {
    LaKernelParams p;
    const int64_t count = entries < 0 ? count_ : entries;
    p.src = reinterpret_cast<unsigned long long>(src);
    p.dst = reinterpret_cast<unsigned long long>(dst);
    p.batch = count, p.rows = rows, p.cols = cols, p.ld = ld, p.sbs = sbs, p.dbs = dbs;
    p.mode = mode, p.trans = trans ? 1 : 0, p.conj = conj ? 1 : 0;
    if (count * rows * cols == 0) return;
    const Program& prog = dc_.program(linalg_kernels_key(dt), [&] { return linalg_kernels(dt); }, op_);
    launch(op_, prog[0], grid_for(dc_, count * rows * cols), 1, kThreads, 0, dc_.stream(), p);
  }
  // Complex eigenvectors (column-major n x n, batch stride dbs) from a real geev's packed
  // VR (leading dimension ld, batch stride sbs) and its complex eigenvalues w (n per batch
  // entry, contiguous); rt is the real dtype.
  void eig_vectors(const void* vr, int64_t ld, int64_t sbs, const void* w, void* dst,
                   int64_t dbs, int64_t n, DType rt) {
    LaKernelParams p;
    p.src = reinterpret_cast<unsigned long long>(vr);
    p.dst = reinterpret_cast<unsigned long long>(dst);
    p.aux = reinterpret_cast<unsigned long long>(w);
    p.batch = count_, p.rows = n, p.cols = n, p.ld = ld, p.sbs = sbs, p.dbs = dbs;
    if (count_ * n * n == 0) return;
    const Program& prog = dc_.program(linalg_kernels_key(rt), [&] { return linalg_kernels(rt); }, op_);
    launch(op_, prog[2], grid_for(dc_, count_ * n * n), 1, kThreads, 0, dc_.stream(), p);
  }
  // perm (n ints per batch entry) from getrf's pivots (n int64 per batch entry).
  void pivots_to_perm(const int64_t* piv, int* perm, int64_t n) {
    LaKernelParams p;
    p.src = reinterpret_cast<unsigned long long>(piv);
    p.dst = reinterpret_cast<unsigned long long>(perm);
    p.batch = count_, p.rows = n;
    constexpr int64_t kSharedInts = 48 * 1024 / sizeof(int);
    p.mode = n <= kSharedInts ? 1 : 0;
    if (count_ * n == 0) return;
    const Program& prog = dc_.program(linalg_kernels_key(dt_), [&] { return linalg_kernels(dt_); }, op_);
    launch(op_, prog[3], static_cast<unsigned>(count_), 1, 128,
           p.mode == 1 ? static_cast<size_t>(n) * sizeof(int) : 0, dc_.stream(), p);
  }
  // dst (column-major rows x cols, leading dimension rows) = P^T src, or P^T I when src
  // is null.
  void permute(const void* src, int64_t ld, int64_t sbs, const int* perm, void* dst, int64_t dbs,
               int64_t rows, int64_t cols) {
    LaKernelParams p;
    p.src = reinterpret_cast<unsigned long long>(src);
    p.dst = reinterpret_cast<unsigned long long>(dst);
    p.aux = reinterpret_cast<unsigned long long>(perm);
    p.batch = count_, p.rows = rows, p.cols = cols, p.ld = ld, p.sbs = sbs, p.dbs = dbs;
    p.mode = src ? 0 : 4;
    if (count_ * rows * cols == 0) return;
    const Program& prog = dc_.program(linalg_kernels_key(dt_), [&] { return linalg_kernels(dt_); }, op_);
    launch(op_, prog[4], grid_for(dc_, count_ * rows * cols), 1, kThreads, 0, dc_.stream(), p);
  }
  // A device array of the addresses of the batch entries of base (entries `stride`
  // elements of the call's dtype apart), for the batched cuBLAS/cuSOLVER routines.
  ScratchPtr pointers(void* base, int64_t stride) {
    auto arr = scratch(dc_, static_cast<size_t>(count_) * sizeof(void*));
    LaKernelParams p;
    p.src = reinterpret_cast<unsigned long long>(base);
    p.dst = reinterpret_cast<unsigned long long>(arr->get());
    p.batch = count_, p.sbs = stride;
    if (count_ == 0) return arr;
    const Program& prog = dc_.program(linalg_kernels_key(dt_), [&] { return linalg_kernels(dt_); }, op_);
    launch(op_, prog[5], grid_for(dc_, count_), 1, kThreads, 0, dc_.stream(), p);
    return arr;
  }
  // A kernel with one thread block per batch entry (grid-stride over the batch beyond
  // 2^20 blocks), then finish(meaning).
  template <class P>
  void launch_per_entry(CUfunction f, unsigned threads, size_t smem, const P& params,
                        InfoMeaning meaning) {
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(count_, 1 << 20));
    launch(op_, f, blocks, 1, threads, smem, dc_.stream(), params);
    finish(meaning);
  }
  // The address of `in` (batch..., rows, cols) for a kernel that reads row-major entries
  // rows x cols apart: `in` itself when contiguous, else a column-major copy into `keep`
  // (pack's layout, colmajor set to 1).
  unsigned long long rows_or_packed(const ArrayRef& in, int64_t rows, int64_t cols,
                                    ScratchPtr& keep, int& colmajor) {
    if (in.is_contiguous()) return reinterpret_cast<unsigned long long>(in.data);
    keep = scratch(dc_, static_cast<size_t>(count_ * rows * cols) * isz_);
    pack(in, keep->get(), dt_, rows, cols, rows, rows * cols);
    colmajor = 1;
    return reinterpret_cast<unsigned long long>(keep->get());
  }
  // lu_solve's 0-based int pivots (n per batch entry, contiguous) checked and written
  // 1-based as ints or, when wide, int64 (an out-of-range one flagged with bit 4 and
  // replaced by its row's own index).
  void lu_pivots_in(const int* src, void* dst, int64_t n, bool wide) {
    if (count_ * n == 0) return;
    LaKernelParams p;
    p.src = reinterpret_cast<unsigned long long>(src);
    p.dst = reinterpret_cast<unsigned long long>(dst);
    p.flags = reinterpret_cast<unsigned long long>(flags());
    p.batch = count_, p.rows = n, p.mode = wide ? 1 : 0;
    const Program& prog = dc_.program(linalg_kernels_key(dt_), [&] { return linalg_kernels(dt_); }, op_);
    launch(op_, prog[6], grid_for(dc_, count_ * n), 1, kThreads, 0, dc_.stream(), p);
  }
  void check(const void* src, int64_t ld, int64_t sbs, int64_t rows, int64_t cols, int mode,
             bool diag, DType dt) {
    LaKernelParams p;
    p.src = reinterpret_cast<unsigned long long>(src);
    p.flags = reinterpret_cast<unsigned long long>(flags());
    p.batch = count_, p.rows = rows, p.cols = cols, p.ld = ld, p.sbs = sbs;
    p.mode = mode, p.diag = diag ? 1 : 0;
    if (count_ * rows * cols == 0) return;
    const Program& prog = dc_.program(linalg_kernels_key(dt), [&] { return linalg_kernels(dt); }, op_);
    launch(op_, prog[1], grid_for(dc_, count_ * rows * cols), 1, kThreads, 0, dc_.stream(), p);
  }

  // One copy of the flags and infos to the host; throws for the first failing entry.
  void finish(InfoMeaning meaning) {
    std::vector<int> status(static_cast<size_t>(2 * count_ + 1));
    if (count_ > 0) dc_.copy_to_host(status_->get(), status.data(), status_bytes());
    std::vector<int> flags(status.begin(), status.begin() + count_),
        info(status.begin() + count_, status.end());
    const std::string name = "[" + std::string(op_) + "] ";
    if (info[static_cast<size_t>(count_)] < 0)
      throw Error(name + "cuSOLVER reported invalid argument " +
                  std::to_string(-info[static_cast<size_t>(count_)]));
    for (int64_t b = 0; b < count_; ++b) {
      const int f = flags[static_cast<size_t>(b)], i = info[static_cast<size_t>(b)];
      if (f == 0 && (i == 0 || (i > 0 && meaning == InfoMeaning::Ignore))) continue;
      // A failure: the batch index is formatted here only, not once per entry.
      const std::string where = detail::batch_index_text(batch_, b);
      auto fail = [&](int32_t code) {
        throw LinAlgError(name + detail::linalg_fail_text(code) + where);
      };
      if (f & 1) fail(detail::kNonFinite);
      if (f & 4) fail(detail::kBadPivots);
      if (f & 2) fail(detail::kSingular);
      if (i < 0)
        throw Error(name + "cuSOLVER reported invalid argument " + std::to_string(-i) + where);
      if (i > 0 && meaning != InfoMeaning::Ignore) fail(static_cast<int32_t>(meaning));
    }
  }

 private:
  DeviceContext& dc_;
  std::string label_;  // the op's name in messages
  const char* op_;
  DType dt_;
  size_t isz_;
  Solver& s_;
  std::lock_guard<std::mutex> lock_;
  std::vector<int64_t> batch_;
  int64_t count_ = 1;
  Device dev_;
  size_t status_bytes() const { return static_cast<size_t>(2 * count_ + 1) * sizeof(int); }
  ScratchPtr status_;
};

// Device and host workspaces of a routine, sized by its *_bufferSize query.
struct Work {
  ScratchPtr dev;
  std::vector<char> host;
  size_t dev_bytes = 0, host_bytes = 0;
  void make(DeviceContext& dc) {
    dev = scratch(dc, dev_bytes);
    host.assign(std::max<size_t>(host_bytes, 1), 0);
  }
};

// X <- A^-1 X for one batch entry: A an N x N triangle (leading dimension N), X N x K
// (leading dimension N), in the call's dtype. The caller holds the cuBLAS lock.
void trsm_one(Call& c, cublasHandle_t h, cublasFillMode_t uplo, cublasDiagType_t diag, int N,
              int K, void* A, void* X) {
  const float one_f = 1.0f;
  const double one_d = 1.0;
  const cuComplex one_c = make_cuComplex(1.0f, 0.0f);
  const cuDoubleComplex one_z = make_cuDoubleComplex(1.0, 0.0);
  const cublasSideMode_t L = CUBLAS_SIDE_LEFT;
  const cublasOperation_t T = CUBLAS_OP_N;
  switch (c.dtype()) {
    case DType::Float32:
      TM_CUBLAS(c.op(), cublasStrsm(h, L, uplo, T, diag, N, K, &one_f, static_cast<float*>(A),
                                    N, static_cast<float*>(X), N));
      break;
    case DType::Float64:
      TM_CUBLAS(c.op(), cublasDtrsm(h, L, uplo, T, diag, N, K, &one_d, static_cast<double*>(A),
                                    N, static_cast<double*>(X), N));
      break;
    case DType::Complex64:
      TM_CUBLAS(c.op(), cublasCtrsm(h, L, uplo, T, diag, N, K, &one_c,
                                    static_cast<cuComplex*>(A), N, static_cast<cuComplex*>(X), N));
      break;
    default:
      TM_CUBLAS(c.op(), cublasZtrsm(h, L, uplo, T, diag, N, K, &one_z,
                                    static_cast<cuDoubleComplex*>(A), N,
                                    static_cast<cuDoubleComplex*>(X), N));
      break;
  }
}

// From this many right-hand sides on (inv: n), solve applies getrf's row interchanges
// with two small kernels and runs two cuBLAS trsm calls instead of cuSOLVER's getrs,
// which was 1.6x slower with n right-hand sides (H100, bench/NOTES.md).
// TMATH_CUDA_SOLVE_TRSM_RHS overrides it (0: always getrs).
int64_t solve_trsm_min_rhs() {
  static const int64_t v = [] {
    const char* e = std::getenv("TMATH_CUDA_SOLVE_TRSM_RHS");
    if (e && *e) {
      const long long x = std::atoll(e);
      return x <= 0 ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(x);
    }
    return int64_t{16};
  }();
  return v;
}

// The cuBLAS handle on the engine's stream with its workspace (matmul rebinds the
// handle to a recording stream while a graph is recorded). The caller holds
// blas_mutex().
cublasHandle_t blas_on_stream(Call& c) {
  cublasHandle_t h = c.dc().blas(c.op());
  TM_CUBLAS(c.op(), cublasSetStream(h, c.dc().stream()));
  TM_CUBLAS(c.op(), cublasSetWorkspace(h, c.dc().blas_workspace(), c.dc().blas_workspace_size()));
  return h;
}

// ---- batched LU and Cholesky of small matrices -------------------------------------------
// A batch of small matrices is factored by one batched call (cuBLAS getrfBatched and
// getrsBatched, cuSOLVER potrfBatched) instead of one cuSOLVER call per entry, whose
// fixed cost (launches and host work, tens of microseconds) dominates at these sizes.
// Used from two entries on up to TMATH_CUDA_BATCHED_MAX_N (default 64; 0 turns it off).
int64_t batched_max_n() {
  static const int64_t v = [] {
    const char* e = std::getenv("TMATH_CUDA_BATCHED_MAX_N");
    if (e && *e) return std::max<int64_t>(0, std::atoll(e));
    return int64_t{64};
  }();
  return v;
}
bool batched_route(const Call& c, int64_t n) {
  return c.count() >= 2 && n > 0 && n <= batched_max_n();
}

template <class F>
void by_dtype(DType dt, F&& f) {
  switch (dt) {
    case DType::Float32: f(float()); break;
    case DType::Float64: f(double()); break;
    case DType::Complex64: f(cuComplex()); break;
    default: f(cuDoubleComplex()); break;
  }
}

// LU with partial pivoting of every n x n entry behind the pointer array `a` (leading
// dimension n): 1-based pivots, n ints per entry, into piv; each entry's info into
// c.info(b).
void getrf_batched(Call& c, const ScratchPtr& a, int64_t n, int* piv) {
  const int N = to_int(n, c.op()), B = to_int(c.count(), c.op());
  std::lock_guard<std::mutex> blas_lock(c.dc().blas_mutex());
  cublasHandle_t h = blas_on_stream(c);
  by_dtype(c.dtype(), [&](auto t) {
    using T = decltype(t);
    T* const* A = static_cast<T* const*>(a->get());
    if constexpr (std::is_same_v<T, float>)
      TM_CUBLAS(c.op(), cublasSgetrfBatched(h, N, A, N, piv, c.info(0), B));
    else if constexpr (std::is_same_v<T, double>)
      TM_CUBLAS(c.op(), cublasDgetrfBatched(h, N, A, N, piv, c.info(0), B));
    else if constexpr (std::is_same_v<T, cuComplex>)
      TM_CUBLAS(c.op(), cublasCgetrfBatched(h, N, A, N, piv, c.info(0), B));
    else
      TM_CUBLAS(c.op(), cublasZgetrfBatched(h, N, A, N, piv, c.info(0), B));
  });
}

// X <- A^-1 X for every entry from getrf_batched's factors and pivots; X n x k per entry
// (leading dimension n) behind the pointer array `x`.
void getrs_batched(Call& c, const ScratchPtr& a, int64_t n, const int* piv, const ScratchPtr& x,
                   int64_t k) {
  const int N = to_int(n, c.op()), K = to_int(k, c.op()), B = to_int(c.count(), c.op());
  int arg = 0;  // a bad argument (host-side check)
  std::lock_guard<std::mutex> blas_lock(c.dc().blas_mutex());
  cublasHandle_t h = blas_on_stream(c);
  by_dtype(c.dtype(), [&](auto t) {
    using T = decltype(t);
    const T* const* A = static_cast<const T* const*>(a->get());
    T* const* X = static_cast<T* const*>(x->get());
    const cublasOperation_t op = CUBLAS_OP_N;
    if constexpr (std::is_same_v<T, float>)
      TM_CUBLAS(c.op(), cublasSgetrsBatched(h, op, N, K, A, N, piv, X, N, &arg, B));
    else if constexpr (std::is_same_v<T, double>)
      TM_CUBLAS(c.op(), cublasDgetrsBatched(h, op, N, K, A, N, piv, X, N, &arg, B));
    else if constexpr (std::is_same_v<T, cuComplex>)
      TM_CUBLAS(c.op(), cublasCgetrsBatched(h, op, N, K, A, N, piv, X, N, &arg, B));
    else
      TM_CUBLAS(c.op(), cublasZgetrsBatched(h, op, N, K, A, N, piv, X, N, &arg, B));
  });
  if (arg < 0)
    throw Error("[" + std::string(c.op()) + "] cuBLAS getrsBatched reported invalid argument " +
                std::to_string(-arg));
}

// getrf_batched's int pivots as the int64 ones the per-entry route (cusolverDnXgetrf)
// writes, which det and lu read.
void widen_pivots(Call& c, const int* p32, int64_t* p64, int64_t count) {
  const int64_t shape[1] = {count}, unit[1] = {1};
  const ArrayRef src{const_cast<int*>(p32), DType::Int32, shape, unit, c.device()};
  const ArrayRef dst{p64, DType::Int64, shape, unit, c.device()};
  copy(c.dc(), src, dst, c.op());
}

// LU with partial pivoting of every m x n entry of column-major A (leading dimension m,
// entries m * n apart): int64 pivots (min(m, n) per entry) and infos c.info(b). Batches
// of small square matrices take one batched call, everything else cusolverDnXgetrf per
// entry.
void getrf(Call& c, const ScratchPtr& A, int64_t m, int64_t n, const ScratchPtr& piv) {
  const int64_t B = c.count(), k = std::min(m, n);
  if (m == n && batched_route(c, n)) {
    auto p32 = scratch(c.dc(), static_cast<size_t>(B * n) * sizeof(int));
    getrf_batched(c, c.pointers(A->get(), n * n), n, at<int>(p32));
    widen_pivots(c, at<int>(p32), at<int64_t>(piv), B * n);
    return;
  }
  const cudaDataType ty = cuda_type(c.dtype());
  Work w;
  TM_CUSOLVER(c.op(), cusolverDnXgetrf_bufferSize(c.h(), c.params(), m, n, ty, A->get(), m, ty,
                                                  &w.dev_bytes, &w.host_bytes));
  w.make(c.dc());
  for (int64_t b = 0; b < B; ++b)
    TM_CUSOLVER(c.op(), cusolverDnXgetrf(c.h(), c.params(), m, n, ty, at(A, b * m * n, c.isz()),
                                         m, at<int64_t>(piv, b * k), ty, w.dev->get(),
                                         w.dev_bytes, w.host.data(), w.host_bytes, c.info(b)));
}

// ---- solve / inv (getrf, then getrs or the permutation and two trsm) ---------------------
void solve_op(Call& c, OpCode op, std::span<const ArrayRef> in, std::span<const ArrayRef> out) {
  const ArrayRef& a = in[0];
  const int nd = a.ndim();
  const int64_t n = a.shape[nd - 1];
  const bool inv = op == OpCode::Inv;
  const int64_t k = inv ? n : in[1].shape[nd - 1];
  const int64_t B = c.count();
  if (n == 0 || k == 0 || B == 0) return c.finish(InfoMeaning::Singular);
  const DType dt = c.dtype();
  const cudaDataType ty = cuda_type(dt);
  const bool batched = batched_route(c, n);
  const bool by_trsm = !batched && k >= solve_trsm_min_rhs();
  auto A = scratch(c.dc(), static_cast<size_t>(B * n * n) * c.isz());
  auto X = scratch(c.dc(), static_cast<size_t>(B * n * k) * c.isz());
  c.pack(a, A->get(), dt, n, n, n, n * n);
  c.check(A->get(), n, n * n, n, n, 0, false, dt);
  if (!inv) {
    c.pack(in[1], X->get(), dt, n, k, n, n * k);
    c.check(X->get(), n, n * k, n, k, 0, false, dt);
  } else if (!by_trsm) {
    c.unpack(nullptr, n, 0, X->get(), n * n, n, n, 4, false, false, dt);  // identities
  }
  if (batched) {  // small matrices: getrf and getrs once for the whole batch
    auto piv = scratch(c.dc(), static_cast<size_t>(B * n) * sizeof(int));
    const ScratchPtr aptr = c.pointers(A->get(), n * n);
    getrf_batched(c, aptr, n, at<int>(piv));
    getrs_batched(c, aptr, n, at<int>(piv), c.pointers(X->get(), n * k), k);
    c.unpack_plain(X->get(), dt, n, k, 1, n, n * k, out[0]);
    return c.finish(InfoMeaning::Singular);
  }
  auto piv = scratch(c.dc(), static_cast<size_t>(B * n) * sizeof(int64_t));
  getrf(c, A, n, n, piv);
  if (!by_trsm)
    for (int64_t b = 0; b < B; ++b)
      TM_CUSOLVER(c.op(), cusolverDnXgetrs(c.h(), c.params(), CUBLAS_OP_N, n, k, ty,
                                           at(A, b * n * n, c.isz()), n, at<int64_t>(piv, b * n),
                                           ty, at(X, b * n * k, c.isz()), n, c.aux_info()));
  if (by_trsm) {
    // X <- P^T B (inv: P^T I), then L \ X and U \ X.
    auto perm = scratch(c.dc(), static_cast<size_t>(B * n) * sizeof(int));
    auto Y = scratch(c.dc(), static_cast<size_t>(B * n * k) * c.isz());
    c.pivots_to_perm(at<int64_t>(piv), at<int>(perm), n);
    c.permute(inv ? nullptr : X->get(), n, n * k, at<int>(perm), Y->get(), n * k, n, k);
    X = std::move(Y);
    const int N = to_int(n, c.op()), K = to_int(k, c.op());
    std::lock_guard<std::mutex> blas_lock(c.dc().blas_mutex());
    cublasHandle_t h = blas_on_stream(c);
    for (int64_t b = 0; b < B; ++b) {
      void* Ab = at(A, b * n * n, c.isz());
      void* Xb = at(X, b * n * k, c.isz());
      trsm_one(c, h, CUBLAS_FILL_MODE_LOWER, CUBLAS_DIAG_UNIT, N, K, Ab, Xb);
      trsm_one(c, h, CUBLAS_FILL_MODE_UPPER, CUBLAS_DIAG_NON_UNIT, N, K, Ab, Xb);
    }
  }
  c.unpack_plain(X->get(), dt, n, k, 1, n, n * k, out[0]);
  c.finish(InfoMeaning::Singular);
}

// ---- det / slogdet: getrf on the device, the product of the diagonal on the host ---------
template <class T>
void det_host(Call& c, OpCode op, const std::vector<T>& diag, const std::vector<int64_t>& piv,
              int64_t n, std::span<const ArrayRef> out) {
  using R = decltype(std::abs(T()));
  const int64_t B = c.count();
  std::vector<T> d(static_cast<size_t>(B)), sign(static_cast<size_t>(B));
  std::vector<R> logabs(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    bool odd = false;
    for (int64_t i = 0; i < n; ++i) odd ^= piv[b * n + i] != i + 1;
    T prod = odd ? T(-1) : T(1), sg = prod;
    R la = 0;
    bool zero = false;
    for (int64_t i = 0; i < n; ++i) {
      const T v = diag[b * n + i];
      prod *= v;
      const R av = std::abs(v);
      if (av == R(0)) zero = true;
      if (!zero) {
        sg *= v / av;
        la += std::log(av);
      }
    }
    d[b] = prod;
    sign[b] = zero ? T(0) : sg;
    logabs[b] = zero ? -std::numeric_limits<R>::infinity() : la;
  }
  if (op == OpCode::Det) {
    c.dc().copy_from_host(d.data(), out[0].data, d.size() * sizeof(T));
  } else {
    c.dc().copy_from_host(sign.data(), out[0].data, sign.size() * sizeof(T));
    c.dc().copy_from_host(logabs.data(), out[1].data, logabs.size() * sizeof(R));
  }
}

void det_op(Call& c, OpCode op, std::span<const ArrayRef> in, std::span<const ArrayRef> out) {
  const ArrayRef& a = in[0];
  const int64_t n = a.shape[a.ndim() - 1], B = c.count();
  const DType dt = c.dtype();
  if (B == 0) return;
  auto A = scratch(c.dc(), static_cast<size_t>(B * n * n) * c.isz());
  auto D = scratch(c.dc(), static_cast<size_t>(B * n) * c.isz());
  auto piv = scratch(c.dc(), static_cast<size_t>(B * n) * sizeof(int64_t));
  if (n > 0) {
    c.pack(a, A->get(), dt, n, n, n, n * n);
    c.check(A->get(), n, n * n, n, n, 0, false, dt);
    getrf(c, A, n, n, piv);
    // The diagonal: out(0, j) = A(j, j), read with leading dimension n + 1.
    c.unpack(A->get(), n + 1, n * n, D->get(), n, 1, n, 0, false, false, dt);
  }
  c.finish(InfoMeaning::Ignore);  // a singular matrix has det 0
  std::vector<int64_t> hp(static_cast<size_t>(B * n));
  if (n > 0) c.dc().copy_to_host(piv->get(), hp.data(), hp.size() * sizeof(int64_t));
  auto run = [&](auto zero) {
    using T = decltype(zero);
    std::vector<T> hd(static_cast<size_t>(B * n));
    if (n > 0) c.dc().copy_to_host(D->get(), hd.data(), hd.size() * sizeof(T));
    det_host<T>(c, op, hd, hp, n, out);
  };
  switch (dt) {
    case DType::Float32: run(float()); break;
    case DType::Float64: run(double()); break;
    case DType::Complex64: run(std::complex<float>()); break;
    default: run(std::complex<double>()); break;
  }
}

// Cholesky (lower) of every n x n entry behind the pointer array `a` (leading dimension
// n); each entry's info into c.info(b).
void potrf_batched(Call& c, const ScratchPtr& a, int64_t n) {
  const int N = to_int(n, c.op()), B = to_int(c.count(), c.op());
  const cublasFillMode_t lo = CUBLAS_FILL_MODE_LOWER;
  by_dtype(c.dtype(), [&](auto t) {
    using T = decltype(t);
    T** A = static_cast<T**>(a->get());
    if constexpr (std::is_same_v<T, float>)
      TM_CUSOLVER(c.op(), cusolverDnSpotrfBatched(c.h(), lo, N, A, N, c.info(0), B));
    else if constexpr (std::is_same_v<T, double>)
      TM_CUSOLVER(c.op(), cusolverDnDpotrfBatched(c.h(), lo, N, A, N, c.info(0), B));
    else if constexpr (std::is_same_v<T, cuComplex>)
      TM_CUSOLVER(c.op(), cusolverDnCpotrfBatched(c.h(), lo, N, A, N, c.info(0), B));
    else
      TM_CUSOLVER(c.op(), cusolverDnZpotrfBatched(c.h(), lo, N, A, N, c.info(0), B));
  });
}

// ---- cholesky (our kernel up to 32 x 32; potrfBatched up to 64; Xpotrf, lower) ------------
// Matrices up to 32 x 32 (any batch) take one launch of our one-warp kernel
// (tm_la_cholesky_small, linalg_kernels.cpp), which reads a contiguous input as it is,
// checks and factors it and writes L or U: no packing, NaN-check, pointer-array or
// unpacking launches. TMATH_CUDA_CHOLESKY_SMALL=0 keeps cuSOLVER (for comparisons).
constexpr int64_t kCholeskySmallMax = 32;
bool cholesky_small_enabled() {
  static const bool on = !detail::env_off("TMATH_CUDA_CHOLESKY_SMALL");
  return on;
}

void cholesky_small(Call& c, const ArrayRef& a, const ArrayRef& out, int64_t n, bool upper) {
  const DType dt = c.dtype();
  ScratchPtr A;
  CholKernelParams p;
  p.a = c.rows_or_packed(a, n, n, A, p.colmajor);
  p.out = reinterpret_cast<unsigned long long>(out.data);
  p.flags = reinterpret_cast<unsigned long long>(c.flags());
  p.info = reinterpret_cast<unsigned long long>(c.info(0));
  p.batch = c.count(), p.n = static_cast<int>(n), p.upper = upper ? 1 : 0;
  const Program& prog = c.dc().program(cholesky_small_kernel_key(dt),
                                       [&] { return cholesky_small_kernel(dt); }, c.op());
  c.launch_per_entry(prog[0], 32, 0, p, InfoMeaning::NotPositiveDefinite);
}

void cholesky_op(Call& c, std::span<const ArrayRef> in, std::span<const ArrayRef> out,
                 bool upper) {
  const int64_t n = in[0].shape[in[0].ndim() - 1], B = c.count();
  if (n == 0 || B == 0) return c.finish(InfoMeaning::NotPositiveDefinite);
  if (n <= kCholeskySmallMax && cholesky_small_enabled())
    return cholesky_small(c, in[0], out[0], n, upper);
  const DType dt = c.dtype();
  const cudaDataType ty = cuda_type(dt);
  auto A = scratch(c.dc(), static_cast<size_t>(B * n * n) * c.isz());
  c.pack(in[0], A->get(), dt, n, n, n, n * n);
  c.check(A->get(), n, n * n, n, n, 1, false, dt);  // the lower triangle: the one read
  if (batched_route(c, n)) {  // small matrices: one potrfBatched for the whole batch
    potrf_batched(c, c.pointers(A->get(), n * n), n);
    c.unpack(A->get(), n, n * n, out[0].data, n * n, n, n, upper ? 2 : 1, upper, upper, dt);
    return c.finish(InfoMeaning::NotPositiveDefinite);
  }
  Work w;
  TM_CUSOLVER(c.op(), cusolverDnXpotrf_bufferSize(c.h(), c.params(), CUBLAS_FILL_MODE_LOWER, n,
                                                  ty, A->get(), n, ty, &w.dev_bytes,
                                                  &w.host_bytes));
  w.make(c.dc());
  for (int64_t b = 0; b < B; ++b)
    TM_CUSOLVER(c.op(), cusolverDnXpotrf(c.h(), c.params(), CUBLAS_FILL_MODE_LOWER, n, ty,
                                         at(A, b * n * n, c.isz()), n, ty, w.dev->get(),
                                         w.dev_bytes, w.host.data(), w.host_bytes, c.info(b)));
  // L: the lower triangle; U = L^H: out(i, j) = conj(L(j, i)) for j >= i.
  c.unpack(A->get(), n, n * n, out[0].data, n * n, n, n, upper ? 2 : 1, upper, upper, dt);
  c.finish(InfoMeaning::NotPositiveDefinite);
}

// ---- qr (Xgeqrf + orgqr/ungqr) ------------------------------------------------------------
void orgqr(Call& c, int m, int cols, int k, void* A, int lda, const void* tau, const ScratchPtr& work,
           int lwork, int* info) {
  auto h = c.h();
  switch (c.dtype()) {
    case DType::Float32:
      TM_CUSOLVER(c.op(), cusolverDnSorgqr(h, m, cols, k, static_cast<float*>(A), lda,
                                           static_cast<const float*>(tau), at<float>(work),
                                           lwork, info));
      break;
    case DType::Float64:
      TM_CUSOLVER(c.op(), cusolverDnDorgqr(h, m, cols, k, static_cast<double*>(A), lda,
                                           static_cast<const double*>(tau), at<double>(work),
                                           lwork, info));
      break;
    case DType::Complex64:
      TM_CUSOLVER(c.op(), cusolverDnCungqr(h, m, cols, k, static_cast<cuComplex*>(A), lda,
                                           static_cast<const cuComplex*>(tau),
                                           at<cuComplex>(work), lwork, info));
      break;
    default:
      TM_CUSOLVER(c.op(), cusolverDnZungqr(h, m, cols, k, static_cast<cuDoubleComplex*>(A), lda,
                                           static_cast<const cuDoubleComplex*>(tau),
                                           at<cuDoubleComplex>(work), lwork, info));
      break;
  }
}
int orgqr_lwork(Call& c, int m, int cols, int k, const void* A, int lda, const void* tau) {
  auto h = c.h();
  int lwork = 0;
  switch (c.dtype()) {
    case DType::Float32:
      TM_CUSOLVER(c.op(), cusolverDnSorgqr_bufferSize(h, m, cols, k, static_cast<const float*>(A),
                                                      lda, static_cast<const float*>(tau), &lwork));
      break;
    case DType::Float64:
      TM_CUSOLVER(c.op(), cusolverDnDorgqr_bufferSize(h, m, cols, k,
                                                      static_cast<const double*>(A), lda,
                                                      static_cast<const double*>(tau), &lwork));
      break;
    case DType::Complex64:
      TM_CUSOLVER(c.op(), cusolverDnCungqr_bufferSize(h, m, cols, k,
                                                      static_cast<const cuComplex*>(A), lda,
                                                      static_cast<const cuComplex*>(tau), &lwork));
      break;
    default:
      TM_CUSOLVER(c.op(),
                  cusolverDnZungqr_bufferSize(h, m, cols, k, static_cast<const cuDoubleComplex*>(A),
                                              lda, static_cast<const cuDoubleComplex*>(tau),
                                              &lwork));
      break;
  }
  return lwork;
}

// Xgeqrf of every batch entry of column-major A (m x n, leading dimension m, entries
// `per` elements apart); tau: min(m, n) per entry. Each entry writes its own info.
void geqrf_batch(Call& c, const ScratchPtr& A, const ScratchPtr& tau, int64_t m, int64_t n,
                 int64_t per) {
  const cudaDataType ty = cuda_type(c.dtype());
  const int64_t k = std::min(m, n);
  Work w;
  TM_CUSOLVER(c.op(), cusolverDnXgeqrf_bufferSize(c.h(), c.params(), m, n, ty, A->get(), m, ty,
                                                  tau->get(), ty, &w.dev_bytes, &w.host_bytes));
  w.make(c.dc());
  for (int64_t b = 0; b < c.count(); ++b)
    TM_CUSOLVER(c.op(), cusolverDnXgeqrf(c.h(), c.params(), m, n, ty, at(A, b * per, c.isz()), m,
                                         ty, at(tau, b * k, c.isz()), ty, w.dev->get(),
                                         w.dev_bytes, w.host.data(), w.host_bytes, c.info(b)));
}

// Matrices up to 32 x 32 (any batch) take our one-warp Householder kernel
// (tm_la_qr_small, linalg_kernels.cpp): one launch for the whole batch, Q and R
// written straight into the outputs, instead of geqrf + orgqr per entry. So do batches
// (two entries or more) of taller matrices, up to kQrSmallMaxRows x 32, whose A and Q
// (double precision) fit in a block's shared memory: each entry's chain of dependent
// steps grows as k m, but the entries run side by side instead of one cuSOLVER call
// (~0.1 ms) after another. TMATH_CUDA_QR_SMALL=0 keeps cuSOLVER for every size (for
// comparisons).
constexpr int64_t kQrSmallMax = 32, kQrSmallMaxRows = 256;
bool qr_small_enabled() {
  static const bool on = !detail::env_off("TMATH_CUDA_QR_SMALL");
  return on;
}
// tm_la_qr_small's dynamic shared memory: A (ld x n) and Q (ld x qcols) with ld = m | 1,
// and tau (k), in double precision.
size_t qr_small_bytes(int64_t m, int64_t n, int64_t qcols, DType dt) {
  return static_cast<size_t>((m | 1) * (n + qcols) + std::min(m, n)) * (is_complex(dt) ? 16 : 8);
}
constexpr size_t kDefaultSharedBytes = 48 * 1024;  // without the opt-in
bool qr_small_route(Call& c, int64_t m, int64_t n, int64_t qcols) {
  if (!qr_small_enabled() || m == 0 || n == 0) return false;
  if (m <= kQrSmallMax && n <= kQrSmallMax) return true;
  return c.count() >= 2 && n <= kQrSmallMax && m <= kQrSmallMaxRows &&
         qr_small_bytes(m, n, qcols, c.dtype()) <= c.dc().props().shared_optin;
}

void qr_small(Call& c, const ArrayRef& a, const ArrayRef* q, const ArrayRef& r, int64_t m,
              int64_t n, int64_t qcols, int64_t rrows) {
  const DType dt = c.dtype();
  auto A = scratch(c.dc(), static_cast<size_t>(c.count() * m * n) * c.isz());
  c.pack(a, A->get(), dt, m, n, m, m * n);
  c.check(A->get(), m, m * n, m, n, 0, false, dt);
  QrKernelParams p;
  p.a = reinterpret_cast<unsigned long long>(A->get());
  p.q = q ? reinterpret_cast<unsigned long long>(q->data) : 0;
  p.r = reinterpret_cast<unsigned long long>(r.data);
  p.flags = reinterpret_cast<unsigned long long>(c.flags());
  p.batch = c.count(), p.m = static_cast<int>(m), p.n = static_cast<int>(n);
  p.qcols = q ? static_cast<int>(qcols) : 0, p.rrows = static_cast<int>(rrows);
  const size_t bytes = qr_small_bytes(m, n, p.qcols, dt);
  const Program& prog =
      c.dc().program(qr_small_kernel_key(dt), [&] { return qr_small_kernel(dt); }, c.op());
  if (bytes > kDefaultSharedBytes)
    TM_CU(c.op(), cuFuncSetAttribute(prog[0], CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                     static_cast<int>(bytes)));
  c.launch_per_entry(prog[0], 32, bytes, p, InfoMeaning::Ignore);
}

void qr_op(Call& c, std::span<const ArrayRef> in, std::span<const ArrayRef> out,
           const LinalgArgs& args) {
  const ArrayRef& a = in[0];
  const int nd = a.ndim();
  const int64_t m = a.shape[nd - 2], n = a.shape[nd - 1], k = std::min(m, n), B = c.count();
  const bool complete = args.full_matrices, want_q = args.compute_uv;
  const int64_t qcols = complete ? m : k, rrows = complete ? m : k;
  const int64_t cols = std::max(n, qcols), per = m * cols;
  const DType dt = c.dtype();
  const ArrayRef& rout = want_q ? out[1] : out[0];
  if (B == 0) return;
  if (qr_small_route(c, m, n, want_q ? qcols : 0))
    return qr_small(c, a, want_q ? &out[0] : nullptr, rout, m, n, qcols, rrows);
  auto A = scratch(c.dc(), static_cast<size_t>(B * per) * c.isz());
  auto tau = scratch(c.dc(), static_cast<size_t>(B * std::max<int64_t>(k, 1)) * c.isz());
  if (m > 0 && n > 0) {
    c.pack(a, A->get(), dt, m, n, m, per);
    c.check(A->get(), m, per, m, n, 0, false, dt);
    geqrf_batch(c, A, tau, m, n, per);
  }
  // R: the upper triangle of the first rrows rows (before orgqr overwrites A).
  c.unpack(A->get(), std::max<int64_t>(m, 1), per, rout.data, rrows * n, rrows, n, 2, false, false,
           dt);
  if (want_q && m > 0 && qcols > 0) {
    if (k == 0) {
      c.unpack(nullptr, m, 0, out[0].data, m * qcols, m, qcols, 4, false, false, dt);
    } else {
      const int M = to_int(m, c.op()), Q = to_int(qcols, c.op()), K = to_int(k, c.op());
      const int lwork = orgqr_lwork(c, M, Q, K, A->get(), M, tau->get());
      auto work = scratch(c.dc(), static_cast<size_t>(std::max(lwork, 1)) * c.isz());
      for (int64_t b = 0; b < B; ++b)
        orgqr(c, M, Q, K, at(A, b * per, c.isz()), M, at(tau, b * k, c.isz()), work, lwork,
              c.aux_info());
      c.unpack_plain(A->get(), dt, m, qcols, 1, m, per, out[0]);
    }
  }
  c.finish(InfoMeaning::Ignore);
}

// ---- svd (real up to 32 x 32: our Jacobi kernel; complex batches up to 32 x 32:
// gesvdjBatched; square from 256: gesvdp, gesvd where it perturbed; below 256 gesvdj;
// tall: QR, then the square route on R; wide: the tall route on the transpose) ---------
struct GesvdjInfo {
  gesvdjInfo_t p = nullptr;
  explicit GesvdjInfo(const char* op) {
    TM_CUSOLVER(op, cusolverDnCreateGesvdjInfo(&p));
    TM_CUSOLVER(op, cusolverDnXgesvdjSetSortEig(p, 1));
  }
  ~GesvdjInfo() { cusolverDnDestroyGesvdjInfo(p); }
  GesvdjInfo(const GesvdjInfo&) = delete;
  GesvdjInfo& operator=(const GesvdjInfo&) = delete;
};

void svd_batched_jacobi(Call& c, std::span<const ArrayRef> in, std::span<const ArrayRef> out,
                        const LinalgArgs& args) {
  const ArrayRef& a = in[0];
  const int nd = a.ndim();
  const int64_t m = a.shape[nd - 2], n = a.shape[nd - 1], k = std::min(m, n), B = c.count();
  const bool uv = args.compute_uv, full = args.full_matrices;
  const int64_t ucols = full ? m : k, vrows = full ? n : k;
  const DType dt = c.dtype();
  auto A = scratch(c.dc(), static_cast<size_t>(B * m * n) * c.isz());
  auto S = scratch(c.dc(), static_cast<size_t>(B * k) * itemsize(real_type(dt)));
  auto U = scratch(c.dc(), static_cast<size_t>(B * m * m) * c.isz());
  auto V = scratch(c.dc(), static_cast<size_t>(B * n * n) * c.isz());
  c.pack(a, A->get(), dt, m, n, m, m * n);
  c.check(A->get(), m, m * n, m, n, 0, false, dt);
  GesvdjInfo gi(c.op());
  const cusolverEigMode_t jobz = uv ? CUSOLVER_EIG_MODE_VECTOR : CUSOLVER_EIG_MODE_NOVECTOR;
  const int M = to_int(m, c.op()), N = to_int(n, c.op()), NB = to_int(B, c.op());
  int lwork = 0;
  auto h = c.h();
  // The batched Jacobi SVD writes one info per matrix: c.info(0 .. B-1).
  switch (dt) {
    case DType::Float32:
      TM_CUSOLVER(c.op(), cusolverDnSgesvdjBatched_bufferSize(
                              h, jobz, M, N, at<float>(A), M, at<float>(S), at<float>(U), M,
                              at<float>(V), N, &lwork, gi.p, NB));
      break;
    case DType::Float64:
      TM_CUSOLVER(c.op(), cusolverDnDgesvdjBatched_bufferSize(
                              h, jobz, M, N, at<double>(A), M, at<double>(S), at<double>(U), M,
                              at<double>(V), N, &lwork, gi.p, NB));
      break;
    case DType::Complex64:
      TM_CUSOLVER(c.op(), cusolverDnCgesvdjBatched_bufferSize(
                              h, jobz, M, N, at<cuComplex>(A), M, at<float>(S), at<cuComplex>(U),
                              M, at<cuComplex>(V), N, &lwork, gi.p, NB));
      break;
    default:
      TM_CUSOLVER(c.op(), cusolverDnZgesvdjBatched_bufferSize(
                              h, jobz, M, N, at<cuDoubleComplex>(A), M, at<double>(S),
                              at<cuDoubleComplex>(U), M, at<cuDoubleComplex>(V), N, &lwork, gi.p,
                              NB));
      break;
  }
  auto work = scratch(c.dc(), static_cast<size_t>(std::max(lwork, 1)) * c.isz());
  switch (dt) {
    case DType::Float32:
      TM_CUSOLVER(c.op(), cusolverDnSgesvdjBatched(h, jobz, M, N, at<float>(A), M, at<float>(S),
                                                   at<float>(U), M, at<float>(V), N,
                                                   at<float>(work), lwork, c.info(0), gi.p, NB));
      break;
    case DType::Float64:
      TM_CUSOLVER(c.op(), cusolverDnDgesvdjBatched(h, jobz, M, N, at<double>(A), M,
                                                   at<double>(S), at<double>(U), M, at<double>(V),
                                                   N, at<double>(work), lwork, c.info(0), gi.p,
                                                   NB));
      break;
    case DType::Complex64:
      TM_CUSOLVER(c.op(), cusolverDnCgesvdjBatched(h, jobz, M, N, at<cuComplex>(A), M,
                                                   at<float>(S), at<cuComplex>(U), M,
                                                   at<cuComplex>(V), N, at<cuComplex>(work),
                                                   lwork, c.info(0), gi.p, NB));
      break;
    default:
      TM_CUSOLVER(c.op(), cusolverDnZgesvdjBatched(
                              h, jobz, M, N, at<cuDoubleComplex>(A), M, at<double>(S),
                              at<cuDoubleComplex>(U), M, at<cuDoubleComplex>(V), N,
                              at<cuDoubleComplex>(work), lwork, c.info(0), gi.p, NB));
      break;
  }
  const ArrayRef& sout = uv ? out[1] : out[0];
  TM_CUDA(c.op(), cudaMemcpyAsync(sout.data, S->get(),
                                  static_cast<size_t>(B * k) * itemsize(real_type(dt)),
                                  cudaMemcpyDeviceToDevice, c.dc().stream()));
  if (uv) {
    c.unpack_plain(U->get(), dt, m, ucols, 1, m, m * m, out[0]);
    // Vh = V^H: out(i, j) = conj(V(j, i)).
    c.unpack(V->get(), n, n * n, out[2].data, vrows * n, vrows, n, 0, true, true, dt);
  }
  c.finish(InfoMeaning::NoConvergence);
}

// The packed input and the column-major factors of a (batched) svd: A m x n, S k per
// entry, U m x uc, V n x vc (uc, vc: k reduced, m/n full), each entry contiguous.
struct SvdBufs {
  int64_t m = 0, n = 0, k = 0, uc = 0, vc = 0, B = 0;
  bool uv = false, full = false;
  DType dt = DType::Float32, rt = DType::Float32;
  ScratchPtr A, S, U, V;
  SvdBufs(Call& c, const ArrayRef& a, const LinalgArgs& args) {
    const int nd = a.ndim();
    m = a.shape[nd - 2], n = a.shape[nd - 1], k = std::min(m, n), B = c.count();
    uv = args.compute_uv, full = args.full_matrices;
    uc = full ? m : k, vc = full ? n : k;
    dt = c.dtype(), rt = real_type(dt);
    A = scratch(c.dc(), static_cast<size_t>(B * m * n) * c.isz());
    S = scratch(c.dc(), static_cast<size_t>(B * k) * itemsize(rt));
    U = scratch(c.dc(), static_cast<size_t>(uv ? B * m * uc : 1) * c.isz());
    V = scratch(c.dc(), static_cast<size_t>(uv ? B * n * vc : 1) * c.isz());
    c.pack(a, A->get(), dt, m, n, m, m * n);
    c.check(A->get(), m, m * n, m, n, 0, false, dt);
  }
  int64_t u_at(int64_t b) const { return uv ? b * m * uc : 0; }
  int64_t v_at(int64_t b) const { return uv ? b * n * vc : 0; }
  // The outputs from the factors (Vh = V^H formed while unpacking), then the status.
  void finish(Call& c, std::span<const ArrayRef> out) {
    const ArrayRef& sout = uv ? out[1] : out[0];
    TM_CUDA(c.op(), cudaMemcpyAsync(sout.data, S->get(), static_cast<size_t>(B * k) * itemsize(rt),
                                    cudaMemcpyDeviceToDevice, c.dc().stream()));
    if (uv) {
      c.unpack_plain(U->get(), dt, m, uc, 1, m, m * uc, out[0]);
      // Vh = V^H: out(i, j) = conj(V(j, i)).
      c.unpack(V->get(), n, n * vc, out[2].data, vc * n, vc, n, 0, true, true, dt);
    }
    c.finish(InfoMeaning::NoConvergence);
  }
};

// One-sided Jacobi SVD (gesvdj) of the batch entries `only` (all when null): on the
// H100 about twice as fast as the QR-iteration Xgesvd at 512-1024 (PyTorch's default
// CUDA driver too), for any m, n, with econ = 1 for the reduced factors.
void gesvdj_entries(Call& c, SvdBufs& sb, const std::vector<int64_t>* only) {
  const int64_t m = sb.m, n = sb.n, k = sb.k;
  const DType dt = sb.dt;
  GesvdjInfo gi(c.op());
  // Sweep until the columns are orthogonal to the unit roundoff (the default stops at
  // machine epsilon, twice that): U's orthogonality at 1024 float32 was 35.0 n eps.
  const double unit = sb.rt == DType::Float32 ? 0.5 * FLT_EPSILON : 0.5 * DBL_EPSILON;
  TM_CUSOLVER(c.op(), cusolverDnXgesvdjSetTolerance(gi.p, unit));
  const cusolverEigMode_t jobz = sb.uv ? CUSOLVER_EIG_MODE_VECTOR : CUSOLVER_EIG_MODE_NOVECTOR;
  const int econ = sb.full ? 0 : 1;
  const int M = to_int(m, c.op()), N = to_int(n, c.op());
  auto h = c.h();
  const ScratchPtr &A = sb.A, &S = sb.S, &U = sb.U, &V = sb.V;
  // One call per dtype; `work` null asks for the workspace size.
  auto call = [&](int64_t b, void* work, int lwork, int* lwork_out) {
    const int64_t ub = sb.u_at(b), vb = sb.v_at(b);
    switch (dt) {
      case DType::Float32:
        if (!work)
          TM_CUSOLVER(c.op(), cusolverDnSgesvdj_bufferSize(h, jobz, econ, M, N, at<float>(A), M,
                                                           at<float>(S), at<float>(U), M,
                                                           at<float>(V), N, lwork_out, gi.p));
        else
          TM_CUSOLVER(c.op(), cusolverDnSgesvdj(h, jobz, econ, M, N, at<float>(A, b * m * n), M,
                                                at<float>(S, b * k), at<float>(U, ub), M,
                                                at<float>(V, vb), N, static_cast<float*>(work),
                                                lwork, c.info(b), gi.p));
        break;
      case DType::Float64:
        if (!work)
          TM_CUSOLVER(c.op(), cusolverDnDgesvdj_bufferSize(h, jobz, econ, M, N, at<double>(A), M,
                                                           at<double>(S), at<double>(U), M,
                                                           at<double>(V), N, lwork_out, gi.p));
        else
          TM_CUSOLVER(c.op(), cusolverDnDgesvdj(h, jobz, econ, M, N, at<double>(A, b * m * n), M,
                                                at<double>(S, b * k), at<double>(U, ub), M,
                                                at<double>(V, vb), N, static_cast<double*>(work),
                                                lwork, c.info(b), gi.p));
        break;
      case DType::Complex64:
        if (!work)
          TM_CUSOLVER(c.op(), cusolverDnCgesvdj_bufferSize(
                                  h, jobz, econ, M, N, at<cuComplex>(A), M, at<float>(S),
                                  at<cuComplex>(U), M, at<cuComplex>(V), N, lwork_out, gi.p));
        else
          TM_CUSOLVER(c.op(), cusolverDnCgesvdj(
                                  h, jobz, econ, M, N, at<cuComplex>(A, b * m * n), M,
                                  at<float>(S, b * k), at<cuComplex>(U, ub), M,
                                  at<cuComplex>(V, vb), N, static_cast<cuComplex*>(work), lwork,
                                  c.info(b), gi.p));
        break;
      default:
        if (!work)
          TM_CUSOLVER(c.op(), cusolverDnZgesvdj_bufferSize(
                                  h, jobz, econ, M, N, at<cuDoubleComplex>(A), M, at<double>(S),
                                  at<cuDoubleComplex>(U), M, at<cuDoubleComplex>(V), N, lwork_out,
                                  gi.p));
        else
          TM_CUSOLVER(c.op(), cusolverDnZgesvdj(
                                  h, jobz, econ, M, N, at<cuDoubleComplex>(A, b * m * n), M,
                                  at<double>(S, b * k), at<cuDoubleComplex>(U, ub), M,
                                  at<cuDoubleComplex>(V, vb), N,
                                  static_cast<cuDoubleComplex*>(work), lwork, c.info(b), gi.p));
        break;
    }
  };
  int lwork = 0;
  call(0, nullptr, 0, &lwork);
  auto work = scratch(c.dc(), static_cast<size_t>(std::max(lwork, 1)) * c.isz());
  if (only) {
    for (int64_t b : *only) call(b, work->get(), lwork, nullptr);
  } else {
    for (int64_t b = 0; b < sb.B; ++b) call(b, work->get(), lwork, nullptr);
  }
}

void svd_jacobi(Call& c, std::span<const ArrayRef> in, std::span<const ArrayRef> out,
                const LinalgArgs& args) {
  SvdBufs sb(c, in[0], args);
  gesvdj_entries(c, sb, nullptr);
  sb.finish(c, out);
}

// QR-iteration SVD (Xgesvd: bidiagonalisation, then implicit QR) of the listed entries
// of square packed matrices: the slow, robust route (40-50 ms at 512 on the H100) for
// the matrices gesvdp had to perturb. gesvdj was tried there first, but on a
// rank-deficient 260 x 260 float32 matrix its V was orthogonal only to 49 n eps.
// gesvd returns V^H; V is formed from it per entry.
void gesvd_entries(Call& c, SvdBufs& sb, const std::vector<int64_t>& entries) {
  const int64_t n = sb.n;
  const cudaDataType ty = cuda_type(sb.dt), rty = cuda_type(sb.rt);
  const signed char job = sb.uv ? 'S' : 'N';
  const size_t isz = c.isz();
  auto Aw = scratch(c.dc(), static_cast<size_t>(n * n) * isz);
  // Full-size factor buffers even for values only (never hand a routine a smaller one).
  auto VT = scratch(c.dc(), static_cast<size_t>(n * n) * isz);
  auto Uw = scratch(c.dc(), static_cast<size_t>(sb.uv ? 1 : n * n) * isz);
  auto u_ptr = [&](int64_t b) { return sb.uv ? at(sb.U, sb.u_at(b), isz) : Uw->get(); };
  Work w;
  TM_CUSOLVER(c.op(), cusolverDnXgesvd_bufferSize(c.h(), c.params(), job, job, n, n, ty, Aw->get(),
                                                  n, rty, sb.S->get(), ty, u_ptr(0), n, ty,
                                                  VT->get(), n, ty, &w.dev_bytes, &w.host_bytes));
  w.make(c.dc());
  for (int64_t b : entries) {
    TM_CUDA(c.op(), cudaMemcpyAsync(Aw->get(), at(sb.A, b * n * n, isz),
                                    static_cast<size_t>(n * n) * isz, cudaMemcpyDeviceToDevice,
                                    c.dc().stream()));
    TM_CUSOLVER(c.op(), cusolverDnXgesvd(c.h(), c.params(), job, job, n, n, ty, Aw->get(), n, rty,
                                         at(sb.S, b * n, itemsize(sb.rt)),
                                         ty, u_ptr(b), n, ty, VT->get(), n, ty,
                                         w.dev->get(), w.dev_bytes, w.host.data(), w.host_bytes,
                                         c.info(b)));
    // V (column-major) = conj(V^H)^T: written row-major from V^H without a transpose.
    if (sb.uv)
      c.unpack(VT->get(), n, n * n, at(sb.V, sb.v_at(b), isz), n * n, n, n, 0, false, true, sb.dt,
               1);
  }
}

// Polar-decomposition SVD (Xgesvdp: the polar factor A = Up H by QDWH iterations, then
// syevd of H) for square matrices from kPolarMinCols on (tall and wide ones reach it
// through svd_tall_qr and svd_wide_qr): at 512 float32 on the H100 11.8 ms against
// gesvdj's 17.9, with LAPACK ratios of 0.06 (residual) and 1.2 (orthogonality) on
// random matrices (bench/cuda/svd_routes.cpp). A matrix with singular values near zero
// makes gesvdp perturb its spectrum so that the polar factor is unitary, and report the
// size of that perturbation (h_err_sigma: 0.04 |A| for singular values graded down to
// 1e-12, a residual ratio of 3255). An entry whose perturbation exceeds the unit
// roundoff times its largest singular value, whose info is nonzero, or where gesvdp
// fails (EXECUTION_FAILED and INTERNAL_ERROR were seen on clustered and triangular
// inputs) is recomputed with gesvd (gesvd_entries). gesvdp returns h_err_sigma on the
// host, so each entry synchronises; entries flagged NaN/Inf are not handed to it (the
// flags are read first).
constexpr int64_t kPolarMinCols = 256;
// TMATH_CUDA_SVD_QR=0 runs gesvdj on tall and wide matrices directly (for comparisons).
bool qr_first_enabled() {
  static const bool on = !detail::env_off("TMATH_CUDA_SVD_QR");
  return on;
}
// TMATH_CUDA_SVD_POLAR=0 keeps gesvdj for every size (for comparisons).
bool polar_svd_enabled() {
  static const bool on = !detail::env_off("TMATH_CUDA_SVD_POLAR");
  return on;
}

void svd_polar(Call& c, std::span<const ArrayRef> in, std::span<const ArrayRef> out,
               const LinalgArgs& args) {
  SvdBufs sb(c, in[0], args);
  const int64_t m = sb.m, n = sb.n, B = sb.B;
  const cudaDataType ty = cuda_type(sb.dt), rty = cuda_type(sb.rt);
  const cusolverEigMode_t jobz = sb.uv ? CUSOLVER_EIG_MODE_VECTOR : CUSOLVER_EIG_MODE_NOVECTOR;
  const int econ = sb.full ? 0 : 1;
  std::vector<int> flags(static_cast<size_t>(B));
  c.dc().copy_to_host(c.flags(), flags.data(), flags.size() * sizeof(int));
  auto Aw = scratch(c.dc(), static_cast<size_t>(m * n) * c.isz());
  // Values only: full-size factor buffers all the same (float64 values-only results
  // were wrong with the 16-byte placeholders of SvdBufs).
  auto Uw = scratch(c.dc(), static_cast<size_t>(sb.uv ? 1 : m * m) * c.isz());
  auto Vw = scratch(c.dc(), static_cast<size_t>(sb.uv ? 1 : n * n) * c.isz());
  auto u_ptr = [&](int64_t b) { return sb.uv ? at(sb.U, sb.u_at(b), c.isz()) : Uw->get(); };
  auto v_ptr = [&](int64_t b) { return sb.uv ? at(sb.V, sb.v_at(b), c.isz()) : Vw->get(); };
  Work w;
  TM_CUSOLVER(c.op(), cusolverDnXgesvdp_bufferSize(
                          c.h(), c.params(), jobz, econ, m, n, ty, Aw->get(), m, rty,
                          sb.S->get(), ty, u_ptr(0), m, ty, v_ptr(0), n, ty,
                          &w.dev_bytes, &w.host_bytes));
  w.make(c.dc());
  const double unit = sb.rt == DType::Float32 ? 0.5 * FLT_EPSILON : 0.5 * DBL_EPSILON;
  std::vector<int64_t> redo;
  for (int64_t b = 0; b < B; ++b) {
    if (flags[static_cast<size_t>(b)]) continue;  // NaN/Inf: raised by finish()
    TM_CUDA(c.op(), cudaMemcpyAsync(Aw->get(), at(sb.A, b * m * n, c.isz()),
                                    static_cast<size_t>(m * n) * c.isz(),
                                    cudaMemcpyDeviceToDevice, c.dc().stream()));
    double herr = 0;
    void* Sb = at(sb.S, b * sb.k, itemsize(sb.rt));
    const cusolverStatus_t st = cusolverDnXgesvdp(
        c.h(), c.params(), jobz, econ, m, n, ty, Aw->get(), m, rty, Sb, ty, u_ptr(b), m, ty,
        v_ptr(b), n, ty, w.dev->get(),
        w.dev_bytes, w.host.data(), w.host_bytes, c.info(b), &herr);
    if (st == CUSOLVER_STATUS_ALLOC_FAILED || st == CUSOLVER_STATUS_INVALID_VALUE)
      throw_cusolver(c.op(), "cusolverDnXgesvdp", st);
    if (st != CUSOLVER_STATUS_SUCCESS) {  // EXECUTION_FAILED, INTERNAL_ERROR seen: redone
      redo.push_back(b);
      continue;
    }
    int info = 0;
    double smax = 0;
    c.dc().copy_to_host(c.info(b), &info, sizeof info);
    if (sb.rt == DType::Float32) {
      float s0 = 0;
      c.dc().copy_to_host(Sb, &s0, sizeof s0);
      smax = s0;
    } else {
      c.dc().copy_to_host(Sb, &smax, sizeof smax);
    }
    if (info != 0 || !(herr <= unit * smax)) redo.push_back(b);
  }
  if (!redo.empty()) gesvd_entries(c, sb, redo);
  sb.finish(c, out);
}

// A square (batch of) matrices: the polar route from kPolarMinCols, gesvdj below.
void svd_square(Call& c, std::span<const ArrayRef> in, std::span<const ArrayRef> out,
                const LinalgArgs& args) {
  const int64_t n = in[0].shape[in[0].ndim() - 1];
  if (n >= kPolarMinCols && polar_svd_enabled()) return svd_polar(c, in, out, args);
  svd_jacobi(c, in, out, args);
}

// Tall matrices (m > n) through a QR factorisation first, as LAPACK's drivers do: A =
// Q R (geqrf), the square R = Ur S Vh by svd_square, U = Q [Ur 0; 0 I] (orgqr, then one
// strided-batched gemm for the first n columns). gesvdj on the tall matrix itself left
// U orthogonal only to 55 n eps (float32) on a rank-deficient 320 x 260 one; through R
// (gesvdp, then gesvd since gesvdp perturbs it) the ratios are below 2. Wide matrices
// come here transposed (svd_wide_qr): `in` and out[0] may be strided views, out[1] (S)
// and out[2] (Vh, written by the square route's unpack) are contiguous.
void svd_tall_qr(Call& c, std::span<const ArrayRef> in, std::span<const ArrayRef> out,
                 const LinalgArgs& args) {
  const ArrayRef& a = in[0];
  const int nd = a.ndim();
  const int64_t m = a.shape[nd - 2], n = a.shape[nd - 1], B = c.count();
  const bool uv = args.compute_uv, full = args.full_matrices;
  const int64_t qcols = full ? m : n, per = m * qcols;
  const DType dt = c.dtype();
  const cudaDataType ty = cuda_type(dt);
  const size_t isz = c.isz();
  auto A = scratch(c.dc(), static_cast<size_t>(B * per) * isz);
  auto tau = scratch(c.dc(), static_cast<size_t>(B * n) * isz);
  c.pack(a, A->get(), dt, m, n, m, per);
  c.check(A->get(), m, per, m, n, 0, false, dt);
  geqrf_batch(c, A, tau, m, n, per);
  // R (row-major n x n, zeros below the diagonal) and the svd of it; S and Vh are the
  // answer's, Ur (row-major) goes to scratch.
  auto R = scratch(c.dc(), static_cast<size_t>(B * n * n) * isz);
  c.unpack(A->get(), m, per, R->get(), n * n, n, n, 2, false, false, dt);
  auto Ur = scratch(c.dc(), static_cast<size_t>(uv ? B * n * n : 1) * isz);
  const std::span<const int64_t> batch = c.batch();
  View rv(R->get(), dt, a.device, batch, n, n, n, 1, n * n);
  View uv_view(Ur->get(), dt, a.device, batch, n, n, n, 1, n * n);
  LinalgArgs inner = args;
  inner.full_matrices = false;  // square: the same factors
  if (uv) {
    const ArrayRef inner_out[3] = {uv_view.ref(), out[1], out[2]};
    svd_square(c, std::span<const ArrayRef>(&rv.ref(), 1), inner_out, inner);
  } else {
    svd_square(c, std::span<const ArrayRef>(&rv.ref(), 1), out, inner);  // raises on failure
    return;
  }
  // Q (m x qcols) in place of A, then its first n columns times Ur.
  const int M = to_int(m, c.op()), QC = to_int(qcols, c.op()), N = to_int(n, c.op());
  const int lwork = orgqr_lwork(c, M, QC, N, A->get(), M, tau->get());
  auto work = scratch(c.dc(), static_cast<size_t>(std::max(lwork, 1)) * isz);
  for (int64_t b = 0; b < B; ++b)
    orgqr(c, M, QC, N, at(A, b * per, isz), M, at(tau, b * n, isz), work, lwork, c.aux_info());
  auto U1 = scratch(c.dc(), static_cast<size_t>(B * m * n) * isz);
  {
    // U1 = Q1 op(Y), Y the column-major view of row-major Ur (= Ur^T): op = transpose.
    cublasHandle_t h = c.dc().blas(c.op());
    std::lock_guard<std::mutex> blas_lock(c.dc().blas_mutex());
    const double one_d[2] = {1.0, 0.0}, zero_d[2] = {0.0, 0.0};
    const float one_f[2] = {1.0f, 0.0f}, zero_f[2] = {0.0f, 0.0f};
    const bool single = c.dtype() == DType::Float32 || c.dtype() == DType::Complex64;
    const void* alpha = single ? static_cast<const void*>(one_f) : one_d;
    const void* beta = single ? static_cast<const void*>(zero_f) : zero_d;
    const cublasComputeType_t ct = single ? CUBLAS_COMPUTE_32F_PEDANTIC : CUBLAS_COMPUTE_64F;
    TM_CUBLAS(c.op(), cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_T, M, N, N, alpha,
                                                 A->get(), ty, M, per, Ur->get(), ty, N, n * n,
                                                 beta, U1->get(), ty, M, m * n,
                                                 to_int(B, c.op()), ct, CUBLAS_GEMM_DEFAULT));
  }
  // The first n columns of each entry's Q become U1 (column-major: one contiguous block).
  TM_CUDA(c.op(), cudaMemcpy2DAsync(A->get(), static_cast<size_t>(per) * isz, U1->get(),
                                    static_cast<size_t>(m * n) * isz,
                                    static_cast<size_t>(m * n) * isz, static_cast<size_t>(B),
                                    cudaMemcpyDeviceToDevice, c.dc().stream()));
  c.unpack_plain(A->get(), dt, m, qcols, 1, m, per, out[0]);
  c.finish(InfoMeaning::NoConvergence);
}

// The view of x (batch..., r, c) as (batch..., c, r): the last two dimensions and their
// strides swapped, the same memory.
class Swapped {
 public:
  explicit Swapped(const ArrayRef& x)
      : shape_(x.shape.begin(), x.shape.end()), strides_(x.strides.begin(), x.strides.end()) {
    const size_t nd = shape_.size();
    std::swap(shape_[nd - 2], shape_[nd - 1]);
    std::swap(strides_[nd - 2], strides_[nd - 1]);
    ref_ = ArrayRef{x.data, x.dtype, shape_, strides_, x.device};
  }
  Swapped(const Swapped&) = delete;
  Swapped& operator=(const Swapped&) = delete;
  const ArrayRef& ref() const { return ref_; }

 private:
  std::vector<int64_t> shape_, strides_;
  ArrayRef ref_;
};

// Wide matrices (m < n) through svd_tall_qr on the transpose (LAPACK's drivers factor
// them as L Q first: the same reduction). With A^T = U' S V'^H (A^T n x m, tall),
// A = (V'^H)^T S U'^T: U = (V'^H)^T = conj(V') and Vh = U'^T, both unitary, with the
// same S. Plain transposes, no conjugation, also for complex A (A^H would need
// conjugation on the way in and out). A^T is a view of the input (the pack into
// column-major scratch reads through strides); U' (n x n full, n x m reduced) is
// written through the transposed view of Vh's output; V'^H (m x m) goes to scratch
// and is copied transposed into U's output (m x m whether full or not). Values only:
// svd_tall_qr's S is the answer. Failures name the same batch entry (the view keeps
// the batch dimensions).
void svd_wide_qr(Call& c, std::span<const ArrayRef> in, std::span<const ArrayRef> out,
                 const LinalgArgs& args) {
  const ArrayRef& a = in[0];
  const int nd = a.ndim();
  const int64_t m = a.shape[nd - 2];
  const Swapped a_t(a);
  const std::span<const ArrayRef> tall_in(&a_t.ref(), 1);
  if (!args.compute_uv) return svd_tall_qr(c, tall_in, out, args);
  const DType dt = c.dtype();
  auto VhT = scratch(c.dc(), static_cast<size_t>(c.count() * m * m) * c.isz());
  View vh_t(VhT->get(), dt, a.device, c.batch(), m, m, m, 1, m * m);  // row-major m x m
  const Swapped u_t(out[2]);
  const ArrayRef tall_out[3] = {u_t.ref(), out[1], vh_t.ref()};
  svd_tall_qr(c, tall_in, tall_out, args);  // raises on failure
  // U(i, j) = V'^H(j, i): V'^H read with row stride 1 and column stride m.
  c.unpack_plain(VhT->get(), dt, m, m, 1, m, m * m, out[0]);
}

// One-sided Jacobi SVD of real matrices up to 32 x 32 with our kernel (tm_la_svd_jacobi,
// linalg_kernels.cpp: one thread block per matrix, float64 arithmetic): on the H100
// it replaces gesvdjBatched (0.78 ms for 512 x 32 x 32 float32). The kernel writes
// S, U and Vh straight into the outputs, and info[b] = 1 when a matrix did not
// converge; NaN/Inf inputs are flagged by tm_la_check and skipped by the kernel.
void svd_small_jacobi(Call& c, std::span<const ArrayRef> in, std::span<const ArrayRef> out,
                      const LinalgArgs& args) {
  const ArrayRef& a = in[0];
  const int nd = a.ndim();
  const int64_t m = a.shape[nd - 2], n = a.shape[nd - 1], k = std::min(m, n), B = c.count();
  const bool uv = args.compute_uv;
  const DType dt = c.dtype();
  auto A = scratch(c.dc(), static_cast<size_t>(B * m * n) * c.isz());
  c.pack(a, A->get(), dt, m, n, m, m * n);
  c.check(A->get(), m, m * n, m, n, 0, false, dt);
  SvdKernelParams p;
  p.a = reinterpret_cast<unsigned long long>(A->get());
  p.s = reinterpret_cast<unsigned long long>((uv ? out[1] : out[0]).data);
  if (uv) {
    p.u = reinterpret_cast<unsigned long long>(out[0].data);
    p.vh = reinterpret_cast<unsigned long long>(out[2].data);
  }
  p.flags = reinterpret_cast<unsigned long long>(c.flags());
  p.info = reinterpret_cast<unsigned long long>(c.info(0));
  p.batch = B, p.m = static_cast<int>(m), p.n = static_cast<int>(n);
  p.full = args.full_matrices ? 1 : 0, p.uv = uv ? 1 : 0;
  p.max_sweeps = 30;
  // Stop at |cos| <= the unit roundoff for float32 (met with room in float64); for
  // float64 at 2 sqrt(max(m, n)) of it, as LAPACK's dgesvj (sqrt(m) eps), with margin
  // for rounding noise. Accepted at the cap: |cos| <= 4 max(m, n) eps.
  const double u = dt == DType::Float32 ? 0x1p-24 : 0x1p-53;
  const double big = static_cast<double>(std::max(m, n));
  p.tol = dt == DType::Float32 ? u : 2.0 * std::sqrt(big) * u;
  p.tol_accept = 4.0 * big * u;
  const Program& prog = c.dc().program(svd_jacobi_kernel_key(dt),
                                       [&] { return svd_jacobi_kernel(dt); }, c.op());
  const unsigned threads = static_cast<unsigned>(32 * (((k + 1) / 2 + 3) / 4));
  c.launch_per_entry(prog[0], threads, 0, p, InfoMeaning::NoConvergence);
}

void svd_op(Call& c, std::span<const ArrayRef> in, std::span<const ArrayRef> out,
            const LinalgArgs& args) {
  const ArrayRef& a = in[0];
  const int nd = a.ndim();
  const int64_t m = a.shape[nd - 2], n = a.shape[nd - 1], k = std::min(m, n), B = c.count();
  const bool uv = args.compute_uv, full = args.full_matrices;
  const int64_t ucols = full ? m : k, vrows = full ? n : k;
  const DType dt = c.dtype();
  if (B == 0) return;
  if (k == 0) {  // empty: U and Vh are identities of their (full) size
    if (uv) {
      c.unpack(nullptr, 1, 0, out[0].data, m * ucols, m, ucols, 4, false, false, dt);
      c.unpack(nullptr, 1, 0, out[2].data, vrows * n, vrows, n, 4, false, false, dt);
    }
    return c.finish(InfoMeaning::Ignore);
  }
  if (!is_complex(dt) && m <= 32 && n <= 32) return svd_small_jacobi(c, in, out, args);
  if (B > 1 && m <= 32 && n <= 32) return svd_batched_jacobi(c, in, out, args);  // complex
  if (m == n) return svd_square(c, in, out, args);
  if (qr_first_enabled())
    return m > n ? svd_tall_qr(c, in, out, args) : svd_wide_qr(c, in, out, args);
  svd_jacobi(c, in, out, args);
}

// ---- eigh (Xsyevd; XsyevBatched for batches of matrices up to 32 x 32) ---------------------
void eigh_op(Call& c, std::span<const ArrayRef> in, std::span<const ArrayRef> out,
             const LinalgArgs& args) {
  const int64_t n = in[0].shape[in[0].ndim() - 1], B = c.count();
  if (n == 0 || B == 0) return c.finish(InfoMeaning::NoConvergence);
  const DType dt = c.dtype(), rt = real_type(dt);
  const cudaDataType ty = cuda_type(dt), rty = cuda_type(rt);
  const bool uv = args.compute_uv;
  const cusolverEigMode_t jobz = uv ? CUSOLVER_EIG_MODE_VECTOR : CUSOLVER_EIG_MODE_NOVECTOR;
  const cublasFillMode_t uplo = args.upper ? CUBLAS_FILL_MODE_UPPER : CUBLAS_FILL_MODE_LOWER;
  auto A = scratch(c.dc(), static_cast<size_t>(B * n * n) * c.isz());
  c.pack(in[0], A->get(), dt, n, n, n, n * n);
  // Only the referenced triangle is read (NaN in the other one is ignored, as on the CPU).
  c.check(A->get(), n, n * n, n, n, args.upper ? 2 : 1, false, dt);
  void* W = out[0].data;
  Work w;
  if (B > 1 && n <= 32) {
    TM_CUSOLVER(c.op(), cusolverDnXsyevBatched_bufferSize(c.h(), c.params(), jobz, uplo, n, ty,
                                                          A->get(), n, rty, W, ty, &w.dev_bytes,
                                                          &w.host_bytes, B));
    w.make(c.dc());
    TM_CUSOLVER(c.op(), cusolverDnXsyevBatched(c.h(), c.params(), jobz, uplo, n, ty, A->get(), n,
                                               rty, W, ty, w.dev->get(), w.dev_bytes,
                                               w.host.data(), w.host_bytes, c.info(0), B));
  } else {
    TM_CUSOLVER(c.op(), cusolverDnXsyevd_bufferSize(c.h(), c.params(), jobz, uplo, n, ty, A->get(),
                                                    n, rty, W, ty, &w.dev_bytes, &w.host_bytes));
    w.make(c.dc());
    for (int64_t b = 0; b < B; ++b)
      TM_CUSOLVER(c.op(), cusolverDnXsyevd(c.h(), c.params(), jobz, uplo, n, ty,
                                           at(A, b * n * n, c.isz()), n, rty,
                                           static_cast<char*>(W) + b * n * itemsize(rt), ty,
                                           w.dev->get(), w.dev_bytes, w.host.data(),
                                           w.host_bytes, c.info(b)));
  }
  if (uv) c.unpack_plain(A->get(), dt, n, n, 1, n, n * n, out[1]);
  c.finish(InfoMeaning::NoConvergence);
}

// ---- solve_triangular (cuBLAS trsm) --------------------------------------------------------
void trsm_op(Call& c, std::span<const ArrayRef> in, std::span<const ArrayRef> out,
             const LinalgArgs& args) {
  const int nd = in[0].ndim();
  const int64_t n = in[0].shape[nd - 1], k = in[1].shape[nd - 1], B = c.count();
  if (n == 0 || k == 0 || B == 0) return c.finish(InfoMeaning::Singular);
  const DType dt = c.dtype();
  auto A = scratch(c.dc(), static_cast<size_t>(B * n * n) * c.isz());
  auto X = scratch(c.dc(), static_cast<size_t>(B * n * k) * c.isz());
  c.pack(in[0], A->get(), dt, n, n, n, n * n);
  c.pack(in[1], X->get(), dt, n, k, n, n * k);
  // The referenced triangle (without the diagonal when it is taken as ones) must be finite;
  // an exact zero on a used diagonal is a singular matrix.
  const int mode = args.upper ? (args.unit_diagonal ? 4 : 2) : (args.unit_diagonal ? 3 : 1);
  c.check(A->get(), n, n * n, n, n, mode, !args.unit_diagonal, dt);
  c.check(X->get(), n, n * k, n, k, 0, false, dt);
  const int N = to_int(n, c.op()), K = to_int(k, c.op());
  const cublasFillMode_t uplo = args.upper ? CUBLAS_FILL_MODE_UPPER : CUBLAS_FILL_MODE_LOWER;
  const cublasDiagType_t diag = args.unit_diagonal ? CUBLAS_DIAG_UNIT : CUBLAS_DIAG_NON_UNIT;
  cublasHandle_t h = c.dc().blas(c.op());
  std::lock_guard<std::mutex> blas_lock(c.dc().blas_mutex());
  for (int64_t b = 0; b < B; ++b)
    trsm_one(c, h, uplo, diag, N, K, at(A, b * n * n, c.isz()), at(X, b * n * k, c.isz()));
  c.unpack_plain(X->get(), dt, n, k, 1, n, n * k, out[0]);
  c.finish(InfoMeaning::Singular);
}

// ---- lu (Xgetrf; pivots and the permutation on the host) ----------------------------------
void lu_op(Call& c, std::span<const ArrayRef> in, std::span<const ArrayRef> out) {
  const ArrayRef& a = in[0];
  const int nd = a.ndim();
  const int64_t m = a.shape[nd - 2], n = a.shape[nd - 1], k = std::min(m, n), B = c.count();
  if (B == 0) return;
  const DType dt = c.dtype();
  auto A = scratch(c.dc(), static_cast<size_t>(B * m * n) * c.isz());
  auto piv = scratch(c.dc(), static_cast<size_t>(B * k) * sizeof(int64_t));
  if (k > 0) {
    c.pack(a, A->get(), dt, m, n, m, m * n);
    c.check(A->get(), m, m * n, m, n, 0, false, dt);
    getrf(c, A, m, n, piv);
    c.unpack_plain(A->get(), dt, m, n, 1, m, m * n, out[0]);
  }
  c.finish(InfoMeaning::Ignore);  // a singular matrix has a valid factorisation
  std::vector<int64_t> hp(static_cast<size_t>(B * k)), perm(static_cast<size_t>(B * m));
  std::vector<int32_t> p0(static_cast<size_t>(B * k));
  if (k > 0) c.dc().copy_to_host(piv->get(), hp.data(), hp.size() * sizeof(int64_t));
  for (int64_t b = 0; b < B; ++b) {
    int64_t* p = perm.data() + b * m;
    for (int64_t i = 0; i < m; ++i) p[i] = i;
    for (int64_t i = 0; i < k; ++i) {
      const int64_t j = hp[static_cast<size_t>(b * k + i)] - 1;
      p0[static_cast<size_t>(b * k + i)] = static_cast<int32_t>(j);
      std::swap(p[i], p[j]);
    }
  }
  if (!p0.empty()) c.dc().copy_from_host(p0.data(), out[1].data, p0.size() * sizeof(int32_t));
  if (!perm.empty()) c.dc().copy_from_host(perm.data(), out[2].data, perm.size() * sizeof(int64_t));
}

// ---- lu_solve (our kernel up to 32 x 32; getrsBatched up to 64; Xgetrs; the 0-based
// ---- int32 pivots checked and converted on the device) ----------------------------------
// Systems up to 32 x 32 (any batch, any number of right-hand sides) take one launch of
// our one-warp kernel (tm_la_lu_solve_small, linalg_kernels.cpp), which reads contiguous
// inputs as they are, checks pivots, NaN/Inf and U's diagonal and solves.
// TMATH_CUDA_LU_SOLVE_SMALL=0 keeps cuBLAS/cuSOLVER (for comparisons).
constexpr int64_t kLuSolveSmallMax = 32;
bool lu_solve_small_enabled() {
  static const bool on = !detail::env_off("TMATH_CUDA_LU_SOLVE_SMALL");
  return on;
}

// lu_solve's pivots as a contiguous int32 array (n per batch entry): the input itself
// when it is one, else a copy into `keep`.
const int* contiguous_pivots(Call& c, const ArrayRef& pv, int64_t n, ScratchPtr& keep) {
  if (pv.dtype == DType::Int32 && pv.is_contiguous()) return static_cast<const int*>(pv.data);
  keep = scratch(c.dc(), static_cast<size_t>(c.count() * n) * sizeof(int32_t));
  std::vector<int64_t> shape(pv.shape.begin(), pv.shape.end()), st(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) st[i] = s, s *= shape[i];
  ArrayRef dst{keep->get(), DType::Int32, shape, st, pv.device};
  copy(c.dc(), pv, dst, c.op());
  return at<int>(keep);
}

void lu_solve_small(Call& c, std::span<const ArrayRef> in, const ArrayRef& out, int64_t n,
                    int64_t k) {
  const DType dt = c.dtype();
  ScratchPtr P, A, X;
  LuSolveKernelParams p;
  p.piv = reinterpret_cast<unsigned long long>(contiguous_pivots(c, in[1], n, P));
  p.a = c.rows_or_packed(in[0], n, n, A, p.a_colmajor);
  p.b = c.rows_or_packed(in[2], n, k, X, p.b_colmajor);
  p.x = reinterpret_cast<unsigned long long>(out.data);
  p.flags = reinterpret_cast<unsigned long long>(c.flags());
  p.batch = c.count(), p.n = static_cast<int>(n), p.k = to_int(k, c.op());
  const Program& prog = c.dc().program(lu_solve_small_kernel_key(dt),
                                       [&] { return lu_solve_small_kernel(dt); }, c.op());
  c.launch_per_entry(prog[0], 32, 0, p, InfoMeaning::Singular);
}

void lusolve_op(Call& c, std::span<const ArrayRef> in, std::span<const ArrayRef> out) {
  const ArrayRef& a = in[0];
  const int nd = a.ndim();
  const int64_t n = a.shape[nd - 1], k = in[2].shape[nd - 1], B = c.count();
  if (n == 0 || k == 0 || B == 0) return c.finish(InfoMeaning::Singular);
  if (n <= kLuSolveSmallMax && lu_solve_small_enabled()) return lu_solve_small(c, in, out[0], n, k);
  const DType dt = c.dtype();
  const cudaDataType ty = cuda_type(dt);
  const bool batched = batched_route(c, n);
  // Pivots: contiguous int32, then checked and made 1-based (int32 for getrsBatched,
  // int64 for Xgetrs); an entry with an out-of-range pivot is flagged (kBadPivots at
  // finish) and its bad pivots replaced, so getrs never reads past a row.
  ScratchPtr pkeep;
  const int* pin = contiguous_pivots(c, in[1], n, pkeep);
  auto piv = scratch(c.dc(),
                     static_cast<size_t>(B * n) * (batched ? sizeof(int32_t) : sizeof(int64_t)));
  c.lu_pivots_in(pin, piv->get(), n, !batched);
  auto A = scratch(c.dc(), static_cast<size_t>(B * n * n) * c.isz());
  auto X = scratch(c.dc(), static_cast<size_t>(B * n * k) * c.isz());
  c.pack(a, A->get(), dt, n, n, n, n * n);
  c.pack(in[2], X->get(), dt, n, k, n, n * k);
  c.check(A->get(), n, n * n, n, n, 0, true, dt);
  c.check(X->get(), n, n * k, n, k, 0, false, dt);
  if (batched) {
    getrs_batched(c, c.pointers(A->get(), n * n), n, at<int>(piv), c.pointers(X->get(), n * k), k);
  } else {
    for (int64_t b = 0; b < B; ++b)
      TM_CUSOLVER(c.op(), cusolverDnXgetrs(c.h(), c.params(), CUBLAS_OP_N, n, k, ty,
                                           at(A, b * n * n, c.isz()), n, at<int64_t>(piv, b * n),
                                           ty, at(X, b * n * k, c.isz()), n, c.aux_info()));
  }
  c.unpack_plain(X->get(), dt, n, k, 1, n, n * k, out[0]);
  c.finish(InfoMeaning::Singular);
}

// ---- eig (Xgeev) ----------------------------------------------------------------------------
// A complex input is factored in complex arithmetic. A real one is factored in real
// arithmetic, as LAPACK's sgeev/dgeev on the CPU do: the eigenvalues come straight into the
// complex output (cuSOLVER's mixed real-A / complex-W form: real eigenvalues and both members
// of each conjugate pair, positive imaginary part first) and the real packed eigenvectors
// are expanded to complex columns on the device (tm_la_eig_vectors), as the CPU backend
// expands dgeev's. The conventions are LAPACK's on both backends: pairs adjacent, positive
// imaginary part first, each vector of unit 2-norm with its largest component real (a
// column's sign can still differ from the CPU's: LAPACK leaves it free).
// Factoring a real matrix as complex instead gives neither the pairing nor the real path's
// order (and real eigenvalues' vectors pick up rounding-level imaginary parts).
void eig_op(Call& c, std::span<const ArrayRef> in, std::span<const ArrayRef> out,
            const LinalgArgs& args) {
  const int64_t n = in[0].shape[in[0].ndim() - 1], B = c.count();
  if (n == 0 || B == 0) return c.finish(InfoMeaning::NoConvergence);
  const DType ct = out[0].dtype;  // complex64 / complex128
  const bool real_in = !is_complex(c.dtype());
  const DType ft = real_in ? real_type(ct) : ct;  // the factored matrix (and VR) dtype
  const size_t csz = itemsize(ct), fsz = itemsize(ft);
  const cudaDataType cty = cuda_type(ct), fty = cuda_type(ft);
  const bool uv = args.compute_uv;
  const cusolverEigMode_t jobvr = uv ? CUSOLVER_EIG_MODE_VECTOR : CUSOLVER_EIG_MODE_NOVECTOR;
  auto A = scratch(c.dc(), static_cast<size_t>(B * n * n) * fsz);
  auto V = scratch(c.dc(), static_cast<size_t>(uv ? B * n * n : 1) * fsz);  // VR, dtype ft
  c.pack(in[0], A->get(), ft, n, n, n, n * n);
  c.check(A->get(), n, n * n, n, n, 0, false, ft);
  void* W = out[0].data;  // complex, n per batch entry
  Work w;
  // A, VL, VR and the compute type: ft; W: complex (for a real A the mixed form).
  TM_CUSOLVER(c.op(), cusolverDnXgeev_bufferSize(c.h(), c.params(), CUSOLVER_EIG_MODE_NOVECTOR,
                                                 jobvr, n, fty, A->get(), n, cty, W, fty, nullptr,
                                                 1, fty, V->get(), n, fty, &w.dev_bytes,
                                                 &w.host_bytes));
  w.make(c.dc());
  for (int64_t b = 0; b < B; ++b)
    TM_CUSOLVER(c.op(), cusolverDnXgeev(c.h(), c.params(), CUSOLVER_EIG_MODE_NOVECTOR, jobvr, n,
                                        fty, at(A, b * n * n, fsz), n, cty,
                                        static_cast<char*>(W) + b * n * static_cast<int64_t>(csz),
                                        fty, nullptr, 1, fty, at(V, uv ? b * n * n : 0, fsz), n,
                                        fty, w.dev->get(), w.dev_bytes, w.host.data(),
                                        w.host_bytes, c.info(b)));
  if (uv) {
    if (real_in) {
      auto Vc = scratch(c.dc(), static_cast<size_t>(B * n * n) * csz);
      c.eig_vectors(V->get(), n, n * n, W, Vc->get(), n * n, n, ft);
      c.unpack_plain(Vc->get(), ct, n, n, 1, n, n * n, out[1]);
    } else {
      c.unpack_plain(V->get(), ct, n, n, 1, n, n * n, out[1]);
    }
  }
  c.finish(InfoMeaning::NoConvergence);
}

}  // namespace

bool linalg_supported(OpCode op, DType dt) {
  (void)op;
  return dt == DType::Float32 || dt == DType::Float64 || dt == DType::Complex64 ||
         dt == DType::Complex128;
}

void linalg(DeviceContext& dc, OpCode op, std::span<const ArrayRef> in,
            std::span<const ArrayRef> out, const LinalgArgs& args) {
  const DType dt = in[0].dtype;
  if (!linalg_supported(op, dt))
    throw UnsupportedError("[" + detail::snake_name(op) + "] the cuda kernel takes float32, "
                           "float64, complex64 or complex128, got " + std::string(dtype_name(dt)));
  Call c(dc, op, in[0], dt);
  switch (op) {
    case OpCode::Solve:
    case OpCode::Inv: solve_op(c, op, in, out); break;
    case OpCode::Det:
    case OpCode::Slogdet: det_op(c, op, in, out); break;
    case OpCode::Cholesky: cholesky_op(c, in, out, args.upper); break;
    case OpCode::Qr: qr_op(c, in, out, args); break;
    case OpCode::Svd: svd_op(c, in, out, args); break;
    case OpCode::Eigh: eigh_op(c, in, out, args); break;
    case OpCode::SolveTriangular: trsm_op(c, in, out, args); break;
    case OpCode::Lu: lu_op(c, in, out); break;
    case OpCode::LuSolve: lusolve_op(c, in, out); break;
    case OpCode::Eig: eig_op(c, in, out, args); break;
    default:
      throw UnsupportedError("[linalg] op " + std::string(op_name(op)) +
                             " is not a linear-algebra kernel");
  }
}

}  // namespace tmath::cuda
