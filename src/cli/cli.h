// The `tmath` command: subcommands and the helpers they share.
#pragma once

#include <string>
#include <vector>

namespace tmath::cli {

using Args = std::vector<std::string>;

// Exit code for bad usage (unknown command or flag).
inline constexpr int kUsageError = 2;

void print_usage();

int run_info(const Args& args);
int run_profile(const Args& args);
int run_selftest(const Args& args);

// What profile and info report about the machine.
struct MachineInfo {
  std::string cpu_model;
  int cores = 0;           // logical CPUs
  std::string simd;        // widest vector extensions the CPU reports
  std::string blas;        // openblas_get_config()
  int blas_threads = 0;    // openblas_get_num_threads()
  int engine_threads = 0;  // threads of the cpu backend
  std::string version;     // TMATH_VERSION
  std::string compiler;
};
MachineInfo machine_info();

// Directory holding the running executable (from /proc/self/exe).
std::string executable_dir();

}  // namespace tmath::cli
