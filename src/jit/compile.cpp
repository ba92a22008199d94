// compile(fn): trace once per argument signature, simplify, replay.
//
// Tracing calls fn on placeholder tensors (pending nodes that refuse to be
// evaluated) and records the graph it builds. Subgraphs that do not depend on
// the arguments are evaluated once, at trace time, and kept as constants;
// elementwise nodes that compute the same thing from the same operands are
// merged. A replay re-creates the recorded nodes on the real arguments and
// evaluates the outputs together, so fusion sees the whole function.
//
// Recorded replay (CUDA graphs): on a backend that can record work
// (Backend::begin_capture), the second call of a signature records its replay
// as one device graph, and later calls launch that graph instead of queueing
// every kernel. The recording reads arguments in place while the caller passes
// the same tensors (same storage and layout); an argument seen with different
// storage is copied into a buffer of the recording before each launch (learned
// per argument, re-recorded once). Outputs live in the recording's memory: a
// call whose last outputs are all released reuses it; while they are still
// held a second recording serves the call (two at most, so a loop that feeds
// outputs back as arguments alternates between them), else the call runs node
// by node. Functions the device cannot record (host copies, solvers) run node
// by node from then on, with the reason in TMATH_LOG=jit.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "core/dispatch.h"
#include "core/tensor_impl.h"
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

// ---- recorded replay (CUDA graphs) ----

bool graphs_enabled() {
  static const bool on = !detail::env_off("TMATH_CUDA_GRAPHS");
  return on;
}

// Largest recording kept: the sum of the outputs of the nodes a replay materialises
// (an upper bound of its memory), TMATH_CUDA_GRAPH_MAX_MB, default 256 MiB. Graphs pay off for
// launch-bound work on small tensors; large ones would pin their memory.
uint64_t graph_max_bytes() {
  static const uint64_t v = [] {
    const char* e = std::getenv("TMATH_CUDA_GRAPH_MAX_MB");
    const double mb = e && *e ? std::strtod(e, nullptr) : 256.0;
    return static_cast<uint64_t>(std::max(0.0, mb) * 1024.0 * 1024.0);
  }();
  return v;
}

struct Recording {
  std::unique_ptr<CapturedWork> work;
  std::vector<Tensor> staged;  // per argument: the recording's own copy (varying ones)
  // Per argument read in place: the buffer and layout the recording reads.
  std::vector<std::weak_ptr<detail::Buffer>> arg_buf;
  std::vector<int64_t> arg_off;
  std::vector<Strides> arg_strides;
  struct Out {
    enum class From : uint8_t { Block, Arg, Staged, Const };
    From from = From::Block;
    int index = 0;  // block, argument or constant
    Shape shape;
    Strides strides;
    int64_t offset = 0;
    DType dtype = float32;
    bool weak = false;
  };
  std::vector<Out> outs;
  std::vector<void*> blocks;  // the recording's blocks that outputs live in
  std::vector<size_t> block_bytes;
};

struct GraphState {
  std::mutex mu;
  bool off = false;
  int calls = 0;
  int captures = 0;
  Backend* be = nullptr;
  Device dev;
  std::vector<char> varying;  // per argument: copied into the recording before a launch
  std::vector<std::unique_ptr<Recording>> recs;
};

constexpr int kMaxRecordings = 2;
constexpr int kMaxCaptures = 6;

}  // namespace

