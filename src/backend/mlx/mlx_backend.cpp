// The mlx backend: tmath primitives on MLX arrays (libmlx), built as the plugin
// libtmath_mlx.so. libtmath dlopens it at start-up (src/core/plugin_loader.cpp)
// and calls tmath_mlx_register().
//
// Tensors on the "mlx" device keep their values as mlx::core::array between ops.
// The core hands backends raw addresses (ArrayRef::data), so this backend's
// allocator gives out addresses of a reserved, never-dereferenced range and keeps
// a slot (the MLX array that holds the bytes) per allocation; a kernel looks its
// inputs up by address and stores its result, still lazy, in the output's slot.
// MLX evaluates the graph when the engine reads data (copy_to_host), on
// synchronize(), and every kMaxPending stored results (bounds graph growth).
// Strided views become MLX reshapes/broadcasts or as_strided. Writes into part of
// a buffer (concatenate, slice assignment) and dtypes MLX lacks (complex128) take a
// host path over the evaluated bytes (MLX's CPU memory is host memory).
//
// Linear algebra runs through mlx::core::linalg on MLX's CPU stream, checked per batch
// entry so failures raise the cpu backend's LinAlgError (see run_linalg).
//
// Everything not claimed in supports() goes through the engine's cross-device
// fallback (cpu backend, copies counted, TMATH_LOG/TMATH_FALLBACK).
#include <mlx/fast.h>
#include <mlx/mlx.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <complex>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "core/dispatch.h"
#include "core/linalg_text.h"
#include "tmath/backend.h"
#include "tmath/error.h"

namespace tmath::mlxb {
namespace {

namespace mx = mlx::core;

constexpr int kMaxPending = 512;  // stored lazy results before a forced evaluation
constexpr int kMinCompiledOps = 4;  // fused programs shorter than this run as MLX ops

std::optional<mx::Dtype> to_mx(DType dt) {
  switch (dt) {
    case DType::Bool: return mx::bool_;
    case DType::Int8: return mx::int8;
    case DType::Int16: return mx::int16;
    case DType::Int32: return mx::int32;
    case DType::Int64: return mx::int64;
    case DType::UInt8: return mx::uint8;
    case DType::UInt16: return mx::uint16;
    case DType::UInt32: return mx::uint32;
    case DType::UInt64: return mx::uint64;
    case DType::Float16: return mx::float16;
    case DType::BFloat16: return mx::bfloat16;
    case DType::Float32: return mx::float32;
    case DType::Float64: return mx::float64;
    case DType::Complex64: return mx::complex64;
    default: return std::nullopt;  // complex128
  }
}

mx::Dtype mx_dtype(DType dt, const char* op) {
  auto d = to_mx(dt);
  if (!d)
    throw UnsupportedError(std::string("[") + op + "] the mlx backend has no dtype " +
                           std::string(dtype_name(dt)));
  return *d;
}

mx::Shape mx_shape(std::span<const int64_t> s) {
  mx::Shape r;
  for (auto v : s) r.push_back(static_cast<mx::ShapeElem>(v));
  return r;
}

// ---- storage ---------------------------------------------------------------

struct Slot {
  size_t nbytes = 0;
  std::optional<mx::array> arr;  // any shape/dtype covering nbytes; empty: never written
};

class Store;

class MlxAllocator final : public Allocator {
 public:
  explicit MlxAllocator(Store& s) : store_(s) {}
  void* allocate(size_t nbytes) override;
  void deallocate(void* p, size_t nbytes) override;
  MemoryStats stats() const override {
    std::lock_guard lk(mu_);
    return stats_;
  }
  void reset_peak() override {
    std::lock_guard lk(mu_);
    stats_.peak_bytes = stats_.active_bytes;
  }
  void empty_cache() override { mx::clear_cache(); }
  void set_limit(uint64_t bytes) override {
    std::lock_guard lk(mu_);
    stats_.limit_bytes = bytes;
    if (bytes) mx::set_memory_limit(bytes);
  }
  void count_transfer(bool to_device, uint64_t bytes) override {
    std::lock_guard lk(mu_);
    if (to_device) {
      ++stats_.host_to_device_copies;
      stats_.host_to_device_bytes += bytes;
    } else {
      ++stats_.device_to_host_copies;
      stats_.device_to_host_bytes += bytes;
    }
  }
  void note_alloc(size_t n) {
    std::lock_guard lk(mu_);
    ++stats_.allocations;
    ++stats_.cache_misses;
    stats_.active_bytes += n;
    stats_.requested_bytes += n;
    stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.active_bytes);
  }
  void note_free(size_t n) {
    std::lock_guard lk(mu_);
    stats_.active_bytes -= std::min<uint64_t>(n, stats_.active_bytes);
    stats_.requested_bytes -= std::min<uint64_t>(n, stats_.requested_bytes);
  }

 private:
  Store& store_;
  mutable std::mutex mu_;
  MemoryStats stats_;
};

// Address -> slot. Addresses start high and only grow (a 64-byte step at least), so
// a stale address can never name a newer slot.
class Store {
 public:
  std::recursive_mutex mu;  // every MLX call of the backend runs under it
  std::map<uintptr_t, Slot> slots;
  uintptr_t next = uintptr_t{1} << 46;
  int pending = 0;

  // The slot holding address p and p's byte offset in it.
  std::pair<Slot*, size_t> find(const void* p, const char* op) {
    auto a = reinterpret_cast<uintptr_t>(p);
    auto it = slots.upper_bound(a);
    if (it == slots.begin()) bad(op);
    --it;
    if (a - it->first > it->second.nbytes) bad(op);
    return {&it->second, a - it->first};
  }
  [[noreturn]] static void bad(const char* op) {
    throw DeviceError(std::string("[") + op +
                      "] the mlx backend got an address it did not allocate (not an mlx tensor)");
  }
};

void* MlxAllocator::allocate(size_t nbytes) {
  std::lock_guard lk(store_.mu);
  uintptr_t a = store_.next;
  store_.next += (std::max<size_t>(nbytes, 1) + 63) / 64 * 64;
  store_.slots.emplace(a, Slot{nbytes, std::nullopt});
  note_alloc(nbytes);
  return reinterpret_cast<void*>(a);
}
void MlxAllocator::deallocate(void* p, size_t nbytes) {
  std::lock_guard lk(store_.mu);
  store_.slots.erase(reinterpret_cast<uintptr_t>(p));
  note_free(nbytes);
}

// ---- host-side element access (the slow path) --------------------------------

struct Val {
  bool is_int = false;
  int64_t i = 0;
  std::complex<double> c;
};

Val load(const char* p, DType dt) {
  Val v;
  auto setf = [&](double d) { v.c = d; };
  auto seti = [&](int64_t i) {
    v.is_int = true;
    v.i = i;
    v.c = static_cast<double>(i);
  };
  switch (dt) {
    case DType::Bool: seti(*reinterpret_cast<const bool*>(p) ? 1 : 0); break;
    case DType::Int8: seti(*reinterpret_cast<const int8_t*>(p)); break;
    case DType::Int16: seti(*reinterpret_cast<const int16_t*>(p)); break;
    case DType::Int32: seti(*reinterpret_cast<const int32_t*>(p)); break;
    case DType::Int64: seti(*reinterpret_cast<const int64_t*>(p)); break;
    case DType::UInt8: seti(*reinterpret_cast<const uint8_t*>(p)); break;
    case DType::UInt16: seti(*reinterpret_cast<const uint16_t*>(p)); break;
    case DType::UInt32: seti(*reinterpret_cast<const uint32_t*>(p)); break;
    case DType::UInt64: seti(static_cast<int64_t>(*reinterpret_cast<const uint64_t*>(p))); break;
    case DType::Float16: setf(float(*reinterpret_cast<const Half*>(p))); break;
    case DType::BFloat16: setf(float(*reinterpret_cast<const BFloat16*>(p))); break;
    case DType::Float32: setf(*reinterpret_cast<const float*>(p)); break;
    case DType::Float64: setf(*reinterpret_cast<const double*>(p)); break;
    case DType::Complex64: v.c = *reinterpret_cast<const complex64_t*>(p); break;
    case DType::Complex128: v.c = *reinterpret_cast<const complex128_t*>(p); break;
  }
  return v;
}

void store(char* p, DType dt, const Val& v) {
  const double d = v.c.real();
  auto as_int = [&]() -> int64_t { return v.is_int ? v.i : static_cast<int64_t>(d); };
  switch (dt) {
    case DType::Bool: *reinterpret_cast<bool*>(p) = v.is_int ? v.i != 0 : v.c != 0.0; break;
    case DType::Int8: *reinterpret_cast<int8_t*>(p) = static_cast<int8_t>(as_int()); break;
    case DType::Int16: *reinterpret_cast<int16_t*>(p) = static_cast<int16_t>(as_int()); break;
    case DType::Int32: *reinterpret_cast<int32_t*>(p) = static_cast<int32_t>(as_int()); break;
    case DType::Int64: *reinterpret_cast<int64_t*>(p) = as_int(); break;
    case DType::UInt8: *reinterpret_cast<uint8_t*>(p) = static_cast<uint8_t>(as_int()); break;
    case DType::UInt16: *reinterpret_cast<uint16_t*>(p) = static_cast<uint16_t>(as_int()); break;
    case DType::UInt32: *reinterpret_cast<uint32_t*>(p) = static_cast<uint32_t>(as_int()); break;
    case DType::UInt64: *reinterpret_cast<uint64_t*>(p) = static_cast<uint64_t>(as_int()); break;
    case DType::Float16: *reinterpret_cast<Half*>(p) = Half(static_cast<float>(d)); break;
    case DType::BFloat16: *reinterpret_cast<BFloat16*>(p) = BFloat16(static_cast<float>(d)); break;
    case DType::Float32: *reinterpret_cast<float*>(p) = static_cast<float>(d); break;
    case DType::Float64: *reinterpret_cast<double*>(p) = d; break;
    case DType::Complex64: *reinterpret_cast<complex64_t*>(p) = complex64_t(v.c); break;
    case DType::Complex128: *reinterpret_cast<complex128_t*>(p) = v.c; break;
  }
}

// ---- linear algebra ------------------------------------------------------------
// mlx::core::linalg runs LAPACK on MLX's CPU stream. It does not report failures
// the way the engine does (a singular matrix throws for the whole batch, a matrix that
// is not positive definite returns garbage, NaN input can make LAPACK abort the
// process), so every matrix of a batch is checked first, as MLX ops: NaN/Inf (in the
// part the op reads), then the factorisation's own verdict (an exact zero on U's
// diagonal, a non-positive diagonal of the Cholesky factor). Failing entries are
// replaced by the identity (or zeros) before MLX's LAPACK sees them, the per-entry
// status is evaluated with the outputs (one mx::eval), and the error names the lowest
// failing batch index with the cpu backend's words.

using detail::kBadPivots;
using detail::kNoConvergence;
using detail::kNonFinite;
using detail::kNotPositiveDefinite;
using detail::kOk;
using detail::kSingular;
using detail::linalg_fail_text;

// The (op, dtype) pairs MLX's linalg takes (its checks: float32/float64, complex64 for
// svd, eigh and eig) and that it computes in that precision: eig of float64 returns
// complex64, so it stays with the cpu backend. supports() also runs each pair once.
bool mlx_linalg_dtype(OpCode op, DType dt) {
  using O = OpCode;
  switch (op) {
    case O::Svd: case O::Eigh:
      return dt == DType::Float32 || dt == DType::Float64 || dt == DType::Complex64;
    case O::Eig:
      return dt == DType::Float32 || dt == DType::Complex64;
    default:
      return dt == DType::Float32 || dt == DType::Float64;
  }
}

const mx::StreamOrDevice kLapack = mx::Device(mx::Device::cpu);  // MLX's linalg: CPU only

mx::Shape with(mx::Shape s, std::initializer_list<int> tail) {
  s.insert(s.end(), tail.begin(), tail.end());
  return s;
}

// The batch entries of one call (batch..., rows, cols): a status per entry (kOk or the
// first failure found), built as MLX ops and read back once with the outputs.
class LinalgBatch {
 public:
  LinalgBatch(OpCode op, const mx::array& a)
      : op_(op), batch_(a.shape().begin(), a.shape().end() - 2), count_(count_of(a)),
        status_(mx::zeros({count_}, mx::int32)) {}
  static int count_of(const mx::array& a) {
    int c = 1;
    for (size_t i = 0; i + 2 < a.ndim(); ++i) c *= a.shape(static_cast<int>(i));
    return c;
  }
  int count() const { return count_; }
  const mx::Shape& batch() const { return batch_; }

