"""torch.relu on 4096 x 4096 float32 timed like bench/cuda/ew_variants.cu: 50 calls
between two CUDA events, per call, best of 9 rounds."""
import sys

import torch

n = int(sys.argv[1]) if len(sys.argv) > 1 else 4096 * 4096
x = torch.randn(n, device="cuda")
for _ in range(20):
    torch.relu(x)
torch.cuda.synchronize()
a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
best = 1e30
for _ in range(9):
    a.record()
    for _ in range(50):
        torch.relu(x)
    b.record()
    b.synchronize()
    best = min(best, a.elapsed_time(b) / 50)
print(f"torch.relu     {best:.4f} ms  {2 * n * 4 / best * 1e-6:.0f} GB/s")
