// Fusion planning over the lazy graph: at eval time, chains of elementwise
// primitives whose intermediate results nobody else holds become one fused
// program (one kernel), run by the backend that would have run the chain's last
// op. Planning is device-independent; code generation lives in the backends.
#include <algorithm>
#include <cstring>
#include <optional>

#include "core/dispatch.h"
#include "core/ptr_map.h"
#include "core/primitives.h"
#include "jit/jit.h"
#include "tmath/error.h"

namespace tmath::jit {
namespace {

// Inputs a fused program may take (the CUDA kernels' operand table holds 16).
constexpr size_t kMaxLeaves = 15;
constexpr size_t kMaxMembers = 256;

std::optional<FusedInstr> fusible(const TensorImpl* n) {
  if (!n->prim || !n->siblings.empty() || n->evaluated()) return std::nullopt;
  return n->prim->fused_instr(*n);
}

// Strides of `t` broadcast to `shape` (right-aligned, 0 on broadcast axes).
Strides broadcast_to(const TensorImpl& t, const Shape& shape) {
  Strides st(shape.size(), 0);
  const size_t off = shape.size() - t.shape.size();
  for (size_t i = 0; i < t.shape.size(); ++i) st[off + i] = t.shape[i] == 1 ? 0 : t.strides[i];
  return st;
}

// The backend dispatch would pick for a node (nullptr: none on its device).
Backend* backend_of(const TensorImpl* n) {
  auto op = n->prim->opcode();
  if (!op) return nullptr;
  return select_backend(*op, n->prim->dispatch_dtype(n->inputs, *n), n->device);
}

std::string describe(const Group& g) {
  std::string s;
  for (auto* m : g.members) s += (s.empty() ? "" : " -> ") + m->prim->name();
  return s;
}

// Two inputs that read the same values: the same node, or equal scalar constants
// (the CPU front end makes a fresh 0-d tensor for each `x * 1.01`).
bool same_input(const TensorImpl* a, const TensorImpl* b) {
  if (a == b) return true;
  return a->evaluated() && b->evaluated() && a->shape.empty() && b->shape.empty() &&
         a->dtype == b->dtype && a->device == b->device && a->device.type == DeviceType::CPU &&
         std::memcmp(a->data(), b->data(), itemsize(a->dtype)) == 0;
}
bool contains_input(const std::vector<const TensorImpl*>& v, const TensorImpl* x) {
  for (auto* y : v)
    if (same_input(x, y)) return true;
  return false;
}

// Builds the program for `members` (topological order); fills `leaves`.
FusedProgram build_program(const std::vector<TensorImpl*>& members,
                           std::vector<TensorImpl*>& leaves) {
  FusedProgram p;
  detail::PtrMap value(members.size() * 2);  // node -> instruction index
  leaves.clear();
  auto operand = [&](const TensorImpl* in) {
    if (const int v = value.find(in); v >= 0) return v;
    for (size_t k = 0; k < leaves.size(); ++k)
      if (same_input(in, leaves[k])) return value.find(leaves[k]);
    FusedInstr ins;
    ins.kind = FusedInstr::Kind::Input;
    ins.dtype = in->dtype;
    ins.a = static_cast<int32_t>(leaves.size());
    leaves.push_back(const_cast<TensorImpl*>(in));
    p.instrs.push_back(ins);
    const int v = static_cast<int>(p.instrs.size()) - 1;
    value.insert(in, v);
    return v;
  };
  for (auto* m : members) {
    FusedInstr ins = *m->prim->fused_instr(*m);
    int32_t ops[3] = {-1, -1, -1};
    for (size_t k = 0; k < m->inputs.size() && k < 3; ++k) ops[k] = operand(m->inputs[k].impl().get());
    ins.a = ops[0];
    ins.b = ops[1];
    ins.c = ops[2];
    p.instrs.push_back(ins);
    value.set(m, static_cast<int>(p.instrs.size()) - 1);
  }
  p.num_inputs = static_cast<int>(leaves.size());
  return p;
}

}  // namespace

namespace {
Plan plan_impl(const std::vector<TensorImpl*>& order, const std::vector<TensorImpl*>& roots,
               bool share);
}  // namespace

Plan plan(const std::vector<TensorImpl*>& order, const std::vector<TensorImpl*>& roots) {
  return plan_impl(order, roots, true);
}

namespace {
// share: a cheap elementwise op over materialised values (its inputs evaluated or not
// fusible, one or two of them) whose consumers are all fusible elementwise ops may be
// computed inside each consumer's group instead of being written to memory once and
// read by each (e.g. z = x W + b, used by gelu(z) in the forward pass and gelu'(z) in
// the backward pass: no kernel for z). If some consumer's group does not take it after
// all, the whole graph is planned again without sharing.
Plan plan_impl(const std::vector<TensorImpl*>& order, const std::vector<TensorImpl*>& roots,
               bool share) {
  Plan plan;
  const int n = static_cast<int>(order.size());
  // Nothing to fuse without two elementwise nodes: skip the bookkeeping.
  std::vector<char> fus(order.size(), 0);  // fusible(order[i]), asked once per node
  int fusible_nodes = 0;
  for (int i = 0; i < n; ++i) fusible_nodes += fus[i] = fusible(order[i]) ? 1 : 0;
  if (fusible_nodes < 2) return plan;
  plan.group_of.assign(order.size(), -1);
  detail::PtrMap pos(order.size());  // node -> index in order
  for (int i = 0; i < n; ++i) pos.insert(order[i], i);
  // backend_of(order[i]) for fusible nodes, looked up once (dispatch is not free).
  std::vector<std::optional<Backend*>> be_of(order.size());
  auto backend_at = [&](int k) {
    if (!be_of[k]) be_of[k] = backend_of(order[k]);
    return *be_of[k];
  };
  // Edges from pending nodes of this graph to each node.
  std::vector<int> graph_refs(order.size(), 0);
  for (auto* node : order)
    for (const auto& in : node->inputs)
      if (const int k = pos.find(in.impl().get()); k >= 0) ++graph_refs[k];
  std::vector<char> taken(order.size(), 0), is_root(order.size(), 0), in_group(order.size(), 0);
  for (auto* r : roots)
    if (const int k = pos.find(r); k >= 0) is_root[k] = 1;
  // Nodes that may be computed in several groups (see plan_impl), and those that were.
  std::vector<char> shareable(order.size(), 0), shared(order.size(), 0);
  if (share) {
    std::vector<char> consumers_fusible(order.size(), 1);
    for (int u = 0; u < n; ++u) {
      const TensorImpl* node = order[u];
      const bool f = fus[u];
      for (const auto& in : node->inputs)
        if (const int k = pos.find(in.impl().get()); k >= 0) {
          const TensorImpl* c = order[k];
          if (!f || node->shape != c->shape || !(node->device == c->device))
            consumers_fusible[k] = 0;
        }
    }
    for (int i = 0; i < n; ++i) {
      const TensorImpl* c = order[i];
      if (graph_refs[i] < 2 || !consumers_fusible[i] || is_root[i] || !fus[i] ||
          c->inputs.size() > 2)
        continue;
      bool leaf_inputs = true;
      for (const auto& in : c->inputs) {
        const TensorImpl* x = in.impl().get();
        const int k = pos.find(x);
        const bool f = k >= 0 ? fus[k] != 0 : fusible(x).has_value();
        leaf_inputs = leaf_inputs && (x->evaluated() || !f);
      }
      shareable[i] = leaf_inputs ? 1 : 0;
    }
  }
  // Edges from the current group's members to each node of the graph, and the
  // entries set (cleared before the next group).
  std::vector<int> edges(order.size(), 0), touched;
  auto add_edge = [&](const TensorImpl* x) {
    if (const int k = pos.find(x); k >= 0 && edges[k]++ == 0) touched.push_back(k);
  };
  // A group's members (and their indices), its distinct non-member inputs, and
  // scratch, reused from group to group.
  std::vector<TensorImpl*> members;
  std::vector<int> idx;
  std::vector<const TensorImpl*> leaves, next;
  std::vector<const Tensor*> deferred;
  // Consumers come after their inputs in `order`: walk from the end so each
  // chain is grown from its last op.
  for (int i = n - 1; i >= 0; --i) {
    for (int k : touched) edges[k] = 0;
    touched.clear();
    TensorImpl* root = order[i];
    if (taken[i] || !fus[i]) continue;
    // The backend that would run the chain's last op runs the fused program; ops
    // that dispatch elsewhere (backend priority) stay out of the chain.
    Backend* be = backend_at(i);
    if (!be) continue;
    members.assign(1, root);
    idx.assign(1, i);
    in_group[i] = 1;
    leaves.clear();
    auto is_member = [&](const TensorImpl* x) {
      const int k = pos.find(x);
      return k >= 0 && in_group[k];
    };
    for (const auto& x : root->inputs) {
      add_edge(x.impl().get());
      if (!contains_input(leaves, x.impl().get())) leaves.push_back(x.impl().get());
    }
    // Absorbs c when it is fusible here and every consumer of it in this graph is
    // in the group: then its value never needs to exist in memory. Handles held
    // outside the graph (variables, temporaries) keep c pending: it is recomputed
    // if it is evaluated later (eval them together to materialise both).
    // Returns 1: absorbed, 0: never, -1: not yet (other consumers outside so far).
    bool held_outside = false;  // a member has handles outside the graph
    bool has_shared = false;    // a member is also computed by another group
    auto try_absorb = [&](const Tensor& t) -> int {
      TensorImpl* c = t.impl().get();
      const int ci = pos.find(c);
      if (ci < 0) return 0;
      if ((taken[ci] && !shared[ci]) || is_root[ci] || in_group[ci]) return 0;
      if (!fus[ci] || c->shape != root->shape || !(c->device == root->device)) return 0;
      if (backend_at(ci) != be) return 0;
      const bool as_shared = shared[ci] || (edges[ci] != graph_refs[ci] && shareable[ci]);
      if (edges[ci] != graph_refs[ci] && !as_shared) return -1;
      // Inputs after absorbing c: c leaves the set, its non-member inputs join.
      next.clear();
      for (auto* l : leaves)
        if (l != c) next.push_back(l);
      for (const auto& x : c->inputs) {
        const TensorImpl* xi = x.impl().get();
        if (!is_member(xi) && !contains_input(next, xi)) next.push_back(xi);
      }
      if (next.size() > kMaxLeaves) return 0;
      leaves.swap(next);
      members.push_back(c);
      idx.push_back(ci);
      in_group[ci] = 1;
      for (const auto& x : c->inputs) add_edge(x.impl().get());
      held_outside = held_outside || t.impl().use_count() != graph_refs[ci];
      if (as_shared) {
        shared[ci] = 1;
        has_shared = true;
      }
      return 1;
    };
    if (leaves.size() <= kMaxLeaves) {
      deferred.clear();
      size_t scanned = 0;
      for (bool grew = true; grew && members.size() < kMaxMembers;) {
        grew = false;
        for (; scanned < members.size() && members.size() < kMaxMembers; ++scanned)
          for (const auto& in : members[scanned]->inputs) {
            const int r = try_absorb(in);
            if (r > 0) grew = true;
            if (r < 0) deferred.push_back(&in);
          }
        for (size_t d = 0; d < deferred.size() && members.size() < kMaxMembers; ++d)
          if (try_absorb(*deferred[d]) > 0) grew = true;
        std::erase_if(deferred, [&](const Tensor* c) { return is_member(c->impl().get()); });
      }
    }
    for (int k : idx) in_group[k] = 0;
    if (members.size() < 2) continue;
    // Topological order = order of appearance in `order`.
    std::vector<std::pair<int, TensorImpl*>> sorted;
    for (size_t k = 0; k < members.size(); ++k) sorted.emplace_back(idx[k], members[k]);
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    Group g;
    g.root = root;
    for (auto& [k, m] : sorted) g.members.push_back(m);
    g.program = build_program(g.members, g.leaves);
    if (!be->supports_fused(g.program)) {
      count_skipped();
      if (log_enabled("jit"))
        log("jit", "not fused (backend '" + std::string(be->name()) +
                       "' has no fused kernel for it): " + describe(g));
      continue;
    }
    g.backend = be;
    // Members held outside the graph outlive the run (they stay pending and may
    // read their inputs again): then no input buffer may be reused for the output.
    // So do members another group computes too.
    g.members_die = !held_outside && !has_shared;
    const int gid = static_cast<int>(plan.groups.size());
    for (int k : idx) {
      if (!taken[k]) plan.group_of[k] = gid;
      taken[k] = 1;
    }
    if (log_enabled("jit"))
      log("jit", "fused " + std::to_string(g.members.size()) + " ops, " +
                     std::to_string(g.leaves.size()) + " inputs, on " + std::string(be->name()) +
                     ": " + describe(g));
    plan.groups.push_back(std::move(g));
  }
  // A shared node must be computed by the group of every consumer; else plan again
  // without sharing (its own kernel then writes it once, as before).
  bool any_shared = false;
  for (char c : shared) any_shared = any_shared || c;
  if (any_shared) {
    for (int u = 0; u < n; ++u) {
      for (const auto& in : order[u]->inputs) {
        const int k = pos.find(in.impl().get());
        if (k < 0 || !shared[k]) continue;
        const int g = plan.group_of[u];
        const auto& ms = g >= 0 ? plan.groups[g].members : std::vector<TensorImpl*>{};
        if (std::find(ms.begin(), ms.end(), order[k]) == ms.end())
          return plan_impl(order, roots, false);
      }
    }
  }
  return plan;
}
}  // namespace

void launch(Backend& be, const FusedProgram& p, std::span<TensorImpl* const> leaves,
            TensorImpl& out, size_t ops) {
  std::vector<Strides> strides(leaves.size());
  std::vector<ArrayRef> refs;
  refs.reserve(leaves.size());
  for (size_t k = 0; k < leaves.size(); ++k) {
    const TensorImpl& l = *leaves[k];
    if (!l.evaluated())
      throw Error("[jit] internal: input " + std::to_string(k) + " of a fused program is pending");
    strides[k] = broadcast_to(l, out.shape);
    refs.push_back(ArrayRef{l.data(), l.dtype, out.shape, strides[k], l.device});
  }
  be.fused(p, refs, out.ref());
  detail::count_kernel();
  count_fused(ops);
}

void run(Group& g) {
  TensorImpl& out = *g.root;
  const size_t nbytes = static_cast<size_t>(out.size) * itemsize(out.dtype);
  // Write into a dead input's buffer when one has the output's exact layout and
  // no member outlives the run.
  bool donated = false;
  for (TensorImpl* l : g.members_die ? g.leaves : std::vector<TensorImpl*>{}) {
    long refs_in_group = 0;
    for (auto* m : g.members)
      for (const auto& x : m->inputs) refs_in_group += x.impl().get() == l;
    const auto& buf = l->buffer;
    if (!l->weak && l->contiguous && l->offset == 0 && buf.use_count() == 1 && buf->allocator &&
        buf->nbytes == nbytes && l->size == out.size && l->shape == out.shape &&
        itemsize(l->dtype) == itemsize(out.dtype) && l->device == out.device) {
      // Every holder of the leaf is a member (the group is its last user).
      bool dead = false;
      for (auto* m : g.members) {
        for (const auto& x : m->inputs)
          if (x.impl().get() == l) {
            dead = x.impl().use_count() == refs_in_group;
            break;
          }
        if (dead) break;
      }
      if (dead) {
        out.set_contiguous(buf);
        detail::count_donation();
        donated = true;
        break;
      }
    }
  }
  if (!donated) out.set_contiguous(detail::allocate_buffer(nbytes, out.device));
  launch(*g.backend, g.program, g.leaves, out, g.members.size());
  detail::count_nodes(g.members.size());
  // Drops the chain: the members were referenced only from inside the group.
  out.detach();
}

}  // namespace tmath::jit