  // (count,) bool: the matrices of m (batch..., r, c) holding a NaN or Inf.
  mx::array nonfinite(const mx::array& m) const {
    mx::array f = mx::isfinite(m);
    if (mx::issubdtype(m.dtype(), mx::complexfloating))
      f = mx::logical_and(mx::isfinite(mx::real(m)), mx::isfinite(mx::imag(m)));
    const int rc = m.shape(-2) * m.shape(-1);
    return mx::logical_not(mx::all(mx::reshape(f, {count_, rc}), 1));
  }
  // (count,) bool: the matrices of m with an exact zero on the main diagonal.
  mx::array zero_diagonal(const mx::array& m) const {
    const int k = std::min(m.shape(-2), m.shape(-1));
    mx::array d = mx::diagonal(m, 0, -2, -1);
    return mx::any(mx::reshape(mx::equal(d, mx::zeros({}, m.dtype())), {count_, k}), 1);
  }
  // Records `code` for the entries in `bad` that have not failed yet.
  void flag(const mx::array& bad, detail::LinalgFail code) {
    status_ = mx::where(mx::logical_and(bad, mx::equal(status_, mx::array(0, mx::int32))),
                        mx::array(static_cast<int32_t>(code), mx::int32), status_);
  }
  // m with the matrices of the entries in `bad` replaced by the identity (rectangular:
  // ones on the main diagonal) or by zeros.
  mx::array clean(const mx::array& m, const mx::array& bad, bool identity) const {
    const int r = m.shape(-2), c = m.shape(-1);
    mx::array repl = identity ? mx::eye(r, c, 0, m.dtype()) : mx::zeros({}, m.dtype());
    return mx::where(mx::reshape(bad, with(batch_, {1, 1})), repl, m);
  }
  // Per entry: the recorded status (evaluated by the caller).
  mx::array status() const { return mx::contiguous(status_); }

  // " (batch index (i, j))" for flat entry b, as the cpu backend writes it.
  std::string where(int b) const {
    std::vector<int64_t> bs(batch_.begin(), batch_.end());
    return detail::batch_index_text(bs, b);
  }
  [[noreturn]] void fail(int b, int32_t code) const {
    throw LinAlgError("[" + detail::snake_name(op_) + "] " + linalg_fail_text(code) + where(b));
  }

