#include "backend/cuda/nvrtc.h"

#include <nvrtc.h>

#include <chrono>
#include <cstring>
#include <iterator>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "jit/jit.h"

#ifndef TMATH_VERSION
#define TMATH_VERSION "dev"
#endif

namespace tmath::cuda {
namespace {

// src/core/philox.h, embedded at build time (cmake/cuda.cmake).
const char* const kPhiloxSource =
#include "philox_source.inc"
    ;

// Minimal <cstdint>/<cstring> for NVRTC, which has no C++ standard library.
const char* const kCstdint = R"(#pragma once
typedef signed char int8_t; typedef short int16_t; typedef int int32_t; typedef long long int64_t;
typedef unsigned char uint8_t; typedef unsigned short uint16_t; typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
namespace std {
using ::int8_t; using ::int16_t; using ::int32_t; using ::int64_t;
using ::uint8_t; using ::uint16_t; using ::uint32_t; using ::uint64_t;
}
)";
const char* const kCstring = "#pragma once\n";

// Compiler options besides the architecture (part of the kernel cache key).
// --fmad=false: no FMA contraction, so results match the CPU backend's
// -ffp-contract=off kernels (and Philox samples stay bit-identical).
// --minimal: the programs use no textures, device-side runtime API or device
// launches, so NVRTC leaves those declarations out (a shorter front end; the
// generated code is the same).
const char* const kOptions[] = {"-std=c++17", "--fmad=false", "--minimal"};

std::string program_log(nvrtcProgram prog) {
  size_t n = 0;
  if (nvrtcGetProgramLogSize(prog, &n) != NVRTC_SUCCESS || n <= 1) return {};
  std::string log(n, '\0');
  if (nvrtcGetProgramLog(prog, log.data()) != NVRTC_SUCCESS) return {};
  log.resize(std::strlen(log.c_str()));
  return log;
}

// Frees an NVRTC program on scope exit.
struct ProgramGuard {
  nvrtcProgram p = nullptr;
  ~ProgramGuard() {
    if (p) nvrtcDestroyProgram(&p);
  }
};

}  // namespace

void throw_nvrtc_error(const char* op, std::string_view call, nvrtcResult e,
                       const std::string& log) {
  // Built by appending only (GCC 12 warns falsely on "literal" + std::string here).
  std::string msg = "[";
  msg.append(op).append("] ").append(call).append(" failed: ").append(nvrtcGetErrorString(e));
  if (!log.empty()) msg += "\n" + log;
  throw Error(msg);
}

std::string compile_program(const ProgramSource& src, const std::string& arch_option,
                            const char* op) {
  ProgramGuard guard;
  std::vector<const char*> hdrs, names;
  if (src.philox) {
    hdrs = {kPhiloxSource, kCstdint, kCstring};
    names = {"philox.h", "cstdint", "cstring"};
  }
  nvrtcResult r = nvrtcCreateProgram(&guard.p, src.source.c_str(), (src.name + ".cu").c_str(),
                                     static_cast<int>(hdrs.size()), hdrs.data(), names.data());
  if (r != NVRTC_SUCCESS) throw_nvrtc_error(op, "nvrtcCreateProgram", r, {});
  const bool sass = arch_option.find("sm_") != std::string::npos;
  std::vector<const char*> opts = {arch_option.c_str()};
  opts.insert(opts.end(), std::begin(kOptions), std::end(kOptions));
  r = nvrtcCompileProgram(guard.p, static_cast<int>(opts.size()), opts.data());
  if (r != NVRTC_SUCCESS)
    throw_nvrtc_error(op, "nvrtcCompileProgram(" + src.name + ")", r, program_log(guard.p));
  size_t size = 0;
  std::string image;
  if (sass) {
    r = nvrtcGetCUBINSize(guard.p, &size);
    if (r != NVRTC_SUCCESS) throw_nvrtc_error(op, "nvrtcGetCUBINSize", r, {});
    image.resize(size);
    r = nvrtcGetCUBIN(guard.p, image.data());
    if (r != NVRTC_SUCCESS) throw_nvrtc_error(op, "nvrtcGetCUBIN", r, {});
  } else {
    r = nvrtcGetPTXSize(guard.p, &size);
    if (r != NVRTC_SUCCESS) throw_nvrtc_error(op, "nvrtcGetPTXSize", r, {});
    image.resize(size);
    r = nvrtcGetPTX(guard.p, image.data());
    if (r != NVRTC_SUCCESS) throw_nvrtc_error(op, "nvrtcGetPTX", r, {});
  }
  return image;
}

std::string compile_program_cached(const ProgramSource& src, const std::string& arch_option,
                                   const char* op) {
  int major = 0, minor = 0;
  nvrtcVersion(&major, &minor);
  // Everything that decides the binary: engine, compiler, target, options, headers, text.
  std::string key = "tmath " TMATH_VERSION "\nnvrtc " + std::to_string(major) + "." +
                    std::to_string(minor) + "\n" + arch_option;
  for (const char* o : kOptions) key += std::string(" ") + o;
  key += "\n";
  if (src.philox) key += kPhiloxSource;
  key += "\n" + src.name + "\n" + src.source;
  if (auto hit = jit::cache_load("cuda", key)) {
    jit::count_cache(jit::CacheEvent::DiskHit);
    if (jit::log_enabled("jit")) jit::log("jit", "kernel cache: disk hit for " + src.name);
    return std::move(*hit);
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::string image = compile_program(src, arch_option, op);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  jit::count_cache(jit::CacheEvent::Miss, ms);
  if (jit::log_enabled("jit"))
    jit::log("jit", "compiled " + src.name + " in " + std::to_string(ms) + " ms");
  jit::cache_store("cuda", key, image);
  return image;
}

}  // namespace tmath::cuda
