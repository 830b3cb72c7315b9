"""The torch backend: the circuit equations batched over samples and layers, on CPU or CUDA.

The same equations as :mod:`simulators.reference` (every non-ideality of
:class:`simulators.noise.StepNoise`, Euler and Heun, the update window), written with tensor
operations so that a GPU runs them: all hidden crossbars of a step are one batched matmul
(``bmm`` over the (H−1, B, N) stack), the converters and noise are elementwise over the stack.

Noise draws are the same counter-based draws as numpy and numba (splitmix64 of (seed, counter)
computed in int64 arithmetic, whose wrap-around equals uint64's), so a float64 run on CPU equals
the numpy reference draw for draw; float32 on CUDA draws the same numbers in single precision.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from ..contracts import Method, PhaseTrace
from ..errors import SimulationError
from ..noise import SAMPLE_BITS, SLOT_BITS, UNIT_BITS, corr_seed, ktc_slot, slot

_U64 = 1 << 64
_IH_SCALE = (12.0 / 4.0) ** 0.5 / 65536.0  # as simulators.rng: four 16-bit quarters, unit variance


def _as_i64(value: int) -> int:
    """A uint64 bit pattern as the int64 with the same bits."""
    value %= _U64
    return value - _U64 if value >= 1 << 63 else value


_GOLDEN, _M1, _M2 = (_as_i64(c) for c in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB))


def _srl(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 bit patterns (torch's >> is arithmetic)."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def _mix(x: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser on int64 bit patterns (wrapping multiply and add)."""
    z = x + _GOLDEN
    z = (z ^ _srl(z, 30)) * _M1
    z = (z ^ _srl(z, 27)) * _M2
    return z ^ _srl(z, 31)


def seed_key(seed: int) -> int:
    """The mixed seed (as :func:`simulators.rng.seed_key`), an int64 bit pattern."""
    return int(_mix(torch.tensor([_as_i64(seed)], dtype=torch.int64))[0])


def normal(key: int, counters: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """:func:`simulators.rng.normal_keyed` for a tensor of int64 counters."""
    h = _mix(counters ^ key)
    m = 0xFFFF
    total = ((h & m).to(dtype) + (_srl(h, 16) & m).to(dtype) + (_srl(h, 32) & m).to(dtype) + _srl(h, 48).to(dtype))
    return (total + 2.0 - 2.0 * 65536.0) * _IH_SCALE


def counters(eval_index: int, slots: torch.Tensor | int, samples: torch.Tensor, n_units: int,
             unit0: int = 0) -> torch.Tensor:
    """Noise counters ((eval·2^10 + slot)·2^18 + sample)·2^12 + unit for every (slot, sample, unit), units
    unit0 … unit0 + n_units − 1; ``slots`` a scalar or a (K,) tensor, samples (B,) → (K or 1, B, n_units)."""
    shift = SAMPLE_BITS + UNIT_BITS
    head = (torch.as_tensor(slots, dtype=torch.int64, device=samples.device) + (int(eval_index) << SLOT_BITS)) << shift
    units = torch.arange(unit0, unit0 + n_units, dtype=torch.int64, device=samples.device)
    return head.reshape(-1, 1, 1) + (samples.reshape(1, -1, 1) << UNIT_BITS) + units.reshape(1, 1, -1)


class _Circuit:
    """The prepared circuit as tensors on the backend's device."""

    def __init__(self, circuit, device, dtype):
        def t(a):
            return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)

        spec = circuit.spec
        self.spec, self.noise = spec, circuit.noise
        self.w_hid, self.w_out = t(circuit.w_hid), t(circuit.w_out)
        # what transposed reads see (other weights under IR drop) and the read-noise variances (or None)
        self.w_hid_fb, self.w_out_fb = (t(w) for w in circuit.w_fb) if circuit.w_fb is not None \
            else (self.w_hid, self.w_out)
        var = circuit.read_var
        self.var_hid = None if var is None else t(np.stack(var[1:-1]) if spec.depth > 2
                                                  else np.zeros((0, spec.width, spec.width)))
        self.var_out = None if var is None else t(var[-1])
        self.a_hid, self.a_out = circuit.a_hid, circuit.a_out
        self.w_max = t(circuit.w_max)
        self.gains = t(circuit.gains)
        self.key = seed_key(circuit.noise.seed) if circuit.noise is not None else 0
        h = spec.n_hidden
        self.hid_fwd_slots = torch.tensor([slot(l, 0, 0) for l in range(1, h)], dtype=torch.int64, device=device)
        self.hid_fb_slots = torch.tensor([slot(l + 1, 1, 0) for l in range(h - 1)], dtype=torch.int64, device=device)
        self.ktc_slots = torch.tensor([ktc_slot(spec.depth, l) for l in range(h)], dtype=torch.int64, device=device)

    def phi(self, z):
        act = self.spec.act.value
        return torch.relu(z) if act == "relu" else torch.tanh(z) if act == "tanh" else z

    def dphi(self, z):
        act = self.spec.act.value
        if act == "relu":
            return (z > 0).to(z.dtype)
        if act == "tanh":
            return 1.0 - torch.tanh(z) ** 2
        return torch.ones_like(z)


