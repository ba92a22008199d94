// compile(fn): trace once per argument signature, simplify, replay.
//
// Tracing calls fn on placeholder tensors (pending nodes that refuse to be
// evaluated) and records the graph it builds. Subgraphs that do not depend on
// the arguments are evaluated once, at trace time, and kept as constants;
// elementwise nodes that compute the same thing from the same operands are
// merged. A replay re-creates the recorded nodes on the real arguments and
// evaluates the outputs together, so fusion sees the whole function.
#include <algorithm>
#include <map>
#include <mutex>
#include <unordered_map>

#include "core/dispatch.h"
#include "core/primitives.h"
#include "jit/jit.h"
#include "tmath/error.h"
#include "tmath/transforms.h"

namespace tmath {

namespace {

class PlaceholderPrim : public Primitive {
 public:
  std::string name() const override { return "placeholder"; }
  void eval(Backend*, const std::vector<Tensor>&, const std::vector<TensorImpl*>&) override {
    throw ValueError(
        "[compile] the function reads tensor data while being traced (eval, item, tolist, "
        "printing or a copy to the host of a value that depends on its arguments); compile "
        "needs a function whose operations do not depend on data values");
  }
};

struct Ref {
  enum class Kind : uint8_t { Arg, Const, Node };
  Kind kind = Kind::Arg;
  int index = 0;
  int output = 0;
};

struct TNode {
  std::shared_ptr<Primitive> prim;
  std::vector<Ref> inputs;
  std::vector<Shape> shapes;
  std::vector<DType> dtypes;
  Device device;
};

struct Trace {
  std::vector<Tensor> consts;
  std::vector<TNode> nodes;
  std::vector<Ref> outputs;
  // Fusion planned once: node i is replaced by fused[fused_of[i]] (its root), or
  // skipped (-2: a member computed inside a fused program), or kept (-1).
  std::vector<int> fused_of;
  struct Fused {
    std::shared_ptr<Primitive> prim;  // FusedPrim
    std::vector<Ref> leaves;
  };
  std::vector<Fused> fused;
};

// One planned fused group as a graph node: its inputs are the group's inputs.
class FusedPrim : public Primitive {
 public:
  FusedPrim(FusedProgram p, std::shared_ptr<Backend> be, size_t ops)
      : program_(std::move(p)), backend_(std::move(be)), ops_(ops) {}
  std::string name() const override { return "fused"; }
  void eval(Backend*, const std::vector<Tensor>& in,
            const std::vector<TensorImpl*>& out) override {
    alloc_output(*out[0], in, true);
    std::vector<TensorImpl*> leaves;
    leaves.reserve(in.size());
    for (const auto& t : in) leaves.push_back(t.impl().get());
    jit::launch(*backend_, program_, leaves, *out[0], ops_);
    detail::count_nodes(ops_ - 1);  // run_primitive counted one
  }

 private:
  FusedProgram program_;
  std::shared_ptr<Backend> backend_;
  size_t ops_;
};

// A recorded node on new inputs: its pending output(s).
std::vector<Tensor> instantiate(const TNode& n, std::vector<Tensor> inputs) {
  if (n.shapes.size() == 1)
    return {detail::make_node(n.shapes[0], n.dtypes[0], n.device, n.prim, std::move(inputs))};
  return detail::make_nodes(n.shapes, n.dtypes, n.device, n.prim, std::move(inputs));
}

std::string signature_of(const std::vector<Tensor>& args) {
  std::string s;
  for (const auto& a : args) {
    if (!a.defined()) throw ValueError("[compile] undefined tensor argument");
    s += std::to_string(static_cast<int>(a.dtype()));
    s += a.weak_type() ? 'w' : 's';
    s += a.device().str();
    s += '(';
    for (auto d : a.shape()) s += std::to_string(d) + ",";
    s += ')';
  }
  return s;
}

std::string ref_key(const Ref& r) {
  return std::to_string(static_cast<int>(r.kind)) + "." + std::to_string(r.index) + "." +
         std::to_string(r.output);
}

}  // namespace

struct CompiledFunction::Impl {
  TensorFunction fn;
  std::mutex mu;
  std::map<std::string, std::shared_ptr<const Trace>> traces;
  int64_t ntraces = 0;

