// The native CPU backend: registers itself at load time.
#include <cblas.h>

#include <cstring>
#include <thread>

#include "backend/cpu/allocator.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/thread_pool.h"
#include "tmath/error.h"

extern "C" {
char* openblas_get_config(void);
int openblas_get_num_threads(void);
}

namespace tmath::cpu {

// linalg.cpp
bool supports_linalg(OpCode op, DType dt);
void linalg(OpCode op, std::span<const ArrayRef> inputs, std::span<const ArrayRef> outputs,
            const LinalgArgs& args);

namespace {

class CpuBackend final : public Backend {
 public:
  std::string_view name() const override { return "cpu"; }
  DeviceType device_type() const override { return DeviceType::CPU; }

  BackendInfo info() const override {
    BackendInfo i;
    i.name = "cpu";
    i.devices = {"cpu"};
    i.libraries.emplace_back("OpenBLAS", openblas_get_config());
    i.libraries.emplace_back("OpenBLAS threads", std::to_string(openblas_get_num_threads()));
    i.threads = num_threads();
    return i;
  }

  bool supports(OpCode op, DType dt) const override {
    if (is_unary(op)) return supports_unary(op, dt);
    if (is_binary(op)) return supports_binary(op, dt);
    switch (op) {
      case OpCode::Max: case OpCode::Min: case OpCode::ArgMax: case OpCode::ArgMin:
        return !is_complex(dt);
      case OpCode::Softmax: case OpCode::LogSoftmax: case OpCode::LayerNorm:
      case OpCode::RandomUniform: case OpCode::RandomNormal:
        return is_floating(dt);
      case OpCode::RandomBits: return dt == int64;
      case OpCode::Solve: case OpCode::Inv: case OpCode::Det: case OpCode::Slogdet:
      case OpCode::Cholesky: case OpCode::Qr: case OpCode::Svd: case OpCode::Eigh:
      case OpCode::SolveTriangular: case OpCode::Lu: case OpCode::LuSolve: case OpCode::Eig:
        return supports_linalg(op, dt);
      default: return true;  // sum, prod, any, all, scans, copies, matmul, take: every dtype
    }
  }

  Allocator& allocator(Device) override { return alloc_; }

  void copy_from_host(const void* src, const ArrayRef& dst) override {
    std::memcpy(dst.data, src, static_cast<size_t>(dst.size()) * itemsize(dst.dtype));
  }
  void copy_to_host(const ArrayRef& src, void* dst) override {
    std::memcpy(dst, src.data, static_cast<size_t>(src.size()) * itemsize(src.dtype));
  }

  void unary(OpCode op, const ArrayRef& x, const ArrayRef& out) override { cpu::unary(op, x, out); }
  void binary(OpCode op, const ArrayRef& a, const ArrayRef& b, const ArrayRef& out) override {
    cpu::binary(op, a, b, out);
  }
  void where(const ArrayRef& c, const ArrayRef& a, const ArrayRef& b, const ArrayRef& out) override {
    cpu::where(c, a, b, out);
  }
  void copy(const ArrayRef& src, const ArrayRef& dst) override { cpu::copy(src, dst); }
  void fill(const ArrayRef& out, Scalar v) override { cpu::fill(out, v); }
  void arange(const ArrayRef& out, double start, double step) override { cpu::arange(out, start, step); }
  void reduce(OpCode op, const ArrayRef& x, std::span<const int> axes, const ArrayRef& out) override {
    cpu::reduce(op, x, axes, out);
  }
  void arg_reduce(OpCode op, const ArrayRef& x, int axis, const ArrayRef& out) override {
    cpu::arg_reduce(op, x, axis, out);
  }
  void scan(OpCode op, const ArrayRef& x, int axis, const ArrayRef& out) override {
    cpu::scan(op, x, axis, out);
  }
  void softmax(OpCode op, const ArrayRef& x, const ArrayRef& out) override { cpu::softmax(op, x, out); }
  void layer_norm(const ArrayRef& x, const ArrayRef& w, const ArrayRef& b, const LayerNormArgs& args,
                  const ArrayRef& out) override {
    cpu::layer_norm(x, w, b, args, out);
  }
  void matmul(const ArrayRef& a, const ArrayRef& b, const ArrayRef& out,
              const MatmulOptions& opts) override {
    cpu::matmul(a, b, out, opts);
  }
  void take(OpCode op, const ArrayRef& x, const ArrayRef& idx, int axis, const ArrayRef& out) override {
    cpu::take(op, x, idx, axis, out);
  }
  void put(OpCode op, const ArrayRef& idx, const ArrayRef& values, const ArrayRef& out) override {
    cpu::put(op, idx, values, out);
  }
  void random(OpCode op, const RandomArgs& args, const ArrayRef& out) override {
    cpu::random(op, args, out);
  }
  bool supports_fused(const FusedProgram& p) const override { return cpu::supports_fused(p); }
  void fused(const FusedProgram& p, std::span<const ArrayRef> inputs, const ArrayRef& out) override {
    cpu::fused(p, inputs, out);
  }
  void linalg(OpCode op, std::span<const ArrayRef> inputs, std::span<const ArrayRef> outputs,
              const LinalgArgs& args) override {
    cpu::linalg(op, inputs, outputs, args);
  }

 private:
  CachingAllocator alloc_;
};

// Registered during library load so the registry always has a cpu backend.
const bool kRegistered = [] {
  register_backend(std::make_shared<CpuBackend>());
  return true;
}();

}  // namespace
}  // namespace tmath::cpu
