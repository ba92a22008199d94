// The interface a backend author implements, the backend registry, selection
// policy and dispatch statistics.
//
// A backend runs kernels for one device type. The core owns graphs, shapes,
// dtype promotion and output allocation; a backend receives evaluated strided
// views (ArrayRef) and writes into contiguous outputs the core allocated with
// the backend's allocator.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tmath/device.h"
#include "tmath/dtype.h"
#include "tmath/memory.h"
#include "tmath/precision.h"
#include "tmath/tensor.h"

namespace tmath {

// Every primitive kernel a backend may implement.
#define TMATH_UNARY_OPS(X)                                                                   \
  X(Neg)                                                                                     \
  X(Abs) X(Sign) X(Exp) X(Expm1) X(Log) X(Log1p) X(Log2) X(Log10) X(Sqrt) X(Rsqrt) X(Square) \
      X(Reciprocal) X(Sin) X(Cos) X(Tan) X(Asin) X(Acos) X(Atan) X(Sinh) X(Cosh) X(Tanh) X(Asinh) X(Acosh) X(Atanh)     \
          X(Sigmoid) X(Relu) X(Gelu) X(GeluTanh) X(Silu) X(Erf) X(Erfinv) X(Floor) X(Ceil)   \
              X(Round) X(IsNan) X(IsInf) X(IsFinite) X(LogicalNot) X(Real) X(Imag) X(Conj)        \
                  X(BitwiseInvert)
#define TMATH_BINARY_OPS(X)                                                                    \
  X(Add)                                                                                       \
  X(Subtract) X(Multiply) X(Divide) X(FloorDivide) X(Remainder) X(Power) X(Maximum) X(Minimum) \
      X(Atan2) X(Hypot) X(Equal) X(NotEqual) X(Less) X(LessEqual) X(Greater) X(GreaterEqual)   \
          X(LogicalAnd) X(LogicalOr) X(LogicalXor) X(BitwiseAnd) X(BitwiseOr) X(BitwiseXor)     \
              X(BitwiseLeftShift) X(BitwiseRightShift) X(Nextafter) X(GeluGrad) X(GeluTanhGrad)
#define TMATH_REDUCE_OPS(X) X(Sum) X(Prod) X(Max) X(Min) X(Any) X(All)
#define TMATH_OTHER_OPS(X)                                                                   \
  X(ArgMax)                                                                                  \
  X(ArgMin) X(CumSum) X(CumProd) X(Where) X(Copy) X(Fill) X(Arange) X(Softmax) X(LogSoftmax) \
      X(LayerNorm) X(Matmul) X(Take) X(TakeAlongAxis) X(Put) X(PutAdd) X(RandomBits) X(RandomUniform)         \
          X(RandomNormal) X(Solve) X(Inv) X(Det) X(Slogdet) X(Cholesky) X(Qr) X(Svd) X(Eigh) \
              X(SolveTriangular) X(Lu) X(LuSolve) X(Eig)

enum class OpCode : uint16_t {
#define TMATH_X(name) name,
  TMATH_UNARY_OPS(TMATH_X) TMATH_BINARY_OPS(TMATH_X) TMATH_REDUCE_OPS(TMATH_X)
      TMATH_OTHER_OPS(TMATH_X)
#undef TMATH_X
          Count
};
inline constexpr int kNumOpCodes = static_cast<int>(OpCode::Count);
TMATH_API std::string_view op_name(OpCode op);
TMATH_API bool is_unary(OpCode op);
TMATH_API bool is_binary(OpCode op);
TMATH_API bool is_reduce(OpCode op);
// Binary ops whose result is bool (comparisons, logical).
TMATH_API bool is_predicate(OpCode op);

// A strided view of evaluated memory. Strides are in elements.
struct ArrayRef {
  void* data = nullptr;  // element 0 (offset already applied)
  DType dtype = float32;
  std::span<const int64_t> shape;
  std::span<const int64_t> strides;
  Device device;

