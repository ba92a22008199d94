#include "backend/cuda/linalg_kernels.h"

#include <string>

#include "tmath/error.h"

namespace tmath::cuda {

namespace {
const char* kSource = R"(
struct LaKernelParams {
  unsigned long long src, dst, flags, aux;
  long long batch, rows, cols, ld, sbs, dbs;
  int mode, trans, conj, diag;
};

// out(i, j) (row-major rows x cols, batch stride dbs) from the column-major src.
extern "C" __global__ void tm_la_unpack(LaKernelParams p) {
  const R* s = (const R*)p.src;
  R* d = (R*)p.dst;
  const long long per = p.rows * p.cols, total = per * p.batch;
  for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
       idx += (long long)gridDim.x * blockDim.x) {
    const long long b = idx / per, r = idx - b * per, i = r / p.cols, j = r - i * p.cols;
    const bool keep = p.mode == 0 || (p.mode == 1 && j <= i) || (p.mode == 2 && j >= i) ||
                      (p.mode == 3 && j < i);
    R re = 0, im = 0;
    if (p.mode == 4 || (p.mode == 3 && i == j)) {
      re = i == j ? (R)1 : (R)0;
    } else if (keep) {
      const long long si = p.trans ? j : i, sj = p.trans ? i : j;
      const R* e = s + (b * p.sbs + si + sj * p.ld) * W;
      re = e[0];
      if (W == 2) im = p.conj ? -e[W - 1] : e[W - 1];
    }
    R* o = d + (b * p.dbs + i * p.cols + j) * W;
    o[0] = re;
    if (W == 2) o[W - 1] = im;
  }
}

// flags[b] |= 1 for NaN/Inf in the checked part of column-major matrix b, |= 2 for an
// exact zero on its diagonal (when p.diag).
extern "C" __global__ void tm_la_check(LaKernelParams p) {
  const R* s = (const R*)p.src;
  int* flags = (int*)p.flags;
  const long long per = p.rows * p.cols, total = per * p.batch;
  for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
       idx += (long long)gridDim.x * blockDim.x) {
    const long long b = idx / per, r = idx - b * per, j = r / p.rows, i = r - j * p.rows;
    const bool in = p.mode == 0 || (p.mode == 1 && i >= j) || (p.mode == 2 && i <= j) ||
                    (p.mode == 3 && i > j) || (p.mode == 4 && i < j);
    if (!in && !(p.diag && i == j)) continue;
    const R* e = s + (b * p.sbs + i + j * p.ld) * W;
    const R x = e[0], y = W == 2 ? e[W - 1] : (R)0;
    if (in && ((x - x) != (R)0 || (y - y) != (R)0)) atomicOr(flags + b, 1);
    if (p.diag && i == j && x == (R)0 && y == (R)0) atomicOr(flags + b, 2);
  }
}

// The row permutation of getrf's pivots (src: LAPACK's 1-based sequential row
// interchanges, n long longs per batch entry) as perm (dst: n ints per batch entry):
// row i of P^T B is row perm[i] of B. The interchanges are sequential, so one thread
// per batch entry applies them, in shared memory when n fits (p.mode = 1), where a
// step costs a few shared-memory accesses instead of L1 round trips.
extern "C" __global__ void tm_la_pivots(LaKernelParams p) {
  extern __shared__ int sq[];
  const long long n = p.rows;
  const long long b = blockIdx.x;
  if (b >= p.batch) return;
  const long long* __restrict__ piv = (const long long*)p.src + b * n;
  int* __restrict__ out = (int*)p.dst + b * n;
  int* q = p.mode == 1 ? sq : out;
  for (long long i = threadIdx.x; i < n; i += blockDim.x) q[i] = (int)i;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (long long i = 0; i < n; ++i) {
      const long long j = piv[i] - 1;
      if (j != i && j >= 0 && j < n) {
        const int t = q[i];
        q[i] = q[j];
        q[j] = t;
      }
    }
  }
  __syncthreads();
  if (p.mode == 1)
    for (long long i = threadIdx.x; i < n; i += blockDim.x) out[i] = sq[i];
}

// The addresses of the batch entries of src (batch stride sbs elements) as an array
// of pointers (dst: batch of them), for cuBLAS's and cuSOLVER's batched routines.
extern "C" __global__ void tm_la_pointers(LaKernelParams p) {
  unsigned long long* d = (unsigned long long*)p.dst;
  for (long long b = blockIdx.x * (long long)blockDim.x + threadIdx.x; b < p.batch;
       b += (long long)gridDim.x * blockDim.x)
    d[b] = p.src + (unsigned long long)(b * p.sbs) * sizeof(R) * W;
}

// dst (column-major rows x cols, leading dimension rows, batch stride dbs) = P^T src:
// dst(i, j) = src(perm[i], j), perm from tm_la_pivots in p.aux (rows ints per batch
// entry). mode 4: P^T I, i.e. dst(i, j) = (perm[i] == j); src unused.
extern "C" __global__ void tm_la_permute(LaKernelParams p) {
  const R* s = (const R*)p.src;
  const int* perm = (const int*)p.aux;
  R* d = (R*)p.dst;
  const long long per = p.rows * p.cols, total = per * p.batch;
  for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
       idx += (long long)gridDim.x * blockDim.x) {
    const long long b = idx / per, r = idx - b * per, j = r / p.rows, i = r - j * p.rows;
    const long long pi = perm[b * p.rows + i];
    R re, im = 0;
    if (p.mode == 4) {
      re = pi == j ? (R)1 : (R)0;
    } else {
      const R* e = s + (b * p.sbs + pi + j * p.ld) * W;
      re = e[0];
      if (W == 2) im = e[W - 1];
    }
    R* o = d + (b * p.dbs + i + j * p.rows) * W;
    o[0] = re;
    if (W == 2) o[W - 1] = im;
  }
}

