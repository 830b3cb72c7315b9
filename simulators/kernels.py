"""Numba kernels of the fixed-step PC circuit; numpy twin: :mod:`simulators.reference`.

Kernels take named tuples of arrays and scalars (:class:`KernelCircuit`, :class:`KernelDrive`,
:class:`KernelPhase`, :class:`KernelOutputs` and the noise contract
:class:`simulators.noise.StepNoise`) and read them by field name; they allocate their buffers
once before the step loop and step with an integer counter. Two forms:

- ``integrate_batched``: B independent circuits at once; the matrix products go to BLAS
  (``np.dot`` with ``out=``), elementwise work is fused into one pass per layer.
- ``integrate_single``: one circuit (B = 1); a single pass over each crossbar computes the
  prediction of a row and immediately adds that row's feedback (Wᵀε), so every weight is read
  once per gradient evaluation; ``integrate_single_noisy`` is its twin with every MVM through
  the converter and noise model (two passes per crossbar).

Both forms run every MVM through the converter of :mod:`simulators.mvm` when noisy.
Activation codes: 0 ReLU, 1 tanh, 2 linear. Methods: 0 Euler, 1 Heun.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

from .mvm import adc_row, dac_row
from .noise import corr_advance, counter_scalar, ktc_slot, slot
from .rng import normal_keyed, seed_key

ACT_CODES = {"relu": 0, "tanh": 1, "linear": 2}
METHOD_CODES = {"euler": 0, "heun": 1}


class KernelCircuit(NamedTuple):
    """The prepared circuit as the kernels read it (crossbars 0 input, 1..H−1 hidden, H output).

    w_hid (H−1, N, N) and w_out (d_y, N) are the hidden and output crossbars (rows = outputs) as
    transposed reads see them (the batched kernel's feedback; the single kernel's both directions);
    w_hid_t, w_out_t the forward reads' weights, transposed (the batched kernel's BLAS layout; empty
    for the single kernel) — they differ from w_hid, w_out only under IR drop. a_hid, a_out the
    scalings; act the activation code; w_max (L,) each crossbar's full scale; gains (H, N) the
    activation circuits' gains (ones unless mismatched); var_hid, var_hid_t, var_out, var_out_t the
    weights' read-noise variances in units of σ_read², laid out like the weights (batched kernel,
    state-dependent noise; otherwise (H−1, 0, 0) and (0, 0)).
    """

    w_hid: np.ndarray
    w_hid_t: np.ndarray
    w_out: np.ndarray
    w_out_t: np.ndarray
    a_hid: float
    a_out: float
    act: int
    skip: bool
    w_max: np.ndarray
    gains: np.ndarray
    var_hid: np.ndarray
    var_hid_t: np.ndarray
    var_out: np.ndarray
    var_out_t: np.ndarray


class KernelDrive(NamedTuple):
    """What drives the circuits: μ_1 (B, N) from the input crossbar, targets y (B, d_y) and the
    global sample indices (B,) of the noise counters (the single kernel: (N,), (d_y,), (1,))."""

    mu1: np.ndarray
    y: np.ndarray
    samples: np.ndarray


class KernelPhase(NamedTuple):
    """One phase of integration: step h = dt/τ, n_steps, method code, a free or clamped output,
    feedback on (PC dynamics) or off (forward cascade), the index of its first step in the run
    (noise counters), and the first step of the update window (≥ n_steps: no window)."""

    h: float
    n_steps: int
    method: int
    free_out: bool
    feedback: bool
    step_offset: int
    window_from: int


class KernelCorr(NamedTuple):
    """Temporally correlated read noise (:mod:`simulators.noise`): state (K, 2L, B, n) of its processes and
    their sum total (2L, B, n), index 2ℓ + d for crossbar ℓ read in direction d; updated in place.
    Without it: state (0, 2L, 1, 0) and total (2L, 1, 0)."""

    state: np.ndarray
    total: np.ndarray


class KernelOutputs(NamedTuple):
    """Written by the kernel: energy_trace (n_steps + 1, B) and state_trace (n_steps + 1, H, B, N),
    or empty along the first axis to skip recording; the update window's sums of ε (H, B, N),
    ε_L (B, d_y) and g·φ(z) (H, B, N)."""

    energy_trace: np.ndarray
    state_trace: np.ndarray
    eps_sum: np.ndarray
    eps_out_sum: np.ndarray
    phz_sum: np.ndarray


@nb.njit(inline="always")
def _phi(v, act):
    if act == 0:
        return v if v > 0.0 else 0.0 * v
    if act == 1:
        return np.tanh(v)
    return v


@nb.njit(inline="always")
def _dphi(v, act):
    if act == 0:
        return 1.0 if v > 0.0 else 0.0
    if act == 1:
        t = np.tanh(v)
        return 1.0 - t * t
    return 1.0


class _Work(NamedTuple):
    """Buffers of one batched gradient evaluation."""

    eps: np.ndarray
    phz: np.ndarray
    fb: np.ndarray
    pred: np.ndarray
    pred_out: np.ndarray
    eps_out: np.ndarray
    energies: np.ndarray
    pn: np.ndarray
    pn_o: np.ndarray
    scale: np.ndarray
    norm2: np.ndarray
    pn2: np.ndarray
    pn2_o: np.ndarray
    rows: np.ndarray
    rows_o: np.ndarray
    tbuf: np.ndarray


@nb.njit(cache=True)
def xbar(p, wt, out, noisy, pn, scale, w_max, noise, ev, slot_base, samples, corr, var_t, pn2, rows, norm2, tile,
         tbuf):
    """out ← p wt (B, n_out) through a crossbar; with ``noisy``, through the converter and noise
    model of :mod:`simulators.mvm`. ``corr`` (B, n) the outputs' correlated read noise, or (1, 0) without;
    ``var_t`` (n_in, n_out) the weights' read-noise variances (state-dependent noise), or (0, 0) without;
    ``tile`` the largest array's inputs (0: one array); ``pn``, ``pn2`` (B, n_in), ``rows`` (B, n_out),
    ``scale``, ``norm2`` (B,) and ``tbuf`` (≥ B·n_in + B·n_out) are scratch."""
    if not noisy:
        np.dot(p, wt, out)
        return
    n_in = p.shape[1]
    if 0 < tile < n_in:
        _xbar_tiled(p, wt, out, pn, scale, w_max, noise, ev, slot_base, samples, corr, var_t, pn2, rows, norm2,
                    tile, tbuf)
        return
    for b in range(p.shape[0]):
        scale[b], norm2[b] = dac_row(p[b], pn[b], noise.levels_in)
    np.dot(pn, wt, out)
    state_dependent = var_t.shape[0] > 0
    if state_dependent:
        for idx in np.ndindex(pn.shape):
            pn2[idx] = pn[idx] * pn[idx]
        np.dot(pn2, var_t, rows)
    key = seed_key(noise.seed)
    has_corr = corr.shape[1] > 0
    n_out = out.shape[1]
    for b in range(p.shape[0]):
        crow = corr[b, :n_out] if has_corr else corr[0, :]
        vrow = rows[b] if state_dependent else rows[0, :0]
        adc_row(out[b], w_max, scale[b], norm2[b], noise, key, ev, slot_base, samples[b], crow, vrow)


@nb.njit(cache=True)
def _xbar_tiled(p, wt, out, pn, scale, w_max, noise, ev, slot_base, samples, corr, var_t, pn2, rows, norm2, tile,
                tbuf):
    """:func:`xbar` on arrays of at most ``tile`` inputs: each tile converts, reads and digitises its own
    partial sums (noise outputs t·n_out + i), which are added in the periphery."""
    batch, n_in = p.shape
    n_out = out.shape[1]
    out[:] = 0.0
    t = 0
    for r0 in range(0, n_in, tile):
        k = min(tile, n_in - r0)
        pt = tbuf[: batch * k].reshape((batch, k))
        yt = tbuf[batch * n_in: batch * n_in + batch * n_out].reshape((batch, n_out))
        for b in range(batch):
            for j in range(k):
                pt[b, j] = p[b, r0 + j]
        part_corr = corr[:, t * n_out:] if corr.shape[1] > 0 else corr
        part_var = var_t[r0: r0 + k] if var_t.shape[0] > 0 else var_t
        _read_tile(pt, wt[r0: r0 + k], yt, pn[:, :k], scale, w_max, noise, ev, slot_base, samples, part_corr,
                   part_var, pn2[:, :k], rows, norm2, t * n_out)
        for b in range(batch):
            for i in range(n_out):
                out[b, i] += yt[b, i]
        t += 1


@nb.njit(cache=True)
def _read_tile(p, wt, out, pn, scale, w_max, noise, ev, slot_base, samples, corr, var_t, pn2, rows, norm2, unit0):
    """One array's noisy read (contiguous p (B, k), wt (k, n_out)) into out (B, n_out)."""
    batch, k = p.shape
    pnc = np.empty((batch, k))  # a contiguous operand for BLAS
    for b in range(batch):
        scale[b], norm2[b] = dac_row(p[b], pnc[b], noise.levels_in)
    np.dot(pnc, wt, out)
    state_dependent = var_t.shape[0] > 0
    if state_dependent:
        sq = np.empty((batch, k))
        for idx in np.ndindex(sq.shape):
            sq[idx] = pnc[idx] * pnc[idx]
        np.dot(sq, np.ascontiguousarray(var_t), rows)
    key = seed_key(noise.seed)
    has_corr = corr.shape[1] > 0
    n_out = out.shape[1]
    for b in range(batch):
        crow = corr[b, :n_out] if has_corr else corr[0, :]
        vrow = rows[b] if state_dependent else rows[0, :0]
        adc_row(out[b], w_max, scale[b], norm2[b], noise, key, ev, slot_base, samples[b], crow, vrow, unit0)


