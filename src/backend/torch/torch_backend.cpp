// The torch backends: tmath primitives on LibTorch (ATen) kernels, built as the plugin
// libtmath_torch.so. It is heavy to load (libtorch_cpu alone takes about a second), so
// libtmath loads it on demand (tmath::load_backend("torch"), TMATH_BACKEND=torch,
// TMATH_TORCH=1; src/core/plugin_loader.cpp) and then calls tmath_torch_register().
//
// "torch" runs on the cpu device and, where LibTorch was built with CUDA and the
// engine's cuda backend is available, "torch:cuda" runs on cuda devices. Both work on
// the engine's own memory of that device: an input is an ATen tensor over the engine's
// buffer (at::from_blob with its strides: zero strides for broadcasts, no copy), and the
// kernel writes its result straight into the output buffer through ATen's out= variants.
// So a tensor never leaves its device between ops, tensors move between the native
// backend and the torch one without any copy, and ops the torch backend does not claim
// in supports() run on the native backend of the same device (again without copies;
// `tmath info --fallbacks` lists them). On CUDA every ATen call runs on the engine's
// stream (a CUDAStreamGuard over it), so the engine's ordering and timing hold.
//
// Linear algebra runs through ATen's torch.linalg functions (linalg_solve_ex, linalg_eigh,
// ...; see linalg_op below). ATen never sees a NaN/Inf: every matrix of the batch is checked
// first and a failing one replaced by the identity (or zeros), so the others still run and
// the error names the lowest failing batch index with the native backends' wording.
#include <ATen/ATen.h>
#include <ATen/CPUFunctions.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

#ifdef TMATH_TORCH_CUDA
#include <ATen/CUDAFunctions.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <array>
#include <atomic>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "core/dispatch.h"
#include "core/linalg_text.h"
#include "tmath/backend.h"
#include "tmath/error.h"

namespace tmath::torchb {
namespace {

// LibTorch (1.13) has no uint16/uint32/uint64: this backend claims no op on them,
// and casts to or from them go to the native backend. Nor sums, products and their
// scans of uint8: their result is uint64 (accumulate_type), so they stay native too.
bool has_at(DType dt) {
  return dt != DType::UInt16 && dt != DType::UInt32 && dt != DType::UInt64;
}

at::ScalarType to_at(DType dt) {
  switch (dt) {
    case DType::Bool: return at::kBool;
    case DType::Int8: return at::kChar;
    case DType::Int16: return at::kShort;
    case DType::Int32: return at::kInt;
    case DType::Int64: return at::kLong;
    case DType::UInt8: return at::kByte;
    case DType::Float16: return at::kHalf;
    case DType::BFloat16: return at::kBFloat16;
    case DType::Float32: return at::kFloat;
    case DType::Float64: return at::kDouble;
    case DType::Complex64: return at::kComplexFloat;
    case DType::Complex128: return at::kComplexDouble;
    case DType::UInt16: case DType::UInt32: case DType::UInt64:
      throw UnsupportedError("[torch] LibTorch has no dtype " + std::string(dtype_name(dt)));
  }
  return at::kFloat;
}

at::IntArrayRef dims(std::span<const int64_t> s) {
  return at::IntArrayRef(s.data(), s.size());
}

// LibTorch's float32 matmul precision for the engine's policy: highest = strict
// float32, high = TF32, medium = bfloat16 tensor-core products.
const char* precision_mode(MatmulPrecision p) {
  return p == MatmulPrecision::Highest ? "highest" : p == MatmulPrecision::High ? "high" : "medium";
}

// Sets LibTorch's float32 matmul precision for the policy, only when it differs (setting
// it parses the mode name and updates several per-backend settings, which costs about
// as much as launching a small matmul).
void use_matmul_precision(MatmulPrecision p) {
  const at::Float32MatmulPrecision want = p == MatmulPrecision::Highest ? at::Float32MatmulPrecision::HIGHEST
                                          : p == MatmulPrecision::High  ? at::Float32MatmulPrecision::HIGH
                                                                        : at::Float32MatmulPrecision::MEDIUM;
  if (at::globalContext().float32MatmulPrecision() != want)
    at::globalContext().setFloat32MatmulPrecision(precision_mode(p));
}

// The hot elementwise, row and product kernels are called through ATen's per-device
// entry points (at::cpu::add_out, at::cuda::add_out, ...): the same kernels the
// dispatcher picks for dense tensors, without its per-call key lookups, which cost about
// a third of a small call. The views are plain dense tensors of one device, so the
// dispatcher would choose exactly these; the other ops keep the dispatcher.
#ifdef TMATH_TORCH_CUDA
#define TT_DIRECT(fn, out, ...) \
  ((out).is_cuda() ? at::cuda::fn(out, __VA_ARGS__) : at::cpu::fn(out, __VA_ARGS__))
#else
#define TT_DIRECT(fn, out, ...) at::cpu::fn(out, __VA_ARGS__)
#endif

// Runs fn, turning LibTorch's exceptions into the engine's (named after the op).
template <class F>
void guarded(std::string_view op, F&& fn) {
  auto msg = [&](const c10::Error& e) {
    return "[" + std::string(op) + "] torch: " + e.what_without_backtrace();
  };
  try {
    fn();
  } catch (const c10::OutOfMemoryError& e) {
    throw OutOfMemoryError(msg(e));
  } catch (const c10::LinAlgError& e) {
    throw LinAlgError(msg(e));
  } catch (const c10::TypeError& e) {
    throw DTypeError(msg(e));
  } catch (const c10::NotImplementedError& e) {
    throw UnsupportedError(msg(e));
  } catch (const c10::IndexError& e) {
    throw ValueError(msg(e));
  } catch (const c10::ValueError& e) {
    throw ValueError(msg(e));
  } catch (const c10::Error& e) {
    throw Error(msg(e));
  }
}

// ---- linear algebra ----------------------------------------------------------------
// Why a batch entry failed and its words: the codes shared with the mlx backend
// (core/linalg_text.h).
using detail::kBadPivots;
using detail::kNoConvergence;
using detail::kNonFinite;
using detail::kNotPositiveDefinite;
using detail::kOk;
using detail::kSingular;
using detail::linalg_fail_text;

// The batch entries of one linear-algebra call: a status per entry (kOk or the first
// failure found), kept on the device and read back once, and what to run ATen on instead
// of a failing entry.
class LinalgBatch {
 public:
  // a: the first input (batch..., rows, cols).
  LinalgBatch(OpCode op, const at::Tensor& a)
      : name_("[" + detail::snake_name(op) + "] "),
        batch_(a.sizes().begin(), a.sizes().end() - 2) {
    for (int64_t d : batch_) count_ *= d;
    status_ = at::zeros({count_}, a.options().dtype(at::kInt));
  }

