"""cuBLAS, cuBLASLt and cuSOLVER are opened on first use by the cuda backend.

Each case runs in a fresh interpreter (the libraries stay mapped once opened) and reads
the process's own memory map. Skipped where tmath has no available cuda backend.
"""
import json
import os
import subprocess
import sys

import pytest

import tmath as tm


def _cuda_reason():
    if not sys.platform.startswith("linux"):
        return "reads /proc/self/maps (Linux only)"
    try:
        tm.zeros((1,), device="cuda:0").eval()
    except Exception as e:  # noqa: BLE001
        return f"tmath has no available cuda backend: {e}"
    return None


pytestmark = pytest.mark.skipif(_cuda_reason() is not None, reason=str(_cuda_reason()))

# Runs `steps` (statements over x, a 64 x 64 float32 cuda tensor) and prints which of
# the three libraries are mapped after each.
_SCRIPT = r"""
import json, sys
import numpy as np
import tmath as tm

def mapped():
    text = open("/proc/self/maps").read()
    return {name: ("/" + name + ".so") in text for name in ("libcublas", "libcublasLt", "libcusolver")}

rng = np.random.default_rng(0)
a = rng.standard_normal((64, 64)).astype(np.float32)
x = tm.asarray(a, device="cuda:0")
out = {"start": mapped()}
for label, code in json.loads(sys.argv[1]):
    exec(code)
    out[label] = mapped()
print(json.dumps(out))
"""


def _run(steps):
    env = {k: v for k, v in os.environ.items() if k not in ("TMATH_TORCH", "TMATH_MLX")}
    p = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(steps)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_elementwise_reductions_and_listing_open_no_blas_or_solver():
    got = _run([
        ["ops", "y = tm.softmax(tm.tanh(x * 1.5 + 0.25), axis=-1).sum(); "
                "assert abs(float(y.numpy()) - 64.0) < 1e-3"],
        ["listing", "libs = [b for b in tm.backends() if b['name'] == 'cuda'][0]['libraries']; "
                    "assert 'not loaded' in str(libs), libs"],
    ])
    for label in ("start", "ops", "listing"):
        assert not any(got[label].values()), (label, got[label])


def test_matmul_opens_cublas_and_linalg_opens_cusolver():
    got = _run([
        ["matmul", "r = (x @ x).numpy(); "
                   "assert np.allclose(r, a @ a, rtol=1e-4, atol=1e-3)"],
        ["eigh", "s = x + x.T; w = tm.linalg.eigvalsh(s).numpy(); "
                 "assert np.allclose(w, np.linalg.eigvalsh(a + a.T), rtol=1e-4, atol=1e-3)"],
    ])
    assert got["matmul"]["libcublasLt"], got
    assert not got["matmul"]["libcusolver"], got
    assert got["eigh"]["libcusolver"], got