@nb.njit(cache=True)
def after_update(z, noise, step, n_crossbars, samples):
    """Integrator leak and kT/C noise on the value neurons (twin of reference.after_update)."""
    h_layers, batch, n = z.shape
    if noise.leak_factor != 1.0:
        for l in range(h_layers):
            for b in range(batch):
                for i in range(n):
                    z[l, b, i] *= noise.leak_factor
    if noise.ktc_sigma != 0.0:
        key = seed_key(noise.seed)
        for l in range(h_layers):
            s = ktc_slot(n_crossbars, l)
            for b in range(batch):
                for i in range(n):
                    z[l, b, i] += noise.ktc_sigma * normal_keyed(key, counter_scalar(step, s, samples[b], i))


# ----------------------------------------------------------------------------------- batched
@nb.njit(cache=True)
def _grad_batched(c, d, free_out, feedback, noise, noisy, ev, z, zout, g, gout, wk, cr):
    """g ← ∂F_b/∂z for every sample b (and gout for a free output); wk.energies ← F_b.

    With ``feedback`` False each neuron follows only its own error (g = ε): the forward cascade.
    """
    h_layers, batch, n = z.shape
    d_y = zout.shape[1]
    last_xbar = h_layers  # crossbars: 0 input, 1..H−1 hidden, H output
    eps, phz, fb, eps_out = wk.eps, wk.phz, wk.fb, wk.eps_out
    for l in range(h_layers):
        for b in range(batch):
            for i in range(n):
                phz[l, b, i] = c.gains[l, i] * _phi(z[l, b, i], c.act)
    for b in range(batch):
        for i in range(n):
            eps[0, b, i] = z[0, b, i] - d.mu1[b, i]
    for l in range(1, h_layers):
        xbar(phz[l - 1], c.w_hid_t[l - 1], wk.pred, noisy, wk.pn, wk.scale, c.w_max[l], noise, ev,
             slot(l, 0, 0), d.samples, cr.total[2 * l], c.var_hid_t[l - 1], wk.pn2, wk.rows, wk.norm2,
             noise.tile_rows, wk.tbuf)
        for b in range(batch):
            for i in range(n):
                base = z[l - 1, b, i] if c.skip else 0.0
                eps[l, b, i] = z[l, b, i] - (base + c.a_hid * wk.pred[b, i])
    xbar(phz[h_layers - 1], c.w_out_t, wk.pred_out, noisy, wk.pn, wk.scale, c.w_max[last_xbar], noise, ev,
         slot(last_xbar, 0, 0), d.samples, cr.total[2 * last_xbar], c.var_out_t, wk.pn2, wk.rows_o, wk.norm2,
         noise.tile_rows, wk.tbuf)
    for b in range(batch):
        for k in range(d_y):
            target = zout[b, k] if free_out else d.y[b, k]
            eps_out[b, k] = target - c.a_out * wk.pred_out[b, k]
    if feedback:
        for l in range(h_layers - 1):
            xbar(eps[l + 1], c.w_hid[l], fb[l], noisy, wk.pn, wk.scale, c.w_max[l + 1], noise, ev,
                 slot(l + 1, 1, 0), d.samples, cr.total[2 * (l + 1) + 1], c.var_hid[l], wk.pn2, wk.rows,
                 wk.norm2, noise.tile_cols, wk.tbuf)
            for b in range(batch):
                for i in range(n):
                    v = eps[l, b, i] - c.gains[l, i] * _dphi(z[l, b, i], c.act) * c.a_hid * fb[l, b, i]
                    if c.skip:
                        v -= eps[l + 1, b, i]
                    g[l, b, i] = v
        last = h_layers - 1
        xbar(eps_out, c.w_out, fb[last], noisy, wk.pn_o, wk.scale, c.w_max[last_xbar], noise, ev,
             slot(last_xbar, 1, 0), d.samples, cr.total[2 * last_xbar + 1], c.var_out, wk.pn2_o, wk.rows, wk.norm2,
             noise.tile_cols, wk.tbuf)
        for b in range(batch):
            for i in range(n):
                dv = c.gains[last, i] * _dphi(z[last, b, i], c.act)
                g[last, b, i] = eps[last, b, i] - dv * c.a_out * fb[last, b, i]
    else:
        g[:] = eps
    for b in range(batch):
        for k in range(d_y):
            gout[b, k] = eps_out[b, k] if free_out else 0.0
    for b in range(batch):
        e = 0.0
        for l in range(h_layers):
            for i in range(n):
                e += eps[l, b, i] * eps[l, b, i]
        for k in range(d_y):
            e += eps_out[b, k] * eps_out[b, k]
        wk.energies[b] = 0.5 * e


