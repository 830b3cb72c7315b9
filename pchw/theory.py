"""Closed forms for linear PC networks (φ = identity), DESIGN.md §2.

Column-vector convention: the map from z_{ℓ−1} to μ_ℓ is
    M_ℓ = I + a_ℓ W_ℓ (hidden, skips) | a_ℓ W_ℓ (hidden, no skips) | a_L W_L (output).
P_ℓ is the map from z_{ℓ−1} to the output: P_L = a_L W_L, P_ℓ = P_{ℓ+1} M_ℓ going down.
At the inference equilibrium the free energy is
    F* = (1/2B) Σ_i r_iᵀ S⁻¹ r_i,   r_i = y_i − P_2 a_1 W_1 x_i,   S = I + Σ_{ℓ=2}^{L} P_ℓ P_ℓᵀ,
because y = (end-to-end) x + Σ_ℓ P_{ℓ+1} ε_ℓ + ε_L and minimising Σ‖ε‖² under that constraint
is a least-norm problem.
"""

from __future__ import annotations

import numpy as np

from .spec import Activation, NetworkSpec, SpecError, check_weights


def _require_linear(spec: NetworkSpec) -> None:
    if spec.act is not Activation.LINEAR:
        raise SpecError(f"closed forms need act='linear', got act={spec.act.value!r}")


def layer_maps(spec: NetworkSpec, weights: list[np.ndarray]) -> list[np.ndarray]:
    """M_2..M_L, the Jacobians ∂μ_ℓ/∂z_{ℓ−1} of a linear network (column convention)."""
    _require_linear(spec)
    check_weights(spec, weights)
    a = spec.scalings()
    eye = np.eye(spec.width)
    maps = []
    for l in range(1, spec.depth - 1):
        m = a[l] * weights[l]
        maps.append(eye + m if spec.skip else m)
    maps.append(a[-1] * weights[-1])
    return maps


def output_maps(spec: NetworkSpec, weights: list[np.ndarray]) -> list[np.ndarray]:
    """P_2..P_L: P_ℓ maps z_{ℓ−1} to the output, (d_y, N) each."""
    maps = layer_maps(spec, weights)
    ps = [maps[-1]]
    for m in reversed(maps[:-1]):
        ps.append(ps[-1] @ m)
    return ps[::-1]


def end_to_end(spec: NetworkSpec, weights: list[np.ndarray]) -> np.ndarray:
    """The linear network's input-output map (d_y, D)."""
    return output_maps(spec, weights)[0] @ (spec.scalings()[0] * weights[0])


def equilibrated_energy(spec: NetworkSpec, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """F* — the free energy at the inference equilibrium of a linear network, in closed form."""
    ps = output_maps(spec, weights)
    s = np.eye(spec.output_dim) + sum(p @ p.T for p in ps)
    r = y - x @ end_to_end(spec, weights).T
    return 0.5 * float(np.sum(r * np.linalg.solve(s, r.T).T)) / x.shape[0]


def activity_hessian(spec: NetworkSpec, weights: list[np.ndarray]) -> np.ndarray:
    """H_z, the Hessian of one sample's energy ½Σ‖ε_ℓ‖² in (z_1..z_H), (H·N, H·N).

    Block tridiagonal: diagonal I + M_{ℓ+1}ᵀM_{ℓ+1}, off-diagonal −M_{ℓ+1}ᵀ / −M_{ℓ+1}.
    The batch-mean F has Hessian H_z / B per sample.
    """
    maps = layer_maps(spec, weights)
    n, h = spec.width, spec.n_hidden
    hess = np.zeros((h * n, h * n))
    for l in range(h):  # block for z_{l+1}; its outgoing map is maps[l]
        m = maps[l]
        block = slice(l * n, (l + 1) * n)
        hess[block, block] = np.eye(n) + m.T @ m
        if l + 1 < h:
            nxt = slice((l + 1) * n, (l + 2) * n)
            hess[block, nxt] = -m.T
            hess[nxt, block] = -m
    return hess


def condition_number(hess: np.ndarray) -> float:
    """κ = λ_max / λ_min of a symmetric positive definite matrix."""
    eig = np.linalg.eigvalsh(hess)
    return float(eig[-1] / eig[0])
