// Batched matmul through cublasGemmStridedBatchedEx (integer and bool dtypes: a
// plain NVRTC kernel with exact accumulation in the dtype, as on the CPU).
//
// Row-major C = A B is computed as column-major C^T = B^T A^T, so a row-major
// operand with unit column stride is passed untransposed with its row stride
// as leading dimension, and a column-major view (unit row stride) is passed
// transposed. Batch dims of a, b and out are merged where they allow one
// uniform stride (broadcast dims have stride 0); any remaining outer batch
// dims are looped on the host. Operands that BLAS cannot address (e.g. zero
// or non-unit strides in both matrix dims) are first copied to contiguous
// memory with the copy kernel.
//
// Precision: float32 highest = CUBLAS_COMPUTE_32F, high = TF32 tensor cores,
// medium = bf16 tensor cores; float16/bfloat16 inputs accumulate in float32;
// float64/complex128 in double.
#include <cuComplex.h>

#include <algorithm>
#include <climits>
#include <string>
#include <vector>

#include "backend/cuda/codegen.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/params.h"
#include "tmath/error.h"

namespace tmath::cuda {
namespace {

// (transposed, leading dim) of a (rows x cols) operand with strides (rs, cs), as
// BLAS sees the row-major matrix; false when it must be packed first.
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

struct GemmTypes {
  cudaDataType_t data;
  cublasComputeType_t compute;
  int scale;  // 0 float, 1 double, 2 complex float, 3 complex double
};

GemmTypes gemm_types(DType dt, MatmulPrecision prec) {
  switch (dt) {
    case DType::Float32: {
      cublasComputeType_t c = CUBLAS_COMPUTE_32F;
      if (prec == MatmulPrecision::High) c = CUBLAS_COMPUTE_32F_FAST_TF32;
      if (prec == MatmulPrecision::Medium) c = CUBLAS_COMPUTE_32F_FAST_16BF;
      return {CUDA_R_32F, c, 0};
    }
    case DType::Float64:
      return {CUDA_R_64F, CUBLAS_COMPUTE_64F, 1};
    case DType::Float16:
      return {CUDA_R_16F, CUBLAS_COMPUTE_32F, 0};
    case DType::BFloat16:
      return {CUDA_R_16BF, CUBLAS_COMPUTE_32F, 0};
    case DType::Complex64:
      return {CUDA_C_32F, CUBLAS_COMPUTE_32F, 2};
    case DType::Complex128:
      return {CUDA_C_64F, CUBLAS_COMPUTE_64F, 3};
    default:
      throw DTypeError("[matmul] the cuda backend has no matmul for dtype " +
                       std::string(dtype_name(dt)));
  }
}

int to_int(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX)
    throw ValueError(std::string("[matmul] ") + what + " " + std::to_string(v) +
                     " exceeds the cuBLAS limit of " + std::to_string(INT_MAX));
  return static_cast<int>(v);
}

struct BatchDim {
  int64_t size, sa, sb, sc;
};

// Integers and bool: a plain kernel, one thread per output element.
void int_matmul(DeviceContext& dc, const ArrayRef& a, const ArrayRef& b, const ArrayRef& out) {
  const int nd = out.ndim();
  MmParams p{};
  p.a = reinterpret_cast<unsigned long long>(a.data);
  p.b = reinterpret_cast<unsigned long long>(b.data);
  p.out = reinterpret_cast<unsigned long long>(out.data);
  p.m = out.shape[nd - 2];
  p.n = out.shape[nd - 1];
  p.k = a.shape[nd - 1];
  p.ars = a.strides[nd - 2];
  p.acs = a.strides[nd - 1];
  p.brs = b.strides[nd - 2];
  p.bcs = b.strides[nd - 1];
  p.total = out.size();
  for (int d = 0; d < nd - 2; ++d) {
    if (out.shape[d] == 1) continue;
    const auto i = static_cast<size_t>(p.nb);
    if (i > 0 && p.astride[i - 1] == a.strides[d] * out.shape[d] &&
        p.bstride[i - 1] == b.strides[d] * out.shape[d]) {
      p.bshape[i - 1] *= out.shape[d];
      p.astride[i - 1] = a.strides[d];
      p.bstride[i - 1] = b.strides[d];
      continue;
    }
    if (p.nb == TM_MAXD)
      throw UnsupportedError("[matmul] the cuda kernel takes at most " + std::to_string(TM_MAXD) +
                             " batch dims after merging");
    p.bshape[i] = out.shape[d];
    p.astride[i] = a.strides[d];
    p.bstride[i] = b.strides[d];
    ++p.nb;
  }
  const Program& prog = dc.program(
      gen::key(gen::Family::IntMatmul, static_cast<uint32_t>(out.dtype)),
      [&] { return gen::int_matmul(out.dtype); }, "matmul");
  launch("matmul", prog[0], grid_for(dc, p.total), 1, kThreads, 0, dc.stream(), p);
}

}  // namespace