// lu_solve's pivots (src: 0-based ints, rows per batch entry, contiguous), checked and
// written 1-based to dst as ints (mode 0) or long longs (mode 1). Row i's pivot j must
// satisfy i <= j < rows (getrf never swaps with an earlier row); a bad one sets
// flags[b] |= 4 and is replaced by i + 1, so getrs never gets an out-of-range pivot.
extern "C" __global__ void tm_la_lu_pivots_in(LaKernelParams p) {
  const int* s = (const int*)p.src;
  int* flags = (int*)p.flags;
  const long long n = p.rows, total = n * p.batch;
  for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
       idx += (long long)gridDim.x * blockDim.x) {
    const long long b = idx / n, i = idx - b * n;
    long long j = s[idx];
    if (j < i || j >= n) {
      atomicOr(flags + b, 4);
      j = i;
    }
    if (p.mode == 1)
      ((long long*)p.dst)[idx] = j + 1;
    else
      ((int*)p.dst)[idx] = (int)(j + 1);
  }
}

// Complex right eigenvectors of a real general eigenproblem (real R; any W) from geev's
// packed real VR (src: column-major n x n, leading dimension ld, batch stride sbs) and
// the complex eigenvalues (aux: n interleaved (re, im) per batch entry, contiguous). A
// conjugate pair j, j + 1 comes with the positive imaginary part first; its vectors are
// v_j = VR(:, j) + i VR(:, j + 1) and v_{j+1} = conj(v_j). A real eigenvalue's vector is
// VR(:, j). dst: complex column-major n x n, leading dimension n, batch stride dbs.
extern "C" __global__ void tm_la_eig_vectors(LaKernelParams p) {
  const R* s = (const R*)p.src;
  const R* w = (const R*)p.aux;
  R* d = (R*)p.dst;
  const long long n = p.rows, per = n * n, total = per * p.batch;
  for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
       idx += (long long)gridDim.x * blockDim.x) {
    const long long b = idx / per, r = idx - b * per, j = r / n, i = r - j * n;
    const R wi = w[(b * n + j) * 2 + 1];
    const R* col = s + b * p.sbs + i;
    R re, im;
    if (wi > (R)0 && j + 1 < n) {         // first of a pair
      re = col[j * p.ld];
      im = col[(j + 1) * p.ld];
    } else if (wi < (R)0 && j > 0) {      // second of a pair: the conjugate of the first
      re = col[(j - 1) * p.ld];
      im = -col[j * p.ld];
    } else {                              // real eigenvalue
      re = col[j * p.ld];
      im = (R)0;
    }
    R* o = d + (b * p.dbs + i + j * n) * 2;
    o[0] = re;
    o[1] = im;
  }
}
)";

const char* kSvdSource = R"(
// One-sided (Hestenes) Jacobi SVD of a batch of small real matrices (m, n <= 32).
//
// Floor and prediction (512 x 32 x 32 float32, H100): a rotation of a column pair
// costs 3 dot products, the update of the two columns and of two columns of V:
// 18 m flops = 576 at m = n = 32, so 496 pairs make 0.29 Mflop a sweep. A host
// emulation of this kernel (same ordering, rotations and tolerances, NumPy) needed
// 8-9 sweeps for random 32 x 32 float32 (the last one only confirms), 9-10 for
// float64, and up to 14-19 for rank-deficient, cond-1e12 and graded ones: ~9 sweeps,
// 2.6 Mflop a matrix, 1.3 Gflop for the batch in float64 (40 us at 34 Tflop/s). What
// bounds it in practice is the float64 issue rate (64 lanes/clock/SM; each round a
// warp issues ~100 float64 instructions, the rotation's sqrt, division and rsqrt
// included; 4 warps a block, ~4 blocks an SM: ~800 clocks a round) over the round's
// latency (~400 clocks): 9 x 31 rounds x ~800 clocks = 0.13 ms, plus the pack and
// NaN-check kernels and the one host copy of the flags: predicted 0.15-0.2 ms
// (float64 ~0.2 ms; ill-conditioned inputs up to 2x), against gesvdjBatched's 0.78 ms.
//
// Layout: one thread block per matrix (grid-stride over the batch), the matrix P
// (M x N, M = max(m, n), N = min(m, n): A, or A^T when m < n) and V (N x N) in shared
// memory, column-major with leading dimension 32, in float64 (for float32 input too:
// the products of float32 values are exact, rotations lose nothing to float32
// rounding, and the tolerances can be met with room). The input is first scaled by a
// power of two so that its largest entry lies in [0.5, 1) (no overflow or underflow
// of squared norms), undone on the singular values.
//
// Sweeps: the columns are paired by the round-robin (circle) ordering, N/2 disjoint
// pairs (a dummy column for odd N) in each of N - 1 rounds; 8 lanes per pair (4 pairs
// a warp), each lane 4 rows. Each pair is rotated (the 2 x 2 symmetric Schur
// decomposition of its Gram matrix [al ga; ga be], smaller angle) whenever ga != 0;
// the sweep counts as active if |ga| > tol sqrt(al be). Stop after a sweep with no
// active pair; at the sweep cap, the matrix counts as converged only if every
// |cos| <= tol_accept, else info[b] = 1. Columns with squared norm <= 1e-150
// (relative to the scaled entries) are treated as zero.
//
// Then s_i = |p_i| sorted descending, U = P / s (the columns of zero singular
// values, and the m - n more of a full U, completed by orthonormalising the unit
// vector e_t with the smallest row norm of the columns already accepted, twice,
// classical Gram-Schmidt), V permuted alike, and the outputs written row-major: for
// m >= n, u = Q (m x m|k) and vh = V^T; for m < n, u = V (m x m) and vh = Q^T.
struct SvdParams {
  unsigned long long a, u, s, vh, flags, info;
  long long batch;
  int m, n, full, uv, max_sweeps, pad_;
  double tol, tol_accept;
};

