// cuSOLVER's SVD routes for one square float32 matrix, timed with CUDA events and
// checked with LAPACK's ratios (|A - U S V^T|_1 / (|A|_1 n eps), |I - U^T U|_1 / (n eps),
// the same for V; eps the unit roundoff), on a random matrix and on one with
// singular values graded from 1 to 1e-12 (built as H1 diag(s) H2 from products of
// Householder reflections). Routes: gesvdj (the engine's choice, PyTorch's default),
// Xgesvdp (polar decomposition + syevd), and Xsyevd of A^T A alone as the floor of
// an eigh-based route. Built and run on the GPU machine:
//
//   g++ -O2 -std=c++20 bench/cuda/svd_routes.cpp -I/usr/local/cuda/include
//       -L/usr/local/cuda/lib64 -lcusolver -lcublas -lcudart -o svd_routes
//   svd_routes [n]
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace {

#define CK(x)                                                                  \
  do {                                                                         \
    auto r_ = (x);                                                             \
    if (static_cast<int>(r_) != 0) {                                           \
      std::fprintf(stderr, "%s failed: %d (line %d)\n", #x, static_cast<int>(r_), __LINE__); \
      std::exit(1);                                                            \
    }                                                                          \
  } while (0)

using Mat = std::vector<double>;  // column-major n x n

// Applies k random Householder reflections from the left to the columns of M.
void reflect(Mat& m, int n, std::mt19937& rng, int k) {
  std::normal_distribution<double> nd;
  std::vector<double> v(n);
  for (int r = 0; r < k; ++r) {
    double nn = 0;
    for (double& x : v) {
      x = nd(rng);
      nn += x * x;
    }
    for (int j = 0; j < n; ++j) {
      double d = 0;
      for (int i = 0; i < n; ++i) d += v[i] * m[i + j * n];
      d *= 2 / nn;
      for (int i = 0; i < n; ++i) m[i + j * n] -= d * v[i];
    }
  }
}

Mat graded(int n, std::mt19937& rng) {
  Mat m(n * n, 0.0);
  for (int i = 0; i < n; ++i) m[i + i * n] = std::pow(1e-12, double(i) / (n - 1));
  reflect(m, n, rng, 6);  // H1 D
  // (H1 D) H2 = (H2^T (H1 D)^T)^T
  Mat t(n * n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) t[j + i * n] = m[i + j * n];
  reflect(t, n, rng, 6);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) m[i + j * n] = t[j + i * n];
  return m;
}

double norm1(const Mat& m, int r, int c) {
  double best = 0;
  for (int j = 0; j < c; ++j) {
    double s = 0;
    for (int i = 0; i < r; ++i) s += std::fabs(m[i + j * r]);
    best = std::max(best, s);
  }
  return best;
}

// Ratios of A = U diag(S) V^T (U, V column-major n x n).
void ratios(const Mat& a, const std::vector<float>& u, const std::vector<float>& s,
            const std::vector<float>& v, int n, double* res, double* ou, double* ov) {
  const double eps = std::ldexp(1.0, -24);
  Mat r = a;
  for (int k = 0; k < n; ++k)
    for (int j = 0; j < n; ++j) {
      const double f = double(s[k]) * v[j + k * n];
      for (int i = 0; i < n; ++i) r[i + j * n] -= double(u[i + k * n]) * f;
    }
  *res = norm1(r, n, n) / (norm1(a, n, n) * n * eps);
  auto orth = [&](const std::vector<float>& q) {
    Mat g(n * n);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        double d = i == j ? -1.0 : 0.0;
        for (int k = 0; k < n; ++k) d += double(q[k + i * n]) * q[k + j * n];
        g[i + j * n] = d;
      }
    return norm1(g, n, n) / (n * eps);
  };
  *ou = orth(u);
  *ov = orth(v);
}