  int64_t count() const { return count_; }

  // (count,) bool: the matrices of m (batch..., r, c) holding a NaN or Inf.
  at::Tensor nonfinite(const at::Tensor& m) const {
    const int64_t r = m.size(-2), c = m.size(-1);
    return at::logical_not(at::isfinite(m).reshape({count_, r * c}).all(1));
  }
  // (count,) bool: the square matrices of m with an exact zero on the diagonal.
  at::Tensor zero_diagonal(const at::Tensor& m) const {
    const int64_t n = std::min(m.size(-2), m.size(-1));
    return m.diagonal(0, -2, -1).eq(0).reshape({count_, n}).any(1);
  }
  // Records `code` for the entries in `bad` that have not failed yet.
  void flag(const at::Tensor& bad, detail::LinalgFail code) {
    status_.masked_fill_(bad.logical_and(status_.eq(0)), code);
  }
  // Records `code` for the entries whose ATen info is positive.
  void flag_info(const at::Tensor& info, detail::LinalgFail code) {
    flag(info.reshape({count_}).gt(0), code);
  }
  // m with the matrices of the entries in `bad` replaced: by the identity (rectangular:
  // ones on the main diagonal) or by zeros.
  at::Tensor clean(const at::Tensor& m, const at::Tensor& bad, bool identity) const {
    std::vector<int64_t> shape(batch_);
    shape.insert(shape.end(), {1, 1});
    const at::Tensor repl = identity ? at::eye(m.size(-2), m.size(-1), m.options())
                                     : at::zeros({}, m.options());
    return at::where(bad.view(shape), repl, m);
  }

  // Throws LinAlgError for the lowest failing batch entry; `aten_failed` is the flat batch
  // entry an ATen call reported as not converging (-1: none).
  void finish(int64_t aten_failed = -1) const {
    if (count_ == 0) return;
    const at::Tensor host = status_.to(at::kCPU).contiguous();  // the one read-back
    const int32_t* s = host.data_ptr<int32_t>();
    for (int64_t b = 0; b < count_; ++b) {
      int32_t f = s[b];
      if (f == kOk && b == aten_failed) f = kNoConvergence;
      if (f != kOk) throw LinAlgError(name_ + linalg_fail_text(f) + where(b));
    }
    if (aten_failed >= 0)
      throw LinAlgError(name_ + linalg_fail_text(kNoConvergence) + where(aten_failed));
  }

  // " (batch index (i, j))" for flat entry b, as the native backends write it.
  std::string where(int64_t b) const { return detail::batch_index_text(batch_, b); }

 private:
  std::string name_;
  std::vector<int64_t> batch_;
  int64_t count_ = 1;
  at::Tensor status_;
};

// The flat batch entry that an ATen linalg error names ("linalg.svd: (Batch element 3):
// The algorithm failed to converge ..."); 0 for an unbatched call.
int64_t aten_batch_element(const c10::Error& e) {
  const std::string msg = e.what_without_backtrace();
  const std::string key = "Batch element ";
  const size_t at = msg.find(key);
  if (at == std::string::npos) return 0;
  return std::strtoll(msg.c_str() + at + key.size(), nullptr, 10);
}

class TorchBackend final : public Backend {
 public:
  // native: the name of the engine's backend of the same device type ("cpu", "cuda"),
  // whose memory, transfers and queue this backend shares. It is looked up on first use:
  // the plugin may load while libtmath is still registering its own backends.
  TorchBackend(std::string name, DeviceType type, std::string native)
      : name_(std::move(name)), type_(type), native_name_(std::move(native)) {
    for (auto& v : probed_) v.store(-1, std::memory_order_relaxed);
  }

  std::string_view name() const override { return name_; }
  DeviceType device_type() const override { return type_; }

  BackendInfo info() const override {
    BackendInfo i;
    i.name = name_;
    if (type_ == DeviceType::CPU) {
      i.devices.push_back("cpu (ATen kernels on the engine's host memory)");
    } else {
#ifdef TMATH_TORCH_CUDA
      for (int d = 0; d < static_cast<int>(at::cuda::device_count()); ++d)
        i.devices.push_back("cuda:" + std::to_string(d) + " " +
                            at::cuda::getDeviceProperties(d)->name +
                            " (ATen kernels on the engine's memory and stream)");
#endif
    }
    i.libraries.emplace_back("LibTorch", TORCH_VERSION);
    i.threads = at::get_num_threads();
    return i;
  }

  bool supports(OpCode op, DType dt) const override {
    if (!claims(op, dt)) return false;
    if (!is_unary(op) && !is_binary(op) && !detail::is_linalg_op(op)) return true;
    // Elementwise kernels differ between LibTorch builds (e.g. float16 math on the CPU
    // before 2.x), and so do linear-algebra ones (e.g. eig on CUDA without MAGMA): one call
    // on a one-element tensor (a 2 x 2 identity), once per (op, dtype), says.
    auto& known = probed_[static_cast<size_t>(op) * kNumDTypes + static_cast<size_t>(dt)];
    int8_t k = known.load(std::memory_order_relaxed);
    if (k < 0) {
      k = probe(op, dt) ? 1 : 0;
      known.store(k, std::memory_order_relaxed);
    }
    return k == 1;
  }