def _convert(c: _Circuit, p, w, w_max, ev: int, slots, samples, *, transpose: bool, corr=None, var=None):
    """p Wᵀ (or p W with ``transpose``) through the converter and noise model of :mod:`simulators.mvm`.
    p (K, B, n_in), w (K, n_out, n_in), w_max (K,) or a scalar; slots (K,) or a scalar; corr (K, B, ≥ n_out)
    the outputs' correlated read noise, var (K, n_out, n_in) the weights' read-noise variances (or None)."""
    noise = c.noise
    wt = w if transpose else w.transpose(-1, -2)  # (K, n_in, n_out)
    if noise is None or not noise.mvm_active:
        return torch.matmul(p, wt)
    vt = None if var is None else (var if transpose else var.transpose(-1, -2))
    tile, n_in, n_out = (noise.tile_cols if transpose else noise.tile_rows), p.shape[-1], wt.shape[-1]
    if not 0 < tile < n_in:
        return _read_tile(c, p, wt, w_max, ev, slots, samples, corr, vt, 0)
    total = 0.0
    for t, r0 in enumerate(range(0, n_in, tile)):  # each array digitises its own partial sums
        rows = slice(r0, r0 + tile)
        total = total + _read_tile(c, p[..., rows], wt[..., rows, :], w_max, ev, slots, samples,
                                   None if corr is None else corr[..., t * n_out:],
                                   None if vt is None else vt[..., rows, :], t * n_out)
    return total


def _read_tile(c: _Circuit, p, wt, w_max, ev: int, slots, samples, corr, vt, unit0: int):
    """One array's read p·wt (p (K, B, k), wt (K, k, n_out)); its noise at outputs unit0 + i."""
    noise = c.noise
    scale = p.abs().amax(dim=-1, keepdim=True)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    pn = p / safe
    if noise.levels_in:
        pn = torch.round(pn * noise.levels_in) / noise.levels_in
    w_max = torch.as_tensor(w_max, dtype=p.dtype, device=p.device).reshape(-1, 1, 1)
    yn = torch.matmul(pn, wt) / w_max
    if vt is None:
        read_norm2 = (pn * pn).sum(dim=-1, keepdim=True)
    else:
        read_norm2 = torch.matmul(pn * pn, vt)
    if corr is not None:
        yn = yn + torch.sqrt(read_norm2) * corr[..., : yn.shape[-1]]
    if noise.read_sigma or noise.out_sigma:
        norm2 = read_norm2 if noise.read_sigma else 0.0
        sigma = torch.sqrt(noise.read_sigma**2 * norm2 + torch.as_tensor(noise.out_sigma**2, dtype=p.dtype))
        ctr = counters(ev, torch.as_tensor(slots).reshape(-1), samples, yn.shape[-1], unit0)
        yn = yn + sigma * normal(c.key, ctr, p.dtype)
    if noise.out_bound:
        yn = yn.clamp(-noise.out_bound, noise.out_bound)
    if noise.levels_out:
        yn = torch.round(yn / noise.out_bound * noise.levels_out) / noise.levels_out * noise.out_bound
    return yn * (w_max * torch.where(scale > 0, scale, torch.zeros_like(scale)))


