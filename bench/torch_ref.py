#!/usr/bin/env python3
"""PyTorch (CUDA) reference timings for the GPU rows of `tmath profile`.

usage: torch_ref.py [--quick] KEY...

Each KEY is "op shape dtype" as tmath profile names its rows, e.g.
"matmul 1024x1024 float32", "matmul_tf32 1024x1024 float32",
"tanh 4096x4096 float32", "add_tiny 8 float32", "alloc_loop 2048x2048 float32".
Prints one JSON object on stdout:
{"torch": version, "device": GPU name, "results": {KEY: ms, ...}}; keys it
cannot run are left out. Exits with status 3 when torch or a CUDA device is
missing (tmath profile then tries the next Python).

Timing is the one tmath profile uses for device backends: warm-up, then
batches of back-to-back calls of about 2 ms between two CUDA events, median of
the batch means. matmul is strict float32 (TF32 off), matmul_tf32 has TF32 on;
float16/bfloat16 use PyTorch's defaults.
"""
import json
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit(3)
if not torch.cuda.is_available():
    sys.exit(3)

QUICK = "--quick" in sys.argv
KEYS = [a for a in sys.argv[1:] if not a.startswith("--")]
DEV = torch.device("cuda")
DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
          "bfloat16": torch.bfloat16}
WARM_S = 0.05 if QUICK else 0.2
BATCHES = 5 if QUICK else 15
gen = torch.Generator(device=DEV).manual_seed(0)


def event_ms(fn, reps):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / reps


def bench(fn):
    t0, n = time.perf_counter(), 0
    while n < 3 or (time.perf_counter() - t0 < WARM_S and n < 1000):
        fn()
        n += 1
    torch.cuda.synchronize()
    per_call = max((time.perf_counter() - t0) * 1e3 / n, 1e-4)
    reps = min(max(int(2.0 / per_call), 1), 1000)
    return statistics.median(event_ms(fn, reps) for _ in range(BATCHES))


def randn(dims, dt):
    return torch.randn(dims, device=DEV, dtype=torch.float32, generator=gen).to(dt)


def chain10(x):
    for _ in range(5):
        x = torch.tanh(x * 1.01 + 0.5)
    return x


def compiled_chain10():
    """torch.compile of chain10 (None when this PyTorch cannot compile)."""
    try:
        fn = torch.compile(chain10)
        fn(torch.ones(8, device=DEV))
        return fn
    except Exception:  # no triton / no compiler: the row reports no reference
        return None


UNARY = {
    "chain10": chain10,
    "chain10_unfused": chain10,
    "relu": torch.relu,
    "gelu": F.gelu,
    "tanh": torch.tanh,
    "exp": torch.exp,
    "softmax": lambda x: torch.softmax(x, -1),
    "layer_norm": lambda x: F.layer_norm(x, x.shape[-1:]),
    "sum": torch.sum,
}


def time_key(key):
    op, shape, dtype = key.split()
    if dtype not in DTYPES:
        return None
    dims = [int(d) for d in shape.split("x")]
    dt = DTYPES[dtype]
    if op in ("matmul", "matmul_tf32"):
        torch.backends.cuda.matmul.allow_tf32 = op == "matmul_tf32"
        a, b = randn(dims, dt), randn(dims, dt)
        return bench(lambda: a @ b)
    torch.backends.cuda.matmul.allow_tf32 = False
    if op == "add":
        a, b = randn(dims, dt), randn(dims, dt)
        return bench(lambda: a + b)
    if op in UNARY:
        x, fn = randn(dims, dt), UNARY[op]
        return bench(lambda: fn(x))
    if op == "chain10_compiled":
        fn = compiled_chain10()
        if fn is None:
            return None
        x = randn(dims, dt)
        return bench(lambda: fn(x))
    if op == "add_tiny":  # per-op cost of eager PyTorch from Python, many ops queued
        t = torch.ones(dims, device=DEV, dtype=dt)
        n = 2000 if QUICK else 10000

        def many():
            for _ in range(n):
                t + t
        return bench(many) / n
    if op == "alloc_loop":
        x, w, b = randn(dims, dt), randn(dims, dt) / dims[0] ** 0.5, randn(dims[-1:], dt)
        return bench(lambda: torch.tanh(x @ w + b))
    return None


def main():
    results = {}
    for key in KEYS:
        ms = time_key(key)
        if ms is not None:
            results[key] = ms
    json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(),
               "results": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
