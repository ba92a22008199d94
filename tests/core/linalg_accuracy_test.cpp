// Accuracy of the decompositions, measured with LAPACK's own test ratios (as in its
// TESTING/LIN and TESTING/EIG programs): residual ratios such as
//   |A - U diag(S) V^H|_1 / (|A|_1 max(m, n) eps)   and   |I - U^H U|_1 / (n eps)
// must stay <= 35, with eps the unit roundoff of the dtype (LAPACK's dlamch('E'), half
// of numeric_limits::epsilon). Matrix families: random, ill-conditioned (cond 1e12),
// rank-deficient, graded and clustered spectra, in float32 and float64 (rectangular svd
// also in complex64 and complex128), sizes 1..1024 (the large ones sparingly). The test
// matrices are made on the CPU in float64 (complex128) and rounded to the dtype; the
// decomposition runs on the backend under test (cpu, and cuda when a device is present,
// with fallbacks made errors so the cuda kernels really run; torch and torch:cuda,
// LibTorch's torch.linalg, with priority on them; mlx, MLX's linalg on its device,
// fallbacks made errors but for the (op, dtype) pairs it leaves to the cpu backend: eig
// of float64); the residuals are computed in float64 on the CPU with OpenBLAS matmuls.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>

#include "test_util.h"
#include "tmath/linalg.h"

using namespace tmath;
namespace la = tmath::linalg;

