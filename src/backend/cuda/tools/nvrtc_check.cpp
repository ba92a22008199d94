// Compiles every program the CUDA backend can generate with NVRTC for one
// architecture (default sm_90: PTX and SASS; compute_90: PTX only) and reports
// the failures. Needs no GPU or driver, so CI runs it (ctest:
// CudaCodegen.EveryProgramCompiles, with compute_90).
//   tmath_cuda_codegen_check [sm_XY|compute_XY] [threads]
//   tmath_cuda_codegen_check --dump NAME   print the source and PTX of the programs
//                                          whose name contains NAME (e.g. tanh_float32)
//   tmath_cuda_codegen_check --time [RUNS] NVRTC time of the chain10 fused program per
//                                          kernel variant (median of RUNS, default 7):
//                                          front end (compute_90 PTX) and full (sm_90 CUBIN)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend/cuda/codegen.h"
#include "backend/cuda/linalg_kernels.h"
#include "backend/cuda/nvrtc.h"

using namespace tmath;
namespace gen = tmath::cuda::gen;

namespace {

const DType kAll[] = {DType::Bool,      DType::Int8,      DType::Int16,     DType::Int32,
                      DType::Int64,     DType::UInt8,     DType::UInt16,    DType::UInt32,
                      DType::UInt64,    DType::Float16,   DType::BFloat16,  DType::Float32,
                      DType::Float64,   DType::Complex64, DType::Complex128};
const DType kFloats[] = {DType::Float16, DType::BFloat16, DType::Float32, DType::Float64};

DType unary_out(OpCode op, DType dt) {
  if (op == OpCode::IsNan || op == OpCode::IsInf || op == OpCode::IsFinite) return DType::Bool;
  if ((op == OpCode::Abs || op == OpCode::Real || op == OpCode::Imag) && is_complex(dt))
    return real_type(dt);
  return dt;
}

// chain10 as the fusion planner forms it (src/jit/fusion.cpp build_program):
// x -> tanh(x * 1.01 + 0.5) five times, float32, 15 ops; an input enters where it is
// first read and the two scalar constants each take one input (equal constants share).
FusedProgram chain10() {
  using K = FusedInstr::Kind;
  FusedProgram f;
  f.instrs = {{K::Input, OpCode::Count, DType::Float32, 0}};
  int x = 0, c101 = -1, c05 = -1;
  auto input = [&](int& v, int index) {
    if (v < 0) {
      f.instrs.push_back({K::Input, OpCode::Count, DType::Float32, index});
      v = static_cast<int>(f.instrs.size()) - 1;
    }
    return v;
  };
  auto push = [&](FusedInstr in) {
    f.instrs.push_back(in);
    return static_cast<int>(f.instrs.size()) - 1;
  };
  for (int i = 0; i < 5; ++i) {
    const int m = push({K::Binary, OpCode::Multiply, DType::Float32, x, input(c101, 1)});
    const int a = push({K::Binary, OpCode::Add, DType::Float32, m, input(c05, 2)});
    x = push({K::Unary, OpCode::Tanh, DType::Float32, a});
  }
  f.num_inputs = 3;
  return f;
}

std::vector<tmath::cuda::ProgramSource> all_programs() {
  std::vector<tmath::cuda::ProgramSource> ps;
  for (int o = 0; o < kNumOpCodes; ++o) {
    const auto op = static_cast<OpCode>(o);
    for (DType dt : kAll) {
      if (is_unary(op) && gen::unary_supported(op, dt))
        ps.push_back(gen::unary(op, dt, unary_out(op, dt)));
      if (is_binary(op) && gen::binary_supported(op, dt))
        ps.push_back(gen::binary(op, dt, is_predicate(op) ? DType::Bool : dt));
    }
  }
  for (size_t s : {1, 2, 4, 8, 16}) {
    ps.push_back(gen::where(s));
    ps.push_back(gen::fill(s));
    ps.push_back(gen::take(s));
  }
  for (DType a : {DType::Bool, DType::Int16, DType::Float32, DType::Float64, DType::Complex128})
    ps.push_back(gen::put(OpCode::Put, a));  // one program per item size
  for (DType a : kAll) {
    if (gen::put_supported(OpCode::PutAdd, a)) ps.push_back(gen::put(OpCode::PutAdd, a));
    ps.push_back(gen::arange(a));
    for (DType b : kAll) ps.push_back(gen::copy(a, b));
    if (a == DType::Bool || is_integral(a)) ps.push_back(gen::int_matmul(a));
  }
  for (OpCode op :
       {OpCode::Sum, OpCode::Prod, OpCode::Max, OpCode::Min, OpCode::Any, OpCode::All}) {
    for (DType dt : kAll) {
      if ((op == OpCode::Max || op == OpCode::Min) && is_complex(dt)) continue;
      std::vector<DType> outs = {dt};
      if (op == OpCode::Any || op == OpCode::All) outs = {DType::Bool};
      if ((op == OpCode::Sum || op == OpCode::Prod) && accumulate_type(dt) != dt)
        outs.push_back(accumulate_type(dt));
      for (DType out : outs) ps.push_back(gen::reduce(op, dt, out));
    }
  }
  for (DType dt : kAll) {
    if (!is_complex(dt)) {
      ps.push_back(gen::arg_reduce(OpCode::ArgMax, dt));
      ps.push_back(gen::arg_reduce(OpCode::ArgMin, dt));
    }
    for (OpCode op : {OpCode::CumSum, OpCode::CumProd}) {
      ps.push_back(gen::scan(op, dt, dt));
      if (accumulate_type(dt) != dt) ps.push_back(gen::scan(op, dt, accumulate_type(dt)));
    }
  }
  for (DType dt : kFloats) {
    ps.push_back(gen::softmax(OpCode::Softmax, dt));
    ps.push_back(gen::softmax(OpCode::LogSoftmax, dt));
    for (int flags = 0; flags < 4; ++flags) ps.push_back(gen::layer_norm(dt, flags));
    // The one-kernel programs launches compile (warp, streaming block, block variants).
    ps.push_back(gen::softmax(OpCode::Softmax, dt, 0));
    ps.push_back(gen::softmax(OpCode::LogSoftmax, dt, 6));
    ps.push_back(gen::layer_norm(dt, 3, 9));
    ps.push_back(gen::random(OpCode::RandomUniform, dt));
    ps.push_back(gen::random(OpCode::RandomNormal, dt));
  }
  ps.push_back(gen::random(OpCode::RandomBits, DType::Int64));
  ps.push_back(gen::tiny());
  // Fused programs (src/jit): every instruction kind, with casts between dtypes.
  using K = FusedInstr::Kind;
  for (DType dt : {DType::Float16, DType::BFloat16, DType::Float32, DType::Float64,
                   DType::Complex64, DType::Int32}) {
    FusedProgram f;
    const bool cx = is_complex(dt);
    f.instrs = {{K::Input, OpCode::Count, dt, 0},
                {K::Input, OpCode::Count, dt, 1},
                {K::Unary, cx || !is_floating(dt) ? OpCode::Neg : OpCode::Exp, dt, 0},
                {K::Binary, OpCode::Multiply, dt, 2, 1},
                {K::Binary, OpCode::Equal, DType::Bool, 3, 0},
                {K::Where, OpCode::Count, dt, 4, 3, 0},
                {K::Cast, OpCode::Copy, DType::Float32, 5},
                {K::Unary, OpCode::Tanh, DType::Float32, 6}};
    f.num_inputs = 2;
    if (gen::fused_supported(f)) ps.push_back(gen::fused(f));
    if (gen::fused_supported(f) && dt == DType::Float16)
      for (int variant = 0; variant < 4; ++variant) ps.push_back(gen::fused(f, variant));
  }
  ps.push_back(gen::fused(chain10()));
  for (DType dt : {DType::Float32, DType::Float64, DType::Complex64, DType::Complex128}) {
    ps.push_back(tmath::cuda::linalg_kernels(dt));
    ps.push_back(tmath::cuda::qr_small_kernel(dt));
    ps.push_back(tmath::cuda::cholesky_small_kernel(dt));
    ps.push_back(tmath::cuda::lu_solve_small_kernel(dt));
  }
  for (DType dt : {DType::Float32, DType::Float64})
    ps.push_back(tmath::cuda::svd_jacobi_kernel(dt));
  return ps;
}

}  // namespace

