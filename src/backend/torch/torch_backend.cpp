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
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

#ifdef TMATH_TORCH_CUDA
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

#include "tmath/backend.h"
#include "tmath/error.h"

namespace tmath::torchb {
namespace {

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

// Runs fn, turning LibTorch's exceptions into the engine's (named after the op).
template <class F>
void guarded(const char* op, F&& fn) {
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
    if (!is_unary(op) && !is_binary(op)) return true;
    // Elementwise kernels differ between LibTorch builds (e.g. float16 math on the CPU
    // before 2.x): one call on a one-element tensor, once per (op, dtype), says.
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
    try {
      auto opts = at::TensorOptions().dtype(to_at(dt));
      if (type_ == DeviceType::CUDA) opts = opts.device(at::Device(at::kCUDA, 0));
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

  // What this backend runs, before asking LibTorch (supports()).
  bool claims(OpCode op, DType dt) const {
    using O = OpCode;
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
      case O::Maximum: case O::Minimum: return I || F;
      case O::Equal: case O::NotEqual: return B || I || F || C;
      case O::Less: case O::LessEqual: case O::Greater: case O::GreaterEqual: return I || F;
      case O::LogicalAnd: case O::LogicalOr: case O::LogicalXor: return B;
      case O::Where: return true;
      case O::Copy: case O::Fill: return true;
      case O::Arange: return I || F;
      case O::Sum: case O::Prod: return B || I || F || C;
      case O::Any: case O::All: return B || I || F;
      case O::Max: case O::Min: return I || F;
      case O::ArgMax: case O::ArgMin: return I || F;
      case O::CumSum: case O::CumProd: return I || F;
      case O::Softmax: case O::LogSoftmax: return F && !low;
      case O::LayerNorm: return F && !low;
      case O::Matmul: return (F && !low) || C;
      case O::Take: case O::TakeAlongAxis: return true;
      default:
        // The Philox random streams (bit-identical with the native backends only
        // there) and linear algebra: the native backend.
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
        at::_softmax_out(o, view(x), -1, false);
      else
        at::_log_softmax_out(o, view(x), -1, false);
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
      at::globalContext().setFloat32MatmulPrecision(precision_mode(opts.precision));
      at::Tensor o = view(out);
      at::matmul_out(o, view(a), view(b));
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

  void random(OpCode op, const RandomArgs&, const ArrayRef&) override { unsupported(op); }

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
      const char* mode = precision_mode(precision);
      return ref("matmul", [a, b, mode] {
        at::globalContext().setFloat32MatmulPrecision(mode);
        return at::matmul(a, b);
      });
    }
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
  at::Tensor view(const ArrayRef& r) const {
    auto opts = at::TensorOptions().dtype(to_at(r.dtype));
    if (type_ == DeviceType::CUDA)
      opts = opts.device(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(r.device.index)));
    return at::from_blob(r.data, dims(r.shape), dims(r.strides), opts);
  }

  // Runs an ATen call on the device's queue, with LibTorch's errors mapped.
  template <class F>
  void run(std::string_view op, Device d, F&& fn) {
    const std::string name(op);
#ifdef TMATH_TORCH_CUDA
    if (type_ == DeviceType::CUDA) {
      const auto stream = reinterpret_cast<cudaStream_t>(native().native_stream(d));
      c10::cuda::CUDAStreamGuard g(
          c10::cuda::getStreamFromExternal(stream, static_cast<c10::DeviceIndex>(d.index)));
      guarded(name.c_str(), fn);
      return;
    }
#endif
    (void)d;
    guarded(name.c_str(), fn);
  }

  static void unary_op(OpCode op, const at::Tensor& x, at::Tensor o) {
    using O = OpCode;
    switch (op) {
      case O::Neg: at::neg_out(o, x); break;
      case O::Abs: at::abs_out(o, x); break;
      case O::Sign: at::sign_out(o, x); break;
      case O::Exp: at::exp_out(o, x); break;
      case O::Expm1: at::expm1_out(o, x); break;
      case O::Log: at::log_out(o, x); break;
      case O::Log1p: at::log1p_out(o, x); break;
      case O::Log2: at::log2_out(o, x); break;
      case O::Log10: at::log10_out(o, x); break;
      case O::Sqrt: at::sqrt_out(o, x); break;
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
      case O::Tanh: at::tanh_out(o, x); break;
      case O::Sigmoid: at::sigmoid_out(o, x); break;
      case O::Relu: at::clamp_min_out(o, x, 0); break;
      case O::Gelu: at::gelu_out(o, x, "none"); break;
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
      default:
        throw UnsupportedError("[" + std::string(op_name(op)) + "] not implemented by torch");
    }
  }

  static void binary_op(OpCode op, const at::Tensor& a, const at::Tensor& b, at::Tensor o) {
    using O = OpCode;
    switch (op) {
      case O::Add: at::add_out(o, a, b); break;
      case O::Subtract: at::sub_out(o, a, b); break;
      case O::Multiply: at::mul_out(o, a, b); break;
      case O::Divide: at::div_out(o, a, b); break;
      case O::FloorDivide: at::div_out(o, a, b, "floor"); break;
      case O::Remainder: at::remainder_out(o, a, b); break;
      case O::Power: at::pow_out(o, a, b); break;
      case O::Maximum: at::maximum_out(o, a, b); break;
      case O::Minimum: at::minimum_out(o, a, b); break;
      case O::Atan2: at::atan2_out(o, a, b); break;
      case O::Hypot: at::hypot_out(o, a, b); break;
      case O::Equal: at::eq_out(o, a, b); break;
      case O::NotEqual: at::ne_out(o, a, b); break;
      case O::Less: at::lt_out(o, a, b); break;
      case O::LessEqual: at::le_out(o, a, b); break;
      case O::Greater: at::gt_out(o, a, b); break;
      case O::GreaterEqual: at::ge_out(o, a, b); break;
      case O::LogicalAnd: at::logical_and_out(o, a, b); break;
      case O::LogicalOr: at::logical_or_out(o, a, b); break;
      case O::LogicalXor: at::logical_xor_out(o, a, b); break;
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