namespace {

constexpr double kBound = 35.0;

enum class Family { Random, IllConditioned, RankDeficient, Graded, Clustered };
const char* family_name(Family f) {
  switch (f) {
    case Family::Random: return "random";
    case Family::IllConditioned: return "ill-conditioned";
    case Family::RankDeficient: return "rank-deficient";
    case Family::Graded: return "graded";
    default: return "clustered";
  }
}
const Family kFamilies[] = {Family::Random, Family::IllConditioned, Family::RankDeficient,
                            Family::Graded, Family::Clustered};

double unit_roundoff(DType dt) {
  return real_type(dt) == float64 ? std::ldexp(1.0, -53) : std::ldexp(1.0, -24);
}

// ---- test matrices (float64, CPU) ------------------------------------------------------

Tensor gauss(std::mt19937& rng, int64_t m, int64_t n) {
  std::normal_distribution<double> g;
  std::vector<double> v(static_cast<size_t>(m * n));
  for (auto& x : v) x = g(rng);
  return tt::make(v, {m, n}, float64);
}
// m x k with orthonormal columns (k <= m).
Tensor orth(std::mt19937& rng, int64_t m, int64_t k) { return la::qr(gauss(rng, m, k)).Q; }
Tensor diag_of(const std::vector<double>& d) {
  const auto n = static_cast<int64_t>(d.size());
  std::vector<double> v(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) v[i * n + i] = d[i];
  return tt::make(v, {n, n}, float64);
}
// Singular values / eigenvalue magnitudes of a family, k of them, largest 1.
std::vector<double> spectrum(Family f, int64_t k, DType dt, double decades = 12.0) {
  std::vector<double> s(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) {
    const double t = k > 1 ? double(i) / double(k - 1) : 0.0;
    switch (f) {
      case Family::IllConditioned: s[i] = std::pow(10.0, -decades * t); break;
      case Family::RankDeficient: s[i] = i < (k + 1) / 2 ? 1.0 - 0.5 * t : 0.0; break;
      // Clustered: all within a few ulps of float32 of 1 (float64: within 1e-9).
      case Family::Clustered: s[i] = 1.0 + (dt == float64 ? 1e-9 : 1e-6) * double(i % 4); break;
      default: s[i] = 1.0 - 0.5 * t; break;
    }
  }
  return s;
}
// Graded rows (and columns): scale 10^(-6 i / n).
Tensor grading(int64_t n) {
  std::vector<double> d(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) d[i] = std::pow(10.0, -6.0 * double(i) / double(std::max<int64_t>(n, 1)));
  return diag_of(d);
}

// General m x n matrix of a family (the ill-conditioned one with cond 10^decades).
Tensor general(std::mt19937& rng, Family f, int64_t m, int64_t n, DType dt,
               double decades = 12.0) {
  if (f == Family::Random) return gauss(rng, m, n);
  if (f == Family::Graded) return matmul(grading(m), gauss(rng, m, n));
  const int64_t k = std::min(m, n);
  return matmul(matmul(orth(rng, m, k), diag_of(spectrum(f, k, dt, decades))),
                swapaxes(orth(rng, n, k), 0, 1));
}
// Complex m x n matrices (complex128): Gaussian real and imaginary parts; a family as
// in general(), with unitary factors and the spectrum of the dtype's real type.
Tensor cgauss(std::mt19937& rng, int64_t m, int64_t n) {
  std::normal_distribution<double> g;
  std::vector<tt::cplx> v(static_cast<size_t>(m * n));
  for (auto& x : v) x = tt::cplx(g(rng), g(rng));
  return tt::make_c(v, {m, n}, complex128);
}
Tensor general_c(std::mt19937& rng, Family f, int64_t m, int64_t n, DType dt) {
  if (f == Family::Random) return cgauss(rng, m, n);
  if (f == Family::Graded) return matmul(astype(grading(m), complex128), cgauss(rng, m, n));
  const int64_t k = std::min(m, n);
  Tensor q = la::qr(cgauss(rng, m, k)).Q, p = la::qr(cgauss(rng, n, k)).Q;
  Tensor d = astype(diag_of(spectrum(f, k, real_type(dt))), complex128);
  return matmul(matmul(q, d), conj(swapaxes(p, 0, 1)));
}

// Symmetric n x n matrix of a family (eigenvalues of both signs).
Tensor symmetric(std::mt19937& rng, Family f, int64_t n, DType dt) {
  Tensor a;
  if (f == Family::Random) {
    a = gauss(rng, n, n);
  } else if (f == Family::Graded) {
    Tensor d = grading(n);
    a = matmul(matmul(d, gauss(rng, n, n)), d);
  } else {
    auto s = spectrum(f, n, dt);
    for (size_t i = 1; i < s.size(); i += 2) s[i] = -s[i];
    Tensor q = orth(rng, n, n);
    a = matmul(matmul(q, diag_of(s)), swapaxes(q, 0, 1));
  }
  return (a + swapaxes(a, 0, 1)) * 0.5;
}
// Symmetric positive definite n x n matrix of a family (no rank-deficient one); the
// condition number of the ill-conditioned one is 1e12 in float64 and 1e5 in float32
// (beyond 1/eps the matrix is not numerically positive definite).
Tensor spd(std::mt19937& rng, Family f, int64_t n, DType dt) {
  if (f == Family::Random || f == Family::Graded) {
    Tensor b = gauss(rng, n, n);
    Tensor a = matmul(b, swapaxes(b, 0, 1)) / double(n) + eye(n, n, 0, float64);
    if (f == Family::Graded) a = matmul(matmul(grading(n), a), grading(n));
    return (a + swapaxes(a, 0, 1)) * 0.5;
  }
  std::vector<double> s = spectrum(f, n, dt);
  if (f == Family::IllConditioned && dt == float32)
    for (int64_t i = 0; i < n; ++i) s[i] = std::pow(10.0, -5.0 * (n > 1 ? double(i) / double(n - 1) : 0.0));
  Tensor q = orth(rng, n, n);
  Tensor a = matmul(matmul(q, diag_of(s)), swapaxes(q, 0, 1));
  return (a + swapaxes(a, 0, 1)) * 0.5;
}

// ---- ratios (float64 on the CPU) ------------------------------------------------------

Tensor host64(const Tensor& x) {
  Tensor h = x.device() == kCPU ? x : x.to(kCPU);
  return astype(h, is_complex(h.dtype()) ? complex128 : float64);
}
// |R|_1 / (|A|_1 * scale * eps) per batch entry, largest over the batch.
double ratio(const Tensor& R, const Tensor& A, double scale, DType dt) {
  Tensor rn = max(sum(abs(R), {-2}), {-1});
  Tensor an = A.defined() ? max(sum(abs(A), {-2}), {-1}) : ones_like(rn);
  an = where(greater(an, zeros_like(an)), an, ones_like(an));
  if (rn.size() == 0) return 0.0;
  return max(rn / an).item<double>() / (scale * unit_roundoff(dt));
}
// |I - Q^H Q|_1 / (n eps), Q: (..., m, n).
double orth_ratio(const Tensor& Q, DType dt) {
  const int64_t n = Q.shape(-1);
  Tensor QH = swapaxes(is_complex(Q.dtype()) ? conj(Q) : Q, -1, -2);
  Tensor I = eye(n, n, 0, Q.dtype());
  return ratio(matmul(QH, Q) - I, Tensor(), double(std::max<int64_t>(n, 1)), dt);
}

// The largest ratio seen per (op, ratio, family, dtype, backend), printed at the end.
std::map<std::string, double>& worst() {
  static std::map<std::string, double> w;
  return w;
}
void record(const std::string& key, double r) {
  double& w = worst()[key];
  w = std::max(w, r);
}
struct PrintWorst : ::testing::Environment {
  void TearDown() override {
    if (worst().empty()) return;
    std::printf("[linalg accuracy] largest ratio per op / ratio / family / dtype / backend "
                "(bound %.0f, eps = unit roundoff):\n",
                kBound);
    for (const auto& [k, v] : worst()) std::printf("  %-58s %8.3f\n", k.c_str(), v);
  }
};
[[maybe_unused]] const auto* const kPrintWorst = ::testing::AddGlobalTestEnvironment(new PrintWorst);

// ---- backends -------------------------------------------------------------------------

bool is_torch(const std::string& name) { return name.rfind("torch", 0) == 0; }

bool backend_ok(const std::string& name, std::string& why) {
  if (is_torch(name) && !load_backend("torch")) {  // the plugin loads on demand
    why = get_backend("torch") ? get_backend("torch")->info().reason : "torch plugin not built";
    if (why.empty()) why = "unavailable";
    return false;
  }
  auto b = get_backend(name);
  if (!b) {
    why = "no " + name + " backend registered";
    return false;
  }
  if (!b->available()) {
    why = b->info().reason.empty() ? "unavailable" : b->info().reason;
    return false;
  }
  return true;
}
Device device_of(const std::string& name) {
  if (name == "mlx") return Device(DeviceType::MLX, 0);
  return name == "cpu" || name == "torch" ? kCPU : Device(DeviceType::CUDA, 0);
}

const OpCode kLinalgOps[] = {OpCode::Solve,    OpCode::Inv,  OpCode::Det,  OpCode::Slogdet,
                             OpCode::Cholesky, OpCode::Qr,   OpCode::Svd,  OpCode::Eigh,
                             OpCode::SolveTriangular, OpCode::Lu, OpCode::LuSolve, OpCode::Eig};

// Fallbacks to the CPU become errors for the test's duration (device backends only).
class NoFallback {
 public:
  explicit NoFallback(bool on) : saved_(fallback_policy()) {
    if (on) set_fallback_policy(FallbackPolicy::Error);
  }
  ~NoFallback() { set_fallback_policy(saved_); }
  NoFallback(const NoFallback&) = delete;
  NoFallback& operator=(const NoFallback&) = delete;