  std::shared_ptr<const Trace> trace(const std::vector<Tensor>& args);
  static void plan_fusion(Trace& tr, const std::vector<Tensor>& ph);
};

namespace {
thread_local int t_tracing = 0;
struct TracingScope {
  TracingScope() { ++t_tracing; }
  ~TracingScope() { --t_tracing; }
  TracingScope(const TracingScope&) = delete;
  TracingScope& operator=(const TracingScope&) = delete;
};
}  // namespace

bool jit::tracing() {
  return t_tracing > 0;
}

std::shared_ptr<const Trace> CompiledFunction::Impl::trace(const std::vector<Tensor>& args) {
  using detail::TensorImpl;
  static const auto placeholder = std::make_shared<PlaceholderPrim>();
  EagerScope lazy(false);
  TracingScope tracing;
  std::vector<Tensor> ph;
  std::unordered_map<const TensorImpl*, int> arg_of;
  for (size_t k = 0; k < args.size(); ++k) {
    ph.push_back(detail::make_node(args[k].shape(), args[k].dtype(), args[k].device(), placeholder,
                                   {}));
    ph.back().impl()->weak = args[k].weak_type();
    arg_of.emplace(ph.back().impl().get(), static_cast<int>(k));
  }
  std::vector<Tensor> outs = fn(ph);

  // Post-order over pending nodes reachable from the outputs; `dep`: depends on an argument.
  std::vector<TensorImpl*> order;
  std::unordered_map<const TensorImpl*, bool> dep;
  {
    std::vector<std::pair<TensorImpl*, size_t>> stack;
    for (const auto& o : outs) {
      if (!o.defined()) throw ValueError("[compile] the function returned an undefined tensor");
      TensorImpl* r = o.impl().get();
      if (dep.count(r)) continue;
      stack.emplace_back(r, 0);
      dep.emplace(r, false);
      while (!stack.empty()) {
        auto& [n, i] = stack.back();
        if (arg_of.count(n) || n->evaluated()) {
          dep[n] = arg_of.count(n) > 0;
          stack.pop_back();
          continue;
        }
        if (i < n->inputs.size()) {
          TensorImpl* c = n->inputs[i++].impl().get();
          if (!dep.count(c)) {
            dep.emplace(c, false);
            stack.emplace_back(c, 0);
          }
        } else {
          bool d = false;
          for (const auto& in : n->inputs) d = d || dep[in.impl().get()];
          dep[n] = d;
          order.push_back(n);
          stack.pop_back();
        }
      }
    }
  }
  // Constant folding: evaluate every argument-free value the traced graph uses.
  std::vector<Tensor> to_fold;
  auto needs_fold = [&](const Tensor& t) {
    TensorImpl* p = t.impl().get();
    return !p->evaluated() && !arg_of.count(p) && !dep[p];
  };
  for (auto* n : order)
    if (dep[n])
      for (const auto& in : n->inputs)
        if (needs_fold(in)) to_fold.push_back(in);
  for (const auto& o : outs)
    if (needs_fold(o)) to_fold.push_back(o);
  {
    EagerScope eager_off(false);
    eval(to_fold);
  }

  auto result = std::make_shared<Trace>();
  std::unordered_map<const TensorImpl*, Ref> ref_of;
  std::unordered_map<std::string, int> cse;
  auto ref = [&](const Tensor& t) -> Ref {
    TensorImpl* p = t.impl().get();
    if (auto a = arg_of.find(p); a != arg_of.end()) return Ref{Ref::Kind::Arg, a->second, 0};
    if (auto r = ref_of.find(p); r != ref_of.end()) return r->second;
    if (!p->evaluated())
      throw Error("[compile] internal: unrecorded pending node '" + p->prim->name() + "'");
    // Constants: evaluated tensors (captured, or folded above).
    const int idx = static_cast<int>(result->consts.size());
    result->consts.push_back(t);
    Ref r{Ref::Kind::Const, idx, 0};
    ref_of.emplace(p, r);
    return r;
  };
  for (auto* n : order) {
    if (!dep[n] || ref_of.count(n)) continue;
    TNode node;
    node.prim = n->prim;
    node.device = n->device;
    for (const auto& in : n->inputs) node.inputs.push_back(ref(in));
    // Outputs: the node, or all outputs of a multi-output primitive.
    std::vector<std::shared_ptr<TensorImpl>> outs_of(n->siblings.size() + 1);
    if (n->siblings.empty()) {
      node.shapes = {n->shape};
      node.dtypes = {n->dtype};
    } else {
      node.shapes.assign(outs_of.size(), n->shape);
      node.dtypes.assign(outs_of.size(), n->dtype);
      node.shapes[n->output_index] = n->shape;
      for (auto& w : n->siblings)
        if (auto s = w.lock()) {
          node.shapes[s->output_index] = s->shape;
          node.dtypes[s->output_index] = s->dtype;
          outs_of[s->output_index] = s;
        }
    }
    // Common subexpressions (elementwise nodes: op, dtype and operands decide the value).
    if (auto fi = n->prim->fused_instr(*n); fi && n->siblings.empty()) {
      std::string key = std::to_string(static_cast<int>(fi->kind)) + "/" +
                        std::to_string(static_cast<int>(fi->op)) + "/" +
                        std::to_string(static_cast<int>(fi->dtype)) + "/" +
                        std::to_string(n->shape.size());
      for (auto d : n->shape) {
        key += ',';
        key += std::to_string(d);
      }
      for (const auto& r : node.inputs) {
        key += '|';
        key += ref_key(r);
      }
      if (auto c = cse.find(key); c != cse.end()) {
        ref_of.emplace(n, Ref{Ref::Kind::Node, c->second, 0});
        continue;
      }
      cse.emplace(std::move(key), static_cast<int>(result->nodes.size()));
    }
    const int idx = static_cast<int>(result->nodes.size());
    ref_of.emplace(n, Ref{Ref::Kind::Node, idx, n->output_index});
    for (auto& w : n->siblings)
      if (auto s = w.lock()) ref_of.emplace(s.get(), Ref{Ref::Kind::Node, idx, s->output_index});
    result->nodes.push_back(std::move(node));
  }
  for (const auto& o : outs) result->outputs.push_back(ref(o));
  plan_fusion(*result, ph);
  return result;
}

// Instantiates the trace on the placeholders and plans fusion once; replays then
// create one FusedPrim node per group instead of its members.
void CompiledFunction::Impl::plan_fusion(Trace& tr, const std::vector<Tensor>& ph) {
  using detail::TensorImpl;
  tr.fused_of.assign(tr.nodes.size(), -1);
  if (!jit::enabled()) return;
  std::vector<std::vector<Tensor>> vals(tr.nodes.size());
  std::unordered_map<const TensorImpl*, int> node_of;
  auto get = [&](const Ref& r) -> const Tensor& {
    if (r.kind == Ref::Kind::Arg) return ph[r.index];
    if (r.kind == Ref::Kind::Const) return tr.consts[r.index];
    return vals[r.index][r.output];
  };
  std::vector<TensorImpl*> order;
  for (size_t i = 0; i < tr.nodes.size(); ++i) {
    const TNode& n = tr.nodes[i];
    std::vector<Tensor> inputs;
    for (const auto& r : n.inputs) inputs.push_back(get(r));
    vals[i] = instantiate(n, std::move(inputs));
    for (auto& v : vals[i]) node_of.emplace(v.impl().get(), static_cast<int>(i));
    order.push_back(vals[i][0].impl().get());
  }
  std::vector<TensorImpl*> roots;
  for (const auto& r : tr.outputs)
    if (r.kind == Ref::Kind::Node) roots.push_back(get(r).impl().get());
  jit::Plan plan = jit::plan(order, roots);
  for (auto& g : plan.groups) {
    Trace::Fused f;
    for (TensorImpl* l : g.leaves) {
      auto a = std::find_if(ph.begin(), ph.end(),
                            [&](const Tensor& t) { return t.impl().get() == l; });
      if (a != ph.end()) {
        f.leaves.push_back(Ref{Ref::Kind::Arg, static_cast<int>(a - ph.begin()), 0});
      } else if (auto nd = node_of.find(l); nd != node_of.end()) {
        f.leaves.push_back(Ref{Ref::Kind::Node, nd->second, l->output_index});
      } else {
        auto c = std::find_if(tr.consts.begin(), tr.consts.end(),
                              [&](const Tensor& t) { return t.impl().get() == l; });
        if (c == tr.consts.end()) return;  // unexpected: keep the plain replay
        f.leaves.push_back(Ref{Ref::Kind::Const, static_cast<int>(c - tr.consts.begin()), 0});
      }
    }
    f.prim = std::make_shared<FusedPrim>(g.program, get_backend(g.backend->name()),
                                         g.members.size());
    const int fid = static_cast<int>(tr.fused.size());
    for (TensorImpl* m : g.members) tr.fused_of[node_of.at(m)] = m == g.root ? fid : -2;
    tr.fused.push_back(std::move(f));
  }
}

std::vector<Tensor> CompiledFunction::operator()(const std::vector<Tensor>& args) const {
  if (!impl_) throw ValueError("[compile] empty compiled function");
  const std::string sig = signature_of(args);
  std::shared_ptr<const Trace> tr;
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    auto it = impl_->traces.find(sig);
    if (it != impl_->traces.end()) {
      tr = it->second;
    } else {
      tr = impl_->trace(args);
      impl_->traces.emplace(sig, tr);
      ++impl_->ntraces;
      jit::count_trace();
      if (jit::log_enabled("jit"))
        jit::log("jit", "compile: traced " + std::to_string(tr->nodes.size()) +
                            " nodes for signature " + sig);
    }
  }
  jit::count_compiled_call();
  // Re-create the recorded nodes on the arguments, then evaluate all outputs at once.
  EagerScope lazy(false);
  std::vector<std::vector<Tensor>> vals(tr->nodes.size());
  auto get = [&](const Ref& r) -> const Tensor& {
    switch (r.kind) {
      case Ref::Kind::Arg:
        return args[r.index];
      case Ref::Kind::Const:
        return tr->consts[r.index];
      default:
        return vals[r.index][r.output];
    }
  };
  for (size_t i = 0; i < tr->nodes.size(); ++i) {
    const TNode& n = tr->nodes[i];
    const int fid = tr->fused_of.empty() ? -1 : tr->fused_of[i];
    if (fid == -2) continue;  // computed inside a fused program
    std::vector<Tensor> inputs;
    if (fid >= 0) {
      const auto& f = tr->fused[fid];
      inputs.reserve(f.leaves.size());
      for (const auto& r : f.leaves) inputs.push_back(get(r));
      vals[i] = {detail::make_node(n.shapes[0], n.dtypes[0], n.device, f.prim, std::move(inputs))};
      continue;
    }
    inputs.reserve(n.inputs.size());
    for (const auto& r : n.inputs) inputs.push_back(get(r));
    vals[i] = instantiate(n, std::move(inputs));
  }
  std::vector<Tensor> out;
  out.reserve(tr->outputs.size());
  for (const auto& r : tr->outputs) out.push_back(get(r));
  vals.clear();
  eval(out);
  return out;
}

int64_t CompiledFunction::traces() const {
  if (!impl_) return 0;
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->ntraces;
}

CompiledFunction compile(TensorFunction fn) {
  if (!fn) throw ValueError("[compile] empty function");
  auto impl = std::make_shared<CompiledFunction::Impl>();
  impl->fn = std::move(fn);
  return CompiledFunction(std::move(impl));
}

}  // namespace tmath