  int ndim() const { return static_cast<int>(shape.size()); }
  int64_t size() const {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    return n;
  }
  bool is_contiguous() const {
    int64_t expect = 1;
    for (int i = ndim() - 1; i >= 0; --i) {
      if (shape[i] != 1 && strides[i] != expect) return false;
      expect *= shape[i];
    }
    return true;
  }
  template <class T>
  T* ptr() const {
    return static_cast<T*>(data);
  }
};

// Device work recorded once (Backend::begin_capture/end_capture) that replays with
// one launch. It owns the memory the recorded work wrote, including the outputs
// the recording handed out: those return to it when released.
class TMATH_API CapturedWork {
 public:
  virtual ~CapturedWork() = default;
  // True when every block the recording writes is back with it, i.e. no output of
  // its last run is still held, so a replay may overwrite them.
  virtual bool idle() const = 0;
  // Whether p is the start of a block of the recording's memory.
  virtual bool owns(const void* p) const = 0;
  // Replays the work on the device's queue, handing out again the blocks `outputs`
  // (starts of blocks it owns; they return when deallocated). Requires idle().
  virtual void replay(std::span<void* const> outputs) = 0;
  // Device memory the recording keeps.
  virtual uint64_t bytes() const = 0;
  // Operations recorded (kernels, copies, memsets), for logs.
  virtual size_t operations() const { return 0; }
};

class TMATH_API Allocator {
 public:
  virtual ~Allocator() = default;
  // Throws OutOfMemoryError (with stats in the message) after one retry with the cache freed.
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* p, size_t nbytes) = 0;
  virtual MemoryStats stats() const = 0;
  virtual void reset_peak() = 0;
  virtual void empty_cache() = 0;
  virtual void set_limit(uint64_t bytes) = 0;
  // Host<->device transfer accounting (device allocators).
  virtual void count_transfer(bool to_device, uint64_t bytes) { (void)to_device, (void)bytes; }
};

struct MatmulOptions {
  MatmulPrecision precision = MatmulPrecision::Highest;
};

struct LayerNormArgs {
  double eps = 1e-5;
  int64_t inner = 1;  // product of the normalised (trailing) dims
};

// A fused elementwise program (lazy-graph fusion, src/jit): straight-line code
// evaluated independently for every element of one output. Instruction i
// computes value i from earlier values; the last instruction is the output.
struct FusedInstr {
  enum class Kind : uint8_t { Input, Unary, Binary, Where, Cast };
  Kind kind = Kind::Input;
  OpCode op = OpCode::Count;  // Unary, Binary
  DType dtype = float32;      // the value's dtype (Binary: predicates give bool)
  int32_t a = -1, b = -1, c = -1;  // operand values; Input: a = input index
};
struct FusedProgram {
  std::vector<FusedInstr> instrs;
  int num_inputs = 0;
  // A text key that identifies the program (ops, dtypes, operand structure).
  TMATH_API std::string signature() const;
};

struct RandomArgs {
  uint32_t k0 = 0, k1 = 0;
  double a = 0.0, b = 1.0;  // uniform: [a, b); normal: mean a, stddev b
};

// Options of the linear-algebra kernels (Backend::linalg); each op reads only its own.
struct LinalgArgs {
  // Cholesky: return U (A = U^H U) instead of L; Eigh: read the upper triangle;
  // SolveTriangular: a is upper triangular.
  bool upper = false;
  bool full_matrices = false;  // Svd: U (m, m) and Vh (n, n); Qr: complete Q (m, m), R (m, n)
  bool compute_uv = true;      // Svd/Eigh: vectors too (else values only); Qr: Q too (else R only)
  bool unit_diagonal = false;  // SolveTriangular: assume ones on the diagonal
};

struct BackendInfo {
  std::string name;
  bool built = true;
  bool available = true;
  std::string reason;  // why unavailable
  std::vector<std::string> devices;
  std::vector<std::pair<std::string, std::string>> libraries;  // (library, version)
  int threads = 1;
};

