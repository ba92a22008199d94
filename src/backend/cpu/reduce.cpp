// Reductions (sum, prod, max, min, any, all), arg-reductions and scans.
//
// reduce() sorts x's dims by stride, merges the ones that are contiguous in
// memory order and, when the result is a contiguous (outer, reduce, inner)
// problem, runs one of two vectorised kernels: rows (inner == 1) or columns
// (rows of `inner` elements accumulated into a buffer). Anything else runs a
// generic strided loop. Float sums are pairwise: every kernel evaluates a fixed
// binary tree over blocks, so results do not depend on the thread count
// (threads evaluate the top subtrees of the same tree).
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/thread_pool.h"
#include "tmath/error.h"

namespace tmath::cpu {
namespace {

// ---- dtype plumbing ---------------------------------------------------------

template <class T>
struct Tag {
  using type = T;
};

template <class F>
void visit(DType dt, F&& f) {
  switch (dt) {
    case DType::Bool:
      return f(Tag<bool>{});
    case DType::Int8:
      return f(Tag<int8_t>{});
    case DType::Int16:
      return f(Tag<int16_t>{});
    case DType::Int32:
      return f(Tag<int32_t>{});
    case DType::Int64:
      return f(Tag<int64_t>{});
    case DType::UInt8:
      return f(Tag<uint8_t>{});
    case DType::UInt16:
      return f(Tag<uint16_t>{});
    case DType::UInt32:
      return f(Tag<uint32_t>{});
    case DType::UInt64:
      return f(Tag<uint64_t>{});
    case DType::Float16:
      return f(Tag<Half>{});
    case DType::BFloat16:
      return f(Tag<BFloat16>{});
    case DType::Float32:
      return f(Tag<float>{});
    case DType::Float64:
      return f(Tag<double>{});
    case DType::Complex64:
      return f(Tag<complex64_t>{});
    case DType::Complex128:
      return f(Tag<complex128_t>{});
  }
  throw DTypeError("[reduce] invalid dtype code " + std::to_string(static_cast<int>(dt)));
}

template <class T>
inline constexpr bool kIsComplex =
    std::is_same_v<T, complex64_t> || std::is_same_v<T, complex128_t>;
template <class T>
inline constexpr bool kIsLow = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;
template <class T>
inline constexpr bool kIsInt = std::is_integral_v<T> && !std::is_same_v<T, bool>;

// Value conversion between any two element/accumulator types (NumPy casting:
// complex -> real drops the imaginary part; float -> int saturates, NaN -> 0).
template <class To, class From>
To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (kIsLow<From>) {
    return convert<To>(static_cast<float>(v));
  } else if constexpr (kIsComplex<From>) {
    if constexpr (kIsComplex<To>) {
      using R = typename To::value_type;
      return To(static_cast<R>(v.real()), static_cast<R>(v.imag()));
    } else if constexpr (std::is_same_v<To, bool>) {
      return v.real() != 0 || v.imag() != 0;
    } else {
      return convert<To>(v.real());
    }
  } else if constexpr (kIsComplex<To>) {
    using R = typename To::value_type;
    return To(convert<R>(v), R(0));
  } else if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (kIsLow<To>) {
    return To(convert<float>(v));
  } else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    if (!(v == v)) return To(0);
    if (v <= static_cast<From>(std::numeric_limits<To>::min())) {
      return std::numeric_limits<To>::min();
    }
    if (v >= static_cast<From>(std::numeric_limits<To>::max())) {
      return std::numeric_limits<To>::max();
    }
    return static_cast<To>(v);
  } else {
    return static_cast<To>(v);
  }
}

// Contiguous store of n accumulator values into an output of another dtype.
template <class A>
using StoreFn = void (*)(const A* src, int64_t n, void* out, int64_t offset, int64_t stride);

template <class A, class O>
void store_as(const A* src, int64_t n, void* out, int64_t offset, int64_t stride) {
  O* o = static_cast<O*>(out) + offset;
  for (int64_t i = 0; i < n; ++i) o[i * stride] = convert<O>(src[i]);
}

template <class A>
StoreFn<A> store_fn(DType dt) {
  StoreFn<A> fn = nullptr;
  visit(dt, [&](auto tag) { fn = &store_as<A, typename decltype(tag)::type>; });
  return fn;
}

// Scratch array of n values (std::vector<bool> is not an array).
template <class A>
std::unique_ptr<A[]> scratch(int64_t n) {
  return std::unique_ptr<A[]>(new A[static_cast<size_t>(std::max<int64_t>(n, 1))]);
}

// ---- SIMD packs (GCC vector extensions, one SSE register) -----------------------