#define SVD_LD 32  // leading dimension of the shared matrices
#define SVD_GL 8   // lanes per column pair
#define SVD_RL 4   // rows per lane (32 / SVD_GL)

extern "C" __global__ void __launch_bounds__(128) tm_la_svd_jacobi(SvdParams p) {
  __shared__ double G[SVD_LD * 32];  // P; after the sweeps V sorted
  __shared__ double V[SVD_LD * 32];
  __shared__ double H[SVD_LD * 32];  // Q: P's columns sorted and normalised, completed
  __shared__ double sig[32], sv[32], vec[32], red[4];
  __shared__ int perm[32];
  const double kTiny = 1e-150;       // squared column norms at or below: zero columns
  const double kTinyNorm = 1e-75;
  const unsigned kFull = 0xffffffffu;
  const int tid = threadIdx.x, T = blockDim.x, lane = tid & 31, warp = tid >> 5;
  const int l = tid % SVD_GL, pair = tid / SVD_GL, groups = T / SVD_GL;
  const bool tr = p.m < p.n, uv = p.uv != 0;
  const int M = tr ? p.n : p.m, N = tr ? p.m : p.n;
  const int Np = N + (N & 1), P = Np / 2;
  const int Qc = uv ? (p.full ? M : N) : 0;  // columns of Q wanted
  const int* flags = (const int*)p.flags;
  for (long long b = blockIdx.x; b < p.batch; b += gridDim.x) {
    if (flags[b]) continue;  // NaN/Inf: reported from tm_la_check's flag
    const R* a = (const R*)p.a + b * (long long)p.m * p.n;
    // Scale by 2^-ex, the largest |entry| then in [0.5, 1).
    double mx = 0.0;
    for (int e = tid; e < M * N; e += T) mx = fmax(mx, fabs((double)a[e]));
    for (int o = 16; o; o >>= 1) mx = fmax(mx, __shfl_xor_sync(kFull, mx, o));
    if (lane == 0) red[warp] = mx;
    __syncthreads();
    mx = 0.0;
    for (int w = 0; w < T / 32; ++w) mx = fmax(mx, red[w]);
    int ex = 0;
    (void)frexp(mx, &ex);
    for (int e = tid; e < M * N; e += T) {
      const int r = e % M, c = e / M;
      const long long idx = tr ? (long long)c + (long long)r * p.m : (long long)e;
      G[r + SVD_LD * c] = ldexp((double)a[idx], -ex);
    }
    if (uv)
      for (int e = tid; e < N * N; e += T) V[e % N + SVD_LD * (e / N)] = e % N == e / N ? 1.0 : 0.0;
    __syncthreads();

    bool done = false;
    for (int sweep = 0; sweep < p.max_sweeps && !done; ++sweep) {
      int active = 0, bad = 0;
      for (int rnd = 0; rnd < Np - 1; ++rnd) {
        int i = 0, j = 0;
        if (pair < P) {
          i = pair == 0 ? 0 : 1 + (pair - 1 + rnd) % (Np - 1);
          j = 1 + (Np - 2 - pair + rnd) % (Np - 1);
        }
        const bool go = pair < P && i < N && j < N;
        double xi[SVD_RL], xj[SVD_RL], al = 0.0, be = 0.0, ga = 0.0;
#pragma unroll
        for (int t = 0; t < SVD_RL; ++t) {
          const int r = l + SVD_GL * t;
          xi[t] = go && r < M ? G[r + SVD_LD * i] : 0.0;
          xj[t] = go && r < M ? G[r + SVD_LD * j] : 0.0;
          al = fma(xi[t], xi[t], al);
          be = fma(xj[t], xj[t], be);
          ga = fma(xi[t], xj[t], ga);
        }
        // Every lane of the group ends with the same sums (butterfly, commutative adds).
#pragma unroll
        for (int o = SVD_GL / 2; o; o >>= 1) {
          al += __shfl_xor_sync(kFull, al, o);
          be += __shfl_xor_sync(kFull, be, o);
          ga += __shfl_xor_sync(kFull, ga, o);
        }
        if (go && al > kTiny && be > kTiny && ga != 0.0) {
          const double g2 = ga * ga, ab = al * be;
          if (g2 > p.tol * p.tol * ab) active = 1;
          if (g2 > p.tol_accept * p.tol_accept * ab) bad = 1;
          // t = tan(theta) zeroes the off-diagonal c s (al - be) + (c^2 - s^2) ga.
          const double d = be - al, g = ga + ga;
          double t = g / (fabs(d) + sqrt(fma(d, d, g * g)));
          if (d < 0.0) t = -t;
          const double c = rsqrt(fma(t, t, 1.0)), s = c * t;
#pragma unroll
          for (int q = 0; q < SVD_RL; ++q) {
            const int r = l + SVD_GL * q;
            if (r < M) {
              G[r + SVD_LD * i] = c * xi[q] - s * xj[q];
              G[r + SVD_LD * j] = s * xi[q] + c * xj[q];
            }
            if (uv && r < N) {
              const double vi = V[r + SVD_LD * i], vj = V[r + SVD_LD * j];
              V[r + SVD_LD * i] = c * vi - s * vj;
              V[r + SVD_LD * j] = s * vi + c * vj;
            }
          }
        }
        __syncthreads();
      }
      if (!__syncthreads_or(active)) done = true;
      else if (sweep + 1 == p.max_sweeps && !__syncthreads_or(bad)) done = true;
    }
    if (!done && tid == 0) ((int*)p.info)[b] = 1;

    // Singular values: the column norms, then their descending order.
    for (int c0 = 0; c0 < N; c0 += groups) {
      const int c = c0 + pair;
      double ss = 0.0;
#pragma unroll
      for (int t = 0; t < SVD_RL; ++t) {
        const int r = l + SVD_GL * t;
        const double x = c < N && r < M ? G[r + SVD_LD * c] : 0.0;
        ss = fma(x, x, ss);
      }
#pragma unroll
      for (int o = SVD_GL / 2; o; o >>= 1) ss += __shfl_xor_sync(kFull, ss, o);
      if (l == 0 && c < N) sig[c] = sqrt(ss);
    }
    __syncthreads();
    if (tid < N) {
      const double x = sig[tid];
      int rk = 0;
      for (int c = 0; c < N; ++c) rk += sig[c] > x || (sig[c] == x && c < tid);
      perm[rk] = tid;
    }
    __syncthreads();
    if (tid < N) {
      sv[tid] = sig[perm[tid]];
      ((R*)p.s)[b * N + tid] = (R)ldexp(sig[perm[tid]], ex);
    }
    if (uv) {
      // H = Q: the columns in order, divided by their norms (zero columns: 0 for now).
      for (int e = tid; e < M * N; e += T) {
        const int r = e % M, c = e / M, pc = perm[c];
        const double x = sig[pc];
        H[r + SVD_LD * c] = x > kTinyNorm ? G[r + SVD_LD * pc] / x : 0.0;
      }
      __syncthreads();
      // G = V with its columns in the same order.
      for (int e = tid; e < N * N; e += T) {
        const int r = e % N, c = e / N;
        G[r + SVD_LD * c] = V[r + SVD_LD * perm[c]];
      }
      int acc = 0;
      for (int c = 0; c < N; ++c) acc += sv[c] > kTinyNorm;
      // Completion of Q's columns acc .. Qc - 1 (one warp; lanes over rows or columns).
      if (warp == 0) {
        for (int c = acc; c < Qc; ++c) {
          // e_t with t the row of least norm in Q(:, 0..c-1): |e_t - Q Q^T e_t|^2 =
          // 1 - |Q(t, :)|^2 >= 1 - c / M.
          double rn = 1e300;  // lanes past the rows: never the least
          if (lane < M) {
            rn = 0.0;
            for (int q = 0; q < c; ++q) rn = fma(H[lane + SVD_LD * q], H[lane + SVD_LD * q], rn);
          }
          int tl = lane;
          for (int o = 16; o; o >>= 1) {
            const double orn = __shfl_xor_sync(kFull, rn, o);
            const int otl = __shfl_xor_sync(kFull, tl, o);
            if (orn < rn || (orn == rn && otl < tl)) {
              rn = orn;
              tl = otl;
            }
          }
          double v = lane == tl ? 1.0 : 0.0;
          if (lane < M)
            for (int q = 0; q < c; ++q) v -= H[lane + SVD_LD * q] * H[tl + SVD_LD * q];
          // Again: v -= Q (Q^T v).
          vec[lane] = v;
          __syncwarp();
          double w = 0.0;
          if (lane < c)
            for (int r = 0; r < M; ++r) w = fma(H[r + SVD_LD * lane], vec[r], w);
          __syncwarp();
          vec[lane] = w;
          __syncwarp();
          if (lane < M)
            for (int q = 0; q < c; ++q) v -= H[lane + SVD_LD * q] * vec[q];
          double nn = lane < M ? v * v : 0.0;
          for (int o = 16; o; o >>= 1) nn += __shfl_xor_sync(kFull, nn, o);
          if (lane < M) H[lane + SVD_LD * c] = v * rsqrt(nn);
          __syncwarp();
        }
      }
      __syncthreads();
      R* u = (R*)p.u;
      R* vh = (R*)p.vh;
      if (!tr) {  // u (m x Qc) = Q, vh (n x n) = V^T
        const long long nu = (long long)p.m * Qc, nv = (long long)p.n * p.n;
        for (int e = tid; e < nu; e += T) {
          const int r = e / Qc, c = e % Qc;
          u[b * nu + e] = (R)H[r + SVD_LD * c];
        }
        for (int e = tid; e < nv; e += T) {
          const int r = e / p.n, c = e % p.n;
          vh[b * nv + e] = (R)G[c + SVD_LD * r];
        }
      } else {  // u (m x m) = V, vh (Qc x n) = Q^T
        const long long nu = (long long)p.m * p.m, nv = (long long)Qc * p.n;
        for (int e = tid; e < nu; e += T) {
          const int r = e / p.m, c = e % p.m;
          u[b * nu + e] = (R)G[r + SVD_LD * c];
        }
        for (int e = tid; e < nv; e += T) {
          const int r = e / p.n, c = e % p.n;
          vh[b * nv + e] = (R)H[c + SVD_LD * r];
        }
      }
    }
    __syncthreads();
  }
}
)";

