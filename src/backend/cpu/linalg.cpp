// Linear-algebra kernels through LAPACKE (OpenBLAS): each matrix of the batch is
// packed into a column-major scratch copy (LAPACK overwrites its arguments, and the
// inputs must stay intact), checked for NaN/Inf on the way, factorised, and unpacked
// into the row-major outputs. Batches of small matrices are spread over the thread
// pool; large ones run one after another with OpenBLAS's own threads.
#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <mutex>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#define lapack_complex_float std::complex<float>
#define lapack_complex_double std::complex<double>
#include <cblas.h>
#include <lapacke.h>

#include "backend/cpu/batch.h"
#include "backend/cpu/thread_pool.h"
#include "core/dispatch.h"
#include "core/linalg_text.h"
#include "tmath/backend.h"
#include "tmath/error.h"

namespace tmath::cpu {
namespace {

template <class T>
struct RealOf {
  using type = T;
};
template <class T>
struct RealOf<std::complex<T>> {
  using type = T;
};
template <class T>
using real_t = typename RealOf<T>::type;
template <class T>
inline constexpr bool kIsComplex = !std::is_same_v<T, real_t<T>>;

using lint = lapack_int;

// Why a batch entry failed: the shared failure codes (core/linalg_text.h), whose words
// the LinAlgError carries, and Internal (LAPACK rejected an argument).
enum class Status : int32_t {
  Ok = detail::kOk,
  NonFinite = detail::kNonFinite,
  Singular = detail::kSingular,
  NotPositiveDefinite = detail::kNotPositiveDefinite,
  NoConvergence = detail::kNoConvergence,
  BadPivots = detail::kBadPivots,
  Internal  // linalg_fail_text: "LAPACK reported an invalid argument"
};



std::string batch_index_str(const ArrayRef& x, int core_dims, int64_t b) {
  const int nb = x.ndim() - core_dims;
  return nb <= 0 ? std::string() : detail::batch_index_text(x.shape.first(static_cast<size_t>(nb)), b);
}

template <class T>
bool finite(T v) {
  if constexpr (kIsComplex<T>) return std::isfinite(v.real()) && std::isfinite(v.imag());
  else return std::isfinite(v);
}

// Which part of a matrix pack and copy_rows copy (the rest of dst is left as it is).
enum class Part { All, Lower, Upper };

// dst (column-major, leading dimension ld) = the (rows x cols) matrix at x.data + off,
// or its lower or upper triangle. Returns false when an element copied is NaN or Inf.
template <class T>
bool pack(const ArrayRef& x, int64_t off, int64_t rows, int64_t cols, T* dst, int64_t ld,
          Part part = Part::All) {
  const T* src = static_cast<const T*>(x.data) + off;
  const int nd = x.ndim();
  const int64_t rs = x.strides[nd - 2], cs = x.strides[nd - 1];
  bool ok = true;
  // In tiles: a row-major source read down its columns would miss the cache on every
  // element of a large matrix.
  constexpr int64_t kTile = 64;
  for (int64_t j0 = 0; j0 < cols; j0 += kTile)
    for (int64_t i0 = 0; i0 < rows; i0 += kTile) {
      const int64_t j1 = std::min(cols, j0 + kTile), i1 = std::min(rows, i0 + kTile);
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t lo = part == Part::Lower ? std::max(i0, j) : i0;
        const int64_t hi = part == Part::Upper ? std::min(i1, j + 1) : i1;
        for (int64_t i = lo; i < hi; ++i) {
          T v = src[i * rs + j * cs];
          ok &= finite(v);
          dst[i + j * ld] = v;
        }
      }
    }
  return ok;
}

// Row-major contiguous dst (rows x cols) from a column-major src.
template <class T>
void unpack(const T* src, int64_t ld, int64_t rows, int64_t cols, T* dst) {
  constexpr int64_t kTile = 64;  // as in pack
  for (int64_t i0 = 0; i0 < rows; i0 += kTile)
    for (int64_t j0 = 0; j0 < cols; j0 += kTile) {
      const int64_t i1 = std::min(rows, i0 + kTile), j1 = std::min(cols, j0 + kTile);
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = j0; j < j1; ++j) dst[i * cols + j] = src[i + j * ld];
    }
}

// dst (row-major, contiguous) = the (rows x cols) matrix at x.data + off, or its lower
// or upper triangle; false when an element copied is NaN or Inf. Read column-major,
// dst is the transpose: routines whose result for A^T gives theirs for A (det, inv,
// solve through right-hand trsm, cholesky through potrf('U'), real eigh with the
// triangle flipped) take it instead of a transposing copy.
template <class T>
bool copy_rows(const ArrayRef& x, int64_t off, int64_t rows, int64_t cols, T* dst,
               Part part = Part::All) {
  const T* src = static_cast<const T*>(x.data) + off;
  const int nd = x.ndim();
  const int64_t rs = x.strides[nd - 2], cs = x.strides[nd - 1];
  bool ok = true;
  for (int64_t i = 0; i < rows; ++i) {
    const T* s = src + i * rs;
    T* d = dst + i * cols;
    const int64_t begin = part == Part::Upper ? std::min(cols, i) : 0;
    const int64_t end = part == Part::Lower ? std::min(cols, i + 1) : cols;
    if (cs == 1) {
      for (int64_t j = begin; j < end; ++j) {
        d[j] = s[j];
        ok &= finite(s[j]);
      }
    } else {
      for (int64_t j = begin; j < end; ++j) {
        d[j] = s[j * cs];
        ok &= finite(d[j]);
      }
    }
  }
  return ok;
}

