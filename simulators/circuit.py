"""A prepared circuit: the crossbars as programmed on a profile, their full scales, the activation
circuits' gains and the per-step noise — everything a backend needs besides the state.

Weights are stacked the way every backend reads them: W_1 (N, D) the input crossbar, W_2..W_H
(H−1, N, N) the hidden crossbars, W_L (d_y, N) the output crossbar, with the scalings a_ℓ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pchw.profiles import HardwareProfile
from pchw.spec import NetworkSpec

from .arrays import ir_drop, read_variance
from .devices import activation_gains, program_weights
from .errors import SimulationError
from .noise import UNIT_BITS, StepNoise, read_units, step_noise


@dataclass(frozen=True)
class Circuit:
    """Attributes:
        spec: the network.
        w_in (N, D), w_hid (H−1, N, N), w_out (d_y, N): the weights the circuit computes with
            (programmed conductances minus references), float64.
        a_in, a_hid, a_out: the scalings a_1, a_ℓ (hidden), a_L.
        w_max: (L,) each crossbar's MVM full scale (its conductance range plus |reference|).
        gains: (H, N) activation-circuit gains 1 + δ (ones unless mismatched).
        noise: the per-step non-idealities, or None for an exact circuit.
        read_var: per crossbar, S (n_out, n_in): each weight's read-noise variance in units of
            σ_read² (state-dependent noise, conductance pairs); None when it is 1 everywhere.
        w_fb: the weights transposed reads compute with, (W_2..W_H stacked, W_L), when the IR drop of
            the lines makes them differ from the forward reads'; None otherwise.
        reference: (L,) reference conductances read differentially (zeros: none).
        profile: the hardware profile it is programmed on.
        seed: the seed of its programming and of every noise draw.
    """

    spec: NetworkSpec
    w_in: np.ndarray
    w_hid: np.ndarray
    w_out: np.ndarray
    a_in: float
    a_hid: float
    a_out: float
    w_max: np.ndarray
    gains: np.ndarray
    noise: StepNoise | None
    reference: np.ndarray
    profile: HardwareProfile
    seed: int = 0
    read_var: list[np.ndarray] | None = None
    w_fb: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def crossbars(self) -> list[np.ndarray]:
        """W_1..W_L as (n_out, n_in) arrays."""
        return [self.w_in, *self.w_hid, self.w_out]

    @property
    def mismatched(self) -> bool:
        return bool(np.any(self.gains != 1.0))

    @property
    def ideal(self) -> bool:
        """No noise and exact activation circuits: every backend can run it."""
        return self.noise is None and not self.mismatched

    @property
    def has_reference(self) -> bool:
        return bool(np.any(self.reference != 0))


def stack_weights(spec: NetworkSpec, weights: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(W_1, W_2..W_H stacked (H−1, N, N), W_L) as contiguous float64 arrays."""
    n = spec.width
    hidden = np.stack(weights[1:-1]) if spec.depth > 2 else np.zeros((0, n, n))
    return (np.ascontiguousarray(weights[0], dtype=np.float64), np.ascontiguousarray(hidden, dtype=np.float64),
            np.ascontiguousarray(weights[-1], dtype=np.float64))


def prepare_circuit(spec: NetworkSpec, weights: list[np.ndarray], profile: HardwareProfile, *, dt_s: float,
                    seed: int, w_max: np.ndarray | None = None, reference: np.ndarray | None = None) -> Circuit:
    """Program ``weights`` onto ``profile`` (or take them as device states when ``w_max`` is given).

    Without ``w_max`` the weights are programmed (quantisation, programming noise, drift at the
    deployment time; :func:`simulators.devices.program_weights`); with it they already are device
    states (in-situ training) and are used as they are. ``reference`` (L,) offsets each crossbar's
    states: the circuit computes with W − reference, and every MVM's full scale grows by |reference|.
    """
    ref = np.zeros(spec.depth) if reference is None else np.asarray(reference, dtype=np.float64)
    a = spec.scalings()
    gains = np.ones((spec.n_hidden, spec.width))
    noise, read_var, w_fb = None, None, None
    full_scale = np.ones(spec.depth) if w_max is None else np.asarray(w_max, dtype=np.float64)
    if not profile.is_ideal_circuit:
        noise = step_noise(profile, dt_s=dt_s, seed=seed)
        noise = noise if noise.active else None
        if noise is not None and read_units(spec, noise) > 1 << UNIT_BITS:
            raise SimulationError(f"{spec.depth} crossbars of width {spec.width} on {profile.name}'s tiles read "
                                  f"{read_units(spec, noise)} noisy outputs at once: at most {1 << UNIT_BITS} fit the "
                                  "noise counters (raise max_rows/max_cols)")
        if w_max is None:
            weights, full_scale = program_weights([g - r for g, r in zip(weights, ref)], profile, seed=seed)
            ref = np.zeros(spec.depth)  # programmed weights carry no reference
        gains = activation_gains(spec, profile, seed=seed)
        read_var, fwd, back = _array_effects(weights, full_scale, profile)
        weights = fwd
        w_fb = None if back is None else stack_weights(spec, [g - r for g, r in zip(back, ref)])[1:]
    weights = [g - r for g, r in zip(weights, ref)]
    w_in, w_hid, w_out = stack_weights(spec, weights)
    return Circuit(spec=spec, w_in=w_in, w_hid=w_hid, w_out=w_out, a_in=a[0], a_hid=a[1] if spec.depth > 2 else 0.0,
                   a_out=a[-1], w_max=full_scale + np.abs(ref), gains=gains, noise=noise, reference=ref,
                   profile=profile, seed=int(seed), read_var=read_var, w_fb=w_fb)


def _array_effects(states: list[np.ndarray], w_max: np.ndarray, profile: HardwareProfile):
    """(per-weight read-noise variances or None, forward weights, transposed-read weights or None) of
    device states on the profile's arrays (:mod:`simulators.arrays`)."""
    read_var = [read_variance(g, m, profile) for g, m in zip(states, w_max)]
    read_var = None if all(v is None for v in read_var) else read_var
    if profile.wire_r_ohm <= 0:
        return read_var, states, None
    fwd, back = zip(*(ir_drop(g, m, profile) for g, m in zip(states, w_max)))
    return read_var, list(fwd), list(back)


def ideal_circuit(spec: NetworkSpec, weights: list[np.ndarray]) -> Circuit:
    """The exact circuit of ``weights`` (no programming, no noise): the tests' and oracles' circuit."""
    from pchw.profiles import load_profile

    return prepare_circuit(spec, weights, load_profile("ideal"), dt_s=1.0, seed=0)
