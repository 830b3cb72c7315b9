"""Readable numpy reference stepper of the PC circuit (the oracle for the numba kernels).

State of one batch of independent circuits (one per sample):
    z    (H, B, N)  hidden value neurons z_1..z_H
    zout (B, d_y)   output value neurons (used only when the output is free)
Each circuit integrates its own energy F_b = ½ Σ_ℓ ‖ε_ℓ‖² with a fixed step:
    τ dz/dt = −∂F_b/∂z,   h = dt/τ
    Euler: z ← z − h g(z);   Heun: z ← z − (h/2)(g(z) + g(z − h g(z)))
where g = ∂F_b/∂z = ε_ℓ − φ'(z_ℓ) ⊙ a_{ℓ+1} ε_{ℓ+1} W_{ℓ+1} − ε_{ℓ+1}·skip and, for a free
output, g_L = ε_L = z_L − μ_L. A clamped output has z_L = y, so ε_L = y − μ_L (as in the oracle).
"""

from __future__ import annotations

import numpy as np

from pchw.oracle import dphi, phi
from pchw.spec import NetworkSpec

from .devices import MU_FIRST_EVAL, StepNoise, analog_mvm_np, counter, ktc_slot, slot
from .rng import normal_np


class CircuitWeights:
    """Weights in the stacked layout the simulators use, with the scalings a_ℓ."""

    def __init__(self, spec: NetworkSpec, weights: list[np.ndarray], dtype=np.float64):
        a = spec.scalings()
        n = spec.width
        self.spec = spec
        self.w_in = np.ascontiguousarray(weights[0], dtype=dtype)
        self.w_hid = np.ascontiguousarray(
            np.stack(weights[1:-1]) if spec.depth > 2 else np.zeros((0, n, n)), dtype=dtype
        )
        self.w_out = np.ascontiguousarray(weights[-1], dtype=dtype)
        self.a_in, self.a_hid, self.a_out = a[0], (a[1] if spec.depth > 2 else 0.0), a[-1]
        self.w_max = np.ones(spec.depth)  # per-crossbar full scale, set by device programming
        self.gains = np.ones((spec.n_hidden, n))  # activation-circuit gains 1 + δ


def _mvm(cw: CircuitWeights, noise, w, p, crossbar: int, direction: int, eval_index: int, samples):
    """p Wᵀ through crossbar ``crossbar`` (w already oriented (n_out, n_in))."""
    if noise is None:
        return p @ w.T
    return analog_mvm_np(w, p, cw.w_max[crossbar], noise, eval_index=eval_index,
                         slot_base=slot(crossbar, direction, 0), samples=samples)


def first_prediction(cw: CircuitWeights, x, noise: StepNoise | None = None, samples=None):
    """μ_1 = a_1 W_1 x, computed once per sample by the input crossbar."""
    return cw.a_in * _mvm(cw, noise, cw.w_in, x, 0, 0, MU_FIRST_EVAL, samples)


def gradient(cw: CircuitWeights, mu_first, y, z, zout, free_output: bool, feedback: bool = True,
             noise: StepNoise | None = None, eval_index: int = 0, samples=None):
    """(g (H, B, N), g_out (B, d_y) or None, per-sample energies (B,), ε (H, B, N), ε_L (B, d_y))
    at state (z, zout) — the errors as the error neurons compute them (with the MVM noise).

    Without ``feedback`` every neuron follows only its own error, g = ε (the forward phase).
    With ``noise`` every MVM goes through the converter and noise model of :mod:`.devices`,
    its noise drawn at counters of (``eval_index``, crossbar, direction, sample, unit).
    """
    spec = cw.spec
    last = spec.depth - 1  # index of the output crossbar
    phz = cw.gains[:, None, :] * phi(spec.act, z)  # gains are exactly 1 unless the activations are mismatched
    eps = np.empty_like(z)
    eps[0] = z[0] - mu_first
    for l in range(1, spec.n_hidden):
        mu = cw.a_hid * _mvm(cw, noise, cw.w_hid[l - 1], phz[l - 1], l, 0, eval_index, samples)
        eps[l] = z[l] - (z[l - 1] + mu if spec.skip else mu)
    mu_out = cw.a_out * _mvm(cw, noise, cw.w_out, phz[-1], last, 0, eval_index, samples)
    eps_out = zout - mu_out if free_output else y - mu_out
    fb = np.empty_like(z)
    if feedback:
        for l in range(spec.n_hidden - 1):
            fb[l] = cw.a_hid * _mvm(cw, noise, cw.w_hid[l].T, eps[l + 1], l + 1, 1, eval_index, samples)
        fb[-1] = cw.a_out * _mvm(cw, noise, cw.w_out.T, eps_out, last, 1, eval_index, samples)
    if not feedback:
        g = eps.copy()
    else:
        g = eps - cw.gains[:, None, :] * dphi(spec.act, z) * fb
        if spec.skip:
            g[:-1] -= eps[1:]
    energies = 0.5 * (np.sum(eps * eps, axis=(0, 2)) + np.sum(eps_out * eps_out, axis=1))
    return g, (eps_out if free_output else None), energies, eps, eps_out


