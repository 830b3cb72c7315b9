"""One analog matrix-vector multiply through a crossbar: DAC, array read, noise, saturation, ADC.

For an MVM y = W p of a crossbar with full scale w_max (the conductance range g_max):

    s = max|p|                       the DAC's input range, per sample
    p_n = p / s                      quantised to ``levels_in`` (clocked mode)
    y_n = W p_n / w_max + σ ξ        σ² = σ_read²‖p_n‖₂² + σ_out² (read and output noise are
                                     independent Gaussians on the same output: one draw of the sum)
          (+ ‖p_n‖₂ c               with temporally correlated read noise: c the output's current
                                     value of the correlated processes, :mod:`simulators.noise`)
    y_n ← clip(y_n, ±out_bound)      then quantised to ``levels_out`` over ±out_bound (clocked mode)
    y = y_n · w_max · s

:func:`analog_mvm_np` is the readable numpy definition (the oracle the tests compare with);
:func:`dac_row` and :func:`adc_row` are the same maths for one sample's row in numba, shared by
the batched and the single-sample kernels so the converter is written once for both.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .noise import StepNoise, counter, counter_scalar
from .rng import normal_keyed, normal_np


def analog_mvm_np(w: np.ndarray, p: np.ndarray, w_max: float, noise: StepNoise, *, eval_index: int,
                  slot_base: int, samples: np.ndarray, corr: np.ndarray | None = None,
                  read_var: np.ndarray | None = None, tile: int = 0) -> np.ndarray:
    """y = p Wᵀ through the converter and noise model; p (B, n_in), w (n_out, n_in), samples (B,)
    the global sample indices of the noise counters, corr (B, ≥ T·n_out) the correlated read noise of
    these outputs, tile after tile (with ``noise.correlated``), read_var (n_out, n_in) each weight's
    read-noise variance in units of σ_read² (None: 1, so the output's is ‖p_n‖₂²). Returns (B, n_out).

    ``tile`` > 0 splits the inputs into T = ⌈n_in/tile⌉ tiles (arrays of at most ``tile`` rows): each
    tile converts its inputs, reads and digitises its own partial sums (output t·n_out + i of the noise
    counters and of ``corr``), and the partial sums are added in the periphery."""
    if not noise.mvm_active:
        return p @ w.T
    n_in, n_out = w.shape[1], w.shape[0]
    if tile <= 0 or tile >= n_in:
        return _analog_tile(w, p, w_max, noise, eval_index, slot_base, samples, corr, read_var, 0)
    total = np.zeros((p.shape[0], n_out))
    for t, r0 in enumerate(range(0, n_in, tile)):
        cols = slice(r0, r0 + tile)
        total += _analog_tile(w[:, cols], p[:, cols], w_max, noise, eval_index, slot_base, samples,
                              None if corr is None else corr[:, t * n_out:], None if read_var is None
                              else read_var[:, cols], t * n_out)
    return total


def _analog_tile(w, p, w_max, noise, eval_index, slot_base, samples, corr, read_var, unit0):
    """One array's read (see :func:`analog_mvm_np`); its draws at outputs unit0 + i."""
    scale = np.max(np.abs(p), axis=1, keepdims=True)
    safe = np.where(scale > 0, scale, 1.0)
    pn = p / safe
    if noise.levels_in:
        pn = np.rint(pn * noise.levels_in) / noise.levels_in
    yn = pn @ w.T / w_max
    read_norm2 = np.sum(pn * pn, axis=1, keepdims=True) if read_var is None else (pn * pn) @ read_var.T
    if corr is not None:
        yn = yn + np.sqrt(read_norm2) * corr[:, : w.shape[0]]
    if noise.read_sigma or noise.out_sigma:
        norm2 = read_norm2 if noise.read_sigma else 0.0
        sigma = np.sqrt(noise.read_sigma**2 * norm2 + noise.out_sigma**2)
        ctr = counter(eval_index, slot_base, samples[:, None], unit0 + np.arange(w.shape[0])[None, :])
        yn = yn + sigma * normal_np(noise.seed, ctr)
    if noise.out_bound:
        yn = np.clip(yn, -noise.out_bound, noise.out_bound)
    if noise.levels_out:
        yn = np.rint(yn / noise.out_bound * noise.levels_out) / noise.levels_out * noise.out_bound
    return yn * (w_max * np.where(scale > 0, scale, 0.0))


@nb.njit(inline="always")
def dac_row(p, pn, levels_in):
    """pn ← p / max|p|, quantised to ``levels_in`` (0: exact); returns (max|p|, ‖pn‖₂²)."""
    m = 0.0
    for j in range(p.shape[0]):
        v = abs(p[j])
        if v > m:
            m = v
    safe = m if m > 0 else 1.0
    norm2 = 0.0
    for j in range(p.shape[0]):
        v = p[j] / safe
        if levels_in > 0:
            v = np.rint(v * levels_in) / levels_in
        pn[j] = v
        norm2 += v * v
    return m, norm2


@nb.njit(inline="always")
def adc_row(row, w_max, scale, norm2, noise, key, ev, slot_base, sample, corr_row, norm2_row, unit0=0):
    """row ← the converted output of one sample, in place: row holds W p_n on entry (see the module
    docstring); ``key`` is ``seed_key(noise.seed)``; ``corr_row`` the outputs' correlated read noise
    and ``norm2_row`` their read-noise norms Σ_j S_ij p_n,j² (state-dependent noise; both empty without);
    ``unit0`` the noise counters' first output (a tile's offset)."""
    sigma = np.sqrt(noise.read_sigma * noise.read_sigma * norm2 + noise.out_sigma * noise.out_sigma)
    n_out = row.shape[0]
    if norm2_row.shape[0] > 0:  # each output its own read-noise variance; the order of analog_mvm_np
        for i in range(n_out):
            n2 = norm2_row[i]
            row[i] = row[i] / w_max
            if corr_row.shape[0] > 0:
                row[i] = row[i] + np.sqrt(n2) * corr_row[i]
            s = np.sqrt(noise.read_sigma * noise.read_sigma * n2 + noise.out_sigma * noise.out_sigma)
            if s > 0:
                row[i] = row[i] + s * normal_keyed(key, counter_scalar(ev, slot_base, sample, unit0 + i))
    elif corr_row.shape[0] > 0:  # the same operations, in the same order, as analog_mvm_np
        root = np.sqrt(norm2)
        for i in range(n_out):
            row[i] = row[i] / w_max
            row[i] = row[i] + root * corr_row[i]
            if sigma > 0:
                row[i] = row[i] + sigma * normal_keyed(key, counter_scalar(ev, slot_base, sample, unit0 + i))
    elif sigma > 0:
        for i in range(n_out):  # branch-free loops the compiler can vectorise
            row[i] = row[i] / w_max + sigma * normal_keyed(key, counter_scalar(ev, slot_base, sample, unit0 + i))
    else:
        for i in range(n_out):
            row[i] = row[i] / w_max
    bound = noise.out_bound
    if bound > 0:
        for i in range(n_out):
            row[i] = min(max(row[i], -bound), bound)
    if noise.levels_out > 0:
        levels = noise.levels_out
        for i in range(n_out):
            row[i] = np.rint(row[i] / bound * levels) / levels * bound
    sc = w_max * scale
    for i in range(n_out):
        row[i] = row[i] * sc
