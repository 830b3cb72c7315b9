"""In-situ training throughput on each circuit backend, beside the matmul rate measured in the same run.

The workload is one in-situ learning step (sweep, ``--n-steps`` of clamped PC dynamics with every
non-ideality of ``analog-rram-clocked``, the update window, the pulsed update) of a depth-5/width-128
MNIST-shaped network on a batch of 64, repeated. Per training example it costs
    MACs = (D·N + (H−1)·N² + N·d_y)  [sweep]  +  n_steps · 2·((H−1)·N² + N·d_y)  [PC dynamics]
Reported: training examples per second, GMAC/s, and the ratio to BLAS doing the same products
(numpy float64 for numba/numpy, torch's matmul on the backend's device for torch). The issue's
target for a GPU: torch on CUDA ≥ 50× numba on 2 CPU cores (the CUDA row appears only with a GPU).

    OPENBLAS_NUM_THREADS=1 python benchmarks/insitu_throughput.py [--batches 3 --n-steps 420]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

from pchw.profiles import load_profile  # noqa: E402
from pchw.spec import NetworkSpec, init_weights  # noqa: E402
from simulators import Learning, simulate  # noqa: E402


def _step_rate(spec, states, w_max, x, y, *, backend, device, n_steps, window, batches) -> float:
    """Seconds per learning step (the best of ``batches`` after one warm-up)."""
    profile = load_profile("analog-rram-clocked")
    kw = dict(profile=profile, n_steps=n_steps, update_window=window, w_max=w_max, backend=backend, device=device,
              seed=0, learn=Learning(lr=0.01))
    simulate(spec, states, x, y, **{**kw, "n_steps": 2, "update_window": 1})
    best = np.inf
    for b in range(batches):
        t0 = time.perf_counter()
        simulate(spec, states, x, y, sample_offset=64 * b, **kw)
        best = min(best, time.perf_counter() - t0)
    return best


def _blas_rate(spec, batch: int, steps: int, torch_device: str | None) -> float:
    """MAC/s of the same products (a hidden and output crossbar, forward and transposed) back to back."""
    rng = np.random.default_rng(0)
    n, h, dy = spec.width, spec.n_hidden, spec.output_dim
    macs = steps * batch * 2 * ((h - 1) * n * n + n * dy)
    if torch_device is None:
        a, w, wo = rng.standard_normal((batch, n)), rng.standard_normal((n, n)), rng.standard_normal((n, dy))
        out, out_o, eo = np.empty((batch, n)), np.empty((batch, dy)), rng.standard_normal((batch, dy))

        def run():
            for _ in range(steps):
                for _ in range(h - 1):
                    np.dot(a, w, out)
                    np.dot(a, w, out)
                np.dot(a, wo, out_o)
                np.dot(eo, wo.T, out)
    else:
        import torch

        dt = torch.float64 if torch_device == "cpu" else torch.float32
        a = torch.randn(h - 1, batch, n, dtype=dt, device=torch_device)
        w = torch.randn(h - 1, n, n, dtype=dt, device=torch_device)

        def run():
            for _ in range(steps):
                torch.bmm(a, w)
                torch.bmm(a, w)
            if torch_device != "cpu":
                torch.cuda.synchronize()
    run()
    t0 = time.perf_counter()
    run()
    return macs / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-steps", type=int, default=420)
    parser.add_argument("--window", type=int, default=400)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--rows", default="numba,torch-cpu,torch-cuda",
                        help="comma-separated rows to run, from numba, torch-cpu, torch-cuda (cuda: when present); "
                             "'vs numba' needs numba first")
    args = parser.parse_args()
    wanted = args.rows.split(",")
    unknown = sorted(set(wanted) - {"numba", "torch-cpu", "torch-cuda"})
    if unknown:
        parser.error(f"--rows {','.join(unknown)}: allowed are numba, torch-cpu, torch-cuda")
    spec = NetworkSpec(input_dim=784, width=128, depth=5, output_dim=10)
    weights = init_weights(spec, seed=0)
    w_max = np.array([2 * np.abs(w).max() for w in weights])
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 784)), np.eye(10)[rng.integers(0, 10, 64)]
    n, h, dy = spec.width, spec.n_hidden, spec.output_dim
    c_rest = (h - 1) * n * n + n * dy
    macs = 784 * n + c_rest + args.n_steps * 2 * c_rest
    rows = [("numba", None, None), ("torch", "cpu", "cpu")]
    try:
        import torch

        if torch.cuda.is_available():
            rows.append(("torch", "cuda", "cuda"))
    except ImportError:
        pass
    rows = [r for r in rows if (r[0] if r[1] is None else f"{r[0]}-{r[1]}") in wanted]
    print(f"in-situ learning step: depth {spec.depth}, width {n}, batch 64, {args.n_steps} PC steps "
          f"(window {args.window}), analog-rram-clocked, every non-ideality on")
    print(f"{'backend':<14} {'s/step':>8} {'examples/s':>11} {'GMAC/s':>8} {'BLAS GMAC/s':>12} {'vs BLAS':>8}"
          f" {'vs numba':>9}")
    numba_rate = None
    for backend, device, blas_device in rows:
        sec = _step_rate(spec, weights, w_max, x, y, backend=backend, device=device, n_steps=args.n_steps,
                         window=args.window, batches=args.batches)
        rate = 64 * macs / sec
        blas = _blas_rate(spec, 64, 50, blas_device)
        numba_rate = numba_rate or rate
        label = backend if device is None else f"{backend} {device}"
        print(f"{label:<14} {sec:8.3f} {64 / sec:11.1f} {rate / 1e9:8.2f} {blas / 1e9:12.2f} {rate / blas:8.2f}"
              f" {rate / numba_rate:9.2f}")


if __name__ == "__main__":
    main()
