// `tmath profile` rows for linear algebra: svd, eigh, eig, qr, solve, cholesky and inv at
// 512 and 1024 (float32, float64) and svd of a 512x32x32 batch, on every selected
// backend, next to LAPACK (OpenBLAS's Fortran routines called directly on the same
// data) measured in the same run.
#pragma once

#include <set>
#include <string>

namespace tmath::cli {

struct LinalgProfileOptions {
  bool quick = false;
  std::string backend;        // empty: every available backend
  std::set<std::string> ops;  // empty: all (otherwise only the linalg ops named here)
};

// Whether `op` names a linalg profile row ("svd", "eigh", ..., "svd_batched").
bool is_linalg_profile_op(const std::string& op);
// Measures and prints the linalg table; returns the number of failed measurements.
int run_profile_linalg(const LinalgProfileOptions& opt);

}  // namespace tmath::cli