@nb.njit(cache=True)
def _add_window(wk, out):
    """The update window's accumulators += the errors and activations of this evaluation."""
    for idx in np.ndindex(wk.eps.shape):
        out.eps_sum[idx] += wk.eps[idx]
        out.phz_sum[idx] += wk.phz[idx]
    for idx in np.ndindex(wk.eps_out.shape):
        out.eps_out_sum[idx] += wk.eps_out[idx]


@nb.njit(cache=True)
def _heun_batched(c, d, ph, noise, noisy, ev, z, zout, g, gout, z2, zout2, g2, gout2, wk, cr):
    """Heun's predictor z̃ = z − h g and corrector z ← z − (h/2)(g(z) + g(z̃)), in place."""
    h = ph.h
    for idx in np.ndindex(z.shape):
        z2[idx] = z[idx] - h * g[idx]
    for idx in np.ndindex(zout.shape):
        zout2[idx] = zout[idx] - h * gout[idx] if ph.free_out else zout[idx]
    _grad_batched(c, d, ph.free_out, ph.feedback, noise, noisy, ev + 1, z2, zout2, g2, gout2, wk, cr)
    for idx in np.ndindex(z.shape):
        z[idx] -= 0.5 * h * (g[idx] + g2[idx])
    if ph.free_out:
        for idx in np.ndindex(zout.shape):
            zout[idx] -= 0.5 * h * (gout[idx] + gout2[idx])


