"""torch.sum of 4096 x 4096 float32 timed like bench/cuda/sum_variants.cu: CUDA
events around each call (median of 101) and 50 calls between two events (best of 7)."""
import sys

import torch

n = int(sys.argv[1]) if len(sys.argv) > 1 else 4096 * 4096
x = torch.randn(n, device="cuda")
for _ in range(20):
    x.sum()
torch.cuda.synchronize()
a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
per = []
for _ in range(101):
    a.record()
    x.sum()
    b.record()
    b.synchronize()
    per.append(a.elapsed_time(b))
per.sort()
best = 1e30
for _ in range(7):
    a.record()
    for _ in range(50):
        x.sum()
    b.record()
    b.synchronize()
    best = min(best, a.elapsed_time(b) / 50)
print(f"torch.sum              per call {per[50]:.4f} ms (median)  loop {best:.4f} ms  "
      f"{n * 4 / best * 1e-6:.0f} GB/s")