class TMATH_API Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual DeviceType device_type() const = 0;
  virtual BackendInfo info() const = 0;
  virtual bool available() const { return true; }
  // Whether this backend has a kernel for `op` with input dtype `dt`.
  virtual bool supports(OpCode op, DType dt) const = 0;
  virtual Allocator& allocator(Device d) = 0;
  virtual void synchronize(Device d) { (void)d; }

  // Copy host memory into `dst` (device-side contiguous) and back.
  virtual void copy_from_host(const void* src, const ArrayRef& dst) = 0;
  virtual void copy_to_host(const ArrayRef& src, void* dst) = 0;
  // Host memory holding src's elements (src is contiguous), shared instead of copied
  // where the device's memory is host memory (MLX's CPU build), or nullptr to have the
  // engine copy. The memory must stay valid and unchanged until release(ptr) is called.
  virtual void* share_with_host(const ArrayRef& src, std::function<void(void*)>& release) {
    (void)src, (void)release;
    return nullptr;
  }

  // Kernels. `out` is contiguous and freshly allocated (or a donated input
  // buffer of the same size); inputs are already broadcast to out's shape
  // (zero strides) for elementwise ops.
  virtual void unary(OpCode op, const ArrayRef& x, const ArrayRef& out) = 0;
  // For predicates out is bool and a/b share a dtype; otherwise a, b, out share a dtype.
  virtual void binary(OpCode op, const ArrayRef& a, const ArrayRef& b, const ArrayRef& out) = 0;
  virtual void where(const ArrayRef& cond, const ArrayRef& a, const ArrayRef& b,
                     const ArrayRef& out) = 0;
  // Strided copy with dtype conversion (dst may be any strided view, non-overlapping).
  virtual void copy(const ArrayRef& src, const ArrayRef& dst) = 0;
  virtual void fill(const ArrayRef& out, Scalar value) = 0;
  // out[i] = start + i * step (flat index), computed in float64 then converted.
  virtual void arange(const ArrayRef& out, double start, double step) = 0;
  // Reduce over `axes` (sorted, unique); out has x's shape with those axes set to 1.
  // Accumulates in accumulate_type(x.dtype) (sum/prod); out.dtype may differ from x.dtype.
  virtual void reduce(OpCode op, const ArrayRef& x, std::span<const int> axes,
                      const ArrayRef& out) = 0;
  // ArgMax/ArgMin along one axis; out: int64 with that axis of size 1.
  virtual void arg_reduce(OpCode op, const ArrayRef& x, int axis, const ArrayRef& out) = 0;
  // CumSum/CumProd along one axis (inclusive).
  virtual void scan(OpCode op, const ArrayRef& x, int axis, const ArrayRef& out) = 0;
  // Softmax/LogSoftmax along the last axis of a contiguous input.
  virtual void softmax(OpCode op, const ArrayRef& x, const ArrayRef& out) = 0;
  // Normalise each contiguous row of args.inner elements; weight/bias may be null (data ==
  // nullptr).
  virtual void layer_norm(const ArrayRef& x, const ArrayRef& weight, const ArrayRef& bias,
                          const LayerNormArgs& args, const ArrayRef& out) = 0;
  // a: (batch..., m, k), b: (batch..., k, n), batch dims already broadcast to out's
  // (strides may be 0); out: (batch..., m, n) contiguous.
  virtual void matmul(const ArrayRef& a, const ArrayRef& b, const ArrayRef& out,
                      const MatmulOptions& opts) = 0;
  // Take: out = x[..., idx[j], ...] along `axis` with int64 idx (already wrapped, checked).
  // TakeAlongAxis: idx has out's shape.
  virtual void take(OpCode op, const ArrayRef& x, const ArrayRef& idx, int axis,
                    const ArrayRef& out) = 0;
  // Put/PutAdd (scatter): out is contiguous and already holds the input's values;
  // out.flat[idx[j]] = values[j] (Put; with repeated positions one of the values wins)
  // or += values[j] (PutAdd), for 1-d int64 idx (already wrapped and checked) and 1-d
  // values of idx's length and out's dtype (strides may be 0).
  virtual void put(OpCode op, const ArrayRef& idx, const ArrayRef& values, const ArrayRef& out);
  // RandomBits/RandomUniform/RandomNormal: element i of the flat output uses Philox
  // counter i (see src/core/philox.h for the exact stream).
  virtual void random(OpCode op, const RandomArgs& args, const ArrayRef& out) = 0;
  // Linear algebra (Solve ... Eig) on float32/float64/complex64/complex128.
  // Inputs are strided (batch..., rows, cols) with equal batch shapes; they must stay intact.
  // Outputs are contiguous, in order:
  //   Solve(a (n,n), b (n,k)) -> x (n,k)       Inv(a) -> inv (n,n)
  //   Det(a) -> det ()                          Slogdet(a) -> sign (), logabsdet () real
  //   Cholesky(a) -> L or U (n,n)               Qr(a (m,n)) -> [q (m,k|m)], r (k|m, n)
  //   Svd(a (m,n)) -> [u (m,k|m)], s (k) real, [vh (k|n, n)]    (k = min(m, n))
  //   Eigh(a) -> w (n) real ascending, [v (n,n) eigenvectors in columns]
  //   SolveTriangular(a (n,n), b (n,k)) -> x (n,k)
  //   Lu(a (m,n)) -> lu (m,n) (L unit lower, U upper packed), piv (k) int32 0-based row
  //     interchanges (row i was swapped with piv[i]), perm (m) int64 (a[perm] = L U)
  //   LuSolve(lu (n,n), piv (n) int32, b (n,k)) -> x (n,k)
  //   Eig(a (n,n) real or complex) -> w (n) complex, [v (n,n) complex, unit columns]
  // Failures throw LinAlgError naming the op and the batch index (singular matrix, not
  // positive definite, no convergence, non-finite input). Default: UnsupportedError.
  virtual void linalg(OpCode op, std::span<const ArrayRef> inputs,
                      std::span<const ArrayRef> outputs, const LinalgArgs& args);

  // Called when eval() has run every kernel behind `root`, a tensor the caller asked for,
  // on this backend's device: a backend that records work lazily (mlx) starts computing
  // it here without waiting, as a queued kernel would. Default: nothing.
  virtual void commit(const ArrayRef& root) { (void)root; }

  // Fused elementwise programs (src/jit). `inputs` are broadcast to out's shape
  // (zero strides), with the dtypes of the program's Input instructions; out is
  // contiguous and may share its buffer with an input of the same layout (each
  // element reads its inputs before the output is written). supports_fused says
  // whether fused() runs `p` here; when no backend does, the ops run one by one.
  virtual bool supports_fused(const FusedProgram& p) const {
    (void)p;
    return false;
  }
  virtual void fused(const FusedProgram& p, std::span<const ArrayRef> inputs, const ArrayRef& out);

  // ---- profiling hooks (`tmath profile`, bench/) ----
  // Milliseconds per call of fn, which queues work on device d, timed by the
  // device's own clock over `reps` back-to-back calls after one synchronisation.
  // Default: wall time of the calls plus a final synchronize(d), divided by reps.
  virtual double time_ms(Device d, const std::function<void()>& fn, int reps);
  // The backend's native library called directly on one profile case, on the
  // engine's own input arrays (contiguous, on this backend's device): "matmul"
  // (inputs a, b of shape (n, n); cuBLAS on CUDA), "copy" (input x: a
  // device-to-device copy of its bytes), "launch" (inputs a, b: the raw launch of
  // the backend's add kernel, the floor of per-op overhead). Returns the
  // reference's name and a callable that queues one call on the device (it owns
  // whatever it needs: handles, output buffers), to be timed with time_ms like
  // the engine; nothing when the backend has no such reference.
  struct NativeReference {
    std::string name;
    std::function<void()> run;
  };
  virtual std::optional<NativeReference> native_reference(std::string_view op,
                                                          std::span<const ArrayRef> inputs,
                                                          MatmulPrecision precision);

  // ---- recorded replay (compile(): CUDA graphs) ----
  // Starts recording the work the calling thread queues on device d instead of
  // running it; memory allocated meanwhile comes from a pool private to the
  // recording. Operations that need the host (copies to or from it, waits,
  // solvers that report status) throw while recording. False: the backend cannot
  // record (the default).
  virtual bool begin_capture(Device d) {
    (void)d;
    return false;
  }
  // Ends the recording begun by begin_capture on this thread. With keep == false, or
  // when the device refused the recording, returns nullptr and says why in `why`.
  virtual std::unique_ptr<CapturedWork> end_capture(Device d, bool keep, std::string& why) {
    (void)d, (void)keep;
    why = "the backend does not record work";
    return nullptr;
  }
  // Lanes of a recording: while this thread records work on device d, the work may
  // be split over lanes that run side by side in the replays. lanes(d) is how many
  // there are now (1, the default: everything in order). set_lane(d, 1) queues the
  // work that follows on the second lane, after everything queued so far on either
  // lane; set_lane(d, 0) queues it on the first lane again, after that lane's
  // earlier work only. join_lanes(d) orders everything queued later after both
  // lanes and returns to the first. Memory that second-lane work reads or writes
  // must stay held until join_lanes (the graph evaluator does that).
  virtual int lanes(Device d) {
    (void)d;
    return 1;
  }
  virtual void set_lane(Device d, int lane) { (void)d, (void)lane; }
  virtual void join_lanes(Device d) { (void)d; }

  // ---- interop with other libraries' queues (DLPack) ----
  // The handle of the queue the engine runs device d's work on, as an integer (CUDA:
  // its cudaStream_t); 0 where work is not queued (the default).
  virtual uintptr_t native_stream(Device d) {
    (void)d;
    return 0;
  }
  // Orders a foreign queue of device d (a handle as above; CUDA also takes 1 and 2, the
  // legacy and per-thread default streams, as DLPack does) against the engine's without
  // blocking the host. foreign_waits: work queued later on `stream` waits for the engine's
  // work queued so far; otherwise the engine's later work waits for what `stream` has
  // queued so far. Default: synchronize(d) when foreign_waits, else nothing.
  virtual void order_with_stream(Device d, uintptr_t stream, bool foreign_waits) {
    (void)stream;
    if (foreign_waits) synchronize(d);
  }
};