@nb.njit(cache=True)
def integrate_batched(c, d, ph, noise, z, zout, out, cr):
    """Integrate ``ph.n_steps`` steps in place on z (H, B, N) and zout (B, d_y) (see the classes
    above for the arguments); from step ``ph.window_from`` on, every step adds the errors and
    activations it evaluates (at the step's start) to the window sums of ``out``. Correlated read
    noise advances once per step, after the step's first evaluation (Heun's corrector sees the next
    step's noise, as a read at that time would)."""
    record_e = out.energy_trace.shape[0] > 0
    record_s = out.state_trace.shape[0] > 0
    noisy = noise.levels_in > 0 or noise.levels_out > 0 or noise.out_bound > 0 or noise.read_sigma > 0 \
        or noise.out_sigma > 0 or cr.state.shape[0] > 0
    integrator = noise.leak_factor != 1.0 or noise.ktc_sigma != 0.0
    correlated = cr.state.shape[0] > 0
    n_crossbars = z.shape[0] + 1
    wk = _Work(np.empty_like(z), np.empty_like(z), np.empty_like(z), np.empty_like(z[0]), np.empty_like(zout),
               np.empty_like(zout), np.empty(z.shape[1], dtype=z.dtype), np.empty_like(z[0]), np.empty_like(zout),
               np.empty(z.shape[1], dtype=z.dtype), np.empty(z.shape[1], dtype=z.dtype), np.empty_like(z[0]),
               np.empty_like(zout), np.empty_like(z[0]), np.empty_like(zout),
               np.empty(2 * z.shape[1] * max(z.shape[2], zout.shape[1]), dtype=z.dtype))
    g = np.empty_like(z)
    gout = np.empty_like(zout)
    heun = ph.method == 1
    z2 = np.empty_like(z) if heun else z[:0]
    zout2 = np.empty_like(zout) if heun else zout[:0]
    g2 = np.empty_like(z) if heun else z[:0]
    gout2 = np.empty_like(zout) if heun else zout[:0]
    for k in range(ph.n_steps):
        step = ph.step_offset + k
        ev = 2 * step if heun else step
        _grad_batched(c, d, ph.free_out, ph.feedback, noise, noisy, ev, z, zout, g, gout, wk, cr)
        if correlated:
            corr_advance(cr.state, cr.total, noise, step, d.samples)
        if k >= ph.window_from:
            _add_window(wk, out)
        if record_e:
            out.energy_trace[k] = wk.energies
        if record_s:
            out.state_trace[k] = z
        if heun:
            _heun_batched(c, d, ph, noise, noisy, ev, z, zout, g, gout, z2, zout2, g2, gout2, wk, cr)
        else:
            z -= ph.h * g
            if ph.free_out:
                zout -= ph.h * gout
        if integrator:
            after_update(z, noise, step, n_crossbars, d.samples)
    if record_e:
        end = ph.step_offset + ph.n_steps
        _grad_batched(c, d, ph.free_out, ph.feedback, noise, noisy, 2 * end if heun else end, z, zout, g, gout, wk,
                      cr)
        out.energy_trace[ph.n_steps] = wk.energies
    if record_s:
        out.state_trace[ph.n_steps] = z