const char* kScalarSource = R"(
// Scalar helpers of the one-warp kernels: T is the element type in the compute
// precision S (S for real, a pair of S for complex).
#if W == 1
typedef S T;
__device__ __forceinline__ T cj(T x) { return x; }
__device__ __forceinline__ S abs2(T x) { return x * x; }
__device__ __forceinline__ S re_(T x) { return x; }
__device__ __forceinline__ S im_(T x) { return (S)0; }
__device__ __forceinline__ T mk(S re, S im) { return re; }
__device__ __forceinline__ T recip(T x) { return (S)1 / x; }
__device__ __forceinline__ T sc(T x, S f) { return x * f; }
__device__ __forceinline__ T load(const R* p, long long i) { return (S)p[i]; }
__device__ __forceinline__ void store(R* p, long long i, T x) { p[i] = (R)x; }
__device__ __forceinline__ T scale2(T x, int e) { return ldexp(x, e); }
#else
struct T { S x, y; };
__device__ __forceinline__ T operator+(T a, T b) { return T{a.x + b.x, a.y + b.y}; }
__device__ __forceinline__ T operator-(T a, T b) { return T{a.x - b.x, a.y - b.y}; }
__device__ __forceinline__ T operator*(T a, T b) {
  return T{fma(a.x, b.x, -a.y * b.y), fma(a.x, b.y, a.y * b.x)};
}
__device__ __forceinline__ T cj(T a) { return T{a.x, -a.y}; }
__device__ __forceinline__ S abs2(T a) { return fma(a.x, a.x, a.y * a.y); }
__device__ __forceinline__ S re_(T a) { return a.x; }
__device__ __forceinline__ S im_(T a) { return a.y; }
__device__ __forceinline__ T mk(S re, S im) { return T{re, im}; }
__device__ __forceinline__ T recip(T a) {
  const S d = abs2(a);
  return T{a.x / d, -a.y / d};
}
__device__ __forceinline__ T load(const R* p, long long i) {
  return T{(S)p[2 * i], (S)p[2 * i + 1]};
}
__device__ __forceinline__ void store(R* p, long long i, T a) {
  p[2 * i] = (R)a.x;
  p[2 * i + 1] = (R)a.y;
}
__device__ __forceinline__ T sc(T a, S f) { return T{a.x * f, a.y * f}; }
__device__ __forceinline__ T scale2(T a, int e) { return T{ldexp(a.x, e), ldexp(a.y, e)}; }
#endif
)";