 private:
  bool probe(OpCode op, DType dt) const {
    at::AutoDispatchBelowADInplaceOrView below_autograd;  // as run() calls the kernels
    try {
      auto opts = at::TensorOptions().dtype(to_at(dt));
      if (type_ == DeviceType::CUDA) opts = opts.device(at::Device(at::kCUDA, 0));
      if (detail::is_linalg_op(op)) {
        probe_linalg(op, at::eye(2, opts));
        return true;
      }
      at::Tensor x = at::ones({1}, opts);
      at::Tensor o = at::empty({1}, is_predicate(op) || op == OpCode::IsNan ||
                                            op == OpCode::IsInf || op == OpCode::IsFinite
                                        ? opts.dtype(at::kBool)
                                    : op == OpCode::Real || op == OpCode::Imag
                                        ? opts.dtype(at::toRealValueType(to_at(dt)))
                                        : opts);
      if (is_unary(op))
        unary_op(op, x, o);
      else
        binary_op(op, x, x, o);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

  // One call of the ATen function(s) behind a linear-algebra op (supports()).
  static void probe_linalg(OpCode op, const at::Tensor& a) {
    using O = OpCode;
    switch (op) {
      case O::Solve: (void)at::linalg_solve_ex(a, a); break;
      case O::Inv: (void)at::linalg_inv_ex(a); break;
      case O::Det: (void)at::linalg_det(a); break;
      case O::Slogdet: (void)at::linalg_slogdet(a); break;
      case O::Cholesky: (void)at::linalg_cholesky_ex(a); break;
      case O::Qr: (void)at::linalg_qr(a, "complete"); break;
      case O::Svd: (void)at::linalg_svd(a, false); break;
      case O::Eigh: (void)at::linalg_eigh(a, "L"); break;
      case O::SolveTriangular: (void)at::linalg_solve_triangular(a, a, true); break;
      case O::Lu: (void)at::linalg_lu_factor_ex(a); break;
      case O::LuSolve: {
        auto f = at::linalg_lu_factor_ex(a);
        (void)at::linalg_lu_solve(std::get<0>(f), std::get<1>(f), a);
        break;
      }
      case O::Eig: (void)at::linalg_eig(a); break;
      default: throw UnsupportedError("not a linear-algebra op");
    }
  }

  // What this backend runs, before asking LibTorch (supports()).
  bool claims(OpCode op, DType dt) const {
    using O = OpCode;
    if (!has_at(dt)) return false;
    const bool F = is_floating(dt);
    const bool I = is_integral(dt);
    const bool B = dt == DType::Bool;
    const bool C = is_complex(dt);
    const bool low = is_low_precision(dt);
    switch (op) {
      case O::Neg: return I || F || C;
      case O::Abs: case O::Square: return I || F || C;
      case O::Sign: case O::Relu: return I || F;
      case O::Exp: case O::Log: case O::Sqrt: case O::Rsqrt: case O::Reciprocal: case O::Sin:
      case O::Cos: case O::Tan: case O::Sinh: case O::Cosh: case O::Tanh:
        return F || C;
      case O::Expm1: case O::Log1p: case O::Log2: case O::Log10: case O::Asin: case O::Acos:
      case O::Atan: case O::Sigmoid: case O::Gelu: case O::GeluTanh: case O::Silu: case O::Erf:
      case O::Erfinv: case O::Floor: case O::Ceil: case O::Round:
        return F;
      case O::IsNan: case O::IsInf: case O::IsFinite: return F;
      case O::LogicalNot: return B;
      case O::Real: case O::Imag: case O::Conj: return C;
      case O::Add: case O::Subtract: case O::Multiply: return I || F || C;
      case O::Divide: return F || C;
      case O::Power: return F;
      case O::FloorDivide: case O::Remainder: case O::Atan2: case O::Hypot: return F;
      // LibTorch's tanh-form gelu_backward loses the result to cancellation in 1 + tanh u
      // for x << 0 (tests/backend_ops): the native backends run it.
      case O::GeluGrad: return F;
      case O::Nextafter: return F && !low;  // float16/bfloat16: the native bit stepping
      case O::Maximum: case O::Minimum: return I || F;
      case O::Equal: case O::NotEqual: return B || I || F || C;
      case O::Less: case O::LessEqual: case O::Greater: case O::GreaterEqual: return I || F;
      case O::LogicalAnd: case O::LogicalOr: case O::LogicalXor: return B;
      case O::BitwiseAnd: case O::BitwiseOr: case O::BitwiseXor: case O::BitwiseInvert:
        return B || I;
      // Shifts stay with the native backend: LibTorch's kernels shift with C++'s << and >>,
      // without NumPy's results for counts outside [0, bits).
      case O::Where: return true;
      case O::Copy: case O::Fill: return true;
      case O::Arange: return I || F;
      case O::Sum: case O::Prod: return (B || I || F || C) && has_at(accumulate_type(dt));
      case O::Any: case O::All: return B || I || F;
      case O::Max: case O::Min: return I || F;
      case O::ArgMax: case O::ArgMin: return I || F;
      case O::CumSum: case O::CumProd: return (I || F) && has_at(accumulate_type(dt));
      case O::Softmax: case O::LogSoftmax: return F && !low;
      case O::LayerNorm: return F && !low;
      case O::Matmul: return (F && !low) || C;
      case O::Take: case O::TakeAlongAxis: return true;
      case O::Put: return true;
      case O::PutAdd: return !B;  // ATen's accumulate adds bools as integers
      case O::Solve: case O::Inv: case O::Det: case O::Slogdet: case O::Cholesky: case O::Qr:
      case O::Svd: case O::Eigh: case O::SolveTriangular: case O::Lu: case O::LuSolve:
      case O::Eig:
        return (F && !low) || C;
      default:
        // The Philox random streams (bit-identical with the native backends only
        // there): the native backend.
        return false;
    }
  }

 public:
  Allocator& allocator(Device d) override { return native().allocator(d); }
  void synchronize(Device d) override { native().synchronize(d); }
  void copy_from_host(const void* src, const ArrayRef& dst) override {
    native().copy_from_host(src, dst);
  }
  void copy_to_host(const ArrayRef& src, void* dst) override { native().copy_to_host(src, dst); }
  double time_ms(Device d, const std::function<void()>& fn, int reps) override {
    return native().time_ms(d, fn, reps);
  }
  uintptr_t native_stream(Device d) override { return native().native_stream(d); }
  void order_with_stream(Device d, uintptr_t stream, bool foreign_waits) override {
    native().order_with_stream(d, stream, foreign_waits);
  }

  void unary(OpCode op, const ArrayRef& x, const ArrayRef& out) override {
    run(op_name(op), out.device, [&] { unary_op(op, view(x), view(out)); });
  }

  void binary(OpCode op, const ArrayRef& a, const ArrayRef& b, const ArrayRef& out) override {
    run(op_name(op), out.device, [&] { binary_op(op, view(a), view(b), view(out)); });
  }

  void where(const ArrayRef& c, const ArrayRef& a, const ArrayRef& b,
             const ArrayRef& out) override {
    run("where", out.device, [&] {
      at::Tensor cond = view(c);
      if (cond.scalar_type() != at::kBool) cond = cond.ne(0);
      at::Tensor o = view(out);
      at::where_out(o, cond, view(a), view(b));
    });
  }

  void copy(const ArrayRef& src, const ArrayRef& dst) override {
    if (!has_at(src.dtype) || !has_at(dst.dtype)) return native().copy(src, dst);
    run("copy", dst.device, [&] {
      at::Tensor s = view(src);
      // A complex value converts to a real dtype through its real part (no warning).
      if (s.is_complex() && !is_complex(dst.dtype)) s = at::real(s);
      view(dst).copy_(s);
    });
  }

  void fill(const ArrayRef& out, Scalar v) override {
    run("fill", out.device, [&] {
      at::Tensor o = view(out);
      switch (v.kind()) {
        case Scalar::Kind::Bool: o.fill_(v.as_int() != 0); break;
        case Scalar::Kind::Int: o.fill_(v.as_int()); break;
        case Scalar::Kind::Float: o.fill_(v.as_double()); break;
        case Scalar::Kind::Complex: {
          const auto z = v.as_complex();
          if (o.is_complex())
            o.fill_(c10::complex<double>(z.real(), z.imag()));
          else
            o.fill_(z.real());
          break;
        }
      }
    });
  }

  void arange(const ArrayRef& out, double start, double step) override {
    run("arange", out.device, [&] {
      at::Tensor o = view(out).view({-1});
      at::Tensor idx = at::arange(o.numel(), o.options().dtype(at::kDouble));
      o.copy_(idx.mul_(step).add_(start));  // float64, then converted (the contract)
    });
  }

  void reduce(OpCode op, const ArrayRef& x, std::span<const int> axes,
              const ArrayRef& out) override {
    if (!has_at(x.dtype) || !has_at(out.dtype)) return native().reduce(op, x, axes, out);
    run(op_name(op), out.device, [&] {
      at::Tensor a = view(x), o = view(out);
      if (axes.empty()) {  // torch reads an empty axis list as "all axes"
        o.copy_(a);
        return;
      }
      std::vector<int64_t> ax(axes.begin(), axes.end());
      switch (op) {
        case OpCode::Sum: {
          // float16/bfloat16 accumulate in float32 (the engine's accumulate_type)
          if (is_low_precision(x.dtype)) {
            o.copy_(at::sum(a, ax, true, at::kFloat));
          } else {
            at::sum_out(o, a, ax, true, o.scalar_type());
          }
          break;
        }
        case OpCode::Max: at::amax_out(o, a, ax, true); break;
        case OpCode::Min: at::amin_out(o, a, ax, true); break;
        case OpCode::Prod: case OpCode::Any: case OpCode::All: {
          // One axis at a time (LibTorch reduces these over a single dim).
          // float16/bfloat16 products accumulate in float32, the others in out's dtype.
          at::Tensor r = op == OpCode::Prod ? a.to(is_low_precision(x.dtype) ? at::kFloat
                                                                              : o.scalar_type())
                                            : a;
          for (int64_t d : ax)
            r = op == OpCode::Prod ? at::prod(r, d, true)
                : op == OpCode::Any ? at::any(r, d, true)
                                    : at::all(r, d, true);
          o.copy_(r);
          break;
        }
        default: unsupported(op);
      }
    });
  }

  void arg_reduce(OpCode op, const ArrayRef& x, int axis, const ArrayRef& out) override {
    run(op_name(op), out.device, [&] {
      at::Tensor o = view(out);
      if (op == OpCode::ArgMax)
        at::argmax_out(o, view(x), axis, true);
      else
        at::argmin_out(o, view(x), axis, true);
    });
  }

  void scan(OpCode op, const ArrayRef& x, int axis, const ArrayRef& out) override {
    if (!has_at(x.dtype) || !has_at(out.dtype)) return native().scan(op, x, axis, out);
    run(op_name(op), out.device, [&] {
      at::Tensor o = view(out), a = view(x);
      const bool sum = op == OpCode::CumSum;
      if (is_low_precision(x.dtype))  // accumulate in float32
        o.copy_(sum ? at::cumsum(a, axis, at::kFloat) : at::cumprod(a, axis, at::kFloat));
      else if (sum)
        at::cumsum_out(o, a, axis, o.scalar_type());
      else
        at::cumprod_out(o, a, axis, o.scalar_type());
    });
  }

  void softmax(OpCode op, const ArrayRef& x, const ArrayRef& out) override {
    run(op_name(op), out.device, [&] {
      at::Tensor o = view(out);
      if (op == OpCode::Softmax)
        TT_DIRECT(_softmax_out, o, view(x), -1, false);
      else
        TT_DIRECT(_log_softmax_out, o, view(x), -1, false);
    });
  }

  void layer_norm(const ArrayRef& x, const ArrayRef& w, const ArrayRef& b,
                  const LayerNormArgs& args, const ArrayRef& out) override {
    run("layer_norm", out.device, [&] {
      const int64_t inner = std::max<int64_t>(args.inner, 1);
      at::Tensor a = view(x).reshape({-1, inner});
      // An undefined tensor is ATen's "no weight"/"no bias".
      auto vec = [&](const ArrayRef& r) -> at::Tensor {
        if (!r.data) return at::Tensor();
        return view(r).reshape({inner}).to(a.scalar_type());
      };
      at::Tensor y = at::layer_norm(a, {inner}, vec(w), vec(b), args.eps);
      view(out).view({-1, inner}).copy_(y);
    });
  }

  void matmul(const ArrayRef& a, const ArrayRef& b, const ArrayRef& out,
              const MatmulOptions& opts) override {
    run("matmul", out.device, [&] {
      use_matmul_precision(opts.precision);
      at::Tensor o = view(out);
      const at::Tensor x = view(a), y = view(b);
      // Plain and equal-batch products go straight to mm/bmm; broadcasts to matmul.
      if (x.dim() == 2 && y.dim() == 2)
        TT_DIRECT(mm_out, o, x, y);
      else if (x.dim() == 3 && y.dim() == 3 && x.size(0) == y.size(0))
        TT_DIRECT(bmm_out, o, x, y);
      else
        at::matmul_out(o, x, y);
    });
  }

  void take(OpCode op, const ArrayRef& x, const ArrayRef& idx, int axis,
            const ArrayRef& out) override {
    run(op_name(op), out.device, [&] {
      at::Tensor a = view(x), i = view(idx), o = view(out);
      if (op == OpCode::TakeAlongAxis) {
        at::gather_out(o, a, axis, i);
        return;
      }
      // out = a.shape[:axis] + idx.shape + a.shape[axis+1:]: select along axis with the
      // flattened indices into out seen with one axis for them.
      std::vector<int64_t> shape(a.sizes().begin(), a.sizes().end());
      shape[static_cast<size_t>(axis)] = i.numel();
      at::Tensor o2 = o.view(shape);
      at::index_select_out(o2, a, axis, i.reshape({-1}));
    });
  }

  void put(OpCode op, const ArrayRef& idx, const ArrayRef& values, const ArrayRef& out) override {
    run(op_name(op), out.device, [&] {
      at::Tensor o = view(out).view({-1});
      o.index_put_({view(idx)}, view(values), /*accumulate=*/op == OpCode::PutAdd);
    });
  }

  void random(OpCode op, const RandomArgs&, const ArrayRef&) override { unsupported(op); }

  // Linear algebra through ATen's torch.linalg functions (the contract above
  // Backend::linalg): inputs checked for NaN/Inf (and LuSolve's pivots, SolveTriangular's
  // and LuSolve's diagonals) before ATen sees them, failing entries replaced, ATen's `info`
  // read back with those checks in one copy.
  void linalg(OpCode op, std::span<const ArrayRef> in, std::span<const ArrayRef> out,
              const LinalgArgs& args) override {
    run(detail::snake_name(op), in[0].device, [&] {
      // ATen's CUDA solvers multiply matrices inside (TF32 under "high").
      use_matmul_precision(MatmulPrecision::Highest);
      linalg_op(op, in, out, args);
    });
  }

  // LibTorch called directly on the profile's inputs, the way a LibTorch user writes it
  // (a fresh result per call), on the same device and queue.
  std::optional<NativeReference> native_reference(std::string_view op,
                                                  std::span<const ArrayRef> inputs,
                                                  MatmulPrecision precision) override {
    if (inputs.empty()) return std::nullopt;
    const Device dev = inputs[0].device;
    const at::Tensor a = view(inputs[0]);
    const at::Tensor b = inputs.size() > 1 ? view(inputs[1]) : a;
    auto ref = [this, dev](std::string name, auto fn) {
      return NativeReference{"torch " + std::move(name), [this, dev, fn] {
                               run("native_reference", dev, [&] { (void)fn(); });
                             }};
    };
    if (op == "matmul") {
      // A LibTorch user sets the precision once; checking it per call costs nothing.
      return ref("matmul", [a, b, precision] {
        use_matmul_precision(precision);
        return at::matmul(a, b);
      });
    }
    // torch.linalg (PyTorch's own solver choices: cuSOLVER/MAGMA on the GPU, LAPACK on
    // the CPU), all results computed, for the profile's linear-algebra rows.
    auto linalg_ref = [&](std::string name, auto fn) {
      return ref(std::move(name), [a, fn] {
        use_matmul_precision(MatmulPrecision::Highest);
        return fn(a);
      });
    };
    if (op == "svd" || op == "svd_batched")
      return linalg_ref("linalg.svd", [](const at::Tensor& x) { return at::linalg_svd(x, false); });
    if (op == "eigh") return linalg_ref("linalg.eigh", [](const at::Tensor& x) { return at::linalg_eigh(x); });
    if (op == "eig") return linalg_ref("linalg.eig", [](const at::Tensor& x) { return at::linalg_eig(x); });
    if (op == "qr") return linalg_ref("linalg.qr", [](const at::Tensor& x) { return at::linalg_qr(x); });
    if (op == "solve")
      return linalg_ref("linalg.solve", [](const at::Tensor& x) { return at::linalg_solve(x, x); });
    if (op == "cholesky")
      return linalg_ref("linalg.cholesky", [](const at::Tensor& x) { return at::linalg_cholesky(x); });
    if (op == "inv") return linalg_ref("linalg.inv", [](const at::Tensor& x) { return at::linalg_inv(x); });
    if (op == "add" || op == "launch") return ref("add", [a, b] { return at::add(a, b); });
    if (op == "relu") return ref("relu", [a] { return at::relu(a); });
    if (op == "tanh") return ref("tanh", [a] { return at::tanh(a); });
    if (op == "exp") return ref("exp", [a] { return at::exp(a); });
    if (op == "gelu") return ref("gelu", [a] { return at::gelu(a); });
    if (op == "softmax") return ref("softmax", [a] { return at::softmax(a, -1); });
    if (op == "sum") return ref("sum", [a] { return at::sum(a); });
    if (op == "layer_norm")
      return ref("layer_norm", [a] { return at::layer_norm(a, {a.size(-1)}); });
    if (op == "copy") return ref("copy", [a] { return a.clone(); });
    return std::nullopt;
  }

 private:
  Backend& native() const {
    Backend* b = native_.load(std::memory_order_acquire);
    if (b) return *b;
    auto found = get_backend(native_name_);
    if (!found || !found->available())
      throw DeviceError("[" + name_ + "] the engine's " + native_name_ +
                        " backend is not available");
    native_.store(found.get(), std::memory_order_release);  // the registry keeps it alive
    return *found;
  }

  [[noreturn]] void unsupported(OpCode op) const {
    throw UnsupportedError("[" + std::string(op_name(op)) + "] not implemented by the " + name_ +
                           " backend");
  }

  // An ATen tensor over an engine view (no copy; the engine keeps the memory alive).
  // Making one (at::from_blob) and dropping it costs about as much as a small ATen
  // kernel call, and the engine's caching allocator hands the same blocks back op after
  // op, so each thread keeps its last few views: a view is reused when address, dtype,
  // device, shape and strides all match. The views own nothing, and ATen's out= kernels
  // never change an out tensor's metadata when its shape is already right; nothing here
  // changes a view's metadata in place (reshape/view/to make new tensors).
  at::Tensor view(const ArrayRef& r) const {
    struct Entry {
      const void* owner = nullptr;  // the backend (torch and torch:cuda share the thread)
      void* data = nullptr;
      DType dtype = float32;
      int device = 0;
      int ndim = -1;
      std::array<int64_t, kViewDims> shape{}, strides{};
      at::Tensor t;
    };
    thread_local std::array<Entry, kViewCache> cache;
    thread_local size_t next = 0;
    const int nd = r.ndim();
    if (nd <= kViewDims) {
      for (Entry& e : cache) {
        if (e.data != r.data || e.owner != this || e.ndim != nd || e.dtype != r.dtype ||
            e.device != r.device.index)
          continue;
        if (std::equal(r.shape.begin(), r.shape.end(), e.shape.begin()) &&
            std::equal(r.strides.begin(), r.strides.end(), e.strides.begin()))
          return e.t;
      }
    }
    auto opts = at::TensorOptions().dtype(to_at(r.dtype));
    if (type_ == DeviceType::CUDA)
      opts = opts.device(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(r.device.index)));
    at::Tensor t = at::from_blob(r.data, dims(r.shape), dims(r.strides), opts);
    if (nd <= kViewDims) {
      Entry& e = cache[next];
      next = (next + 1) % kViewCache;
      e.owner = this;
      e.data = r.data;
      e.dtype = r.dtype;
      e.device = r.device.index;
      e.ndim = nd;
      std::copy(r.shape.begin(), r.shape.end(), e.shape.begin());
      std::copy(r.strides.begin(), r.strides.end(), e.strides.begin());
      e.t = t;
    }
    return t;
  }
  static constexpr int kViewDims = 6;
  static constexpr size_t kViewCache = 8;

  // Runs an ATen call on the device's queue, with LibTorch's errors mapped.
  // The views carry no autograd state: ATen runs below its autograd layers, as the
  // per-device entry points (TT_DIRECT) expect of their callers.
  template <class F>
  void run(std::string_view op, Device d, F&& fn) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
#ifdef TMATH_TORCH_CUDA
    if (type_ == DeviceType::CUDA) {
      const auto stream = reinterpret_cast<cudaStream_t>(native().native_stream(d));
      c10::cuda::CUDAStreamGuard g(
          c10::cuda::getStreamFromExternal(stream, static_cast<c10::DeviceIndex>(d.index)));
      guarded(op, fn);
      return;
    }
#endif
    (void)d;
    guarded(op, fn);
  }

