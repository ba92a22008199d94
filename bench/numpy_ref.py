#!/usr/bin/env python3
"""NumPy reference timings for `tmath profile`.

usage: numpy_ref.py [--quick] KEY...

Each KEY is "op shape dtype" as tmath profile names its rows, e.g.
"matmul 1024x1024 float32", "tanh 4096x4096 float32", "add_tiny 8 float32",
"alloc_loop 512x512 float32". Prints one JSON object on stdout:
{"numpy": version, "blas": name, "results": {KEY: ms, ...}}; keys NumPy cannot
run (unknown op, float16/bfloat16 matmul) are left out.

Timing follows shared/anchors/cpu_anchors.py: random standard-normal inputs,
warm-up (at least 2 calls and 0.2 s, 0.05 s with --quick), then the median of
repeats (milliseconds per call).
"""
import json
import statistics
import sys
import time

import numpy as np

try:
    from scipy.special import erf
except ImportError:  # gelu needs erf; without SciPy that row is skipped
    erf = None

QUICK = "--quick" in sys.argv
KEYS = [a for a in sys.argv[1:] if not a.startswith("--")]
rng = np.random.default_rng(0)


WARM_S = 0.05 if QUICK else 0.2


def bench(fn, rep=7, warm=2):
    # Warm up for at least `warm` calls and WARM_S seconds: BLAS worker threads
    # that went to sleep (e.g. while inputs were generated) take several calls
    # to wake up on a busy machine.
    start, n = time.perf_counter(), 0
    while n < warm or (time.perf_counter() - start < WARM_S and n < 1000):
        fn()
        n += 1
    ts = []
    for _ in range(rep):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


def reps(ms_estimate):
    """Repeats for a call of about ms_estimate ms (fewer for slow calls and --quick)."""
    if QUICK:
        return (3, 1) if ms_estimate > 20 else (7, 1)
    return (5, 2) if ms_estimate > 100 else (15, 2)


_inputs = {}


def randn(shape, dtype, which=0):
    """Standard-normal input number `which` of this shape and dtype (generated once, reused)."""
    key = (tuple(shape), np.dtype(dtype).name, which)
    if key not in _inputs:
        _inputs[key] = rng.standard_normal(shape, dtype=dtype)
    return _inputs[key]


def layer_norm(x, eps=1e-5):
    m = x.mean(-1, keepdims=True)
    v = x.var(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def chain10(x):
    for _ in range(5):
        x = np.tanh(x * np.float32(1.01) + np.float32(0.5))
    return x


UNARY = {
    "chain10": chain10,
    "chain10_unfused": chain10,
    "chain10_compiled": chain10,
    "relu": lambda x: np.maximum(x, 0),
    "tanh": np.tanh,
    "exp": np.exp,
    "softmax": softmax,
    "layer_norm": layer_norm,
    "sum": lambda x: x.sum(),
}
if erf is not None:
    UNARY["gelu"] = lambda x: 0.5 * x * (1 + erf(x * np.float32(0.7071067811865476)))


def time_key(key):
    op, shape, dtype = key.split()
    dims = [int(d) for d in shape.split("x")]
    if dtype not in ("float32", "float64"):
        return None
    dt = np.dtype(dtype)
    if op == "matmul":
        a, b = randn(dims, dt), randn(dims, dt, 1)
        est = 2.0 * dims[0] ** 3 / 50e6  # ms at ~50 GFLOP/s
        return bench(lambda: a @ b, *reps(est))
    if op == "add":
        a, b = randn(dims, dt), randn(dims, dt, 1)
        return bench(lambda: a + b, *reps(a.size / 1e6))
    if op in UNARY:
        x = randn(dims, dt)
        fn = UNARY[op]
        return bench(lambda: fn(x), *reps(x.size / 1e6))
    if op == "add_tiny":
        t = np.ones(dims, dt)
        n = 20000 if QUICK else 100000
        start = time.perf_counter()
        for _ in range(n):
            t + t
        return (time.perf_counter() - start) / n * 1e3
    if op == "alloc_loop":
        x, w, b = randn(dims, dt), randn(dims, dt, 1) / np.sqrt(dims[0]), randn(dims[-1:], dt)
        return bench(lambda: np.tanh(x @ w + b), *reps(5.0))
    return None


def blas_name():
    try:
        cfg = np.show_config(mode="dicts")
        return cfg["Build Dependencies"]["blas"]["name"]
    except Exception:  # older NumPy: no dict mode
        return "unknown"


def main():
    results = {}
    for key in KEYS:
        ms = time_key(key)
        if ms is not None:
            results[key] = ms
    json.dump({"numpy": np.__version__, "blas": blas_name(), "results": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
