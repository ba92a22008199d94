// Batched matmul through cuBLASLt with cached plans for float16, bfloat16, float32
// and float64, and through cublasGemmEx / cublasGemmStridedBatchedEx for complex
// dtypes and whatever cuBLASLt's heuristic rejects (integer and bool dtypes: a
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
#include <cublasLt.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
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

// One product (or strided batch of products) in cuBLAS's column-major terms:
// C = op(A) op(B) with A = the engine's b and B = the engine's a (row-major
// C = A B is column-major C^T = B^T A^T). Strides are in elements.
struct Gemm {
  cublasOperation_t opa, opb;
  int M, N, K, LDA, LDB, LDC, count;
  int64_t sa, sb, sc;  // batch strides of cuBLAS's A, B, C
  const char* A;
  const char* B;
  char* C;
  int64_t isz;
};

// Calls f(A, B, C) with the base pointers of every product group; the batch dims in
// `dims` (engine order: sa = engine a = cuBLAS B) are looped on the host.
template <class F>
void for_each_outer(const Gemm& g, const std::vector<BatchDim>& dims, F&& f) {
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
    f(g.A + ob * g.isz, g.B + oa * g.isz, g.C + oc * g.isz);
    for (int d = static_cast<int>(dims.size()) - 1; d >= 0; --d) {
      if (++idx[static_cast<size_t>(d)] < dims[static_cast<size_t>(d)].size) break;
      idx[static_cast<size_t>(d)] = 0;
    }
  }
}

struct Scalars {
  float one_f = 1.0f, zero_f = 0.0f;
  double one_d = 1.0, zero_d = 0.0;
  cuComplex one_c = make_cuComplex(1.0f, 0.0f), zero_c = make_cuComplex(0.0f, 0.0f);
  cuDoubleComplex one_z = make_cuDoubleComplex(1.0, 0.0), zero_z = make_cuDoubleComplex(0.0, 0.0);
  const void* one(int scale) const {
    return scale == 0   ? static_cast<const void*>(&one_f)
           : scale == 1 ? static_cast<const void*>(&one_d)
           : scale == 2 ? static_cast<const void*>(&one_c)
                        : static_cast<const void*>(&one_z);
  }
  const void* zero(int scale) const {
    return scale == 0   ? static_cast<const void*>(&zero_f)
           : scale == 1 ? static_cast<const void*>(&zero_d)
           : scale == 2 ? static_cast<const void*>(&zero_c)
                        : static_cast<const void*>(&zero_z);
  }
};

// The cuBLAS path: cublasGemmEx per product, cublasGemmStridedBatchedEx per batch.
void gemm_ex(DeviceContext& dc, const GemmTypes& gt, const Gemm& g,
             const std::vector<BatchDim>& dims) {
  cublasHandle_t h = dc.blas("matmul");
  std::lock_guard<std::mutex> blas_lock(dc.blas_mutex());
  TM_CUBLAS("matmul", cublasSetStream(h, dc.stream()));  // the recording stream while capturing
  // ... and the workspace of the recording's lane (cublasSetStream resets it to the default).
  TM_CUBLAS("matmul", cublasSetWorkspace(h, dc.blas_workspace(), dc.blas_workspace_size()));
  const Scalars sc;
  const void* alpha = sc.one(gt.scale);
  const void* beta = sc.zero(gt.scale);
  for_each_outer(g, dims, [&](const char* pa, const char* pb, char* pc) {
    if (g.count == 1) {  // a single product: the plain GEMM entry point
      TM_CUBLAS("matmul",
                cublasGemmEx(h, g.opa, g.opb, g.M, g.N, g.K, alpha, pa, gt.data, g.LDA, pb, gt.data,
                             g.LDB, beta, pc, gt.data, g.LDC, gt.compute, CUBLAS_GEMM_DEFAULT));
    } else {
      TM_CUBLAS("matmul",
                cublasGemmStridedBatchedEx(h, g.opa, g.opb, g.M, g.N, g.K, alpha, pa, gt.data,
                                           g.LDA, g.sa, pb, gt.data, g.LDB, g.sb, beta, pc, gt.data,
                                           g.LDC, g.sc, g.count, gt.compute, CUBLAS_GEMM_DEFAULT));
    }
  });
}

// ---- cuBLASLt path -------------------------------------------------------------------
//
// cublasGemmEx spends most of a small product's host time choosing an algorithm.
// Real dtypes go through cublasLtMatmul instead, with the descriptors and the
// algorithm of each configuration built once and kept in the context's LRU plan
// cache. Complex dtypes, negative batch strides and configurations the heuristic
// (or the chosen algorithm) rejects take the cuBLAS path above.

bool lt_dtype(DType dt) {
  return dt == DType::Float32 || dt == DType::Float64 || dt == DType::Float16 ||
         dt == DType::BFloat16;
}