  void linalg_op(OpCode op, std::span<const ArrayRef> in, std::span<const ArrayRef> out,
                 const LinalgArgs& args) const {
    using O = OpCode;
    const at::Tensor a = view(in[0]);
    LinalgBatch c(op, a);
    const int64_t m = a.size(-2), n = a.size(-1), k = std::min(m, n);
    auto o = [&](size_t i) { return view(out[i]); };
    // Sets an output (batch..., r, c) to identities (ones on the main diagonal).
    auto identity = [](at::Tensor t) {
      t.zero_();
      t.diagonal(0, -2, -1).fill_(1);
    };
    switch (op) {
      case O::Solve:
      case O::Inv: {
        at::Tensor bad = c.nonfinite(a), b;
        if (op == O::Solve) {
          b = view(in[1]);
          bad = bad.logical_or(c.nonfinite(b));
        }
        c.flag(bad, kNonFinite);
        if (o(0).numel() == 0) break;
        const at::Tensor a1 = c.clean(a, bad, true);
        if (op == O::Solve) {
          auto [x, info] = at::linalg_solve_ex(a1, c.clean(b, bad, false));
          c.flag_info(info, kSingular);
          o(0).copy_(x);
        } else {
          auto [x, info] = at::linalg_inv_ex(a1);
          c.flag_info(info, kSingular);
          o(0).copy_(x);
        }
        break;
      }
      case O::Det:
      case O::Slogdet: {
        const at::Tensor bad = c.nonfinite(a);
        c.flag(bad, kNonFinite);
        if (c.count() == 0) break;
        const at::Tensor a1 = c.clean(a, bad, true);
        if (op == O::Det) {
          o(0).copy_(at::linalg_det(a1).view(o(0).sizes()));
        } else {
          auto [sign, logabs] = at::linalg_slogdet(a1);
          o(0).copy_(sign.view(o(0).sizes()));
          o(1).copy_(logabs.view(o(1).sizes()));
        }
        break;
      }
      case O::Cholesky: {
        // Reads the lower triangle in both cases (as NumPy and the native backends) and
        // returns L^H for upper.
        const at::Tensor t = at::tril(a);  // NaN in the other triangle is not read
        const at::Tensor bad = c.nonfinite(t);
        c.flag(bad, kNonFinite);
        if (o(0).numel() == 0) break;
        auto [l, info] = at::linalg_cholesky_ex(c.clean(t, bad, true), false);
        c.flag_info(info, kNotPositiveDefinite);
        o(0).copy_(args.upper ? at::conj_physical(l.transpose(-2, -1)) : l);
        break;
      }
      case O::Qr: {
        const bool want_q = args.compute_uv;
        const at::Tensor bad = c.nonfinite(a);
        c.flag(bad, kNonFinite);
        at::Tensor r_out = o(want_q ? 1 : 0);
        if (c.count() == 0) break;
        if (k == 0) {  // Q: the identity of its size; R: zeros
          if (want_q) identity(o(0));
          r_out.zero_();
          break;
        }
        const char* mode = !want_q ? "r" : args.full_matrices ? "complete" : "reduced";
        auto [q, r] = at::linalg_qr(c.clean(a, bad, false), mode);
        if (want_q) o(0).copy_(q);
        if (r.size(-2) == r_out.size(-2)) {
          r_out.copy_(r);
        } else {  // R only with full_matrices: (m, n) with zero rows below the first k
          r_out.zero_();
          r_out.narrow(-2, 0, r.size(-2)).copy_(r);
        }
        break;
      }
      case O::Svd: {
        const bool uv = args.compute_uv;
        const at::Tensor bad = c.nonfinite(a);
        c.flag(bad, kNonFinite);
        if (c.count() == 0) break;
        if (k == 0) {  // U and Vh: identities of their (full) size; no singular values
          if (uv) identity(o(0)), identity(o(2));
          break;
        }
        const at::Tensor a1 = c.clean(a, bad, false);
        try {
          if (uv) {
            auto [u, s, vh] = at::linalg_svd(a1, args.full_matrices);
            o(0).copy_(u);
            o(1).copy_(s);
            o(2).copy_(vh);
          } else {
            o(0).copy_(at::linalg_svdvals(a1));
          }
        } catch (const c10::LinAlgError& e) {
          c.finish(aten_batch_element(e));
        }
        break;
      }
      case O::Eigh: {
        // Only the triangle read counts (NaN in the other one is ignored, as LAPACK does).
        const at::Tensor t = args.upper ? at::triu(a) : at::tril(a);
        const at::Tensor bad = c.nonfinite(t);
        c.flag(bad, kNonFinite);
        if (n == 0 || c.count() == 0) break;
        const at::Tensor t1 = c.clean(t, bad, true);
        const char* uplo = args.upper ? "U" : "L";
        try {
          if (args.compute_uv) {
            auto [w, v] = at::linalg_eigh(t1, uplo);
            o(0).copy_(w);
            o(1).copy_(v);
          } else {
            o(0).copy_(at::linalg_eigvalsh(t1, uplo));
          }
        } catch (const c10::LinAlgError& e) {
          c.finish(aten_batch_element(e));
        }
        break;
      }
      case O::SolveTriangular: {
        // The triangle read (without the diagonal for unit_diagonal) and b must be finite;
        // an exact zero on a used diagonal is a singular matrix.
        const at::Tensor b = view(in[1]);
        const int64_t off = args.unit_diagonal ? 1 : 0;
        const at::Tensor t = args.upper ? at::triu(a, off) : at::tril(a, -off);
        const at::Tensor bad = c.nonfinite(t).logical_or(c.nonfinite(b));
        c.flag(bad, kNonFinite);
        at::Tensor fail = bad;
        if (!args.unit_diagonal) {
          const at::Tensor sing = c.zero_diagonal(a);
          c.flag(sing, kSingular);
          fail = fail.logical_or(sing);
        }
        if (o(0).numel() == 0) break;
        o(0).copy_(at::linalg_solve_triangular(c.clean(t, fail, true), c.clean(b, bad, false),
                                               args.upper, true, args.unit_diagonal));
        break;
      }
      case O::Lu: {
        // a = P L U; ATen's pivots are LAPACK's (1-based).
        const at::Tensor bad = c.nonfinite(a);
        c.flag(bad, kNonFinite);
        at::Tensor perm = o(2);
        if (c.count() == 0) break;
        if (k == 0) {
          perm.copy_(at::arange(m, perm.options()).expand(perm.sizes()));
          break;
        }
        // info > 0 (an exact zero on U's diagonal) is a valid factorisation of a singular
        // matrix.
        auto [lu, piv, info] = at::linalg_lu_factor_ex(c.clean(a, bad, false));
        (void)info;
        o(0).copy_(lu);
        const at::Tensor piv0 = piv.to(at::kInt).sub(1);
        o(1).copy_(piv0.view(o(1).sizes()));
        // perm: the row interchanges applied in order to 0..m-1 (on the host; k entries).
        const at::Tensor hp = piv0.to(at::kCPU).contiguous();
        at::Tensor hperm = at::empty({c.count(), m}, at::TensorOptions().dtype(at::kLong));
        const int32_t* p = hp.data_ptr<int32_t>();
        int64_t* q = hperm.data_ptr<int64_t>();
        for (int64_t e = 0; e < c.count(); ++e) {
          int64_t* qe = q + e * m;
          for (int64_t i = 0; i < m; ++i) qe[i] = i;
          for (int64_t i = 0; i < k; ++i) {
            const int64_t j = p[e * k + i];
            if (j >= 0 && j < m) std::swap(qe[i], qe[j]);
          }
        }
        perm.copy_(hperm.view(perm.sizes()));
        break;
      }
      case O::LuSolve: {
        // Pivots first (lu_factor never swaps with an earlier row), then NaN/Inf, then an
        // exact zero on U's diagonal.
        const at::Tensor pv = view(in[1]), b = view(in[2]);
        const at::Tensor rows = at::arange(n, pv.options());
        const at::Tensor badp =
            pv.lt(rows).logical_or(pv.ge(n)).reshape({c.count(), n}).any(1);
        c.flag(badp, kBadPivots);
        const at::Tensor bad = c.nonfinite(a).logical_or(c.nonfinite(b));
        c.flag(bad, kNonFinite);
        const at::Tensor sing = c.zero_diagonal(a);
        c.flag(sing, kSingular);
        if (o(0).numel() == 0) break;
        std::vector<int64_t> pshape(pv.sizes().begin(), pv.sizes().end() - 1);
        pshape.push_back(1);
        const at::Tensor piv1 = at::where(badp.view(pshape), rows, pv).add(1).to(at::kInt);
        const at::Tensor lu1 = c.clean(a, badp.logical_or(bad).logical_or(sing), true);
        o(0).copy_(at::linalg_lu_solve(lu1, piv1, c.clean(b, bad, false)));
        break;
      }
      case O::Eig: {
        const at::Tensor bad = c.nonfinite(a);
        c.flag(bad, kNonFinite);
        if (n == 0 || c.count() == 0) break;
        const at::Tensor a1 = c.clean(a, bad, true);
        try {
          if (args.compute_uv) {
            auto [w, v] = at::linalg_eig(a1);
            o(0).copy_(w);
            o(1).copy_(v);
          } else {
            o(0).copy_(at::linalg_eigvals(a1));
          }
        } catch (const c10::LinAlgError& e) {
          c.finish(aten_batch_element(e));
        }
        break;
      }
      default: unsupported(op);
    }
    c.finish();
  }