lint L(int64_t v) { return static_cast<lint>(v); }
lint ld_of(int64_t rows) { return L(std::max<int64_t>(rows, 1)); }

// ---- typed LAPACKE wrappers (column-major) ----------------------------------------
template <class T>
lint getrf(int64_t m, int64_t n, T* a, lint lda, lint* ipiv) {
  if constexpr (std::is_same_v<T, float>) return LAPACKE_sgetrf(LAPACK_COL_MAJOR, L(m), L(n), a, lda, ipiv);
  else if constexpr (std::is_same_v<T, double>) return LAPACKE_dgetrf(LAPACK_COL_MAJOR, L(m), L(n), a, lda, ipiv);
  else if constexpr (std::is_same_v<T, complex64_t>) return LAPACKE_cgetrf(LAPACK_COL_MAJOR, L(m), L(n), a, lda, ipiv);
  else return LAPACKE_zgetrf(LAPACK_COL_MAJOR, L(m), L(n), a, lda, ipiv);
}
template <class T>
lint getri(int64_t n, T* a, lint lda, const lint* ipiv) {
  if constexpr (std::is_same_v<T, float>) return LAPACKE_sgetri(LAPACK_COL_MAJOR, L(n), a, lda, ipiv);
  else if constexpr (std::is_same_v<T, double>) return LAPACKE_dgetri(LAPACK_COL_MAJOR, L(n), a, lda, ipiv);
  else if constexpr (std::is_same_v<T, complex64_t>) return LAPACKE_cgetri(LAPACK_COL_MAJOR, L(n), a, lda, ipiv);
  else return LAPACKE_zgetri(LAPACK_COL_MAJOR, L(n), a, lda, ipiv);
}
template <class T>
lint getrs(int64_t n, int64_t k, const T* a, lint lda, const lint* ipiv, T* b, lint ldb) {
  if constexpr (std::is_same_v<T, float>) return LAPACKE_sgetrs(LAPACK_COL_MAJOR, 'N', L(n), L(k), a, lda, ipiv, b, ldb);
  else if constexpr (std::is_same_v<T, double>) return LAPACKE_dgetrs(LAPACK_COL_MAJOR, 'N', L(n), L(k), a, lda, ipiv, b, ldb);
  else if constexpr (std::is_same_v<T, complex64_t>) return LAPACKE_cgetrs(LAPACK_COL_MAJOR, 'N', L(n), L(k), a, lda, ipiv, b, ldb);
  else return LAPACKE_zgetrs(LAPACK_COL_MAJOR, 'N', L(n), L(k), a, lda, ipiv, b, ldb);
}
// General eigenproblem, right eigenvectors only. Real: w = wr + i wi (conjugate pairs
// adjacent, positive imaginary part first; vr holds their real and imaginary parts).
template <class T>
lint geev(char jobvr, int64_t n, T* a, lint lda, T* wr, T* wi, T* vr, lint ldvr) {
  T dummy[1];
  if constexpr (std::is_same_v<T, float>) return LAPACKE_sgeev(LAPACK_COL_MAJOR, 'N', jobvr, L(n), a, lda, wr, wi, dummy, 1, vr, ldvr);
  else return LAPACKE_dgeev(LAPACK_COL_MAJOR, 'N', jobvr, L(n), a, lda, wr, wi, dummy, 1, vr, ldvr);
}
template <class T>
lint geev(char jobvr, int64_t n, T* a, lint lda, T* w, T* vr, lint ldvr) {
  T dummy[1];
  if constexpr (std::is_same_v<T, complex64_t>) return LAPACKE_cgeev(LAPACK_COL_MAJOR, 'N', jobvr, L(n), a, lda, w, dummy, 1, vr, ldvr);
  else return LAPACKE_zgeev(LAPACK_COL_MAJOR, 'N', jobvr, L(n), a, lda, w, dummy, 1, vr, ldvr);
}
// B := B op(A)^-1 for triangular A (column-major), B m x n.
template <class T>
void trsm_right(bool upper, bool unit, int64_t m, int64_t n, const T* a, lint lda, T* b, lint ldb) {
  const CBLAS_UPLO uplo = upper ? CblasUpper : CblasLower;
  const CBLAS_DIAG diag = unit ? CblasUnit : CblasNonUnit;
  const auto M = static_cast<blasint>(m), N = static_cast<blasint>(n);
  const auto la = static_cast<blasint>(lda), lb = static_cast<blasint>(ldb);
  if constexpr (std::is_same_v<T, float>)
    cblas_strsm(CblasColMajor, CblasRight, uplo, CblasNoTrans, diag, M, N, 1.0f, a, la, b, lb);
  else if constexpr (std::is_same_v<T, double>)
    cblas_dtrsm(CblasColMajor, CblasRight, uplo, CblasNoTrans, diag, M, N, 1.0, a, la, b, lb);
  else if constexpr (std::is_same_v<T, complex64_t>) {
    const T one(1);
    cblas_ctrsm(CblasColMajor, CblasRight, uplo, CblasNoTrans, diag, M, N, &one, a, la, b, lb);
  } else {
    const T one(1);
    cblas_ztrsm(CblasColMajor, CblasRight, uplo, CblasNoTrans, diag, M, N, &one, a, la, b, lb);
  }
}
// The callers have checked the triangle for NaN/Inf already: the _work entry points skip
// LAPACKE's own scan of it.
template <class T>
lint potrf(char uplo, int64_t n, T* a, lint lda) {
  if constexpr (std::is_same_v<T, float>) return LAPACKE_spotrf_work(LAPACK_COL_MAJOR, uplo, L(n), a, lda);
  else if constexpr (std::is_same_v<T, double>) return LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, uplo, L(n), a, lda);
  else if constexpr (std::is_same_v<T, complex64_t>) return LAPACKE_cpotrf_work(LAPACK_COL_MAJOR, uplo, L(n), a, lda);
  else return LAPACKE_zpotrf_work(LAPACK_COL_MAJOR, uplo, L(n), a, lda);
}
template <class T>
lint geqrf(int64_t m, int64_t n, T* a, lint lda, T* tau) {
  if constexpr (std::is_same_v<T, float>) return LAPACKE_sgeqrf(LAPACK_COL_MAJOR, L(m), L(n), a, lda, tau);
  else if constexpr (std::is_same_v<T, double>) return LAPACKE_dgeqrf(LAPACK_COL_MAJOR, L(m), L(n), a, lda, tau);
  else if constexpr (std::is_same_v<T, complex64_t>) return LAPACKE_cgeqrf(LAPACK_COL_MAJOR, L(m), L(n), a, lda, tau);
  else return LAPACKE_zgeqrf(LAPACK_COL_MAJOR, L(m), L(n), a, lda, tau);
}
// Forms the first `cols` columns of Q from k reflectors (orgqr / ungqr).
template <class T>
lint orgqr(int64_t m, int64_t cols, int64_t k, T* a, lint lda, const T* tau) {
  if constexpr (std::is_same_v<T, float>) return LAPACKE_sorgqr(LAPACK_COL_MAJOR, L(m), L(cols), L(k), a, lda, tau);
  else if constexpr (std::is_same_v<T, double>) return LAPACKE_dorgqr(LAPACK_COL_MAJOR, L(m), L(cols), L(k), a, lda, tau);
  else if constexpr (std::is_same_v<T, complex64_t>) return LAPACKE_cungqr(LAPACK_COL_MAJOR, L(m), L(cols), L(k), a, lda, tau);
  else return LAPACKE_zungqr(LAPACK_COL_MAJOR, L(m), L(cols), L(k), a, lda, tau);
}
template <class T>
lint gesdd(char jobz, int64_t m, int64_t n, T* a, lint lda, real_t<T>* s, T* u, lint ldu, T* vt,
           lint ldvt) {
  if constexpr (std::is_same_v<T, float>) return LAPACKE_sgesdd(LAPACK_COL_MAJOR, jobz, L(m), L(n), a, lda, s, u, ldu, vt, ldvt);
  else if constexpr (std::is_same_v<T, double>) return LAPACKE_dgesdd(LAPACK_COL_MAJOR, jobz, L(m), L(n), a, lda, s, u, ldu, vt, ldvt);
  else if constexpr (std::is_same_v<T, complex64_t>) return LAPACKE_cgesdd(LAPACK_COL_MAJOR, jobz, L(m), L(n), a, lda, s, u, ldu, vt, ldvt);
  else return LAPACKE_zgesdd(LAPACK_COL_MAJOR, jobz, L(m), L(n), a, lda, s, u, ldu, vt, ldvt);
}
// gesvd: the slower QR-iteration SVD, used when gesdd does not converge.
template <class T>
lint gesvd(char job, int64_t m, int64_t n, T* a, lint lda, real_t<T>* s, T* u, lint ldu, T* vt,
           lint ldvt, real_t<T>* superb) {
  if constexpr (std::is_same_v<T, float>) return LAPACKE_sgesvd(LAPACK_COL_MAJOR, job, job, L(m), L(n), a, lda, s, u, ldu, vt, ldvt, superb);
  else if constexpr (std::is_same_v<T, double>) return LAPACKE_dgesvd(LAPACK_COL_MAJOR, job, job, L(m), L(n), a, lda, s, u, ldu, vt, ldvt, superb);
  else if constexpr (std::is_same_v<T, complex64_t>) return LAPACKE_cgesvd(LAPACK_COL_MAJOR, job, job, L(m), L(n), a, lda, s, u, ldu, vt, ldvt, superb);
  else return LAPACKE_zgesvd(LAPACK_COL_MAJOR, job, job, L(m), L(n), a, lda, s, u, ldu, vt, ldvt, superb);
}
template <class T>
lint syevd(char jobz, char uplo, int64_t n, T* a, lint lda, real_t<T>* w) {
  if constexpr (std::is_same_v<T, float>) return LAPACKE_ssyevd(LAPACK_COL_MAJOR, jobz, uplo, L(n), a, lda, w);
  else if constexpr (std::is_same_v<T, double>) return LAPACKE_dsyevd(LAPACK_COL_MAJOR, jobz, uplo, L(n), a, lda, w);
  else if constexpr (std::is_same_v<T, complex64_t>) return LAPACKE_cheevd(LAPACK_COL_MAJOR, jobz, uplo, L(n), a, lda, w);
  else return LAPACKE_zheevd(LAPACK_COL_MAJOR, jobz, uplo, L(n), a, lda, w);
}
template <class T>
lint trtrs(char uplo, char diag, int64_t n, int64_t k, const T* a, lint lda, T* b, lint ldb) {
  if constexpr (std::is_same_v<T, float>) return LAPACKE_strtrs(LAPACK_COL_MAJOR, uplo, 'N', diag, L(n), L(k), a, lda, b, ldb);
  else if constexpr (std::is_same_v<T, double>) return LAPACKE_dtrtrs(LAPACK_COL_MAJOR, uplo, 'N', diag, L(n), L(k), a, lda, b, ldb);
  else if constexpr (std::is_same_v<T, complex64_t>) return LAPACKE_ctrtrs(LAPACK_COL_MAJOR, uplo, 'N', diag, L(n), L(k), a, lda, b, ldb);
  else return LAPACKE_ztrtrs(LAPACK_COL_MAJOR, uplo, 'N', diag, L(n), L(k), a, lda, b, ldb);
}

