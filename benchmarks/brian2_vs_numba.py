"""Time per circuit step of the Brian2 backend (numpy and cython targets) against numba, one run.

    OPENBLAS_NUM_THREADS=1 python benchmarks/brian2_vs_numba.py [--width 64 --depth 9 --batch 16]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pchw.spec import NetworkSpec, init_weights
from simulators import brian2_backend as b2b
from simulators import simulate
from simulators.reference import CircuitWeights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=9)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    spec = NetworkSpec(input_dim=32, width=args.width, depth=args.depth, output_dim=10)
    weights = init_weights(spec, seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((args.batch, 32)), rng.standard_normal((args.batch, 10))
    simulate(spec, weights, x, y, profile="ideal", n_steps=2)
    numba_s = simulate(spec, weights, x, y, profile="ideal", n_steps=args.steps).run_s / args.steps
    cw = CircuitWeights(spec, weights)
    z0 = np.zeros((spec.n_hidden, args.batch, args.width))
    zo = np.zeros((args.batch, 10))
    target, build_s = b2b.brian2_target()
    print(f"depth {spec.depth}, width {args.width}, batch {args.batch}, {args.steps} Euler steps; "
          f"brian2 default target {target} (first build {build_s:.1f} s)")
    print(f"{'backend':<16} {'µs/step':>10} {'× numba':>9}")
    print(f"{'numba':<16} {1e6 * numba_s:10.1f} {1.0:9.1f}")
    targets = ["numpy"] + (["cython"] if target == "cython" else [])
    for t in targets:
        b2b.integrate_brian2(cw, x, y, z0, zo, h=0.1, n_steps=2, method="euler", free_output=False, target=t)
        t0 = time.perf_counter()
        b2b.integrate_brian2(cw, x, y, z0, zo, h=0.1, n_steps=args.steps, method="euler", free_output=False,
                             target=t)
        per = (time.perf_counter() - t0) / args.steps
        print(f"{'brian2 ' + t:<16} {1e6 * per:10.1f} {per / numba_s:9.1f}")


if __name__ == "__main__":
    main()