// Largest power of two <= 16 dividing `bits` (an OR of addresses and byte strides).
uint32_t align16(uint64_t bits) {
  bits |= 16;
  return static_cast<uint32_t>(bits & (~bits + 1));
}

template <class T>
void set_desc(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, T v) {
  TM_CUBLAS("matmul", cublasLtMatmulDescSetAttribute(d, attr, &v, sizeof(v)));
}
template <class T>
void set_layout(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t attr, T v) {
  TM_CUBLAS("matmul", cublasLtMatrixLayoutSetAttribute(l, attr, &v, sizeof(v)));
}
template <class T>
void set_pref(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attr, T v) {
  TM_CUBLAS("matmul", cublasLtMatmulPreferenceSetAttribute(p, attr, &v, sizeof(v)));
}

// Which split-K reduction schemes the heuristic may pick: TMATH_CUDA_LT_SPLITK=inplace
// keeps the partial sums in the output buffer (no separate reduction kernel), =none
// allows no split-K; unset, any (for comparisons of kernel counts and times).
uint32_t lt_reduction_mask() {
  static const uint32_t mask = [] {
    const char* e = std::getenv("TMATH_CUDA_LT_SPLITK");
    const std::string v = e ? e : "";
    if (v == "inplace") return static_cast<uint32_t>(CUBLASLT_REDUCTION_SCHEME_INPLACE);
    if (v == "none") return static_cast<uint32_t>(CUBLASLT_REDUCTION_SCHEME_NONE);
    return static_cast<uint32_t>(CUBLASLT_REDUCTION_SCHEME_MASK);
  }();
  return mask;
}

// Descriptors for `key` and the heuristic's first algorithm; usable == false (and no
// descriptors) when it offers none.
std::unique_ptr<LtMatmulPlan> make_plan(cublasLtHandle_t lt, size_t workspace,
                                        const LtMatmulKey& key, const GemmTypes& gt) {
  auto plan = std::make_unique<LtMatmulPlan>();
  const cudaDataType_t scale = gt.scale == 1 ? CUDA_R_64F : CUDA_R_32F;
  TM_CUBLAS("matmul", cublasLtMatmulDescCreate(
                          &plan->desc, static_cast<cublasComputeType_t>(key.compute), scale));
  set_desc(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, static_cast<int32_t>(key.transa));
  set_desc(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, static_cast<int32_t>(key.transb));
  const auto m = static_cast<uint64_t>(key.m), n = static_cast<uint64_t>(key.n),
             k = static_cast<uint64_t>(key.k);
  const bool ta = key.transa != CUBLAS_OP_N, tb = key.transb != CUBLAS_OP_N;
  TM_CUBLAS("matmul",
            cublasLtMatrixLayoutCreate(&plan->a, gt.data, ta ? k : m, ta ? m : k, key.lda));
  TM_CUBLAS("matmul",
            cublasLtMatrixLayoutCreate(&plan->b, gt.data, tb ? n : k, tb ? k : n, key.ldb));
  TM_CUBLAS("matmul", cublasLtMatrixLayoutCreate(&plan->c, gt.data, m, n, key.ldc));
  if (key.batch > 1) {
    const std::pair<cublasLtMatrixLayout_t, int64_t> ls[] = {
        {plan->a, key.stride_a}, {plan->b, key.stride_b}, {plan->c, key.stride_c}};
    for (const auto& [l, stride] : ls) {
      set_layout(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, static_cast<int32_t>(key.batch));
      set_layout(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, stride);
    }
  }

  cublasLtMatmulPreference_t pref = nullptr;
  TM_CUBLAS("matmul", cublasLtMatmulPreferenceCreate(&pref));
  std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, cublasStatus_t (*)(cublasLtMatmulPreference_t)>
      pref_guard(pref, cublasLtMatmulPreferenceDestroy.get());
  set_pref(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, static_cast<uint64_t>(workspace));
  // Split-K partial sums stay in the compute type, as CUBLAS_MATH_DISALLOW_REDUCED_
  // PRECISION_REDUCTION asks of cuBLAS: 16-bit outputs may only use compute-type
  // reductions (or none); float32/float64 outputs already have the compute precision.
  const bool narrow = gt.data == CUDA_R_16F || gt.data == CUDA_R_16BF;
  set_pref(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
           static_cast<uint32_t>(narrow ? CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE
                                        : CUBLASLT_REDUCTION_SCHEME_MASK) &
               lt_reduction_mask());
  set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.align_a);
  set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.align_b);
  set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.align_c);
  set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.align_c);

  cublasLtMatmulHeuristicResult_t r{};
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt, plan->desc, plan->a, plan->b,
                                                           plan->c, plan->c, pref, 1, &r, &found);
  if (st != CUBLAS_STATUS_SUCCESS || found < 1 || r.state != CUBLAS_STATUS_SUCCESS ||
      r.workspaceSize > workspace)
    return std::make_unique<LtMatmulPlan>();  // rejected: the cuBLAS path
  plan->algo = r.algo;
  plan->workspace = r.workspaceSize;
  plan->usable = true;
  return plan;
}