// Prints source and PTX (compute_90) of the programs whose name contains `name`.
int dump(const std::string& name) {
  int found = 0;
  for (const auto& p : all_programs()) {
    if (p.name.find(name) == std::string::npos) continue;
    ++found;
    std::printf("// ==== %s: source ====\n%s\n// ==== %s: PTX ====\n%s\n", p.name.c_str(),
                p.source.c_str(), p.name.c_str(),
                tmath::cuda::compile_program(p, "--gpu-architecture=compute_90", "dump").c_str());
  }
  if (!found) std::fprintf(stderr, "no program name contains '%s'\n", name.c_str());
  return found ? 0 : 1;
}

// Wall time (ms) of one compile of `src` for `arch_option`.
double compile_ms(const tmath::cuda::ProgramSource& src, const std::string& arch_option) {
  const auto t0 = std::chrono::steady_clock::now();
  (void)tmath::cuda::compile_program(src, arch_option, "time");
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Compile times of the chain10 program: each variant alone (as a first call compiles
// it) and all four kernels in one program. The runs are interleaved across variants
// so that a change in machine load affects them alike; median and minimum per column.
int time_chain10(int runs) {
  const FusedProgram f = chain10();
  // NVRTC's one-time start-up cost, paid by the first program of a process.
  std::printf("first compile in the process (tm_v, sm_90): %.1f ms\n",
              compile_ms(gen::fused(f, 1), "--gpu-architecture=sm_90"));
  std::vector<tmath::cuda::ProgramSource> srcs;
  for (int variant : {0, 1, 2, 3, -1}) srcs.push_back(gen::fused(f, variant));
  std::vector<std::vector<double>> ptx(srcs.size()), cubin(srcs.size());
  for (int r = 0; r < runs; ++r)
    for (size_t v = 0; v < srcs.size(); ++v) {
      ptx[v].push_back(compile_ms(srcs[v], "--gpu-architecture=compute_90"));
      cubin[v].push_back(compile_ms(srcs[v], "--gpu-architecture=sm_90"));
    }
  auto stats = [](std::vector<double>& ms) {
    std::sort(ms.begin(), ms.end());
    char buf[32];
    std::snprintf(buf, sizeof buf, "%6.1f / %6.1f", ms[ms.size() / 2], ms[0]);
    return std::string(buf);
  };
  std::vector<double> tiny_ms;
  for (int r = 0; r < runs; ++r) tiny_ms.push_back(compile_ms(gen::tiny(), "--gpu-architecture=sm_90"));
  std::printf("tiny-op queue program (%zu ops), CUBIN: %s ms (median / min)\n", gen::tiny_ops().size(),
              stats(tiny_ms).c_str());
  std::printf("chain10 (%zu instructions, %d inputs), %d runs, median / min ms\n", f.instrs.size(),
              f.num_inputs, runs);
  std::printf("%-8s %9s  %-24s %-24s\n", "variant", "source B", "PTX (front end + NVVM)",
              "CUBIN (PTX + ptxas)");
  static const char* const kNames[] = {"tm_c", "tm_v", "tm_s32", "tm_s64", "all 4"};
  for (size_t v = 0; v < srcs.size(); ++v)
    std::printf("%-8s %9zu  %-24s %-24s\n", kNames[v], srcs[v].source.size(), stats(ptx[v]).c_str(),
                stats(cubin[v]).c_str());
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--time") {
    try {
      return time_chain10(argc > 2 ? std::max(1, std::atoi(argv[2])) : 7);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
  }
  if (argc > 2 && std::string(argv[1]) == "--dump") {
    try {
      return dump(argv[2]);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
  }
  const std::string arch = argc > 1 ? argv[1] : "sm_90";
  const std::string opt = "--gpu-architecture=" + arch;
  unsigned threads = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2]))
                              : std::max(1u, std::thread::hardware_concurrency());
  std::vector<tmath::cuda::ProgramSource> progs;
  try {
    progs = all_programs();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "generating the programs failed: %s\n", e.what());
    return 1;
  }
  std::atomic<size_t> next{0};
  std::mutex mu;
  int failed = 0;
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < std::max(1u, threads); ++t) {
    pool.emplace_back([&] {
      for (size_t i; (i = next++) < progs.size();) {
        try {
          (void)tmath::cuda::compile_program(progs[i], opt, "codegen_check");
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> lk(mu);
          if (++failed <= 5)
            std::fprintf(stderr, "FAILED %s:\n%s\n", progs[i].name.c_str(), e.what());
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  std::printf("%zu CUDA programs compiled for %s, %d failed\n", progs.size(), arch.c_str(), failed);
  return failed ? 1 : 0;
}
