"""Readable float64 numpy oracle of the PC maths (DESIGN.md §2).

Everything here is written for clarity, not speed: it is what the torch reference, the
circuit simulators and the closed forms are checked against.

Shapes: x (B, D), y (B, d_y); hidden activities ``zs`` is a list of H arrays (B, N) holding
z_1..z_H; weights W_1..W_L are ``(out, in)``. Row-vector convention: μ = a φ(z) Wᵀ.

Free energy of a batch (batch mean, no precisions):
    F = (1/2B) Σ_b [ Σ_{ℓ=1}^{L−1} ‖z_ℓ − μ_ℓ‖² + ‖y − μ_L‖² ]
"""

from __future__ import annotations

import numpy as np

from .spec import Activation, NetworkSpec


def phi(act: Activation, z: np.ndarray) -> np.ndarray:
    """Activation φ(z)."""
    if act is Activation.RELU:
        return np.maximum(z, 0.0)
    if act is Activation.TANH:
        return np.tanh(z)
    return z


def dphi(act: Activation, z: np.ndarray) -> np.ndarray:
    """Derivative φ'(z); ReLU's is taken as 0 at z = 0, as autograd does."""
    if act is Activation.RELU:
        return (z > 0).astype(z.dtype)
    if act is Activation.TANH:
        return 1.0 - np.tanh(z) ** 2
    return np.ones_like(z)


def feedforward(spec: NetworkSpec, weights: list[np.ndarray], x: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Feedforward pass z_ℓ = μ_ℓ(z_{ℓ−1}); returns (hidden activities z_1..z_H, output μ_L)."""
    a = spec.scalings()
    zs = [a[0] * x @ weights[0].T]
    for l in range(1, spec.depth - 1):
        zs.append(_hidden_prediction(spec, a[l], weights[l], zs[-1]))
    out = a[-1] * phi(spec.act, zs[-1]) @ weights[-1].T
    return zs, out


def _hidden_prediction(spec: NetworkSpec, a_l: float, w: np.ndarray, z_prev: np.ndarray) -> np.ndarray:
    mu = a_l * phi(spec.act, z_prev) @ w.T
    return z_prev + mu if spec.skip else mu


def predictions(spec: NetworkSpec, weights: list[np.ndarray], x: np.ndarray, zs: list[np.ndarray]) -> list[np.ndarray]:
    """μ_1..μ_L given the input and the current hidden activities."""
    a = spec.scalings()
    mus = [a[0] * x @ weights[0].T]
    for l in range(1, spec.depth - 1):
        mus.append(_hidden_prediction(spec, a[l], weights[l], zs[l - 1]))
    mus.append(a[-1] * phi(spec.act, zs[-1]) @ weights[-1].T)
    return mus


def errors(spec, weights, x, y, zs) -> list[np.ndarray]:
    """Prediction errors ε_ℓ = z_ℓ − μ_ℓ for ℓ = 1..L (z_L = y)."""
    mus = predictions(spec, weights, x, zs)
    return [z - mu for z, mu in zip(list(zs) + [y], mus)]


def free_energy(spec, weights, x, y, zs) -> float:
    """F, the batch-mean PC objective."""
    eps = errors(spec, weights, x, y, zs)
    return 0.5 * sum(float(np.sum(e * e)) for e in eps) / x.shape[0]


def activity_grad(spec, weights, x, y, zs) -> list[np.ndarray]:
    """∇_{z_ℓ} F for ℓ = 1..H:
    (1/B)[ε_ℓ − φ'(z_ℓ) ⊙ (a_{ℓ+1} ε_{ℓ+1} W_{ℓ+1}) − ε_{ℓ+1} (skip, ℓ+1 < L)].
    """
    a = spec.scalings()
    eps = errors(spec, weights, x, y, zs)
    batch = x.shape[0]
    grads = []
    for l in range(1, spec.depth):  # z_l, l = 1..H; next layer is l + 1
        e_next = eps[l]
        g = eps[l - 1] - dphi(spec.act, zs[l - 1]) * (a[l] * e_next @ weights[l])
        if spec.skip and l + 1 < spec.depth:
            g = g - e_next
        grads.append(g / batch)
    return grads


def weight_grad(spec, weights, x, y, zs) -> list[np.ndarray]:
    """∇_{W_ℓ} F = −(a_ℓ/B) ε_ℓᵀ φ(z_{ℓ−1}) (with φ(z_0) replaced by x for ℓ = 1)."""
    a = spec.scalings()
    eps = errors(spec, weights, x, y, zs)
    batch = x.shape[0]
    pre = [x] + [phi(spec.act, z) for z in zs]
    return [-(a[l] / batch) * eps[l].T @ pre[l] for l in range(spec.depth)]


def inference(spec, weights, x, y, zs, *, n_steps: int, activity_lr: float) -> list[np.ndarray]:
    """n_steps of gradient descent z ← z − β ∇_z F on the batch-mean F (JPC's meaning of β)."""
    zs = [z.copy() for z in zs]
    for _ in range(n_steps):
        grads = activity_grad(spec, weights, x, y, zs)
        zs = [z - activity_lr * g for z, g in zip(zs, grads)]
    return zs


def mse_loss(spec, weights, x, y) -> float:
    """The backprop loss (1/2B) Σ_b ‖y − f(x)‖², equal to F at feedforward activities."""
    _, out = feedforward(spec, weights, x)
    return 0.5 * float(np.sum((y - out) ** 2)) / x.shape[0]


def mse_weight_grad(spec, weights, x, y) -> list[np.ndarray]:
    """∇_W of :func:`mse_loss` by backprop: (1/B) Jᵀ(f(x) − y), J = ∂f(x)/∂W, through skips and φ."""
    a, batch = spec.scalings(), x.shape[0]
    zs, out = feedforward(spec, weights, x)
    d_out = (out - y) / batch
    grads: list = [None] * spec.depth
    grads[-1] = a[-1] * d_out.T @ phi(spec.act, zs[-1])
    delta = a[-1] * (d_out @ weights[-1]) * dphi(spec.act, zs[-1])  # ∂loss/∂z_{L−1}
    for l in range(spec.depth - 2, 0, -1):
        grads[l] = a[l] * delta.T @ phi(spec.act, zs[l - 1])
        back = a[l] * (delta @ weights[l]) * dphi(spec.act, zs[l - 1])
        delta = delta + back if spec.skip else back
    grads[0] = a[0] * delta.T @ x
    return grads


def feedforward_jvp(spec, weights, x, tangent: list[np.ndarray]) -> np.ndarray:
    """J v: the change of the output f(x) along the weight direction ``tangent`` (forward mode), (B, d_y)."""
    a = spec.scalings()
    z = a[0] * x @ weights[0].T
    dz = a[0] * x @ tangent[0].T
    for l in range(1, spec.depth):
        h, dh = phi(spec.act, z), dphi(spec.act, z) * dz
        mu = a[l] * h @ weights[l].T
        dmu = a[l] * (h @ tangent[l].T + dh @ weights[l].T)
        if spec.skip and l + 1 < spec.depth:
            mu, dmu = z + mu, dz + dmu
        z, dz = mu, dmu
    return dz