# ------------------------------------------------------------------------------ single sample
@nb.njit(cache=True, fastmath=True)
def _crossbar_pass(w, p, target, base, skip_coef, a, eps, fbacc):
    """One pass over crossbar w (out, in): eps_i = target_i − skip_coef·base_i − a (w_i · p) for every
    row i, and fbacc = Σ_i w_i eps_i (the feedback Wᵀε). Rows go four at a time so that p and
    fbacc are loaded once per four rows (one read of each weight, two MACs)."""
    n_out, n_in = w.shape
    for j in range(n_in):
        fbacc[j] = 0.0
    i = 0
    while i + 4 <= n_out:
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        for j in range(n_in):
            pj = p[j]
            a0 += w[i, j] * pj
            a1 += w[i + 1, j] * pj
            a2 += w[i + 2, j] * pj
            a3 += w[i + 3, j] * pj
        e0 = target[i] - skip_coef * base[i] - a * a0
        e1 = target[i + 1] - skip_coef * base[i + 1] - a * a1
        e2 = target[i + 2] - skip_coef * base[i + 2] - a * a2
        e3 = target[i + 3] - skip_coef * base[i + 3] - a * a3
        eps[i] = e0
        eps[i + 1] = e1
        eps[i + 2] = e2
        eps[i + 3] = e3
        for j in range(n_in):
            fbacc[j] += w[i, j] * e0 + w[i + 1, j] * e1 + w[i + 2, j] * e2 + w[i + 3, j] * e3
        i += 4
    while i < n_out:
        acc = 0.0
        for j in range(n_in):
            acc += w[i, j] * p[j]
        e = target[i] - skip_coef * base[i] - a * acc
        eps[i] = e
        for j in range(n_in):
            fbacc[j] += w[i, j] * e
        i += 1


