"""Per-op overhead from Python on tiny CPU tensors (8 float32 elements).

Usage: PYTHONPATH=python .venv/bin/python python/bench/overhead.py [--number N] [--repeat R] [--timer wall|cpu]
       python/bench/overhead.py --device cuda   (GPU machine: CUDA tensors, PyTorch alongside)

Prints the best of 7 timeit repeats (microseconds per call) for tmath in eager
mode (each op recorded and evaluated) and lazy mode, next to NumPy's same
expression measured in the same run. The work is ~2 ns; the rest is the
binding plus the engine's own per-op overhead (node, dispatch, allocation).

--timer cpu times with the process's CPU clock instead of the wall clock: on a
machine shared with other jobs it leaves out the time the process waits for a
core (cache and frequency effects of the other jobs remain). On a loaded
machine many short batches (--number 2000 --repeat 200) give a better chance
that the best batch ran undisturbed. The header shows the load average.
"""
import argparse
import os
import time
import timeit

import numpy as np

import tmath as tm


TIMER = time.perf_counter


REPEAT = 7


def best_us(stmt, g, number, repeat=None):
    repeat = repeat or REPEAT
    return min(timeit.repeat(stmt, globals=g, number=number, repeat=repeat, timer=TIMER)) / number * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--number", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--timer", choices=("wall", "cpu"), default="wall")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.device != "cpu":
        return device_main(args.device)
    global TIMER, REPEAT
    REPEAT = args.repeat
    TIMER = time.process_time if args.timer == "cpu" else time.perf_counter
    x = tm.asarray(np.arange(8, dtype=np.float32)).eval()
    y = tm.asarray(np.ones(8, np.float32)).eval()
    xn, yn = np.arange(8, dtype=np.float32), np.ones(8, np.float32)
    g = dict(tm=tm, x=x, y=y, np=np, xn=xn, yn=yn)
    rows = [("x + y", "xn + yn"), ("x * 2.0", "xn * 2.0"), ("tm.add(x, y)", "np.add(xn, yn)"),
            ("tm.exp(x)", "np.exp(xn)"), ("tm.sum(x)", "np.sum(xn)"), ("x[2:5]", "xn[2:5]"),
            ("x @ y", "xn @ yn")]
    # Warm-up: the allocator cache, dispatch caches and the CPU clock settle first.
    with tm.eager():
        best_us("x + y; tm.sum(x); x @ y; x * 2.0", g, args.number // 2, repeat=3)
    best_us("x + y", g, args.number // 2, repeat=3)
    print(f"timer {args.timer}, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'op':16s} {'eager us':>9s} {'lazy us':>9s} {'numpy us':>9s}")
    for stmt, ref in rows:
        with tm.eager():
            e = best_us(stmt, g, args.number)
        lazy = best_us(stmt, g, args.number)
        n = best_us(ref, g, args.number)
        print(f"{stmt:16s} {e:9.3f} {lazy:9.3f} {n:9.3f}")


def device_main(device):
    """Eager ops on 8-element tensors of a device: host time per call of 2000 queued
    calls and one synchronisation (the method of the PyTorch anchor), median of 7
    such batches, next to PyTorch's same op on the same device when importable."""
    import statistics

    def per_call_us(fn, sync, n=2000):
        for _ in range(50):
            fn()
        sync()
        ts = []
        for _ in range(7):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            sync()
            ts.append((time.perf_counter() - t) / n * 1e6)
        return statistics.median(ts)

    x = tm.asarray(np.arange(8, dtype=np.float32)).to(device).eval()
    y = tm.asarray(np.ones(8, np.float32)).to(device).eval()
    sync = lambda: tm.synchronize(device)
    try:
        import torch
        tx = torch.arange(8, dtype=torch.float32, device="cuda")
        ty = torch.ones(8, dtype=torch.float32, device="cuda")
        tsync = torch.cuda.synchronize
    except Exception:  # no PyTorch or no CUDA build of it
        torch = None
    rows = [("x + y", lambda: (x + y).eval(), lambda: tx + ty),
            ("x * 2.0", lambda: (x * 2.0).eval(), lambda: tx * 2.0),
            ("tm.exp(x)", lambda: tm.exp(x).eval(), lambda: torch.exp(tx)),
            ("tm.sum(x)", lambda: tm.sum(x).eval(), lambda: torch.sum(tx)),
            ("x @ y", lambda: (x @ y).eval(), lambda: tx @ ty)]
    print(f"device {device}, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'op':12s} {'tmath us':>9s} {'torch us':>9s}")
    with tm.eager():
        for name, f, tf in rows:
            e = per_call_us(f, sync)
            t = per_call_us(tf, tsync) if torch is not None else float("nan")
            print(f"{name:12s} {e:9.3f} {t:9.3f}")


if __name__ == "__main__":
    main()