typedef float VecF __attribute__((vector_size(16)));
typedef double VecD __attribute__((vector_size(16)));
template <class A>
struct VecOf {
  using type = void;
};
template <>
struct VecOf<float> {
  using type = VecF;
};
template <>
struct VecOf<double> {
  using type = VecD;
};
template <class V>
inline constexpr bool kIsVec = std::is_same_v<V, VecF> || std::is_same_v<V, VecD>;

template <class V, class A>
V vload(const A* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// ---- reduction ops ------------------------------------------------------------

template <class A>
A add(A a, A b) {
  if constexpr (kIsInt<A>) {
    return static_cast<A>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  } else {
    return a + b;
  }
}
template <class A>
A mul(A a, A b) {
  if constexpr (kIsInt<A>) {
    return static_cast<A>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
  } else {
    return a * b;
  }
}

// Accumulator of sums/products (accumulate_type): uint64 for unsigned ints, int64
// for bool and signed ints, float32 for f16/bf16.
template <class T>
using SumAcc = std::conditional_t<
    kIsInt<T> && std::is_unsigned_v<T>, uint64_t,
    std::conditional_t<std::is_integral_v<T>, int64_t, std::conditional_t<kIsLow<T>, float, T>>>;
template <class T>
using OrderAcc = std::conditional_t<kIsLow<T>, float, T>;

struct SumOp {
  static constexpr const char* kName = "sum";
  template <class T>
  using Acc = SumAcc<T>;
  template <class A>
  static A identity() {
    return A(0);
  }
  template <class A>
  static A combine(A a, A b) {
    return add(a, b);
  }
};

struct ProdOp {
  static constexpr const char* kName = "prod";
  template <class T>
  using Acc = SumAcc<T>;
  template <class A>
  static A identity() {
    return A(1);
  }
  template <class A>
  static A combine(A a, A b) {
    return mul(a, b);
  }
};

// NaN propagates: the result is NaN if either side is.
struct MaxOp {
  static constexpr const char* kName = "max";
  template <class T>
  using Acc = OrderAcc<T>;
  template <class A>
  static A identity() {
    if constexpr (std::is_floating_point_v<A>) return -std::numeric_limits<A>::infinity();
    return std::numeric_limits<A>::lowest();
  }
  template <class A>
  static A combine(A a, A b) {
    if constexpr (kIsVec<A>) {
      return ((a >= b) | (a != a)) ? a : b;
    } else {
      return (a >= b || a != a) ? a : b;
    }
  }
};

struct MinOp {
  static constexpr const char* kName = "min";
  template <class T>
  using Acc = OrderAcc<T>;
  template <class A>
  static A identity() {
    if constexpr (std::is_floating_point_v<A>) return std::numeric_limits<A>::infinity();
    return std::numeric_limits<A>::max();
  }
  template <class A>
  static A combine(A a, A b) {
    if constexpr (kIsVec<A>) {
      return ((a <= b) | (a != a)) ? a : b;
    } else {
      return (a <= b || a != a) ? a : b;
    }
  }
};

struct AnyOp {
  static constexpr const char* kName = "any";
  template <class T>
  using Acc = bool;
  template <class A>
  static A identity() {
    return false;
  }
  template <class A>
  static A combine(A a, A b) {
    return a || b;
  }
};

struct AllOp {
  static constexpr const char* kName = "all";
  template <class T>
  using Acc = bool;
  template <class A>
  static A identity() {
    return true;
  }
  template <class A>
  static A combine(A a, A b) {
    return a && b;
  }
};

// ---- pairwise trees -----------------------------------------------------------

// Every tree splits a range of n units into n/2 and n - n/2 until one unit is left.
struct Range {
  int64_t begin, n;
};

void subtrees(int64_t begin, int64_t n, int depth, std::vector<Range>& out) {
  if (depth == 0 || n <= 1) {
    out.push_back({begin, n});
    return;
  }
  const int64_t h = n / 2;
  subtrees(begin, h, depth - 1, out);
  subtrees(begin + h, n - h, depth - 1, out);
}

// Depth at which to cut a tree of n units of `unit` elements each into parallel tasks.
int parallel_depth(int64_t n, int64_t unit) {
  const int nt = num_threads();
  if (nt <= 1) return 0;
  int depth = 0;
  while ((int64_t{1} << depth) < 4 * nt && (n >> (depth + 1)) * unit >= kGrain / 2 &&
         (n >> (depth + 1)) >= 1) {
    ++depth;
  }
  return depth;
}

// Combines per-subtree results (in subtrees() order) in the tree's shape.
template <class P, class Merge>
P merge_tree(int64_t n, int depth, const P* res, size_t& k, const Merge& merge) {
  if (depth == 0 || n <= 1) return res[k++];
  const int64_t h = n / 2;
  P a = merge_tree(h, depth - 1, res, k, merge);
  P b = merge_tree(n - h, depth - 1, res, k, merge);
  return merge(a, b);
}

// ---- row kernel: reduce contiguous runs ----------------------------------------

template <class Op, class A, class T>
struct RowKernel {
  static constexpr bool kVec =
      std::is_same_v<A, T> && !std::is_same_v<typename VecOf<A>::type, void>;
  using V = std::conditional_t<kVec, typename VecOf<A>::type, A>;
  static constexpr int64_t kLanes = kVec ? static_cast<int64_t>(sizeof(V) / sizeof(A)) : 1;
  // Elements per leaf block: 8 packs x 8 steps (vector) or 8 accumulators x 16 steps.
  static constexpr int64_t kBlock = kVec ? 64 * kLanes : 128;

  static V leaf(const T* p) {
    if constexpr (kVec) {
      V v[8];
      for (int j = 0; j < 8; ++j) v[j] = vload<V>(p + j * kLanes);
      for (int64_t s = 1; s < 8; ++s) {
        const T* q = p + s * 8 * kLanes;
        for (int j = 0; j < 8; ++j) v[j] = Op::combine(v[j], vload<V>(q + j * kLanes));
      }
      for (int w = 4; w >= 1; w /= 2) {
        for (int j = 0; j < w; ++j) v[j] = Op::combine(v[j], v[j + w]);
      }
      return v[0];
    } else {
      return small(p, kBlock, 1);
    }
  }

  // Up to a few hundred elements with 8 round-robin accumulators.
  static A small(const T* p, int64_t n, int64_t stride) {
    if constexpr (std::is_integral_v<A>) {
      // Exact, so one accumulator; GCC 12 -O3 also miscompiles the 8-way form
      // below for widening integer loads.
      A acc = Op::template identity<A>();
      for (int64_t i = 0; i < n; ++i) acc = Op::combine(acc, convert<A>(p[i * stride]));
      return acc;
    }
    A acc[8];
    for (auto& a : acc) a = Op::template identity<A>();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      for (int j = 0; j < 8; ++j) acc[j] = Op::combine(acc[j], convert<A>(p[(i + j) * stride]));
    }
    for (int64_t j = 0; j < 8 && i + j < n; ++j) {
      acc[j] = Op::combine(acc[j], convert<A>(p[(i + j) * stride]));
    }
    return Op::combine(Op::combine(Op::combine(acc[0], acc[1]), Op::combine(acc[2], acc[3])),
                       Op::combine(Op::combine(acc[4], acc[5]), Op::combine(acc[6], acc[7])));
  }

  static A finish(V v) {
    if constexpr (kVec) {
      A lanes[kLanes];
      std::memcpy(lanes, &v, sizeof v);
      for (int64_t w = kLanes / 2; w >= 1; w /= 2) {
        for (int64_t j = 0; j < w; ++j) lanes[j] = Op::combine(lanes[j], lanes[j + w]);
      }
      return lanes[0];
    } else {
      return v;
    }
  }

  static V tree(const T* p, int64_t nb) {
    if (nb == 1) return leaf(p);
    const int64_t h = nb / 2;
    return Op::combine(tree(p, h), tree(p + h * kBlock, nb - h));
  }

  // Pairwise reduction of n contiguous elements; `parallel` evaluates the top of
  // the tree on the thread pool (same result).
  static A run(const T* p, int64_t n, bool parallel) {
    const int64_t nb = n / kBlock;
    const int64_t rest = n - nb * kBlock;
    A tail = small(p + nb * kBlock, rest, 1);
    if (nb == 0) return tail;
    V body;
    const int depth = parallel ? parallel_depth(nb, kBlock) : 0;
    if (depth == 0) {
      body = tree(p, nb);
    } else {
      std::vector<Range> parts;
      subtrees(0, nb, depth, parts);
      auto res = scratch<V>(static_cast<int64_t>(parts.size()));
      parallel_for(static_cast<int64_t>(parts.size()), 1, [&](int64_t b, int64_t e) {
        for (int64_t k = b; k < e; ++k) res[k] = tree(p + parts[k].begin * kBlock, parts[k].n);
      });
      size_t k = 0;
      body = merge_tree(nb, depth, res.get(), k, [](V a, V b) { return Op::combine(a, b); });
    }
    return Op::combine(finish(body), tail);
  }
};

