// `tmath info`: version, backends, BLAS and threads.
#include <cblas.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli.h"
#include "tmath/backend.h"
#include "tmath/device.h"
#include "tmath/memory.h"
#include "tmath/precision.h"
#include "tmath/transforms.h"

#ifndef TMATH_VERSION
#define TMATH_VERSION "unknown"
#endif

namespace tmath::cli {
namespace {

// Backends the engine knows of; the ones not registered in this build are listed as such.
const char* const kKnownBackends[] = {"cpu", "cuda", "mlx", "torch"};

std::string cpuinfo_field(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        auto v = line.substr(colon + 1);
        v.erase(0, v.find_first_not_of(" \t"));
        return v;
      }
    }
  }
  return {};
}

std::string simd_summary() {
  std::istringstream words(cpuinfo_field("flags"));
  const std::set<std::string> flags{std::istream_iterator<std::string>(words),
                                    std::istream_iterator<std::string>()};
  std::string out;
  for (const char* f : {"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_bf16",
                        "avx512_fp16", "amx_tile", "asimd", "sve"}) {
    if (!flags.count(f)) continue;
    if (!out.empty()) out += ' ';
    out += f;
  }
  return out;
}

const char* fallback_name(FallbackPolicy p) {
  switch (p) {
    case FallbackPolicy::Allow:
      return "allow";
    case FallbackPolicy::Warn:
      return "warn";
    case FallbackPolicy::Error:
      return "error";
  }
  return "?";
}

std::string join(const std::vector<std::string>& xs, const char* sep) {
  std::string out;
  for (const auto& x : xs) {
    if (!out.empty()) out += sep;
    out += x;
  }
  return out;
}

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) {
    std::snprintf(buf, sizeof buf, "%.1f GiB", b / double(1ull << 30));
  } else if (b >= (1ull << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / double(1ull << 20));
  } else {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  }
  return buf;
}

}  // namespace

std::string executable_dir() {
  std::vector<char> buf(4096);
  ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) return ".";
  std::string path(buf.data(), static_cast<size_t>(n));
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

MachineInfo machine_info() {
  MachineInfo m;
  m.cpu_model = cpuinfo_field("model name");
  if (m.cpu_model.empty()) m.cpu_model = "unknown";
  m.cores = static_cast<int>(std::thread::hardware_concurrency());
  m.simd = simd_summary();
  m.blas = openblas_get_config();
  m.blas_threads = openblas_get_num_threads();
  if (auto cpu = get_backend("cpu")) m.engine_threads = cpu->info().threads;
  m.version = TMATH_VERSION;
#if defined(__clang__)
  m.compiler = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  m.compiler = std::string("gcc ") + __VERSION__;
#endif
  return m;
}

namespace {
// `tmath info --fallbacks`: per device backend and framework adapter, the (op, dtype)
// pairs it has no kernel for. A device backend's run on the cpu backend instead (copies
// counted; TMATH_FALLBACK=error refuses); an adapter that shares a native device's memory
// (torch, torch:cuda) leaves them to that device's native backend, without copies.
int print_fallbacks() {
  auto cpu = get_backend("cpu");
  int shown = 0;
  for (const auto& b : backends()) {
    if (b->name() == "cpu" || !b->available()) continue;
    const bool shares = b->device_type() != DeviceType::MLX && b->name() != "cuda";
    ++shown;
    int native = 0, fallback = 0;
    std::vector<std::string> lines;
    for (int oi = 0; oi < kNumOpCodes; ++oi) {
      const auto op = static_cast<OpCode>(oi);
      std::vector<std::string> dts;
      int cpu_dts = 0;
      for (int di = 0; di < kNumDTypes; ++di) {
        const auto dt = static_cast<DType>(di);
        if (cpu && !cpu->supports(op, dt)) continue;
        ++cpu_dts;
        if (b->supports(op, dt)) {
          ++native;
        } else {
          ++fallback;
          dts.emplace_back(dtype_name(dt));
        }
      }
      if (dts.empty()) continue;
      lines.push_back("    " + std::string(op_name(op)) + ": " +
                      (static_cast<int>(dts.size()) == cpu_dts ? std::string("every dtype")
                                                                : join(dts, " ")));
    }
    if (shares) {
      const char* dev = b->device_type() == DeviceType::CPU ? "cpu" : "cuda";
      std::printf("%s: %d (op, dtype) pairs native, %d run on the %s backend (same memory, "
                  "no copies):\n",
                  std::string(b->name()).c_str(), native, fallback, dev);
    } else {
      std::printf("%s: %d (op, dtype) pairs native, %d fall back to the cpu backend:\n",
                  std::string(b->name()).c_str(), native, fallback);
    }
    for (const auto& l : lines) std::printf("%s\n", l.c_str());
  }
  if (!shown) std::printf("no device backend available: every op runs on the cpu backend\n");
  return 0;
}
}  // namespace

