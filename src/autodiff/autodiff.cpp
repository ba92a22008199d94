// Tape-based automatic differentiation over the lazy graph.
//
// While a transform traces f, a node observer (core/graph.cpp) reports every new node;
// nodes with an input that depends on the differentiated arguments are appended to the
// tape with their primitive, inputs and outputs. The tape owns these handles, so
// evaluation inside f (which drops a node's graph) does not cut the trace. Sweeps
// walk the tape backwards (vjp rules) or forwards (jvp rules) and build lazy tensors;
// those are recorded by enclosing tapes like any other node, which is how transforms
// nest.
#include "tmath/autodiff.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "core/primitives.h"
#include "core/tensor_impl.h"
#include "jit/jit.h"
#include "tmath/error.h"
#include "tmath/ops.h"
#include "tmath/transforms.h"

namespace tmath {
namespace {

using detail::make_node;
using detail::make_nodes;
using detail::shape_size;

std::string shape_str(const Shape& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

// ---- helper primitives ---------------------------------------------------------------

// Pure views of input 0 (no kernel).
void view_of(const Tensor& in, TensorImpl& out) {
  const TensorImpl& x = *in.impl();
  out.shape = x.shape;
  out.size = x.size;
  out.set_view(x.buffer, x.strides, x.offset);
}

// A fresh handle on x: the node a transform differentiates with respect to.
class IdentityPrim : public Primitive {
 public:
  std::string name() const override { return "identity"; }
  void eval(Backend*, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override {
    view_of(in[0], *out[0]);
  }
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<int>&, const std::vector<Tensor>&) override {
    return {ct[0]};
  }
  std::vector<Tensor> jvp(const std::vector<Tensor>&, const std::vector<Tensor>& t,
                          const std::vector<int>&) override {
    return {t[0]};
  }
};

// x as a constant: the observer never records it.
class StopGradientPrim : public Primitive {
 public:
  std::string name() const override { return "stop_gradient"; }
  void eval(Backend*, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override {
    view_of(in[0], *out[0]);
  }
  std::vector<Tensor> vjp(const std::vector<Tensor>& p, const std::vector<Tensor>&,
                          const std::vector<int>&, const std::vector<Tensor>&) override {
    return {zeros_like(p[0])};
  }
  std::vector<Tensor> jvp(const std::vector<Tensor>& p, const std::vector<Tensor>&,
                          const std::vector<int>&) override {
    return {zeros_like(p[0])};
  }
};

// Input 0, available only after inputs 1.. are evaluated: orders the recomputation of a
// checkpointed function after the cotangents it needs (the scheduler evaluates inputs
// first), so recomputed intermediates are not all alive at once.
class AfterPrim : public Primitive {
 public:
  std::string name() const override { return "after"; }
  void eval(Backend*, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override {
    view_of(in[0], *out[0]);
  }
  std::vector<Tensor> vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                          const std::vector<int>& argnums, const std::vector<Tensor>&) override {
    std::vector<Tensor> r;
    for (int i : argnums) r.push_back(i == 0 ? ct[0] : zeros_like(p[i]));
    return r;
  }
  std::vector<Tensor> jvp(const std::vector<Tensor>&, const std::vector<Tensor>& t,
                          const std::vector<int>& argnums) override {
    for (size_t k = 0; k < argnums.size(); ++k)
      if (argnums[k] == 0) return {t[k]};
    return {Tensor()};
  }
};

Tensor identity(const Tensor& x) {
  return make_node(x.shape(), x.dtype(), x.device(), std::make_shared<IdentityPrim>(), {x});
}

Tensor after(const Tensor& x, const TensorList& deps) {
  TensorList in{x};
  for (const auto& d : deps)
    if (d.defined()) in.push_back(d);
  if (in.size() == 1) return x;
  return make_node(x.shape(), x.dtype(), x.device(), std::make_shared<AfterPrim>(), in);
}

// ---- tapes -----------------------------------------------------------------------------
struct Entry {
  std::shared_ptr<Primitive> prim;
  TensorList inputs;
  TensorList outputs;       // in output-index order
  std::vector<int> active;  // inputs that depend on the tape's leaves
};

struct Tape {
  std::unordered_set<const TensorImpl*> active;
  std::vector<Entry> entries;
};

thread_local std::vector<Tape*> t_tapes;

void observe(const TensorList& outs) {
  const TensorImpl& n = *outs[0].impl();
  if (dynamic_cast<const StopGradientPrim*>(n.prim.get())) return;
  for (Tape* tape : t_tapes) {
    std::vector<int> act;
    for (size_t i = 0; i < n.inputs.size(); ++i)
      if (tape->active.count(n.inputs[i].impl().get())) act.push_back(static_cast<int>(i));
    if (act.empty()) continue;
    bool any = false;
    for (const auto& o : outs)
      if (is_inexact(o.dtype())) {
        tape->active.insert(o.impl().get());
        any = true;
      }
    if (any) tape->entries.push_back(Entry{n.prim, n.inputs, outs, std::move(act)});
  }
}

void sync_observer() {
  detail::set_node_observer(t_tapes.empty() ? nullptr : &observe);
}

// Records on `tape` (on top of the enclosing ones) while alive.
class Recording {
 public:
  explicit Recording(Tape* tape) {
    t_tapes.push_back(tape);
    sync_observer();
  }
  ~Recording() {
    t_tapes.pop_back();
    sync_observer();
  }
  Recording(const Recording&) = delete;
  Recording& operator=(const Recording&) = delete;
};

// Records nothing (not even on enclosing tapes) while alive.
class Suspend {
 public:
  Suspend() : saved_(std::move(t_tapes)) {
    t_tapes.clear();
    sync_observer();
  }
  ~Suspend() {
    t_tapes = std::move(saved_);
    sync_observer();
  }
  Suspend(const Suspend&) = delete;
  Suspend& operator=(const Suspend&) = delete;

 private:
  std::vector<Tape*> saved_;
};

struct Trace {
  std::shared_ptr<Tape> tape;
  TensorList leaves;   // one per differentiated argument
  TensorList outputs;  // f's outputs
};

void check_inexact(const Tensor& x, const char* op, const char* what, size_t i) {
  if (!x.defined())
    throw ValueError(std::string("[") + op + "] " + what + " " + std::to_string(i) +
                     " is undefined");
  if (!is_inexact(x.dtype()))
    throw DTypeError(std::string("[") + op + "] " + what + " " + std::to_string(i) + " has dtype " +
                     std::string(dtype_name(x.dtype())) +
                     "; only float and complex tensors can be differentiated");
}

std::vector<int> check_argnums(const std::vector<int>& argnums, size_t n, const char* op) {
  if (argnums.empty()) throw ValueError(std::string("[") + op + "] argnums is empty");
  std::vector<int> r;
  for (int a : argnums) {
    int i = a < 0 ? a + static_cast<int>(n) : a;
    if (i < 0 || i >= static_cast<int>(n))
      throw ValueError(std::string("[") + op + "] argnum " + std::to_string(a) +
                       " is out of range for " + std::to_string(n) + " arguments");
    if (std::find(r.begin(), r.end(), i) != r.end())
      throw ValueError(std::string("[") + op + "] argnum " + std::to_string(a) + " is repeated");
    r.push_back(i);
  }
  return r;
}

Trace trace(const Function& f, const TensorList& primals, const std::vector<int>& argnums,
            const char* op) {
  Trace tr;
  tr.tape = std::make_shared<Tape>();
  TensorList args = primals;
  for (int i : argnums) {
    check_inexact(primals[i], op, "argument", static_cast<size_t>(i));
    Tensor leaf = identity(primals[i]);
    tr.tape->active.insert(leaf.impl().get());
    tr.leaves.push_back(leaf);
    args[i] = leaf;
  }
  Recording rec(tr.tape.get());
  tr.outputs = f(args);
  for (size_t i = 0; i < tr.outputs.size(); ++i)
    if (!tr.outputs[i].defined())
      throw ValueError(std::string("[") + op + "] the function's output " + std::to_string(i) +
                       " is undefined");
  return tr;
}

// g made to fit the shape and dtype of x (rules may return a broadcast or promoted form).
Tensor fit(Tensor g, const Tensor& x) {
  if (g.shape() != x.shape()) {
    if (g.size() == x.size()) {
      g = reshape(g, x.shape());
    } else {
      int extra = g.ndim() - x.ndim();
      Axes axes;
      for (int i = 0; i < g.ndim(); ++i)
        if (i < extra || (x.shape(i - extra) == 1 && g.shape(i) != 1)) axes.push_back(i);
      g = reshape(sum(g, axes, true), x.shape());
    }
  }
  if (g.dtype() != x.dtype()) {
    if (is_complex(g.dtype()) && !is_complex(x.dtype())) g = real(g);
    g = astype(g, x.dtype());
  }
  return g;
}

void accumulate(std::unordered_map<const TensorImpl*, Tensor>& m, const Tensor& x, Tensor g) {
  g = fit(std::move(g), x);
  auto [it, fresh] = m.try_emplace(x.impl().get(), g);
  if (!fresh) it->second = it->second + g;
}

// Reverse sweep: cotangents of the leaves given cotangents of `outputs` (undefined =
// zero). `order`, if given, receives leaf indices in the order their cotangents complete.
TensorList backward(const Tape& tape, const TensorList& leaves, const TensorList& outputs,
                    const TensorList& cts, std::vector<int>* order = nullptr) {
  std::unordered_map<const TensorImpl*, Tensor> ct;
  for (size_t i = 0; i < outputs.size() && i < cts.size(); ++i)
    if (cts[i].defined() && is_inexact(outputs[i].dtype())) accumulate(ct, outputs[i], cts[i]);
  std::unordered_map<const TensorImpl*, size_t> last_touch;
  std::vector<const TensorImpl*> leaf_ids;
  for (const auto& l : leaves) leaf_ids.push_back(l.impl().get());
  size_t step = 0;
  for (auto it = tape.entries.rbegin(); it != tape.entries.rend(); ++it, ++step) {
    const Entry& e = *it;
    TensorList gs(e.outputs.size());
    bool any = false;
    for (size_t j = 0; j < e.outputs.size(); ++j) {
      auto f = ct.find(e.outputs[j].impl().get());
      if (f == ct.end()) continue;
      gs[j] = std::move(f->second);
      ct.erase(f);
      any = true;
    }
    if (!any) continue;
    TensorList r = e.prim->vjp(e.inputs, gs, e.active, e.outputs);
    for (size_t k = 0; k < e.active.size() && k < r.size(); ++k) {
      if (!r[k].defined()) continue;
      const Tensor& x = e.inputs[e.active[k]];
      accumulate(ct, x, r[k]);
      last_touch[x.impl().get()] = step;
    }
  }
  TensorList res;
  std::vector<std::pair<size_t, int>> done;
  for (size_t i = 0; i < leaves.size(); ++i) {
    auto f = ct.find(leaf_ids[i]);
    res.push_back(f != ct.end() ? f->second : zeros_like(leaves[i]));
    auto lt = last_touch.find(leaf_ids[i]);
    done.emplace_back(lt == last_touch.end() ? 0 : lt->second, static_cast<int>(i));
  }
  if (order) {
    std::stable_sort(done.begin(), done.end());
    for (auto& d : done) order->push_back(d.second);
  }
  return res;
}

TensorList jvp_rule(const Entry& e, const std::vector<int>& act, const TensorList& ts);

// Forward sweep: tangents of `outputs` given tangents of the leaves.
TensorList forward(const Tape& tape, const TensorList& leaves, const TensorList& outputs,
                   const TensorList& tangents) {
  std::unordered_map<const TensorImpl*, Tensor> tan;
  for (size_t i = 0; i < leaves.size(); ++i)
    if (tangents[i].defined()) tan[leaves[i].impl().get()] = fit(tangents[i], leaves[i]);
  for (const Entry& e : tape.entries) {
    std::vector<int> act;
    TensorList ts;
    for (int i : e.active) {
      auto f = tan.find(e.inputs[i].impl().get());
      if (f == tan.end()) continue;
      act.push_back(i);
      ts.push_back(f->second);
    }
    if (act.empty()) continue;
    TensorList r = jvp_rule(e, act, ts);
    for (size_t j = 0; j < e.outputs.size() && j < r.size(); ++j)
      if (r[j].defined() && is_inexact(e.outputs[j].dtype()))
        tan[e.outputs[j].impl().get()] = fit(r[j], e.outputs[j]);
  }
  TensorList res;
  for (const auto& o : outputs) {
    auto f = tan.find(o.impl().get());
    res.push_back(f != tan.end() ? f->second : zeros_like(o));
  }
  return res;
}

// vjp(u) is linear in the cotangent u; its own vjp with cotangent t is J t. Used for
// primitives without a forward rule.
TensorList jvp_by_transpose(Primitive& prim, const TensorList& inputs, const TensorList& outputs,
                            const std::vector<int>& act, const TensorList& ts) {
  Function pull = [&](const TensorList& us) { return prim.vjp(inputs, us, act, outputs); };
  TensorList us;
  std::vector<int> idx;
  for (size_t j = 0; j < outputs.size(); ++j) {
    if (is_inexact(outputs[j].dtype())) idx.push_back(static_cast<int>(j));
    us.push_back(is_inexact(outputs[j].dtype()) ? zeros_like(outputs[j]) : Tensor());
  }
  std::vector<int> argnums;
  for (size_t j = 0; j < us.size(); ++j)
    if (us[j].defined()) argnums.push_back(static_cast<int>(j));
  Trace tr;
  tr.tape = std::make_shared<Tape>();
  TensorList args = us;
  for (int j : argnums) {
    Tensor leaf = identity(us[j]);
    tr.tape->active.insert(leaf.impl().get());
    tr.leaves.push_back(leaf);
    args[j] = leaf;
  }
  {
    Recording rec(tr.tape.get());
    tr.outputs = pull(args);
  }
  TensorList g = backward(*tr.tape, tr.leaves, tr.outputs, ts);
  TensorList r(outputs.size());
  for (size_t k = 0; k < argnums.size(); ++k) r[argnums[k]] = g[k];
  return r;
}

TensorList jvp_rule(const Entry& e, const std::vector<int>& act, const TensorList& ts) {
  try {
    return e.prim->jvp(e.inputs, ts, act);
  } catch (const UnsupportedError&) {
    return jvp_by_transpose(*e.prim, e.inputs, e.outputs, act, ts);
  }
}

// ---- function-wrapping primitives (custom rules, checkpoint) ---------------------------
// Inputs: f's n arguments, then f's outputs computed without recording; outputs: views
// of the latter. Only the first n inputs can be active, so the gradient flows through
// the rule below instead of f's own graph.
class WrapPrim : public Primitive {
 public:
  WrapPrim(size_t n, Function f) : n_(n), f_(std::move(f)) {}
  void eval(Backend*, const std::vector<Tensor>& in, const std::vector<TensorImpl*>& out) override {
    for (size_t j = 0; j < out.size(); ++j) view_of(in[n_ + j], *out[j]);
  }

 protected:
  TensorList args(const TensorList& p) const { return TensorList(p.begin(), p.begin() + n_); }
  size_t n_;
  Function f_;
};

TensorList pick(const TensorList& all, const std::vector<int>& argnums) {
  TensorList r;
  for (int i : argnums) r.push_back(i < static_cast<int>(all.size()) ? all[i] : Tensor());
  return r;
}

class CheckpointPrim : public WrapPrim {
 public:
  using WrapPrim::WrapPrim;
  std::string name() const override { return "checkpoint"; }
  std::vector<Tensor> vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                          const std::vector<int>& argnums, const std::vector<Tensor>&) override {
    TensorList xs = args(p);
    for (auto& x : xs) x = after(x, ct);
    Trace tr = trace(f_, xs, argnums, "checkpoint");
    return backward(*tr.tape, tr.leaves, tr.outputs, ct);
  }
  std::vector<Tensor> jvp(const std::vector<Tensor>& p, const std::vector<Tensor>& t,
                          const std::vector<int>& argnums) override {
    Trace tr = trace(f_, args(p), argnums, "checkpoint");
    return forward(*tr.tape, tr.leaves, tr.outputs, t);
  }
};

class CustomVjpPrim : public WrapPrim {
 public:
  CustomVjpPrim(size_t n, Function f, VjpRule bwd)
      : WrapPrim(n, std::move(f)), bwd_(std::move(bwd)) {}
  std::string name() const override { return "custom_vjp"; }
  std::vector<Tensor> vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                          const std::vector<int>& argnums,
                          const std::vector<Tensor>& outs) override {
    TensorList cts = ct;
    cts.resize(outs.size());
    for (size_t j = 0; j < outs.size(); ++j)
      if (!cts[j].defined()) cts[j] = zeros_like(outs[j]);
    TensorList ys(p.begin() + n_, p.end());
    TensorList r = bwd_(args(p), ys, cts);
    if (r.size() != n_)
      throw ValueError("[custom_vjp] the backward rule returned " + std::to_string(r.size()) +
                       " cotangents for " + std::to_string(n_) + " primals");
    return pick(r, argnums);
  }
  std::vector<Tensor> jvp(const std::vector<Tensor>& p, const std::vector<Tensor>& t,
                          const std::vector<int>& argnums) override {
    TensorList outs(p.begin() + n_, p.end());
    return jvp_by_transpose(*this, p, outs, argnums, t);
  }

 private:
  VjpRule bwd_;
};

class CustomJvpPrim : public WrapPrim {
 public:
  CustomJvpPrim(size_t n, Function f, JvpRule rule)
      : WrapPrim(n, std::move(f)), rule_(std::move(rule)) {}
  std::string name() const override { return "custom_jvp"; }
  std::vector<Tensor> jvp(const std::vector<Tensor>& p, const std::vector<Tensor>& t,
                          const std::vector<int>& argnums) override {
    return call(args(p), full_tangents(p, t, argnums));
  }
  std::vector<Tensor> vjp(const std::vector<Tensor>& p, const std::vector<Tensor>& ct,
                          const std::vector<int>& argnums, const std::vector<Tensor>&) override {
    // The rule is linear in the tangents: its transpose (a vjp in t) is the pullback.
    TensorList xs = args(p);
    TensorList zero_t;
    for (const auto& x : xs) zero_t.push_back(zeros_like(x));
    Function lin = [&](const TensorList& ts) { return call(xs, ts); };
    Trace tr = trace(lin, zero_t, argnums, "custom_jvp");
    return backward(*tr.tape, tr.leaves, tr.outputs, ct);
  }

