#!/usr/bin/env bash
# Builds tmath with the CUDA plugin on a GPU machine that has no package
# registry: Debian packages carried in .deps/ (Highway, GoogleTest, OpenBLAS,
# LAPACKE) are unpacked under /opt/deps. Usage: scripts/device_build.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-gpu}
DEPS=/opt/deps
if [ -d .deps ]; then
  mkdir -p "$DEPS"
  for f in .deps/*.deb; do dpkg -x "$f" "$DEPS"; done
fi
LIBDIR=$DEPS/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$LIBDIR:$LIBDIR/openblas-pthread:${LD_LIBRARY_PATH:-}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTMATH_BUILD_BENCH=OFF \
  -DCMAKE_PREFIX_PATH="$DEPS/usr" \
  -DTMATH_CBLAS_INCLUDE="$DEPS/usr/include/x86_64-linux-gnu/openblas-pthread" \
  -DTMATH_OPENBLAS="$LIBDIR/openblas-pthread/libopenblas.so.0" \
  -DTMATH_LAPACKE_INCLUDE="$DEPS/usr/include" \
  -DTMATH_LAPACKE="$LIBDIR/liblapacke.so.3" \
  -DCMAKE_CUDA_ARCHITECTURES=90
cmake --build "$BUILD" -j"$(nproc)" ${TARGETS:+--target $TARGETS}