 private:
  OpCode op_;
  mx::Shape batch_;
  int count_ = 1;
  mx::array status_;
};

// Whether MLX's eig returns the complex conjugates of the eigenvectors of a complex64
// input (MLX 0.32.4 does; real input is fine), asked once of a 2 x 2 matrix with
// complex eigenvectors.
bool eig_conjugates_complex_vectors() {
  static const bool conj = [] {
    using C = mx::complex64_t;
    const mx::array a(std::initializer_list<C>{C(1, 0), C(0, 1), C(0, 0), C(2, 0)}, {2, 2});
    auto [w, v] = mx::linalg::eig(a, kLapack);
    auto resid = [&](const mx::array& x) {
      return mx::max(mx::abs(mx::subtract(mx::matmul(a, x), mx::multiply(x, mx::expand_dims(w, 0)))));
    };
    mx::array r = resid(v), rc = resid(mx::conjugate(v));
    mx::eval({r, rc});
    return rc.item<float>() < r.item<float>();
  }();
  return conj;
}

// An identity of (r, c) per batch entry (ones on the main diagonal).
mx::array identities(const mx::Shape& batch, int r, int c, mx::Dtype dt) {
  return mx::broadcast_to(mx::eye(r, c, 0, dt), with(batch, {r, c}));
}

// The lazy MLX graph of one linear-algebra call: its outputs (in Backend::linalg's order,
// shapes `shapes`) and the per-entry status. Lu and LuSolve also need host work on the
// evaluated pivots (see run_linalg).
struct LinalgGraph {
  std::vector<mx::array> outs;
  mx::array status = mx::array(0);
};

LinalgGraph build_linalg(OpCode op, const std::vector<mx::array>& in,
                         const std::vector<mx::Shape>& shapes, const LinalgArgs& args,
                         const std::vector<int32_t>* host_perm, const mx::array* bad_pivots,
                         std::vector<mx::array>* keep) {
  using O = OpCode;
  const mx::array& a = in[0];
  LinalgBatch c(op, a);
  const mx::Dtype dt = a.dtype();
  const int m = a.shape(-2), n = a.shape(-1), k = std::min(m, n);
  const mx::Shape& B = c.batch();
  std::vector<mx::array> o;
  auto zeros_of = [&](size_t i, mx::Dtype t) { return mx::zeros(shapes[i], t); };
  switch (op) {
    case O::Solve:
    case O::Inv: {
      mx::array bad = c.nonfinite(a);
      if (op == O::Solve) bad = mx::logical_or(bad, c.nonfinite(in[1]));
      c.flag(bad, kNonFinite);
      if (n == 0 || (op == O::Solve && in[1].shape(-1) == 0)) {
        o.push_back(zeros_of(0, dt));
        break;
      }
      // lu_factor, evaluated here: its row interchanges become the permutation perm
      // (a[perm] = L U) on the host. L and U are made from LU while `lu` is still held,
      // so MLX never writes an elementwise result into LU's buffer (with MLX 0.32.4,
      // mx::linalg::lu's own L, which may take over that buffer, wrote past its end).
      auto [lu, piv] = mx::linalg::lu_factor(c.clean(a, bad, true), kLapack);
      mx::eval({lu, piv});
      const mx::array pv = mx::contiguous(mx::astype(piv, mx::int32));
      mx::eval(pv);
      std::vector<int32_t> pm(static_cast<size_t>(c.count()) * n), inv(pm.size());
      for (int e = 0; e < c.count(); ++e) {
        int32_t* q = pm.data() + static_cast<size_t>(e) * n;
        for (int i = 0; i < n; ++i) q[i] = i;
        for (int i = 0; i < n; ++i) std::swap(q[i], q[pv.data<int32_t>()[static_cast<size_t>(e) * n + i]]);
        for (int i = 0; i < n; ++i) inv[static_cast<size_t>(e) * n + q[i]] = i;
      }
      keep->push_back(lu);
      const mx::array l = mx::where(mx::eye(n, n, 0, mx::bool_), mx::ones({}, dt), mx::tril(lu, -1));
      const mx::array u = mx::triu(lu);
      keep->push_back(l);
      keep->push_back(u);
      const mx::array sing = c.zero_diagonal(lu);
      c.flag(sing, kSingular);
      const mx::array Li = mx::linalg::tri_inv(l, false, kLapack);
      const mx::array Ui = mx::linalg::tri_inv(c.clean(u, sing, true), true, kLapack);
      if (op == O::Solve) {
        const mx::array perm(pm.data(), with(B, {n, 1}), mx::int32);
        const mx::array pb = mx::take_along_axis(c.clean(in[1], bad, false), perm, -2);
        o.push_back(mx::matmul(Ui, mx::matmul(Li, pb)));
      } else {
        // inv(a) = U^-1 L^-1 P: column j is column inv_perm[j] of U^-1 L^-1.
        const mx::array ip(inv.data(), with(B, {1, n}), mx::int32);
        o.push_back(mx::take_along_axis(mx::matmul(Ui, Li), ip, -1));
      }
      break;
    }
    case O::Det:
    case O::Slogdet: {
      const mx::array bad = c.nonfinite(a);
      c.flag(bad, kNonFinite);
      if (n == 0) {
        o.push_back(mx::ones(shapes[0], dt));
        if (op == O::Slogdet) o.push_back(zeros_of(1, dt));
        break;
      }
      auto [lu, piv] = mx::linalg::lu_factor(c.clean(a, bad, true), kLapack);
      keep->push_back(lu);
      keep->push_back(piv);
      const mx::array d = mx::diagonal(lu, 0, -2, -1);  // (batch..., n)
      const mx::array swaps =
          mx::sum(mx::astype(mx::not_equal(piv, mx::arange(0, k, mx::uint32)), mx::int32), -1);
      const mx::array odd = mx::equal(mx::remainder(swaps, mx::array(2, mx::int32)),
                                      mx::array(1, mx::int32));
      const mx::array sgn = mx::where(odd, mx::array(-1.0, dt), mx::array(1.0, dt));
      if (op == O::Det) {
        o.push_back(mx::multiply(sgn, mx::prod(d, -1)));
      } else {
        const mx::array ad = mx::abs(d);
        const mx::array zero = mx::any(mx::equal(ad, mx::zeros({}, dt)), -1);
        const mx::array s = mx::multiply(sgn, mx::prod(mx::sign(d), -1));
        o.push_back(mx::where(zero, mx::zeros({}, dt), s));
        o.push_back(mx::where(zero, mx::array(-std::numeric_limits<double>::infinity(), dt),
                              mx::sum(mx::log(ad), -1)));
      }
      break;
    }
    case O::Cholesky: {
      // Reads the lower triangle (as NumPy and the cpu backend; NaN in the other one is
      // ignored); upper returns L^H.
      const mx::array t = mx::tril(a);
      const mx::array bad = c.nonfinite(t);
      c.flag(bad, kNonFinite);
      if (n == 0) {
        o.push_back(zeros_of(0, dt));
        break;
      }
      const mx::array raw = mx::linalg::cholesky(c.clean(t, bad, true), false, kLapack);
      keep->push_back(raw);  // not taken over by tril (see Solve)
      const mx::array l = mx::tril(raw);
      // potrf stops at the first non-positive (or NaN) pivot and leaves it on the diagonal.
      const mx::array d = mx::diagonal(l, 0, -2, -1);
      c.flag(mx::logical_not(mx::all(mx::reshape(mx::greater(d, mx::zeros({}, dt)), {c.count(), n}), 1)),
             kNotPositiveDefinite);
      o.push_back(args.upper ? mx::swapaxes(l, -1, -2) : l);
      break;
    }
    case O::Qr: {
      const bool want_q = args.compute_uv;
      const mx::array bad = c.nonfinite(a);
      c.flag(bad, kNonFinite);
      const mx::Shape& rshape = shapes[want_q ? 1 : 0];
      if (k == 0) {  // Q: the identity of its size; R: zeros
        if (want_q) o.push_back(identities(B, m, shapes[0].back(), dt));
        o.push_back(mx::zeros(rshape, dt));
        break;
      }
      const mx::array a1 = c.clean(a, bad, false);
      mx::array q = a1, r = a1;
      if (want_q && args.full_matrices && m > n) {
        // Complete Q: the QR of [a I] (m x (n + m)) has Q (m, m) whose first n columns are
        // a's, and R's first n columns are a's R with zero rows below.
        auto qr = mx::linalg::qr(mx::concatenate({a1, identities(B, m, m, dt)}, -1), kLapack);
        q = qr.first;
        r = mx::slice(qr.second, mx::Shape(static_cast<size_t>(a.ndim()), 0), with(B, {m, n}));
      } else {
        std::tie(q, r) = mx::linalg::qr(a1, kLapack);
      }
      if (r.shape(-2) < rshape[rshape.size() - 2])  // R only, complete: zero rows below
        r = mx::concatenate({r, mx::zeros(with(B, {rshape[rshape.size() - 2] - r.shape(-2), n}), dt)}, -2);
      if (want_q) o.push_back(q);
      o.push_back(r);
      break;
    }
    case O::Svd: {
      const bool uv = args.compute_uv;
      const mx::array bad = c.nonfinite(a);
      c.flag(bad, kNonFinite);
      if (k == 0) {  // U and Vh: identities of their (full) size; no singular values
        if (uv) {
          o.push_back(identities(B, m, shapes[0].back(), dt));
          o.push_back(zeros_of(1, mx::float32));
          o.push_back(identities(B, shapes[2][shapes[2].size() - 2], n, dt));
        } else {
          o.push_back(zeros_of(0, mx::float32));
        }
        break;
      }
      const mx::array a1 = c.clean(a, bad, false);
      if (uv) {
        // MLX returns the full U (m, m) and Vh (n, n).
        std::vector<mx::array> usv = mx::linalg::svd(a1, true, kLapack);
        mx::array u = usv[0], vh = usv[2];
        if (!args.full_matrices) {
          const mx::Shape z(static_cast<size_t>(a.ndim()), 0);
          u = mx::slice(u, z, with(B, {m, k}));
          vh = mx::slice(vh, z, with(B, {k, n}));
        }
        o.push_back(u);
        o.push_back(usv[1]);
        o.push_back(vh);
      } else {
        o.push_back(mx::linalg::svd(a1, false, kLapack)[0]);
      }
      break;
    }
    case O::Eigh: {
      // Only the triangle read counts (NaN in the other one is ignored, as LAPACK does).
      const mx::array t = args.upper ? mx::triu(a) : mx::tril(a);
      const mx::array bad = c.nonfinite(t);
      c.flag(bad, kNonFinite);
      if (n == 0) {
        o.push_back(zeros_of(0, mx::float32));
        if (args.compute_uv) o.push_back(zeros_of(1, dt));
        break;
      }
      const mx::array t1 = c.clean(t, bad, true);
      const std::string uplo = args.upper ? "U" : "L";
      if (args.compute_uv) {
        auto [w, v] = mx::linalg::eigh(t1, uplo, kLapack);
        o.push_back(w);
        o.push_back(v);
      } else {
        o.push_back(mx::linalg::eigvalsh(t1, uplo, kLapack));
      }
      break;
    }
    case O::SolveTriangular: {
      // The triangle read (without the diagonal for unit_diagonal) and b must be finite; an
      // exact zero on a used diagonal is a singular matrix. MLX solves through the
      // triangle's inverse (trtri) and a product.
      const mx::array& b = in[1];
      const int off = args.unit_diagonal ? 1 : 0;
      mx::array t = args.upper ? mx::triu(a, off) : mx::tril(a, -off);
      const mx::array bad = mx::logical_or(c.nonfinite(t), c.nonfinite(b));
      c.flag(bad, kNonFinite);
      mx::array fail = bad;
      if (!args.unit_diagonal) {
        const mx::array sing = c.zero_diagonal(a);
        c.flag(sing, kSingular);
        fail = mx::logical_or(fail, sing);
      }
      if (n == 0 || b.shape(-1) == 0) {
        o.push_back(zeros_of(0, dt));
        break;
      }
      if (args.unit_diagonal) t = mx::add(t, mx::eye(n, n, 0, dt));
      const mx::array ti = mx::linalg::tri_inv(c.clean(t, fail, true), args.upper, kLapack);
      o.push_back(mx::matmul(ti, c.clean(b, bad, false)));
      break;
    }
    case O::Lu: {
      // lu (packed L\U) and the 0-based row interchanges; perm is made on the host from
      // the evaluated pivots (run_linalg). An exact zero on U's diagonal is a valid
      // factorisation of a singular matrix.
      const mx::array bad = c.nonfinite(a);
      c.flag(bad, kNonFinite);
      if (k == 0) {
        o.push_back(zeros_of(0, dt));
        o.push_back(zeros_of(1, mx::int32));
        break;
      }
      auto [lu, piv] = mx::linalg::lu_factor(c.clean(a, bad, false), kLapack);
      o.push_back(lu);
      o.push_back(mx::astype(piv, mx::int32));
      break;
    }
    case O::LuSolve: {
      // Pivots first (checked on the host: bad_pivots), then NaN/Inf, then an exact zero on
      // U's diagonal. The row interchanges are applied as the permutation host_perm.
      const mx::array& b = in[2];
      c.flag(*bad_pivots, kBadPivots);
      const mx::array bad = mx::logical_or(c.nonfinite(a), c.nonfinite(b));
      c.flag(bad, kNonFinite);
      const mx::array sing = c.zero_diagonal(a);
      c.flag(sing, kSingular);
      if (n == 0 || b.shape(-1) == 0) {
        o.push_back(zeros_of(0, dt));
        break;
      }
      const mx::array fail = mx::logical_or(mx::logical_or(*bad_pivots, bad), sing);
      const mx::array l = mx::add(mx::tril(a, -1), mx::eye(n, n, 0, dt));
      const mx::array u = mx::triu(a);
      const mx::array Li = mx::linalg::tri_inv(c.clean(l, fail, true), false, kLapack);
      const mx::array Ui = mx::linalg::tri_inv(c.clean(u, fail, true), true, kLapack);
      mx::array perm(host_perm->data(), with(B, {n, 1}), mx::int32);
      const mx::array pb = mx::take_along_axis(c.clean(b, bad, false), perm, -2);
      o.push_back(mx::matmul(Ui, mx::matmul(Li, pb)));
      break;
    }
    case O::Eig: {
      const mx::array bad = c.nonfinite(a);
      c.flag(bad, kNonFinite);
      if (n == 0) {
        o.push_back(zeros_of(0, mx::complex64));
        if (args.compute_uv) o.push_back(zeros_of(1, mx::complex64));
        break;
      }
      const mx::array a1 = c.clean(a, bad, true);
      if (args.compute_uv) {
        auto [w, v] = mx::linalg::eig(a1, kLapack);
        o.push_back(w);
        o.push_back(dt == mx::complex64 && eig_conjugates_complex_vectors() ? mx::conjugate(v) : v);
      } else {
        o.push_back(mx::linalg::eigvals(a1, kLapack));
      }
      break;
    }
    default:
      throw UnsupportedError("[" + detail::snake_name(op) + "] not a linear-algebra op");
  }
  return {std::move(o), c.status()};
}

// The first entry of a batch as an array of batch shape (1, ..., 1).
mx::array entry(const mx::array& x, int e, int core) {
  mx::Shape start(x.ndim(), 0), stop = x.shape();
  int rest = e;
  for (int d = static_cast<int>(x.ndim()) - core - 1; d >= 0; --d) {
    start[d] = rest % x.shape(d);
    rest /= x.shape(d);
    stop[d] = start[d] + 1;
  }
  return mx::slice(x, start, stop);
}

// Runs one linear-algebra call on MLX (the contract of Backend::linalg) and returns its
// outputs, evaluated; throws LinAlgError for the lowest failing batch entry.
std::vector<mx::array> run_linalg(OpCode op, const std::vector<mx::array>& in,
                                  const std::vector<mx::Shape>& shapes, const LinalgArgs& args) {
  const LinalgBatch c(op, in[0]);
  const int count = c.count();
  if (count == 0) {
    std::vector<mx::array> empty;
    for (const mx::Shape& s : shapes) empty.push_back(mx::zeros(s, mx::float32));
    return empty;
  }
  // lu_solve: the pivots on the host (validated, turned into a permutation per entry).
  std::vector<int32_t> perm;
  std::optional<mx::array> bad_pivots;
  if (op == OpCode::LuSolve) {
    const int n = in[0].shape(-1);
    mx::array pv = mx::contiguous(mx::astype(in[1], mx::int32));
    mx::eval(pv);
    const int32_t* p = pv.data<int32_t>();
    perm.resize(static_cast<size_t>(count) * n);
    std::vector<uint8_t> badp(static_cast<size_t>(count), 0);  // bool storage for MLX
    for (int e = 0; e < count; ++e) {
      int32_t* q = perm.data() + static_cast<size_t>(e) * n;
      for (int i = 0; i < n; ++i) q[i] = i;
      for (int i = 0; i < n; ++i) {
        const int32_t j = p[static_cast<size_t>(e) * n + i];
        if (j < i || j >= n) {  // getrf never swaps with an earlier row
          badp[e] = 1;
          for (int r = 0; r < n; ++r) q[r] = r;
          break;
        }
        std::swap(q[i], q[j]);
      }
    }
    bad_pivots = mx::astype(mx::array(badp.data(), {count}, mx::uint8), mx::bool_);
  }
  std::vector<mx::array> keep;  // intermediates held until the evaluation is done
  LinalgGraph g =
      build_linalg(op, in, shapes, args, &perm, bad_pivots ? &*bad_pivots : nullptr, &keep);
  std::vector<mx::array> all = g.outs;
  all.push_back(g.status);
  try {
    mx::eval(all);
  } catch (const std::exception& err) {
    // An MLX/LAPACK failure (no convergence) for the whole call: find the entry, one at
    // a time (only on this path), so the error names it like the cpu backend's.
    const int core = 2;
    for (int e = 0; e < count; ++e) {
      std::vector<mx::array> one;
      for (size_t i = 0; i < in.size(); ++i)
        one.push_back(entry(in[i], e, op == OpCode::LuSolve && i == 1 ? 1 : core));
      std::vector<mx::Shape> s1 = shapes;  // the same shapes with batch (1, ..., 1)
      for (mx::Shape& s : s1)
        for (size_t d = 0; d + 2 < in[0].ndim() && d < s.size(); ++d) s[d] = 1;
      std::vector<int32_t> p1;
      std::optional<mx::array> b1;
      if (bad_pivots) {
        const int n = in[0].shape(-1);
        p1.assign(perm.begin() + static_cast<size_t>(e) * n, perm.begin() + static_cast<size_t>(e + 1) * n);
        b1 = mx::slice(*bad_pivots, {e}, {e + 1});
      }
      int32_t verdict = kOk;
      try {
        std::vector<mx::array> keep1;
        LinalgGraph g1 = build_linalg(op, one, s1, args, &p1, b1 ? &*b1 : nullptr, &keep1);
        std::vector<mx::array> xs = g1.outs;
        xs.push_back(g1.status);
        mx::eval(xs);
        verdict = g1.status.data<int32_t>()[0];
      } catch (const LinAlgError&) {
        throw;
      } catch (const std::exception&) {
        verdict = kNoConvergence;
      }
      if (verdict != kOk) c.fail(e, verdict);
    }
    throw LinAlgError("[" + detail::snake_name(op) + "] " + err.what());
  }
  const int32_t* s = g.status.data<int32_t>();
  for (int e = 0; e < count; ++e)
    if (s[e] != kOk) c.fail(e, s[e]);
  if (op == OpCode::Lu) {
    // perm (batch..., m): the row interchanges applied in order to 0..m-1.
    const int m = in[0].shape(-2), k = std::min(m, in[0].shape(-1));
    std::vector<int64_t> hp(static_cast<size_t>(count) * m);
    const mx::array piv = g.outs.size() > 1 && k > 0 ? mx::contiguous(g.outs[1]) : mx::array(0);
    if (k > 0) mx::eval(piv);
    for (int e = 0; e < count; ++e) {
      int64_t* q = hp.data() + static_cast<size_t>(e) * m;
      for (int i = 0; i < m; ++i) q[i] = i;
      for (int i = 0; i < k; ++i) {
        const int32_t j = piv.data<int32_t>()[static_cast<size_t>(e) * k + i];
        if (j >= 0 && j < m) std::swap(q[i], q[j]);
      }
    }
    g.outs.push_back(mx::array(hp.data(), shapes[2], mx::int64));
  }
  return g.outs;
}

// ---- the backend ---------------------------------------------------------------

class MlxBackend final : public Backend {
 public:
  MlxBackend() : alloc_(store_) {
    for (auto& v : probed_) v.store(-1, std::memory_order_relaxed);
  }