  static void unary_op(OpCode op, const at::Tensor& x, at::Tensor o) {
    using O = OpCode;
    switch (op) {
      case O::Neg: TT_DIRECT(neg_out, o, x); break;
      case O::Abs: at::abs_out(o, x); break;
      case O::Sign: at::sign_out(o, x); break;
      case O::Exp: TT_DIRECT(exp_out, o, x); break;
      case O::Expm1: at::expm1_out(o, x); break;
      case O::Log: TT_DIRECT(log_out, o, x); break;
      case O::Log1p: at::log1p_out(o, x); break;
      case O::Log2: at::log2_out(o, x); break;
      case O::Log10: at::log10_out(o, x); break;
      case O::Sqrt: TT_DIRECT(sqrt_out, o, x); break;
      case O::Rsqrt: at::rsqrt_out(o, x); break;
      case O::Square: at::mul_out(o, x, x); break;
      case O::Reciprocal: at::reciprocal_out(o, x); break;
      case O::Sin: at::sin_out(o, x); break;
      case O::Cos: at::cos_out(o, x); break;
      case O::Tan: at::tan_out(o, x); break;
      case O::Asin: at::asin_out(o, x); break;
      case O::Acos: at::acos_out(o, x); break;
      case O::Atan: at::atan_out(o, x); break;
      case O::Sinh: at::sinh_out(o, x); break;
      case O::Cosh: at::cosh_out(o, x); break;
      case O::Tanh: TT_DIRECT(tanh_out, o, x); break;
      case O::Sigmoid: TT_DIRECT(sigmoid_out, o, x); break;
      case O::Relu: TT_DIRECT(clamp_min_out, o, x, 0); break;
      case O::Gelu: TT_DIRECT(gelu_out, o, x, "none"); break;
      case O::GeluTanh: at::gelu_out(o, x, "tanh"); break;
      case O::Silu: at::silu_out(o, x); break;
      case O::Erf: at::erf_out(o, x); break;
      case O::Erfinv: at::erfinv_out(o, x); break;
      case O::Floor: at::floor_out(o, x); break;
      case O::Ceil: at::ceil_out(o, x); break;
      case O::Round: at::round_out(o, x); break;  // half to even, as NumPy
      case O::IsNan: o.copy_(at::isnan(x)); break;
      case O::IsInf: o.copy_(at::isinf(x)); break;
      case O::IsFinite: o.copy_(at::isfinite(x)); break;
      case O::LogicalNot: at::logical_not_out(o, x); break;
      case O::Real: o.copy_(at::real(x)); break;
      case O::Imag: o.copy_(at::imag(x)); break;
      case O::Conj: at::conj_physical_out(o, x); break;
      case O::BitwiseInvert: at::bitwise_not_out(o, x); break;
      default:
        throw UnsupportedError("[" + std::string(op_name(op)) + "] not implemented by torch");
    }
  }

