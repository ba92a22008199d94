"""torch.linalg on the shapes of bench/batched_small.cpp (ms per call, median of `reps`,
synchronised after each call): qr, cholesky, lu_solve and solve of 512 x 32 x 32 and
4096 x 8 x 8 batches on the GPU, and qr of a 512 x 128 x 16 batch.

    python bench/batched_small_torch.py [reps]
"""
import sys
import time

import torch


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
            ops = {
                "qr": lambda: torch.linalg.qr(a),
                "cholesky": lambda: torch.linalg.cholesky(spd),
                "lu_solve": lambda: torch.linalg.lu_solve(lu, piv, b),
                "solve": lambda: torch.linalg.solve(a, b),
            }
            for name, fn in ops.items():
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
                print(f"{name:10} {f'{batch}x{n}x{n}':12} {name_dt:10} {ms[len(ms) // 2]:10.3f}",
                      flush=True)
    for dt in (torch.float32, torch.float64, torch.complex64):
        g = torch.Generator().manual_seed(7)
        a = torch.randn(512, 128, 16, generator=g, dtype=torch.float64).to(dt).to(dev)
        for _ in range(3):
            torch.linalg.qr(a)
        torch.cuda.synchronize()
        ms = []
        for _ in range(reps):
            t0 = time.perf_counter()
            torch.linalg.qr(a)
            torch.cuda.synchronize()
            ms.append(1e3 * (time.perf_counter() - t0))
        ms.sort()
        name_dt = str(dt).replace("torch.", "")
        print(f"{'qr':10} {'512x128x16':12} {name_dt:10} {ms[len(ms) // 2]:10.3f}", flush=True)


if __name__ == "__main__":
    main()