  std::string_view name() const override { return "mlx"; }
  DeviceType device_type() const override { return DeviceType::MLX; }

  BackendInfo info() const override {
    BackendInfo i;
    i.name = "mlx";
    const bool gpu = mx::is_available(mx::Device::gpu);
    i.devices.push_back(std::string("mlx: MLX ") + (gpu ? "gpu" : "cpu") + " stream" +
                        (gpu ? "" : " (host memory)"));
    i.libraries.emplace_back("libmlx", mx::version());
    i.threads = 1;
    return i;
  }

  bool supports(OpCode op, DType dt) const override {
    using O = OpCode;
    const bool F = is_floating(dt);
    const bool I = is_integral(dt);
    const bool B = dt == DType::Bool;
    if (op == O::Copy) return true;  // complex128 and partial writes: host path
    if (!to_mx(dt)) return false;
    if (detail::is_linalg_op(op)) return mlx_linalg_dtype(op, dt) && probed_linalg(op, dt);
    const bool C = dt == DType::Complex64;
    // MLX's CPU kernels evaluate these in float32 precision for float64 inputs (measured
    // by tests/backend_ops: ~1e-7 relative error): float64 falls back to the cpu backend.
    if (dt == DType::Float64) {
      switch (op) {
        case O::Exp: case O::Sin: case O::Cos: case O::Sigmoid: case O::Gelu: case O::Silu:
        case O::Erf: case O::Erfinv: case O::Softmax: case O::LogSoftmax: case O::LayerNorm:
        case O::GeluGrad: case O::GeluTanhGrad:
          return false;
        default: break;
      }
    }
    // complex64: what MLX computes natively (tests/backend_ops checks every pair against
    // a complex128 reference); not expm1, sigmoid, the erf family, floor/ceil/round,
    // floor_divide/remainder, atan2/hypot, max/min/argmax or orderings.
    switch (op) {
      case O::Neg: case O::Abs: case O::Square: case O::Sign:
        return I || F || C;
      case O::Relu:
        return I || F;
      case O::Exp: case O::Log: case O::Log1p: case O::Log2: case O::Log10: case O::Sqrt:
      case O::Rsqrt: case O::Reciprocal: case O::Sin: case O::Cos: case O::Tan: case O::Asin:
      case O::Acos: case O::Atan: case O::Sinh: case O::Cosh: case O::Tanh:
        return F || C;
      case O::Expm1: case O::Sigmoid: case O::Gelu: case O::GeluTanh: case O::Silu:
      case O::Erf: case O::Erfinv: case O::Floor: case O::Ceil: case O::Round:
        return F;
      case O::IsNan: case O::IsInf: case O::IsFinite:
        return F || C;
      case O::LogicalNot:
        return B;
      case O::Real: case O::Imag: case O::Conj:
        return C;
      case O::Add: case O::Subtract: case O::Multiply:
        return I || F || C;
      case O::Maximum: case O::Minimum:
        return I || F;
      case O::Divide: case O::Power:
        return F || C;
      case O::Atan2: case O::Hypot: case O::FloorDivide: case O::Remainder: case O::GeluGrad:
      case O::GeluTanhGrad:
        return F;
      case O::Equal: case O::NotEqual:
        return I || F || B || C;
      case O::Less: case O::LessEqual: case O::Greater: case O::GreaterEqual:
        return I || F || B;
      case O::LogicalAnd: case O::LogicalOr: case O::LogicalXor:
        return B;
      case O::BitwiseAnd: case O::BitwiseOr: case O::BitwiseXor: case O::BitwiseInvert:
        return B || I;
      case O::BitwiseLeftShift: case O::BitwiseRightShift:
        return I;
      case O::Where:
        return true;
      case O::Sum: case O::Prod:
        return B || I || F || C;
      case O::Max: case O::Min:
        return I || F;
      case O::Any: case O::All:
        return B || I || F || C;
      case O::ArgMax: case O::ArgMin:
        return I || F;
      case O::CumSum: case O::CumProd:
        return I || F || C;
      case O::Softmax: case O::LogSoftmax: case O::LayerNorm:
        return F;
      case O::Matmul:
        return F || C;
      case O::Fill:
        return true;
      case O::Arange:
        return !C;
      case O::Take: case O::TakeAlongAxis: case O::Put:
        return true;
      case O::PutAdd:
        return I || F || C;
      default:
        return false;  // random streams (Philox): cpu fallback
    }
  }