// An array handed to LAPACK, with room behind it that is allocated but never used.
// Debian's OpenBLAS 0.3.21 complex gemv kernels (zgemv_n/cgemv_n, Haswell to
// Cooperlake) read one element past the end of x when m % 4 == 2; inside LAPACK x is
// often a row or column of the matrix being factored (zlarf's Householder vector,
// stride lda in zgelq2), so the read lands up to one leading dimension past the
// matrix: valgrind shows invalid reads 16 to 2064 bytes past A in zgesdd on
// 256 x 600, and a matrix that ends at the end of a mapping (large blocks: mmap;
// under ASan: its own mapping) faults. ld + 8 elements of room cover that read.
template <class T>
std::vector<T> la_array(int64_t count, int64_t ld) {
  std::vector<T> v;
  v.reserve(static_cast<size_t>(std::max<int64_t>(count, 0) + std::max<int64_t>(ld, 0) + 8));
  v.resize(static_cast<size_t>(std::max<int64_t>(count, 0)));
  return v;
}

// While alive, OpenBLAS runs its calls on the calling thread. The batch loop below
// calls LAPACK from every thread of the engine's pool at once; with OpenBLAS's own
// threads as well, the two pools contend (OpenBLAS's workers spin in sched_yield): 512
// solves of 32 x 32 float32 with 32 right-hand sides took 15-17 ms on 2 cores, 7 ms
// with this guard, against 10-12 ms for the same LAPACK calls in a plain loop.
// OpenBLAS 0.3.21 has no per-thread setting, so the count is global while any batch
// loop runs (other threads' BLAS calls then also run single-threaded) and is restored
// by the last loop to finish.
std::mutex g_serial_mu;
int g_serial_depth = 0;  // batch loops running
int g_serial_saved = 1;  // OpenBLAS's thread count before the first of them