// ---- registry and selection ------------------------------------------------
// Registers a backend (the engine keeps it alive). Later registrations with the
// same name replace earlier ones.
TMATH_API void register_backend(std::shared_ptr<Backend> b);
TMATH_API void unregister_backend(std::string_view name);
TMATH_API std::vector<std::shared_ptr<Backend>> backends();
TMATH_API std::shared_ptr<Backend> get_backend(std::string_view name);
// Loads a backend that loads on demand ("torch": LibTorch, about a second to load; it
// registers "torch" on the cpu device and "torch:cuda" on cuda devices) and returns
// whether it is available (else get_backend(name)->info().reason says why). For the
// backends loaded at start-up (cpu, cuda, mlx) it only answers that. Throws ValueError
// for an unknown name.
TMATH_API bool load_backend(std::string_view name);
// Preferred order of backend names; those not listed follow in registration order. A
// name also ranks the backends named "<name>:..." ("torch" covers "torch:cuda").
// Env TMATH_BACKEND=name puts one first.
TMATH_API void set_backend_priority(const std::vector<std::string>& names);
TMATH_API std::vector<std::string> backend_priority();
// The backend that would run `op` on dtype `dt` on `device` (nullptr if none).
TMATH_API Backend* select_backend(OpCode op, DType dt, Device device);

