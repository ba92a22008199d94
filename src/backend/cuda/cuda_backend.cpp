// The native CUDA backend, built as the plugin libtmath_cuda.so. libtmath
// dlopens it at start-up (src/core/plugin_loader.cpp) and calls
// tmath_cuda_register(). The driver is initialised on first use of a CUDA
// device or of info(); with no usable device the backend reports itself
// unavailable with the reason.
#include <string>

#include "backend/cuda/codegen.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/runtime.h"
#include "tmath/error.h"

namespace tmath::cuda {
namespace {

std::string human_gib(uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(b) / double(1ull << 30));
  return buf;
}

class CudaBackend final : public Backend {
 public:
  std::string_view name() const override { return "cuda"; }
  DeviceType device_type() const override { return DeviceType::CUDA; }

  BackendInfo info() const override {
    BackendInfo i;
    i.name = "cuda";
    Runtime& rt = Runtime::get();
    i.available = rt.available();
    i.reason = rt.reason();
    const auto& devs = rt.devices();
    for (size_t d = 0; d < devs.size(); ++d) {
      i.devices.push_back("cuda:" + std::to_string(d) + " " + devs[d].name + " (sm_" +
                          std::to_string(devs[d].major) + std::to_string(devs[d].minor) + ", " +
                          human_gib(devs[d].total_memory) + ", " +
                          std::to_string(devs[d].sm_count) + " SMs)");
    }
    i.libraries = library_versions();
    i.threads = 1;
    return i;
  }

  bool available() const override { return Runtime::get().available(); }

  bool supports(OpCode op, DType dt) const override {
    if (is_unary(op)) return gen::unary_supported(op, dt);
    if (is_binary(op)) return gen::binary_supported(op, dt);
    switch (op) {
      case OpCode::Max:
      case OpCode::Min:
      case OpCode::ArgMax:
      case OpCode::ArgMin:
        return !is_complex(dt);
      case OpCode::Softmax:
      case OpCode::LogSoftmax:
      case OpCode::LayerNorm:
      case OpCode::RandomUniform:
      case OpCode::RandomNormal:
        return is_floating(dt);
      case OpCode::RandomBits:
        return dt == DType::Int64;
      case OpCode::Matmul:
        return matmul_supported(dt);
      case OpCode::Solve:
      case OpCode::Inv:
      case OpCode::Det:
      case OpCode::Slogdet:
      case OpCode::Cholesky:
      case OpCode::Qr:
      case OpCode::Svd:
      case OpCode::Eigh:
      case OpCode::SolveTriangular:
      case OpCode::Lu:
      case OpCode::LuSolve:
      case OpCode::Eig:
        return linalg_supported(op, dt);
      case OpCode::Sum:
      case OpCode::Prod:
      case OpCode::Any:
      case OpCode::All:
      case OpCode::CumSum:
      case OpCode::CumProd:
      case OpCode::Where:
      case OpCode::Copy:
      case OpCode::Fill:
      case OpCode::Arange:
      case OpCode::Take:
      case OpCode::TakeAlongAxis:
        return true;
      case OpCode::Put:
      case OpCode::PutAdd:
        return gen::put_supported(op, dt);
      default:
        return false;
    }
  }

  Allocator& allocator(Device d) override { return ctx(d, "allocate").allocator(); }
  void synchronize(Device d) override { ctx(d, "synchronize").synchronize("synchronize"); }

  void copy_from_host(const void* src, const ArrayRef& dst) override {
    ctx(dst.device, "copy_from_host")
        .copy_from_host(src, dst.data, static_cast<size_t>(dst.size()) * itemsize(dst.dtype));
  }
  void copy_to_host(const ArrayRef& src, void* dst) override {
    ctx(src.device, "copy_to_host")
        .copy_to_host(src.data, dst, static_cast<size_t>(src.size()) * itemsize(src.dtype));
  }

