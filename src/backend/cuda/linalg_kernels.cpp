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
}  // namespace

ProgramSource linalg_kernels(DType dt) {
  std::string head;
  switch (dt) {
    case DType::Float32: head = "typedef float R;\n#define W 1\n"; break;
    case DType::Float64: head = "typedef double R;\n#define W 1\n"; break;
    case DType::Complex64: head = "typedef float R;\n#define W 2\n"; break;
    case DType::Complex128: head = "typedef double R;\n#define W 2\n"; break;
    default:
      throw DTypeError("[linalg] no cuda helper kernels for dtype " +
                       std::string(dtype_name(dt)));
  }
  ProgramSource p;
  p.name = "linalg_" + std::string(dtype_name(dt));
  p.source = head + kSource;
  p.kernels = {"tm_la_unpack", "tm_la_check", "tm_la_eig_vectors"};
  return p;
}

uint64_t linalg_kernels_key(DType dt) {
  // Top byte 0x4c ('L'): outside gen::Family's range, so no clash with its keys.
  return (uint64_t{0x4c} << 56) | static_cast<uint64_t>(dt);
}

}  // namespace tmath::cuda