const char* kQrSource = R"(
// Householder QR of a batch of matrices held in shared memory, LAPACK's geqrf +
// orgqr/ungqr conventions (R's diagonal real, beta = -sign(Re alpha) |x|), one warp per
// matrix. The host routes matrices up to 32 x 32 here, and batches of taller ones
// whose A and Q fit in a block's shared memory (linalg.cpp, qr_small_fits).
//
// Floor (512 x 32 x 32): the factorisation and Q's accumulation are 4/3 n^3 + 4/3 n^3
// flops, 90 Mflop for the batch, nothing at the GPU's rate; what bounds it is each
// lane's chain of dependent shared-memory multiply-adds: about 3/2 n^2 for the
// factorisation and as many for Q (m n per column pair of a tall m x n matrix), with all
// 512 matrices resident at once (a block of one warp each). The per-entry cuSOLVER route
// (geqrf + orgqr per matrix) took ~0.1 ms per entry on the H100 (52-65 ms for 512 x 32 x
// 32); this kernel's call 0.12-0.17 ms for all of them.
//
// Layout (dynamic shared memory): A (m x n), then Q (m x qcols), column-major with an
// odd leading dimension ld = m | 1 (lanes reading one row of different columns hit
// different banks), then tau (k); in double precision (float32 input too: the
// products are exact and nothing is lost to float32 rounding before the result's).
// Lane l owns columns l, l + 32, ... The input is first scaled by a power of two so
// that its largest |re|, |im| lies in [0.5, 1) (no overflow or underflow in the
// norms), undone on R. For j = 0 .. k - 1: the owner of column j forms the reflector
// H_j = I - tau_j v_j v_j^H (v_j(j) = 1, v_j below the diagonal stored in A's column j,
// beta on the diagonal), then the owners of columns c > j apply H_j^H to them. Q = H_0
// ... H_{k-1} I(:, 0:qcols) by backward accumulation, each lane on its own columns of Q.
struct QrParams {
  unsigned long long a, q, r, flags;
  long long batch;
  int m, n, qcols, rrows;
};

