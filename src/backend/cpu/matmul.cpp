// Matmul through OpenBLAS (float32/float64/complex), f16/bf16 through float32
// GEMM with float32 accumulation, integers with a plain loop.
#include <cblas.h>

#include <complex>
#include <cstring>
#include <vector>

#include "backend/cpu/batch.h"
#include "backend/cpu/kernels.h"
#include "tmath/error.h"

namespace tmath::cpu {
namespace {

// One matrix operand as BLAS sees it.
struct Mat {
  const char* base;
  int64_t rs, cs;  // row/col strides in elements
};


// BLAS needs one unit stride and a leading dimension covering the other;
// returns false if the operand must be packed (e.g. zero strides from broadcasting).
bool blas_layout(int64_t rs, int64_t cs, int64_t rows, int64_t cols, bool& trans, int64_t& ld) {
  const int64_t r1 = std::max<int64_t>(rows, 1), c1 = std::max<int64_t>(cols, 1);
  if (cs == 1 && rs >= c1) {
    trans = false, ld = rs;
    return true;
  }
  if (rs == 1 && cs >= r1) {
    trans = true, ld = cs;
    return true;
  }
  if (rows == 1 && cs == 1) {
    trans = false, ld = c1;
    return true;
  }
  if (cols == 1 && rs == 1) {
    trans = true, ld = r1;
    return true;
  }
  return false;
}

template <class T>
void gemm_call(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
               const T* b, int64_t ldb, T* c, int64_t ldc) {
  auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, TA, TB, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
  } else if constexpr (std::is_same_v<T, double>) {
    cblas_dgemm(CblasRowMajor, TA, TB, m, n, k, 1.0, a, lda, b, ldb, 0.0, c, ldc);
  } else if constexpr (std::is_same_v<T, complex64_t>) {
    const complex64_t one(1), zero(0);
    cblas_cgemm(CblasRowMajor, TA, TB, m, n, k, &one, a, lda, b, ldb, &zero, c, ldc);
  } else {
    const complex128_t one(1), zero(0);
    cblas_zgemm(CblasRowMajor, TA, TB, m, n, k, &one, a, lda, b, ldb, &zero, c, ldc);
  }
}

// Contiguous row-major copy of one (rows x cols) strided matrix, converted to T.
template <class T, class S>
void pack(const S* src, int64_t rs, int64_t cs, int64_t rows, int64_t cols, T* dst) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[i * cols + j] = static_cast<T>(static_cast<float>(src[i * rs + j * cs]));
}

template <class T>
void gemm_batched(const ArrayRef& a, const ArrayRef& b, const ArrayRef& out) {
  int nd = out.ndim();
  int64_t m = out.shape[nd - 2], n = out.shape[nd - 1], k = a.shape[nd - 1];
  auto oa = batch_offsets(a, 2), ob = batch_offsets(b, 2);
  const T* A = static_cast<const T*>(a.data);
  const T* B = static_cast<const T*>(b.data);
  T* C = static_cast<T*>(out.data);
  int64_t ars = a.strides[nd - 2], acs = a.strides[nd - 1];
  int64_t brs = b.strides[nd - 2], bcs = b.strides[nd - 1];
  bool ta = false, tb = false;
  int64_t lda = 0, ldb = 0;
  bool a_ok = blas_layout(ars, acs, m, k, ta, lda);
  bool b_ok = blas_layout(brs, bcs, k, n, tb, ldb);
  std::vector<T> pa, pb;
  for (size_t bi = 0; bi < oa.size(); ++bi) {
    T* c = C + static_cast<int64_t>(bi) * m * n;
    if (k == 0) {
      std::fill(c, c + m * n, T(0));
      continue;
    }
    const T* ap = A + oa[bi];
    const T* bp = B + ob[bi];
    bool tai = ta, tbi = tb;
    int64_t ldai = lda, ldbi = ldb;
    if (!a_ok) {
      pa.resize(static_cast<size_t>(m * k));
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < k; ++j) pa[i * k + j] = ap[i * ars + j * acs];
      ap = pa.data();
      tai = false;
      ldai = k;
    }
    if (!b_ok) {
      pb.resize(static_cast<size_t>(k * n));
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < n; ++j) pb[i * n + j] = bp[i * brs + j * bcs];
      bp = pb.data();
      tbi = false;
      ldbi = n;
    }
    gemm_call<T>(tai, tbi, m, n, k, ap, ldai, bp, ldbi, c, std::max<int64_t>(n, 1));
  }
}