class SerialBlas {
 public:
  SerialBlas() {
    std::lock_guard<std::mutex> lk(g_serial_mu);
    if (g_serial_depth++ == 0) {
      g_serial_saved = openblas_get_num_threads();
      if (g_serial_saved > 1) openblas_set_num_threads(1);
    }
  }
  ~SerialBlas() {
    std::lock_guard<std::mutex> lk(g_serial_mu);
    if (--g_serial_depth == 0 && g_serial_saved > 1) openblas_set_num_threads(g_serial_saved);
  }
  SerialBlas(const SerialBlas&) = delete;
  SerialBlas& operator=(const SerialBlas&) = delete;
};

// Runs fn(b) -> Status for every batch entry; small matrices in parallel over the batch.
// Throws LinAlgError for the first failing entry (lowest batch index).
template <class Fn>
void for_each_matrix(OpCode op, const ArrayRef& ref, int core_dims, int64_t count, int64_t size,
                     Fn&& fn) {
  std::vector<Status> status(static_cast<size_t>(count), Status::Ok);
  const double cost = static_cast<double>(size) * size * size;
  auto body = [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) status[b] = fn(b);
  };
  if (cost >= 128.0 * 128.0 * 128.0 || count == 1) {
    body(0, count);  // OpenBLAS threads inside each call
  } else {
    const int64_t grain = std::max<int64_t>(1, static_cast<int64_t>((64.0 * 64.0 * 64.0) / std::max(cost, 1.0)));
    SerialBlas serial;
    parallel_for(count, grain, body);
  }
  for (int64_t b = 0; b < count; ++b) {
    if (status[b] == Status::Ok) continue;
    throw LinAlgError("[" + detail::snake_name(op) + "] " +
                      detail::linalg_fail_text(static_cast<int32_t>(status[b])) +
                      batch_index_str(ref, core_dims, b));
  }
}

template <class T>
void solve_kernel(OpCode op, std::span<const ArrayRef> in, std::span<const ArrayRef> out) {
  const ArrayRef& a = in[0];
  const int nd = a.ndim();
  const int64_t n = a.shape[nd - 1];
  const bool inv = op == OpCode::Inv;
  const int64_t k = inv ? n : in[1].shape[nd - 1];
  auto oa = batch_offsets(a, 2);
  std::vector<int64_t> ob = inv ? std::vector<int64_t>() : batch_offsets(in[1], 2);
  T* X = out[0].ptr<T>();
  const int64_t count = static_cast<int64_t>(oa.size());
  if (n == 0 || k == 0) return;
  // Without transposing copies: a row-major matrix read column-major is its transpose.
  // inv: the inverse of A^T, read back row-major, is A^-1. solve: X^T A^T = B^T, and X^T,
  // B^T column-major are X, B row-major: with A^T = P L U, X^T = B^T U^-1 L^-1 P^T, two
  // right-hand trsm on the output and column swaps.
  for_each_matrix(op, a, 2, count, n, [&](int64_t b) {
    T* x = X + b * n * k;
    std::vector<lint> piv(static_cast<size_t>(n));
    if (inv) {  // getrf + getri: 2 n^3 flops against 8/3 n^3 for solving with identities
      if (!copy_rows(a, oa[b], n, n, x)) return Status::NonFinite;
      lint info = getrf<T>(n, n, x, L(n), piv.data());
      if (info == 0) info = getri<T>(n, x, L(n), piv.data());
      if (info > 0) return Status::Singular;
      if (info < 0) return Status::Internal;
      return Status::Ok;
    }
    std::vector<T> At = la_array<T>(n * n, n);
    bool ok = copy_rows(a, oa[b], n, n, At.data());
    ok = copy_rows(in[1], ob[b], n, k, x) && ok;
    if (!ok) return Status::NonFinite;
    const lint info = getrf<T>(n, n, At.data(), L(n), piv.data());
    if (info > 0) return Status::Singular;
    if (info < 0) return Status::Internal;
    trsm_right<T>(true, false, k, n, At.data(), L(n), x, L(k));
    trsm_right<T>(false, true, k, n, At.data(), L(n), x, L(k));
    for (int64_t i = n - 1; i >= 0; --i)
      if (const int64_t p = piv[static_cast<size_t>(i)] - 1; p != i)
        std::swap_ranges(x + i * k, x + (i + 1) * k, x + p * k);
    return Status::Ok;
  });
}