extern "C" __global__ void __launch_bounds__(32) tm_la_qr_small(QrParams p) {
  extern __shared__ double qr_smem[];
  const unsigned kFull = 0xffffffffu;
  const int lane = threadIdx.x, m = p.m, n = p.n, k = m < n ? m : n, ld = m | 1;
  T* A = (T*)qr_smem;
  T* Q = A + (long long)ld * n;
  T* tau = Q + (long long)ld * p.qcols;
  const int* flags = (const int*)p.flags;
  for (long long b = blockIdx.x; b < p.batch; b += gridDim.x) {
    if (flags[b]) continue;  // NaN/Inf: reported from tm_la_check's flag
    const R* a = (const R*)p.a + b * (long long)m * n * W;
    double mx = 0.0;
    for (int c = lane; c < n; c += 32)
      for (int r = 0; r < m; ++r) {
        const T x = load(a, r + (long long)m * c);
        mx = fmax(mx, fmax(fabs(re_(x)), fabs(im_(x))));
        A[r + ld * c] = x;
      }
    for (int o = 16; o; o >>= 1) mx = fmax(mx, __shfl_xor_sync(kFull, mx, o));
    int ex = 0;
    if (mx > 0.0) (void)frexp(mx, &ex);
    for (int c = lane; c < n; c += 32)
      for (int r = 0; r < m; ++r) A[r + ld * c] = scale2(A[r + ld * c], -ex);
    __syncwarp();
    for (int j = 0; j < k; ++j) {
      if (lane == (j & 31)) {  // the reflector of column j (LAPACK's larfg)
        T* aj = A + ld * j;
        const T alpha = aj[j];
        double xn = 0.0;
        for (int r = j + 1; r < m; ++r) xn += abs2(aj[r]);
        T t = mk(0.0, 0.0);
        if (xn != 0.0 || im_(alpha) != 0.0) {
          const double beta = -copysign(sqrt(abs2(alpha) + xn), re_(alpha));
          t = mk((beta - re_(alpha)) / beta, -im_(alpha) / beta);
          const T s = recip(alpha - mk(beta, 0.0));
          for (int r = j + 1; r < m; ++r) aj[r] = s * aj[r];
          aj[j] = mk(beta, 0.0);
        }
        tau[j] = t;
      }
      __syncwarp();
      const T* v = A + ld * j;
      const T tj = cj(tau[j]);
      for (int c = lane; c < n; c += 32) {  // A(j:m, c) <- H_j^H A(j:m, c), c > j
        if (c <= j) continue;
        T* ac = A + ld * c;
        T w = ac[j];
        for (int r = j + 1; r < m; ++r) w = w + cj(v[r]) * ac[r];
        w = tj * w;
        ac[j] = ac[j] - w;
        for (int r = j + 1; r < m; ++r) ac[r] = ac[r] - v[r] * w;
      }
      __syncwarp();
    }
    // R (rrows x n, row-major): the upper triangle, scaled back.
    R* rout = (R*)p.r + b * (long long)p.rrows * n * W;
    for (int c = lane; c < n; c += 32)
      for (int i = 0; i < p.rrows; ++i)
        store(rout, (long long)i * n + c, i <= c ? scale2(A[i + ld * c], ex) : mk(0.0, 0.0));
    // Q(:, c) = H_0 ... H_{k-1} e_c (rows j.. of e_c are zero for c < j: H_j leaves it).
    for (int c = lane; c < p.qcols; c += 32) {
      T* qc = Q + ld * c;
      for (int r = 0; r < m; ++r) qc[r] = mk(r == c ? 1.0 : 0.0, 0.0);
      for (int j = (c < k ? c : k - 1); j >= 0; --j) {
        const T* v = A + ld * j;
        T w = qc[j];
        for (int r = j + 1; r < m; ++r) w = w + cj(v[r]) * qc[r];
        w = tau[j] * w;
        qc[j] = qc[j] - w;
        for (int r = j + 1; r < m; ++r) qc[r] = qc[r] - v[r] * w;
      }
      R* q = (R*)p.q + b * (long long)m * p.qcols * W;
      for (int r = 0; r < m; ++r) store(q, (long long)r * p.qcols + c, qc[r]);
    }
    __syncwarp();
  }
}
)";
// The element type R and its width W (1 real, 2 complex) for the kernels' sources.
std::string element_head(DType dt, const char* what) {
  switch (dt) {
    case DType::Float32: return "typedef float R;\n#define W 1\n";
    case DType::Float64: return "typedef double R;\n#define W 1\n";
    case DType::Complex64: return "typedef float R;\n#define W 2\n";
    case DType::Complex128: return "typedef double R;\n#define W 2\n";
    default:
      throw DTypeError(std::string(what) + " for dtype " + std::string(dtype_name(dt)));
  }
}