def _after_update(cw: CircuitWeights, z, noise: StepNoise | None, step: int, samples) -> None:
    """Integrator leak and kT/C noise on the value neurons after an update (in place)."""
    if noise is None:
        return
    if noise.leak_factor != 1.0:
        z *= noise.leak_factor
    if noise.ktc_sigma:
        units = np.arange(z.shape[2])
        for l in range(z.shape[0]):
            ctr = counter(step, ktc_slot(cw.spec.depth, l), samples[:, None], units[None, :])
            z[l] += noise.ktc_sigma * normal_np(noise.seed, ctr)


def integrate(cw: CircuitWeights, x, y, z, zout, *, h: float, n_steps: int, method: str,
              free_output: bool, feedback: bool = True, record_energy: bool = False,
              record_states: bool = False, noise: StepNoise | None = None, step_offset: int = 0,
              samples=None, mu_first=None, window_from: int | None = None, window_sums=None):
    """Integrate ``n_steps`` fixed steps from (z, zout); returns (z, zout, energy trace, states).

    ``energy trace`` is (n_steps + 1, B): F_b before each step and at the end (or None);
    ``states`` is (n_steps + 1, H, B, N) (or None). With ``window_from``, every step from that one
    on adds the errors ε_ℓ and activations g·φ(z_ℓ) it evaluates (at the step's start) to
    ``window_sums`` = (ε sums (H, B, N), ε_L sums (B, d_y), activation sums (H, B, N)), in place.
    """
    if samples is None:
        samples = np.arange(x.shape[0])
    if mu_first is None:
        mu_first = first_prediction(cw, x, noise, samples)
    z, zout = z.copy(), zout.copy()
    energies = np.empty((n_steps + 1, x.shape[0])) if record_energy else None
    states = np.empty((n_steps + 1,) + z.shape) if record_states else None
    for k in range(n_steps):
        step = step_offset + k
        heun = method != "euler"
        ev = 2 * step if heun else step  # Heun evaluates the gradient twice per step
        g, g_out, e, eps, eps_out = gradient(cw, mu_first, y, z, zout, free_output, feedback, noise, ev, samples)
        if window_from is not None and k >= window_from:
            window_sums[0][...] += eps
            window_sums[1][...] += eps_out
            window_sums[2][...] += cw.gains[:, None, :] * phi(cw.spec.act, z)
        if energies is not None:
            energies[k] = e
        if states is not None:
            states[k] = z
        if method == "euler":
            z -= h * g
            if free_output:
                zout -= h * g_out
        else:  # heun
            g2, g2_out, *_ = gradient(cw, mu_first, y, z - h * g, zout - h * g_out if free_output else zout,
                                     free_output, feedback, noise, ev + 1, samples)
            z -= 0.5 * h * (g + g2)
            if free_output:
                zout -= 0.5 * h * (g_out + g2_out)
        _after_update(cw, z, noise, step, samples)
    if energies is not None:
        end = step_offset + n_steps
        energies[n_steps] = gradient(cw, mu_first, y, z, zout, free_output, feedback, noise,
                                     2 * end if method != "euler" else end, samples)[2]
    if states is not None:
        states[n_steps] = z
    return z, zout, energies, states

