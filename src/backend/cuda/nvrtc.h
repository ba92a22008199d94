// NVRTC compilation of a generated program (no CUDA driver needed), shared by
// the kernel cache (runtime.cpp) and the CI check that compiles every program.
#pragma once

#include <string>

#include "backend/cuda/runtime.h"

namespace tmath::cuda {

// Compiles `src` with `arch_option` ("--gpu-architecture=sm_XY" gives a CUBIN,
// "--gpu-architecture=compute_XY" PTX) and returns the image. Throws an Error
// naming `op` with the compiler log on failure.
std::string compile_program(const ProgramSource& src, const std::string& arch_option,
                            const char* op);
// compile_program through the on-disk kernel cache (src/jit): the key holds the
// engine and NVRTC versions, the options and the whole program text.
std::string compile_program_cached(const ProgramSource& src, const std::string& arch_option,
                                   const char* op);

}  // namespace tmath::cuda
