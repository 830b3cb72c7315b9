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


def gradient(cw: CircuitWeights, mu_first, y, z, zout, free_output: bool, feedback: bool = True):
    """(g (H, B, N), g_out (B, d_y) or None, per-sample energies (B,)) at state (z, zout).

    Without ``feedback`` every neuron follows only its own error, g = ε (the forward phase).
    """
    spec = cw.spec
    phz = phi(spec.act, z)
    eps = np.empty_like(z)
    eps[0] = z[0] - mu_first
    for l in range(1, spec.n_hidden):
        mu = cw.a_hid * phz[l - 1] @ cw.w_hid[l - 1].T
        eps[l] = z[l] - (z[l - 1] + mu if spec.skip else mu)
    mu_out = cw.a_out * phz[-1] @ cw.w_out.T
    eps_out = zout - mu_out if free_output else y - mu_out
    fb = np.empty_like(z)
    for l in range(spec.n_hidden - 1):
        fb[l] = cw.a_hid * eps[l + 1] @ cw.w_hid[l]
    fb[-1] = cw.a_out * eps_out @ cw.w_out
    if not feedback:
        g = eps.copy()
    else:
        g = eps - dphi(spec.act, z) * fb
        if spec.skip:
            g[:-1] -= eps[1:]
    energies = 0.5 * (np.sum(eps * eps, axis=(0, 2)) + np.sum(eps_out * eps_out, axis=1))
    return g, (eps_out if free_output else None), energies


def integrate(cw: CircuitWeights, x, y, z, zout, *, h: float, n_steps: int, method: str,
              free_output: bool, feedback: bool = True, record_energy: bool = False,
              record_states: bool = False):
    """Integrate ``n_steps`` fixed steps from (z, zout); returns (z, zout, energy trace, states).

    ``energy trace`` is (n_steps + 1, B): F_b before each step and at the end (or None);
    ``states`` is (n_steps + 1, H, B, N) (or None).
    """
    mu_first = cw.a_in * x @ cw.w_in.T
    z, zout = z.copy(), zout.copy()
    energies = np.empty((n_steps + 1, x.shape[0])) if record_energy else None
    states = np.empty((n_steps + 1,) + z.shape) if record_states else None
    for k in range(n_steps):
        g, g_out, e = gradient(cw, mu_first, y, z, zout, free_output, feedback)
        if energies is not None:
            energies[k] = e
        if states is not None:
            states[k] = z
        if method == "euler":
            z -= h * g
            if free_output:
                zout -= h * g_out
        else:  # heun
            g2, g2_out, _ = gradient(cw, mu_first, y, z - h * g, zout - h * g_out if free_output else zout,
                                     free_output, feedback)
            z -= 0.5 * h * (g + g2)
            if free_output:
                zout -= 0.5 * h * (g_out + g2_out)
    if energies is not None:
        energies[n_steps] = gradient(cw, mu_first, y, z, zout, free_output)[2]
    if states is not None:
        states[n_steps] = z
    return z, zout, energies, states