template <class T>
void det_kernel(OpCode op, std::span<const ArrayRef> in, std::span<const ArrayRef> out) {
  using R = real_t<T>;
  const ArrayRef& a = in[0];
  const int64_t n = a.shape[a.ndim() - 1];
  auto oa = batch_offsets(a, 2);
  const int64_t count = static_cast<int64_t>(oa.size());
  for_each_matrix(op, a, 2, count, n, [&](int64_t b) {
    std::vector<T> A = la_array<T>(std::max<int64_t>(n * n, 1), n);
    std::vector<lint> piv(static_cast<size_t>(std::max<int64_t>(n, 1)));
    if (!copy_rows(a, oa[b], n, n, A.data())) return Status::NonFinite;  // det A^T = det A
    lint info = n > 0 ? getrf<T>(n, n, A.data(), L(n), piv.data()) : 0;
    if (info < 0) return Status::Internal;
    bool odd = false;
    for (int64_t i = 0; i < n; ++i) odd ^= piv[i] != static_cast<lint>(i + 1);
    if (op == OpCode::Det) {
      T d = odd ? T(-1) : T(1);
      for (int64_t i = 0; i < n; ++i) d *= A[i + i * n];
      out[0].ptr<T>()[b] = d;
    } else {
      T sign = odd ? T(-1) : T(1);
      R logabs = 0;
      for (int64_t i = 0; i < n; ++i) {
        T d = A[i + i * n];
        R ad = std::abs(d);
        if (ad == R(0)) {
          sign = T(0);
          logabs = -std::numeric_limits<R>::infinity();
          break;
        }
        sign *= d / ad;
        logabs += std::log(ad);
      }
      out[0].ptr<T>()[b] = sign;
      out[1].ptr<R>()[b] = logabs;
    }
    return Status::Ok;
  });
}

// Lower Cholesky factor of the n x n matrix at a.data + off into o (row-major,
// contiguous) without transposing copies: the lower triangle of a row-major matrix is
// the upper triangle of the same memory read column-major, and potrf('U') of that
// (U^H U), read back row-major, is L with L L^H = A. Only the triangle NumPy reads is
// copied (and checked); the strict upper triangle of o is zeroed afterwards. Used from
// kCholeskyInPlaceMinN on, where the general path's two transposing copies cost more
// than OpenBLAS's upper variant loses against its lower one (bench/NOTES.md).
constexpr int64_t kCholeskyInPlaceMinN = 128;

template <class T>
Status cholesky_lower_in_place(const ArrayRef& a, int64_t off, int64_t n, T* o) {
  if (!copy_rows(a, off, n, n, o, Part::Lower)) return Status::NonFinite;
  const lint info = potrf<T>('U', n, o, L(n));
  if (info > 0) return Status::NotPositiveDefinite;
  if (info < 0) return Status::Internal;
  for (int64_t i = 0; i + 1 < n; ++i) std::fill(o + i * n + i + 1, o + (i + 1) * n, T(0));
  return Status::Ok;
}

template <class T>
void cholesky_kernel(std::span<const ArrayRef> in, std::span<const ArrayRef> out, bool upper) {
  const ArrayRef& a = in[0];
  const int64_t n = a.shape[a.ndim() - 1];
  auto oa = batch_offsets(a, 2);
  T* O = out[0].ptr<T>();
  if (n == 0) return;
  for_each_matrix(OpCode::Cholesky, a, 2, static_cast<int64_t>(oa.size()), n, [&](int64_t b) {
    T* o = O + b * n * n;
    if (n >= kCholeskyInPlaceMinN) {
      if (!upper) return cholesky_lower_in_place(a, oa[b], n, o);
      // U = L^H: L by the same route, then one (conjugating) transposing copy.
      std::vector<T> Lr = la_array<T>(n * n, n);
      if (const Status st = cholesky_lower_in_place(a, oa[b], n, Lr.data()); st != Status::Ok)
        return st;
      unpack(Lr.data(), n, n, n, o);  // row-major L read column-major is L^T
      if constexpr (kIsComplex<T>)
        for (int64_t k = 0; k < n * n; ++k) o[k] = std::conj(o[k]);
      return Status::Ok;
    }
    // NumPy reads the lower triangle in both cases (NaN in the other one is ignored, as
    // LAPACK does) and returns L^H for upper.
    std::vector<T> A = la_array<T>(n * n, n);  // zeros: potrf('L') leaves the upper part
    if (!pack(a, oa[b], n, n, A.data(), n, Part::Lower)) return Status::NonFinite;
    lint info = potrf<T>('L', n, A.data(), L(n));
    if (info > 0) return Status::NotPositiveDefinite;
    if (info < 0) return Status::Internal;
    if (!upper) {
      unpack(A.data(), n, n, n, o);
    } else {
      // U = L^H: row i of U is column i of L, contiguous in the column-major A.
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
          T v = i <= j ? A[j + i * n] : T(0);
          if constexpr (kIsComplex<T>) v = std::conj(v);
          o[i * n + j] = v;
        }
    }
    return Status::Ok;
  });
}

