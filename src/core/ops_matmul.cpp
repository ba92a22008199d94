// matmul, tensordot, einsum, outer, dot.
#include <map>
#include <numeric>
#include <set>

#include "core/ops_internal.h"
#include "tmath/error.h"
#include "tmath/precision.h"

namespace tmath {

using detail::shape_str;

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  Device dev = detail::common_device({a_in, b_in}, "matmul");
  if (a_in.ndim() == 0 || b_in.ndim() == 0)
    throw ShapeError("[matmul] operands must be at least 1-d, got shapes " + shape_str(a_in.shape()) +
                     " and " + shape_str(b_in.shape()));
  DType dt = promote_types(a_in.dtype(), b_in.dtype());
  DType out_dt = dt;
  if (auto ac = autocast_dtype(); ac && dt == float32) out_dt = dt = *ac;
  Tensor a = detail::cast_to(a_in, dt, dev), b = detail::cast_to(b_in, dt, dev);
  bool a1 = a.ndim() == 1, b1 = b.ndim() == 1;
  if (a1) a = reshape(a, {1, a.shape()[0]});
  if (b1) b = reshape(b, {b.shape()[0], 1});
  int64_t m = a.shape(-2), k = a.shape(-1), k2 = b.shape(-2), n = b.shape(-1);
  if (k != k2)
    throw ShapeError("[matmul] shapes " + shape_str(a_in.shape()) + " and " + shape_str(b_in.shape()) +
                     " are not aligned: " + std::to_string(k) + " != " + std::to_string(k2));
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch;
  try {
    batch = broadcast_shapes(ba, bb);
  } catch (const ShapeError&) {
    throw ShapeError("[matmul] batch dimensions " + shape_str(ba) + " and " + shape_str(bb) +
                     " could not be broadcast together");
  }
  Shape sa = batch, sb = batch, so = batch;
  sa.insert(sa.end(), {m, k});
  sb.insert(sb.end(), {k, n});
  so.insert(so.end(), {m, n});
  a = broadcast_to(a, sa);
  b = broadcast_to(b, sb);
  Tensor r = detail::make_node(so, out_dt, dev, std::make_shared<MatmulPrim>(matmul_precision()),
                               {a, b});
  if (a1 || b1) {
    Shape fs = batch;
    if (!a1) fs.push_back(m);
    if (!b1) fs.push_back(n);
    r = reshape(r, fs);
  }
  return r;
}

Tensor tensordot(const Tensor& a, const Tensor& b, const std::vector<int>& axes_a,
                 const std::vector<int>& axes_b) {
  if (axes_a.size() != axes_b.size())
    throw ShapeError("[tensordot] axes lists have different lengths");
  std::vector<int> ca, cb;
  for (size_t i = 0; i < axes_a.size(); ++i) {
    ca.push_back(detail::normalize_axis(axes_a[i], a.ndim(), "tensordot"));
    cb.push_back(detail::normalize_axis(axes_b[i], b.ndim(), "tensordot"));
    if (a.shape()[ca.back()] != b.shape()[cb.back()])
      throw ShapeError("[tensordot] shape mismatch for contracted axis: " +
                       std::to_string(a.shape()[ca.back()]) + " != " +
                       std::to_string(b.shape()[cb.back()]));
  }
  std::vector<int> fa, fb;
  Shape out;
  int64_t K = 1, M = 1, N = 1;
  for (int i = 0; i < a.ndim(); ++i)
    if (std::find(ca.begin(), ca.end(), i) == ca.end()) {
      fa.push_back(i);
      out.push_back(a.shape()[i]);
      M *= a.shape()[i];
    }
  for (int i = 0; i < b.ndim(); ++i)
    if (std::find(cb.begin(), cb.end(), i) == cb.end()) {
      fb.push_back(i);
      out.push_back(b.shape()[i]);
      N *= b.shape()[i];
    }
  for (int i : ca) K *= a.shape()[i];
  std::vector<int> pa = fa, pb = cb;
  pa.insert(pa.end(), ca.begin(), ca.end());
  pb.insert(pb.end(), fb.begin(), fb.end());
  Tensor A = reshape(permute(a, pa), {M, K});
  Tensor B = reshape(permute(b, pb), {K, N});
  return reshape(matmul(A, B), out);
}

