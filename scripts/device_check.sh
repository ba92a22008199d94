#!/usr/bin/env bash
# The GPU machine's full check: build with the CUDA plugin (scripts/device_build.sh),
# then `tmath profile --backend cuda` (PyTorch reference from the machine's python3),
# every C++ test (CUDA suite and backend_ops on cuda included) and, with MEMCHECK=1,
# the CUDA tests under compute-sanitizer memcheck (the OOM test's deliberate failed
# cudaMalloc calls are reported as API errors, not memory errors); CTEST=0 skips
# the C++ tests. Logs go to $OUT
# (default: ./device-out); machine details and step times are printed.
# Usage: scripts/device_check.sh [profile-args...]
set -uo pipefail
export PATH=$PATH:/usr/local/cuda/bin
cd "$(dirname "$0")/.."
OUT=${OUT:-device-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv 2>&1
start=$SECONDS
if ! scripts/device_build.sh build-gpu > "$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"
  exit 1
fi
echo "build: $((SECONDS - start)) s"
LIBDIR=/opt/deps/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$LIBDIR:$LIBDIR/openblas-pthread:${LD_LIBRARY_PATH:-}
build-gpu/tmath info 2>&1
start=$SECONDS
timeout 300 build-gpu/tmath profile --backend cuda --json "$OUT/profile_cuda.json" "$@" \
  > "$OUT/profile_cuda.md" 2> "$OUT/profile_cuda.err"
echo "profile: rc $? in $((SECONDS - start)) s"
if [ "${CTEST:-1}" = 1 ]; then
  start=$SECONDS
  (cd build-gpu && timeout 240 ctest -j4 -E CudaCodegen --output-on-failure) > "$OUT/ctest.log" 2>&1
  echo "ctest: rc $? in $((SECONDS - start)) s"
  grep -E "tests passed|\(Failed\)|backend_ops\]" "$OUT/ctest.log" | head -20
fi
if [ "${MEMCHECK:-0}" = 1 ] && command -v compute-sanitizer > /dev/null; then
  start=$SECONDS
  timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/tmath_tests \
    --gtest_filter='Cuda.*' > "$OUT/memcheck.log" 2>&1
  echo "memcheck: rc $? in $((SECONDS - start)) s"
  tail -3 "$OUT/memcheck.log"
fi
cat "$OUT/profile_cuda.md"
