"""The numba backend: the batched and single-sample kernels of :mod:`simulators.kernels`.

B = 1 without an update window runs the single-sample kernel (one read of each weight per
evaluation); everything else the batched kernel (BLAS matrix products). The first call of each
kernel variant in a process is timed on a zero-step run, so compilation (or loading numba's
cache) is reported apart from the run.
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np

from .. import kernels
from ..contracts import PhaseTrace, WindowSums
from ..noise import NO_NOISE


def _variances(circuit):
    """(var_hid, var_hid_t, var_out, var_out_t) of the kernel, empty without state-dependent read noise."""
    spec = circuit.spec
    if circuit.read_var is None:
        empty = np.zeros((max(spec.n_hidden - 1, 0), 0, 0))
        return empty, empty, np.zeros((0, 0)), np.zeros((0, 0))
    hid = np.ascontiguousarray(np.stack(circuit.read_var[1:-1]) if spec.depth > 2
                               else np.zeros((0, spec.width, spec.width)))
    out = np.ascontiguousarray(circuit.read_var[-1])
    return hid, np.ascontiguousarray(hid.transpose(0, 2, 1)), out, np.ascontiguousarray(out.T)


def _kernel_circuit(circuit, *, single: bool) -> kernels.KernelCircuit:
    spec = circuit.spec
    w_hid, w_out = circuit.w_hid, circuit.w_out
    if single:
        w_hid_t, w_out_t = w_hid[:0], w_out[:0]
        if circuit.noise is not None:  # programmed conductances are float32-exact: stream half the bytes
            w_hid32, w_out32 = w_hid.astype(np.float32), w_out.astype(np.float32)
            if np.array_equal(w_hid32, w_hid) and np.array_equal(w_out32, w_out):
                w_hid, w_out, w_hid_t, w_out_t = w_hid32, w_out32, w_hid32[:0], w_out32[:0]
    else:
        w_hid_t = np.ascontiguousarray(w_hid.transpose(0, 2, 1))
        w_out_t = np.ascontiguousarray(w_out.T)
        if circuit.w_fb is not None:  # transposed reads see other weights (IR drop)
            w_hid, w_out = (np.ascontiguousarray(w) for w in circuit.w_fb)
    var_hid, var_hid_t, var_out, var_out_t = _variances(circuit)
    return kernels.KernelCircuit(w_hid=w_hid, w_hid_t=w_hid_t, w_out=w_out, w_out_t=w_out_t, a_hid=circuit.a_hid,
                                 a_out=circuit.a_out, act=kernels.ACT_CODES[spec.act.value], skip=spec.skip,
                                 w_max=np.ascontiguousarray(circuit.w_max, dtype=np.float64),
                                 gains=np.ascontiguousarray(circuit.gains, dtype=np.float64), var_hid=var_hid,
                                 var_hid_t=var_hid_t, var_out=var_out, var_out_t=var_out_t)


class NumbaBackend:
    """Every non-ideality and the update window; float64; the CPU workhorse."""

    name: ClassVar[str] = "numba"
    supports_noise: ClassVar[bool] = True
    supports_window: ClassVar[bool] = True
    _compiled: ClassVar[set] = set()

    def integrate(self, circuit, state, drive, phase, *, record, window):
        batch = state.z.shape[1]
        # the single-sample kernel has no update window, correlated or state-dependent read noise or IR drop
        tiled = circuit.noise is not None and (circuit.noise.tile_rows or circuit.noise.tile_cols)
        single = batch == 1 and (window is None or phase.window == 0) and state.corr_state is None \
            and circuit.read_var is None and circuit.w_fb is None and not tiled
        kc = _kernel_circuit(circuit, single=single)
        noise = circuit.noise if circuit.noise is not None else NO_NOISE
        ideal = circuit.ideal
        key = ("single" if single else "batched", ideal, kc.w_hid.dtype.str)
        compile_s = 0.0
        if key not in self._compiled:  # time the first call's compilation (or cache load) on a 0-step run
            t0 = time.perf_counter()
            self._run(kc, circuit, state, drive, phase, noise, single, ideal, record=None, window=None, steps=0)
            compile_s = time.perf_counter() - t0
            self._compiled.add(key)
        traces = self._run(kc, circuit, state, drive, phase, noise, single, ideal, record=record, window=window,
                           steps=phase.n_steps)
        traces.compile_s = compile_s
        return traces

    @staticmethod
    def _run(kc, circuit, state, drive, phase, noise, single, ideal, *, record, window, steps):
        spec = circuit.spec
        window_from = steps - phase.window if window is not None and phase.window else steps
        ph = kernels.KernelPhase(h=float(phase.h), n_steps=int(steps), method=kernels.METHOD_CODES[phase.method.value],
                                 free_out=phase.free_output, feedback=phase.feedback,
                                 step_offset=int(phase.step_offset), window_from=int(window_from))
        rec_e = record is not None and record.free_energy
        rec_s = record is not None and record.activities
        samples = np.ascontiguousarray(drive.samples, dtype=np.int64)
        if single:
            z, zout = np.ascontiguousarray(state.z[:, 0, :]), np.ascontiguousarray(state.zout[0])
            d = kernels.KernelDrive(mu1=np.ascontiguousarray(drive.mu_first[0]), y=np.ascontiguousarray(drive.y[0]),
                                    samples=samples)
            out = kernels.KernelOutputs(energy_trace=np.empty((steps + 1 if rec_e else 0,)),
                                        state_trace=np.empty((steps + 1 if rec_s else 0,) + z.shape),
                                        eps_sum=z[:0], eps_out_sum=zout[:0], phz_sum=z[:0])
            if ideal:
                kernels.integrate_single(kc, d, ph, z, zout, out)
            else:
                kernels.integrate_single_noisy(kc, d, ph, noise, z, zout, out)
            state.z[:, 0, :], state.zout[0] = z, zout
            return PhaseTrace(free_energy=out.energy_trace[:, None] if rec_e else None,
                              activities=out.state_trace[:, :, None, :] if rec_s else None)
        d = kernels.KernelDrive(mu1=np.ascontiguousarray(drive.mu_first), y=np.ascontiguousarray(drive.y),
                                samples=samples)
        sums = window if window is not None else _no_window(spec)
        out = kernels.KernelOutputs(energy_trace=np.empty((steps + 1 if rec_e else 0, state.z.shape[1])),
                                    state_trace=np.empty((steps + 1 if rec_s else 0,) + state.z.shape),
                                    eps_sum=sums.eps, eps_out_sum=sums.eps_out, phz_sum=sums.act)
        if state.corr_state is not None:
            cr = kernels.KernelCorr(state=state.corr_state, total=state.corr_total)
        else:
            cr = kernels.KernelCorr(state=np.zeros((0, 2 * spec.depth, 1, 0)), total=np.zeros((2 * spec.depth, 1, 0)))
        kernels.integrate_batched(kc, d, ph, noise, state.z, state.zout, out, cr)
        return PhaseTrace(free_energy=out.energy_trace if rec_e else None,
                          activities=out.state_trace if rec_s else None)


def _no_window(spec) -> WindowSums:
    """Empty accumulators of the right types (the kernel never touches them)."""
    return WindowSums(np.zeros((spec.n_hidden, 0, spec.width)), np.zeros((0, spec.output_dim)),
                      np.zeros((spec.n_hidden, 0, spec.width)))