// dst[o] = reduce(x[o * r + 0 .. r)) for o < outer.
template <class Op, class A, class T>
void reduce_rows(const T* x, int64_t outer, int64_t r, A* dst) {
  using K = RowKernel<Op, A, T>;
  if (outer == 1 || (outer < 2 * num_threads() && r >= 4 * kGrain)) {
    for (int64_t o = 0; o < outer; ++o) dst[o] = K::run(x + o * r, r, true);
    return;
  }
  parallel_for(outer, std::max<int64_t>(1, kGrain / std::max<int64_t>(r, 1)),
               [&](int64_t b, int64_t e) {
                 for (int64_t o = b; o < e; ++o) dst[o] = K::run(x + o * r, r, false);
               });
}

// ---- column kernel: accumulate rows of w elements ------------------------------

template <class Op, class A, class T>
void row_init(A* dst, const T* src, int64_t w) {
  for (int64_t i = 0; i < w; ++i) dst[i] = convert<A>(src[i]);
}
template <class Op, class A, class T>
void row_accum(A* dst, const T* src, int64_t w) {
  for (int64_t i = 0; i < w; ++i) dst[i] = Op::combine(dst[i], convert<A>(src[i]));
}

// dst[0..w) = pairwise reduction over `rows` rows (row stride ld) of x[.., 0..w).
// scratch holds one w-buffer per tree level.
template <class Op, class A, class T>
void col_tree(const T* x, int64_t rows, int64_t ld, int64_t w, A* dst, A* scratch) {
  if (rows <= 8) {
    row_init<Op>(dst, x, w);
    for (int64_t r = 1; r < rows; ++r) row_accum<Op>(dst, x + r * ld, w);
    return;
  }
  const int64_t h = rows / 2;
  col_tree<Op>(x, h, ld, w, dst, scratch);
  col_tree<Op>(x + h * ld, rows - h, ld, w, scratch, scratch + w);
  row_accum<Op>(dst, scratch, w);
}