  static void binary_op(OpCode op, const at::Tensor& a, const at::Tensor& b, at::Tensor o) {
    using O = OpCode;
    switch (op) {
      case O::Add: TT_DIRECT(add_out, o, a, b); break;
      case O::Subtract: TT_DIRECT(sub_out, o, a, b); break;
      case O::Multiply: TT_DIRECT(mul_out, o, a, b); break;
      case O::Divide: TT_DIRECT(div_out, o, a, b); break;
      case O::FloorDivide: at::div_out(o, a, b, "floor"); break;
      case O::Remainder: at::remainder_out(o, a, b); break;
      case O::Power: at::pow_out(o, a, b); break;
      case O::Maximum: TT_DIRECT(maximum_out, o, a, b); break;
      case O::Minimum: TT_DIRECT(minimum_out, o, a, b); break;
      case O::Atan2: at::atan2_out(o, a, b); break;
      case O::Hypot: at::hypot_out(o, a, b); break;
      case O::GeluGrad: at::gelu_backward_out(o, a, b, "none"); break;
      case O::Nextafter: at::nextafter_out(o, a, b); break;
      case O::Equal: at::eq_out(o, a, b); break;
      case O::NotEqual: at::ne_out(o, a, b); break;
      case O::Less: at::lt_out(o, a, b); break;
      case O::LessEqual: at::le_out(o, a, b); break;
      case O::Greater: at::gt_out(o, a, b); break;
      case O::GreaterEqual: at::ge_out(o, a, b); break;
      case O::LogicalAnd: at::logical_and_out(o, a, b); break;
      case O::LogicalOr: at::logical_or_out(o, a, b); break;
      case O::LogicalXor: at::logical_xor_out(o, a, b); break;
      case O::BitwiseAnd: at::bitwise_and_out(o, a, b); break;
      case O::BitwiseOr: at::bitwise_or_out(o, a, b); break;
      case O::BitwiseXor: at::bitwise_xor_out(o, a, b); break;
      default:
        throw UnsupportedError("[" + std::string(op_name(op)) + "] not implemented by torch");
    }
  }

