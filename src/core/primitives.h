// Primitives: one class per op family. Each knows how to evaluate itself on a
// backend and carries its gradient rules (vjp/jvp) expressed with ops.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor_impl.h"
#include "tmath/backend.h"
#include "tmath/ops.h"

namespace tmath {

using detail::TensorImpl;

class Primitive {
 public:
  virtual ~Primitive() = default;
  virtual std::string name() const = 0;
  // Kernel used for backend selection; nullopt for pure metadata ops (views).
  virtual std::optional<OpCode> opcode() const { return std::nullopt; }
  // dtype used for backend selection (default: first input, else first output).
  virtual DType dispatch_dtype(const std::vector<Tensor>& inputs, const TensorImpl& out) const {
    return inputs.empty() ? out.dtype : inputs[0].dtype();
  }
  // inputs are evaluated; outputs have shape/dtype/device set and no storage yet.
  virtual void eval(Backend* be, const std::vector<Tensor>& inputs,
                    const std::vector<TensorImpl*>& outputs) = 0;
  // Reverse mode: cotangents of the inputs listed in argnums, given output cotangents.
  virtual std::vector<Tensor> vjp(const std::vector<Tensor>& primals,
                                  const std::vector<Tensor>& cotangents,
                                  const std::vector<int>& argnums,
                                  const std::vector<Tensor>& outputs);
  // Forward mode: output tangents given input tangents (for the inputs in argnums).
  virtual std::vector<Tensor> jvp(const std::vector<Tensor>& primals,
                                  const std::vector<Tensor>& tangents,
                                  const std::vector<int>& argnums);
  virtual bool is_equivalent(const Primitive& other) const { return name() == other.name(); }
  // Elementwise primitives may write into a dead input's buffer.
  virtual bool can_donate() const { return false; }
  // Elementwise primitives describe themselves as one instruction of a fused
  // program (src/jit; the planner fills in the operands); nullopt: not fusible.
  virtual std::optional<FusedInstr> fused_instr(const TensorImpl& out) const {
    (void)out;
    return std::nullopt;
  }
};

// Allocates contiguous storage for `out` (or reuses a donatable input buffer).
// only_input >= 0: only that input may donate its buffer.
void alloc_output(TensorImpl& out, const std::vector<Tensor>& inputs, bool allow_donation,
                  int only_input = -1);

class UnaryPrim : public Primitive {
 public:
  explicit UnaryPrim(OpCode op) : op_(op) {}
  std::string name() const override;
  std::optional<OpCode> opcode() const override { return op_; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override;
  std::vector<Tensor> jvp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&) override;
  bool is_equivalent(const Primitive& o) const override;
  bool can_donate() const override { return true; }
  OpCode op() const { return op_; }
  std::optional<FusedInstr> fused_instr(const TensorImpl& out) const override {
    return FusedInstr{FusedInstr::Kind::Unary, op_, out.dtype};
  }

 private:
  OpCode op_;
};

class BinaryPrim : public Primitive {
 public:
  explicit BinaryPrim(OpCode op) : op_(op) {}
  std::string name() const override;
  std::optional<OpCode> opcode() const override { return op_; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override;
  std::vector<Tensor> jvp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&) override;
  bool is_equivalent(const Primitive& o) const override;
  bool can_donate() const override { return true; }
  OpCode op() const { return op_; }
  std::optional<FusedInstr> fused_instr(const TensorImpl& out) const override {
    return FusedInstr{FusedInstr::Kind::Binary, op_, out.dtype};
  }