float time_ms(cudaStream_t st, const std::function<void()>& fn, int reps) {
  fn();
  CK(cudaStreamSynchronize(st));
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<float> t;
  for (int r = 0; r < reps; ++r) {
    cudaEventRecord(e0, st);
    fn();
    cudaEventRecord(e1, st);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 512;
  std::mt19937 rng(7);
  std::normal_distribution<double> nd;
  Mat rnd(n * n);
  for (double& x : rnd) x = nd(rng);
  const Mat gr = graded(n, rng);

  cudaStream_t st;
  CK(cudaStreamCreate(&st));
  cusolverDnHandle_t h;
  CK(cusolverDnCreate(&h));
  CK(cusolverDnSetStream(h, st));
  cusolverDnParams_t params;
  CK(cusolverDnCreateParams(&params));
  cublasHandle_t bh;
  CK(cublasCreate(&bh));
  CK(cublasSetStream(bh, st));

  const size_t bytes = size_t(n) * n * sizeof(float);
  float *dA0, *dA, *dU, *dV, *dS, *dG;
  int* dinfo;
  CK(cudaMalloc(&dA0, bytes));
  CK(cudaMalloc(&dA, bytes));
  CK(cudaMalloc(&dU, bytes));
  CK(cudaMalloc(&dV, bytes));
  CK(cudaMalloc(&dG, bytes));
  CK(cudaMalloc(&dS, n * sizeof(float)));
  CK(cudaMalloc(&dinfo, sizeof(int)));

  gesvdjInfo_t jinfo;
  CK(cusolverDnCreateGesvdjInfo(&jinfo));
  int lwork_j = 0;
  CK(cusolverDnSgesvdj_bufferSize(h, CUSOLVER_EIG_MODE_VECTOR, 0, n, n, dA, n, dS, dU, n, dV, n,
                                  &lwork_j, jinfo));
  float* wj;
  CK(cudaMalloc(&wj, size_t(lwork_j) * sizeof(float)));

  size_t dws_p = 0, hws_p = 0;
  CK(cusolverDnXgesvdp_bufferSize(h, params, CUSOLVER_EIG_MODE_VECTOR, 0, n, n, CUDA_R_32F, dA, n,
                                  CUDA_R_32F, dS, CUDA_R_32F, dU, n, CUDA_R_32F, dV, n,
                                  CUDA_R_32F, &dws_p, &hws_p));
  void* wp;
  CK(cudaMalloc(&wp, std::max<size_t>(dws_p, 1)));
  std::vector<char> hwp(std::max<size_t>(hws_p, 1));

  size_t dws_e = 0, hws_e = 0;
  CK(cusolverDnXsyevd_bufferSize(h, params, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, n,
                                 CUDA_R_32F, dG, n, CUDA_R_32F, dS, CUDA_R_32F, &dws_e, &hws_e));
  void* we;
  CK(cudaMalloc(&we, std::max<size_t>(dws_e, 1)));
  std::vector<char> hwe(std::max<size_t>(hws_e, 1));

  std::printf("svd routes, %d x %d float32 (median of 7, CUDA events; ratios bound 35)\n", n, n);
  for (int which = 0; which < 2; ++which) {
    const Mat& a = which == 0 ? rnd : gr;
    std::vector<float> af(a.begin(), a.end());
    CK(cudaMemcpy(dA0, af.data(), bytes, cudaMemcpyHostToDevice));
    std::vector<float> u(n * n), v(n * n), s(n);
    auto report = [&](const char* name, float ms, bool v_is_vt) {
      CK(cudaMemcpy(u.data(), dU, bytes, cudaMemcpyDeviceToHost));
      CK(cudaMemcpy(v.data(), dV, bytes, cudaMemcpyDeviceToHost));
      CK(cudaMemcpy(s.data(), dS, n * sizeof(float), cudaMemcpyDeviceToHost));
      if (v_is_vt) {
        std::vector<float> t(n * n);
        for (int i = 0; i < n; ++i)
          for (int j = 0; j < n; ++j) t[j + i * n] = v[i + j * n];
        v = t;
      }
      double res, ou, ov;
      ratios(a, u, s, v, n, &res, &ou, &ov);
      std::printf("  %-8s %-24s %8.3f ms   resid %7.2f  orth(U) %7.2f  orth(V) %7.2f\n",
                  which == 0 ? "random" : "graded", name, ms, res, ou, ov);
    };
    float ms = time_ms(st, [&] {
      CK(cudaMemcpyAsync(dA, dA0, bytes, cudaMemcpyDeviceToDevice, st));
      CK(cusolverDnSgesvdj(h, CUSOLVER_EIG_MODE_VECTOR, 0, n, n, dA, n, dS, dU, n, dV, n, wj,
                           lwork_j, dinfo, jinfo));
    }, 7);
    report("gesvdj (default tol)", ms, false);
    double herr = 0;
    ms = time_ms(st, [&] {
      CK(cudaMemcpyAsync(dA, dA0, bytes, cudaMemcpyDeviceToDevice, st));
      CK(cusolverDnXgesvdp(h, params, CUSOLVER_EIG_MODE_VECTOR, 0, n, n, CUDA_R_32F, dA, n,
                           CUDA_R_32F, dS, CUDA_R_32F, dU, n, CUDA_R_32F, dV, n, CUDA_R_32F, wp,
                           dws_p, hwp.data(), hws_p, dinfo, &herr));
    }, 7);
    report("Xgesvdp (polar+syevd)", ms, false);
    std::printf("           Xgesvdp h_err_sigma %.3g\n", herr);
    const float one = 1, zero = 0;
    ms = time_ms(st, [&] {
      CK(cublasSgemm(bh, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &one, dA0, n, dA0, n, &zero, dG, n));
      CK(cusolverDnXsyevd(h, params, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, n,
                          CUDA_R_32F, dG, n, CUDA_R_32F, dS, CUDA_R_32F, we, dws_e, hwe.data(),
                          hws_e, dinfo));
    }, 7);
    std::printf("  %-8s %-24s %8.3f ms   (A^T A and its eigh only: the floor of that route)\n",
                which == 0 ? "random" : "graded", "gemm + Xsyevd", ms);
  }
  return 0;
}
