// Float64 reference implementations used by the op tests (plain loops and std::
// functions; nothing here calls the engine).
#pragma once

#include <cmath>
#include <complex>
#include <functional>
#include <numeric>
#include <vector>

#include "test_util.h"

namespace tt {

constexpr double kPi = 3.141592653589793238462643383279502884;

inline double ref_sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}
inline double ref_gelu(double x) {
  return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}
inline double ref_gelu_tanh(double x) {
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / kPi) * (x + 0.044715 * x * x * x)));
}
// d/dx gelu: Phi(x) + x phi(x).
inline double ref_gelu_grad(double x) {
  return 0.5 * std::erfc(-x / std::sqrt(2.0)) + x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * kPi);
}
// d/dx of the tanh form: 0.5 (1 + tanh u) + 0.5 x sech^2(u) u', u = s (x + k x^3).
inline double ref_gelu_tanh_grad(double x) {
  const double s = std::sqrt(2.0 / kPi), k = 0.044715, u = s * (x + k * x * x * x);
  const double ch = std::cosh(u);
  return 0.5 * (1.0 + std::tanh(u)) + 0.5 * x / (ch * ch) * s * (1.0 + 3.0 * k * x * x);
}
inline double ref_silu(double x) {
  return x * ref_sigmoid(x);
}
inline double ref_sign(double x) {
  if (std::isnan(x)) return x;
  return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0);
}
// Inverse error function by Newton iteration on std::erf (double accuracy for |x| < 1).
inline double ref_erfinv(double x) {
  if (std::isnan(x) || x < -1.0 || x > 1.0) return std::nan("");
  if (x == 1.0) return INFINITY;
  if (x == -1.0) return -INFINITY;
  if (x == 0.0) return x;
  // Initial guess (Giles' approximation is not needed: Newton converges from a rough start).
  long double w = -std::log((1.0L - x) * (1.0L + x));
  long double y = std::copysign(std::sqrt(std::max(0.0L, w)) * 0.8L, x);
  if (std::fabs(x) < 0.7) y = x * std::sqrt(kPi) / 2.0;
  for (int i = 0; i < 100; ++i) {
    long double err = std::erf(y) - static_cast<long double>(x);
    long double d = 2.0L / std::sqrt(static_cast<long double>(kPi)) * std::exp(-y * y);
    long double step = err / d;
    y -= step;
    if (std::fabs(step) < 1e-19L * std::max(1.0L, std::fabs(y))) break;
  }
  return static_cast<double>(y);
}
inline double ref_floor_div(double a, double b) {
  return std::floor(a / b);
}
// Python/NumPy remainder: sign follows the divisor.
inline double ref_remainder(double a, double b) {
  double r = std::fmod(a, b);
  if (r != 0.0 && ((r < 0) != (b < 0))) r += b;
  return r;
}
inline int64_t ref_floor_div_int(int64_t a, int64_t b) {
  if (b == 0) return 0;
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
inline int64_t ref_remainder_int(int64_t a, int64_t b) {
  if (b == 0) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

// ---- reductions ------------------------------------------------------------------

struct Ref {
  Shape shape;
  std::vector<double> v;
  std::vector<double> scale;  // per-element rounding scale (may be empty)
};

inline std::vector<int> norm_axes(std::vector<int> axes, int ndim) {
  if (axes.empty()) {
    axes.resize(ndim);
    std::iota(axes.begin(), axes.end(), 0);
  }
  for (auto& a : axes)
    if (a < 0) a += ndim;
  std::sort(axes.begin(), axes.end());
  return axes;
}

// Groups the elements of x by output cell (reduced axes removed) in row-major input
// order and applies f to each group; `sf` (optional) gives the rounding scale.
inline Ref reduce_ref(const std::vector<double>& x, const Shape& s, std::vector<int> axes,
                      bool keepdims, const std::function<double(const std::vector<double>&)>& f,
                      const std::function<double(const std::vector<double>&)>& sf = {}) {
  const int nd = static_cast<int>(s.size());
  axes = norm_axes(axes, nd);
  std::vector<bool> red(nd, false);
  for (int a : axes) red[a] = true;
  Shape kshape(s), oshape;
  for (int i = 0; i < nd; ++i) {
    if (red[i]) kshape[i] = 1;
    if (!red[i]) oshape.push_back(s[i]);
  }
  std::vector<std::vector<double>> groups(static_cast<size_t>(numel(kshape)));
  for (int64_t i = 0; i < numel(s); ++i) {
    auto idx = unravel(i, s);
    for (int d = 0; d < nd; ++d)
      if (red[d]) idx[d] = 0;
    groups[ravel(idx, kshape)].push_back(x[i]);
  }
  Ref r;
  r.shape = keepdims ? kshape : oshape;
  for (auto& g : groups) {
    r.v.push_back(f(g));
    if (sf) r.scale.push_back(sf(g));
  }
  return r;
}

inline double g_sum(const std::vector<double>& g) {
  long double s = 0;
  for (double v : g) s += v;
  return static_cast<double>(s);
}
inline double g_abssum(const std::vector<double>& g) {
  long double s = 0;
  for (double v : g) s += std::fabs(v);
  return static_cast<double>(s);
}
inline double g_prod(const std::vector<double>& g) {
  long double s = 1;
  for (double v : g) s *= v;
  return static_cast<double>(s);
}
inline double g_mean(const std::vector<double>& g) {
  return g_sum(g) / static_cast<double>(g.size());
}
inline double g_var(const std::vector<double>& g, double ddof) {
  long double m = 0;
  for (double v : g) m += v;
  m /= static_cast<long double>(g.size());
  long double s = 0;
  for (double v : g) s += (v - m) * (v - m);
  return static_cast<double>(s / (static_cast<long double>(g.size()) - ddof));
}
inline double g_max(const std::vector<double>& g) {
  double m = -INFINITY;
  for (double v : g) {
    if (std::isnan(v)) return v;
    m = std::max(m, v);
  }
  return m;
}
inline double g_min(const std::vector<double>& g) {
  double m = INFINITY;
  for (double v : g) {
    if (std::isnan(v)) return v;
    m = std::min(m, v);
  }
  return m;
}
inline double g_argmax(const std::vector<double>& g) {
  size_t k = 0;
  for (size_t i = 1; i < g.size(); ++i)
    if (g[i] > g[k]) k = i;
  return static_cast<double>(k);
}
inline double g_argmin(const std::vector<double>& g) {
  size_t k = 0;
  for (size_t i = 1; i < g.size(); ++i)
    if (g[i] < g[k]) k = i;
  return static_cast<double>(k);
}
inline double g_any(const std::vector<double>& g) {
  for (double v : g)
    if (v != 0.0) return 1.0;
  return 0.0;
}
inline double g_all(const std::vector<double>& g) {
  for (double v : g)
    if (v == 0.0) return 0.0;
  return 1.0;
}
inline double g_logsumexp(const std::vector<double>& g) {
  double m = g_max(g);
  if (std::isinf(m)) return m;
  long double s = 0;
  for (double v : g) s += std::exp(static_cast<long double>(v - m));
  return m + static_cast<double>(std::log(s));
}

// Inclusive scan along `axis` (op: 0 = sum, 1 = prod); scale = running sum of |x| (or |prod|).
inline Ref scan_ref(const std::vector<double>& x, const Shape& s, int axis, int op) {
  const int nd = static_cast<int>(s.size());
  if (axis < 0) axis += nd;
  Ref r{s, std::vector<double>(x.size()), std::vector<double>(x.size())};
  const auto st = strides_of(s);
  for (int64_t i = 0; i < numel(s); ++i) {
    auto idx = unravel(i, s);
    if (idx[axis] != 0) continue;
    long double acc = op == 0 ? 0.0L : 1.0L, sc = op == 0 ? 0.0L : 1.0L;
    for (int64_t j = 0; j < s[axis]; ++j) {
      int64_t f = i + j * st[axis];
      if (op == 0) {
        acc += x[f];
        sc += std::fabs(x[f]);
      } else {
        acc *= x[f];
        sc *= std::fabs(x[f]);
      }
      r.v[f] = static_cast<double>(acc);
      r.scale[f] = static_cast<double>(sc);
    }
  }
  return r;
}

// Softmax / log-softmax along `axis`.
inline std::vector<double> softmax_ref(const std::vector<double>& x, const Shape& s, int axis,
                                       bool log) {
  const int nd = static_cast<int>(s.size());
  if (axis < 0) axis += nd;
  std::vector<double> out(x.size());
  const auto st = strides_of(s);
  for (int64_t i = 0; i < numel(s); ++i) {
    auto idx = unravel(i, s);
    if (idx[axis] != 0) continue;
    double m = -INFINITY;
    for (int64_t j = 0; j < s[axis]; ++j) m = std::max(m, x[i + j * st[axis]]);
    long double sum = 0;
    for (int64_t j = 0; j < s[axis]; ++j)
      sum += std::exp(static_cast<long double>(x[i + j * st[axis]] - m));
    for (int64_t j = 0; j < s[axis]; ++j) {
      double v = x[i + j * st[axis]] - m;
      out[i + j * st[axis]] =
          log ? static_cast<double>(v - std::log(sum))
              : static_cast<double>(std::exp(static_cast<long double>(v)) / sum);
    }
  }
  return out;
}

// Layer norm over the trailing `inner` elements of each row.
inline std::vector<double> layer_norm_ref(const std::vector<double>& x, int64_t inner,
                                          const std::vector<double>* w,
                                          const std::vector<double>* b, double eps) {
  std::vector<double> out(x.size());
  for (size_t r = 0; r < x.size() / inner; ++r) {
    std::vector<double> g(x.begin() + r * inner, x.begin() + (r + 1) * inner);
    double m = g_mean(g), v = g_var(g, 0);
    for (int64_t j = 0; j < inner; ++j) {
      double y = (g[j] - m) / std::sqrt(v + eps);
      if (w) y *= (*w)[j];
      if (b) y += (*b)[j];
      out[r * inner + j] = y;
    }
  }
  return out;
}

// NumPy matmul (1-D promotion, broadcast batch axes); scale = sum |a||b| per element.
template <class T>
struct MatmulRefT {
  Shape shape;
  std::vector<T> v;
  std::vector<double> scale;
};
template <class T>
inline MatmulRefT<T> matmul_ref(const std::vector<T>& a, Shape sa, const std::vector<T>& b,
                                Shape sb) {
  const bool a1 = sa.size() == 1, b1 = sb.size() == 1;
  if (a1) sa = {1, sa[0]};
  if (b1) sb = {sb[0], 1};
  const int64_t m = sa[sa.size() - 2], k = sa.back(), n = sb.back();
  EXPECT_EQ(sb[sb.size() - 2], k) << "matmul_ref: inner dims";
  Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
  Shape batch;
  {
    size_t nd = std::max(ba.size(), bb.size());
    batch.resize(nd);
    for (size_t i = 0; i < nd; ++i) {
      int64_t x = i + ba.size() >= nd ? ba[i + ba.size() - nd] : 1;
      int64_t y = i + bb.size() >= nd ? bb[i + bb.size() - nd] : 1;
      batch[i] = std::max(x, y);
    }
  }
  MatmulRefT<T> r;
  const int64_t nb = numel(batch);
  r.v.resize(static_cast<size_t>(nb * m * n));
  r.scale.resize(r.v.size());
  for (int64_t bi = 0; bi < nb; ++bi) {
    auto bidx = unravel(bi, batch);
    const int64_t oa = bcast_index(bidx, ba) * m * k, ob = bcast_index(bidx, bb) * k * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        T acc{};
        double sc = 0;
        for (int64_t p = 0; p < k; ++p) {
          acc += a[oa + i * k + p] * b[ob + p * n + j];
          sc += std::abs(a[oa + i * k + p]) * std::abs(b[ob + p * n + j]);
        }
        r.v[(bi * m + i) * n + j] = acc;
        r.scale[(bi * m + i) * n + j] = sc;
      }
  }
  r.shape = batch;
  if (!a1) r.shape.push_back(m);
  if (!b1) r.shape.push_back(n);
  return r;
}
using MatmulRef = MatmulRefT<double>;

}  // namespace tt