template <class T>
void qr_kernel(std::span<const ArrayRef> in, std::span<const ArrayRef> out, const LinalgArgs& args) {
  const ArrayRef& a = in[0];
  const int nd = a.ndim();
  const int64_t m = a.shape[nd - 2], n = a.shape[nd - 1], k = std::min(m, n);
  const bool complete = args.full_matrices, want_q = args.compute_uv;
  const int64_t qcols = complete ? m : k, rrows = complete ? m : k;
  auto oa = batch_offsets(a, 2);
  const ArrayRef& rout = want_q ? out[1] : out[0];
  for_each_matrix(OpCode::Qr, a, 2, static_cast<int64_t>(oa.size()), std::max(m, n), [&](int64_t b) {
    const int64_t lda = std::max<int64_t>(m, 1);
    std::vector<T> A = la_array<T>(std::max<int64_t>(lda * std::max(n, qcols), 1), lda);
    std::vector<T> tau(static_cast<size_t>(std::max<int64_t>(k, 1)));
    if (!pack(a, oa[b], m, n, A.data(), lda)) return Status::NonFinite;
    if (m > 0 && n > 0 && geqrf<T>(m, n, A.data(), L(lda), tau.data()) != 0) return Status::Internal;
    T* r = rout.ptr<T>() + b * rrows * n;
    for (int64_t i = 0; i < rrows; ++i)
      for (int64_t j = 0; j < n; ++j) r[i * n + j] = (j >= i && i < k) ? A[i + j * lda] : T(0);
    if (want_q) {
      T* q = out[0].ptr<T>() + b * m * qcols;
      if (m > 0 && qcols > 0) {
        // A has room for max(n, qcols) columns; columns beyond the k reflectors are ignored.
        if (k == 0) {
          std::fill(A.begin(), A.end(), T(0));
          for (int64_t i = 0; i < std::min(m, qcols); ++i) A[i + i * lda] = T(1);
        } else if (orgqr<T>(m, qcols, k, A.data(), L(lda), tau.data()) != 0) {
          return Status::Internal;
        }
        unpack(A.data(), lda, m, qcols, q);
      }
    }
    return Status::Ok;
  });
}

template <class T>
void svd_kernel(std::span<const ArrayRef> in, std::span<const ArrayRef> out, const LinalgArgs& args) {
  using R = real_t<T>;
  const ArrayRef& a = in[0];
  const int nd = a.ndim();
  const int64_t m = a.shape[nd - 2], n = a.shape[nd - 1], k = std::min(m, n);
  const bool uv = args.compute_uv, full = args.full_matrices;
  const int64_t ucols = full ? m : k, vrows = full ? n : k;
  auto oa = batch_offsets(a, 2);
  R* S = (uv ? out[1] : out[0]).ptr<R>();
  for_each_matrix(OpCode::Svd, a, 2, static_cast<int64_t>(oa.size()), std::max(m, n), [&](int64_t b) {
    T* u = uv ? out[0].ptr<T>() + b * m * ucols : nullptr;
    T* vh = uv ? out[2].ptr<T>() + b * vrows * n : nullptr;
    if (k == 0) {  // empty: U and Vh are identities of their (full) size
      if (uv) {
        for (int64_t i = 0; i < m * ucols; ++i) u[i] = i % (ucols + 1) == 0 ? T(1) : T(0);
        for (int64_t i = 0; i < vrows * n; ++i) vh[i] = i % (n + 1) == 0 ? T(1) : T(0);
      }
      return Status::Ok;
    }
    const int64_t lda = m;
    std::vector<T> A = la_array<T>(m * n, std::max(m, n)), A2 = la_array<T>(m * n, std::max(m, n));
    if (!pack(a, oa[b], m, n, A.data(), lda)) return Status::NonFinite;
    std::copy(A.begin(), A.end(), A2.begin());  // gesdd destroys A; kept for the gesvd retry
    std::vector<R> s(static_cast<size_t>(k));
    std::vector<T> U = la_array<T>(uv ? m * ucols : 1, std::max(m, n)),
                   VT = la_array<T>(uv ? vrows * n : 1, std::max(m, n));
    const char jobz = uv ? (full ? 'A' : 'S') : 'N';
    lint info = gesdd<T>(jobz, m, n, A.data(), L(lda), s.data(), U.data(), L(m), VT.data(),
                         ld_of(uv ? vrows : 1));
    if (info > 0) {
      std::vector<R> superb(static_cast<size_t>(std::max<int64_t>(k, 2)));
      info = gesvd<T>(jobz, m, n, A2.data(), L(lda), s.data(), U.data(), L(m), VT.data(),
                      ld_of(uv ? vrows : 1), superb.data());
      if (info > 0) return Status::NoConvergence;
    }
    if (info < 0) return Status::Internal;
    std::copy(s.begin(), s.end(), S + b * k);
    if (uv) {
      unpack(U.data(), m, m, ucols, u);
      unpack(VT.data(), vrows, vrows, n, vh);
    }
    return Status::Ok;
  });
}

