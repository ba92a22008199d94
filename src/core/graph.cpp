// Graph construction and evaluation: nodes, topological scheduling, dispatch
// of each primitive to a backend, buffer donation and graph release.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <unordered_set>

#include "core/dispatch.h"
#include "core/primitives.h"
#include "core/tensor_impl.h"
#include "jit/jit.h"
#include "tmath/error.h"
#include "tmath/transforms.h"

namespace tmath {
namespace detail {

int64_t shape_size(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

Strides contiguous_strides(const Shape& s) {
  Strides st(s.size());
  int64_t acc = 1;
  for (int i = static_cast<int>(s.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= std::max<int64_t>(s[i], 1);
  }
  return st;
}

bool is_contiguous(const Shape& shape, const Strides& strides) {
  int64_t expect = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    if (shape[i] != 1 && strides[i] != expect) return false;
    expect *= shape[i];
  }
  return true;
}

Buffer::~Buffer() {
  if (allocator) {
    allocator->deallocate(ptr, nbytes);
  } else if (deleter) {
    deleter(ptr);
  }
}

std::shared_ptr<Buffer> allocate_buffer(size_t nbytes, Device device) {
  Backend& be = primary_backend(device);
  Allocator& alloc = be.allocator(device);
  auto buf = std::make_shared<Buffer>();
  buf->ptr = alloc.allocate(nbytes);
  buf->nbytes = nbytes;
  buf->device = device;
  buf->allocator = &alloc;
  return buf;
}

void TensorImpl::set_contiguous(std::shared_ptr<Buffer> buf) {
  buffer = std::move(buf);
  strides = contiguous_strides(shape);
  offset = 0;
  contiguous = true;
  depth = 0;
}

void TensorImpl::set_view(std::shared_ptr<Buffer> buf, Strides st, int64_t off) {
  buffer = std::move(buf);
  strides = std::move(st);
  offset = off;
  contiguous = is_contiguous(shape, strides);
  depth = 0;
}

void TensorImpl::detach() {
  prim.reset();
  inputs.clear();
  siblings.clear();
}

// Long unevaluated chains would otherwise be destroyed recursively through
// nested shared_ptr destructors; unlink them iteratively instead.
TensorImpl::~TensorImpl() {
  if (inputs.empty()) return;
  std::vector<Tensor> pending = std::move(inputs);
  while (!pending.empty()) {
    Tensor t = std::move(pending.back());
    pending.pop_back();
    auto& p = t.impl();
    if (p && p.use_count() == 1 && !p->inputs.empty()) {
      for (auto& in : p->inputs) pending.push_back(std::move(in));
      p->inputs.clear();
    }
  }
}

namespace {
std::atomic<int> g_max_depth{2048};
thread_local NodeObserver t_node_observer = nullptr;

void eval_graph(const std::vector<TensorImpl*>& roots);

int compute_depth(const std::vector<Tensor>& inputs) {
  int d = 0;
  for (const auto& in : inputs) d = std::max(d, in.impl()->depth);
  return d + 1;
}

void maybe_eval(const Tensor& t) {
  auto* p = t.impl().get();
  if (eager_mode() || p->depth > g_max_depth.load(std::memory_order_relaxed)) eval_graph({p});
}
}  // namespace

Tensor make_node(Shape shape, DType dtype, Device device, std::shared_ptr<Primitive> prim,
                 std::vector<Tensor> inputs) {
  auto p = std::make_shared<TensorImpl>();
  p->size = shape_size(shape);
  p->shape = std::move(shape);
  p->dtype = dtype;
  p->device = device;
  p->depth = compute_depth(inputs);
  p->prim = std::move(prim);
  p->inputs = std::move(inputs);
  Tensor t(std::move(p));
  if (t_node_observer) t_node_observer({t});
  maybe_eval(t);
  return t;
}

void set_node_observer(NodeObserver observer) { t_node_observer = observer; }
bool node_observer_active() { return t_node_observer != nullptr; }

std::vector<Tensor> make_nodes(std::vector<Shape> shapes, std::vector<DType> dtypes, Device device,
                               std::shared_ptr<Primitive> prim, std::vector<Tensor> inputs) {
  std::vector<Tensor> outs;
  int depth = compute_depth(inputs);
  for (size_t i = 0; i < shapes.size(); ++i) {
    auto p = std::make_shared<TensorImpl>();
    p->size = shape_size(shapes[i]);
    p->shape = std::move(shapes[i]);
    p->dtype = dtypes[i];
    p->device = device;
    p->depth = depth;
    p->prim = prim;
    p->inputs = inputs;
    p->output_index = static_cast<int>(i);
    outs.emplace_back(std::move(p));
  }
  for (auto& o : outs)
    for (auto& s : outs)
      if (s.impl() != o.impl()) o.impl()->siblings.push_back(s.impl());
  if (t_node_observer) t_node_observer(outs);
  if (!outs.empty()) maybe_eval(outs[0]);
  return outs;
}

Tensor make_evaluated(Shape shape, DType dtype, Device device) {
  auto p = std::make_shared<TensorImpl>();
  p->size = shape_size(shape);
  p->shape = std::move(shape);
  p->dtype = dtype;
  p->device = device;
  p->set_contiguous(allocate_buffer(static_cast<size_t>(p->size) * itemsize(dtype), device));
  return Tensor(std::move(p));
}

namespace {

// Runs one node (and its siblings) on the selected backend.
void eval_node(TensorImpl* node) {
  std::vector<TensorImpl*> outputs;
  std::vector<std::shared_ptr<TensorImpl>> keep;  // siblings alive during eval
  if (node->siblings.empty()) {
    outputs.push_back(node);
  } else {
    outputs.resize(node->siblings.size() + 1, nullptr);
    outputs[node->output_index] = node;
    std::vector<std::shared_ptr<TensorImpl>> dead;
    for (auto& w : node->siblings) {
      auto s = w.lock();
      if (!s) {
        // An output nobody holds: evaluate into a temporary.
        s = std::make_shared<TensorImpl>();
      }
      keep.push_back(s);
    }
    // Place siblings at their output indices; temporaries fill the gaps.
    size_t k = 0;
    for (auto& s : keep) {
      if (s->prim) {
        outputs[s->output_index] = s.get();
      } else {
        while (k < outputs.size() && outputs[k]) ++k;
        // An output nobody holds: the node's metadata until the primitive sets its own
        // (multi-output primitives give every output its shape and dtype). The device
        // must be right: dispatch reads it from the first output.
        s->shape = node->shape;
        s->size = node->size;
        s->dtype = node->dtype;
        s->device = node->device;
        s->output_index = static_cast<int>(k);
        outputs[k] = s.get();
      }
    }
  }
  Primitive& prim = *node->prim;
  run_primitive(prim, node->inputs, outputs);
  for (auto* o : outputs) o->detach();
}

void eval_graph(const std::vector<TensorImpl*>& roots) {
  // Fast path: one node whose inputs are all evaluated (eager-style use).
  if (roots.size() == 1 && roots[0]->siblings.empty()) {
    TensorImpl* r = roots[0];
    bool ready = !r->evaluated();
    for (const auto& in : r->inputs) ready = ready && in.impl()->evaluated();
    if (ready) {
      count_graph_eval();
      eval_node(r);
      return;
    }
  }
  // Iterative post-order DFS over pending nodes.
  std::vector<TensorImpl*> order;
  std::unordered_set<TensorImpl*> seen;
  std::vector<std::pair<TensorImpl*, size_t>> stack;
  for (auto* r : roots) {
    if (r->evaluated() || !seen.insert(r).second) continue;
    stack.emplace_back(r, 0);
    while (!stack.empty()) {
      auto& [n, i] = stack.back();
      if (i < n->inputs.size()) {
        TensorImpl* c = n->inputs[i++].impl().get();
        if (!c->evaluated() && seen.insert(c).second) stack.emplace_back(c, 0);
      } else {
        order.push_back(n);
        stack.pop_back();
      }
    }
  }
  count_graph_eval();
  if (order.size() >= 2 && jit::enabled()) {
    jit::Plan plan = jit::plan(order, roots);
    if (!plan.groups.empty()) {
      for (size_t i = 0; i < order.size(); ++i) {
        // Members of a fused group are released when its root runs: test the
        // plan before touching the node.
        if (const int g = plan.group_of[i]; g >= 0) {
          if (plan.groups[g].root == order[i]) jit::run(plan.groups[g]);
          continue;
        }
        if (order[i]->evaluated()) continue;  // evaluated as a sibling
        eval_node(order[i]);
      }
      return;
    }
  }
  for (auto* n : order) {
    if (n->evaluated()) continue;  // evaluated as a sibling
    eval_node(n);
  }
}

bool eager_default() {
  const char* e = std::getenv("TMATH_EAGER");
  return e && e[0] == '1';
}
thread_local bool t_eager_set = false;
thread_local bool t_eager = false;
std::atomic<bool> g_eager{eager_default()};

}  // namespace
}  // namespace detail

using detail::TensorImpl;

namespace {
// Device roots: let a lazily recording backend start on what was asked for.
void commit_roots(const std::vector<TensorImpl*>& roots) {
  for (TensorImpl* r : roots)
    if (r->device.type != DeviceType::CPU && r->evaluated())
      detail::primary_backend(r->device).commit(r->ref());
}
}  // namespace

void eval(const std::vector<Tensor>& xs) {
  std::vector<TensorImpl*> roots;
  roots.reserve(xs.size());
  for (const auto& x : xs)
    if (x.defined() && !x.impl()->evaluated()) roots.push_back(x.impl().get());
  if (!roots.empty()) {
    detail::eval_graph(roots);
    commit_roots(roots);
  }
}

void eval(const Tensor& x) {
  if (x.defined() && !x.impl()->evaluated()) {
    detail::eval_graph({x.impl().get()});
    commit_roots({x.impl().get()});
  }
}

bool eager_mode() { return detail::t_eager_set ? detail::t_eager : detail::g_eager.load(); }
void set_eager_mode(bool on) { detail::g_eager.store(on); }

namespace detail {
namespace {
// Saved (was a scope active, its value) per nesting level of EagerScope.
thread_local std::vector<std::pair<bool, bool>> t_eager_stack;
}  // namespace
}  // namespace detail

EagerScope::EagerScope(bool on) : prev_(eager_mode()) {
  detail::t_eager_stack.emplace_back(detail::t_eager_set, detail::t_eager);
  detail::t_eager_set = true;
  detail::t_eager = on;
}
EagerScope::~EagerScope() {
  auto [was_set, value] = detail::t_eager_stack.back();
  detail::t_eager_stack.pop_back();
  detail::t_eager_set = was_set;
  detail::t_eager = value;
}

void set_max_graph_depth(int depth) {
  if (depth < 1) throw ValueError("[set_max_graph_depth] depth must be >= 1, got " + std::to_string(depth));
  detail::g_max_depth.store(depth);
}

}  // namespace tmath
