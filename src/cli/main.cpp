// tmath: engine information, the op profile and a quick self-test.
#include <cstdio>
#include <exception>
#include <string>

#include "cli/cli.h"

namespace tmath::cli {

void print_usage() {
  std::fprintf(stderr,
               "usage: tmath <command> [options]\n"
               "\n"
               "commands:\n"
               "  info                      version, backends, BLAS, threads\n"
               "      --fallbacks           per device backend, the (op, dtype) pairs that\n"
               "                            fall back to the cpu backend\n"
               "  profile [options]         time the op table against native references\n"
               "      --quick               fewer repeats (under a minute on 2 cores)\n"
               "      --json FILE           also write the results as JSON\n"
               "      --backend NAME        only this backend (default: every available one)\n"
               "      --ops LIST            only these ops, comma separated (e.g. matmul,tanh)\n"
               "      --dtypes LIST         only these dtypes (e.g. float32,float64)\n"
               "      --sizes LIST          only these sizes n of the (n, n) rows (e.g. 512,1024)\n"
               "      --no-numpy            skip the NumPy reference (cpu rows)\n"
               "      --no-torch            skip the PyTorch reference (GPU rows; the Python\n"
               "                            in $TMATH_TORCH_PYTHON, .venv or python3 with torch)\n"
               "  selftest                  quick end-to-end checks against known values\n"
               "  help                      this text\n");
}

}  // namespace tmath::cli

int main(int argc, char** argv) {
  using namespace tmath::cli;
  if (argc < 2) {
    print_usage();
    return kUsageError;
  }
  const std::string cmd = argv[1];
  const Args args(argv + 2, argv + argc);
  try {
    if (cmd == "info") return run_info(args);
    if (cmd == "profile") return run_profile(args);
    if (cmd == "selftest") return run_selftest(args);
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
      print_usage();
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tmath %s: %s\n", cmd.c_str(), e.what());
    return 1;
  }
  std::fprintf(stderr, "tmath: unknown command '%s'\n\n", cmd.c_str());
  print_usage();
  return kUsageError;
}
