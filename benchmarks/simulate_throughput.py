"""Circuit-simulation throughput (MAC/s) beside the BLAS matmul rate at the same shapes.

A PC-dynamics step of one sample costs 2·((H−1)·N² + N·d_y) MACs (predictions and feedback
through every crossbar but the input one). The batched kernel (B = 64) is compared with numpy's
BLAS doing the same (B, N)×(N, N) products back to back, measured in the same run (target
≥ 0.70); the single-sample kernel is reported in GMAC/s on one core (target ≥ 15). The same with
every noise source on (targets ≥ 0.50 of BLAS batched, ≥ 10 GMAC/s single). Compilation
(or cache load) time is reported separately. float64, as the simulator runs.

    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/simulate_throughput.py
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
from simulators import simulate  # noqa: E402


def _rate(fn, macs: float, repeats: int) -> float:
    fn()
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return macs / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=9)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    spec = NetworkSpec(input_dim=784, width=args.width, depth=args.depth, output_dim=10)
    weights = [w * 0.5 for w in init_weights(spec, seed=0)]
    rng = np.random.default_rng(0)
    n, h, steps = spec.width, spec.n_hidden, args.steps
    macs_per_step = 2 * ((h - 1) * n * n + n * spec.output_dim)
    print(f"depth {spec.depth}, width {n}, {steps} PC steps, float64")

    x1, y1 = rng.standard_normal((1, 784)), np.eye(10)[[3]]
    t0 = time.perf_counter()
    first = simulate(spec, weights, x1, y1, profile="ideal", n_steps=1)
    print(f"numba compile / cache load: single {first.compile_s:.2f} s", end="")
    xb, yb = rng.standard_normal((64, 784)), np.eye(10)[rng.integers(0, 10, 64)]
    first_b = simulate(spec, weights, xb, yb, profile="ideal", n_steps=1)
    print(f", batched {first_b.compile_s:.2f} s (first calls {time.perf_counter() - t0:.2f} s in all)")

    def run(x, y):  # the PC phase alone: start at the exact feedforward pass (no sweep)
        return lambda: simulate(spec, weights, x, y, profile="ideal", n_steps=steps, init="feedforward")

    single = _rate(run(x1, y1), macs_per_step * steps, args.repeats)
    batched = _rate(run(xb, yb), macs_per_step * steps * 64, args.repeats)
    # every noise source on: the analog-rram-clocked preset (8-bit converters, read, output and
    # programming noise) plus integrator leak, kT/C noise and activation mismatch
    noisy = load_profile("analog-rram-clocked").replace(leak_tau_s=30.0, ktc_noise_frac=7.8e-5,
                                                        act_mismatch_frac=0.01)

    def run_noisy(x, y):
        return lambda: simulate(spec, weights, x, y, profile=noisy, n_steps=steps, init="feedforward")

    run_noisy(x1, y1)()
    batched_noisy = _rate(run_noisy(xb, yb), macs_per_step * steps * 64, args.repeats)
    single_noisy = _rate(run_noisy(x1, y1), macs_per_step * steps, args.repeats)

    # BLAS: the same products a batched step makes, back to back
    a = rng.standard_normal((64, n))
    ws = [rng.standard_normal((n, n)) for _ in range(h - 1)]
    wo, wot = rng.standard_normal((10, n)), rng.standard_normal((n, 10))
    out, out_o, eo = np.empty((64, n)), np.empty((64, 10)), rng.standard_normal((64, 10))

    def blas():
        for _ in range(steps):
            for w in ws:
                np.dot(a, w, out)
                np.dot(a, w, out)
            np.dot(a, wot, out_o)
            np.dot(eo, wo, out)

    blas_rate = _rate(blas, macs_per_step * steps * 64, args.repeats)
    print(f"{'kernel':<26} {'GMAC/s':>8} {'vs BLAS':>8}")
    print(f"{'BLAS np.dot (B=64)':<26} {blas_rate / 1e9:8.2f} {1.0:8.2f}")
    print(f"{'numba batched (B=64)':<26} {batched / 1e9:8.2f} {batched / blas_rate:8.2f}   target >= 0.70")
    print(f"{'numba single sample':<26} {single / 1e9:8.2f} {single / blas_rate:8.2f}   target >= 15 GMAC/s")
    print(f"{'batched, all noise on':<26} {batched_noisy / 1e9:8.2f} {batched_noisy / blas_rate:8.2f}   target >= 0.50")
    print(f"{'single, all noise on':<26} {single_noisy / 1e9:8.2f} {single_noisy / blas_rate:8.2f}   "
          "target >= 10 GMAC/s")


if __name__ == "__main__":
    main()
