"""The PC energy and its activity gradient with the hidden layers stacked, for long inference loops.

The same maths as :mod:`pchw.oracle` (batch-mean F, DESIGN.md §2), arranged so that every quantity
is one batched product over the H−1 hidden-to-hidden layers instead of a Python loop over them:
activities are one array Z (H, B, N), the hidden weights one array (H−1, N, N). Thousands of
gradient-descent inference steps on a 32-layer network then cost a few numpy calls each.
"""

from __future__ import annotations

import numpy as np

from . import oracle
from .spec import NetworkSpec


class StackedEnergy:
    """F(z) and ∇_z F for fixed weights and batch; z is (H, B, N).

    Attributes:
        first: μ_1 = a_1 W_1 x, (B, N).
        hidden: a_ℓ W_ℓ for ℓ = 2..L−1 stacked, (H−1, N, N).
        out: a_L W_L, (d_y, N).
    """

    def __init__(self, spec: NetworkSpec, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> None:
        a = spec.scalings()
        self.spec, self.y, self.batch = spec, y, x.shape[0]
        self.first = a[0] * x @ weights[0].T
        self.hidden = np.stack([a[l] * weights[l] for l in range(1, spec.depth - 1)]) if spec.depth > 2 else \
            np.zeros((0, spec.width, spec.width))
        self.out = a[-1] * weights[-1]

    def errors(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ε_1..ε_H stacked (H, B, N), ε_L = y − μ_L (B, d_y))."""
        h = oracle.phi(self.spec.act, z)
        mu = np.empty_like(z)
        mu[0] = self.first
        if len(self.hidden):
            mu[1:] = h[:-1] @ np.swapaxes(self.hidden, -1, -2)
            if self.spec.skip:
                mu[1:] += z[:-1]
        return z - mu, self.y - h[-1] @ self.out.T

    def energy(self, eps: np.ndarray, eps_out: np.ndarray) -> float:
        """F = (1/2B) Σ ‖ε‖² from :meth:`errors`."""
        return 0.5 * (float(np.sum(eps * eps)) + float(np.sum(eps_out * eps_out))) / self.batch

    def grad(self, z: np.ndarray, eps: np.ndarray, eps_out: np.ndarray) -> np.ndarray:
        """∇_z F of the batch mean, (H, B, N): (1/B)[ε_ℓ − φ'(z_ℓ) ⊙ (ε_{ℓ+1} a W_{ℓ+1}) − ε_{ℓ+1} (skip)]."""
        back = np.empty_like(z)
        if len(self.hidden):
            back[:-1] = eps[1:] @ self.hidden
        back[-1] = eps_out @ self.out
        g = eps - oracle.dphi(self.spec.act, z) * back
        if self.spec.skip and len(self.hidden):
            g[:-1] -= eps[1:]
        return g / self.batch
