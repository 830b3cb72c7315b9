"""Readable numpy reference stepper of the PC circuit (the oracle for the other backends).

State of one batch of independent circuits (one per sample):
    z    (H, B, N)  hidden value neurons z_1..z_H
    zout (B, d_y)   output value neurons (used only when the output is free)
Each circuit integrates its own energy F_b = ½ Σ_ℓ ‖ε_ℓ‖² with a fixed step:
    τ dz/dt = −∂F_b/∂z,   h = dt/τ
    Euler: z ← z − h g(z);   Heun: z ← z − (h/2)(g(z) + g(z − h g(z)))
where g = ∂F_b/∂z = ε_ℓ − φ'(z_ℓ) ⊙ a_{ℓ+1} ε_{ℓ+1} W_{ℓ+1} − ε_{ℓ+1}·skip and, for a free
output, g_L = ε_L = z_L − μ_L. A clamped output has z_L = y, so ε_L = y − μ_L (as in the oracle).
Every MVM goes through :func:`simulators.mvm.analog_mvm_np` when the circuit is noisy.
"""

from __future__ import annotations

import numpy as np

from pchw.oracle import dphi, phi

from .circuit import Circuit
from .contracts import CircuitState, Drive, Method, Phase, PhaseTrace, Record, WindowSums
from .mvm import analog_mvm_np
from .noise import MU_FIRST_EVAL, StepNoise, corr_advance_np, counter, ktc_slot, slot
from .rng import normal_np


def mvm(circuit: Circuit, noise: StepNoise | None, w, p, crossbar: int, direction: int, eval_index: int, samples,
        corr: np.ndarray | None = None):
    """p Wᵀ through crossbar ``crossbar`` (w already oriented (n_out, n_in): Wᵀ for a transposed read,
    direction 1), exact without ``noise``; ``corr`` (2L, B, n) the correlated read noise's current values."""
    if noise is None:
        return p @ w.T
    var = None if circuit.read_var is None else circuit.read_var[crossbar]
    return analog_mvm_np(w, p, circuit.w_max[crossbar], noise, eval_index=eval_index,
                         slot_base=slot(crossbar, direction, 0), samples=samples,
                         corr=None if corr is None else corr[2 * crossbar + direction],
                         read_var=None if var is None else (var if direction == 0 else var.T),
                         tile=noise.tile_rows if direction == 0 else noise.tile_cols)


def first_prediction(circuit: Circuit, x, samples, *, eval_index: int = MU_FIRST_EVAL, corr=None):
    """μ_1 = a_1 W_1 x, computed once per sample by the input crossbar."""
    return circuit.a_in * mvm(circuit, circuit.noise, circuit.w_in, x, 0, 0, eval_index, samples, corr)


def gradient(circuit: Circuit, mu_first, y, z, zout, free_output: bool, feedback: bool = True,
             noise: StepNoise | None = None, eval_index: int = 0, samples=None, corr=None):
    """(g (H, B, N), g_out (B, d_y) or None, per-sample energies (B,), ε (H, B, N), ε_L (B, d_y))
    at state (z, zout) — the errors as the error neurons compute them (with the MVM noise).

    Without ``feedback`` every neuron follows only its own error, g = ε (the forward cascade).
    With ``noise`` every MVM goes through the converter and noise model of :mod:`.mvm`, its
    noise drawn at counters of (``eval_index``, crossbar, direction, sample, unit).
    """
    c, spec = circuit, circuit.spec
    last = spec.depth - 1  # index of the output crossbar
    phz = c.gains[:, None, :] * phi(spec.act, z)  # gains are exactly 1 unless the activations are mismatched
    eps = np.empty_like(z)
    eps[0] = z[0] - mu_first
    for l in range(1, spec.n_hidden):
        mu = c.a_hid * mvm(c, noise, c.w_hid[l - 1], phz[l - 1], l, 0, eval_index, samples, corr)
        eps[l] = z[l] - (z[l - 1] + mu if spec.skip else mu)
    mu_out = c.a_out * mvm(c, noise, c.w_out, phz[-1], last, 0, eval_index, samples, corr)
    eps_out = zout - mu_out if free_output else y - mu_out
    fb = np.empty_like(z)
    if feedback:
        w_hid_fb, w_out_fb = c.w_fb if c.w_fb is not None else (c.w_hid, c.w_out)
        for l in range(spec.n_hidden - 1):
            fb[l] = c.a_hid * mvm(c, noise, w_hid_fb[l].T, eps[l + 1], l + 1, 1, eval_index, samples, corr)
        fb[-1] = c.a_out * mvm(c, noise, w_out_fb.T, eps_out, last, 1, eval_index, samples, corr)
    if not feedback:
        g = eps.copy()
    else:
        g = eps - c.gains[:, None, :] * dphi(spec.act, z) * fb
        if spec.skip:
            g[:-1] -= eps[1:]
    energies = 0.5 * (np.sum(eps * eps, axis=(0, 2)) + np.sum(eps_out * eps_out, axis=1))
    return g, (eps_out if free_output else None), energies, eps, eps_out