 private:
  FallbackPolicy saved_;
};

struct Size {
  int64_t batch, m, n;
};
std::string size_str(const Size& s) {
  return (s.batch > 1 ? std::to_string(s.batch) + "x" : "") + std::to_string(s.m) + "x" +
         std::to_string(s.n);
}
// A batch of 3 with a NaN in entry 1, made on `dev`: svdvals, the reduced U and the full
// Vh each raise LinAlgError naming batch index (1,), and the input is left unchanged.
void expect_svd_names_nan_entry(const Size& s, DType dt, Device dev) {
  std::vector<double> v(static_cast<size_t>(s.batch * s.m * s.n));
  for (size_t i = 0; i < v.size(); ++i) v[i] = double(i % 7) - 3.0 + 0.25 * double(i % 5);
  v[static_cast<size_t>(s.m * s.n + 3)] = std::nan("");
  Tensor a = tt::make(v, {s.batch, s.m, s.n}, dt).to(dev);
  for (int which = 0; which < 3; ++which) {
    try {
      switch (which) {
        case 0: la::svdvals(a).eval(); break;
        case 1: la::svd(a, false).U.eval(); break;
        default: la::svd(a, true).Vh.eval(); break;
      }
      ADD_FAILURE() << "svd " << which << " " << size_str(s) << " " << dtype_name(dt)
                    << ": no error";
    } catch (const LinAlgError& e) {
      EXPECT_NE(std::string(e.what()).find("NaN or Inf (batch index (1,))"), std::string::npos)
          << e.what();
    }
  }
  Tensor back = host64(a), want = host64(tt::make(v, {s.batch, s.m, s.n}, dt));
  EXPECT_TRUE(all(logical_or(equal(back, want), isnan(abs(want)))).item<bool>())
      << size_str(s) << " " << dtype_name(dt);
}
// Square sizes of every family; one batch; the large ones for the random family only.
std::vector<Size> square_sizes(Family f, int64_t large) {
  std::vector<Size> s = {{1, 1, 1}, {1, 2, 2}, {1, 5, 5}, {1, 16, 16}, {1, 33, 33}, {1, 100, 100},
                         {6, 12, 12}};
  if (f == Family::Random && large > 0) s.push_back({1, large, large});
  return s;
}
std::vector<Size> rect_sizes(Family f, int64_t large) {
  std::vector<Size> s = square_sizes(f, large);
  s.insert(s.end(), {{1, 7, 3}, {1, 3, 7}, {1, 80, 30}, {1, 30, 80}, {3, 9, 4}});
  return s;
}
// A (batch, m, n) stack of independent family members (batch 1: just (m, n)).
template <class Gen>
Tensor stack_of(const Size& s, Gen&& gen) {
  if (s.batch == 1) return gen();
  std::vector<Tensor> xs;
  for (int64_t b = 0; b < s.batch; ++b) xs.push_back(expand_dims(gen(), 0));
  return concatenate(xs, 0);
}

class LinalgAccuracy : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string why;
    if (!backend_ok(GetParam(), why)) GTEST_SKIP() << "backend " << GetParam() << ": " << why;
    // mlx must take every decomposition in float32, and in float64 all but eig (MLX's eig
    // computes in complex64), which the tests then leave out there.
    if (GetParam() == "mlx") {
      for (OpCode op : kLinalgOps)
        for (DType dt : {float32, float64}) {
          if (op == OpCode::Eig && dt == float64) continue;
          Backend* b = select_backend(op, dt, dev());
          ASSERT_TRUE(b != nullptr) << op_name(op) << " " << dtype_name(dt);
          ASSERT_EQ(b->name(), "mlx") << op_name(op) << " " << dtype_name(dt);
        }
    }
    // The torch backends ("torch", "torch:cuda") run only with priority; they must then
    // take every decomposition, in every dtype the tests use.
    if (!is_torch(GetParam())) return;
    saved_ = backend_priority();
    prioritised_ = true;
    set_backend_priority({"torch"});
    for (OpCode op : kLinalgOps)
      for (DType dt : {float32, float64, complex64, complex128}) {
        Backend* b = select_backend(op, dt, dev());
        ASSERT_TRUE(b != nullptr);
        ASSERT_EQ(b->name(), GetParam()) << op_name(op) << " " << dtype_name(dt);
      }
  }
  void TearDown() override {
    if (prioritised_) set_backend_priority(saved_);
  }
  Device dev() const { return device_of(GetParam()); }
  bool device_backend() const { return GetParam() != "cpu"; }
  // Whether the backend under test runs (op, dt) itself (else the test leaves it out).
  bool runs(OpCode op, DType dt) const {
    Backend* b = select_backend(op, dt, dev());
    return b && b->name() == GetParam();
  }
  // A (float64 CPU) rounded to dt, and the copy on the backend's device.
  std::pair<Tensor, Tensor> place(const Tensor& a64, DType dt) const {
    Tensor a = astype(a64, dt);
    a.eval();
    Tensor d = a.to(dev());
    d.eval();
    return {host64(a), d};
  }
  void check(const std::string& op, const std::string& what, Family f, DType dt,
             const Size& s, double r) {
    const std::string key =
        op + " " + what + " " + family_name(f) + " " + std::string(dtype_name(dt)) + " " +
        GetParam();
    record(key, r);
    EXPECT_LE(r, kBound) << key << " at " << size_str(s);
  }

 private:
  std::vector<std::string> saved_;
  bool prioritised_ = false;
};