// Runs the product through cuBLASLt; false when it must take the cuBLAS path
// (nothing has been written to C that the cuBLAS path will not overwrite).
bool lt_matmul(DeviceContext& dc, const GemmTypes& gt, const Gemm& g,
               const std::vector<BatchDim>& dims) {
  const bool batched = g.count > 1;
  if (batched && (g.sa < 0 || g.sb < 0 || g.sc < 0)) return false;
  LtMatmulKey key;
  key.dtype = static_cast<int32_t>(gt.data);
  key.compute = static_cast<int32_t>(gt.compute);
  key.transa = static_cast<int32_t>(g.opa);
  key.transb = static_cast<int32_t>(g.opb);
  key.m = g.M, key.n = g.N, key.k = g.K, key.batch = g.count;
  key.lda = g.LDA, key.ldb = g.LDB, key.ldc = g.LDC;
  if (batched) key.stride_a = g.sa, key.stride_b = g.sb, key.stride_c = g.sc;
  // Alignment every product of the call shares: base pointers, batch and host-loop strides.
  uint64_t bits_a = reinterpret_cast<uintptr_t>(g.A), bits_b = reinterpret_cast<uintptr_t>(g.B),
           bits_c = reinterpret_cast<uintptr_t>(g.C);
  if (batched) {
    bits_a |= static_cast<uint64_t>(g.sa * g.isz);
    bits_b |= static_cast<uint64_t>(g.sb * g.isz);
    bits_c |= static_cast<uint64_t>(g.sc * g.isz);
  }
  for (const auto& d : dims) {  // engine a = cuBLAS B, engine b = cuBLAS A
    bits_a |= static_cast<uint64_t>(d.sb * g.isz);
    bits_b |= static_cast<uint64_t>(d.sa * g.isz);
    bits_c |= static_cast<uint64_t>(d.sc * g.isz);
  }
  key.align_a = align16(bits_a), key.align_b = align16(bits_b), key.align_c = align16(bits_c);

  cublasLtHandle_t lt = dc.blas_lt("matmul");
  void* const ws = dc.blas_workspace();
  const size_t ws_bytes = dc.blas_workspace_size();
  std::lock_guard<std::mutex> blas_lock(dc.blas_mutex());
  LtPlanCache& cache = dc.matmul_plans();
  LtMatmulPlan* plan = cache.find(key);
  if (!plan) plan = cache.insert(key, make_plan(lt, ws_bytes, key, gt));
  if (!plan->usable) {
    cache.count_fallback();
    return false;
  }
  const Scalars sc;
  const void* alpha = sc.one(gt.scale);
  const void* beta = sc.zero(gt.scale);
  bool ok = true;
  for_each_outer(g, dims, [&](const char* pa, const char* pb, char* pc) {
    if (!ok) return;
    const cublasStatus_t st =
        cublasLtMatmul(lt, plan->desc, alpha, pa, plan->a, pb, plan->b, beta, pc, plan->c, pc,
                       plan->c, &plan->algo, ws, ws_bytes, dc.stream());
    if (st == CUBLAS_STATUS_SUCCESS) return;
    if (st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_ARCH_MISMATCH) {
      ok = false;  // the algorithm does not run here after all: the cuBLAS path, from now on
      return;
    }
    throw_cublas_error("matmul", "cublasLtMatmul", st);
  });
  if (!ok) {
    plan->usable = false;
    cache.count_fallback();
  }
  return ok;
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
  // A dot product of small float32 vectors (1 x k by k x 1): the tiny-op queue, whose
  // float32 accumulation is at least as exact as any precision policy asks.
  if (total == 1 && out.dtype == DType::Float32 &&
      queue_tiny(dc, gen::TinyEntry::Kind::Dot, OpCode::Matmul, out, &a_in, &b_in))
    return;
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

  const int M = to_int(n, "dimension"), N = to_int(m, "dimension"), K = to_int(k, "dimension");
  const int LDA = to_int(ldb, "leading dimension"), LDB = to_int(lda, "leading dimension");
  const int LDC = std::max(1, M);
  const int count = to_int(inner.size, "batch count");
  Gemm g{};
  g.opa = tb ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS's A is the engine's b
  g.opb = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  g.M = M, g.N = N, g.K = K, g.LDA = LDA, g.LDB = LDB, g.LDC = LDC, g.count = count;
  g.sa = inner.sb, g.sb = inner.sa, g.sc = inner.sc;
  g.A = static_cast<const char*>(b.data);
  g.B = static_cast<const char*>(a.data);
  g.C = static_cast<char*>(out.data);
  g.isz = static_cast<int64_t>(isz);
  if (lt_dtype(out.dtype) && lt_matmul(dc, gt, g, dims)) return;
  gemm_ex(dc, gt, g, dims);
}

}  // namespace tmath::cuda