Tensor tensordot(const Tensor& a, const Tensor& b, int axes) {
  if (axes < 0 || axes > a.ndim() || axes > b.ndim())
    throw ShapeError("[tensordot] axes=" + std::to_string(axes) + " exceeds operand rank");
  std::vector<int> aa, ab;
  for (int i = 0; i < axes; ++i) {
    aa.push_back(a.ndim() - axes + i);
    ab.push_back(i);
  }
  return tensordot(a, b, aa, ab);
}

Tensor outer(const Tensor& a, const Tensor& b) {
  return reshape(a, {a.size(), 1}) * reshape(b, {1, b.size()});
}

Tensor dot(const Tensor& a, const Tensor& b) {
  if (a.ndim() == 0 || b.ndim() == 0) return a * b;
  if (a.ndim() == 1 && b.ndim() == 1) return matmul(a, b);
  if (b.ndim() <= 2) return matmul(a, b);
  // N-d: sum over the last axis of a and the second-to-last of b.
  return tensordot(a, b, {a.ndim() - 1}, {b.ndim() - 2});
}

// ---- einsum ----------------------------------------------------------------
namespace {
struct Term {
  Tensor t;
  std::string labels;  // one char per axis, unique
};

[[noreturn]] void einsum_error(const std::string& msg) { throw ShapeError("[einsum] " + msg); }

// Takes the diagonal for repeated labels within one operand.
Term take_diagonals(Tensor t, std::string labels) {
  for (size_t i = 0; i < labels.size(); ++i) {
    for (size_t j = i + 1; j < labels.size();) {
      if (labels[j] != labels[i]) {
        ++j;
        continue;
      }
      int64_t n = t.shape()[i];
      if (t.shape()[j] != n) einsum_error(std::string("repeated label '") + labels[i] + "' has unequal sizes");
      Shape ms(t.ndim(), 1);
      ms[i] = n;
      ms[j] = n;
      Tensor mask = reshape(eye(n, n, 0, t.dtype(), t.device()), ms);
      t = detail::sum_in_dtype(t * mask, {static_cast<int>(j)});
      labels.erase(j, 1);
    }
  }
  return {t, labels};
}

// Sums axes whose labels are not in `keep`.
Term sum_unneeded(Term x, const std::set<char>& keep) {
  Axes ax;
  std::string rest;
  for (size_t i = 0; i < x.labels.size(); ++i) {
    if (keep.count(x.labels[i])) rest += x.labels[i];
    else ax.push_back(static_cast<int>(i));
  }
  if (!ax.empty()) x.t = detail::sum_in_dtype(x.t, ax);
  x.labels = rest;
  return x;
}

Term contract(const Term& A, const Term& B, const std::set<char>& needed) {
  std::string batch, con, fa, fb;
  for (char c : A.labels) {
    bool inb = B.labels.find(c) != std::string::npos;
    if (inb && needed.count(c)) batch += c;
    else if (inb) con += c;
    else fa += c;
  }
  for (char c : B.labels)
    if (A.labels.find(c) == std::string::npos) fb += c;
  auto dims = [](const Term& t, const std::string& ls, Shape& shape) {
    std::vector<int> perm;
    int64_t n = 1;
    for (char c : ls) {
      int ax = static_cast<int>(t.labels.find(c));
      perm.push_back(ax);
      shape.push_back(t.t.shape()[ax]);
      n *= t.t.shape()[ax];
    }
    return std::make_pair(perm, n);
  };
  Shape sbatch, sa, sb, scon, scon_b;
  auto [pbatch_a, nb] = dims(A, batch, sbatch);
  Shape tmp;
  auto [pbatch_b, nb2] = dims(B, batch, tmp);
  if (tmp != sbatch) einsum_error("batch label sizes differ between operands");
  auto [pfa, M] = dims(A, fa, sa);
  auto [pfb, N] = dims(B, fb, sb);
  auto [pca, K] = dims(A, con, scon);
  auto [pcb, K2] = dims(B, con, scon_b);
  if (scon != scon_b) einsum_error("contracted label sizes differ between operands");
  std::vector<int> perm_a = pbatch_a, perm_b = pbatch_b;
  perm_a.insert(perm_a.end(), pfa.begin(), pfa.end());
  perm_a.insert(perm_a.end(), pca.begin(), pca.end());
  perm_b.insert(perm_b.end(), pcb.begin(), pcb.end());
  perm_b.insert(perm_b.end(), pfb.begin(), pfb.end());
  Tensor a = reshape(permute(A.t, perm_a), {nb, M, K});
  Tensor b = reshape(permute(B.t, perm_b), {nb, K, N});
  Shape out = sbatch;
  out.insert(out.end(), sa.begin(), sa.end());
  out.insert(out.end(), sb.begin(), sb.end());
  (void)nb2;
  (void)K2;
  return {reshape(matmul(a, b), out), batch + fa + fb};
}
}  // namespace