def _gradient(c: _Circuit, mu1, y, z, zout, free: bool, feedback: bool, noisy: bool, ev: int, samples, corr=None):
    """(g, g_out, F_b, ε, ε_L, g·φ(z)) at (z, zout): the batched twin of :func:`simulators.reference.gradient`;
    corr (2L, B, n) the correlated read noise's current values, or None."""
    spec, h = c.spec, c.spec.n_hidden
    last = spec.depth - 1

    def cr(index):  # the correlated read noise of the MVMs at these indices 2ℓ + d (None without it)
        return None if corr is None else corr[index]

    phz = c.gains[:, None, :] * c.phi(z)
    eps = torch.empty_like(z)
    eps[0] = z[0] - mu1
    if h > 1:
        if noisy:
            pred = _convert(c, phz[:-1], c.w_hid, c.w_max[1:h], ev, c.hid_fwd_slots, samples, transpose=False,
                            corr=cr(slice(2, 2 * h, 2)), var=c.var_hid)
        else:
            pred = torch.matmul(phz[:-1], c.w_hid.transpose(-1, -2))
        eps[1:] = z[1:] - (z[:-1] + c.a_hid * pred if spec.skip else c.a_hid * pred)
    var_out = None if c.var_out is None else c.var_out[None]
    out_pred = _convert(c, phz[-1:], c.w_out[None], c.w_max[last], ev, slot(last, 0, 0), samples, transpose=False,
                        corr=cr(slice(2 * last, 2 * last + 1)), var=var_out)[0] if noisy else phz[-1] @ c.w_out.T
    eps_out = (zout if free else y) - c.a_out * out_pred
    if feedback:
        fb = torch.empty_like(z)
        if h > 1:
            if noisy:
                fb[:-1] = c.a_hid * _convert(c, eps[1:], c.w_hid_fb, c.w_max[1:h], ev, c.hid_fb_slots, samples,
                                             transpose=True, corr=cr(slice(3, 2 * h, 2)), var=c.var_hid)
            else:
                fb[:-1] = c.a_hid * torch.matmul(eps[1:], c.w_hid_fb)
        fb[-1] = c.a_out * (_convert(c, eps_out[None], c.w_out_fb[None], c.w_max[last], ev, slot(last, 1, 0), samples,
                                     transpose=True, corr=cr(slice(2 * last + 1, 2 * last + 2)), var=var_out)[0]
                            if noisy else eps_out @ c.w_out_fb)
        g = eps - c.gains[:, None, :] * c.dphi(z) * fb
        if spec.skip:
            g[:-1] -= eps[1:]
    else:
        g = eps.clone()
    energies = 0.5 * ((eps * eps).sum(dim=(0, 2)) + (eps_out * eps_out).sum(dim=1))
    return g, (eps_out if free else None), energies, eps, eps_out, phz


def _corr_advance(c: _Circuit, state, step: int, samples):
    """One step of the correlated read noise's processes (twin of :func:`simulators.noise.corr_advance_np`);
    returns their new sum."""
    noise = c.noise
    slots = torch.tensor([si * 2 + 1 for si in range(state.shape[1])], dtype=torch.int64, device=state.device)
    ctr = counters(step, slots, samples, state.shape[3])
    total = torch.zeros_like(state[0])
    for k in range(state.shape[0]):
        rho = float(noise.corr_rho[k])
        state[k] = rho * state[k] + float(np.sqrt(1.0 - rho * rho)) * normal(seed_key(corr_seed(noise.seed, k)), ctr,
                                                                               state.dtype)
        total += float(noise.corr_gain[k]) * state[k]
    return total


def _after_update(c: _Circuit, z, step: int, samples) -> None:
    noise = c.noise
    if noise is None:
        return
    if noise.leak_factor != 1.0:
        z *= noise.leak_factor
    if noise.ktc_sigma:
        z += noise.ktc_sigma * normal(c.key, counters(step, c.ktc_slots, samples, z.shape[2]), z.dtype)


