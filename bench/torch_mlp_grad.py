"""PyTorch reference for bench/mlp_grad.cpp: the same 10-layer MLP loss (512 wide,
batch 256, float32, exact gelu), forward and forward+backward with autograd
(gradients of all 20 weights and biases), eager and under torch.compile.
Median of 30 timed calls after warm-up, synchronised per call.

    python3 bench/torch_mlp_grad.py [cuda|cpu]
"""
import statistics
import sys
import time

import torch

LAYERS, WIDTH, BATCH = 10, 512, 256


def main() -> None:
    dev = sys.argv[1] if len(sys.argv) > 1 else "cuda"
    if dev == "cuda" and not torch.cuda.is_available():
        print("cuda not available")
        return
    torch.backends.cuda.matmul.allow_tf32 = False
    g = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, WIDTH, generator=g).to(dev)
    ws = [(torch.randn(WIDTH, WIDTH, generator=g) / WIDTH**0.5).to(dev).requires_grad_() for _ in range(LAYERS)]
    bs = [(torch.randn(WIDTH, generator=g) * 0.1).to(dev).requires_grad_() for _ in range(LAYERS)]
    params = ws + bs

    def loss(x, ws, bs):
        h = x
        for w, b in zip(ws, bs):
            h = torch.nn.functional.gelu(h @ w + b)
        return (h * h).mean()

    def fwd():
        with torch.no_grad():
            loss(x, ws, bs)

    def grad():
        v = loss(x, ws, bs)
        torch.autograd.grad(v, params)

    closs = torch.compile(loss)

    def cgrad():
        v = closs(x, ws, bs)
        torch.autograd.grad(v, params)

    def median_ms(fn, reps=30):
        for _ in range(5):
            fn()
        sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
        sync()
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            sync()
            ts.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(ts)

    f, gr = median_ms(fwd), median_ms(grad)
    print(f"torch mlp 10x512, batch 256, float32 on {dev}")
    print(f"  forward (no_grad)      {f:8.3f} ms")
    print(f"  forward+backward       {gr:8.3f} ms   ({gr / f:.2f}x forward)")
    try:
        cg = median_ms(cgrad)
        print(f"  torch.compile fwd+bwd  {cg:8.3f} ms")
    except Exception as e:  # torch.compile needs a working toolchain
        print(f"  torch.compile unavailable: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