class _Work1(NamedTuple):
    """Buffers of one single-sample gradient evaluation."""

    eps: np.ndarray
    eps_out: np.ndarray
    phz: np.ndarray
    dz: np.ndarray
    buf: np.ndarray
    pn: np.ndarray


@nb.njit(cache=True, fastmath=True)
def _grad_single(c, d, free_out, feedback, z, zout, g, gout, wk):
    """One circuit: g ← ∂F/∂z (H, N), gout (d_y,); returns F. One read of each weight."""
    h_layers, n = z.shape
    d_y = zout.shape[0]
    eps, eps_out, phz, dz, fbacc = wk.eps, wk.eps_out, wk.phz, wk.dz, wk.buf
    fbon = 1.0 if feedback else 0.0  # the forward cascade drops the feedback terms
    skip_coef = 1.0 if c.skip else 0.0
    for l in range(h_layers):
        for i in range(n):
            phz[l, i] = _phi(z[l, i], c.act)
            dz[l, i] = _dphi(z[l, i], c.act)
    for i in range(n):
        eps[0, i] = z[0, i] - d.mu1[i]
    for l in range(1, h_layers):
        _crossbar_pass(c.w_hid[l - 1], phz[l - 1], z[l], z[l - 1], skip_coef, c.a_hid, eps[l], fbacc)
        for j in range(n):
            g[l - 1, j] = eps[l - 1, j] - fbon * (dz[l - 1, j] * c.a_hid * fbacc[j] + skip_coef * eps[l, j])
    last = h_layers - 1
    target = zout if free_out else d.y
    _crossbar_pass(c.w_out, phz[last], target, target, 0.0, c.a_out, eps_out, fbacc)
    energy = 0.0
    for k in range(d_y):
        gout[k] = eps_out[k] if free_out else 0.0
        energy += eps_out[k] * eps_out[k]
    for j in range(n):
        g[last, j] = eps[last, j] - fbon * dz[last, j] * c.a_out * fbacc[j]
    for l in range(h_layers):
        for i in range(n):
            energy += eps[l, i] * eps[l, i]
    return 0.5 * energy


@nb.njit(cache=True, fastmath=True)
def _xbar1(w, p, out, transpose, pn, w_max, noise, key, ev, slot_base, sample):
    """out ← W p (transpose False: w (n_out, n_in)) or Wᵀ p (transpose True: w (n_in, n_out)) for one
    sample, through the converter of :mod:`simulators.mvm` (the same draws as :func:`xbar`)."""
    n_in = p.shape[0]
    n_out = out.shape[0]
    m, norm2 = dac_row(p, pn, noise.levels_in)
    if transpose:  # out += Σ_j w_j pn_j, four rows of w per pass over out
        for k in range(n_out):
            out[k] = 0.0
        j = 0
        while j + 4 <= n_in:
            v0, v1, v2, v3 = pn[j], pn[j + 1], pn[j + 2], pn[j + 3]
            for k in range(n_out):
                out[k] += w[j, k] * v0 + w[j + 1, k] * v1 + w[j + 2, k] * v2 + w[j + 3, k] * v3
            j += 4
        while j < n_in:
            v = pn[j]
            for k in range(n_out):
                out[k] += w[j, k] * v
            j += 1
    else:  # four row dot products per pass over pn
        k = 0
        while k + 4 <= n_out:
            a0 = 0.0
            a1 = 0.0
            a2 = 0.0
            a3 = 0.0
            for j in range(n_in):
                v = pn[j]
                a0 += w[k, j] * v
                a1 += w[k + 1, j] * v
                a2 += w[k + 2, j] * v
                a3 += w[k + 3, j] * v
            out[k], out[k + 1], out[k + 2], out[k + 3] = a0, a1, a2, a3
            k += 4
        while k < n_out:
            acc = 0.0
            for j in range(n_in):
                acc += w[k, j] * pn[j]
            out[k] = acc
            k += 1
    adc_row(out, w_max, m, norm2, noise, key, ev, slot_base, sample, out[:0], out[:0])


