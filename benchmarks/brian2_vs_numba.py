"""Time per circuit step of the Brian2 backend (numpy and cython targets) against numba, one run,
through the backend seam (the same prepared circuit, state and phase for each backend).

    OPENBLAS_NUM_THREADS=1 python benchmarks/brian2_vs_numba.py [--width 64 --depth 9 --batch 16]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pchw.spec import NetworkSpec, init_weights
from simulators import CircuitState, Drive, Phase, Record, make_backend
from simulators.backends import brian2_backend as b2b
from simulators.circuit import ideal_circuit


def _seconds_per_step(backend, circuit, x, y, steps: int) -> float:
    spec, batch = circuit.spec, x.shape[0]

    def run(n: int) -> float:
        state = CircuitState(np.zeros((spec.n_hidden, batch, spec.width)), np.zeros((batch, spec.output_dim)))
        drive = Drive(x, circuit.a_in * x @ circuit.w_in.T, y, np.arange(batch))
        t0 = time.perf_counter()
        backend.integrate(circuit, state, drive, Phase(n_steps=n, h=0.1), record=Record(), window=None)
        return time.perf_counter() - t0

    run(2)  # compile / build
    return run(steps) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=9)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    spec = NetworkSpec(input_dim=32, width=args.width, depth=args.depth, output_dim=10)
    circuit = ideal_circuit(spec, init_weights(spec, seed=0))
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((args.batch, 32)), rng.standard_normal((args.batch, 10))
    numba_s = _seconds_per_step(make_backend("numba"), circuit, x, y, args.steps)
    target, build_s = b2b.brian2_target()
    print(f"depth {spec.depth}, width {args.width}, batch {args.batch}, {args.steps} Euler steps; "
          f"brian2 default target {target} (first build {build_s:.1f} s)")
    print(f"{'backend':<16} {'µs/step':>10} {'× numba':>9}")
    print(f"{'numba':<16} {1e6 * numba_s:10.1f} {1.0:9.1f}")
    for t in ["numpy"] + (["cython"] if target == "cython" else []):
        per = _seconds_per_step(make_backend("brian2", target=t), circuit, x, y, args.steps)
        print(f"{'brian2 ' + t:<16} {1e6 * per:10.1f} {per / numba_s:9.1f}")


if __name__ == "__main__":
    main()
