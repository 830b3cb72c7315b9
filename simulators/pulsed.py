"""In-place outer-product learning on crossbars: the stochastic pulse-train update.

The update ΔW = η d xᵀ (rows d = the layer's errors, columns x = presynaptic activities) is
applied by coincident pulses (Gokmen & Vlasov 2016, as in IBM aihwkit): each row fires a train
of ``BL`` slots with probability P_i = min(1, C_d|d_i|) per slot, each column with Q_j =
min(1, C_x|x_j|); cell (i, j) receives n_ij ~ Binomial(BL, P_i Q_j) coincidences, each moving
it by ±dw_min·w_max (sign of d_i x_j). With C_d C_x = η / (BL·dw_min·w_max) the expected
change is exactly η d_i x_j while no probability saturates; "update management" balances
C_d and C_x by the ratio of max|x| to max|d|.

Device response of one pulse (fractions of w_max):
    up   +dw_min (1 + a/2) γ_ij (1 + σ_c2c ξ) · (1 − w/w_max if soft bounds)
    down −dw_min (1 − a/2) γ_ij (1 + σ_c2c ξ) · (1 + w/w_max if soft bounds)
with γ_ij ~ 1 + σ_d2d ξ and a_ij = a + σ_a ξ' (``asym_d2d_frac``) fixed per device, and the weight kept
inside ±w_max. A soft-bounded device's symmetry point, where up and down steps are equal, is
w*_ij = (a_ij/2)·w_max: with σ_a > 0 they scatter around the crossbar's mean (a/2)·w_max. n coincidences
are applied as one step of n times the pulse with cycle-to-cycle noise σ_c2c √n (the sum of n
independent pulse noises). With dw_min = 0 the update is the exact outer product.
"""

from __future__ import annotations

import functools
import math

import numba as nb
import numpy as np

from .rng import normal, normal_np, uniform, uniform_np


@nb.njit(inline="always")
def _binomial_inv(u, n, p):
    """Binomial(n, p) draw by inversion of one uniform u (exact; n is small, p mostly tiny)."""
    if p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    q = 1.0 - p
    prob = q**n  # P(k = 0)
    cdf = prob
    k = 0
    while u > cdf and k < n:
        prob = prob * (n - k) / (k + 1) * p / q
        k += 1
        cdf += prob
    return k


@nb.njit(cache=True)
def pulsed_update(w, d, x, eta, w_max, bl, dw_min, asym, c2c, soft, gamma, seed, base):
    """Apply ΔW ≈ η Σ_b d_b x_bᵀ to w (n_out, n_in) in place, one rank-1 pulse update per sample b.

    d (B, n_out), x (B, n_in); asym and gamma (n_out, n_in) each device's asymmetry and gain. Returns
    the number of pulses fired (coincidences). The random draws of sample b, cell (i, j) use counters
    base + (b·n_out + i)·n_in + j.
    """
    batch, n_out = d.shape
    n_in = x.shape[1]
    pulses = 0
    if dw_min <= 0.0:  # an exact device: the outer product itself
        for b in range(batch):
            for i in range(n_out):
                for j in range(n_in):
                    w[i, j] = min(max(w[i, j] + eta * d[b, i] * x[b, j], -w_max), w_max)
        return pulses
    step = dw_min * w_max
    for b in range(batch):
        dmax = 0.0
        for i in range(n_out):
            dmax = max(dmax, abs(d[b, i]))
        xmax = 0.0
        for j in range(n_in):
            xmax = max(xmax, abs(x[b, j]))
        if dmax == 0.0 or xmax == 0.0:
            continue
        c = math.sqrt(eta / (bl * step))
        cd = c * math.sqrt(xmax / dmax)
        cx = c * math.sqrt(dmax / xmax)
        for i in range(n_out):
            pi = min(1.0, cd * abs(d[b, i]))
            if pi == 0.0:
                continue
            for j in range(n_in):
                qj = min(1.0, cx * abs(x[b, j]))
                ctr = base + (b * n_out + i) * n_in + j
                n = _binomial_inv(uniform(seed, 2 * ctr), bl, pi * qj)
                if n == 0:
                    continue
                pulses += n
                up = d[b, i] * x[b, j] > 0.0
                size = step * gamma[i, j] * (1.0 + 0.5 * asym[i, j] if up else 1.0 - 0.5 * asym[i, j])
                if c2c > 0.0:
                    size = size * (n + c2c * math.sqrt(n) * normal(seed, 2 * ctr + 1)) / n
                if soft:
                    size = size * (1.0 - w[i, j] / w_max if up else 1.0 + w[i, j] / w_max)
                delta = n * size if up else -n * size
                w[i, j] = min(max(w[i, j] + delta, -w_max), w_max)
    return pulses