// f16/bf16: pack to float32, sgemm (float32 accumulation), round once.
template <class L>
void gemm_low(const ArrayRef& a, const ArrayRef& b, const ArrayRef& out) {
  int nd = out.ndim();
  int64_t m = out.shape[nd - 2], n = out.shape[nd - 1], k = a.shape[nd - 1];
  auto oa = batch_offsets(a, 2), ob = batch_offsets(b, 2);
  std::vector<float> pa(static_cast<size_t>(m * k)), pb(static_cast<size_t>(k * n)),
      pc(static_cast<size_t>(m * n));
  L* C = static_cast<L*>(out.data);
  for (size_t bi = 0; bi < oa.size(); ++bi) {
    pack(static_cast<const L*>(a.data) + oa[bi], a.strides[nd - 2], a.strides[nd - 1], m, k, pa.data());
    pack(static_cast<const L*>(b.data) + ob[bi], b.strides[nd - 2], b.strides[nd - 1], k, n, pb.data());
    if (k == 0) std::fill(pc.begin(), pc.end(), 0.0f);
    else gemm_call<float>(false, false, m, n, k, pa.data(), k, pb.data(), n, pc.data(), std::max<int64_t>(n, 1));
    L* c = C + static_cast<int64_t>(bi) * m * n;
    for (int64_t i = 0; i < m * n; ++i) c[i] = L(pc[i]);
  }
}

// Integers and bool: exact accumulation in the output type (bool: any(a && b)).
template <class T>
void gemm_int(const ArrayRef& a, const ArrayRef& b, const ArrayRef& out) {
  int nd = out.ndim();
  int64_t m = out.shape[nd - 2], n = out.shape[nd - 1], k = a.shape[nd - 1];
  auto oa = batch_offsets(a, 2), ob = batch_offsets(b, 2);
  const T* A = static_cast<const T*>(a.data);
  const T* B = static_cast<const T*>(b.data);
  T* C = static_cast<T*>(out.data);
  int64_t ars = a.strides[nd - 2], acs = a.strides[nd - 1], brs = b.strides[nd - 2], bcs = b.strides[nd - 1];
  for (size_t bi = 0; bi < oa.size(); ++bi) {
    T* c = C + static_cast<int64_t>(bi) * m * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        T acc = T(0);
        for (int64_t p = 0; p < k; ++p) {
          T x = A[oa[bi] + i * ars + p * acs], y = B[ob[bi] + p * brs + j * bcs];
          using W = IntCalc<T>;  // uint16 wraps in uint32, not int
          if constexpr (std::is_same_v<T, bool>) acc = acc || (x && y);
          else acc = static_cast<T>(static_cast<W>(acc) + static_cast<W>(x) * static_cast<W>(y));
        }
        c[i * n + j] = acc;
      }
  }
}
}  // namespace

void matmul(const ArrayRef& a, const ArrayRef& b, const ArrayRef& out, const MatmulOptions&) {
  switch (out.dtype) {
    case DType::Float32: gemm_batched<float>(a, b, out); break;
    case DType::Float64: gemm_batched<double>(a, b, out); break;
    case DType::Complex64: gemm_batched<complex64_t>(a, b, out); break;
    case DType::Complex128: gemm_batched<complex128_t>(a, b, out); break;
    case DType::Float16: gemm_low<Half>(a, b, out); break;
    case DType::BFloat16: gemm_low<BFloat16>(a, b, out); break;
    case DType::Bool: gemm_int<bool>(a, b, out); break;
    case DType::Int8: gemm_int<int8_t>(a, b, out); break;
    case DType::Int16: gemm_int<int16_t>(a, b, out); break;
    case DType::Int32: gemm_int<int32_t>(a, b, out); break;
    case DType::Int64: gemm_int<int64_t>(a, b, out); break;
    case DType::UInt8: gemm_int<uint8_t>(a, b, out); break;
    case DType::UInt16: gemm_int<uint16_t>(a, b, out); break;
    case DType::UInt32: gemm_int<uint32_t>(a, b, out); break;
    case DType::UInt64: gemm_int<uint64_t>(a, b, out); break;
  }
}

}  // namespace tmath::cpu