int tree_levels(int64_t rows) {
  int levels = 1;
  while (rows > 8) {
    rows -= rows / 2;
    ++levels;
  }
  return levels;
}

// dst[o * inner + i] = reduce over r of x[(o * rows + r) * inner + i].
template <class Op, class A, class T>
void reduce_cols(const T* x, int64_t outer, int64_t rows, int64_t inner, A* dst) {
  const int64_t tile = inner <= 8192 ? inner : 4096;
  const int64_t tiles = (inner + tile - 1) / tile;
  const int64_t tasks = outer * tiles;
  const int levels = tree_levels(rows);
  auto task = [&](int64_t t, A* scr) {
    const int64_t o = t / tiles, i0 = (t % tiles) * tile;
    const int64_t w = std::min(tile, inner - i0);
    col_tree<Op>(x + o * rows * inner + i0, rows, inner, w, dst + o * inner + i0, scr);
  };
  const int nt = num_threads();
  if (tasks >= 2 * nt || rows * inner < 4 * kGrain || rows <= 8) {
    const int64_t per_task = rows * tile;
    parallel_for(tasks, std::max<int64_t>(1, kGrain / std::max<int64_t>(per_task, 1)),
                 [&](int64_t b, int64_t e) {
                   auto scr = scratch<A>(levels * tile);
                   for (int64_t t = b; t < e; ++t) task(t, scr.get());
                 });
    return;
  }
  // Few wide tasks over many rows: cut the row tree (leaves of 8 rows) instead.
  const int64_t leaves = (rows + 7) / 8;
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t o = t / tiles, i0 = (t % tiles) * tile;
    const int64_t w = std::min(tile, inner - i0);
    const T* base = x + o * rows * inner + i0;
    // Subtrees of the row tree: cut at the same split points col_tree uses.
    std::vector<Range> parts;
    const int depth = parallel_depth(leaves, 8 * w);
    std::function<void(int64_t, int64_t, int)> cut = [&](int64_t r0, int64_t n, int d) {
      if (d == 0 || n <= 8) {
        parts.push_back({r0, n});
        return;
      }
      cut(r0, n / 2, d - 1);
      cut(r0 + n / 2, n - n / 2, d - 1);
    };
    cut(0, rows, depth);
    auto res = scratch<A>(static_cast<int64_t>(parts.size()) * w);
    parallel_for(static_cast<int64_t>(parts.size()), 1, [&](int64_t b, int64_t e) {
      auto scr = scratch<A>(levels * w);
      for (int64_t k = b; k < e; ++k) {
        col_tree<Op>(base + parts[k].begin * inner, parts[k].n, inner, w, res.get() + k * w,
                     scr.get());
      }
    });
    // Merge in tree shape; each node's result lands in its left child's buffer.
    size_t k = 0;
    std::function<A*(int64_t, int)> merge = [&](int64_t n, int d) -> A* {
      if (d == 0 || n <= 8) return res.get() + (k++) * w;
      A* a = merge(n / 2, d - 1);
      A* b = merge(n - n / 2, d - 1);
      row_accum<Op>(a, b, w);
      return a;
    };
    A* total = merge(rows, depth);
    std::copy(total, total + w, dst + o * inner + i0);
  }
}