// How run_primitive picks among the available backends of a tensor's device that all
// support an op (cpu and torch on the cpu device; cuda and torch:cuda on a GPU):
//   Priority: the first in backend_priority() order (the default; select_backend()
//     always answers this way).
//   Cost: the measured cheapest. For each (device, op, dtype, size class: elements
//     rounded to a power of two) the first calls run on each candidate in turn
//     (kCostSamples each; device backends synchronised around the timed call), then
//     every later call runs on the one with the lowest time. Calibrations are counted
//     (DispatchStats::cost_calibrations), the choices are in cost_table() and logged
//     with TMATH_LOG=dispatch. Results can differ in the last bits between backends.
//     Small linear-algebra problems on a device tensor (at most 128 x 128 per matrix,
//     2^20 input elements in all) have the cpu backend as one more candidate: host
//     placement, with the inputs copied to the host and the results back, listed as
//     "cpu (host)" and counted in DispatchStats::host_placements.
// Env TMATH_SELECT=priority|cost.
enum class SelectionPolicy : uint8_t { Priority, Cost };
inline constexpr int kCostSamples = 3;
TMATH_API void set_selection_policy(SelectionPolicy p);
TMATH_API SelectionPolicy selection_policy();
// One row of the cost model: the candidates' best measured times (ms; NaN while not yet
// measured) and the chosen backend (empty while calibrating).
struct CostEntry {
  std::string device, op, dtype;
  int64_t size_class = 0;  // 2^k elements
  std::vector<std::pair<std::string, double>> ms;
  std::string chosen;
};
TMATH_API std::vector<CostEntry> cost_table();
// Forgets every measurement (the next calls calibrate again).
TMATH_API void reset_cost_table();

// What happens when no backend on the tensor's device supports an op:
// Allow: run on the CPU backend with copies, counted; Warn: the same, logged once
// per (op, dtype); Error: UnsupportedError. Env TMATH_FALLBACK=allow|warn|error.
enum class FallbackPolicy : uint8_t { Allow, Warn, Error };
TMATH_API void set_fallback_policy(FallbackPolicy p);
TMATH_API FallbackPolicy fallback_policy();

struct DispatchStats {
  uint64_t nodes_evaluated = 0;   // primitives run
  uint64_t kernels_launched = 0;  // backend kernel calls
  uint64_t fallbacks = 0;         // ops run away from their device (cross-device)
  uint64_t upcasts = 0;           // ops run in float32 for a f16/bf16 input
  uint64_t donated_buffers = 0;   // outputs written in place of a dead input
  uint64_t graph_evals = 0;       // eval() passes
  uint64_t cost_calibrations = 0; // timed runs of the cost model (SelectionPolicy::Cost)
  uint64_t host_placements = 0;   // device-tensor ops the cost model ran on the host
};
TMATH_API DispatchStats dispatch_stats();
TMATH_API void reset_dispatch_stats();

}  // namespace tmath