 private:
  OpCode op_;
};

class WherePrim : public Primitive {
 public:
  std::string name() const override { return "where"; }
  std::optional<OpCode> opcode() const override { return OpCode::Where; }
  DType dispatch_dtype(const std::vector<Tensor>& in, const TensorImpl&) const override {
    return in[1].dtype();
  }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override;
  bool can_donate() const override { return true; }
  std::optional<FusedInstr> fused_instr(const TensorImpl& out) const override {
    return FusedInstr{FusedInstr::Kind::Where, OpCode::Count, out.dtype};
  }
};

// Elementwise dtype conversion (also a plain contiguous copy when dtypes match).
class AsTypePrim : public Primitive {
 public:
  std::string name() const override { return "astype"; }
  std::optional<OpCode> opcode() const override { return OpCode::Copy; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override;
  std::optional<FusedInstr> fused_instr(const TensorImpl& out) const override {
    return FusedInstr{FusedInstr::Kind::Cast, OpCode::Copy, out.dtype};
  }
};

class FillPrim : public Primitive {
 public:
  explicit FillPrim(Scalar v) : value_(v) {}
  std::string name() const override { return "full"; }
  std::optional<OpCode> opcode() const override { return OpCode::Fill; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;

 private:
  Scalar value_;
};

class ArangePrim : public Primitive {
 public:
  ArangePrim(double start, double step) : start_(start), step_(step) {}
  std::string name() const override { return "arange"; }
  std::optional<OpCode> opcode() const override { return OpCode::Arange; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;

 private:
  double start_, step_;
};

// View with a new shape; copies when the input's strides do not allow a view.
class ReshapePrim : public Primitive {
 public:
  std::string name() const override { return "reshape"; }
  std::optional<OpCode> opcode() const override { return OpCode::Copy; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override;
};

// Axis permutation view.
class TransposePrim : public Primitive {
 public:
  explicit TransposePrim(std::vector<int> perm) : perm_(std::move(perm)) {}
  std::string name() const override { return "transpose"; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override;

 private:
  std::vector<int> perm_;
};

// Strided slice view: out[i] = in[start + i*step] per axis (step may be negative).
class SlicePrim : public Primitive {
 public:
  SlicePrim(std::vector<int64_t> start, std::vector<int64_t> step)
      : start_(std::move(start)), step_(std::move(step)) {}
  std::string name() const override { return "slice"; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override;

 private:
  std::vector<int64_t> start_, step_;
};

// Broadcast view (zero strides on expanded axes).
class BroadcastPrim : public Primitive {
 public:
  std::string name() const override { return "broadcast_to"; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override;
};

class ReducePrim : public Primitive {
 public:
  ReducePrim(OpCode op, std::vector<int> axes) : op_(op), axes_(std::move(axes)) {}
  std::string name() const override;
  std::optional<OpCode> opcode() const override { return op_; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override;

 private:
  OpCode op_;
  std::vector<int> axes_;
};

class ArgReducePrim : public Primitive {
 public:
  ArgReducePrim(OpCode op, int axis) : op_(op), axis_(axis) {}
  std::string name() const override { return op_ == OpCode::ArgMax ? "argmax" : "argmin"; }
  std::optional<OpCode> opcode() const override { return op_; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;

 private:
  OpCode op_;
  int axis_;
};

class ScanPrim : public Primitive {
 public:
  ScanPrim(OpCode op, int axis) : op_(op), axis_(axis) {}
  std::string name() const override { return op_ == OpCode::CumSum ? "cumsum" : "cumprod"; }
  std::optional<OpCode> opcode() const override { return op_; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override;

 private:
  OpCode op_;
  int axis_;
};

// Softmax/LogSoftmax over the last axis.
class SoftmaxPrim : public Primitive {
 public:
  explicit SoftmaxPrim(OpCode op) : op_(op) {}
  std::string name() const override { return op_ == OpCode::Softmax ? "softmax" : "log_softmax"; }
  std::optional<OpCode> opcode() const override { return op_; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override;

 private:
  OpCode op_;
};

// inputs: x[, weight[, bias]] (has_weight/has_bias say which are present).
class LayerNormPrim : public Primitive {
 public:
  LayerNormPrim(double eps, int64_t inner, bool has_w, bool has_b)
      : eps_(eps), inner_(inner), has_w_(has_w), has_b_(has_b) {}
  std::string name() const override { return "layer_norm"; }
  std::optional<OpCode> opcode() const override { return OpCode::LayerNorm; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override;

 private:
  double eps_;
  int64_t inner_;
  bool has_w_, has_b_;
};

// a: (batch..., m, k), b: (batch..., k, n), both already broadcast on batch axes.
class MatmulPrim : public Primitive {
 public:
  explicit MatmulPrim(MatmulPrecision p) : precision_(p) {}
  std::string name() const override { return "matmul"; }
  std::optional<OpCode> opcode() const override { return OpCode::Matmul; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override;

 private:
  MatmulPrecision precision_;
};

class TakePrim : public Primitive {
 public:
  TakePrim(OpCode op, int axis) : op_(op), axis_(axis) {}
  std::string name() const override { return op_ == OpCode::Take ? "take" : "take_along_axis"; }
  std::optional<OpCode> opcode() const override { return op_; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override;

 private:
  OpCode op_;
  int axis_;
};

// put / put_add: inputs (a, flat int64 positions, values of the positions' length).
class PutPrim : public Primitive {
 public:
  explicit PutPrim(OpCode op) : op_(op) {}
  std::string name() const override { return op_ == OpCode::Put ? "put" : "put_add"; }
  std::optional<OpCode> opcode() const override { return op_; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override;
  std::vector<Tensor> jvp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&) override;

 private:
  OpCode op_;
};

class ConcatenatePrim : public Primitive {
 public:
  explicit ConcatenatePrim(int axis) : axis_(axis) {}
  std::string name() const override { return "concatenate"; }
  std::optional<OpCode> opcode() const override { return OpCode::Copy; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override;

 private:
  int axis_;
};

// Constant padding: fill with value, copy the input into the interior.
class PadPrim : public Primitive {
 public:
  PadPrim(std::vector<int64_t> before, Scalar value) : before_(std::move(before)), value_(value) {}
  std::string name() const override { return "pad"; }
  std::optional<OpCode> opcode() const override { return OpCode::Copy; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override;

 private:
  std::vector<int64_t> before_;
  Scalar value_;
};

class RandomPrim : public Primitive {
 public:
  RandomPrim(OpCode op, RandomArgs args) : op_(op), args_(args) {}
  std::string name() const override;
  std::optional<OpCode> opcode() const override { return op_; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;

 private:
  OpCode op_;
  RandomArgs args_;
};

// Copies between devices.
class ToDevicePrim : public Primitive {
 public:
  std::string name() const override { return "to_device"; }
  std::optional<OpCode> opcode() const override { return OpCode::Copy; }
  void eval(Backend* be, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override;
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override;
};

}  // namespace tmath
