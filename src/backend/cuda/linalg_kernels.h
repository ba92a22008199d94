// NVRTC source of the small helper kernels of the cuSOLVER linear algebra
// (src/backend/cuda/linalg.cpp): masked/transposed unpacking of column-major
// results, the batched NaN/Inf and zero-diagonal checks, the complex eigenvectors
// of a real general eigenproblem from geev's packed real form, the one-sided Jacobi
// SVD of batches of small real matrices, and the Householder QR and Cholesky
// factorisation of batches of small matrices. Pure string building, so tools/nvrtc_check.cpp compiles them without a GPU.
#pragma once

#include <cstdint>

#include "backend/cuda/runtime.h"
#include "tmath/dtype.h"

namespace tmath::cuda {

// Parameters of the kernels (one by-value struct, laid out as in the source).
struct LaKernelParams {
  unsigned long long src = 0, dst = 0, flags = 0;
  unsigned long long aux = 0;  // eig_vectors: the complex eigenvalues (n per batch entry);
                               // permute: the row permutation (rows ints per entry)
  long long batch = 0, rows = 0, cols = 0;
  long long ld = 0;   // src leading dimension (column-major)
  long long sbs = 0;  // src batch stride, elements
  long long dbs = 0;  // dst batch stride, elements
  int mode = 0;       // pivots: 1 in shared memory; permute: 4 P^T I (src unused);
                      // lu_pivots_in: 0 int32 out, 1 int64 out;
                      // unpack: 0 all, 1 lower, 2 upper, 3 strictly lower + unit diagonal,
                      // 4 identity (src unused); check: 0 all, 1 lower, 2 upper,
                      // 3 strictly lower, 4 strictly upper
  int trans = 0;      // unpack: read src(j, i) for out(i, j)
  int conj = 0;       // unpack: conjugate (complex)
  int diag = 0;       // check: also flag (bit 2) an exact zero on the diagonal
};

// Kernels: {tm_la_unpack, tm_la_check, tm_la_eig_vectors, tm_la_pivots, tm_la_permute,
// tm_la_pointers, tm_la_lu_pivots_in}
// for float32, float64, complex64, complex128 (tm_la_eig_vectors is used with the real
// ones).
ProgramSource linalg_kernels(DType dt);
uint64_t linalg_kernels_key(DType dt);

// Parameters of tm_la_svd_jacobi (one by-value struct, laid out as in the source).
struct SvdKernelParams {
  unsigned long long a = 0;  // input: column-major m x n, leading dimension m, batch stride m n
  unsigned long long u = 0, s = 0, vh = 0;  // outputs, row-major contiguous (u, vh unused
                                            // for values only)
  unsigned long long flags = 0;  // per matrix: nonzero (NaN/Inf, from tm_la_check) skips it
  unsigned long long info = 0;   // per matrix: set to 1 when the sweeps did not converge
  long long batch = 0;
  int m = 0, n = 0;      // at most 32 each
  int full = 0, uv = 0;  // full_matrices, compute_uv
  int max_sweeps = 30;
  int pad_ = 0;
  double tol = 0;         // stop after a sweep with every |cos(p_i, p_j)| <= tol
  double tol_accept = 0;  // at the sweep cap: converged if every |cos| <= tol_accept
};

// One-sided Jacobi SVD of a batch of real matrices up to 32 x 32, one thread block of
// 32 ceil(ceil(min(m, n) / 2) / 4) threads per matrix (tm_la_svd_jacobi), for float32
// and float64 (both computed in float64).
ProgramSource svd_jacobi_kernel(DType dt);
uint64_t svd_jacobi_kernel_key(DType dt);

// Parameters of tm_la_qr_small (one by-value struct, laid out as in the source).
struct QrKernelParams {
  unsigned long long a = 0;  // input: column-major m x n, leading dimension m, batch stride m n
  unsigned long long q = 0;  // output Q, row-major m x qcols per entry (unused when qcols = 0)
  unsigned long long r = 0;  // output R, row-major rrows x n per entry
  unsigned long long flags = 0;  // per matrix: nonzero (NaN/Inf, from tm_la_check) skips it
  long long batch = 0;
  int m = 0, n = 0;  // at most 32 each
  int qcols = 0;     // columns of Q wanted (0: R only)
  int rrows = 0;     // rows of R wanted (min(m, n) reduced, m complete)
};

// Householder QR (geqrf + orgqr/ungqr conventions) of a batch of matrices up to 32 x 32,
// one warp per matrix (tm_la_qr_small), for float32, float64, complex64 and complex128
// (computed in double precision).
ProgramSource qr_small_kernel(DType dt);
uint64_t qr_small_kernel_key(DType dt);

// Parameters of tm_la_cholesky_small (one by-value struct, laid out as in the source).
struct CholKernelParams {
  unsigned long long a = 0;    // input: n x n per entry, entries n n apart, row-major (or
                               // column-major when colmajor); only the lower triangle is read
  unsigned long long out = 0;  // output L (or U = L^H when upper), row-major contiguous
  unsigned long long flags = 0;  // per matrix: set to 1 for NaN/Inf in the lower triangle
  unsigned long long info = 0;   // per matrix: j + 1 when the minor of order j + 1 is not
                                 // positive definite
  long long batch = 0;
  int n = 0;  // at most 32
  int colmajor = 0, upper = 0;
  int pad_ = 0;
};

// Cholesky factorisation (potrf's semantics, lower) of a batch of Hermitian matrices up
// to 32 x 32, one warp per matrix (tm_la_cholesky_small), for float32, float64,
// complex64 and complex128, in the input's precision.
ProgramSource cholesky_small_kernel(DType dt);
uint64_t cholesky_small_kernel_key(DType dt);

// Parameters of tm_la_lu_solve_small (one by-value struct, laid out as in the source).
struct LuSolveKernelParams {
  unsigned long long a = 0;    // lu_factor's LU, n x n per entry, entries n n apart,
                               // row-major (column-major when a_colmajor)
  unsigned long long piv = 0;  // 0-based int32 pivots, n per entry, contiguous
  unsigned long long b = 0;    // right-hand sides, n x k per entry (b_colmajor as a's)
  unsigned long long x = 0;    // output, row-major n x k per entry
  unsigned long long flags = 0;  // per entry: 1 NaN/Inf, 2 zero on U's diagonal, 4 bad pivot
  long long batch = 0;
  int n = 0;  // at most 32
  int k = 0;
  int a_colmajor = 0, b_colmajor = 0;
};

// lu_solve of a batch of systems up to 32 x 32 (any number of right-hand sides), one
// warp per entry (tm_la_lu_solve_small), for float32, float64, complex64 and
// complex128, in the input's precision.
ProgramSource lu_solve_small_kernel(DType dt);
uint64_t lu_solve_small_kernel_key(DType dt);

}  // namespace tmath::cuda