  // Whether MLX's linalg runs (op, dt) here: one call on a 2 x 2 identity, once per pair.
  bool probed_linalg(OpCode op, DType dt) const {
    auto& known = probed_[static_cast<size_t>(op) * kNumDTypes + static_cast<size_t>(dt)];
    int8_t k = known.load(std::memory_order_relaxed);
    if (k < 0) {
      std::lock_guard lk(const_cast<std::recursive_mutex&>(store_.mu));
      k = probe_linalg(op, dt) ? 1 : 0;
      known.store(k, std::memory_order_relaxed);
    }
    return k == 1;
  }
  static bool probe_linalg(OpCode op, DType dt) {
    using O = OpCode;
    try {
      const mx::Dtype t = mx_dtype(dt, "linalg");
      const mx::array a = mx::eye(2, 2, 0, t);
      std::vector<mx::array> in = {a};
      std::vector<mx::Shape> shapes;
      const mx::Shape m{2, 2}, v{2}, s{};
      switch (op) {
        case O::Solve: case O::SolveTriangular: in.push_back(a); shapes = {m}; break;
        case O::LuSolve: in = {a, mx::array({0, 1}, mx::int32), a}; shapes = {m}; break;
        case O::Inv: case O::Cholesky: shapes = {m}; break;
        case O::Det: shapes = {s}; break;
        case O::Slogdet: shapes = {s, s}; break;
        case O::Qr: shapes = {m, m}; break;
        case O::Svd: shapes = {m, v, m}; break;
        case O::Eigh: case O::Eig: shapes = {v, m}; break;
        case O::Lu: shapes = {m, v, v}; break;
        default: return false;
      }
      (void)run_linalg(op, in, shapes, LinalgArgs{});
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

  Allocator& allocator(Device d) override {
    check(d, "allocate");
    return alloc_;
  }
  void synchronize(Device d) override {
    check(d, "synchronize");
    std::lock_guard lk(store_.mu);
    eval_pending();
    mx::synchronize();  // also work started by commit() for results already released
  }

  // eval() on an mlx tensor: MLX starts computing it (async_eval) like a queued kernel, so
  // a result nobody keeps is still computed, and synchronize() waits for it.
  void commit(const ArrayRef& root) override {
    std::lock_guard lk(store_.mu);
    if (root.size() == 0) return;
    auto [slot, off] = store_.find(root.data, "eval");
    if (slot->arr && slot->arr->status() == mx::array::Status::unscheduled) {
      mx::async_eval(*slot->arr);
      store_.pending = 0;
    }
  }

  void copy_from_host(const void* src, const ArrayRef& dst) override {
    std::lock_guard lk(store_.mu);
    const size_t n = static_cast<size_t>(dst.size()) * itemsize(dst.dtype);
    auto [slot, off] = store_.find(dst.data, "copy_from_host");
    if (off == 0 && n == slot->nbytes) {
      const auto dt = to_mx(dst.dtype);
      mx::array a(mx::allocator::malloc(std::max<size_t>(n, 1)),
                  dt ? mx_shape(dst.shape) : mx::Shape{static_cast<mx::ShapeElem>(n)},
                  dt ? *dt : mx::uint8);
      if (n) std::memcpy(a.data<char>(), src, n);
      slot->arr = std::move(a);
      return;
    }
    std::vector<char> img = bytes_of(*slot);
    std::memcpy(img.data() + off, src, n);
    slot->arr = from_bytes(img);
  }

  void copy_to_host(const ArrayRef& src, void* dst) override {
    std::lock_guard lk(store_.mu);
    const size_t n = static_cast<size_t>(src.size()) * itemsize(src.dtype);
    if (!n) return;
    auto [slot, off] = store_.find(src.data, "copy_to_host");
    if (!slot->arr) {
      std::memset(dst, 0xFF, n);
      return;
    }
    mx::array a = flat_evaluated(*slot);
    std::memcpy(dst, a.data<char>() + off, n);  // src is contiguous (the core's contract)
  }

  // MLX's CPU build keeps arrays in host memory: the cpu device borrows the evaluated
  // array (kept alive by `release`) instead of copying. MLX never writes into an array
  // that something else holds, so the memory stays unchanged.
  void* share_with_host(const ArrayRef& src, std::function<void(void*)>& release) override {
    if (gpu_) return nullptr;
    std::lock_guard lk(store_.mu);
    if (src.size() == 0) return nullptr;
    auto [slot, off] = store_.find(src.data, "share_with_host");
    if (!slot->arr) return nullptr;
    auto keep = std::make_shared<mx::array>(flat_evaluated(*slot));
    release = [keep](void*) mutable { keep.reset(); };
    return keep->data<char>() + off;
  }

  void unary(OpCode op, const ArrayRef& x, const ArrayRef& out) override {
    std::lock_guard lk(store_.mu);
    mx::array a = in(x, "unary");
    put(out, unary_op(op, a));
  }

  void binary(OpCode op, const ArrayRef& a, const ArrayRef& b, const ArrayRef& out) override {
    std::lock_guard lk(store_.mu);
    put(out, binary_op(op, in(a, "binary"), in(b, "binary")));
  }

  void where(const ArrayRef& c, const ArrayRef& a, const ArrayRef& b,
             const ArrayRef& out) override {
    std::lock_guard lk(store_.mu);
    mx::array cond = in(c, "where");
    if (cond.dtype() != mx::bool_) cond = mx::astype(cond, mx::bool_);
    put(out, mx::where(cond, in(a, "where"), in(b, "where")));
  }

  void copy(const ArrayRef& src, const ArrayRef& dst) override {
    std::lock_guard lk(store_.mu);
    if (to_mx(src.dtype) && to_mx(dst.dtype) && whole(dst)) {
      put(dst, in(src, "copy"));
      return;
    }
    host_copy(src, dst);
  }

  void fill(const ArrayRef& out, Scalar v) override {
    std::lock_guard lk(store_.mu);
    const mx::Dtype dt = mx_dtype(out.dtype, "fill");
    const std::complex<double> z = v.as_complex();
    mx::array val = v.kind() == Scalar::Kind::Int    ? mx::array(v.as_int(), mx::int64)
                    : v.kind() == Scalar::Kind::Bool ? mx::array(v.as_int() != 0)
                    : dt == mx::complex64
                        ? mx::array(mx::complex64_t(static_cast<float>(z.real()),
                                                    static_cast<float>(z.imag())))
                        : mx::array(v.as_double(), mx::float64);
    put(out, mx::full(mx_shape(out.shape), mx::astype(val, dt), dt));
  }

  void arange(const ArrayRef& out, double start, double step) override {
    std::lock_guard lk(store_.mu);
    const int64_t n = out.size();
    mx::array i = mx::arange(0.0, static_cast<double>(n), 1.0, mx::float64);
    mx::array v = mx::add(mx::multiply(i, mx::array(step, mx::float64)),
                          mx::array(start, mx::float64));
    put(out, mx::reshape(v, mx_shape(out.shape)));
  }

  void reduce(OpCode op, const ArrayRef& x, std::span<const int> axes,
              const ArrayRef& out) override {
    std::lock_guard lk(store_.mu);
    mx::array a = in(x, "reduce");
    std::vector<int> ax(axes.begin(), axes.end());
    const mx::Dtype odt = mx_dtype(out.dtype, "reduce");
    switch (op) {
      case OpCode::Sum:
      case OpCode::Prod: {
        // Accumulate in the output dtype (int64, or uint64 for unsigned ints), f32 for f16/bf16.
        mx::Dtype acc = is_low_precision(x.dtype) ? mx::float32 : odt;
        if (a.dtype() != acc) a = mx::astype(a, acc);
        put(out, op == OpCode::Sum ? mx::sum(a, ax, true) : mx::prod(a, ax, true));
        return;
      }
      case OpCode::Max: put(out, mx::max(a, ax, true)); return;
      case OpCode::Min: put(out, mx::min(a, ax, true)); return;
      case OpCode::Any: put(out, mx::any(a, ax, true)); return;
      case OpCode::All: put(out, mx::all(a, ax, true)); return;
      default: unsupported(op);
    }
  }

  void arg_reduce(OpCode op, const ArrayRef& x, int axis, const ArrayRef& out) override {
    std::lock_guard lk(store_.mu);
    mx::array a = in(x, "arg_reduce");
    put(out, op == OpCode::ArgMax ? mx::argmax(a, axis, true) : mx::argmin(a, axis, true));
  }

  void scan(OpCode op, const ArrayRef& x, int axis, const ArrayRef& out) override {
    std::lock_guard lk(store_.mu);
    mx::array a = in(x, "scan");
    const mx::Dtype odt = mx_dtype(out.dtype, "scan");
    mx::Dtype acc = is_low_precision(x.dtype) ? mx::float32 : odt;
    if (a.dtype() != acc) a = mx::astype(a, acc);
    put(out, op == OpCode::CumSum ? mx::cumsum(a, axis) : mx::cumprod(a, axis));
  }

  void softmax(OpCode op, const ArrayRef& x, const ArrayRef& out) override {
    std::lock_guard lk(store_.mu);
    mx::array a = in(x, "softmax");
    if (op == OpCode::Softmax) {
      put(out, mx::softmax(a, std::vector<int>{-1}, /*precise=*/true));
    } else {
      mx::array up = is_low_precision(x.dtype) ? mx::astype(a, mx::float32) : a;
      put(out, mx::subtract(up, mx::logsumexp(up, -1, true)));
    }
  }

  void layer_norm(const ArrayRef& x, const ArrayRef& w, const ArrayRef& b,
                  const LayerNormArgs& args, const ArrayRef& out) override {
    std::lock_guard lk(store_.mu);
    const int64_t inner = std::max<int64_t>(args.inner, 1);
    const int64_t rows = x.size() / inner;
    mx::array a = mx::reshape(in(x, "layer_norm"), {static_cast<mx::ShapeElem>(rows),
                                                    static_cast<mx::ShapeElem>(inner)});
    auto vec = [&](const ArrayRef& r) -> std::optional<mx::array> {
      if (!r.data) return std::nullopt;
      mx::array v = mx::reshape(in(r, "layer_norm"), {static_cast<mx::ShapeElem>(inner)});
      if (v.dtype() != a.dtype()) v = mx::astype(v, a.dtype());
      return v;
    };
    mx::array y = mx::fast::layer_norm(a, vec(w), vec(b), static_cast<float>(args.eps));
    put(out, mx::reshape(y, mx_shape(out.shape)));
  }

  void matmul(const ArrayRef& a, const ArrayRef& b, const ArrayRef& out,
              const MatmulOptions&) override {
    std::lock_guard lk(store_.mu);
    put(out, mx::matmul(in(a, "matmul"), in(b, "matmul")));
  }

  void take(OpCode op, const ArrayRef& x, const ArrayRef& idx, int axis,
            const ArrayRef& out) override {
    std::lock_guard lk(store_.mu);
    mx::array a = in(x, "take"), i = in(idx, "take");
    put(out, op == OpCode::Take ? mx::take(a, i, axis) : mx::take_along_axis(a, i, axis));
  }

  void put(OpCode op, const ArrayRef& idx, const ArrayRef& values, const ArrayRef& out) override {
    const char* name = op == OpCode::Put ? "put" : "put_add";
    std::lock_guard lk(store_.mu);
    mx::array o = mx::reshape(in(out, name), {static_cast<int>(out.size())});
    mx::array i = in(idx, name), v = in(values, name);
    put(out, mx::reshape(op == OpCode::Put ? mx::put_along_axis(o, i, v, 0)
                                           : mx::scatter_add_axis(o, i, v, 0),
                         mx_shape(out.shape)));
  }

  void random(OpCode op, const RandomArgs&, const ArrayRef&) override { unsupported(op); }

  // Linear algebra through mlx::core::linalg on MLX's CPU stream (run_linalg): evaluated
  // here, since failures are errors of this call.
  void linalg(OpCode op, std::span<const ArrayRef> inputs, std::span<const ArrayRef> outputs,
              const LinalgArgs& args) override {
    std::lock_guard lk(store_.mu);
    std::vector<mx::array> xs;
    for (const ArrayRef& r : inputs)
      xs.push_back(r.size() == 0 ? mx::zeros(mx_shape(r.shape), mx_dtype(r.dtype, "linalg"))
                                 : in(r, "linalg"));
    std::vector<mx::Shape> shapes;
    for (const ArrayRef& r : outputs) shapes.push_back(mx_shape(r.shape));
    std::vector<mx::array> ys;
    try {
      ys = run_linalg(op, xs, shapes, args);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error("[" + detail::snake_name(op) + "] mlx: " + e.what());
    }
    for (size_t i = 0; i < outputs.size(); ++i)
      if (outputs[i].size() > 0) put(outputs[i], ys[i]);
  }

  // Fused elementwise programs (src/jit) of at least kMinCompiledOps ops run as one MLX
  // function through mx::compile, which fuses them into one kernel (on the CPU: code MLX
  // generates and compiles), one compiled function per program signature.
  bool supports_fused(const FusedProgram& p) const override {
    // MLX's compile builds a kernel per new program (on the CPU build: generated C++
    // through the system compiler, ~0.4 s): short chains run as MLX ops instead.
    const auto ops = std::count_if(p.instrs.begin(), p.instrs.end(), [](const FusedInstr& in) {
      return in.kind != FusedInstr::Kind::Input && in.kind != FusedInstr::Kind::Cast;
    });
    if (ops < kMinCompiledOps) return false;
    for (const FusedInstr& in : p.instrs) {
      const DType ta = in.a >= 0 && in.kind != FusedInstr::Kind::Input ? p.instrs[in.a].dtype
                                                                         : in.dtype;
      switch (in.kind) {
        case FusedInstr::Kind::Input:
        case FusedInstr::Kind::Cast:
          if (!to_mx(in.dtype)) return false;
          break;
        case FusedInstr::Kind::Unary:
        case FusedInstr::Kind::Binary:
          if (!supports(in.op, ta)) return false;
          break;
        case FusedInstr::Kind::Where:
          if (!supports(OpCode::Where, in.dtype)) return false;
          break;
      }
    }
    return true;
  }

  void fused(const FusedProgram& p, std::span<const ArrayRef> inputs,
             const ArrayRef& out) override {
    std::lock_guard lk(store_.mu);
    std::vector<mx::array> xs;
    xs.reserve(inputs.size());
    for (const ArrayRef& r : inputs) xs.push_back(in(r, "fused"));
    put(out, compiled(p)(xs).at(0));
  }

  // MLX called directly on the profile's inputs (evaluated first): one call + eval.
  std::optional<NativeReference> native_reference(std::string_view op,
                                                  std::span<const ArrayRef> inputs,
                                                  MatmulPrecision) override {
    if (inputs.empty()) return std::nullopt;
    std::lock_guard lk(store_.mu);
    std::vector<mx::array> xs;
    for (const ArrayRef& r : inputs) xs.push_back(in(r, "native_reference"));
    mx::eval(xs);
    auto ref = [this](std::string name, auto fn) {
      return NativeReference{std::move(name), [this, fn] {
                               std::lock_guard lk(store_.mu);
                               mx::array r = fn();
                               mx::eval(r);
                             }};
    };
    const mx::array a = xs[0];
    const mx::array b = xs.size() > 1 ? xs[1] : xs[0];
    if (op == "matmul") return ref("mlx matmul", [a, b] { return mx::matmul(a, b); });
    if (op == "add") return ref("mlx add", [a, b] { return mx::add(a, b); });
    if (op == "relu") return ref("mlx relu", [a] { return mx::maximum(a, mx::array(0.0f)); });
    if (op == "tanh") return ref("mlx tanh", [a] { return mx::tanh(a); });
    if (op == "exp") return ref("mlx exp", [a] { return mx::exp(a); });
    if (op == "softmax")
      return ref("mlx softmax", [a] { return mx::softmax(a, std::vector<int>{-1}, true); });
    if (op == "sum") return ref("mlx sum", [a] { return mx::sum(a); });
    if (op == "layer_norm")
      return ref("mlx layer_norm",
                 [a] { return mx::fast::layer_norm(a, std::nullopt, std::nullopt, 1e-5f); });
    if (op == "copy") return ref("mlx copy", [a] { return mx::copy(a); });
    // chain10 (x -> tanh(x * 1.01 + 0.5), five times): MLX eager (one kernel per op) for
    // the unfused row, mx::compile'd for the fused and compiled rows.
    const auto chain = [](const std::vector<mx::array>& x) {
      mx::array y = x[0];
      for (int i = 0; i < 5; ++i)
        y = mx::tanh(mx::add(mx::multiply(y, mx::array(1.01f)), mx::array(0.5f)));
      return std::vector<mx::array>{y};
    };
    if (op == "chain10_unfused")
      return ref("mlx chain10 eager", [a, chain] { return chain({a})[0]; });
    if (op == "chain10" || op == "chain10_compiled") {
      auto fn = std::make_shared<MxFn>(mx::compile(MxFn(chain)));
      return ref("mlx chain10 mx::compile", [a, fn] { return (*fn)({a})[0]; });
    }
    return std::nullopt;
  }

 private:
  static void check(Device d, const char* op) {
    if (d.type != DeviceType::MLX)
      throw DeviceError("[" + std::string(op) + "] the mlx backend got a " + d.str() + " tensor");
  }
  [[noreturn]] static void unsupported(OpCode op) {
    throw UnsupportedError("[" + std::string(op_name(op)) + "] not implemented by the mlx backend");
  }

  // A flat view of a slot's bytes as dtype dt (poison 0xFF bytes when never written).
  mx::array flat(const Slot& s, mx::Dtype dt) {
    const int n = static_cast<int>(s.nbytes / dt.size());
    if (!s.arr) {
      mx::array p = mx::full({static_cast<mx::ShapeElem>(s.nbytes)}, mx::array(255, mx::uint8),
                             mx::uint8);
      return dt == mx::uint8 ? p : mx::view(p, dt);
    }
    mx::array a = *s.arr;
    if (a.ndim() != 1) a = mx::reshape(a, {static_cast<mx::ShapeElem>(a.size())});
    if (a.dtype() != dt) a = mx::view(a, dt);
    if (static_cast<int>(a.size()) != n) a = mx::reshape(a, {n});
    return a;
  }

  // The MLX array for an input view.
  mx::array in(const ArrayRef& r, const char* op) {
    const mx::Dtype dt = mx_dtype(r.dtype, op);
    auto [slot, off_bytes] = store_.find(r.data, op);
    const size_t isz = itemsize(r.dtype);
    const int64_t off = static_cast<int64_t>(off_bytes / isz);
    const int64_t n = r.size();
    const mx::Shape shape = mx_shape(r.shape);
    // Whole buffer, same dtype and shape: the stored array itself.
    if (slot->arr && off == 0 && slot->arr->dtype() == dt && slot->arr->shape() == shape &&
        r.is_contiguous())
      return *slot->arr;
    const int64_t elems = static_cast<int64_t>(slot->nbytes / isz);
    mx::array f = flat(*slot, dt);
    if (off == 0 && r.is_contiguous() && n == elems) return mx::reshape(f, shape);
    // A broadcast of the whole buffer: zero strides over a contiguous layout.
    if (off == 0) {
      mx::Shape kept;
      int64_t expect = 1, kept_n = 1;
      bool ok = true;
      for (int i = r.ndim() - 1; i >= 0; --i) {
        if (r.shape[i] == 1 || r.strides[i] == 0) continue;
        if (r.strides[i] != expect) ok = false;
        expect *= r.shape[i];
        kept_n *= r.shape[i];
      }
      if (ok && kept_n == elems) {
        mx::Shape s1 = shape;
        for (int i = 0; i < r.ndim(); ++i)
          if (r.strides[i] == 0) s1[i] = 1;
        return mx::broadcast_to(mx::reshape(f, s1), shape);
      }
    }
    mx::Strides st(r.strides.begin(), r.strides.end());
    return mx::as_strided(f, shape, st, static_cast<size_t>(off));
  }

  bool whole(const ArrayRef& r) {
    auto [slot, off] = store_.find(r.data, "put");
    return off == 0 && r.is_contiguous() &&
           static_cast<size_t>(r.size()) * itemsize(r.dtype) == slot->nbytes;
  }

  // Stores a kernel's (lazy) result in out's buffer.
  void put(const ArrayRef& out, mx::array r) {
    const mx::Dtype dt = mx_dtype(out.dtype, "put");
    if (r.dtype() != dt) r = mx::astype(r, dt);
    const mx::Shape shape = mx_shape(out.shape);
    if (r.shape() != shape) {
      if (static_cast<int64_t>(r.size()) == out.size())
        r = mx::reshape(r, shape);
      else
        r = mx::broadcast_to(r, shape);
    }
    auto [slot, off] = store_.find(out.data, "put");
    if (off == 0 && out.is_contiguous() &&
        static_cast<size_t>(out.size()) * itemsize(out.dtype) == slot->nbytes) {
      slot->arr = std::move(r);
      if (++store_.pending >= kMaxPending) eval_pending();
      return;
    }
    // Part of a buffer: write the evaluated values into a host image of it.
    r = mx::contiguous(r);
    mx::eval(r);
    std::vector<char> img = bytes_of(*slot);
    const char* src = r.data<char>();
    const size_t isz = itemsize(out.dtype);
    strided_for_each(out, [&](int64_t i, int64_t dst_el) {
      std::memcpy(img.data() + off + dst_el * isz, src + i * isz, isz);
    });
    slot->arr = from_bytes(img);
  }

  // fn(linear index, element offset) for every element of a strided view, row-major.
  template <class F>
  static void strided_for_each(const ArrayRef& r, F&& fn) {
    const int nd = r.ndim();
    const int64_t n = r.size();
    std::vector<int64_t> idx(nd, 0);
    int64_t pos = 0;
    for (int64_t i = 0; i < n; ++i) {
      fn(i, pos);
      for (int d = nd - 1; d >= 0; --d) {
        if (++idx[d] < r.shape[d]) {
          pos += r.strides[d];
          break;
        }
        pos -= r.strides[d] * (r.shape[d] - 1);
        idx[d] = 0;
      }
    }
  }

  // The slot's bytes, evaluated and contiguous.
  mx::array flat_evaluated(Slot& s) {
    mx::array a = *s.arr;
    if (!a.is_available() || !a.flags().row_contiguous) {
      mx::eval(a);
      a.wait();  // work started by commit()
      if (!a.flags().row_contiguous) {
        a = mx::contiguous(a);
        mx::eval(a);
      }
      s.arr = a;
    }
    return a;
  }
  std::vector<char> bytes_of(Slot& s) {
    std::vector<char> img(s.nbytes, static_cast<char>(0xFF));
    if (s.arr && s.nbytes) {
      mx::array a = flat_evaluated(s);
      std::memcpy(img.data(), a.data<char>(), s.nbytes);
    }
    return img;
  }
  static mx::array from_bytes(const std::vector<char>& img) {
    mx::array a(mx::allocator::malloc(std::max<size_t>(img.size(), 1)),
                {static_cast<mx::ShapeElem>(img.size())}, mx::uint8);
    if (!img.empty()) std::memcpy(a.data<char>(), img.data(), img.size());
    return a;
  }

  // Element-wise strided copy with conversion, on the evaluated bytes.
  void host_copy(const ArrayRef& src, const ArrayRef& dst) {
    auto [sslot, soff] = store_.find(src.data, "copy");
    std::vector<char> sbytes = bytes_of(*sslot);
    auto [dslot, doff] = store_.find(dst.data, "copy");
    std::vector<char> img = dslot == sslot ? sbytes : bytes_of(*dslot);
    const size_t si = itemsize(src.dtype), di = itemsize(dst.dtype);
    std::vector<int64_t> spos(static_cast<size_t>(src.size()));
    strided_for_each(src, [&](int64_t i, int64_t p) { spos[static_cast<size_t>(i)] = p; });
    strided_for_each(dst, [&](int64_t i, int64_t p) {
      const char* s = sbytes.data() + soff + spos[static_cast<size_t>(i)] * si;
      char* d = img.data() + doff + p * di;
      if (src.dtype == dst.dtype)
        std::memcpy(d, s, di);
      else
        store(d, dst.dtype, load(s, src.dtype));
    });
    dslot->arr = from_bytes(img);
  }

  void eval_pending() {
    std::vector<mx::array> lazy;  // stored results not computed yet
    for (auto& [addr, s] : store_.slots)
      if (s.arr && !s.arr->is_available()) lazy.push_back(*s.arr);
    store_.pending = 0;
    if (lazy.empty()) return;
    mx::eval(lazy);
    for (auto& a : lazy) a.wait();
  }

  using MxFn = std::function<std::vector<mx::array>(const std::vector<mx::array>&)>;

  // The program as an MLX function of its inputs, compiled once per signature.
  MxFn& compiled(const FusedProgram& p) {
    const std::string key = p.signature();
    auto it = compiled_.find(key);
    if (it != compiled_.end()) return it->second;
    MxFn body = [instrs = p.instrs](const std::vector<mx::array>& ins) {
      std::vector<mx::array> v;
      v.reserve(instrs.size());
      for (const FusedInstr& in : instrs) {
        switch (in.kind) {
          case FusedInstr::Kind::Input: v.push_back(ins.at(static_cast<size_t>(in.a))); break;
          case FusedInstr::Kind::Unary: v.push_back(unary_op(in.op, v[in.a])); break;
          case FusedInstr::Kind::Binary: v.push_back(binary_op(in.op, v[in.a], v[in.b])); break;
          case FusedInstr::Kind::Where: {
            mx::array c = v[in.a];
            if (c.dtype() != mx::bool_) c = mx::astype(c, mx::bool_);
            v.push_back(mx::where(c, v[in.b], v[in.c]));
            break;
          }
          case FusedInstr::Kind::Cast:
            v.push_back(mx::astype(v[in.a], mx_dtype(in.dtype, "fused")));
            break;
        }
      }
      return std::vector<mx::array>{v.back()};
    };
    return compiled_.emplace(key, mx::compile(std::move(body))).first->second;
  }

  static mx::array unary_op(OpCode op, const mx::array& x) {
    using O = OpCode;
    auto c = [&](double v) { return mx::array(v, x.dtype()); };
    switch (op) {
      case O::Neg: return mx::negative(x);
      case O::Abs: return mx::abs(x);
      case O::Sign: return mx::sign(x);
      case O::Exp: return mx::exp(x);
      case O::Expm1: return mx::expm1(x);
      case O::Log: return mx::log(x);
      case O::Log1p: return mx::log1p(x);
      case O::Log2: return mx::log2(x);
      case O::Log10: return mx::log10(x);
      case O::Sqrt: return mx::sqrt(x);
      case O::Rsqrt: return mx::rsqrt(x);
      case O::Square: return mx::square(x);
      case O::Reciprocal: return mx::reciprocal(x);
      case O::Sin: return mx::sin(x);
      case O::Cos: return mx::cos(x);
      case O::Tan: return mx::tan(x);
      case O::Asin: return mx::arcsin(x);
      case O::Acos: return mx::arccos(x);
      case O::Atan: return mx::arctan(x);
      case O::Sinh: return mx::sinh(x);
      case O::Cosh: return mx::cosh(x);
      case O::Tanh: return mx::tanh(x);
      case O::Sigmoid: return mx::sigmoid(x);
      case O::Relu: return mx::maximum(x, c(0));
      case O::Gelu:  // x/2 (1 + erf(x/sqrt 2))
        return mx::multiply(mx::multiply(x, c(0.5)),
                            mx::add(c(1), mx::erf(mx::multiply(x, c(0.7071067811865476)))));
      case O::GeluTanh: {  // x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        mx::array inner = mx::multiply(
            c(0.7978845608028654), mx::add(x, mx::multiply(c(0.044715), mx::multiply(x, mx::square(x)))));
        return mx::multiply(mx::multiply(x, c(0.5)), mx::add(c(1), mx::tanh(inner)));
      }
      case O::Silu: return mx::multiply(x, mx::sigmoid(x));
      case O::Erf: return mx::erf(x);
      case O::Erfinv: return mx::erfinv(x);
      case O::Floor: return mx::floor(x);
      case O::Ceil: return mx::ceil(x);
      case O::Round: return mx::round(x);
      case O::IsNan: return mx::isnan(x);
      case O::IsInf: return mx::isinf(x);
      case O::IsFinite: return mx::isfinite(x);
      case O::LogicalNot: return mx::logical_not(x);
      case O::Real: return mx::real(x);
      case O::Imag: return mx::imag(x);
      case O::Conj: return mx::conjugate(x);
      case O::BitwiseInvert:
        return x.dtype() == mx::bool_ ? mx::logical_not(x) : mx::bitwise_invert(x);
      default: unsupported(op);
    }
  }

  static mx::array binary_op(OpCode op, const mx::array& a, const mx::array& b) {
    using O = OpCode;
    switch (op) {
      case O::Add: return mx::add(a, b);
      case O::Subtract: return mx::subtract(a, b);
      case O::Multiply: return mx::multiply(a, b);
      case O::Divide: return mx::divide(a, b);
      case O::FloorDivide:
      case O::Remainder: {
        // float16/bfloat16 in float32 (as the cpu kernel), rounded once at the end: MLX's
        // kernel divides in the 16-bit format, where a quotient such as -7.02 rounds to
        // -7.0 before the floor (floor_divide -7 instead of -8).
        const bool low = a.dtype() == mx::float16 || a.dtype() == mx::bfloat16;
        const mx::array x = low ? mx::astype(a, mx::float32) : a;
        const mx::array y = low ? mx::astype(b, mx::float32) : b;
        mx::array r = op == O::FloorDivide ? mx::floor_divide(x, y) : mx::remainder(x, y);
        return low ? mx::astype(r, a.dtype()) : r;
      }
      case O::Power: return mx::power(a, b);
      case O::Maximum: return mx::maximum(a, b);
      case O::Minimum: return mx::minimum(a, b);
      case O::Atan2: return mx::arctan2(a, b);
      case O::Hypot: return mx::sqrt(mx::add(mx::square(a), mx::square(b)));
      case O::GeluGrad:
      case O::GeluTanhGrad: {
        // a * gelu'(b), float16/bfloat16 in float32 and rounded once.
        const bool low = a.dtype() == mx::float16 || a.dtype() == mx::bfloat16;
        const mx::array g = low ? mx::astype(a, mx::float32) : a;
        const mx::array x = low ? mx::astype(b, mx::float32) : b;
        auto c = [&](double v) { return mx::array(v, x.dtype()); };
        auto derivative = [&]() -> mx::array {
          if (op == O::GeluGrad) {  // Phi(x) + x phi(x)
            const mx::array cdf = mx::multiply(
                c(0.5), mx::add(c(1), mx::erf(mx::multiply(x, c(0.7071067811865476)))));
            const mx::array pdf =
                mx::multiply(mx::exp(mx::multiply(mx::square(x), c(-0.5))), c(0.3989422804014327));
            return mx::add(cdf, mx::multiply(x, pdf));
          }
          // s (1 + 2 x (1 - s) u'), s = sigmoid(2u) (no cancellation in 1 + tanh u)
          const mx::array s = mx::sigmoid(mx::multiply(
              c(1.5957691216057308),
              mx::add(x, mx::multiply(c(0.044715), mx::multiply(x, mx::square(x))))));
          const mx::array du = mx::multiply(c(0.7978845608028654),
                                            mx::add(c(1), mx::multiply(c(0.134145), mx::square(x))));
          return mx::multiply(
              s, mx::add(c(1), mx::multiply(mx::multiply(mx::multiply(c(2), x), mx::subtract(c(1), s)),
                                            du)));
        };
        const mx::array r = mx::multiply(g, derivative());
        return low ? mx::astype(r, a.dtype()) : r;
      }
      case O::Equal: return mx::equal(a, b);
      case O::NotEqual: return mx::not_equal(a, b);
      case O::Less: return mx::less(a, b);
      case O::LessEqual: return mx::less_equal(a, b);
      case O::Greater: return mx::greater(a, b);
      case O::GreaterEqual: return mx::greater_equal(a, b);
      case O::LogicalAnd: return mx::logical_and(a, b);
      case O::LogicalOr: return mx::logical_or(a, b);
      case O::LogicalXor: return mx::not_equal(mx::astype(a, mx::bool_), mx::astype(b, mx::bool_));
      case O::BitwiseAnd:
        return a.dtype() == mx::bool_ ? mx::logical_and(a, b) : mx::bitwise_and(a, b);
      case O::BitwiseOr:
        return a.dtype() == mx::bool_ ? mx::logical_or(a, b) : mx::bitwise_or(a, b);
      case O::BitwiseXor:
        return a.dtype() == mx::bool_ ? mx::not_equal(a, b) : mx::bitwise_xor(a, b);
      case O::BitwiseLeftShift:
      case O::BitwiseRightShift: {
        // MLX shifts with C++'s << and >>: counts outside [0, bits) are guarded here to
        // give NumPy's results (0, or -1 for >> of a negative signed value).
        const int bits = static_cast<int>(a.itemsize() * 8);
        mx::array zero = mx::zeros({}, b.dtype());
        mx::array out = mx::logical_or(mx::less(b, zero), mx::greater_equal(b, mx::array(bits, b.dtype())));
        mx::array count = mx::where(out, zero, b);
        if (op == O::BitwiseLeftShift)
          return mx::where(out, mx::zeros({}, a.dtype()), mx::left_shift(a, count));
        mx::array fill = mx::where(mx::less(a, mx::zeros({}, a.dtype())), mx::array(-1, a.dtype()),
                                   mx::zeros({}, a.dtype()));
        return mx::where(out, fill, mx::right_shift(a, count));
      }
      default: unsupported(op);
    }
  }

  Store store_;
  MlxAllocator alloc_;
  std::map<std::string, MxFn> compiled_;  // fused programs by signature (under store_.mu)
  // supports() of the linear-algebra ops: -1 unknown, 0 no, 1 yes, per (op, dtype).
  mutable std::array<std::atomic<int8_t>, kNumOpCodes * kNumDTypes> probed_;
  const bool gpu_ = mx::is_available(mx::Device::gpu);
};

}  // namespace
}  // namespace tmath::mlxb

// Called by libtmath's plugin loader after dlopen.
extern "C" TMATH_API void tmath_mlx_register() {
  // Never destroyed: it outlives every tensor, including those released during static
  // destruction.
  static auto* backend = new tmath::mlxb::MlxBackend();
  tmath::register_backend(std::shared_ptr<tmath::Backend>(backend, [](tmath::Backend*) {}));
}