 private:
  TensorList full_tangents(const TensorList& p, const TensorList& t,
                           const std::vector<int>& argnums) const {
    TensorList ts;
    for (size_t i = 0; i < n_; ++i) ts.push_back(zeros_like(p[i]));
    for (size_t k = 0; k < argnums.size(); ++k) ts[argnums[k]] = t[k];
    return ts;
  }
  TensorList call(const TensorList& xs, const TensorList& ts) const {
    TensorList r = rule_(xs, ts);
    if (r.size() != p_outputs_)
      throw ValueError("[custom_jvp] the forward rule returned " + std::to_string(r.size()) +
                       " tangents for " + std::to_string(p_outputs_) + " outputs");
    return r;
  }

 public:
  size_t p_outputs_ = 0;

 private:
  JvpRule rule_;
};

// Runs f without recording and wraps its outputs in one node of `prim`.
TensorList wrap_call(const std::shared_ptr<WrapPrim>& prim, const Function& f,
                     const TensorList& xs) {
  TensorList ys;
  {
    Suspend s;
    ys = f(xs);
  }
  if (ys.empty()) return ys;
  std::vector<Shape> shapes;
  std::vector<DType> dtypes;
  TensorList in = xs;
  for (size_t j = 0; j < ys.size(); ++j) {
    if (!ys[j].defined())
      throw ValueError("[" + prim->name() + "] the function's output " + std::to_string(j) +
                       " is undefined");
    if (ys[j].device() != ys[0].device())
      throw DeviceError("[" + prim->name() + "] the function's outputs are on different devices");
    shapes.push_back(ys[j].shape());
    dtypes.push_back(ys[j].dtype());
    in.push_back(ys[j]);
  }
  return make_nodes(std::move(shapes), std::move(dtypes), ys[0].device(), prim, std::move(in));
}

bool top_level() {
  return t_tapes.empty();
}

}  // namespace

// ---- public transforms ----------------------------------------------------------------
std::function<std::pair<Tensor, TensorList>(const TensorList&)> value_and_grad(
    ScalarFunction f, std::vector<int> argnums) {
  if (!f) throw ValueError("[value_and_grad] empty function");
  return [f = std::move(f), argnums](const TensorList& args) {
    auto an = check_argnums(argnums, args.size(), "grad");
    Function ff = [&](const TensorList& a) { return TensorList{f(a)}; };
    Trace tr = trace(ff, args, an, "grad");
    const Tensor& y = tr.outputs[0];
    if (y.size() != 1 || !is_floating(y.dtype()))
      throw ValueError(
          "[grad] the function must return a real scalar (size-1 float tensor), got "
          "shape " +
          shape_str(y.shape()) + " dtype " + std::string(dtype_name(y.dtype())));
    std::vector<int> order;
    TensorList g = backward(*tr.tape, tr.leaves, tr.outputs, {ones_like(y)}, &order);
    Tensor value = y;
    tr = Trace{};  // drop the tape: the gradient graph keeps what it needs
    // Evaluated here unless an outer transform or a compile() trace still needs the graph.
    if (top_level() && !jit::tracing()) {
      TensorList roots;
      for (int i : order) roots.push_back(g[i]);
      roots.push_back(value);
      eval(roots);
    }
    return std::make_pair(value, g);
  };
}

std::function<TensorList(const TensorList&)> grad(ScalarFunction f, std::vector<int> argnums) {
  if (!f) throw ValueError("[grad] empty function");
  auto vg = value_and_grad(std::move(f), std::move(argnums));
  return [vg](const TensorList& args) { return vg(args).second; };
}

UnaryFunction grad(UnaryFunction f) {
  if (!f) throw ValueError("[grad] empty function");
  auto g = grad(ScalarFunction([f](const TensorList& a) { return f(a[0]); }), {0});
  return [g](const Tensor& x) { return g({x})[0]; };
}

VjpResult vjp(Function f, const TensorList& primals) {
  if (!f) throw ValueError("[vjp] empty function");
  std::vector<int> an;
  for (size_t i = 0; i < primals.size(); ++i) an.push_back(static_cast<int>(i));
  auto tr = std::make_shared<Trace>(trace(f, primals, an, "vjp"));
  VjpResult r;
  r.outputs = tr->outputs;
  r.pullback = [tr](const TensorList& cts) {
    if (cts.size() != tr->outputs.size())
      throw ValueError("[vjp] got " + std::to_string(cts.size()) + " cotangents for " +
                       std::to_string(tr->outputs.size()) + " outputs");
    for (size_t i = 0; i < cts.size(); ++i)
      if (cts[i].defined() && cts[i].shape() != tr->outputs[i].shape())
        throw ShapeError("[vjp] cotangent " + std::to_string(i) + " has shape " +
                         shape_str(cts[i].shape()) + ", the output has shape " +
                         shape_str(tr->outputs[i].shape()));
    return backward(*tr->tape, tr->leaves, tr->outputs, cts);
  };
  return r;
}

std::pair<TensorList, TensorList> vjp(Function f, const TensorList& primals,
                                      const TensorList& cotangents) {
  VjpResult r = vjp(std::move(f), primals);
  TensorList g = r.pullback(cotangents);
  return {r.outputs, g};
}

std::pair<TensorList, TensorList> jvp(Function f, const TensorList& primals,
                                      const TensorList& tangents) {
  if (!f) throw ValueError("[jvp] empty function");
  if (tangents.size() != primals.size())
    throw ValueError("[jvp] got " + std::to_string(tangents.size()) + " tangents for " +
                     std::to_string(primals.size()) + " primals");
  std::vector<int> an;
  TensorList ts;
  for (size_t i = 0; i < primals.size(); ++i) {
    if (!tangents[i].defined()) continue;
    if (tangents[i].shape() != primals[i].shape())
      throw ShapeError("[jvp] tangent " + std::to_string(i) + " has shape " +
                       shape_str(tangents[i].shape()) + ", the primal has shape " +
                       shape_str(primals[i].shape()));
    an.push_back(static_cast<int>(i));
    ts.push_back(tangents[i]);
  }
  if (an.empty()) {
    TensorList outs = f(primals);
    TensorList z;
    for (const auto& o : outs) z.push_back(zeros_like(o));
    return {outs, z};
  }
  Trace tr = trace(f, primals, an, "jvp");
  TensorList t = forward(*tr.tape, tr.leaves, tr.outputs, ts);
  return {tr.outputs, t};
}

Tensor jacobian(UnaryFunction f, const Tensor& x, JacobianMode mode) {
  if (!f) throw ValueError("[jacobian] empty function");
  check_inexact(x, "jacobian", "argument", 0);
  Function ff = [&](const TensorList& a) { return TensorList{f(a[0])}; };
  Trace tr = trace(ff, {x}, {0}, "jacobian");
  const Tensor& y = tr.outputs[0];
  Shape out_shape = y.shape();
  out_shape.insert(out_shape.end(), x.shape().begin(), x.shape().end());
  const int64_t m = y.size(), n = x.size();
  if (m == 0 || n == 0) return zeros(out_shape, x.dtype(), x.device());
  TensorList rows;
  if (mode == JacobianMode::Reverse) {
    Tensor basis = eye(m, m, 0, y.dtype(), y.device());
    for (int64_t i = 0; i < m; ++i) {
      Tensor ct = reshape(slice(basis, 0, i, i + 1), y.shape());
      rows.push_back(flatten(backward(*tr.tape, tr.leaves, tr.outputs, {ct})[0]));
    }
    return reshape(stack(rows, 0), out_shape);
  }
  Tensor basis = eye(n, n, 0, x.dtype(), x.device());
  for (int64_t j = 0; j < n; ++j) {
    Tensor t = reshape(slice(basis, 0, j, j + 1), x.shape());
    rows.push_back(flatten(forward(*tr.tape, tr.leaves, tr.outputs, {t})[0]));
  }
  return reshape(stack(rows, -1), out_shape);
}

Tensor hessian(UnaryFunction f, const Tensor& x) {
  if (!f) throw ValueError("[hessian] empty function");
  UnaryFunction g = grad(std::move(f));
  return jacobian(g, x, JacobianMode::Forward);
}

Tensor hvp(UnaryFunction f, const Tensor& x, const Tensor& v) {
  if (!f) throw ValueError("[hvp] empty function");
  UnaryFunction g = grad(std::move(f));
  Function gf = [&](const TensorList& a) { return TensorList{g(a[0])}; };
  return jvp(gf, {x}, {v}).second[0];
}

Tensor stop_gradient(const Tensor& x) {
  if (!x.defined()) throw ValueError("[stop_gradient] undefined tensor argument");
  return make_node(x.shape(), x.dtype(), x.device(), std::make_shared<StopGradientPrim>(), {x});
}

Function custom_vjp(Function f, VjpRule bwd) {
  if (!f || !bwd) throw ValueError("[custom_vjp] empty function or rule");
  return [f = std::move(f), bwd = std::move(bwd)](const TensorList& xs) {
    if (top_level()) return f(xs);
    return wrap_call(std::make_shared<CustomVjpPrim>(xs.size(), f, bwd), f, xs);
  };
}

Function custom_jvp(Function f, JvpRule rule) {
  if (!f || !rule) throw ValueError("[custom_jvp] empty function or rule");
  return [f = std::move(f), rule = std::move(rule)](const TensorList& xs) {
    if (top_level()) return f(xs);
    auto prim = std::make_shared<CustomJvpPrim>(xs.size(), f, rule);
    TensorList r = wrap_call(prim, f, xs);
    prim->p_outputs_ = r.size();
    return r;
  };
}

Function checkpoint(Function f) {
  if (!f) throw ValueError("[checkpoint] empty function");
  return [f = std::move(f)](const TensorList& xs) {
    if (top_level()) return f(xs);
    return wrap_call(std::make_shared<CheckpointPrim>(xs.size(), f), f, xs);
  };
}

}  // namespace tmath