const DType kDTypes[] = {float32, float64};

}  // namespace

TEST_P(LinalgAccuracy, Svd) {
  NoFallback nf(device_backend());
  std::mt19937 rng(101);
  for (DType dt : kDTypes)
    for (Family f : kFamilies)
      for (const Size& s : rect_sizes(f, dt == float32 ? 1024 : 256)) {
        auto [A, Ad] = place(stack_of(s, [&] { return general(rng, f, s.m, s.n, dt); }), dt);
        auto d = la::svd(Ad, false);
        Tensor U = host64(d.U), S = host64(d.S), Vh = host64(d.Vh);
        const double mn = double(std::max(s.m, s.n));
        check("svd", "|A-USV'|", f, dt, s, ratio(A - matmul(U * expand_dims(S, -2), Vh), A, mn, dt));
        check("svd", "|I-U'U|", f, dt, s, orth_ratio(U, dt));
        check("svd", "|I-VV'|", f, dt, s, orth_ratio(swapaxes(Vh, -1, -2), dt));
        // Singular values descending and non-negative.
        if (S.shape(-1) > 1) {
          const int64_t k = S.shape(-1);
          EXPECT_TRUE(all(greater_equal(slice(S, -1, 0, k - 1), slice(S, -1, 1, k))).item<bool>());
        }
        EXPECT_GE(min(S).item<double>(), 0.0);
      }
}

// Every family at sizes where the cuda backend takes the polar route (gesvdp, with
// gesvd for matrices it perturbs: the ill-conditioned, rank-deficient and graded ones),
// square, tall (QR first, then the square route on R) and wide (the tall route on the
// transpose), and a batch whose entries take different routes. gesvdj alone failed the
// orthogonality bound here (55 n eps on the tall rank-deficient float32 matrix).
TEST_P(LinalgAccuracy, SvdLargeEveryFamily) {
  if (GetParam().rfind("torch", 0) == 0)
    GTEST_SKIP() << "the engine's own svd routes; torch.linalg.svd (gesvdj) measured on the "
                    "H100: |I-U'U| up to 80 n eps on a tall rank-deficient float64 matrix, "
                    "|I-VV'| 43 on a clustered float64 one (docs/linalg.md)";
  NoFallback nf(device_backend());
  std::mt19937 rng(103);
  const std::vector<Size> sizes = {{1, 300, 300}, {1, 320, 260}, {1, 260, 320}};
  for (DType dt : kDTypes)
    for (Family f : kFamilies)
      for (const Size& s : sizes) {
        auto [A, Ad] = place(general(rng, f, s.m, s.n, dt), dt);
        for (bool full : {false, true}) {
          if (full && s.m == s.n) continue;
          auto d = la::svd(Ad, full);
          Tensor U = host64(d.U), S = host64(d.S), Vh = host64(d.Vh);
          const int64_t k = S.shape(-1);
          const double mn = double(std::max(s.m, s.n));
          Tensor Uk = slice(U, -1, 0, k), Vhk = slice(Vh, -2, 0, k);
          check("svd", "|A-USV'|", f, dt, s,
                ratio(A - matmul(Uk * expand_dims(S, -2), Vhk), A, mn, dt));
          check("svd", "|I-U'U|", f, dt, s, orth_ratio(U, dt));
          check("svd", "|I-VV'|", f, dt, s, orth_ratio(swapaxes(Vh, -1, -2), dt));
          EXPECT_TRUE(all(greater_equal(slice(S, -1, 0, k - 1), slice(S, -1, 1, k))).item<bool>());
        }
        // Values only (gesvdp/gesvdj without vectors on cuda) agree with the full svd
        // within the backward-error bound (each is exact for A + E, |E| <= kBound m eps |A|).
        Tensor vals = host64(la::svdvals(Ad)), S = host64(la::svd(Ad, false).S);
        const double mn = double(std::max(s.m, s.n));
        EXPECT_LE(max(abs(vals - S)).item<double>(),
                  2.0 * kBound * mn * unit_roundoff(dt) * max(S).item<double>())
            << "svdvals and svd disagree: " << family_name(f) << " " << dtype_name(dt) << " "
            << size_str(s);
      }
  // A batch of a random and a graded matrix (one entry per route on cuda).
  for (DType dt : kDTypes) {
    Tensor A = concatenate({expand_dims(general(rng, Family::Random, 272, 272, dt), 0),
                            expand_dims(general(rng, Family::Graded, 272, 272, dt), 0)},
                           0);
    auto [Ah, Ad] = place(A, dt);
    auto d = la::svd(Ad, false);
    Tensor U = host64(d.U), S = host64(d.S), Vh = host64(d.Vh);
    const Size s{2, 272, 272};
    check("svd", "|A-USV'|", Family::Graded, dt, s,
          ratio(Ah - matmul(U * expand_dims(S, -2), Vh), Ah, 272.0, dt));
    check("svd", "|I-U'U|", Family::Graded, dt, s, orth_ratio(U, dt));
  }
}

