// Graph construction and evaluation: nodes, topological scheduling, dispatch
// of each primitive to a backend, buffer donation and graph release.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <unordered_map>

#include "core/dispatch.h"
#include "core/primitives.h"
#include "core/ptr_map.h"
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

// Runs entry i of `order`: a fused group of `plan` at its root (its other members
// are skipped: they are released when the root runs, so the plan is tested before
// the node is touched), else the node unless it was evaluated as a sibling.
void run_entry(const std::vector<TensorImpl*>& order, jit::Plan* plan, size_t i) {
  if (plan) {
    if (const int g = plan->group_of[i]; g >= 0) {
      if (plan->groups[g].root == order[i]) jit::run(plan->groups[g]);
      return;
    }
  }
  if (!order[i]->evaluated()) eval_node(order[i]);
}

// ---- lanes of a recording (Backend::lanes) ----
// While a device graph is recorded, a node that nothing else in this evaluation
// consumes (an output only: a weight's gradient, a bias sum) and that is not fused
// runs on the second lane, queued right after the last of its producers, so that
// it overlaps the work that follows on the first lane. Such nodes at the very end
// stay on the first lane (nothing is left to overlap). The buffers a second-lane
// node reads and writes stay held until the lanes join at the end of the
// evaluation, so neither the allocator nor buffer donation hands them to
// first-lane work that the second lane's may still overlap.
thread_local int t_lane_depth = 0;

struct LaneDepth {
  LaneDepth() { ++t_lane_depth; }
  ~LaneDepth() { --t_lane_depth; }
};

struct LaneJoin {
  Backend& be;
  Device dev;
  ~LaneJoin() {
    try {
      be.join_lanes(dev);
    } catch (...) {  // the recording that failed is abandoned by its owner
    }
  }
};

// Runs `order` (with `plan`, when fusing) over two lanes; false, having run
// nothing, where no node would go to the second lane.
bool run_on_lanes(const std::vector<TensorImpl*>& order, jit::Plan* plan) {
  const size_t n = order.size();
  if (n < 3 || t_lane_depth > 0) return false;
  const Device dev = order.back()->device;
  if (dev.type == DeviceType::CPU) return false;
  for (const auto* o : order)
    if (!(o->device == dev)) return false;
  Backend& be = primary_backend(dev);
  if (be.lanes(dev) < 2) return false;

  auto group_of = [&](size_t i) { return plan ? plan->group_of[i] : -1; };
  // unit[i]: the entry whose run computes entry i (a fused group's root).
  std::vector<size_t> root_of(plan ? plan->groups.size() : 0, n);
  for (size_t i = 0; i < n; ++i)
    if (const int g = group_of(i); g >= 0 && plan->groups[g].root == order[i]) root_of[g] = i;
  std::vector<size_t> unit(n);
  std::unordered_map<const TensorImpl*, size_t> where;
  where.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const int g = group_of(i);
    unit[i] = g >= 0 ? root_of[g] : i;
    where[order[i]] = unit[i];
  }
  // Siblings are all computed by the first of them in the order.
  for (size_t i = 0; i < n; ++i) {
    if (order[i]->siblings.empty()) continue;
    size_t first = where[order[i]];
    for (const auto& w : order[i]->siblings)
      if (auto s = w.lock(); s)
        if (auto it = where.find(s.get()); it != where.end()) first = std::min(first, it->second);
    where[order[i]] = first;
  }
  std::vector<uint8_t> consumed(n, 0);
  std::vector<ptrdiff_t> last_producer(n, -1);
  for (size_t i = 0; i < n; ++i)
    for (const auto& in : order[i]->inputs) {
      auto it = where.find(in.impl().get());
      if (it == where.end() || it->second == unit[i]) continue;
      consumed[it->second] = 1;
      last_producer[unit[i]] = std::max(last_producer[unit[i]], static_cast<ptrdiff_t>(it->second));
    }
  std::vector<uint8_t> sink(n, 0);
  std::vector<std::vector<size_t>> after(n + 1);
  for (size_t i = 0; i < n; ++i)
    if (group_of(i) < 0 && order[i]->siblings.empty() && !consumed[i]) {
      sink[i] = 1;
      after[static_cast<size_t>(last_producer[i] + 1)].push_back(i);
    }
  std::vector<size_t> seq;
  seq.reserve(n);
  for (size_t c : after[0]) seq.push_back(c);
  for (size_t i = 0; i < n; ++i) {
    if (sink[i]) continue;
    seq.push_back(i);
    for (size_t c : after[i + 1]) seq.push_back(c);
  }
  // Second lane: sinks with first-lane work after them.
  std::vector<uint8_t> side(n, 0);
  bool main_after = false, any = false;
  for (size_t k = seq.size(); k-- > 0;) {
    const size_t i = seq[k];
    if (sink[i]) {
      side[i] = main_after;
      any = any || main_after;
    } else if (unit[i] == i) {
      main_after = true;
    }
  }
  if (!any) return false;

  std::vector<std::shared_ptr<Buffer>> held;  // released after the join below
  LaneDepth depth;
  LaneJoin join{be, dev};
  int lane = 0;
  auto use_lane = [&](int k) {
    if (k != lane) be.set_lane(dev, k);
    lane = k;
  };
  for (size_t i : seq) {
    use_lane(side[i]);  // fused groups are never sinks: the first lane
    if (!side[i]) {
      run_entry(order, plan, i);
      continue;
    }
    TensorImpl* node = order[i];
    for (const auto& in : node->inputs)
      if (in.impl()->buffer) held.push_back(in.impl()->buffer);
    eval_node(node);
    if (node->buffer) held.push_back(node->buffer);
    jit::count_graph(jit::GraphEvent::LaneOp);
  }
  be.join_lanes(dev);
  return true;
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
  PtrMap seen(8);
  std::vector<std::pair<TensorImpl*, size_t>> stack;
  for (auto* r : roots) {
    if (r->evaluated() || !seen.insert(r, 0)) continue;
    stack.emplace_back(r, 0);
    while (!stack.empty()) {
      auto& [n, i] = stack.back();
      if (i < n->inputs.size()) {
        TensorImpl* c = n->inputs[i++].impl().get();
        if (!c->evaluated() && seen.insert(c, 0)) stack.emplace_back(c, 0);
      } else {
        order.push_back(n);
        stack.pop_back();
      }
    }
  }
  count_graph_eval();
  jit::Plan plan;
  if (order.size() >= 2 && jit::enabled()) plan = jit::plan(order, roots);
  jit::Plan* fused = plan.groups.empty() ? nullptr : &plan;
  if (run_on_lanes(order, fused)) return;
  for (size_t i = 0; i < order.size(); ++i) run_entry(order, fused, i);
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
