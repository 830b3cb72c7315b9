"""μPC training-step throughput beside the torch fp32 matmul rate at the same shapes.

Prints, for each configuration, samples/s and achieved GFLOP/s of a full PC training step
(feedforward init, T inference steps, weight gradients, Adam) and the GFLOP/s of the bare
batched matmuls that the step is made of, measured in the same run; the ratio is the figure
of merit (target ≥ 0.70). FLOPs count matmuls only (2 per multiply-add).

    python benchmarks/train_step.py [--device cpu|cuda] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from models.pcnet import PCNet
from pchw.spec import NetworkSpec

CONFIGS = [  # (name, depth L, width N, batch B, T)
    ("depth 129 (H=128), T=128", 129, 128, 64, 128),
    ("depth 30 (H=29), T=30", 30, 128, 64, 30),
]
D, D_Y = 784, 10


def step_flops(depth: int, n: int, b: int, t: int) -> float:
    """Matmul FLOPs of one PC training step."""
    h = depth - 1
    forward = 2 * b * (D * n + (h - 1) * n * n + n * D_Y)  # one pass through every layer
    per_inference_step = 2 * b * (2 * (h - 1) * n * n + 2 * n * D_Y)  # predictions + feedback
    return forward * 3 + t * per_inference_step  # ff init, errors, weight gradients


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_it(fn, device, repeats: int, min_s: float = 1.0) -> float:
    """Median seconds per call over ``repeats`` timed blocks of ≥ min_s/repeats each."""
    fn()
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    once = max(time.perf_counter() - t0, 1e-6)
    inner = max(1, int(min_s / repeats / once))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        _sync(device)
        times.append((time.perf_counter() - t0) / inner)
    return float(np.median(times))


def bench(name, depth, n, b, t, device, repeats):
    spec = NetworkSpec(input_dim=D, width=n, depth=depth, output_dim=D_Y)
    net = PCNet(spec, seed=0, device=device)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(b, D, generator=gen).to(device)
    y = torch.nn.functional.one_hot(torch.randint(0, D_Y, (b,), generator=gen), D_Y).float().to(device)
    params = (net.w_in, net.w_hid, net.w_out)

    def train_step():
        z, _ = net.feedforward(x)
        net.inference(x, y, z, n_steps=t, activity_lr=0.5)
        _, grads = net.energy_and_weight_grads(x, y, z)
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()

    # the matmuls of one inference step, at the same shapes, back to back
    a = torch.randn(depth - 2, b, n, device=device)
    w = torch.randn(depth - 2, n, n, device=device)
    out = torch.empty_like(a)
    wt = w.transpose(1, 2)

    def matmuls():
        torch.bmm(a, wt, out=out)
        torch.bmm(a, w, out=out)

    step_s = time_it(train_step, device, repeats)
    mm_s = time_it(matmuls, device, repeats)
    flops = step_flops(depth, n, b, t)
    step_gflops = flops / step_s / 1e9
    mm_gflops = 2 * 2 * (depth - 2) * b * n * n / mm_s / 1e9
    return {
        "name": name,
        "step_ms": 1e3 * step_s,
        "samples_per_s": b / step_s,
        "step_gflops": step_gflops,
        "matmul_gflops": mm_gflops,
        "ratio": step_gflops / mm_gflops,
        "epoch_min": (60000 // b) * step_s / 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, float32, batch 64")
    cols = ("ms/step", 9), ("samples/s", 10), ("GFLOP/s", 8), ("matmul", 8), ("ratio", 6), ("min/epoch", 9)
    print(f"{'configuration':<28}" + "".join(f" {c:>{w}}" for c, w in cols))
    for name, depth, n, b, t in CONFIGS:
        r = bench(name, depth, n, b, t, device, args.repeats)
        print(f"{r['name']:<28} {r['step_ms']:9.1f} {r['samples_per_s']:10.1f} {r['step_gflops']:8.1f} "
              f"{r['matmul_gflops']:8.1f} {r['ratio']:6.2f} {r['epoch_min']:9.2f}")


if __name__ == "__main__":
    main()
