// `tmath profile` linear-algebra rows. The engine's call (all results evaluated, the
// device synchronised) and the LAPACK reference (the Fortran routine from OpenBLAS on
// a column-major copy of the same matrix, workspace queried once, the copy included in
// the time as the engine's packing is) are timed alternately, median after warm-up.
// Where a framework backend of the same device type is loaded (torch, torch:cuda), its
// library called directly on the same data (torch.linalg through LibTorch: PyTorch's
// own cuSOLVER/MAGMA choices on the GPU) is a second reference row.
#include "cli/profile_linalg.h"

#include <lapack.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/tensor_impl.h"
#include "tmath/backend.h"
#include "tmath/error.h"
#include "tmath/linalg.h"
#include "tmath/ops.h"
#include "tmath/random.h"
#include "tmath/transforms.h"

namespace tmath::cli {
namespace {

namespace la = tmath::linalg;
using lint = lapack_int;

const char* const kOps[] = {"svd", "eigh", "eig", "qr", "solve", "cholesky", "inv"};
constexpr int64_t kSizes[] = {512, 1024};
// Batched rows (512 x 32 x 32 float32): the op of the same name without "_batched".
const char* const kBatchedOps[] = {"svd_batched", "solve_batched", "inv_batched",
                                   "cholesky_batched", "qr_batched"};
constexpr int64_t kBatch = 512, kBatchN = 32;

// "solve" for "solve_batched": the op a row runs.
std::string base_op(const std::string& op) { return op.substr(0, op.find("_batched")); }

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// Medians of the engine (fn) and the reference (ref), timed alternately.
std::pair<double, double> medians(const std::function<void()>& fn, const std::function<void()>& ref,
                                  bool quick) {
  const int warm = quick ? 1 : 2, reps = quick ? 3 : 7;
  for (int i = 0; i < warm; ++i) {
    fn();
    if (ref) ref();
  }
  std::vector<double> tf, tr;
  for (int i = 0; i < reps; ++i) {
    double t0 = now_ms();
    fn();
    tf.push_back(now_ms() - t0);
    if (ref) {
      t0 = now_ms();
      ref();
      tr.push_back(now_ms() - t0);
    }
  }
  auto med = [](std::vector<double>& v) {
    if (v.empty()) return std::nan("");
    std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  return {med(tf), med(tr)};
}

// ---- LAPACK references (column-major, OpenBLAS's Fortran symbols) ------------------------

template <class T>
struct Lapack;
template <>
struct Lapack<float> {
  static void gesdd(const char* j, const lint* m, const lint* n, float* a, const lint* lda,
                    float* s, float* u, const lint* ldu, float* vt, const lint* ldvt, float* w,
                    const lint* lw, lint* iw, lint* info) {
    LAPACK_sgesdd(j, m, n, a, lda, s, u, ldu, vt, ldvt, w, lw, iw, info);
  }
  static void syevd(const char* j, const char* u, const lint* n, float* a, const lint* lda,
                    float* w, float* wk, const lint* lw, lint* iw, const lint* liw, lint* info) {
    LAPACK_ssyevd(j, u, n, a, lda, w, wk, lw, iw, liw, info);
  }
  static void geev(const char* jl, const char* jr, const lint* n, float* a, const lint* lda,
                   float* wr, float* wi, float* vl, const lint* ldvl, float* vr, const lint* ldvr,
                   float* w, const lint* lw, lint* info) {
    LAPACK_sgeev(jl, jr, n, a, lda, wr, wi, vl, ldvl, vr, ldvr, w, lw, info);
  }
  static void geqrf(const lint* m, const lint* n, float* a, const lint* lda, float* tau, float* w,
                    const lint* lw, lint* info) {
    LAPACK_sgeqrf(m, n, a, lda, tau, w, lw, info);
  }
  static void orgqr(const lint* m, const lint* n, const lint* k, float* a, const lint* lda,
                    const float* tau, float* w, const lint* lw, lint* info) {
    LAPACK_sorgqr(m, n, k, a, lda, tau, w, lw, info);
  }
  static void gesv(const lint* n, const lint* k, float* a, const lint* lda, lint* piv, float* b,
                   const lint* ldb, lint* info) {
    LAPACK_sgesv(n, k, a, lda, piv, b, ldb, info);
  }
  static void potrf(const char* u, const lint* n, float* a, const lint* lda, lint* info) {
    LAPACK_spotrf(u, n, a, lda, info);
  }
  static void getrf(const lint* m, const lint* n, float* a, const lint* lda, lint* piv,
                    lint* info) {
    LAPACK_sgetrf(m, n, a, lda, piv, info);
  }
  static void getri(const lint* n, float* a, const lint* lda, const lint* piv, float* w,
                    const lint* lw, lint* info) {
    LAPACK_sgetri(n, a, lda, piv, w, lw, info);
  }
};
template <>
struct Lapack<double> {
  static void gesdd(const char* j, const lint* m, const lint* n, double* a, const lint* lda,
                    double* s, double* u, const lint* ldu, double* vt, const lint* ldvt, double* w,
                    const lint* lw, lint* iw, lint* info) {
    LAPACK_dgesdd(j, m, n, a, lda, s, u, ldu, vt, ldvt, w, lw, iw, info);
  }
  static void syevd(const char* j, const char* u, const lint* n, double* a, const lint* lda,
                    double* w, double* wk, const lint* lw, lint* iw, const lint* liw, lint* info) {
    LAPACK_dsyevd(j, u, n, a, lda, w, wk, lw, iw, liw, info);
  }
  static void geev(const char* jl, const char* jr, const lint* n, double* a, const lint* lda,
                   double* wr, double* wi, double* vl, const lint* ldvl, double* vr,
                   const lint* ldvr, double* w, const lint* lw, lint* info) {
    LAPACK_dgeev(jl, jr, n, a, lda, wr, wi, vl, ldvl, vr, ldvr, w, lw, info);
  }
  static void geqrf(const lint* m, const lint* n, double* a, const lint* lda, double* tau,
                    double* w, const lint* lw, lint* info) {
    LAPACK_dgeqrf(m, n, a, lda, tau, w, lw, info);
  }
  static void orgqr(const lint* m, const lint* n, const lint* k, double* a, const lint* lda,
                    const double* tau, double* w, const lint* lw, lint* info) {
    LAPACK_dorgqr(m, n, k, a, lda, tau, w, lw, info);
  }
  static void gesv(const lint* n, const lint* k, double* a, const lint* lda, lint* piv,
                   double* b, const lint* ldb, lint* info) {
    LAPACK_dgesv(n, k, a, lda, piv, b, ldb, info);
  }
  static void potrf(const char* u, const lint* n, double* a, const lint* lda, lint* info) {
    LAPACK_dpotrf(u, n, a, lda, info);
  }
  static void getrf(const lint* m, const lint* n, double* a, const lint* lda, lint* piv,
                    lint* info) {
    LAPACK_dgetrf(m, n, a, lda, piv, info);
  }
  static void getri(const lint* n, double* a, const lint* lda, const lint* piv, double* w,
                    const lint* lw, lint* info) {
    LAPACK_dgetri(n, a, lda, piv, w, lw, info);
  }
};

// A reference call: owns its buffers; run() copies the input (column-major) and factors.
// `a` holds `count` row-major n x n matrices; the copies are transposed (for symmetric
// inputs and the timing the transposition does not matter: the work is the same).
template <class T>
std::function<void()> lapack_reference(const std::string& row_op, std::vector<T> a, int64_t n,
                                       int64_t count) {
  using L = Lapack<T>;
  const std::string op = base_op(row_op);
  auto st = std::make_shared<std::vector<std::vector<T>>>();
  const lint N = static_cast<lint>(n);
  const size_t nn = static_cast<size_t>(n * n);
  auto src = std::make_shared<std::vector<T>>(std::move(a));
  auto A = std::make_shared<std::vector<T>>(nn);
  auto B = std::make_shared<std::vector<T>>(nn);
  auto C = std::make_shared<std::vector<T>>(nn);
  auto s = std::make_shared<std::vector<T>>(static_cast<size_t>(2 * n));
  auto piv = std::make_shared<std::vector<lint>>(static_cast<size_t>(8 * n + 8));
  auto work = std::make_shared<std::vector<T>>(1);
  lint info = 0, lw = -1;
  T q = 0;
  lint iq = 0;
  // Workspace queries.
  if (op == "svd") {
    L::gesdd("S", &N, &N, A->data(), &N, s->data(), B->data(), &N, C->data(), &N, &q, &lw,
             piv->data(), &info);
  } else if (op == "eigh") {
    L::syevd("V", "L", &N, A->data(), &N, s->data(), &q, &lw, &iq, &lw, &info);
    piv->resize(static_cast<size_t>(std::max<lint>(iq, 1)));
  } else if (op == "eig") {
    lint one = 1;
    L::geev("N", "V", &N, A->data(), &N, s->data(), B->data(), C->data(), &one, C->data(), &N, &q,
            &lw, &info);
  } else if (op == "qr") {
    L::geqrf(&N, &N, A->data(), &N, s->data(), &q, &lw, &info);
    T q2 = 0;
    L::orgqr(&N, &N, &N, A->data(), &N, s->data(), &q2, &lw, &info);
    q = std::max(q, q2);
  } else if (op == "inv") {
    L::getri(&N, A->data(), &N, piv->data(), &q, &lw, &info);
  }
  work->resize(static_cast<size_t>(std::max<T>(q, T(1))) + 1);
  const lint LW = static_cast<lint>(work->size());
  auto pack = [src, A, n, nn](int64_t b) {
    std::copy(src->begin() + static_cast<long>(static_cast<size_t>(b) * nn),
              src->begin() + static_cast<long>(static_cast<size_t>(b + 1) * nn), A->begin());
    (void)n;
  };
  return [=]() mutable {
    lint inf = 0;
    for (int64_t b = 0; b < count; ++b) {
      pack(b);
      if (op == "svd") {
        L::gesdd("S", &N, &N, A->data(), &N, s->data(), B->data(), &N, C->data(), &N,
                 work->data(), &LW, piv->data(), &inf);
      } else if (op == "eigh") {
        const lint LIW = static_cast<lint>(piv->size());
        L::syevd("V", "L", &N, A->data(), &N, s->data(), work->data(), &LW, piv->data(), &LIW,
                 &inf);
      } else if (op == "eig") {
        lint one = 1;
        L::geev("N", "V", &N, A->data(), &N, s->data(), s->data() + n, C->data(), &one, C->data(),
                &N, work->data(), &LW, &inf);
      } else if (op == "qr") {
        L::geqrf(&N, &N, A->data(), &N, s->data(), work->data(), &LW, &inf);
        L::orgqr(&N, &N, &N, A->data(), &N, s->data(), work->data(), &LW, &inf);
      } else if (op == "solve") {
        std::copy(A->begin(), A->end(), B->begin());
        L::gesv(&N, &N, A->data(), &N, piv->data(), B->data(), &N, &inf);
      } else if (op == "cholesky") {
        L::potrf("L", &N, A->data(), &N, &inf);
      } else if (op == "inv") {
        L::getrf(&N, &N, A->data(), &N, piv->data(), &inf);
        L::getri(&N, A->data(), &N, piv->data(), work->data(), &LW, &inf);
      }
    }
  };
}

struct Row {
  std::string op, shape, dtype, backend;
  double ms = 0, ref_ms = 0;
  std::string ref;
};

// The linalg op called directly through another loaded backend of the same device type
// that names one (a framework adapter: torch on the cpu, torch:cuda on cuda), on `x`.
std::optional<Backend::NativeReference> framework_reference(const std::string& op,
                                                            const Tensor& x, const Backend& be) {
  const ArrayRef ref = x.impl()->ref();
  for (const auto& o : backends()) {
    if (o.get() == &be || !o->available() || o->device_type() != be.device_type()) continue;
    if (auto r = o->native_reference(op, std::span<const ArrayRef>(&ref, 1),
                                     MatmulPrecision::Highest))
      return r;
  }
  return std::nullopt;
}

}  // namespace

bool is_linalg_profile_op(const std::string& op) {
  auto is = [&](const char* o) { return op == o; };
  return std::any_of(std::begin(kOps), std::end(kOps), is) ||
         std::any_of(std::begin(kBatchedOps), std::end(kBatchedOps), is);
}

int run_profile_linalg(const LinalgProfileOptions& opt) {
  auto wanted = [&](const std::string& op) { return opt.ops.empty() || opt.ops.count(op) > 0; };
  struct Case {
    std::string op;
    int64_t batch, n;
    DType dt;
  };
  std::vector<Case> cases;
  for (int64_t n : kSizes)
    for (DType dt : {float32, float64})
      for (const char* op : kOps)
        if (wanted(op)) cases.push_back({op, 1, n, dt});
  for (const char* op : kBatchedOps)
    if (wanted(op)) cases.push_back({op, kBatch, kBatchN, float32});
  if (cases.empty()) return 0;

  std::vector<std::shared_ptr<Backend>> selected;
  for (const auto& b : backends())
    if (b->available() && (opt.backend.empty() || b->name() == opt.backend)) selected.push_back(b);

  const std::vector<std::string> saved = backend_priority();
  std::vector<Row> rows;
  int failures = 0;
  uint64_t seed = 7;
  for (const Case& c : cases) {
    // Random normal input on the CPU; symmetric positive definite for eigh and cholesky.
    Shape shape = c.batch > 1 ? Shape{c.batch, c.n, c.n} : Shape{c.n, c.n};
    Tensor a = random::normal(random::key(seed++), shape, float64, 0.0, 1.0, kCPU);
    const std::string op = base_op(c.op);
    if (op == "eigh" || op == "cholesky")
      a = matmul(a, swapaxes(a, -1, -2)) / double(c.n) + eye(c.n, c.n, 0, float64);
    a = astype(a, c.dt);
    a.eval();
    std::function<void()> ref;
    if (c.dt == float32)
      ref = lapack_reference<float>(c.op, a.to_vector<float>(), c.n, c.batch);
    else
      ref = lapack_reference<double>(c.op, a.to_vector<double>(), c.n, c.batch);
    for (const auto& be : selected) {
      const std::string name(be->name());
      const bool host = be->device_type() == DeviceType::CPU;
      const Device dev(be->device_type(), 0);
      std::fprintf(stderr, "linalg %s %s %s %s\n", c.op.c_str(), std::to_string(c.n).c_str(),
                   std::string(dtype_name(c.dt)).c_str(), name.c_str());
      try {
        set_backend_priority({name});
        Tensor x = host ? a : a.to(dev);
        x.eval();
        std::function<void()> fn = [&, x] {
          std::vector<Tensor> r;
          if (op == "svd") {
            auto d = la::svd(x, false);
            r = {d.U, d.S, d.Vh};
          } else if (op == "eigh") {
            auto e = la::eigh(x);
            r = {e.eigenvalues, e.eigenvectors};
          } else if (op == "eig") {
            auto e = la::eig(x);
            r = {e.eigenvalues, e.eigenvectors};
          } else if (op == "qr") {
            auto q = la::qr(x);
            r = {q.Q, q.R};
          } else if (op == "solve") {
            r = {la::solve(x, x)};
          } else if (op == "cholesky") {
            r = {la::cholesky(x)};
          } else {
            r = {la::inv(x)};
          }
          eval(r);
          be->synchronize(dev);
        };
        // The LAPACK reference runs on the host; on a device backend it is the CPU yardstick.
        auto [ms, ref_ms] = medians(fn, ref, opt.quick);
        Row row{c.op,
                (c.batch > 1 ? std::to_string(c.batch) + "x" : "") + std::to_string(c.n) + "x" +
                    std::to_string(c.n),
                std::string(dtype_name(c.dt)),
                name,
                ms,
                ref_ms,
                "lapack (cpu)"};
        rows.push_back(row);
        if (auto fw = framework_reference(op, x, *be)) {
          auto [ms2, fw_ms] = medians(fn, [&] {
            fw->run();
            be->synchronize(dev);
          }, opt.quick);
          rows.push_back(Row{row.op, row.shape, row.dtype, name, ms2, fw_ms, fw->name});
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "tmath profile: linalg %s on %s failed: %s\n", c.op.c_str(),
                     name.c_str(), e.what());
        ++failures;
      }
    }
  }
  set_backend_priority(saved);
  std::printf("\nLinear algebra (engine vs LAPACK from OpenBLAS called directly, and vs a "
              "loaded framework's linalg (torch ...), same data, median ms%s):\n",
              opt.quick ? ", --quick" : "");
  std::printf("%-16s %-11s %-8s %-8s %10s %14s %10s %8s\n", "op", "shape", "dtype", "backend",
              "ms", "reference", "ref ms", "ratio");
  for (const Row& r : rows)
    std::printf("%-16s %-11s %-8s %-8s %10.3f %14s %10.3f %7.2fx\n", r.op.c_str(),
                r.shape.c_str(), r.dtype.c_str(), r.backend.c_str(), r.ms, r.ref.c_str(),
                r.ref_ms, r.ms / r.ref_ms);
  return failures;
}

}  // namespace tmath::cli