const char* kCholSource = R"(
// Cholesky factorisation (lower, LAPACK's potrf semantics) of a batch of Hermitian
// matrices up to 32 x 32, one warp per matrix, in the input's precision. One launch
// reads the input's lower triangle (row-major contiguous, or column-major packed),
// checks it for NaN/Inf (flags[b] = 1, the matrix skipped), factors it and writes L
// or U = L^H row-major; info[b] = j + 1 when the leading minor of order j + 1 is not
// positive definite (its pivot <= 0 or NaN), as potrf's info.
//
// Floor (512 x 32 x 32): n^3 / 3 = 11 kflop a matrix, 5.6 Mflop the batch, nothing;
// each lane (a row of L) runs ~n^2 / 2 independent shared-memory multiply-adds, a few
// microseconds a matrix, all 512 matrices resident at once. What it replaces: the
// packing, NaN-check, pointer-array and unpacking launches around potrfBatched.
struct CholParams {
  unsigned long long a, out, flags, info;
  long long batch;
  int n, colmajor, upper, pad_;
};

#define CH_LD 33

extern "C" __global__ void __launch_bounds__(32) tm_la_cholesky_small(CholParams p) {
  __shared__ T L[CH_LD * 32];
  const int lane = threadIdx.x, n = p.n;
  int* flags = (int*)p.flags;
  int* info = (int*)p.info;
  for (long long b = blockIdx.x; b < p.batch; b += gridDim.x) {
    const R* a = (const R*)p.a + b * (long long)n * n * W;
    // Lane c loads column c of the lower triangle (coalesced along rows when row-major).
    bool bad = false;
    for (int r = 0; r < n; ++r)
      if (lane < n && r >= lane) {
        const T x = load(a, p.colmajor ? r + (long long)n * lane : (long long)r * n + lane);
        bad |= !isfinite(re_(x)) || !isfinite(im_(x));
        L[r + CH_LD * lane] = x;
      }
    if (__any_sync(0xffffffffu, bad)) {
      if (lane == 0) flags[b] = 1;
      continue;
    }
    __syncwarp();
    // Right-looking, lane r owns row r of L.
    int fail = 0;
    for (int j = 0; j < n; ++j) {
      S d = (S)0;
      if (lane == j) d = re_(L[j + CH_LD * j]);
      d = __shfl_sync(0xffffffffu, d, j);
      if (!(d > (S)0)) {  // not positive, or NaN
        fail = j + 1;
        break;
      }
      const S ljj = sqrt(d), inv = (S)1 / ljj;
      if (lane == j) L[j + CH_LD * j] = mk(ljj, (S)0);
      if (lane > j && lane < n) L[lane + CH_LD * j] = sc(L[lane + CH_LD * j], inv);
      __syncwarp();
      if (lane > j && lane < n) {
        const T lr = L[lane + CH_LD * j];
        for (int c = j + 1; c <= lane; ++c)
          L[lane + CH_LD * c] = L[lane + CH_LD * c] - lr * cj(L[c + CH_LD * j]);
      }
      __syncwarp();
    }
    if (fail) {
      if (lane == 0) info[b] = fail;
      continue;
    }
    // out(i, j) row-major: L(i, j) for j <= i, or U(i, j) = conj(L(j, i)) for j >= i.
    R* o = (R*)p.out + b * (long long)n * n * W;
    if (lane < n)
      for (int i = 0; i < n; ++i) {
        T v = mk((S)0, (S)0);
        if (!p.upper && lane <= i) v = L[i + CH_LD * lane];
        if (p.upper && lane >= i) v = cj(L[lane + CH_LD * i]);
        store(o, (long long)i * n + lane, v);
      }
    __syncwarp();
  }
}
)";

const char* kLuSolveSource = R"(
// lu_solve (getrs's semantics, no transpose) of a batch of systems with n <= 32 from
// lu_factor's packed factors and 0-based pivots, one warp per entry, in the input's
// precision. One launch checks the pivots (row i's in [i, n): flags |= 4), A and B for
// NaN/Inf (flags |= 1) and U's diagonal for exact zeros (flags |= 2), and solves the
// entries with no flag: P^T, then L (unit) and U substitutions. LU and the pivots sit
// in shared memory (every lane reads the same element: broadcasts); lane l solves the
// right-hand-side columns l, l + 32, ... in its own column of a shared scratch.
// Replaces the pivot copy and check, two packs, two NaN checks, two pointer arrays,
// getrsBatched and the unpack (about ten launches).
struct LuSolveParams {
  unsigned long long a, piv, b, x, flags;
  long long batch;
  int n, k, a_colmajor, b_colmajor;
};

#define LS_LD 33

