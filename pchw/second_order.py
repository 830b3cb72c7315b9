"""Second-order maths of the PC energy in activity space: the Fisher, the trust-region step, exact equilibria.

Per sample b the energy is F_b = ½ Σ_{ℓ=1}^{L} ‖r_ℓ‖² with residuals r_ℓ = z_ℓ − μ_ℓ(z_{ℓ−1}) (z_L = y), and
the batch objective is F = (1/B) Σ_b F_b (DESIGN.md §2). With J_{ℓ+1} = ∂μ_{ℓ+1}/∂z_ℓ =
[I if skip] + a_{ℓ+1} W_{ℓ+1} diag(φ'(z_ℓ)), the Gauss–Newton matrix of F_b in (z_1..z_H) is block tridiagonal:

    I_b = blocks  diag ℓ: I + J_{ℓ+1}ᵀ J_{ℓ+1},   off-diagonal (ℓ, ℓ+1): −J_{ℓ+1}ᵀ,   (H·N, H·N).

It is the Fisher information of the activities under the PC generative model (Gaussian, unit variances),
equal to the Hessian H_z for linear and (almost everywhere) ReLU networks; tanh adds a φ'' term that the
Fisher drops. Innocenti, Singh & Buckley (arXiv 2305.18188) expand F around the feedforward values ẑ,
F(ẑ + Δz) ≈ L + gᵀΔz + ½ Δzᵀ I(ẑ) Δz, so the trust-region subproblem that PC inference approximately
solves has the solution Δz_TR = −I(ẑ)⁻¹ g, g = ∂F_b/∂z at ẑ (:func:`trust_region_step`).
:func:`equilibrium` finds the exact inference equilibrium ∂F/∂z = 0 by damped Gauss–Newton steps from the
feedforward pass (one step for a linear network, where F is quadratic in z).

Shapes as in :mod:`pchw.oracle`: activities are lists of H arrays (B, N); per-sample blocks are (B, N, N).
Everything is float64 numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import oracle
from .spec import NetworkSpec


def activity_jacobians(spec: NetworkSpec, weights: list[np.ndarray],
                       zs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """J_{ℓ+1} = ∂μ_{ℓ+1}/∂z_ℓ per sample: (hidden J_2..J_H stacked (H−1, S, N, N), output J_L (S, d_y, N)).

    J_{ℓ+1} = [I if skip] + a_{ℓ+1} W_{ℓ+1} diag(φ'(z_ℓ)); S = B, or S = 1 for a linear network, whose
    Jacobians do not depend on the sample.
    """
    slopes = _slopes(spec, zs)
    a, n = spec.scalings(), spec.width
    hidden = np.zeros((0, slopes.shape[1], n, n))
    if spec.n_hidden > 1:
        w = np.stack(weights[1:-1]) * np.asarray(a[1:-1])[:, None, None]  # (H−1, N, N)
        hidden = w[:, None] * slopes[:-1, :, None, :] + (np.eye(n) if spec.skip else 0.0)
    return hidden, a[-1] * weights[-1][None] * slopes[-1][:, None, :]


def _slopes(spec: NetworkSpec, zs) -> np.ndarray:
    """φ'(z_ℓ) stacked (H, B, N); (H, 1, N) of ones for a linear network."""
    if spec.act.value == "linear":
        return np.ones((spec.n_hidden, 1, spec.width))
    return oracle.dphi(spec.act, np.stack(zs))


def fisher_blocks(spec: NetworkSpec, weights: list[np.ndarray], zs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The activity Fisher I_b of every sample as blocks: (diag (H, S, N, N), upper (H−1, S, N, N)).

    S = B, or 1 for a linear network (one Fisher for every sample). ``upper[ℓ]`` couples z_{ℓ+1} (rows)
    to z_{ℓ+2} (columns) in 1-based layer numbers; the lower blocks are its transposes. With
    J = [I] + a W S (S = diag φ'), JᵀJ = a² S WᵀW S [+ I + a W S + a S Wᵀ]: elementwise scalings of
    the per-layer WᵀW, no per-sample matrix products.
    """
    slopes = _slopes(spec, zs)
    a, n = spec.scalings(), spec.width
    eye = np.eye(n)
    gram = np.stack([a[l] ** 2 * weights[l].T @ weights[l] for l in range(1, spec.depth)])  # (H, N, N)
    diag = eye + gram[:, None] * slopes[:, :, :, None] * slopes[:, :, None, :]
    upper = np.zeros((0,) + diag.shape[1:])
    if spec.n_hidden > 1:
        w = np.stack(weights[1:-1]) * np.asarray(a[1:-1])[:, None, None]
        ws = w[:, None] * slopes[:-1, :, None, :]  # a W S, (H−1, S, N, N)
        if spec.skip:
            diag[:-1] += eye + ws + np.swapaxes(ws, -1, -2)
        upper = -np.swapaxes(ws + (eye if spec.skip else 0.0), -1, -2)
    return diag, upper


def dense_block_tridiagonal(diag: np.ndarray, upper: np.ndarray, sample: int = 0) -> np.ndarray:
    """One sample's block-tridiagonal matrix from :func:`fisher_blocks`' blocks, dense (H·N, H·N)."""
    h, n = diag.shape[0], diag.shape[-1]
    dense = np.zeros((h * n, h * n))
    for l in range(h):
        dense[l * n:(l + 1) * n, l * n:(l + 1) * n] = diag[l, sample]
        if l + 1 < h:
            dense[l * n:(l + 1) * n, (l + 1) * n:(l + 2) * n] = upper[l, sample]
            dense[(l + 1) * n:(l + 2) * n, l * n:(l + 1) * n] = upper[l, sample].T
    return dense


def solve_block_tridiagonal(diag: np.ndarray, upper: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """x with A x = rhs for symmetric block-tridiagonal A, per sample (block Thomas algorithm).

    ``diag`` (H, S, N, N), ``upper`` (H−1, S, N, N) (lower = upperᵀ), ``rhs`` (H, B, N) with S = B (one
    matrix per sample) or S = 1 (one matrix for all); returns (H, B, N). O(H·N³) per matrix instead of
    O((H·N)³) for a dense solve; the pivots are Schur complements of a positive-definite matrix.
    """
    shared = diag.shape[1] == 1
    cols = np.swapaxes(rhs, 1, 2)[:, None] if shared else rhs[..., None]  # (H, S, N, K)
    h = diag.shape[0]
    carried, coupling = [], []
    pivot, right = diag[0], cols[0]
    for l in range(h):
        if l > 0:
            low = np.swapaxes(upper[l - 1], -1, -2)
            pivot = diag[l] - low @ coupling[-1]
            right = cols[l] - low @ carried[-1]
        if l + 1 < h:
            n = upper[l].shape[-1]
            both = np.linalg.solve(pivot, np.concatenate([upper[l], right], axis=-1))
            coupling.append(both[..., :n])
            carried.append(both[..., n:])
        else:
            carried.append(np.linalg.solve(pivot, right))
    out = [carried[-1]]
    for l in range(h - 2, -1, -1):
        out.append(carried[l] - coupling[l] @ out[-1])
    x = np.stack(out[::-1])
    return np.swapaxes(x[:, 0], 1, 2) if shared else x[..., 0]


def trust_region_step(spec: NetworkSpec, weights: list[np.ndarray], x: np.ndarray,
                      y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(ẑ, Δz_TR): the feedforward activities and the trust-region step Δz_TR = −I(ẑ)⁻¹ ∂F_b/∂z at ẑ.

    Δz_TR minimises the second-order model gᵀΔz + ½ Δzᵀ I(ẑ) Δz of every sample's energy around the
    feedforward pass; ẑ + Δz_TR is the inference equilibrium exactly when F is quadratic in z (linear nets).
    """
    zs, _ = oracle.feedforward(spec, weights, x)
    step = _newton_direction(spec, weights, x, y, zs, oracle.activity_grad(spec, weights, x, y, zs))
    return zs, list(step)


@dataclass(frozen=True)
class Equilibrium:
    """The result of :func:`equilibrium`.

    Attributes:
        zs: activities z_1..z_H at the equilibrium, H arrays (B, N).
        free_energy: F at ``zs`` (batch mean), the equilibrated energy F*.
        residual: norm of the smallest (sub)gradient of the batch-mean F at ``zs`` over all layers and
            samples: ‖∇_z F‖ where F is differentiable; for a ReLU unit held at its kink z = 0, the
            distance of 0 from the interval between its one-sided derivatives.
        start_residual: ‖∇_z F‖ at the feedforward pass, the scale ``residual`` is judged against.
        iterations: Newton solves taken.
        converged: ``residual`` ≤ tol × ``start_residual`` (or is exactly zero).
    """

    zs: list[np.ndarray]
    free_energy: float
    residual: float
    start_residual: float
    iterations: int
    converged: bool


def _norm(grads) -> float:
    return float(np.sqrt(sum(float(np.sum(g * g)) for g in grads)))


def equilibrium(spec: NetworkSpec, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray, *,
                tol: float = 1e-12, max_iter: int = 100, start: list[np.ndarray] | None = None) -> Equilibrium:
    """The inference equilibrium reached from the feedforward pass, solved to ``tol`` by Newton steps.

    ``start``: begin from these activities instead (a warm start, e.g. the previous update's
    equilibrium); the tolerance is still relative to the residual at the feedforward pass.

    Each step solves I(z) d = −∂F_b/∂z per sample (:func:`solve_block_tridiagonal`). Linear networks need
    one step (F is quadratic in z). tanh takes damped Gauss–Newton steps (halved until F decreases).
    ReLU makes F piecewise quadratic with kinks at z = 0, and a minimum often sits on a kink (a unit whose
    one-sided derivatives straddle 0): there an active-set method moves to the exact minimum of the
    current piece, stops at the first kink it meets and holds that unit at 0 until its subgradient
    says to release it (:func:`_relu_equilibrium`).
    """
    zs, _ = oracle.feedforward(spec, weights, x)
    scale = _norm(oracle.activity_grad(spec, weights, x, y, zs))
    if start is not None:
        zs = [np.array(z, dtype=float) for z in start]
    solve = _relu_equilibrium if spec.act.value == "relu" else _smooth_equilibrium
    zs, residual, it = solve(spec, weights, x, y, zs, tol=tol * scale, max_iter=max_iter)
    f = oracle.free_energy(spec, weights, x, y, zs)
    return Equilibrium(zs=zs, free_energy=f, residual=residual, start_residual=scale, iterations=it,
                       converged=bool(residual <= max(tol * scale, _rounding_floor(spec, weights, y, zs))))


def _rounding_floor(spec, weights, y, zs) -> float:
    """The smallest residual float64 resolves: ∂F/∂z_ℓ = (ε_ℓ − J_{ℓ+1}ᵀε_{ℓ+1})/B with ε = z − μ a difference
    of activities of size ‖z‖, so rounding leaves ~eps (‖z‖ + ‖y‖)(1 + max ‖a_ℓ W_ℓ‖) / B (margin 16)."""
    size = float(np.sqrt(sum(float(np.sum(z * z)) for z in zs) + float(np.sum(y * y))))
    gain = max(a * float(np.linalg.norm(w)) for a, w in zip(spec.scalings(), weights))
    return 16.0 * float(np.finfo(float).eps) * size * (1.0 + gain) / y.shape[0]


def _newton_direction(spec, weights, x, y, zs, grads, *, free=None, exact=False) -> np.ndarray:
    """d with A d = −∂F_b/∂z per sample, A the Fisher I(z) (or, ``exact``, the Hessian: I plus the φ''
    term); ``grads`` is ∇_z of the batch-mean F, per layer (B, N); units where ``free`` is False stay put
    (d = 0). Returns (H, B, N)."""
    return _solve_step(spec, weights, list(zs), np.stack(grads) * x.shape[0], free=free,
                       curvature=_phi_curvature(spec, weights, x, y, zs) if exact else None)


def _solve_step(spec, weights, zs, rhs, *, free=None, curvature=None) -> np.ndarray:
    """d with (I(z) [+ diag(curvature)]) d = −rhs per sample, held units (``free`` False) fixed at d = 0."""
    diag, upper = fisher_blocks(spec, weights, zs)
    if curvature is not None:
        diag = diag + curvature[..., :, None] * np.eye(spec.width)
    if free is not None:  # held units: identity rows and columns, zero right-hand side
        m = free.astype(float)
        diag = diag * m[..., :, None] * m[..., None, :] + np.eye(spec.width) * (1.0 - m)[..., None, :]
        upper = upper * m[:-1, :, :, None] * m[1:, :, None, :]
        rhs = rhs * m
    return -solve_block_tridiagonal(diag, upper, rhs)


def _phi_curvature(spec, weights, x, y, zs) -> np.ndarray:
    """The Hessian's diagonal term the Fisher drops: −φ''(z_ℓ) ⊙ (a_{ℓ+1} ε_{ℓ+1} W_{ℓ+1}), (H, B, N)."""
    a, eps = spec.scalings(), oracle.errors(spec, weights, x, y, zs)
    return np.stack([-_ddphi(spec, zs[l - 1]) * (a[l] * eps[l] @ weights[l]) for l in range(1, spec.depth)])


def _ddphi(spec, z: np.ndarray) -> np.ndarray:
    """φ''(z): −2 tanh(z)(1 − tanh²(z)) for tanh, 0 for linear and (almost everywhere) ReLU."""
    if spec.act.value == "tanh":
        t = np.tanh(z)
        return -2.0 * t * (1.0 - t * t)
    return np.zeros_like(z)


def _smooth_equilibrium(spec, weights, x, y, zs, *, tol, max_iter):
    """Newton steps (exact Hessian while it gives descent, else Gauss–Newton), halved until F decreases."""
    f = oracle.free_energy(spec, weights, x, y, zs)
    grads = oracle.activity_grad(spec, weights, x, y, zs)
    residual, it = _norm(grads), 0
    while residual > max(tol, _rounding_floor(spec, weights, y, zs)) and it < max_iter:
        it += 1
        direction, slope = None, 0.0
        for exact in ((True, False) if spec.act.value == "tanh" else (False,)):
            try:
                direction = _newton_direction(spec, weights, x, y, zs, grads, exact=exact)
            except np.linalg.LinAlgError:
                continue
            slope = float(sum(np.sum(g * d) for g, d in zip(grads, direction)))
            if slope < 0:
                break
        t = 1.0
        while True:  # a step that lowers F (Armijo) or, once F is flat to rounding, the residual
            trial = [z + t * d for z, d in zip(zs, direction)]
            f_trial = oracle.free_energy(spec, weights, x, y, trial)
            g_trial = oracle.activity_grad(spec, weights, x, y, trial)
            if f_trial <= f + 1e-4 * t * slope or _norm(g_trial) < residual or t < 1e-12:
                break
            t *= 0.5
        if t < 1e-12:  # no descent left at float64 precision
            break
        zs, f, grads = trial, f_trial, g_trial
        residual = _norm(grads)
    return zs, residual, it


def _one_sided(spec, weights, x, y, zs) -> tuple[np.ndarray, np.ndarray]:
    """∂F/∂z with φ'(z) taken as 0 (left) and as 1 (right) for every unit, (H, B, N) each (batch mean)."""
    a = spec.scalings()
    eps = oracle.errors(spec, weights, x, y, zs)
    batch, left, feedback = x.shape[0], [], []
    for l in range(1, spec.depth):
        g = eps[l - 1] - (eps[l] if spec.skip and l + 1 < spec.depth else 0.0)
        left.append(g / batch)
        feedback.append(a[l] * eps[l] @ weights[l] / batch)
    left = np.stack(left)
    return left, left - np.stack(feedback)


def _relu_equilibrium(spec, weights, x, y, zs, *, tol, max_iter):
    """Active-set Newton descent on the piecewise-quadratic ReLU energy, every sample on its own.

    On each piece (a fixed sign pattern) F is an exact quadratic. Every iteration computes the Newton
    step of the current piece with the held units fixed at 0 and follows it to its end, or to the first
    kink on the way, where that unit is held. A sample at the minimum of its piece releases its held
    units whose subgradient excludes 0, toward descent. F_b never increases and the path is continuous,
    so each sample ends at the local minimum that descent from the starting point reaches. Only the
    samples whose own residual is still above tol/√B take a step.
    """
    z = np.stack(zs)  # (H, B, N)
    batch = z.shape[1]
    pinned = z == 0.0  # units exactly on their kink (dead units of the feedforward pass)
    at_minimum = np.ones(batch, dtype=bool)
    it = 0
    while True:
        left, right = _one_sided(spec, weights, x, y, list(z))
        gap = np.where(right < 0, right, np.where(left > 0, left, 0.0))
        sub = np.where(pinned, gap, np.where(z > 0, right, left))
        per_sample = np.sqrt(np.sum(sub * sub, axis=(0, 2)))
        threshold = max(tol, _rounding_floor(spec, weights, y, list(z))) / np.sqrt(batch)
        todo = np.flatnonzero(per_sample > threshold)
        if todo.size == 0 or it >= max_iter:
            return list(z), float(np.sqrt(np.sum(per_sample ** 2))), it
        it += 1
        zt, held, gt, rt = z[:, todo], pinned[:, todo], gap[:, todo], right[:, todo]
        release = held & (gt != 0.0) & at_minimum[todo][None, :, None]
        held = held & ~release
        zt = np.where(release, np.where(rt < 0, 1e-300, -1e-300), zt)
        grads = np.where(zt > 0, rt, left[:, todo]) * batch
        step = _solve_step(spec, weights, list(zt), grads, free=~held)
        crossing = ~held & (np.sign(zt + step) != np.sign(zt)) & (step != 0.0)
        frac = np.where(crossing, -zt / np.where(crossing, step, 1.0), np.inf)
        t = np.minimum(1.0, frac.min(axis=(0, 2)))  # per sample: the first kink on the way, if before 1
        hit = crossing & (frac <= t[None, :, None] * (1 + 1e-12)) & (t < 1.0)[None, :, None]
        z[:, todo] = np.where(hit, 0.0, zt + t[None, :, None] * step)
        pinned[:, todo] = held | hit
        at_minimum[todo] = t >= 1.0


def equilibrated_weight_grad(spec: NetworkSpec, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray, *,
                             tol: float = 1e-12, start: list[np.ndarray] | None = None
                             ) -> tuple[list[np.ndarray], Equilibrium]:
    """(∇_W F*, the equilibrium): the PC weight gradient at the inference equilibrium, which is the
    gradient of the equilibrated energy F*(W) = min_z F (envelope theorem)."""
    eq = equilibrium(spec, weights, x, y, tol=tol, start=start)
    return oracle.weight_grad(spec, weights, x, y, eq.zs), eq