  std::string name_;
  DeviceType type_;
  std::string native_name_;
  mutable std::atomic<Backend*> native_{nullptr};
  // supports() probes: -1 not asked yet, 0 no kernel, 1 runs.
  mutable std::array<std::atomic<int8_t>, kNumOpCodes * kNumDTypes> probed_;
};

}  // namespace
}  // namespace tmath::torchb

// Called by libtmath's plugin loader after dlopen: "torch" on the cpu device and, when
// LibTorch has CUDA and the engine's cuda backend runs, "torch:cuda" on cuda devices.
extern "C" TMATH_API void tmath_torch_register() {
  using tmath::torchb::TorchBackend;
  // Never destroyed: they outlive every tensor, including those released at exit.
  static auto* host = new TorchBackend("torch", tmath::DeviceType::CPU, "cpu");
  tmath::register_backend(std::shared_ptr<tmath::Backend>(host, [](tmath::Backend*) {}));
#ifdef TMATH_TORCH_CUDA
  auto cuda = tmath::get_backend("cuda");
  if (cuda && cuda->available() && at::cuda::is_available()) {
    static auto* dev = new TorchBackend("torch:cuda", tmath::DeviceType::CUDA, "cuda");
    tmath::register_backend(std::shared_ptr<tmath::Backend>(dev, [](tmath::Backend*) {}));
  }
#endif
}