int run_info(const Args& args) {
  (void)load_backend("torch");  // on demand elsewhere; info reports it where it was built
  if (args.size() == 1 && args[0] == "--fallbacks") return print_fallbacks();
  if (!args.empty()) {
    std::fprintf(stderr, "tmath info: unexpected argument '%s'\n\n", args[0].c_str());
    print_usage();
    return kUsageError;
  }
  const MachineInfo m = machine_info();
  std::printf("tmath %s (%s)\n", m.version.c_str(), m.compiler.c_str());
  std::printf("cpu:      %s, %d logical cores\n", m.cpu_model.c_str(), m.cores);
  std::printf("simd:     %s\n", m.simd.empty() ? "none detected" : m.simd.c_str());
  std::printf("blas:     %s (%s core, %d threads)\n", m.blas.c_str(), openblas_get_corename(),
              m.blas_threads);
  std::printf("threads:  %d (engine cpu backend)\n", m.engine_threads);
  std::printf("device:   %s (default)\n", default_device().str().c_str());
  std::printf("eager:    %s\n", eager_mode() ? "on" : "off (lazy)");
  std::printf("matmul:   precision %s\n",
              std::string(matmul_precision_name(matmul_precision())).c_str());
  std::printf("fallback: %s\n", fallback_name(fallback_policy()));
  const MemoryStats mem = memory_stats(kCPU);
  std::printf("memory:   limit %s\n",
              mem.limit_bytes ? human_bytes(mem.limit_bytes).c_str() : "none");
  std::printf("priority: %s\n", join(backend_priority(), ", ").c_str());

  std::printf("\nbackends:\n");
  const auto registered = backends();
  std::vector<std::string> names;
  for (const auto& b : registered) names.emplace_back(b->name());
  for (const char* known : kKnownBackends) {
    if (std::find(names.begin(), names.end(), known) == names.end()) names.emplace_back(known);
  }
  for (const auto& name : names) {
    auto b = get_backend(name);
    if (!b) {
      std::printf("  %-10s not built\n", name.c_str());
      continue;
    }
    const BackendInfo bi = b->info();
    if (!bi.built) {
      std::printf("  %-10s not built%s%s\n", name.c_str(), bi.reason.empty() ? "" : ": ",
                  bi.reason.c_str());
      continue;
    }
    if (!bi.available) {
      std::printf("  %-10s built, unavailable: %s\n", name.c_str(),
                  bi.reason.empty() ? "no reason given" : bi.reason.c_str());
      continue;
    }
    std::printf("  %-10s built, available; devices: %s; threads: %d\n", name.c_str(),
                bi.devices.empty() ? "none" : join(bi.devices, ", ").c_str(), bi.threads);
    std::vector<std::string> libs;
    for (const auto& [lib, ver] : bi.libraries) libs.push_back(lib + " " + ver);
    if (!libs.empty()) std::printf("             libraries: %s\n", join(libs, ", ").c_str());
  }

  std::printf("\nenvironment:\n");
  bool any = false;
  for (const char* var : {"TMATH_EAGER", "TMATH_BACKEND", "TMATH_FALLBACK", "TMATH_NUM_THREADS",
                          "TMATH_MEMORY_LIMIT", "TMATH_DEVICE", "TMATH_MLX", "TMATH_TORCH", "OPENBLAS_NUM_THREADS"}) {
    if (const char* v = std::getenv(var)) {
      std::printf("  %s=%s\n", var, v);
      any = true;
    }
  }
  if (!any) std::printf("  (no TMATH_* variables set)\n");
  return 0;
}

}  // namespace tmath::cli