Tensor einsum(const std::string& subscripts_in, const std::vector<Tensor>& operands) {
  std::string s;
  for (char c : subscripts_in)
    if (c != ' ') s += c;
  auto arrow = s.find("->");
  std::string lhs = s.substr(0, arrow);
  std::vector<std::string> ins;
  size_t pos = 0;
  while (true) {
    auto comma = lhs.find(',', pos);
    ins.push_back(lhs.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (ins.size() != operands.size())
    einsum_error("subscripts name " + std::to_string(ins.size()) + " operands but " +
                 std::to_string(operands.size()) + " were given");
  std::map<char, int> counts;
  for (size_t i = 0; i < ins.size(); ++i) {
    if (static_cast<int>(ins[i].size()) != operands[i].ndim())
      einsum_error("operand " + std::to_string(i) + " has " + std::to_string(operands[i].ndim()) +
                   " axes but subscripts '" + ins[i] + "' name " + std::to_string(ins[i].size()));
    for (char c : ins[i]) {
      if (!std::isalpha(static_cast<unsigned char>(c)))
        einsum_error(std::string("invalid subscript character '") + c + "'");
      counts[c]++;
    }
  }
  std::string out;
  if (arrow != std::string::npos) {
    out = s.substr(arrow + 2);
    for (char c : out)
      if (!counts.count(c)) einsum_error(std::string("output label '") + c + "' is not in any input");
  } else {
    for (auto [c, n] : counts)
      if (n == 1) out += c;
  }
  std::vector<Term> terms;
  for (size_t i = 0; i < ins.size(); ++i) terms.push_back(take_diagonals(operands[i], ins[i]));
  auto needed_after = [&](size_t from) {
    std::set<char> need(out.begin(), out.end());
    for (size_t j = from; j < terms.size(); ++j) need.insert(terms[j].labels.begin(), terms[j].labels.end());
    return need;
  };
  Term acc = sum_unneeded(terms[0], [&] {
    auto n = needed_after(1);
    return n;
  }());
  for (size_t i = 1; i < terms.size(); ++i) {
    std::set<char> need = needed_after(i + 1);
    std::set<char> keep_b = need;
    keep_b.insert(acc.labels.begin(), acc.labels.end());
    Term b = sum_unneeded(terms[i], keep_b);
    std::set<char> keep_a = need;
    keep_a.insert(b.labels.begin(), b.labels.end());
    acc = sum_unneeded(acc, keep_a);
    acc = contract(acc, b, need);
  }
  acc = sum_unneeded(acc, std::set<char>(out.begin(), out.end()));
  std::vector<int> perm;
  for (char c : out) perm.push_back(static_cast<int>(acc.labels.find(c)));
  return permute(acc.t, perm);
}

}  // namespace tmath