extern "C" __global__ void __launch_bounds__(32) tm_la_lu_solve_small(LuSolveParams p) {
  __shared__ T L[LS_LD * 32];
  __shared__ T X[LS_LD * 32];
  __shared__ int piv[32];
  const int lane = threadIdx.x, n = p.n, k = p.k;
  int* flags = (int*)p.flags;
  for (long long b = blockIdx.x; b < p.batch; b += gridDim.x) {
    const R* a = (const R*)p.a + b * (long long)n * n * W;
    const R* bb = (const R*)p.b + b * (long long)n * k * W;
    int f = 0;
    if (lane < n) {
      const int j = ((const int*)p.piv)[b * n + lane];
      if (j < lane || j >= n) f |= 4;
      piv[lane] = j;
      for (int r = 0; r < n; ++r) {  // lane owns column `lane` of LU
        const T v = load(a, p.a_colmajor ? r + (long long)n * lane : (long long)r * n + lane);
        if (!isfinite(re_(v)) || !isfinite(im_(v))) f |= 1;
        if (r == lane && re_(v) == (S)0 && im_(v) == (S)0) f |= 2;
        L[r + LS_LD * lane] = v;
      }
    }
    for (int c = lane; c < k; c += 32)
      for (int r = 0; r < n; ++r) {
        const T v = load(bb, p.b_colmajor ? r + (long long)n * c : (long long)r * k + c);
        if (!isfinite(re_(v)) || !isfinite(im_(v))) f |= 1;
      }
    for (int o = 16; o; o >>= 1) f |= __shfl_xor_sync(0xffffffffu, f, o);
    if (f) {
      if (lane == 0) flags[b] = f;
      continue;
    }
    __syncwarp();
    R* xo = (R*)p.x + b * (long long)n * k * W;
    for (int c0 = 0; c0 < k; c0 += 32) {
      const int c = c0 + lane;
      if (c < k) {
        T* x = X + LS_LD * lane;
        for (int r = 0; r < n; ++r)
          x[r] = load(bb, p.b_colmajor ? r + (long long)n * c : (long long)r * k + c);
        for (int i = 0; i < n; ++i) {  // P^T: the interchanges in order
          const int j = piv[i];
          if (j != i) {
            const T t = x[i];
            x[i] = x[j];
            x[j] = t;
          }
        }
        for (int i = 1; i < n; ++i) {  // L y = P^T b, unit diagonal
          T s = x[i];
          for (int j = 0; j < i; ++j) s = s - L[i + LS_LD * j] * x[j];
          x[i] = s;
        }
        for (int i = n - 1; i >= 0; --i) {  // U x = y
          T s = x[i];
          for (int j = i + 1; j < n; ++j) s = s - L[i + LS_LD * j] * x[j];
          x[i] = s * recip(L[i + LS_LD * i]);
        }
        for (int r = 0; r < n; ++r) store(xo, (long long)r * k + c, x[r]);
      }
    }
    __syncwarp();
  }
}
)";
}  // namespace

ProgramSource linalg_kernels(DType dt) {
  const std::string head = element_head(dt, "[linalg] no cuda helper kernels");
  ProgramSource p;
  p.name = "linalg_" + std::string(dtype_name(dt));
  p.source = head + kSource;
  p.kernels = {"tm_la_unpack", "tm_la_check", "tm_la_eig_vectors", "tm_la_pivots",
               "tm_la_permute", "tm_la_pointers", "tm_la_lu_pivots_in"};
  return p;
}

ProgramSource svd_jacobi_kernel(DType dt) {
  std::string head;
  switch (dt) {
    case DType::Float32: head = "typedef float R;\n"; break;
    case DType::Float64: head = "typedef double R;\n"; break;
    default:
      throw DTypeError("[svd] no cuda Jacobi SVD kernel for dtype " +
                       std::string(dtype_name(dt)));
  }
  ProgramSource p;
  p.name = "linalg_svd_" + std::string(dtype_name(dt));
  p.source = head + kSvdSource;
  p.kernels = {"tm_la_svd_jacobi"};
  return p;
}

namespace {
// A program of one one-warp kernel: the element type, the compute precision S, the
// scalar helpers and the kernel's source.
ProgramSource one_warp_program(DType dt, const char* name, const char* what, const char* s_type,
                               const char* source, const char* kernel) {
  ProgramSource p;
  p.name = std::string(name) + "_" + std::string(dtype_name(dt));
  p.source = element_head(dt, what) + "typedef " + s_type + " S;\n" + kScalarSource + source;
  p.kernels = {kernel};
  return p;
}
// Program cache keys: top byte 0x4c ('L'), outside gen::Family's range so no clash with
// its keys; the program's number in the next byte (0 the helper kernels).
uint64_t program_key(uint64_t number, DType dt) {
  return (uint64_t{0x4c} << 56) | (number << 48) | static_cast<uint64_t>(dt);
}
}  // namespace

ProgramSource qr_small_kernel(DType dt) {
  return one_warp_program(dt, "linalg_qr", "[qr] no cuda small-matrix QR kernel", "double",
                          kQrSource, "tm_la_qr_small");
}
ProgramSource cholesky_small_kernel(DType dt) {
  return one_warp_program(dt, "linalg_cholesky", "[cholesky] no cuda small-matrix Cholesky kernel",
                          "R", kCholSource, "tm_la_cholesky_small");
}
ProgramSource lu_solve_small_kernel(DType dt) {
  return one_warp_program(dt, "linalg_lu_solve", "[lu_solve] no cuda small-matrix solve kernel",
                          "R", kLuSolveSource, "tm_la_lu_solve_small");
}
uint64_t qr_small_kernel_key(DType dt) { return program_key(2, dt); }
uint64_t cholesky_small_kernel_key(DType dt) { return program_key(3, dt); }
uint64_t lu_solve_small_kernel_key(DType dt) { return program_key(4, dt); }

uint64_t svd_jacobi_kernel_key(DType dt) { return program_key(1, dt); }

uint64_t linalg_kernels_key(DType dt) { return program_key(0, dt); }

}  // namespace tmath::cuda