// ---- generic strided kernel ----------------------------------------------------

struct Dim {
  int64_t size, xs, os;
};

constexpr int kMaxDims = 64;

// Reduction of the flat reduced index range [lo, hi) (reduced dims `rd`,
// innermost last) starting at x, pairwise above 128 elements.
template <class Op, class A, class T>
A generic_tree(const T* x, const std::vector<Dim>& rd, int64_t lo, int64_t hi) {
  if (hi - lo > 128) {
    const int64_t mid = lo + (((hi - lo) / 2) & ~int64_t{7});
    return Op::combine(generic_tree<Op, A>(x, rd, lo, mid), generic_tree<Op, A>(x, rd, mid, hi));
  }
  const int nd = static_cast<int>(rd.size());
  int64_t idx[kMaxDims];
  int64_t off = 0, rem = lo;
  for (int d = nd - 1; d >= 0; --d) {
    idx[d] = rem % rd[d].size;
    rem /= rd[d].size;
    off += idx[d] * rd[d].xs;
  }
  A acc[8];
  for (auto& a : acc) a = Op::template identity<A>();
  constexpr int64_t kMask = std::is_integral_v<A> ? 0 : 7;  // ints are exact: one accumulator
  for (int64_t k = 0; k < hi - lo; ++k) {
    acc[k & kMask] = Op::combine(acc[k & kMask], convert<A>(x[off]));
    for (int d = nd - 1; d >= 0; --d) {
      off += rd[d].xs;
      if (++idx[d] < rd[d].size) break;
      off -= idx[d] * rd[d].xs;
      idx[d] = 0;
    }
  }
  return Op::combine(Op::combine(Op::combine(acc[0], acc[1]), Op::combine(acc[2], acc[3])),
                     Op::combine(Op::combine(acc[4], acc[5]), Op::combine(acc[6], acc[7])));
}

template <class Op, class A, class T>
void reduce_generic(const T* x, const std::vector<Dim>& kd, const std::vector<Dim>& rd,
                    int64_t n_red, A* dst) {
  int64_t n_out = 1;
  for (const Dim& d : kd) n_out *= d.size;
  const int nk = static_cast<int>(kd.size());
  parallel_for(
      n_out, std::max<int64_t>(1, kGrain / std::max<int64_t>(n_red, 1)), [&](int64_t b, int64_t e) {
        for (int64_t j = b; j < e; ++j) {
          int64_t rem = j, xo = 0, oo = 0;
          for (int d = nk - 1; d >= 0; --d) {
            const int64_t c = rem % kd[d].size;
            rem /= kd[d].size;
            xo += c * kd[d].xs;
            oo += c * kd[d].os;
          }
          dst[oo] = n_red == 1 ? convert<A>(x[xo]) : generic_tree<Op, A>(x + xo, rd, 0, n_red);
        }
      });
}

// ---- reduce driver -------------------------------------------------------------