def pulsed_update_np(w, d, x, eta, w_max, bl, dw_min, asym, c2c, soft, gamma, seed, base):
    """Readable numpy twin of :func:`pulsed_update` (vectorised per sample); same draws."""
    w = w.copy()
    batch, n_out = d.shape
    n_in = x.shape[1]
    pulses = 0
    if dw_min <= 0:
        for b in range(batch):
            w = np.clip(w + eta * np.outer(d[b], x[b]), -w_max, w_max)
        return w, pulses
    step = dw_min * w_max
    for b in range(batch):
        dmax, xmax = np.abs(d[b]).max(), np.abs(x[b]).max()
        if dmax == 0 or xmax == 0:
            continue
        c = math.sqrt(eta / (bl * step))
        p = np.minimum(1.0, c * math.sqrt(xmax / dmax) * np.abs(d[b]))[:, None]
        q = np.minimum(1.0, c * math.sqrt(dmax / xmax) * np.abs(x[b]))[None, :]
        ctr = base + (b * n_out + np.arange(n_out)[:, None]) * n_in + np.arange(n_in)[None, :]
        u = uniform_np(seed, 2 * ctr)
        n = _binomial_inv_np(u, bl, p * q)
        pulses += int(n.sum())
        up = np.outer(d[b], x[b]) > 0
        size = step * gamma * np.where(up, 1 + 0.5 * asym, 1 - 0.5 * asym)  # asym: (n_out, n_in) or a number
        if c2c > 0:
            safe = np.maximum(n, 1)
            size = size * (n + c2c * np.sqrt(n) * normal_np(seed, 2 * ctr + 1)) / safe
        if soft:
            size = size * np.where(up, 1 - w / w_max, 1 + w / w_max)
        delta = np.where(up, n * size, -n * size)
        w = np.where(n > 0, np.clip(w + delta, -w_max, w_max), w)
    return w, pulses


def _binomial_inv_np(u, n, p):
    p = np.broadcast_to(p, u.shape)
    k = np.zeros(u.shape, dtype=np.int64)
    q = 1.0 - p
    with np.errstate(divide="ignore", invalid="ignore"):
        prob = np.where(p >= 1, 0.0, q**n)
        cdf = prob.copy()
        active = (p > 0) & (p < 1)
        for kk in range(n):
            more = active & (u > cdf)
            if not more.any():
                break
            prob = np.where(more, prob * (n - kk) / (kk + 1) * p / np.where(q > 0, q, 1), prob)
            k = np.where(more, kk + 1, k)
            cdf = np.where(more, cdf + prob, cdf)
    return np.where(p >= 1, n, k)


def device_gains(shape, d2d: float, *, seed: int, layer: int) -> np.ndarray:
    """Fixed per-device dw_min gains γ = max(0, 1 + σ_d2d ξ) (read-only: drawn once per chip and
    reused by every update)."""
    return _device_gains(tuple(int(n) for n in shape), float(d2d), int(seed), int(layer))


@functools.lru_cache(maxsize=256)
def _device_gains(shape: tuple, d2d: float, seed: int, layer: int) -> np.ndarray:
    if d2d == 0:
        gains = np.ones(shape)
    else:
        rng = np.random.default_rng([seed, 0x6A, layer])
        gains = np.maximum(0.0, 1.0 + d2d * rng.standard_normal(shape))
    gains.flags.writeable = False
    return gains


def device_asymmetry(shape, asym: float, d2d: float, *, seed: int, layer: int) -> np.ndarray:
    """Fixed per-device asymmetries a_ij = a + σ_a ξ (read-only, drawn once per chip)."""
    return _device_asymmetry(tuple(int(n) for n in shape), float(asym), float(d2d), int(seed), int(layer))


@functools.lru_cache(maxsize=256)
def _device_asymmetry(shape: tuple, asym: float, d2d: float, seed: int, layer: int) -> np.ndarray:
    if d2d == 0:
        values = np.full(shape, asym)
    else:
        values = asym + d2d * np.random.default_rng([seed, 0xA5, layer]).standard_normal(shape)
    values.flags.writeable = False
    return values


def update_crossbars(spec, states: list[np.ndarray], errors: list[np.ndarray], pre: list[np.ndarray],
                     lr, w_max: np.ndarray, profile, *, seed: int, update_index: int) -> tuple[list[np.ndarray], int]:
    """One in-place learning step of every crossbar: ΔW_ℓ = −η_ℓ ∂F̄/∂W_ℓ = η_ℓ (a_ℓ/B) Σ_b ε_ℓ,b p_ℓ,bᵀ,
    F̄ the batch-mean free energy, applied by :func:`pulsed_update` with the device model of ``profile``.

    states: device states W_ℓ (n_out, n_in) (copied, not modified); errors ε_1..ε_L (B, n_ℓ);
    pre: presynaptic signals p_ℓ = x, φ(z_1), …, φ(z_H) (B, n_in); lr: η_ℓ, one number or L.
    Device gains γ are fixed per (seed, layer); pulse draws are counted from ``update_index`` so
    successive updates draw independently. Returns (new states, write pulses fired).
    """
    a = spec.scalings()
    rates = np.broadcast_to(np.asarray(lr, dtype=np.float64), (spec.depth,))
    batch = errors[0].shape[0]
    out, pulses = [], 0
    for l in range(spec.depth):
        w = np.array(states[l], dtype=np.float64)
        gamma = device_gains(w.shape, profile.d2d_frac, seed=seed, layer=l)
        asym = device_asymmetry(w.shape, profile.up_down_asym, profile.asym_d2d_frac, seed=seed, layer=l)
        base = ((update_index * spec.depth + l) << 30) % (1 << 62)
        pulses += pulsed_update(w, np.ascontiguousarray(errors[l], dtype=np.float64),
                                np.ascontiguousarray(pre[l], dtype=np.float64), float(rates[l]) * a[l] / batch,
                                float(w_max[l]), int(profile.pulse_bl), profile.dw_min_frac, asym,
                                profile.c2c_frac, bool(profile.soft_bounds), gamma, seed, base)
        out.append(w)
    return out, pulses
