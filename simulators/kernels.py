"""Numba kernels of the fixed-step PC circuit; numpy twin: :mod:`simulators.reference`.

Kernels take arrays and scalars only, allocate their buffers once before the step loop and
step with an integer counter. Two forms:

- ``integrate_batched``: B independent circuits at once; the matrix products go to BLAS
  (``np.dot`` with ``out=``), elementwise work is fused into one pass per layer.
- ``integrate_single``: one circuit (B = 1); a single pass over each crossbar computes the
  prediction of a row and immediately adds that row's feedback (Wᵀε), so every weight is read
  once per gradient evaluation.

Activation codes: 0 ReLU, 1 tanh, 2 linear. Methods: 0 Euler, 1 Heun.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .devices import SAMPLE_BITS, SLOT_BITS, UNIT_BITS
from .rng import normal_keyed, seed_key

ACT_CODES = {"relu": 0, "tanh": 1, "linear": 2}
METHOD_CODES = {"euler": 0, "heun": 1}


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


@nb.njit(inline="always")
def _counter(ev, slot_index, sample, unit):
    c = np.uint64(ev) << np.uint64(SLOT_BITS)
    c = (c + np.uint64(slot_index)) << np.uint64(SAMPLE_BITS)
    c = (c + np.uint64(sample)) << np.uint64(UNIT_BITS)
    return c + np.uint64(unit)


@nb.njit(cache=True)
def _xbar(p, wt, out, noisy, pn, scale, w_max, nz, seed, ev, slot_base, samples):
    """out ← p wt (B, n_out) through a crossbar; with ``noisy`` the converter and noise model of
    :func:`simulators.devices.analog_mvm_np` (nz = StepNoise.as_array())."""
    if not noisy:
        np.dot(p, wt, out)
        return
    batch, n_in = p.shape
    n_out = out.shape[1]
    levels_in, levels_out, bound, read_sigma, out_sigma = nz[0], nz[1], nz[2], nz[3], nz[4]
    key = seed_key(seed)
    for b in range(batch):
        m = 0.0
        for j in range(n_in):
            v = abs(p[b, j])
            if v > m:
                m = v
        scale[b] = m
        safe = m if m > 0 else 1.0
        for j in range(n_in):
            v = p[b, j] / safe
            if levels_in > 0:
                v = np.rint(v * levels_in) / levels_in
            pn[b, j] = v
    np.dot(pn, wt, out)
    for b in range(batch):
        norm2 = 0.0
        if read_sigma > 0:
            for j in range(n_in):
                norm2 += pn[b, j] * pn[b, j]
        # read and output noise are independent Gaussians on the same output: one draw of their sum
        sigma = np.sqrt(read_sigma * read_sigma * norm2 + out_sigma * out_sigma)
        row = out[b]
        if sigma > 0:
            sample = samples[b]
            for i in range(n_out):  # a branch-free loop the compiler can vectorise
                row[i] = row[i] / w_max + sigma * normal_keyed(key, _counter(ev, slot_base, sample, i))
        else:
            for i in range(n_out):
                row[i] = row[i] / w_max
        if bound > 0:
            for i in range(n_out):
                row[i] = min(max(row[i], -bound), bound)
        if levels_out > 0:
            for i in range(n_out):
                row[i] = np.rint(row[i] / bound * levels_out) / levels_out * bound
        sc = w_max * scale[b]
        for i in range(n_out):
            row[i] = row[i] * sc


@nb.njit(cache=True)
def _after_update(z, nz, seed, step, ktc_base, samples):
    """Integrator leak and kT/C noise on the value neurons (twin of reference._after_update)."""
    leak, ktc = nz[5], nz[6]
    h_layers, batch, n = z.shape
    if leak != 1.0:
        for l in range(h_layers):
            for b in range(batch):
                for i in range(n):
                    z[l, b, i] *= leak
    if ktc != 0.0:
        key = seed_key(seed)
        for l in range(h_layers):
            for b in range(batch):
                for i in range(n):
                    z[l, b, i] += ktc * normal_keyed(key, _counter(step, ktc_base + l, samples[b], i))


# ----------------------------------------------------------------------------------- batched
@nb.njit(cache=True)
def _grad_batched(w_hid, w_hid_t, w_out, w_out_t, a_hid, a_out, act, skip, free_out, feedback,
                  mu1, y, z, zout, g, gout, eps, phz, pred, pred_out, eps_out, fb, energies,
                  noisy, nz, seed, ev, w_max, gains, samples, pn, pn_o, scale):
    """g ← ∂F_b/∂z for every sample b (and gout for a free output); energies ← F_b.

    With ``feedback`` False each neuron follows only its own error (g = ε): the forward phase.
    """
    h_layers, batch, n = z.shape
    d_y = zout.shape[1]
    last_xbar = h_layers  # crossbars: 0 input, 1..H−1 hidden, H output
    for l in range(h_layers):
        for b in range(batch):
            for i in range(n):
                phz[l, b, i] = gains[l, i] * _phi(z[l, b, i], act)  # gains are 1 unless mismatched
    for b in range(batch):
        for i in range(n):
            eps[0, b, i] = z[0, b, i] - mu1[b, i]
    for l in range(1, h_layers):
        _xbar(phz[l - 1], w_hid_t[l - 1], pred, noisy, pn, scale, w_max[l], nz, seed, ev, (l * 2) * 2, samples)
        for b in range(batch):
            for i in range(n):
                base = z[l - 1, b, i] if skip else 0.0
                eps[l, b, i] = z[l, b, i] - (base + a_hid * pred[b, i])
    _xbar(phz[h_layers - 1], w_out_t, pred_out, noisy, pn, scale, w_max[last_xbar], nz, seed, ev,
          (last_xbar * 2) * 2, samples)
    for b in range(batch):
        for k in range(d_y):
            target = zout[b, k] if free_out else y[b, k]
            eps_out[b, k] = target - a_out * pred_out[b, k]
    if feedback:
        for l in range(h_layers - 1):
            _xbar(eps[l + 1], w_hid[l], fb[l], noisy, pn, scale, w_max[l + 1], nz, seed, ev,
                  ((l + 1) * 2 + 1) * 2, samples)
            for b in range(batch):
                for i in range(n):
                    v = eps[l, b, i] - gains[l, i] * _dphi(z[l, b, i], act) * a_hid * fb[l, b, i]
                    if skip:
                        v -= eps[l + 1, b, i]
                    g[l, b, i] = v
        last = h_layers - 1
        _xbar(eps_out, w_out, fb[last], noisy, pn_o, scale, w_max[last_xbar], nz, seed, ev,
              (last_xbar * 2 + 1) * 2, samples)
        for b in range(batch):
            for i in range(n):
                d = gains[last, i] * _dphi(z[last, b, i], act)
                g[last, b, i] = eps[last, b, i] - d * a_out * fb[last, b, i]
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
        energies[b] = 0.5 * e


@nb.njit(cache=True)
def integrate_batched(w_hid, w_hid_t, w_out, w_out_t, a_hid, a_out, act, skip, free_out, feedback,
                      mu1, y, z, zout, h, n_steps, method, energy_trace, state_trace,
                      nz, seed, step_offset, w_max, gains, samples, window_from, eps_sum, eps_out_sum, phz_sum):
    """Integrate ``n_steps`` steps in place on (z, zout).

    energy_trace: (n_steps + 1, B) or (0, B) to skip recording; state_trace likewise
    (n_steps + 1, H, B, N) or (0, ...). From step ``window_from`` on, every step adds the errors
    and activations it evaluates (at the step's start) to eps_sum (H, B, N), eps_out_sum (B, d_y)
    and phz_sum (H, B, N): the update window's accumulators (pass window_from ≥ n_steps for none).
    """
    record_e = energy_trace.shape[0] > 0
    record_s = state_trace.shape[0] > 0
    g = np.empty_like(z)
    eps = np.empty_like(z)
    phz = np.empty_like(z)
    fb = np.empty_like(z)
    pred = np.empty_like(z[0])
    gout = np.empty_like(zout)
    pred_out = np.empty_like(zout)
    eps_out = np.empty_like(zout)
    energies = np.empty(z.shape[1], dtype=z.dtype)
    noisy = nz[0] > 0 or nz[1] > 0 or nz[2] > 0 or nz[3] > 0 or nz[4] > 0
    stepper = nz[5] != 1.0 or nz[6] != 0.0
    pn = np.empty_like(z[0])
    pn_o = np.empty_like(zout)
    scale = np.empty(z.shape[1], dtype=z.dtype)
    ktc_base = 4 * (z.shape[0] + 1)
    z2 = np.empty_like(z) if method == 1 else z[:0]
    zout2 = np.empty_like(zout) if method == 1 else zout[:0]
    g2 = np.empty_like(z) if method == 1 else z[:0]
    gout2 = np.empty_like(zout) if method == 1 else zout[:0]
    for k in range(n_steps):
        step = step_offset + k
        ev = 2 * step if method == 1 else step
        _grad_batched(w_hid, w_hid_t, w_out, w_out_t, a_hid, a_out, act, skip, free_out, feedback,
                      mu1, y, z, zout, g, gout, eps, phz, pred, pred_out, eps_out, fb, energies,
                      noisy, nz, seed, ev, w_max, gains, samples, pn, pn_o, scale)
        if k >= window_from:
            for idx in np.ndindex(z.shape):
                eps_sum[idx] += eps[idx]
                phz_sum[idx] += phz[idx]
            for idx in np.ndindex(zout.shape):
                eps_out_sum[idx] += eps_out[idx]
        if record_e:
            energy_trace[k] = energies
        if record_s:
            state_trace[k] = z
        if method == 0:
            z -= h * g
            if free_out:
                zout -= h * gout
        else:
            for idx in np.ndindex(z.shape):
                z2[idx] = z[idx] - h * g[idx]
            for idx in np.ndindex(zout.shape):
                zout2[idx] = zout[idx] - h * gout[idx] if free_out else zout[idx]
            _grad_batched(w_hid, w_hid_t, w_out, w_out_t, a_hid, a_out, act, skip, free_out, feedback,
                          mu1, y, z2, zout2, g2, gout2, eps, phz, pred, pred_out, eps_out, fb, energies,
                          noisy, nz, seed, ev + 1, w_max, gains, samples, pn, pn_o, scale)
            for idx in np.ndindex(z.shape):
                z[idx] -= 0.5 * h * (g[idx] + g2[idx])
            if free_out:
                for idx in np.ndindex(zout.shape):
                    zout[idx] -= 0.5 * h * (gout[idx] + gout2[idx])
        if stepper:
            _after_update(z, nz, seed, step, ktc_base, samples)
    if record_e:
        end = step_offset + n_steps
        ev_end = 2 * end if method == 1 else end
        _grad_batched(w_hid, w_hid_t, w_out, w_out_t, a_hid, a_out, act, skip, free_out, feedback,
                      mu1, y, z, zout, g, gout, eps, phz, pred, pred_out, eps_out, fb, energies,
                      noisy, nz, seed, ev_end, w_max, gains, samples, pn, pn_o, scale)
        energy_trace[n_steps] = energies
    if record_s:
        state_trace[n_steps] = z


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


@nb.njit(cache=True, fastmath=True)
def _grad_single(w_hid, w_out, a_hid, a_out, act, skip, free_out, feedback, mu1, y, z, zout,
                 g, gout, eps, eps_out, phz, dz, fbacc):
    """One circuit: g ← ∂F/∂z (H, N), gout (d_y,); returns F. One read of each weight."""
    h_layers, n = z.shape
    d_y = zout.shape[0]
    fbon = 1.0 if feedback else 0.0  # the forward phase drops the feedback terms
    skip_coef = 1.0 if skip else 0.0
    for l in range(h_layers):
        for i in range(n):
            phz[l, i] = _phi(z[l, i], act)
            dz[l, i] = _dphi(z[l, i], act)
    for i in range(n):
        eps[0, i] = z[0, i] - mu1[i]
    for l in range(1, h_layers):
        _crossbar_pass(w_hid[l - 1], phz[l - 1], z[l], z[l - 1], skip_coef, a_hid, eps[l], fbacc)
        for j in range(n):
            g[l - 1, j] = eps[l - 1, j] - fbon * (dz[l - 1, j] * a_hid * fbacc[j] + skip_coef * eps[l, j])
    last = h_layers - 1
    target = zout if free_out else y
    _crossbar_pass(w_out, phz[last], target, target, 0.0, a_out, eps_out, fbacc)
    energy = 0.0
    for k in range(d_y):
        gout[k] = eps_out[k] if free_out else 0.0
        energy += eps_out[k] * eps_out[k]
    for j in range(n):
        g[last, j] = eps[last, j] - fbon * dz[last, j] * a_out * fbacc[j]
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


@nb.njit(cache=True, fastmath=True)
def integrate_single(w_hid, w_out, a_hid, a_out, act, skip, free_out, feedback, mu1, y, z, zout,
                     h, n_steps, method, energy_trace, state_trace):
    """One circuit, ``n_steps`` steps in place on z (H, N) and zout (d_y,); traces as batched
    but without the batch axis: energy_trace (n_steps + 1,), state_trace (n_steps + 1, H, N)."""
    record_e = energy_trace.shape[0] > 0
    record_s = state_trace.shape[0] > 0
    g = np.empty_like(z)
    eps = np.empty_like(z)
    phz = np.empty_like(z)
    dz = np.empty_like(z)
    fbacc = np.empty(z.shape[1], dtype=z.dtype)
    eps_out = np.empty_like(zout)
    gout = np.empty_like(zout)
    z2 = np.empty_like(z)
    zout2 = np.empty_like(zout)
    g2 = np.empty_like(z)
    gout2 = np.empty_like(zout)
    for k in range(n_steps):
        energy = _grad_single(w_hid, w_out, a_hid, a_out, act, skip, free_out, feedback, mu1, y, z, zout,
                              g, gout, eps, eps_out, phz, dz, fbacc)
        if record_e:
            energy_trace[k] = energy
        if record_s:
            state_trace[k] = z
        if method == 0:
            _euler_single(z, zout, g, gout, h, free_out)
        else:
            _heun_predict_single(z, zout, g, gout, h, free_out, z2, zout2)
            _grad_single(w_hid, w_out, a_hid, a_out, act, skip, free_out, feedback, mu1, y, z2, zout2,
                         g2, gout2, eps, eps_out, phz, dz, fbacc)
            _heun_correct_single(z, zout, g, gout, g2, gout2, h, free_out)
    if record_e:
        energy_trace[n_steps] = _grad_single(w_hid, w_out, a_hid, a_out, act, skip, free_out, feedback, mu1, y, z,
                                             zout, g, gout, eps, eps_out, phz, dz, fbacc)
    if record_s:
        state_trace[n_steps] = z


# ------------------------------------------------------------------- single sample, non-ideal
@nb.njit(cache=True, fastmath=True)
def _xbar1(w, p, out, transpose, pn, w_max, nz, key, ev, slot_base, sample):
    """out ← W p (transpose False: w (n_out, n_in)) or Wᵀ p (transpose True: w (n_in, n_out)) for one
    sample, with the converter and noise model of :func:`_xbar` (same draws, same order of rounding
    decisions)."""
    levels_in, levels_out, bound, read_sigma, out_sigma = nz[0], nz[1], nz[2], nz[3], nz[4]
    n_in = p.shape[0]
    n_out = out.shape[0]
    m = 0.0
    for j in range(n_in):
        v = abs(p[j])
        if v > m:
            m = v
    safe = m if m > 0 else 1.0
    norm2 = 0.0
    for j in range(n_in):
        v = p[j] / safe
        if levels_in > 0:
            v = np.rint(v * levels_in) / levels_in
        pn[j] = v
        norm2 += v * v
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
    sigma = np.sqrt(read_sigma * read_sigma * norm2 + out_sigma * out_sigma)
    sc = w_max * m
    for k in range(n_out):
        y = out[k] / w_max
        if sigma > 0:
            y = y + sigma * normal_keyed(key, _counter(ev, slot_base, sample, k))
        if bound > 0:
            y = min(max(y, -bound), bound)
        if levels_out > 0:
            y = np.rint(y / bound * levels_out) / levels_out * bound
        out[k] = y * sc


@nb.njit(cache=True, fastmath=True)
def _grad_single_noisy(w_hid, w_out, a_hid, a_out, act, skip, free_out, feedback, mu1, y, z, zout,
                       g, gout, eps, eps_out, phz, dz, buf, pn, nz, key, ev, w_max, gains, sample):
    """Twin of :func:`_grad_single` with every MVM through :func:`_xbar1` (two passes per crossbar)."""
    h_layers, n = z.shape
    d_y = zout.shape[0]
    last_xbar = h_layers
    for l in range(h_layers):
        for i in range(n):
            phz[l, i] = gains[l, i] * _phi(z[l, i], act)
            dz[l, i] = gains[l, i] * _dphi(z[l, i], act)
    for i in range(n):
        eps[0, i] = z[0, i] - mu1[i]
    for l in range(1, h_layers):
        _xbar1(w_hid[l - 1], phz[l - 1], buf, False, pn, w_max[l], nz, key, ev, (l * 2) * 2, sample)
        for i in range(n):
            base = z[l - 1, i] if skip else 0.0
            eps[l, i] = z[l, i] - (base + a_hid * buf[i])
    out_buf = gout  # reuse as scratch for the output prediction, overwritten below
    _xbar1(w_out, phz[h_layers - 1], out_buf, False, pn, w_max[last_xbar], nz, key, ev, (last_xbar * 2) * 2,
           sample)
    energy = 0.0
    for k in range(d_y):
        target = zout[k] if free_out else y[k]
        eps_out[k] = target - a_out * out_buf[k]
        energy += eps_out[k] * eps_out[k]
    if feedback:
        for l in range(h_layers - 1):
            _xbar1(w_hid[l], eps[l + 1], buf, True, pn, w_max[l + 1], nz, key, ev, ((l + 1) * 2 + 1) * 2, sample)
            for j in range(n):
                v = eps[l, j] - dz[l, j] * a_hid * buf[j]
                if skip:
                    v -= eps[l + 1, j]
                g[l, j] = v
        _xbar1(w_out, eps_out, buf, True, pn, w_max[last_xbar], nz, key, ev, (last_xbar * 2 + 1) * 2, sample)
        for j in range(n):
            g[h_layers - 1, j] = eps[h_layers - 1, j] - dz[h_layers - 1, j] * a_out * buf[j]
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


@nb.njit(cache=True, fastmath=True)
def integrate_single_noisy(w_hid, w_out, a_hid, a_out, act, skip, free_out, feedback, mu1, y, z, zout,
                           h, n_steps, method, energy_trace, state_trace, nz, seed, step_offset, w_max, gains,
                           sample):
    """:func:`integrate_single` with the non-idealities (Euler and Heun), for one circuit."""
    record_e = energy_trace.shape[0] > 0
    record_s = state_trace.shape[0] > 0
    h_layers, n = z.shape
    d_y = zout.shape[0]
    g = np.empty_like(z)
    eps = np.empty_like(z)
    phz = np.empty_like(z)
    dz = np.empty_like(z)
    buf = np.empty(max(n, d_y), dtype=z.dtype)
    pn = np.empty(max(n, d_y), dtype=z.dtype)
    eps_out = np.empty_like(zout)
    gout = np.empty_like(zout)
    z2 = np.empty_like(z)
    zout2 = np.empty_like(zout)
    g2 = np.empty_like(z)
    gout2 = np.empty_like(zout)
    key = seed_key(seed)
    leak, ktc = nz[5], nz[6]
    ktc_base = 4 * (h_layers + 1)
    for k in range(n_steps):
        step = step_offset + k
        ev = 2 * step if method == 1 else step
        energy = _grad_single_noisy(w_hid, w_out, a_hid, a_out, act, skip, free_out, feedback, mu1, y, z, zout,
                                    g, gout, eps, eps_out, phz, dz, buf, pn, nz, key, ev, w_max, gains, sample)
        if record_e:
            energy_trace[k] = energy
        if record_s:
            state_trace[k] = z
        if method == 0:
            _euler_single(z, zout, g, gout, h, free_out)
        else:
            _heun_predict_single(z, zout, g, gout, h, free_out, z2, zout2)
            _grad_single_noisy(w_hid, w_out, a_hid, a_out, act, skip, free_out, feedback, mu1, y, z2, zout2,
                               g2, gout2, eps, eps_out, phz, dz, buf, pn, nz, key, ev + 1, w_max, gains, sample)
            _heun_correct_single(z, zout, g, gout, g2, gout2, h, free_out)
        if leak != 1.0 or ktc != 0.0:
            for l in range(h_layers):
                for i in range(n):
                    z[l, i] *= leak
                    if ktc != 0.0:
                        z[l, i] += ktc * normal_keyed(key, _counter(step, ktc_base + l, sample, i))
    if record_e:
        end = step_offset + n_steps
        ev_end = 2 * end if method == 1 else end
        energy_trace[n_steps] = _grad_single_noisy(w_hid, w_out, a_hid, a_out, act, skip, free_out, feedback, mu1,
                                                   y, z, zout, g, gout, eps, eps_out, phz, dz, buf, pn, nz, key,
                                                   ev_end, w_max, gains, sample)
    if record_s:
        state_trace[n_steps] = z