template <class Op, class T>
void reduce_typed(const ArrayRef& x, std::span<const int> axes, const ArrayRef& out) {
  using A = typename Op::template Acc<T>;
  const int nd = x.ndim();
  const int64_t n_out = out.size();
  if (n_out == 0) return;
  std::vector<bool> red(static_cast<size_t>(nd), false);
  int64_t n_red = 1;
  for (int a : axes) {
    if (a < 0 || a >= nd) {
      throw ShapeError(std::string("[") + Op::kName + "] axis " + std::to_string(a) +
                       " out of range for " + std::to_string(nd) + " dims");
    }
    red[static_cast<size_t>(a)] = true;
    n_red *= x.shape[static_cast<size_t>(a)];
  }

  const StoreFn<A> store = out.dtype == dtype_v<A> ? nullptr : store_fn<A>(out.dtype);
  std::unique_ptr<A[]> tmp;
  A* dst;
  if (store) {
    tmp = scratch<A>(n_out);
    dst = tmp.get();
  } else {
    dst = out.ptr<A>();
  }
  auto finish = [&] {
    if (store) store(dst, n_out, out.data, 0, 1);
  };

  if (n_red == 0) {
    if constexpr (std::is_same_v<Op, MaxOp> || std::is_same_v<Op, MinOp>) {
      throw ShapeError(std::string("[") + Op::kName + "] zero-size reduction");
    } else {
      std::fill(dst, dst + n_out, Op::template identity<A>());
      return finish();
    }
  }

  // Dims of size > 1; reduced dims with negative stride are walked forwards.
  const T* base = x.ptr<T>();
  std::vector<Dim> dims;
  std::vector<bool> dim_red;
  for (int d = 0; d < nd; ++d) {
    const int64_t n = x.shape[static_cast<size_t>(d)];
    if (n == 1) continue;
    int64_t xs = x.strides[static_cast<size_t>(d)];
    if (red[static_cast<size_t>(d)] && xs < 0) {
      base += (n - 1) * xs;
      xs = -xs;
    }
    dims.push_back({n, xs, red[static_cast<size_t>(d)] ? 0 : out.strides[static_cast<size_t>(d)]});
    dim_red.push_back(red[static_cast<size_t>(d)]);
  }
  // Sort by |x stride| (outermost first) and merge dims contiguous in both x and out.
  std::vector<size_t> order(dims.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return std::abs(dims[a].xs) > std::abs(dims[b].xs); });
  std::vector<Dim> merged;
  std::vector<bool> merged_red;
  for (size_t i : order) {
    const Dim& d = dims[i];
    if (!merged.empty() && merged_red.back() == dim_red[i] && merged.back().xs == d.xs * d.size &&
        merged.back().os == d.os * d.size) {
      merged.back().size *= d.size;
      merged.back().xs = d.xs;
      merged.back().os = d.os;
      continue;
    }
    merged.push_back(d);
    merged_red.push_back(dim_red[i]);
  }

  // Contiguous (outer, reduce, inner)?
  int64_t outer = 1, rows = 1, inner = 1;
  size_t k = 0;
  bool fast = true;
  int64_t oxs = 0, oos = 0, rxs = 0, ixs = 1, ios = 1;
  if (k < merged.size() && !merged_red[k]) {
    outer = merged[k].size, oxs = merged[k].xs, oos = merged[k].os;
    ++k;
  }
  if (k < merged.size() && merged_red[k]) {
    rows = merged[k].size, rxs = merged[k].xs;
    ++k;
  }
  if (k < merged.size() && !merged_red[k]) {
    inner = merged[k].size, ixs = merged[k].xs, ios = merged[k].os;
    ++k;
  }
  if (k != merged.size()) fast = false;
  if (inner > 1 && (ixs != 1 || ios != 1)) fast = false;
  if (rows > 1 && rxs != inner) fast = false;
  if (outer > 1 && (oxs != rows * inner || oos != inner)) fast = false;

  if (fast) {
    if (inner == 1 && rows > 1) {
      reduce_rows<Op, A, T>(base, outer, rows, dst);
    } else if (rows == 1 && inner == 1) {
      reduce_cols<Op, A, T>(base, 1, 1, outer, dst);
    } else {
      reduce_cols<Op, A, T>(base, outer, rows, inner, dst);
    }
    return finish();
  }
  std::vector<Dim> kd, rd;
  for (size_t i = 0; i < merged.size(); ++i) (merged_red[i] ? rd : kd).push_back(merged[i]);
  if (static_cast<int>(rd.size()) > kMaxDims) {
    throw UnsupportedError(std::string("[") + Op::kName + "] too many dims");
  }
  reduce_generic<Op, A, T>(base, kd, rd, n_red, dst);
  finish();
}

template <class Op>
void reduce_op(const ArrayRef& x, std::span<const int> axes, const ArrayRef& out) {
  visit(x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr ((std::is_same_v<Op, MaxOp> || std::is_same_v<Op, MinOp>)&&kIsComplex<T>) {
      throw DTypeError(std::string("[") + Op::kName + "] complex dtype " +
                       std::string(dtype_name(x.dtype)) + " has no ordering");
    } else {
      reduce_typed<Op, T>(x, axes, out);
    }
  });
}

// ---- arg-reduce and scan layout -------------------------------------------------

// x split into (other dims..., axis): other dims merged where contiguous in
// both x and out. `ld` is the innermost other dim, the rest are `outer`.
struct AxisLayout {
  int64_t n = 0, xa = 0, oa = 0;  // axis length and strides
  std::vector<Dim> outer;         // other dims except the innermost
  Dim ld{1, 0, 0};                // innermost other dim
  int64_t n_outer = 1;
};

