"""torch.linalg on the shapes of bench/batched_small.cpp (ms per call, median of `reps`,
synchronised after each call): qr, cholesky, lu_solve and solve of 512 x 32 x 32 and
4096 x 8 x 8 batches on the GPU, and qr of a 512 x 128 x 16 batch.

    python bench/batched_small_torch.py [reps]
"""
import sys
import time

import torch


def row(name, shape, dt, fn, reps):
    """Prints fn's median over `reps` synchronised calls after three warm-up calls."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    ms = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ms.append(1e3 * (time.perf_counter() - t0))
    ms.sort()
    name_dt = str(dt).replace("torch.", "")
    print(f"{name:10} {shape:12} {name_dt:10} {ms[len(ms) // 2]:10.3f}", flush=True)


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    dev = "cuda"
    print(f"{'op':10} {'shape':12} {'dtype':10} {'ms':>10}")
    for batch, n in ((512, 32), (4096, 8)):
        for dt in (torch.float32, torch.float64, torch.complex64):
            g = torch.Generator().manual_seed(batch + n)
            a = torch.randn(batch, n, n, generator=g, dtype=torch.float64)
            spd = a @ a.transpose(-1, -2) / n + torch.eye(n, dtype=torch.float64)
            b = torch.randn(batch, n, 1, generator=g, dtype=torch.float64)
            a, spd, b = (x.to(dt).to(dev) for x in (a, spd, b))
            lu, piv = torch.linalg.lu_factor(a)
            shape = f"{batch}x{n}x{n}"
            row("qr", shape, dt, lambda: torch.linalg.qr(a), reps)
            row("cholesky", shape, dt, lambda: torch.linalg.cholesky(spd), reps)
            row("lu_solve", shape, dt, lambda: torch.linalg.lu_solve(lu, piv, b), reps)
            row("solve", shape, dt, lambda: torch.linalg.solve(a, b), reps)
    for dt in (torch.float32, torch.float64, torch.complex64):
        g = torch.Generator().manual_seed(7)
        a = torch.randn(512, 128, 16, generator=g, dtype=torch.float64).to(dt).to(dev)
        row("qr", "512x128x16", dt, lambda: torch.linalg.qr(a), reps)


if __name__ == "__main__":
    main()