template <class T>
void eigh_kernel(std::span<const ArrayRef> in, std::span<const ArrayRef> out, const LinalgArgs& args) {
  using R = real_t<T>;
  const ArrayRef& a = in[0];
  const int64_t n = a.shape[a.ndim() - 1];
  auto oa = batch_offsets(a, 2);
  R* W = out[0].ptr<R>();
  if (n == 0) return;
  const bool uv = args.compute_uv;
  for_each_matrix(OpCode::Eigh, a, 2, static_cast<int64_t>(oa.size()), n, [&](int64_t b) {
    std::vector<T> A = la_array<T>(n * n, n);
    // Only the referenced triangle matters: NaN in the other one is ignored, as LAPACK does.
    // Real: the row-major triangle copied as it is is the other triangle of the same
    // memory read column-major (the same symmetric matrix), so no transposing copy.
    // Complex: that reading is the conjugate, whose eigenvectors differ by more than a
    // convention; the transposing copy stays.
    const Part part = args.upper ? Part::Upper : Part::Lower;
    char uplo = args.upper ? 'U' : 'L';
    if constexpr (!kIsComplex<T>) {
      if (!copy_rows(a, oa[b], n, n, A.data(), part)) return Status::NonFinite;
      uplo = args.upper ? 'L' : 'U';
    } else {
      if (!pack(a, oa[b], n, n, A.data(), n, part)) return Status::NonFinite;
    }
    lint info = syevd<T>(uv ? 'V' : 'N', uplo, n, A.data(), L(n), W + b * n);
    if (info > 0) return Status::NoConvergence;
    if (info < 0) return Status::Internal;
    if (uv) unpack(A.data(), n, n, n, out[1].ptr<T>() + b * n * n);
    return Status::Ok;
  });
}

template <class T>
void trsolve_kernel(std::span<const ArrayRef> in, std::span<const ArrayRef> out, const LinalgArgs& args) {
  const ArrayRef& a = in[0];
  const int nd = a.ndim();
  const int64_t n = a.shape[nd - 1], k = in[1].shape[nd - 1];
  auto oa = batch_offsets(a, 2), ob = batch_offsets(in[1], 2);
  T* X = out[0].ptr<T>();
  if (n == 0 || k == 0) return;
  for_each_matrix(OpCode::SolveTriangular, a, 2, static_cast<int64_t>(oa.size()), n, [&](int64_t b) {
    std::vector<T> A = la_array<T>(n * n, n), B = la_array<T>(n * k, n);
    const T* src = static_cast<const T*>(a.data) + oa[b];
    const int64_t rs = a.strides[nd - 2], cs = a.strides[nd - 1];
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < n; ++i) {
        const bool used = (args.upper ? i <= j : i >= j) && !(args.unit_diagonal && i == j);
        T v = used ? src[i * rs + j * cs] : T(0);
        if (!finite(v)) return Status::NonFinite;
        A[i + j * n] = v;
      }
    if (!pack(in[1], ob[b], n, k, B.data(), n)) return Status::NonFinite;
    lint info = trtrs<T>(args.upper ? 'U' : 'L', args.unit_diagonal ? 'U' : 'N', n, k, A.data(),
                         L(n), B.data(), L(n));
    if (info > 0) return Status::Singular;
    if (info < 0) return Status::Internal;
    unpack(B.data(), n, n, k, X + b * n * k);
    return Status::Ok;
  });
}

// a = P L U with partial pivoting (getrf): lu packed, 0-based pivots, the row permutation.
template <class T>
void lu_kernel(std::span<const ArrayRef> in, std::span<const ArrayRef> out) {
  const ArrayRef& a = in[0];
  const int nd = a.ndim();
  const int64_t m = a.shape[nd - 2], n = a.shape[nd - 1], k = std::min(m, n);
  auto oa = batch_offsets(a, 2);
  T* LU = out[0].ptr<T>();
  int32_t* P = out[1].ptr<int32_t>();
  int64_t* perm = out[2].ptr<int64_t>();
  for_each_matrix(OpCode::Lu, a, 2, static_cast<int64_t>(oa.size()), std::max(m, n), [&](int64_t b) {
    const int64_t lda = std::max<int64_t>(m, 1);
    std::vector<T> A = la_array<T>(std::max<int64_t>(lda * n, 1), std::max(lda, n));
    std::vector<lint> piv(static_cast<size_t>(std::max<int64_t>(k, 1)));
    if (!pack(a, oa[b], m, n, A.data(), lda)) return Status::NonFinite;
    // info > 0 (an exact zero on U's diagonal) is a valid factorisation of a singular matrix.
    if (k > 0 && getrf<T>(m, n, A.data(), L(lda), piv.data()) < 0) return Status::Internal;
    unpack(A.data(), lda, m, n, LU + b * m * n);
    int64_t* p = perm + b * m;
    for (int64_t i = 0; i < m; ++i) p[i] = i;
    for (int64_t i = 0; i < k; ++i) {
      const int64_t j = piv[i] - 1;
      P[b * k + i] = static_cast<int32_t>(j);
      std::swap(p[i], p[j]);
    }
    return Status::Ok;
  });
}