// Rectangular matrices, real and complex, on the svd routes that are not square. On
// cuda: wide ones (m < n) take the tall route on the transpose (A^T = Q R, R through
// the square route, U and Vh transposed back), tall ones QR first; R is m x m (wide)
// or n x n (tall) and takes the polar route from 256 (gesvd for the entries it
// perturbs), gesvdj below. Nearly square and strongly rectangular, single and batched,
// full and reduced factors, values only, every family; then a wide batch whose entries
// take different routes for R, and a NaN in one batch entry.
// Sizes and their cuda routes (R's route after the colon):
//   256x600, 260x320: wide: polar                  320x260: tall: polar
//   40x600, 3x50x90, 10x40: wide: gesvdj            3x90x50: tall: gesvdj
//   10x20: real: the Jacobi kernel; complex: wide: gesvdj
//   20x10: real: the Jacobi kernel; complex: tall: gesvdj
//   4x10x20: real: the Jacobi kernel; complex: gesvdjBatched
// 260x320 and 320x260 in complex only (SvdLargeEveryFamily has them in real); 256x600
// in complex only random and rank-deficient (gesvdp kept, and redone by gesvd), the
// slowest case on the CPU.
TEST_P(LinalgAccuracy, SvdRectangular) {
  if (is_torch(GetParam()))
    GTEST_SKIP() << "the engine's own svd routes (torch.linalg.svd: see SvdLargeEveryFamily)";
  NoFallback nf(device_backend());
  std::mt19937 rng(113);
  auto family_matrix = [&](Family f, int64_t m, int64_t n, DType dt) {
    return is_complex(dt) ? general_c(rng, f, m, n, dt) : general(rng, f, m, n, dt);
  };
  // Checks the svd of A (float64 CPU copy) made on its device copy Ad.
  auto check_svd = [&](Family f, DType dt, const Size& s, const Tensor& A, const Tensor& Ad) {
    const int64_t k = std::min(s.m, s.n);
    const double mn = double(std::max(s.m, s.n));
    Tensor S;
    for (bool full : {false, true}) {
      auto d = la::svd(Ad, full);
      ASSERT_EQ(d.U.shape(-2), s.m);
      ASSERT_EQ(d.U.shape(-1), full ? s.m : k);
      ASSERT_EQ(d.Vh.shape(-2), full ? s.n : k);
      ASSERT_EQ(d.Vh.shape(-1), s.n);
      EXPECT_EQ(d.S.dtype(), real_type(dt));
      Tensor U = host64(d.U), Vh = host64(d.Vh);
      S = host64(d.S);
      const std::string tag = full ? "full" : "reduced";
      Tensor Uk = slice(U, -1, 0, k), Vhk = slice(Vh, -2, 0, k);
      check("svd-rect", "|A-USV'| " + tag, f, dt, s,
            ratio(A - matmul(Uk * expand_dims(S, -2), Vhk), A, mn, dt));
      check("svd-rect", "|I-U'U| " + tag, f, dt, s, orth_ratio(U, dt));
      check("svd-rect", "|I-VV'| " + tag, f, dt, s, orth_ratio(swapaxes(Vh, -1, -2), dt));
      EXPECT_TRUE(all(greater_equal(slice(S, -1, 0, k - 1), slice(S, -1, 1, k))).item<bool>())
          << tag << " " << size_str(s);
      EXPECT_GE(min(S).item<double>(), 0.0) << tag << " " << size_str(s);
    }
    // Values only agree with the svd's within the backward-error bound.
    Tensor vals = host64(la::svdvals(Ad));
    EXPECT_LE(max(abs(vals - S)).item<double>(),
              2.0 * kBound * mn * unit_roundoff(dt) * max(S).item<double>())
        << "svdvals and svd disagree: " << family_name(f) << " " << dtype_name(dt) << " "
        << size_str(s);
  };
  const std::vector<Size> sizes = {{1, 256, 600}, {1, 40, 600}, {3, 50, 90}, {3, 90, 50},
                                   {1, 10, 40},   {1, 10, 20},  {1, 20, 10}, {4, 10, 20}};
  const std::vector<Size> complex_only = {{1, 260, 320}, {1, 320, 260}};
  for (DType dt : {float32, float64, complex64, complex128}) {
    if (!runs(OpCode::Svd, dt)) continue;
    std::vector<Size> dt_sizes = sizes;
    if (is_complex(dt)) dt_sizes.insert(dt_sizes.end(), complex_only.begin(), complex_only.end());
    for (Family f : kFamilies)
      for (const Size& s : dt_sizes) {
        if (is_complex(dt) && s.n == 600 && s.m == 256 && f != Family::Random &&
            f != Family::RankDeficient)
          continue;
        auto [A, Ad] = place(stack_of(s, [&] { return family_matrix(f, s.m, s.n, dt); }), dt);
        check_svd(f, dt, s, A, Ad);
      }
    // A wide batch of a random and a rank-deficient matrix (on cuda R's polar route
    // kept for the first, redone by gesvd for the second).
    {
      const Size s{2, 264, 300};
      Tensor A = concatenate({expand_dims(family_matrix(Family::Random, s.m, s.n, dt), 0),
                              expand_dims(family_matrix(Family::RankDeficient, s.m, s.n, dt), 0)},
                             0);
      auto [Ah, Ad] = place(A, dt);
      check_svd(Family::RankDeficient, dt, s, Ah, Ad);
    }
    // A NaN in one batch entry (on cuda through the QR routes: the wide one reads the
    // input transposed).
    for (const Size& s : {Size{3, 40, 70}, Size{3, 70, 40}})
      expect_svd_names_nan_entry(s, dt, dev());
  }
}