  void unary(OpCode op, const ArrayRef& x, const ArrayRef& out) override {
    cuda::unary(ctx(out.device, "unary"), op, x, out);
  }
  void binary(OpCode op, const ArrayRef& a, const ArrayRef& b, const ArrayRef& out) override {
    cuda::binary(ctx(out.device, "binary"), op, a, b, out);
  }
  void where(const ArrayRef& c, const ArrayRef& a, const ArrayRef& b,
             const ArrayRef& out) override {
    cuda::where(ctx(out.device, "where"), c, a, b, out);
  }
  void copy(const ArrayRef& src, const ArrayRef& dst) override {
    // From another GPU: the ops that wrote src must at least be queued there.
    if (src.device.type == DeviceType::CUDA && !(src.device == dst.device))
      ctx(src.device, "copy").flush_tiny();
    cuda::copy(ctx(dst.device, "copy"), src, dst);
  }
  bool supports_fused(const FusedProgram& p) const override { return gen::fused_supported(p); }
  void fused(const FusedProgram& p, std::span<const ArrayRef> inputs, const ArrayRef& out) override {
    cuda::fused(ctx(out.device, "fused"), p, inputs, out);
  }
  void fill(const ArrayRef& out, Scalar v) override { cuda::fill(ctx(out.device, "fill"), out, v); }
  void arange(const ArrayRef& out, double start, double step) override {
    cuda::arange(ctx(out.device, "arange"), out, start, step);
  }
  void reduce(OpCode op, const ArrayRef& x, std::span<const int> axes,
              const ArrayRef& out) override {
    cuda::reduce(ctx(out.device, "reduce"), op, x, axes, out);
  }
  void arg_reduce(OpCode op, const ArrayRef& x, int axis, const ArrayRef& out) override {
    cuda::arg_reduce(ctx(out.device, "arg_reduce"), op, x, axis, out);
  }
  void scan(OpCode op, const ArrayRef& x, int axis, const ArrayRef& out) override {
    cuda::scan(ctx(out.device, "scan"), op, x, axis, out);
  }
  void softmax(OpCode op, const ArrayRef& x, const ArrayRef& out) override {
    cuda::softmax(ctx(out.device, "softmax"), op, x, out);
  }
  void layer_norm(const ArrayRef& x, const ArrayRef& w, const ArrayRef& b,
                  const LayerNormArgs& args, const ArrayRef& out) override {
    cuda::layer_norm(ctx(out.device, "layer_norm"), x, w, b, args, out);
  }
  void matmul(const ArrayRef& a, const ArrayRef& b, const ArrayRef& out,
              const MatmulOptions& opts) override {
    cuda::matmul(ctx(out.device, "matmul"), a, b, out, opts);
  }
  void take(OpCode op, const ArrayRef& x, const ArrayRef& idx, int axis,
            const ArrayRef& out) override {
    cuda::take(ctx(out.device, "take"), op, x, idx, axis, out);
  }
  void put(OpCode op, const ArrayRef& idx, const ArrayRef& values, const ArrayRef& out) override {
    cuda::put(ctx(out.device, "put"), op, idx, values, out);
  }
  void random(OpCode op, const RandomArgs& args, const ArrayRef& out) override {
    cuda::random(ctx(out.device, "random"), op, args, out);
  }
  void linalg(OpCode op, std::span<const ArrayRef> in, std::span<const ArrayRef> out,
              const LinalgArgs& args) override {
    DeviceContext& dc = ctx(in[0].device, "linalg");
    // The solvers report status to the host (and some factor on it).
    if (dc.capturing())
      dc.refuse_in_capture(std::string(op_name(op)).c_str(), "a cuSOLVER factorisation");
    cuda::linalg(dc, op, in, out, args);
  }

  bool begin_capture(Device d) override {
    ctx(d, "compile").begin_capture();
    return true;
  }
  std::unique_ptr<CapturedWork> end_capture(Device d, bool keep, std::string& why) override {
    return ctx(d, "compile").end_capture(keep, why);
  }
  int lanes(Device d) override { return ctx(d, "compile").lanes(); }
  void set_lane(Device d, int lane) override { ctx(d, "compile").set_lane(lane); }
  void join_lanes(Device d) override { ctx(d, "compile").join_lanes(); }

  double time_ms(Device d, const std::function<void()>& fn, int reps) override {
    return cuda::time_ms(ctx(d, "time_ms"), fn, reps);
  }
  std::optional<NativeReference> native_reference(std::string_view op,
                                                  std::span<const ArrayRef> inputs,
                                                  MatmulPrecision prec) override {
    if (inputs.empty()) return std::nullopt;
    return cuda::native_reference(ctx(inputs[0].device, "native_reference"), op, inputs, prec);
  }

  uintptr_t native_stream(Device d) override {
    return reinterpret_cast<uintptr_t>(ctx(d, "native_stream").stream());
  }
  // One event recorded on the waited-for stream and waited on by the other: the host
  // never blocks. Handles 1 and 2 are cudaStreamLegacy and cudaStreamPerThread.
  void order_with_stream(Device d, uintptr_t stream, bool foreign_waits) override {
    DeviceContext& dc = ctx(d, "order_with_stream");
    auto other = reinterpret_cast<cudaStream_t>(stream);
    if (other == dc.stream()) return;
    cudaStream_t first = foreign_waits ? dc.stream() : other;
    cudaStream_t then = foreign_waits ? other : dc.stream();
    cudaEvent_t ev = nullptr;
    TM_CUDA("order_with_stream", cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    cudaError_t e = cudaEventRecord(ev, first);
    const char* call = "cudaEventRecord";
    if (e == cudaSuccess) {
      e = cudaStreamWaitEvent(then, ev, 0);
      call = "cudaStreamWaitEvent";
    }
    (void)cudaEventDestroy(ev);  // released once the recorded work completes
    if (e != cudaSuccess) throw_cuda_error("order_with_stream", call, e);
  }

 private:
  static DeviceContext& ctx(Device d, const char* op) {
    if (d.type != DeviceType::CUDA)
      throw DeviceError("[" + std::string(op) + "] the cuda backend got a " + d.str() + " tensor");
    return Runtime::get().device(d.index, op);
  }
};

}  // namespace
}  // namespace tmath::cuda

// Called by libtmath's plugin loader after dlopen.
extern "C" TMATH_API void tmath_cuda_register() {
  // Never destroyed: it outlives every tensor, including those released during
  // static destruction, and needs no CUDA calls at exit.
  static auto* backend = new tmath::cuda::CudaBackend();
  tmath::register_backend(std::shared_ptr<tmath::Backend>(backend, [](tmath::Backend*) {}));
}
