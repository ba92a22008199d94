// Automatic differentiation over the lazy graph: reverse mode (grad, vjp), forward
// mode (jvp), jacobians, hessians, stop_gradient, custom rules and checkpointing.
//
// A transform runs `f` once on fresh handles of the differentiated arguments and
// records every node that depends on them (whether or not it is evaluated meanwhile,
// so eager mode and item() inside f are fine). Gradients are built as ordinary lazy
// tensors from the primitives' vjp/jvp rules, so transforms nest (grad of grad, jvp of
// grad) and their results fuse and evaluate like any other graph. Cotangents follow
// JAX's convention for complex values (transposed, not conjugated).
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "tmath/tensor.h"

namespace tmath {

using TensorList = std::vector<Tensor>;
// f(args) -> outputs (any number of float/complex tensors).
using Function = std::function<TensorList(const TensorList&)>;
// f(args) -> one scalar (size-1) float tensor.
using ScalarFunction = std::function<Tensor(const TensorList&)>;
using UnaryFunction = std::function<Tensor(const Tensor&)>;

// Gradients of a scalar f with respect to args[argnums] (same shapes and dtypes).
// At the top level (no enclosing transform) results are evaluated before returning, in
// the order the backward sweep completes them, which keeps the backward pass's peak
// memory close to the forward activations; inside another transform they stay lazy.
TMATH_API std::function<TensorList(const TensorList&)> grad(ScalarFunction f,
                                                            std::vector<int> argnums = {0});
TMATH_API UnaryFunction grad(UnaryFunction f);
// (f(args), gradients) from one forward pass.
TMATH_API std::function<std::pair<Tensor, TensorList>(const TensorList&)> value_and_grad(
    ScalarFunction f, std::vector<int> argnums = {0});

// Reverse mode: outputs of f at primals, and a pullback mapping output cotangents
// (one per output, shapes of the outputs; undefined = zero) to cotangents of every
// primal. The pullback keeps the forward intermediates alive and may be called often.
struct VjpResult {
  TensorList outputs;
  std::function<TensorList(const TensorList&)> pullback;
};
TMATH_API VjpResult vjp(Function f, const TensorList& primals);
// One pullback: (outputs, cotangents of the primals).
TMATH_API std::pair<TensorList, TensorList> vjp(Function f, const TensorList& primals,
                                                const TensorList& cotangents);
// Forward mode: (outputs, output tangents) for tangents of the primals (same shapes).
TMATH_API std::pair<TensorList, TensorList> jvp(Function f, const TensorList& primals,
                                                const TensorList& tangents);

// d f(x) / d x with shape f(x).shape + x.shape. Reverse builds one pullback per output
// element, forward one tangent per input element: pick the smaller side.
enum class JacobianMode { Reverse, Forward };
TMATH_API Tensor jacobian(UnaryFunction f, const Tensor& x,
                          JacobianMode mode = JacobianMode::Reverse);
// Second derivatives of a scalar f: shape x.shape + x.shape (forward over reverse).
TMATH_API Tensor hessian(UnaryFunction f, const Tensor& x);
// Hessian-vector product H(x) v = jvp of grad, without forming H.
TMATH_API Tensor hvp(UnaryFunction f, const Tensor& x, const Tensor& v);

// x with a zero derivative: transforms treat the result as a constant.
TMATH_API Tensor stop_gradient(const Tensor& x);

// f with a user reverse rule: bwd(primals, outputs, output cotangents) returns one
// cotangent per primal (undefined = zero). Output cotangents arrive as zeros where
// unused. Forward mode transposes bwd (it must be linear in the cotangents).
using VjpRule = std::function<TensorList(const TensorList& primals, const TensorList& outputs,
                                         const TensorList& cotangents)>;
TMATH_API Function custom_vjp(Function f, VjpRule bwd);
// f with a user forward rule: rule(primals, tangents) returns one tangent per output;
// tangents of primals that are not differentiated arrive as zeros. Reverse mode
// transposes the rule (it must be linear in the tangents).
using JvpRule = std::function<TensorList(const TensorList& primals, const TensorList& tangents)>;
TMATH_API Function custom_jvp(Function f, JvpRule rule);

// f whose intermediates are not kept for the backward pass: the pullback recomputes
// them from f's inputs (after the cotangents of its outputs are ready), trading
// compute for memory. Outside a transform it is f itself. f (like the rules above) is
// kept by the gradient graph and called during the backward pass: what it captures by
// reference must outlive that.
TMATH_API Function checkpoint(Function f);

}  // namespace tmath