class TorchBackend:
    """Batched circuit on ``device`` (``cpu``, ``cuda[:N]``; default: CUDA when a GPU is present) in
    ``dtype`` (default float64 on CPU, float32 on CUDA); every non-ideality and the update window."""

    name: ClassVar[str] = "torch"
    supports_noise: ClassVar[bool] = True
    supports_window: ClassVar[bool] = True

    def __init__(self, device: str | None = None, dtype: str | None = None):
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError):
            raise SimulationError(f"device={device!r} is not a torch device (cpu, cuda, cuda:N)") from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise SimulationError(f"device={device!r}: no CUDA GPU is available here (use device='cpu')")
        if self.device.type not in ("cpu", "cuda"):
            raise SimulationError(f"device={device!r} is not one of: cpu, cuda, cuda:N")
        name = dtype or ("float64" if self.device.type == "cpu" else "float32")
        allowed = {"float64": torch.float64, "float32": torch.float32}
        if name not in allowed:
            raise SimulationError(f"dtype={dtype!r} is not one of: {', '.join(allowed)}")
        self.dtype = allowed[name]

    def _t(self, a):
        return torch.as_tensor(np.asarray(a), dtype=self.dtype, device=self.device)

    def integrate(self, circuit, state, drive, phase, *, record, window):
        c = _Circuit(circuit, self.device, self.dtype)
        noisy = circuit.noise is not None and circuit.noise.mvm_active
        z, zout = self._t(state.z).clone(), self._t(state.zout).clone()
        mu1, y = self._t(drive.mu_first), self._t(drive.y)
        samples = torch.as_tensor(np.asarray(drive.samples, dtype=np.int64), device=self.device)
        free, heun, h = phase.free_output, phase.method is Method.HEUN, phase.h
        energies = [] if record.free_energy else None
        states = [] if record.activities else None
        sums = [torch.zeros_like(z), torch.zeros_like(zout), torch.zeros_like(z)] if window is not None else None
        args = (c, mu1, y)
        corr_state = None if state.corr_state is None else self._t(state.corr_state).clone()
        corr = None if state.corr_total is None else self._t(state.corr_total).clone()
        for k in range(phase.n_steps):
            step = phase.step_offset + k
            ev = 2 * step if heun else step
            g, g_out, e, eps, eps_out, phz = _gradient(*args, z, zout, free, phase.feedback, noisy, ev, samples, corr)
            if corr is not None:  # one step of the noise processes (Heun's corrector reads at the step's end)
                corr = _corr_advance(c, corr_state, step, samples)
            if sums is not None and k >= phase.n_steps - phase.window:
                sums[0] += eps
                sums[1] += eps_out
                sums[2] += phz
            if energies is not None:
                energies.append(e)
            if states is not None:
                states.append(z.clone())
            if heun:
                g2, g2_out, *_ = _gradient(*args, z - h * g, zout - h * g_out if free else zout, free, phase.feedback,
                                           noisy, ev + 1, samples, corr)
                z -= 0.5 * h * (g + g2)
                if free:
                    zout -= 0.5 * h * (g_out + g2_out)
            else:
                z -= h * g
                if free:
                    zout -= h * g_out
            _after_update(c, z, step, samples)
        if energies is not None:
            end = phase.step_offset + phase.n_steps
            energies.append(_gradient(*args, z, zout, free, phase.feedback, noisy, 2 * end if heun else end,
                                      samples, corr)[2])
        if states is not None:
            states.append(z.clone())
        state.z[...] = z.cpu().numpy()
        state.zout[...] = zout.cpu().numpy()
        if corr is not None:
            state.corr_state[...] = corr_state.cpu().numpy()
            state.corr_total[...] = corr.cpu().numpy()
        if sums is not None:
            window.eps += sums[0].cpu().numpy()
            window.eps_out += sums[1].cpu().numpy()
            window.act += sums[2].cpu().numpy()
        return PhaseTrace(free_energy=None if energies is None else torch.stack(energies).cpu().numpy(),
                          activities=None if states is None else torch.stack(states).cpu().numpy())


__all__ = ["TorchBackend", "counters", "normal", "seed_key"]