AxisLayout axis_layout(const ArrayRef& x, int axis, const ArrayRef& out, const char* name) {
  const int nd = x.ndim();
  if (axis < 0 || axis >= nd) {
    throw ShapeError(std::string("[") + name + "] axis " + std::to_string(axis) +
                     " out of range for " + std::to_string(nd) + " dims");
  }
  AxisLayout l;
  l.n = x.shape[static_cast<size_t>(axis)];
  l.xa = x.strides[static_cast<size_t>(axis)];
  l.oa = out.strides[static_cast<size_t>(axis)];
  std::vector<Dim> others;
  for (int d = 0; d < nd; ++d) {
    const auto s = static_cast<size_t>(d);
    if (d == axis || x.shape[s] == 1) continue;
    const Dim dim{x.shape[s], x.strides[s], out.strides[s]};
    if (!others.empty() && others.back().xs == dim.xs * dim.size &&
        others.back().os == dim.os * dim.size) {
      others.back() = {others.back().size * dim.size, dim.xs, dim.os};
    } else {
      others.push_back(dim);
    }
  }
  if (!others.empty()) {
    l.ld = others.back();
    others.pop_back();
  }
  l.outer = std::move(others);
  for (const Dim& d : l.outer) l.n_outer *= d.size;
  return l;
}

// x and out offsets of outer index j.
inline void outer_offsets(const AxisLayout& l, int64_t j, int64_t& xo, int64_t& oo) {
  xo = oo = 0;
  for (int d = static_cast<int>(l.outer.size()) - 1; d >= 0; --d) {
    const int64_t c = j % l.outer[static_cast<size_t>(d)].size;
    j /= l.outer[static_cast<size_t>(d)].size;
    xo += c * l.outer[static_cast<size_t>(d)].xs;
    oo += c * l.outer[static_cast<size_t>(d)].os;
  }
}

constexpr int64_t kTile = 256;

template <bool kMax, class A>
bool better(A v, A best) {
  if constexpr (std::is_floating_point_v<A>) {
    if (v != v) return best == best;  // the first NaN wins
  }
  return kMax ? v > best : v < best;
}

template <bool kMax, class T>
void arg_reduce_typed(const ArrayRef& x, int axis, const ArrayRef& out) {
  using A = OrderAcc<T>;
  const char* name = kMax ? "argmax" : "argmin";
  if (out.size() == 0) return;
  const AxisLayout l = axis_layout(x, axis, out, name);
  if (l.n == 0) throw ShapeError(std::string("[") + name + "] zero-size reduction");
  const T* xp = x.ptr<T>();
  int64_t* op = out.ptr<int64_t>();
  const int64_t tasks_per_outer = (l.ld.size + kTile - 1) / kTile;
  const int64_t tasks = l.n_outer * tasks_per_outer;
  parallel_for(tasks, std::max<int64_t>(1, kGrain / (l.n * kTile)), [&](int64_t b, int64_t e) {
    A best[kTile];
    int64_t idx[kTile];
    for (int64_t t = b; t < e; ++t) {
      int64_t xo, oo;
      outer_offsets(l, t / tasks_per_outer, xo, oo);
      const int64_t i0 = (t % tasks_per_outer) * kTile;
      const int64_t w = std::min(kTile, l.ld.size - i0);
      const T* xb = xp + xo + i0 * l.ld.xs;
      if (w == 1 || l.xa == 1) {
        // Walk the axis for each output in turn (contiguous axis).
        for (int64_t i = 0; i < w; ++i) {
          const T* q = xb + i * l.ld.xs;
          A bv = convert<A>(q[0]);
          int64_t bi = 0;
          for (int64_t r = 1; r < l.n; ++r) {
            const A v = convert<A>(q[r * l.xa]);
            if (better<kMax>(v, bv)) bv = v, bi = r;
          }
          op[oo + (i0 + i) * l.ld.os] = bi;
        }
        continue;
      }
      for (int64_t i = 0; i < w; ++i) best[i] = convert<A>(xb[i * l.ld.xs]), idx[i] = 0;
      for (int64_t r = 1; r < l.n; ++r) {
        const T* q = xb + r * l.xa;
        for (int64_t i = 0; i < w; ++i) {
          const A v = convert<A>(q[i * l.ld.xs]);
          if (better<kMax>(v, best[i])) best[i] = v, idx[i] = r;
        }
      }
      for (int64_t i = 0; i < w; ++i) op[oo + (i0 + i) * l.ld.os] = idx[i];
    }
  });
}