@nb.njit(cache=True, fastmath=True)
def _grad_single_noisy(c, d, free_out, feedback, noise, key, ev, z, zout, g, gout, wk):
    """Twin of :func:`_grad_single` with every MVM through :func:`_xbar1` (two passes per crossbar)."""
    h_layers, n = z.shape
    d_y = zout.shape[0]
    last_xbar = h_layers
    sample = d.samples[0]
    eps, eps_out, phz, dz, buf, pn = wk.eps, wk.eps_out, wk.phz, wk.dz, wk.buf, wk.pn
    for l in range(h_layers):
        for i in range(n):
            phz[l, i] = c.gains[l, i] * _phi(z[l, i], c.act)
            dz[l, i] = c.gains[l, i] * _dphi(z[l, i], c.act)
    for i in range(n):
        eps[0, i] = z[0, i] - d.mu1[i]
    for l in range(1, h_layers):
        _xbar1(c.w_hid[l - 1], phz[l - 1], buf[:n], False, pn, c.w_max[l], noise, key, ev, slot(l, 0, 0), sample)
        for i in range(n):
            base = z[l - 1, i] if c.skip else 0.0
            eps[l, i] = z[l, i] - (base + c.a_hid * buf[i])
    out_buf = gout  # scratch for the output prediction, overwritten below
    _xbar1(c.w_out, phz[h_layers - 1], out_buf, False, pn, c.w_max[last_xbar], noise, key, ev,
           slot(last_xbar, 0, 0), sample)
    energy = 0.0
    for k in range(d_y):
        target = zout[k] if free_out else d.y[k]
        eps_out[k] = target - c.a_out * out_buf[k]
        energy += eps_out[k] * eps_out[k]
    if feedback:
        for l in range(h_layers - 1):
            _xbar1(c.w_hid[l], eps[l + 1], buf[:n], True, pn, c.w_max[l + 1], noise, key, ev, slot(l + 1, 1, 0),
                   sample)
            for j in range(n):
                v = eps[l, j] - dz[l, j] * c.a_hid * buf[j]
                if c.skip:
                    v -= eps[l + 1, j]
                g[l, j] = v
        _xbar1(c.w_out, eps_out, buf[:n], True, pn, c.w_max[last_xbar], noise, key, ev, slot(last_xbar, 1, 0),
               sample)
        for j in range(n):
            g[h_layers - 1, j] = eps[h_layers - 1, j] - dz[h_layers - 1, j] * c.a_out * buf[j]
    else:
        for l in range(h_layers):
            for j in range(n):
                g[l, j] = eps[l, j]
    for k in range(d_y):
        gout[k] = eps_out[k] if free_out else 0.0
    for l in range(h_layers):
        for i in range(n):
            energy += eps[l, i] * eps[l, i]
    return 0.5 * energy


@nb.njit(inline="always")
def _euler_single(z, zout, g, gout, h, free_out):
    """z ← z − h g (and the free output)."""
    for l in range(z.shape[0]):
        for i in range(z.shape[1]):
            z[l, i] -= h * g[l, i]
    if free_out:
        for i in range(zout.shape[0]):
            zout[i] -= h * gout[i]


@nb.njit(inline="always")
def _heun_predict_single(z, zout, g, gout, h, free_out, z2, zout2):
    """Heun's predictor z̃ = z − h g into (z2, zout2)."""
    for l in range(z.shape[0]):
        for i in range(z.shape[1]):
            z2[l, i] = z[l, i] - h * g[l, i]
    for i in range(zout.shape[0]):
        zout2[i] = zout[i] - h * gout[i] if free_out else zout[i]


@nb.njit(inline="always")
def _heun_correct_single(z, zout, g, gout, g2, gout2, h, free_out):
    """Heun's corrector z ← z − (h/2)(g(z) + g(z̃))."""
    for l in range(z.shape[0]):
        for i in range(z.shape[1]):
            z[l, i] -= 0.5 * h * (g[l, i] + g2[l, i])
    if free_out:
        for i in range(zout.shape[0]):
            zout[i] -= 0.5 * h * (gout[i] + gout2[i])