// x = A^-1 b from lu_factor's packed LU and 0-based pivots (getrs).
template <class T>
void lusolve_kernel(std::span<const ArrayRef> in, std::span<const ArrayRef> out) {
  const ArrayRef &a = in[0], &pv = in[1], &rhs = in[2];
  const int nd = a.ndim();
  const int64_t n = a.shape[nd - 1], k = rhs.shape[nd - 1];
  auto oa = batch_offsets(a, 2), op = batch_offsets(pv, 1), ob = batch_offsets(rhs, 2);
  T* X = out[0].ptr<T>();
  if (n == 0 || k == 0) return;
  const int64_t ps = pv.strides[pv.ndim() - 1];
  for_each_matrix(OpCode::LuSolve, a, 2, static_cast<int64_t>(oa.size()), n, [&](int64_t b) {
    std::vector<T> A = la_array<T>(n * n, n), B = la_array<T>(n * k, n);
    std::vector<lint> piv(static_cast<size_t>(n));
    const int32_t* p = pv.ptr<int32_t>() + op[b];
    for (int64_t i = 0; i < n; ++i) {
      const int64_t j = p[i * ps];
      if (j < i || j >= n) return Status::BadPivots;  // getrf never swaps with an earlier row
      piv[i] = static_cast<lint>(j + 1);
    }
    bool ok = pack(a, oa[b], n, n, A.data(), n);
    ok = pack(rhs, ob[b], n, k, B.data(), n) && ok;
    if (!ok) return Status::NonFinite;
    for (int64_t i = 0; i < n; ++i)
      if (A[i + i * n] == T(0)) return Status::Singular;
    if (getrs<T>(n, k, A.data(), L(n), piv.data(), B.data(), L(n)) != 0) return Status::Internal;
    unpack(B.data(), n, n, k, X + b * n * k);
    return Status::Ok;
  });
}

// General (non-symmetric) eigenproblem (geev): complex eigenvalues and unit-norm right
// eigenvectors in columns.
template <class T>
void eig_kernel(std::span<const ArrayRef> in, std::span<const ArrayRef> out, const LinalgArgs& args) {
  using R = real_t<T>;
  using C = std::complex<R>;
  const ArrayRef& a = in[0];
  const int64_t n = a.shape[a.ndim() - 1];
  auto oa = batch_offsets(a, 2);
  C* W = out[0].ptr<C>();
  const bool uv = args.compute_uv;
  if (n == 0) return;
  for_each_matrix(OpCode::Eig, a, 2, static_cast<int64_t>(oa.size()), n, [&](int64_t b) {
    std::vector<T> A = la_array<T>(n * n, n), V = la_array<T>(uv ? n * n : 1, n);
    if (!pack(a, oa[b], n, n, A.data(), n)) return Status::NonFinite;
    C* w = W + b * n;
    C* v = uv ? out[1].ptr<C>() + b * n * n : nullptr;
    lint info;
    if constexpr (kIsComplex<T>) {
      info = geev<T>(uv ? 'V' : 'N', n, A.data(), L(n), w, V.data(), L(n));
      if (info == 0 && uv) unpack(V.data(), n, n, n, v);
    } else {
      std::vector<T> wr(static_cast<size_t>(n)), wi(static_cast<size_t>(n));
      info = geev<T>(uv ? 'V' : 'N', n, A.data(), L(n), wr.data(), wi.data(), V.data(), L(n));
      if (info == 0) {
        for (int64_t j = 0; j < n; ++j) w[j] = C(wr[j], wi[j]);
        for (int64_t j = 0; uv && j < n; ++j) {
          if (wi[j] != T(0) && j + 1 < n) {  // a conjugate pair: columns j, j+1 = re, im
            for (int64_t i = 0; i < n; ++i) {
              const T re = V[i + j * n], im = V[i + (j + 1) * n];
              v[i * n + j] = C(re, im);
              v[i * n + j + 1] = C(re, -im);
            }
            ++j;
          } else {
            for (int64_t i = 0; i < n; ++i) v[i * n + j] = C(V[i + j * n], 0);
          }
        }
      }
    }
    if (info > 0) return Status::NoConvergence;
    if (info < 0) return Status::Internal;
    return Status::Ok;
  });
}

template <class T>
void run(OpCode op, std::span<const ArrayRef> in, std::span<const ArrayRef> out, const LinalgArgs& args) {
  switch (op) {
    case OpCode::Solve:
    case OpCode::Inv: solve_kernel<T>(op, in, out); break;
    case OpCode::Det:
    case OpCode::Slogdet: det_kernel<T>(op, in, out); break;
    case OpCode::Cholesky: cholesky_kernel<T>(in, out, args.upper); break;
    case OpCode::Qr: qr_kernel<T>(in, out, args); break;
    case OpCode::Svd: svd_kernel<T>(in, out, args); break;
    case OpCode::Eigh: eigh_kernel<T>(in, out, args); break;
    case OpCode::SolveTriangular: trsolve_kernel<T>(in, out, args); break;
    case OpCode::Lu: lu_kernel<T>(in, out); break;
    case OpCode::LuSolve: lusolve_kernel<T>(in, out); break;
    case OpCode::Eig: eig_kernel<T>(in, out, args); break;
    default:
      throw UnsupportedError("[linalg] op " + std::string(op_name(op)) + " is not a linear-algebra kernel");
  }
}

}  // namespace

bool supports_linalg(OpCode op, DType dt) {
  (void)op;
  return dt == DType::Float32 || dt == DType::Float64 || dt == DType::Complex64 ||
         dt == DType::Complex128;
}

void linalg(OpCode op, std::span<const ArrayRef> in, std::span<const ArrayRef> out,
            const LinalgArgs& args) {
  switch (in[0].dtype) {
    case DType::Float32: run<float>(op, in, out, args); break;
    case DType::Float64: run<double>(op, in, out, args); break;
    case DType::Complex64: run<complex64_t>(op, in, out, args); break;
    case DType::Complex128: run<complex128_t>(op, in, out, args); break;
    default:
      throw UnsupportedError("[" + detail::snake_name(op) + "] the cpu kernel takes float32, "
                             "float64, complex64 or complex128, got " +
                             std::string(dtype_name(in[0].dtype)));
  }
}

}  // namespace tmath::cpu