template <bool kSum, class T>
void scan_typed(const ArrayRef& x, int axis, const ArrayRef& out) {
  using A = SumAcc<T>;
  const char* name = kSum ? "cumsum" : "cumprod";
  if (out.size() == 0) return;
  const AxisLayout l = axis_layout(x, axis, out, name);
  const StoreFn<A> store = store_fn<A>(out.dtype);
  const T* xp = x.ptr<T>();
  auto step = [](A acc, A v) { return kSum ? add(acc, v) : mul(acc, v); };
  const int64_t tasks_per_outer = (l.ld.size + kTile - 1) / kTile;
  const int64_t tasks = l.n_outer * tasks_per_outer;
  parallel_for(tasks, std::max<int64_t>(1, kGrain / (l.n * kTile)), [&](int64_t b, int64_t e) {
    A acc[kTile];
    for (int64_t t = b; t < e; ++t) {
      int64_t xo, oo;
      outer_offsets(l, t / tasks_per_outer, xo, oo);
      const int64_t i0 = (t % tasks_per_outer) * kTile;
      const int64_t w = std::min(kTile, l.ld.size - i0);
      const T* xb = xp + xo + i0 * l.ld.xs;
      const int64_t ob = oo + i0 * l.ld.os;
      if (w == 1 || l.xa == 1) {
        // Contiguous axis: scan each line in chunks of kTile, stored with stride oa.
        for (int64_t i = 0; i < w; ++i) {
          const T* q = xb + i * l.ld.xs;
          A run = kSum ? A(0) : A(1);
          for (int64_t r0 = 0; r0 < l.n; r0 += kTile) {
            const int64_t m = std::min(kTile, l.n - r0);
            for (int64_t r = 0; r < m; ++r)
              acc[r] = run = step(run, convert<A>(q[(r0 + r) * l.xa]));
            store(acc, m, out.data, ob + i * l.ld.os + r0 * l.oa, l.oa);
          }
        }
        continue;
      }
      for (int64_t i = 0; i < w; ++i) acc[i] = convert<A>(xb[i * l.ld.xs]);
      store(acc, w, out.data, ob, l.ld.os);
      for (int64_t r = 1; r < l.n; ++r) {
        const T* q = xb + r * l.xa;
        for (int64_t i = 0; i < w; ++i) acc[i] = step(acc[i], convert<A>(q[i * l.ld.xs]));
        store(acc, w, out.data, ob + r * l.oa, l.ld.os);
      }
    }
  });
}

}  // namespace

void reduce(OpCode op, const ArrayRef& x, std::span<const int> axes, const ArrayRef& out) {
  switch (op) {
    case OpCode::Sum:
      return reduce_op<SumOp>(x, axes, out);
    case OpCode::Prod:
      return reduce_op<ProdOp>(x, axes, out);
    case OpCode::Max:
      return reduce_op<MaxOp>(x, axes, out);
    case OpCode::Min:
      return reduce_op<MinOp>(x, axes, out);
    case OpCode::Any:
      return reduce_op<AnyOp>(x, axes, out);
    case OpCode::All:
      return reduce_op<AllOp>(x, axes, out);
    default:
      throw UnsupportedError("[reduce] " + std::string(op_name(op)) + " is not a reduction");
  }
}

void arg_reduce(OpCode op, const ArrayRef& x, int axis, const ArrayRef& out) {
  if (op != OpCode::ArgMax && op != OpCode::ArgMin) {
    throw UnsupportedError("[arg_reduce] " + std::string(op_name(op)) + " is not an arg-reduction");
  }
  const bool is_max = op == OpCode::ArgMax;
  const char* name = is_max ? "argmax" : "argmin";
  if (out.dtype != DType::Int64) {
    throw DTypeError(std::string("[") + name + "] output dtype must be int64, got " +
                     std::string(dtype_name(out.dtype)));
  }
  visit(x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (kIsComplex<T>) {
      throw DTypeError(std::string("[") + name + "] complex dtype " +
                       std::string(dtype_name(x.dtype)) + " has no ordering");
    } else if (is_max) {
      arg_reduce_typed<true, T>(x, axis, out);
    } else {
      arg_reduce_typed<false, T>(x, axis, out);
    }
  });
}

void scan(OpCode op, const ArrayRef& x, int axis, const ArrayRef& out) {
  if (op != OpCode::CumSum && op != OpCode::CumProd) {
    throw UnsupportedError("[scan] " + std::string(op_name(op)) + " is not a scan");
  }
  visit(x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (op == OpCode::CumSum) {
      scan_typed<true, T>(x, axis, out);
    } else {
      scan_typed<false, T>(x, axis, out);
    }
  });
}

}  // namespace tmath::cpu