@nb.njit(inline="always")
def _work1(z, zout):
    n = max(z.shape[1], zout.shape[0])
    return _Work1(np.empty_like(z), np.empty_like(zout), np.empty_like(z), np.empty_like(z),
                  np.empty(n, dtype=z.dtype), np.empty(n, dtype=z.dtype))


@nb.njit(cache=True, fastmath=True)
def integrate_single(c, d, ph, z, zout, out):
    """One ideal circuit, ``ph.n_steps`` steps in place on z (H, N) and zout (d_y,); the traces of
    ``out`` as batched but without the batch axis (n_steps + 1,) and (n_steps + 1, H, N)."""
    record_e = out.energy_trace.shape[0] > 0
    record_s = out.state_trace.shape[0] > 0
    wk = _work1(z, zout)
    g = np.empty_like(z)
    gout = np.empty_like(zout)
    z2 = np.empty_like(z)
    zout2 = np.empty_like(zout)
    g2 = np.empty_like(z)
    gout2 = np.empty_like(zout)
    for k in range(ph.n_steps):
        energy = _grad_single(c, d, ph.free_out, ph.feedback, z, zout, g, gout, wk)
        if record_e:
            out.energy_trace[k] = energy
        if record_s:
            out.state_trace[k] = z
        if ph.method == 0:
            _euler_single(z, zout, g, gout, ph.h, ph.free_out)
        else:
            _heun_predict_single(z, zout, g, gout, ph.h, ph.free_out, z2, zout2)
            _grad_single(c, d, ph.free_out, ph.feedback, z2, zout2, g2, gout2, wk)
            _heun_correct_single(z, zout, g, gout, g2, gout2, ph.h, ph.free_out)
    if record_e:
        out.energy_trace[ph.n_steps] = _grad_single(c, d, ph.free_out, ph.feedback, z, zout, g, gout, wk)
    if record_s:
        out.state_trace[ph.n_steps] = z


@nb.njit(cache=True, fastmath=True)
def integrate_single_noisy(c, d, ph, noise, z, zout, out):
    """:func:`integrate_single` with the non-idealities of ``noise`` (Euler and Heun)."""
    record_e = out.energy_trace.shape[0] > 0
    record_s = out.state_trace.shape[0] > 0
    h_layers, n = z.shape
    wk = _work1(z, zout)
    g = np.empty_like(z)
    gout = np.empty_like(zout)
    z2 = np.empty_like(z)
    zout2 = np.empty_like(zout)
    g2 = np.empty_like(z)
    gout2 = np.empty_like(zout)
    key = seed_key(noise.seed)
    heun = ph.method == 1
    sample = d.samples[0]
    for k in range(ph.n_steps):
        step = ph.step_offset + k
        ev = 2 * step if heun else step
        energy = _grad_single_noisy(c, d, ph.free_out, ph.feedback, noise, key, ev, z, zout, g, gout, wk)
        if record_e:
            out.energy_trace[k] = energy
        if record_s:
            out.state_trace[k] = z
        if not heun:
            _euler_single(z, zout, g, gout, ph.h, ph.free_out)
        else:
            _heun_predict_single(z, zout, g, gout, ph.h, ph.free_out, z2, zout2)
            _grad_single_noisy(c, d, ph.free_out, ph.feedback, noise, key, ev + 1, z2, zout2, g2, gout2, wk)
            _heun_correct_single(z, zout, g, gout, g2, gout2, ph.h, ph.free_out)
        if noise.leak_factor != 1.0 or noise.ktc_sigma != 0.0:
            for l in range(h_layers):
                s = ktc_slot(h_layers + 1, l)
                for i in range(n):
                    z[l, i] *= noise.leak_factor
                    if noise.ktc_sigma != 0.0:
                        z[l, i] += noise.ktc_sigma * normal_keyed(key, counter_scalar(step, s, sample, i))
    if record_e:
        end = ph.step_offset + ph.n_steps
        out.energy_trace[ph.n_steps] = _grad_single_noisy(c, d, ph.free_out, ph.feedback, noise, key,
                                                          2 * end if heun else end, z, zout, g, gout, wk)
    if record_s:
        out.state_trace[ph.n_steps] = z