// The small real SVD (on cuda: our one-sided Jacobi kernel for m, n <= 32, one block per
// matrix): square and rectangular batches, full and reduced factors, values only, every
// family, zero and exactly rank-deficient matrices (U must still be orthonormal), against
// the float64 CPU SVD of the same rounded matrices; a NaN in one matrix of the batch.
TEST_P(LinalgAccuracy, SvdSmallBatches) {
  NoFallback nf(device_backend());
  std::mt19937 rng(109);
  const std::vector<Size> sizes = {{64, 32, 32}, {1, 32, 32}, {5, 7, 5},  {5, 5, 7},
                                   {4, 32, 17},  {4, 17, 32}, {3, 1, 1},  {1, 1, 1},
                                   {3, 1, 6},    {3, 6, 1},   {4, 2, 2},  {4, 31, 31},
                                   {3, 32, 3},   {3, 3, 32}};
  // Checks one decomposition of A (float64 CPU copy) made on the device copy Ad.
  auto check_svd = [&](const std::string& what, Family f, DType dt, const Size& s, const Tensor& A,
                       const Tensor& Ad) {
    const int64_t k = std::min(s.m, s.n);
    const double mn = double(std::max(s.m, s.n)), u = unit_roundoff(dt);
    for (bool full : {false, true}) {
      auto d = la::svd(Ad, full);
      Tensor U = host64(d.U), S = host64(d.S), Vh = host64(d.Vh);
      const std::string tag = (what.empty() ? "" : what + " ") + (full ? "full" : "reduced");
      ASSERT_EQ(U.shape(-2), s.m);
      ASSERT_EQ(U.shape(-1), full ? s.m : k);
      ASSERT_EQ(Vh.shape(-2), full ? s.n : k);
      ASSERT_EQ(Vh.shape(-1), s.n);
      Tensor Uk = slice(U, -1, 0, k), Vhk = slice(Vh, -2, 0, k);
      check("svd-small", "|A-USV'| " + tag, f, dt, s,
            ratio(A - matmul(Uk * expand_dims(S, -2), Vhk), A, mn, dt));
      check("svd-small", "|I-U'U| " + tag, f, dt, s, orth_ratio(U, dt));
      check("svd-small", "|I-VV'| " + tag, f, dt, s, orth_ratio(swapaxes(Vh, -1, -2), dt));
      // Descending, non-negative, and the float64 CPU values within max(m, n) eps |A|_2.
      if (k > 1) {
        EXPECT_TRUE(all(greater_equal(slice(S, -1, 0, k - 1), slice(S, -1, 1, k))).item<bool>())
            << tag << " " << size_str(s);
      }
      EXPECT_GE(min(S).item<double>(), 0.0) << tag << " " << size_str(s);
      Tensor Sref = la::svdvals(A);
      Tensor smax = max(Sref, {-1}, true);
      smax = where(greater(smax, zeros_like(smax)), smax, ones_like(smax));
      check("svd-small", "|S-Sref|/|A| " + tag, f, dt, s,
            max(abs(S - Sref) / smax).item<double>() / (mn * u));
      // Values only: on cuda the same kernel without the vectors, the same values; LAPACK
      // (cpu, and torch's) runs a different path without them.
      Tensor sv = host64(la::svdvals(Ad));
      if (GetParam() == "cuda") {
        EXPECT_TRUE(all(equal(sv, S)).item<bool>()) << tag << " " << size_str(s);
      } else {
        EXPECT_LE(max(abs(sv - S) / smax).item<double>(), 4 * mn * u) << tag << " " << size_str(s);
      }
    }
  };
  for (DType dt : kDTypes) {
    for (Family f : kFamilies)
      for (const Size& s : sizes) {
        auto [A, Ad] = place(stack_of(s, [&] { return general(rng, f, s.m, s.n, dt); }), dt);
        check_svd("", f, dt, s, A, Ad);
      }
    // Zero matrices, zero columns / rows, repeated columns, rank one: exactly
    // rank-deficient, so U's (and Vh's) columns beyond the rank come from completion.
    for (const Size& s : {Size{3, 32, 32}, Size{3, 7, 5}, Size{3, 5, 7}, Size{2, 32, 17},
                          Size{2, 17, 32}, Size{2, 1, 1}}) {
      auto [Z, Zd] = place(zeros({s.batch, s.m, s.n}, float64), dt);
      check_svd("zero", Family::RankDeficient, dt, s, Z, Zd);
      auto exact = [&] {
        Tensor g = gauss(rng, s.m, s.n);
        std::uniform_int_distribution<int> kind(0, 2);
        switch (kind(rng)) {
          case 0: {  // every other column zero, the columns after the first half repeated
            std::vector<double> mask(static_cast<size_t>(s.n));
            for (int64_t j = 0; j < s.n; ++j) mask[j] = j % 2 ? 0.0 : 1.0;
            return g * tt::make(mask, {1, s.n}, float64);
          }
          case 1: {  // the first row repeated, the last rows zero
            std::vector<double> mask(static_cast<size_t>(s.m));
            for (int64_t i = 0; i < s.m; ++i) mask[i] = i < s.m / 2 ? 1.0 : 0.0;
            return matmul(tt::make(mask, {s.m, 1}, float64), slice(g, 0, 0, 1));
          }
          default:  // rank one, small integers: exact in float32
            return matmul(round(slice(g, 1, 0, 1) * 4.0), round(slice(g, 0, 0, 1) * 4.0));
        }
      };
      auto [E, Ed] = place(stack_of(s, exact), dt);
      check_svd("exact-rank", Family::RankDeficient, dt, s, E, Ed);
    }
    // A NaN in one batch entry.
    for (const Size& s : {Size{3, 7, 5}, Size{3, 32, 32}, Size{3, 5, 7}})
      expect_svd_names_nan_entry(s, dt, dev());
  }
}