struct CompiledFunction::Impl {
  TensorFunction fn;
  std::mutex mu;
  // Per argument signature: the trace and its CUDA graph state.
  struct Entry {
    std::shared_ptr<const Trace> trace;
    std::shared_ptr<GraphState> graph;
  };
  std::map<std::string, Entry> traces;
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

namespace {

// The recorded nodes re-created on `args`, all outputs evaluated at once. Under a
// transform (grad, vjp, jvp, ...) the planned fused programs, which have no derivative
// rules, are replaced by their member primitives, which the transform records (and eval
// fuses again).
std::vector<Tensor> replay_nodes(const Trace& tr, const std::vector<Tensor>& args) {
  EagerScope lazy(false);
  const bool planned = !tr.fused_of.empty() && !detail::node_observer_active();
  std::vector<std::vector<Tensor>> vals(tr.nodes.size());
  auto get = [&](const Ref& r) -> const Tensor& {
    switch (r.kind) {
      case Ref::Kind::Arg:
        return args[r.index];
      case Ref::Kind::Const:
        return tr.consts[r.index];
      default:
        return vals[r.index][r.output];
    }
  };
  for (size_t i = 0; i < tr.nodes.size(); ++i) {
    const TNode& n = tr.nodes[i];
    const int fid = planned ? tr.fused_of[i] : -1;
    if (fid == -2) continue;  // computed inside a fused program
    std::vector<Tensor> inputs;
    if (fid >= 0) {
      const auto& f = tr.fused[fid];
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
  out.reserve(tr.outputs.size());
  for (const auto& r : tr.outputs) out.push_back(get(r));
  vals.clear();
  eval(out);
  return out;
}

void graph_log(const std::string& msg) {
  if (jit::log_enabled("jit")) jit::log("jit", "compile: " + msg);
}

// Whether a signature may be recorded at all: every argument and node on one
// device whose backend records work, and a bounded amount of memory.
std::shared_ptr<GraphState> graph_state_for(const Trace& tr, const std::vector<Tensor>& args) {
  auto gs = std::make_shared<GraphState>();
  gs->off = true;
  if (!graphs_enabled() || args.empty()) return gs;
  const Device dev = args[0].device();
  if (dev.type != DeviceType::CUDA) return gs;
  for (const auto& a : args)
    if (a.device() != dev) return gs;
  uint64_t bytes = 0;  // outputs of the nodes a replay materialises (not fused members)
  for (size_t i = 0; i < tr.nodes.size(); ++i) {
    const TNode& n = tr.nodes[i];
    if (n.device != dev) return gs;
    if (!tr.fused_of.empty() && tr.fused_of[i] == -2) continue;
    for (size_t k = 0; k < n.shapes.size(); ++k)
      bytes += static_cast<uint64_t>(detail::shape_size(n.shapes[k])) * itemsize(n.dtypes[k]);
  }
  if (bytes > graph_max_bytes()) {
    graph_log("no CUDA graph: the traced nodes hold " + std::to_string(bytes >> 20) +
              " MiB (TMATH_CUDA_GRAPH_MAX_MB)");
    return gs;
  }
  gs->be = &detail::primary_backend(dev);
  gs->dev = dev;
  gs->varying.assign(args.size(), 0);
  gs->off = false;
  return gs;
}

bool same_buffer(const Recording& rec, size_t k, const Tensor& a) {
  const auto& im = detail::impl(a);
  return im.buffer && im.buffer == rec.arg_buf[k].lock() && im.offset == rec.arg_off[k] &&
         im.strides == rec.arg_strides[k];
}

// Whether `rec` can serve a call on `args` now: its memory is free and every argument
// it reads in place is the same storage as when it was recorded.
bool usable(const Recording& rec, const GraphState& gs, const std::vector<Tensor>& args) {
  for (size_t k = 0; k < args.size(); ++k) {
    if (gs.varying[k]) {
      if (!rec.staged[k].defined() || rec.staged[k].impl()->buffer.use_count() > 1) return false;
    } else if (!same_buffer(rec, k, args[k])) {
      return false;
    }
  }
  return rec.work->idle();
}

// One launch of `rec`: varying arguments copied in, the graph replayed, its outputs
// handed out as tensors over the recording's blocks.
std::vector<Tensor> launch_recording(Recording& rec, GraphState& gs, const Trace& tr,
                                     const std::vector<Tensor>& args) {
  for (size_t k = 0; k < args.size(); ++k)
    if (gs.varying[k]) gs.be->copy(detail::impl(args[k]).ref(), detail::impl(rec.staged[k]).ref());
  rec.work->replay(rec.blocks);
  Allocator& alloc = gs.be->allocator(gs.dev);
  std::vector<std::shared_ptr<detail::Buffer>> bufs(rec.blocks.size());
  for (size_t i = 0; i < bufs.size(); ++i) {
    auto b = std::make_shared<detail::Buffer>();
    b->ptr = rec.blocks[i];
    b->nbytes = rec.block_bytes[i];
    b->device = gs.dev;
    b->allocator = &alloc;
    bufs[i] = std::move(b);
  }
  std::vector<Tensor> out;
  out.reserve(rec.outs.size());
  for (const auto& o : rec.outs) {
    std::shared_ptr<detail::Buffer> buf;
    switch (o.from) {
      case Recording::Out::From::Block: buf = bufs[o.index]; break;
      case Recording::Out::From::Arg: buf = detail::impl(args[o.index]).buffer; break;
      case Recording::Out::From::Staged: buf = detail::impl(rec.staged[o.index]).buffer; break;
      case Recording::Out::From::Const: buf = detail::impl(tr.consts[o.index]).buffer; break;
    }
    auto im = std::make_shared<detail::TensorImpl>();
    im->shape = o.shape;
    im->size = detail::shape_size(o.shape);
    im->dtype = o.dtype;
    im->device = gs.dev;
    im->weak = o.weak;
    im->set_view(std::move(buf), o.strides, o.offset);
    out.emplace_back(std::move(im));
  }
  jit::count_graph(jit::GraphEvent::Replay);
  return out;
}

// Records a replay of `tr` on `args` as a device graph; nullptr (and gs.off with the
// reason logged) when the device refuses it.
std::unique_ptr<Recording> record(GraphState& gs, const Trace& tr,
                                  const std::vector<Tensor>& args) {
  auto rec = std::make_unique<Recording>();
  const size_t na = args.size();
  rec->staged.resize(na);
  rec->arg_buf.resize(na);
  rec->arg_off.assign(na, 0);
  rec->arg_strides.resize(na);
  std::vector<Tensor> cargs(args);
  for (size_t k = 0; k < na; ++k) {
    const auto& im = detail::impl(args[k]);
    if (gs.varying[k]) {
      rec->staged[k] = detail::make_evaluated(args[k].shape(), args[k].dtype(), gs.dev);
      rec->staged[k].impl()->weak = im.weak;
      cargs[k] = rec->staged[k];
    } else {
      rec->arg_buf[k] = im.buffer;
      rec->arg_off[k] = im.offset;
      rec->arg_strides[k] = im.strides;
    }
  }
  auto refuse = [&](const std::string& why) -> std::unique_ptr<Recording> {
    gs.off = true;
    gs.recs.clear();
    graph_log("no CUDA graph for this signature, it runs node by node: " + why);
    return nullptr;
  };
  if (!gs.be->begin_capture(gs.dev)) return refuse("the backend does not record work");
  std::string why;
  std::vector<Tensor> outs;
  try {
    outs = replay_nodes(tr, cargs);
  } catch (const std::exception& e) {
    why = e.what();
    outs.clear();
  }
  std::string end_why;
  rec->work = gs.be->end_capture(gs.dev, why.empty(), end_why);
  if (!rec->work) return refuse(why.empty() ? end_why : why);
  ++gs.captures;
  jit::count_graph(jit::GraphEvent::Capture);
  if (rec->work->bytes() > graph_max_bytes())
    return refuse("the recording would keep " + std::to_string(rec->work->bytes() >> 20) +
                  " MiB (TMATH_CUDA_GRAPH_MAX_MB)");
  // Where each output lives: a block of the recording, an argument, a constant.
  std::unordered_map<const void*, int> block_of;
  for (const auto& o : outs) {
    const auto& im = detail::impl(o);
    Recording::Out d;
    d.shape = im.shape;
    d.strides = im.strides;
    d.offset = im.offset;
    d.dtype = im.dtype;
    d.weak = im.weak;
    if (im.device != gs.dev || !im.buffer) return refuse("an output is not on the device");
    const detail::Buffer* b = im.buffer.get();
    bool found = false;
    if (rec->work->owns(b->ptr)) {
      auto [it, fresh] = block_of.emplace(b->ptr, static_cast<int>(rec->blocks.size()));
      if (fresh) {
        rec->blocks.push_back(b->ptr);
        rec->block_bytes.push_back(b->nbytes);
      }
      d.from = Recording::Out::From::Block;
      d.index = it->second;
      found = true;
    }
    for (size_t k = 0; k < na && !found; ++k)
      if (detail::impl(cargs[k]).buffer.get() == b) {
        d.from = gs.varying[k] ? Recording::Out::From::Staged : Recording::Out::From::Arg;
        d.index = static_cast<int>(k);
        found = true;
      }
    for (size_t c = 0; c < tr.consts.size() && !found; ++c)
      if (detail::impl(tr.consts[c]).buffer.get() == b) {
        d.from = Recording::Out::From::Const;
        d.index = static_cast<int>(c);
        found = true;
      }
    if (!found) return refuse("an output lives in memory outside the recording");
    rec->outs.push_back(std::move(d));
  }
  outs.clear();  // nothing was computed yet: the recording's memory returns to it
  if (!rec->work->idle()) return refuse("memory of the recording is still held after it");
  graph_log("recorded a CUDA graph of " + std::to_string(rec->work->operations()) +
            " operations (" + std::to_string(rec->work->bytes() >> 10) + " KiB)");
  return rec;
}

// The call through a recording, or nothing when it must run node by node.
std::optional<std::vector<Tensor>> graph_call(GraphState& gs, const Trace& tr,
                                              const std::vector<Tensor>& args) {
  // Transforms (grad, vjp, ...) must see the nodes; tracing must not run anything.
  if (detail::node_observer_active() || jit::tracing() || !jit::enabled()) return std::nullopt;
  if (++gs.calls < 2) return std::nullopt;  // the first call compiles its kernels
  bool pending = false;
  for (const auto& a : args) pending = pending || !a.impl()->evaluated();
  if (pending) eval(args);
  // Arguments read in place that now come with other storage are copied from now on;
  // recordings that read them in place are dropped.
  for (size_t k = 0; k < args.size(); ++k) {
    if (gs.varying[k]) continue;
    for (const auto& r : gs.recs)
      if (!same_buffer(*r, k, args[k])) {
        gs.varying[k] = 1;
        break;
      }
  }
  std::erase_if(gs.recs, [&](const std::unique_ptr<Recording>& r) {
    for (size_t k = 0; k < args.size(); ++k)
      if (gs.varying[k] && !r->staged[k].defined()) return true;
    return false;
  });
  for (auto& r : gs.recs)
    if (usable(*r, gs, args)) return launch_recording(*r, gs, tr, args);
  if (static_cast<int>(gs.recs.size()) >= kMaxRecordings || gs.captures >= kMaxCaptures) {
    if (gs.captures >= kMaxCaptures && gs.recs.empty()) gs.off = true;
    jit::count_graph(jit::GraphEvent::Fallback);
    return std::nullopt;
  }
  auto rec = record(gs, tr, args);
  if (!rec) {
    jit::count_graph(jit::GraphEvent::Fallback);
    return std::nullopt;
  }
  gs.recs.push_back(std::move(rec));
  return launch_recording(*gs.recs.back(), gs, tr, args);
}

}  // namespace

std::vector<Tensor> CompiledFunction::operator()(const std::vector<Tensor>& args) const {
  if (!impl_) throw ValueError("[compile] empty compiled function");
  const std::string sig = signature_of(args);
  std::shared_ptr<const Trace> tr;
  std::shared_ptr<GraphState> gs;
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    auto it = impl_->traces.find(sig);
    if (it != impl_->traces.end()) {
      tr = it->second.trace;
      gs = it->second.graph;
    } else {
      tr = impl_->trace(args);
      gs = graph_state_for(*tr, args);
      impl_->traces.emplace(sig, Impl::Entry{tr, gs});
      ++impl_->ntraces;
      jit::count_trace();
      if (jit::log_enabled("jit"))
        jit::log("jit", "compile: traced " + std::to_string(tr->nodes.size()) +
                            " nodes for signature " + sig);
    }
  }
  jit::count_compiled_call();
  if (gs && !gs->off) {
    std::unique_lock<std::mutex> lk(gs->mu, std::try_to_lock);
    if (lk.owns_lock() && !gs->off) {
      if (auto out = graph_call(*gs, *tr, args)) return std::move(*out);
    } else if (!lk.owns_lock()) {
      jit::count_graph(jit::GraphEvent::Fallback);  // another thread is launching it
    }
  }
  return replay_nodes(*tr, args);
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
