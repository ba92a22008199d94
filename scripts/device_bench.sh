#!/usr/bin/env bash
# The GPU machine's extra measurements, after scripts/device_check.sh has built
# build-gpu: fusion start-up (cold and warm kernel cache), host issue time per
# small op, the MLP gradient (engine and PyTorch autograd), and the Python CUDA
# DLPack tests against PyTorch and CuPy, the bare launch cost and the cuSOLVER svd
# routes. Logs go to $OUT (default ./device-out).
# Usage: scripts/device_bench.sh
set -uo pipefail
export PATH=$PATH:/usr/local/cuda/bin
cd "$(dirname "$0")/.."
OUT=${OUT:-device-out}
mkdir -p "$OUT"
LIBDIR=/opt/deps/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$LIBDIR:$LIBDIR/openblas-pthread:${LD_LIBRARY_PATH:-}
for b in jit_startup host_overhead mlp_grad; do
  g++ -O2 -std=c++20 -Iinclude "bench/$b.cpp" -o "build-gpu/$b" -Lbuild-gpu -ltmath \
    -Wl,-rpath,"$PWD/build-gpu" || echo "build of $b failed"
done
g++ -O2 -std=c++20 bench/cuda/nvrtc_startup.cpp -o build-gpu/nvrtc_startup -I/usr/local/cuda/include \
  -L/usr/local/cuda/lib64 -lnvrtc -Wl,-rpath,/usr/local/cuda/lib64 || echo "build of nvrtc_startup failed"
g++ -O2 -std=c++20 bench/cuda/launch_floor.cpp -o build-gpu/launch_floor -I/usr/local/cuda/include \
  -L/usr/local/cuda/lib64 -lnvrtc -lcuda -Wl,-rpath,/usr/local/cuda/lib64 || echo "build of launch_floor failed"
g++ -O2 -std=c++20 bench/cuda/svd_routes.cpp -o build-gpu/svd_routes -I/usr/local/cuda/include \
  -L/usr/local/cuda/lib64 -lcusolver -lcublas -lcudart -Wl,-rpath,/usr/local/cuda/lib64 ||
  echo "build of svd_routes failed"
cache=$(mktemp -d)
{
  echo "== nvrtc_startup (fresh processes)"
  build-gpu/nvrtc_startup sm_90
  build-gpu/nvrtc_startup sm_90
  build-gpu/nvrtc_startup compute_90
  echo "== jit_startup (cold disk cache, then warm)"
  TMATH_CACHE_DIR=$cache build-gpu/jit_startup cuda 4096
  TMATH_CACHE_DIR=$cache build-gpu/jit_startup cuda 4096
  echo "== launch_floor (bare cuLaunchKernel, no engine)"
  build-gpu/launch_floor
  echo "== host_overhead (the eager add sampled: where its host time goes)"
  build-gpu/host_overhead cuda 2000 "add 8"
  echo "== svd_routes 512 (cuSOLVER svd routes with LAPACK ratios)"
  build-gpu/svd_routes 512
  echo "== mlp_grad"
  build-gpu/mlp_grad cuda 30
  echo "== mlp_grad, TMATH_CUDA_GRAPHS=0 (compiled calls node by node)"
  TMATH_CUDA_GRAPHS=0 build-gpu/mlp_grad cuda 30
  python3 bench/torch_mlp_grad.py cuda
} > "$OUT/bench.txt" 2>&1
echo "bench: rc $?"
rm -rf "$cache"
if ls python/tmath/_tmath*.so > /dev/null 2>&1; then
  PYTHONPATH=$PWD/python timeout 300 python3 -m pytest -q -p no:cacheprovider \
    python/tests/test_dlpack_cuda.py python/tests/test_dlpack.py > "$OUT/pytest_dlpack.txt" 2>&1
  echo "pytest dlpack: rc $?"
  tail -5 "$OUT/pytest_dlpack.txt"
  PYTHONPATH=$PWD/python timeout 120 python3 python/bench/overhead.py --device cuda:0 \
    > "$OUT/py_overhead_cuda.txt" 2>&1
  echo "python overhead cuda: rc $?"
  cat "$OUT/py_overhead_cuda.txt"
else
  echo "no Python extension in build-gpu (nanobind not found?)"
fi
cat "$OUT/bench.txt"