TEST_P(LinalgAccuracy, Eigh) {
  NoFallback nf(device_backend());
  std::mt19937 rng(102);
  for (DType dt : kDTypes)
    for (Family f : kFamilies)
      for (const Size& s : square_sizes(f, dt == float32 ? 256 : 512)) {
        auto [A, Ad] = place(stack_of(s, [&] { return symmetric(rng, f, s.n, dt); }), dt);
        auto e = la::eigh(Ad);
        Tensor w = host64(e.eigenvalues), V = host64(e.eigenvectors);
        check("eigh", "|AV-VW|", f, dt, s,
              ratio(matmul(A, V) - V * expand_dims(w, -2), A, double(s.n), dt));
        check("eigh", "|I-V'V|", f, dt, s, orth_ratio(V, dt));
      }
}

TEST_P(LinalgAccuracy, Qr) {
  NoFallback nf(device_backend());
  std::mt19937 rng(103);
  for (DType dt : kDTypes)
    for (Family f : kFamilies)
      for (const Size& s : rect_sizes(f, dt == float32 ? 1024 : 512)) {
        auto [A, Ad] = place(stack_of(s, [&] { return general(rng, f, s.m, s.n, dt); }), dt);
        auto q = la::qr(Ad);
        Tensor Q = host64(q.Q), R = host64(q.R);
        check("qr", "|A-QR|", f, dt, s, ratio(A - matmul(Q, R), A, double(s.m), dt));
        check("qr", "|I-Q'Q|", f, dt, s, orth_ratio(Q, dt));
      }
}

TEST_P(LinalgAccuracy, Eig) {
  NoFallback nf(device_backend());
  std::mt19937 rng(104);
  for (DType dt : kDTypes) {
    if (!runs(OpCode::Eig, dt)) continue;
    for (Family f : kFamilies)
      for (const Size& s : square_sizes(f, 256)) {
        auto [A, Ad] = place(stack_of(s, [&] { return general(rng, f, s.n, s.n, dt); }), dt);
        auto e = la::eig(Ad);
        Tensor w = host64(e.eigenvalues), V = host64(e.eigenvectors);
        Tensor Ac = astype(A, complex128);
        // LAPACK's eig residual (TESTING/EIG dget22): |A V - V W| / (|A| n eps), unit columns.
        check("eig", "|AV-VW|", f, dt, s,
              ratio(matmul(Ac, V) - V * expand_dims(w, -2), A, double(s.n), dt));
      }
  }
}

TEST_P(LinalgAccuracy, Lu) {
  NoFallback nf(device_backend());
  std::mt19937 rng(105);
  for (DType dt : kDTypes)
    for (Family f : kFamilies)
      for (const Size& s : rect_sizes(f, dt == float32 ? 1024 : 512)) {
        auto [A, Ad] = place(stack_of(s, [&] { return general(rng, f, s.m, s.n, dt); }), dt);
        auto d = la::lu(Ad);
        Tensor P = host64(d.P), L = host64(d.L), U = host64(d.U);
        // dget01: |P L U - A| / (n |A| eps).
        check("lu", "|A-PLU|", f, dt, s,
              ratio(matmul(P, matmul(L, U)) - A, A, double(std::max(s.m, s.n)), dt));
      }
}

TEST_P(LinalgAccuracy, Cholesky) {
  NoFallback nf(device_backend());
  std::mt19937 rng(106);
  for (DType dt : kDTypes)
    for (Family f : kFamilies) {
      if (f == Family::RankDeficient) continue;  // not positive definite
      for (const Size& s : square_sizes(f, dt == float32 ? 512 : 1024)) {
        auto [A, Ad] = place(stack_of(s, [&] { return spd(rng, f, s.n, dt); }), dt);
        Tensor L = host64(la::cholesky(Ad));
        // dpot01: |L L' - A| / (n |A| eps).
        check("cholesky", "|A-LL'|", f, dt, s,
              ratio(matmul(L, swapaxes(L, -1, -2)) - A, A, double(s.n), dt));
      }
    }
}

TEST_P(LinalgAccuracy, SolveBackwardError) {
  NoFallback nf(device_backend());
  std::mt19937 rng(107);
  for (DType dt : kDTypes)
    for (Family f : kFamilies) {
      if (f == Family::RankDeficient) continue;  // singular
      // Beyond cond 1/eps a float32 matrix may round to an exactly singular one (an
      // error, as in NumPy): cond 1e6 there.
      const double decades = dt == float32 ? 6.0 : 12.0;
      for (const Size& s : square_sizes(f, 1024)) {
        auto [A, Ad] =
            place(stack_of(s, [&] { return general(rng, f, s.n, s.n, dt, decades); }), dt);
        const Size bs{s.batch, s.n, 3};
        auto [B, Bd] = place(stack_of(bs, [&] { return gauss(rng, s.n, 3); }), dt);
        Tensor X = host64(la::solve(Ad, Bd));
        // dget02: |B - A X| / (|A| |X| n eps), per right-hand side.
        Tensor R = B - matmul(A, X);
        Tensor rn = sum(abs(R), {-2}), xn = sum(abs(X), {-2});
        Tensor an = expand_dims(max(sum(abs(A), {-2}), {-1}), -1);
        const double r = max(rn / (an * xn)).item<double>() / (double(s.n) * unit_roundoff(dt));
        check("solve", "|B-AX|/(|A||X|)", f, dt, s, r);
      }
    }
}