bool matmul_supported(DType) {
  return true;
}

void matmul(DeviceContext& dc, const ArrayRef& a_in, const ArrayRef& b_in, const ArrayRef& out,
            const MatmulOptions& opts) {
  const int nd = out.ndim();
  if (nd < 2 || a_in.ndim() != nd || b_in.ndim() != nd)
    throw ShapeError("[matmul] cuda kernel expects operands of equal rank >= 2");
  if (a_in.dtype != out.dtype || b_in.dtype != out.dtype)
    throw DTypeError("[matmul] operands and output must share a dtype");
  const int64_t m = out.shape[nd - 2], n = out.shape[nd - 1], k = a_in.shape[nd - 1];
  const int64_t total = out.size();
  if (total == 0) return;
  if (out.dtype == DType::Bool || is_integral(out.dtype)) return int_matmul(dc, a_in, b_in, out);
  const GemmTypes gt = gemm_types(out.dtype, opts.precision);
  const size_t isz = itemsize(out.dtype);
  if (k == 0) {
    TM_CUDA("matmul", cudaMemsetAsync(out.data, 0, static_cast<size_t>(total) * isz, dc.stream()));
    return;
  }

  // Operands BLAS cannot address are packed to contiguous memory first.
  std::vector<std::unique_ptr<DeviceContext::Scratch>> packed;
  std::vector<std::vector<int64_t>> packed_strides;
  packed_strides.reserve(2);  // ArrayRefs below point into these vectors
  auto usable = [&](const ArrayRef& x, int64_t rows, int64_t cols, bool& trans, int64_t& ld) {
    return blas_layout(x.strides[nd - 2], x.strides[nd - 1], rows, cols, trans, ld);
  };
  auto pack = [&](const ArrayRef& x) {
    std::vector<int64_t> st(static_cast<size_t>(nd));
    int64_t s = 1;
    for (int d = nd - 1; d >= 0; --d) {
      st[static_cast<size_t>(d)] = s;
      s *= x.shape[d];
    }
    packed.push_back(std::make_unique<DeviceContext::Scratch>(dc, static_cast<size_t>(s) * isz));
    packed_strides.push_back(std::move(st));
    ArrayRef c{packed.back()->get(), x.dtype, x.shape, packed_strides.back(), x.device};
    copy(dc, x, c, "matmul");
    return c;
  };
  bool ta = false, tb = false;
  int64_t lda = 0, ldb = 0;
  ArrayRef a = a_in, b = b_in;
  if (!usable(a, m, k, ta, lda)) {
    a = pack(a_in);
    usable(a, m, k, ta, lda);
  }
  if (!usable(b, k, n, tb, ldb)) {
    b = pack(b_in);
    usable(b, k, n, tb, ldb);
  }

  // Batch dims, merged where all three operands allow one stride.
  std::vector<BatchDim> dims;
  {
    std::vector<int64_t> oc(static_cast<size_t>(nd));
    int64_t s = 1;
    for (int d = nd - 1; d >= 0; --d) {
      oc[static_cast<size_t>(d)] = s;
      s *= out.shape[d];
    }
    for (int d = 0; d < nd - 2; ++d) {
      if (out.shape[d] == 1) continue;
      BatchDim bd{out.shape[d], a.strides[d], b.strides[d], oc[static_cast<size_t>(d)]};
      if (!dims.empty()) {
        BatchDim& p = dims.back();
        if (p.sa == bd.sa * bd.size && p.sb == bd.sb * bd.size && p.sc == bd.sc * bd.size) {
          p = {p.size * bd.size, bd.sa, bd.sb, bd.sc};
          continue;
        }
      }
      dims.push_back(bd);
    }
  }
  BatchDim inner{1, 0, 0, m * n};
  if (!dims.empty()) {
    inner = dims.back();
    dims.pop_back();
  }

  cublasHandle_t h = dc.blas("matmul");
  std::lock_guard<std::mutex> blas_lock(dc.blas_mutex());
  const float one_f = 1.0f, zero_f = 0.0f;
  const double one_d = 1.0, zero_d = 0.0;
  const cuComplex one_c = make_cuComplex(1.0f, 0.0f), zero_c = make_cuComplex(0.0f, 0.0f);
  const cuDoubleComplex one_z = make_cuDoubleComplex(1.0, 0.0),
                        zero_z = make_cuDoubleComplex(0.0, 0.0);
  const void* alpha = gt.scale == 0   ? static_cast<const void*>(&one_f)
                      : gt.scale == 1 ? static_cast<const void*>(&one_d)
                      : gt.scale == 2 ? static_cast<const void*>(&one_c)
                                      : static_cast<const void*>(&one_z);
  const void* beta = gt.scale == 0   ? static_cast<const void*>(&zero_f)
                     : gt.scale == 1 ? static_cast<const void*>(&zero_d)
                     : gt.scale == 2 ? static_cast<const void*>(&zero_c)
                                     : static_cast<const void*>(&zero_z);
  const int M = to_int(n, "dimension"), N = to_int(m, "dimension"), K = to_int(k, "dimension");
  const int LDA = to_int(ldb, "leading dimension"), LDB = to_int(lda, "leading dimension");
  const int LDC = std::max(1, M);
  const int count = to_int(inner.size, "batch count");

  int64_t outer = 1;
  for (const auto& d : dims) outer *= d.size;
  std::vector<int64_t> idx(dims.size(), 0);
  for (int64_t o = 0; o < outer; ++o) {
    int64_t oa = 0, ob = 0, oc = 0;
    for (size_t d = 0; d < dims.size(); ++d) {
      oa += idx[d] * dims[d].sa;
      ob += idx[d] * dims[d].sb;
      oc += idx[d] * dims[d].sc;
    }
    const char* pa = static_cast<const char*>(a.data) + oa * static_cast<int64_t>(isz);
    const char* pb = static_cast<const char*>(b.data) + ob * static_cast<int64_t>(isz);
    char* pc = static_cast<char*>(out.data) + oc * static_cast<int64_t>(isz);
    const cublasOperation_t opa = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t opb = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (count == 1) {  // a single product: the plain GEMM entry point
      TM_CUBLAS("matmul",
                cublasGemmEx(h, opa, opb, M, N, K, alpha, pb, gt.data, LDA, pa, gt.data, LDB, beta,
                             pc, gt.data, LDC, gt.compute, CUBLAS_GEMM_DEFAULT));
    } else {
      TM_CUBLAS("matmul",
                cublasGemmStridedBatchedEx(h, opa, opb, M, N, K, alpha, pb, gt.data, LDA, inner.sb,
                                           pa, gt.data, LDB, inner.sa, beta, pc, gt.data, LDC,
                                           inner.sc, count, gt.compute, CUBLAS_GEMM_DEFAULT));
    }
    for (int d = static_cast<int>(dims.size()) - 1; d >= 0; --d) {
      if (++idx[static_cast<size_t>(d)] < dims[static_cast<size_t>(d)].size) break;
      idx[static_cast<size_t>(d)] = 0;
    }
  }
}

}  // namespace tmath::cuda