def after_update(circuit: Circuit, z, step: int, samples) -> None:
    """Integrator leak and kT/C noise on the value neurons after an update (in place)."""
    noise = circuit.noise
    if noise is None:
        return
    if noise.leak_factor != 1.0:
        z *= noise.leak_factor
    if noise.ktc_sigma:
        units = np.arange(z.shape[2])
        for l in range(z.shape[0]):
            ctr = counter(step, ktc_slot(circuit.spec.depth, l), samples[:, None], units[None, :])
            z[l] += noise.ktc_sigma * normal_np(noise.seed, ctr)


def integrate(circuit: Circuit, state: CircuitState, drive: Drive, phase: Phase, *, record: Record,
              window: WindowSums | None = None) -> PhaseTrace:
    """Integrate ``phase`` in place on ``state``; see :mod:`simulators.contracts`.

    The energy trace holds F_b before each step and at the end; every step of the last
    ``phase.window`` adds the errors ε_ℓ and activations g·φ(z_ℓ) it evaluates (at the step's
    start) to ``window``.
    """
    z, zout = state.z, state.zout
    noise, free, heun = circuit.noise, phase.free_output, phase.method is Method.HEUN
    args = (circuit, drive.mu_first, drive.y)
    corr = state.corr_total  # None unless the read noise is temporally correlated
    energies = np.empty((phase.n_steps + 1, z.shape[1])) if record.free_energy else None
    states = np.empty((phase.n_steps + 1,) + z.shape) if record.activities else None
    window_from = phase.n_steps - phase.window
    for k in range(phase.n_steps):
        step = phase.step_offset + k
        ev = 2 * step if heun else step  # Heun evaluates the gradient twice per step
        g, g_out, e, eps, eps_out = gradient(*args, z, zout, free, phase.feedback, noise, ev, drive.samples, corr)
        if corr is not None:  # one step of the noise processes (Heun's corrector reads at the step's end)
            corr_advance_np(state.corr_state, corr, noise, step, drive.samples)
        if window is not None and k >= window_from:
            window.eps += eps
            window.eps_out += eps_out
            window.act += circuit.gains[:, None, :] * phi(circuit.spec.act, z)
        if energies is not None:
            energies[k] = e
        if states is not None:
            states[k] = z
        if not heun:
            z -= phase.h * g
            if free:
                zout -= phase.h * g_out
        else:
            g2, g2_out, *_ = gradient(*args, z - phase.h * g, zout - phase.h * g_out if free else zout, free,
                                      phase.feedback, noise, ev + 1, drive.samples, corr)
            z -= 0.5 * phase.h * (g + g2)
            if free:
                zout -= 0.5 * phase.h * (g_out + g2_out)
        after_update(circuit, z, step, drive.samples)
    if energies is not None:
        end = phase.step_offset + phase.n_steps
        energies[phase.n_steps] = gradient(*args, z, zout, free, phase.feedback, noise, 2 * end if heun else end,
                                           drive.samples, corr)[2]
    if states is not None:
        states[phase.n_steps] = z
    return PhaseTrace(free_energy=energies, activities=states)
