#!/usr/bin/env bash
# Installs what tmath needs on a Debian 12 machine (as root) and creates .venv.
# Idempotent: installed Debian packages and Python packages are detected and skipped.
set -euo pipefail

cd "$(dirname "$0")/.."

APT_PACKAGES=(build-essential cmake libopenblas-dev liblapacke-dev libhwy-dev libgtest-dev
  libbenchmark-dev ${EXTRA_APT_PACKAGES:-})
# LibTorch (CPU) for the optional torch backend; TMATH_TORCH=OFF leaves it out.
if [ "${TMATH_TORCH:-AUTO}" != "OFF" ]; then APT_PACKAGES+=(libtorch-dev); fi
# Import names (pip accepts them as package names too): nanobind and scikit_build_core build the Python extension.
PY_PACKAGES=(numpy scipy pytest hypothesis nanobind scikit_build_core)
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

log() { printf '[setup] %s\n' "$*"; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# A python3 without the venv module (Debian's own interpreter) needs python3-venv.
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  dpkg -s python3-venv >/dev/null 2>&1 || missing+=(python3-venv)
fi
# The Python extension needs the interpreter's headers (Python.h).
if ! "$PYTHON" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' >/dev/null 2>&1; then
  dpkg -s python3-dev >/dev/null 2>&1 || missing+=(python3-dev)
fi
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
read -r -a need <<<"$("$VENV/bin/python" -c '
import importlib.util, sys
print(" ".join(p for p in sys.argv[1:] if importlib.util.find_spec(p) is None))
' "${PY_PACKAGES[@]}")"
if ((${#need[@]})); then
  log "pip install ${need[*]}"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${need[@]}"
fi

# MLX for the optional mlx backend (libmlx, headers and CMake config ship in the wheels;
# on Linux the CPU build comes as the extra `mlx[cpu]`). Optional: the build skips the
# backend without it, so a failed install only warns. TMATH_MLX=OFF skips it.
MLX_SPEC=${MLX_SPEC:-mlx[cpu]==0.32.4}
if [ "${TMATH_MLX:-AUTO}" != "OFF" ] && ! "$VENV/bin/python" -c 'import mlx.core' >/dev/null 2>&1; then
  log "pip install $MLX_SPEC (mlx backend)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$MLX_SPEC" ||
    log "warning: $MLX_SPEC did not install; the mlx backend will not be built"
fi