// The other kernels of Backend::linalg on the same backend: inv, det/slogdet, lu_solve,
// solve_triangular, the values-only variants, and the batched error reports.
TEST_P(LinalgAccuracy, InvDetLuSolveTriangularAndErrors) {
  NoFallback nf(device_backend());
  std::mt19937 rng(108);
  for (DType dt : kDTypes)
    for (const Size& s : square_sizes(Family::Random, 256)) {
      auto [A, Ad] = place(stack_of(s, [&] { return general(rng, Family::Random, s.n, s.n, dt); }),
                           dt);
      const Size bs{s.batch, s.n, 2};
      auto [B, Bd] = place(stack_of(bs, [&] { return gauss(rng, s.n, 2); }), dt);
      const double n = double(s.n);
      Tensor I = eye(s.n, s.n, 0, float64);
      // inv: |I - A inv(A)| / (|A| |inv(A)| n eps) (dget03).
      Tensor X = host64(la::inv(Ad));
      const double an = max(sum(abs(A), {-2})).item<double>();
      const double xn = max(sum(abs(X), {-2})).item<double>();
      check("inv", "|I-AX|/(|A||X|)", Family::Random, dt, s,
            ratio(I - matmul(A, X), Tensor(), n, dt) / (an * xn));
      // det and slogdet agree with the float64 CPU LU of the same (rounded) matrix, within
      // the determinant's condition (n eps cond(A)).
      // (det itself only where it cannot overflow float32.)
      auto sl = la::slogdet(Ad);
      auto sl64 = la::slogdet(A);
      const double dtol = 20 * n * unit_roundoff(dt) * max(la::cond(A)).item<double>();
      if (s.n <= 33) {
        Tensor d = host64(la::det(Ad)), d64 = la::det(A);
        EXPECT_LE(max(abs(d - d64) / abs(d64)).item<double>(), dtol) << size_str(s);
      }
      EXPECT_TRUE(all(equal(host64(sl.sign), sl64.sign)).item<bool>()) << size_str(s);
      EXPECT_LE(max(abs(host64(sl.logabsdet) - sl64.logabsdet)).item<double>(), dtol)
          << size_str(s);
      // lu_solve backward error (dget02).
      auto f = la::lu_factor(Ad);
      Tensor Y = host64(la::lu_solve(f.LU, f.pivots, Bd));
      Tensor rn = sum(abs(B - matmul(A, Y)), {-2}), yn = sum(abs(Y), {-2});
      Tensor anb = expand_dims(max(sum(abs(A), {-2}), {-1}), -1);
      check("lu_solve", "|B-AX|/(|A||X|)", Family::Random, dt, s,
            max(rn / (anb * yn)).item<double>() / (n * unit_roundoff(dt)));
      // solve_triangular (upper, and lower with a unit diagonal) backward error.
      for (bool lower : {false, true}) {
        // Lower: unit diagonal, small multipliers (random unit triangles grow like 2^n).
        Tensor Id = eye(s.n, s.n, 0, dt, dev());
        Tensor Td = lower ? tril(Ad, -1) * (1.0 / n) + Id : triu(Ad) + Id * n;
        Tensor T = host64(Td);
        Tensor Z = host64(la::solve_triangular(Td, Bd, lower, lower));
        Tensor r2 = sum(abs(B - matmul(T, Z)), {-2}), z2 = sum(abs(Z), {-2});
        Tensor tn = expand_dims(max(sum(abs(T), {-2}), {-1}), -1);
        check("solve_triangular", "|B-TX|/(|T||X|)", Family::Random, dt, s,
              max(r2 / (tn * z2)).item<double>() / (n * unit_roundoff(dt)));
      }
      // Values only: svdvals and eigvals match the full decompositions.
      Tensor sv = host64(la::svdvals(Ad)), sfull = host64(la::svd(Ad, false).S);
      EXPECT_LE(max(abs(sv - sfull)).item<double>(),
                50 * n * unit_roundoff(dt) * max(sfull).item<double>());
      if (runs(OpCode::Eig, dt)) {
        Tensor ev = host64(la::eigvals(Ad));
        EXPECT_EQ(ev.shape(), host64(la::eig(Ad).eigenvalues).shape());
      }
    }
  // Errors name the failing batch entry: a singular second matrix, then NaN in the third.
  for (DType dt : kDTypes) {
    std::vector<double> v = {2, 1, 1, 3, 1, 2, 2, 4, 1, 0, 0, 1};
    Tensor a = tt::make(v, {3, 2, 2}, dt).to(dev());
    try {
      la::inv(a).eval();
      ADD_FAILURE() << "inv: no error";
    } catch (const LinAlgError& e) {
      EXPECT_NE(std::string(e.what()).find("batch index (1,)"), std::string::npos) << e.what();
    }
    v[10] = std::nan("");
    Tensor b = tt::make(v, {3, 2, 2}, dt).to(dev());
    for (int op = 0; op < 4; ++op) {
      if (op == 2 && !runs(OpCode::Eig, dt)) continue;
      try {
        switch (op) {
          case 0: la::svdvals(b).eval(); break;
          case 1: la::qr(b).R.eval(); break;
          case 2: la::eigvals(b).eval(); break;
          default: la::lu(b).U.eval(); break;
        }
        ADD_FAILURE() << "op " << op << ": no error";
      } catch (const LinAlgError& e) {
        EXPECT_NE(std::string(e.what()).find("NaN or Inf (batch index (2,))"), std::string::npos)
            << e.what();
      }
    }
    Tensor spd_bad = tt::make({4, 1, 1, 3, 1, 2, 2, 1}, {2, 2, 2}, dt).to(dev());
    EXPECT_THROW(la::cholesky(spd_bad).eval(), LinAlgError);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, LinalgAccuracy,
                         ::testing::Values("cpu", "cuda", "torch", "torch:cuda", "mlx"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), ':', '_');
                           return n;
                         });
