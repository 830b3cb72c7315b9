"""The per-step noise contract of the circuit: what every backend's step applies, by name.

A :class:`StepNoise` is a named tuple of plain numbers that numba kernels take as one argument
and read by field name (``noise.read_sigma``), so adding a non-ideality is a new field here, its
value in :func:`step_noise`, and its use in each backend — never a position in an array.

Every draw is a counter-based normal (:mod:`simulators.rng`) at a 64-bit counter

    ((eval · 2^10 + slot) · 2^18 + sample) · 2^12 + unit

where ``eval`` numbers the gradient evaluations of the run (Euler: one per step; Heun: two),
``slot`` names the noise source (:func:`slot`, :func:`ktc_slot`), ``sample`` is the global sample
index and ``unit`` the output unit. So a draw is a function of (seed, where, when), equal in every
backend, and a chunk of samples draws what it would inside the whole batch.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from pchw.profiles import HardwareProfile, Substrate

SLOT_BITS, SAMPLE_BITS, UNIT_BITS = 10, 18, 12
MAX_CROSSBARS = 200  # 4 slots per crossbar and one kT/C slot per layer fit in 2^10
MU_FIRST_EVAL = (1 << 24) - 1  # the input crossbar's single MVM per sample in the PC phase
SWEEP_EVAL = (1 << 24) - 2  # the forward sweep's MVMs (one per crossbar and sample)
BACKWARD_EVAL = (1 << 24) - 3  # backprop's backward sweep (transposed reads)
TEST_EVALS = ((1 << 24) - 4, (1 << 24) - 5)  # a trained chip's test sweeps: fresh draws, apart from training's


class StepNoise(NamedTuple):
    """The per-step non-idealities as plain numbers (numba takes this tuple as it is).

    Attributes:
        seed: seed of every draw.
        levels_in: positive DAC levels 2^(dac_bits−1) − 1 of an MVM's normalised input (0 = exact).
        levels_out: positive ADC levels 2^(adc_bits−1) − 1 over ±out_bound (0 = exact).
        out_bound: MVM output saturation, in full scales (0 = unbounded).
        read_sigma: σ of each weight read, fraction of w_max (output σ = read_sigma · ‖p_n‖₂).
        out_sigma: additive output noise σ of every MVM, fraction of full scale.
        leak_factor: exp(−dt/τ_leak) applied to every value neuron after a step (1 = no leak).
        ktc_sigma: kT/C noise σ added to every value neuron after a step (activity units).
    """

    seed: int
    levels_in: float
    levels_out: float
    out_bound: float
    read_sigma: float
    out_sigma: float
    leak_factor: float
    ktc_sigma: float

    @property
    def mvm_active(self) -> bool:
        return bool(self.levels_in or self.levels_out or self.out_bound or self.read_sigma or self.out_sigma)

    @property
    def integrator_active(self) -> bool:
        return self.leak_factor != 1.0 or self.ktc_sigma != 0.0

    @property
    def active(self) -> bool:
        return self.mvm_active or self.integrator_active


NO_NOISE = StepNoise(seed=0, levels_in=0.0, levels_out=0.0, out_bound=0.0, read_sigma=0.0, out_sigma=0.0,
                     leak_factor=1.0, ktc_sigma=0.0)


def step_noise(profile: HardwareProfile, *, dt_s: float, seed: int) -> StepNoise:
    """The per-step non-idealities of ``profile`` (converters only quantise in the clocked mode)."""
    clocked = profile.substrate is Substrate.ANALOG_CLOCKED
    quantize = bool(profile.quantize_io) and clocked
    if quantize and profile.out_bound <= 0:
        raise ValueError(f"profile {profile.name}: quantize_io needs out_bound > 0 (the ADC's range)")
    return StepNoise(
        seed=int(seed),
        levels_in=float(2 ** (profile.dac_bits - 1) - 1) if quantize else 0.0,
        levels_out=float(2 ** (profile.adc_bits - 1) - 1) if quantize else 0.0,
        out_bound=float(profile.out_bound),
        read_sigma=float(profile.read_noise_frac),
        out_sigma=float(profile.out_noise_frac),
        leak_factor=math.exp(-dt_s / profile.leak_tau_s) if profile.leak_tau_s > 0 else 1.0,
        ktc_sigma=float(profile.ktc_noise_frac * profile.z_full_scale),
    )


@nb.njit(cache=True)
def slot(crossbar, direction, kind):
    """Noise slot of an MVM output: crossbar ℓ (0 = input), direction (0 forward, 1 feedback),
    kind (0 read noise, 1 output noise). Callable from Python and from numba kernels."""
    return (crossbar * 2 + direction) * 2 + kind


@nb.njit(cache=True)
def ktc_slot(n_crossbars, layer):
    """Noise slot of the kT/C draws of hidden layer ``layer`` (after every MVM slot)."""
    return 4 * n_crossbars + layer


@nb.njit(inline="always")
def counter_scalar(eval_index, slot_index, sample, unit):
    """The 64-bit noise counter of one draw (numba)."""
    c = np.uint64(eval_index) << np.uint64(SLOT_BITS)
    c = (c + np.uint64(slot_index)) << np.uint64(SAMPLE_BITS)
    c = (c + np.uint64(sample)) << np.uint64(UNIT_BITS)
    return c + np.uint64(unit)


def counter(eval_index, slot_index, sample, unit):
    """The 64-bit noise counter (wrapping arithmetic; numpy arrays broadcast)."""
    with np.errstate(over="ignore"):
        c = np.uint64(eval_index) << np.uint64(SLOT_BITS)
        c = (c + np.uint64(slot_index)) << np.uint64(SAMPLE_BITS)
        c = (c + np.asarray(sample, dtype=np.uint64)) << np.uint64(UNIT_BITS)
        return c + np.asarray(unit, dtype=np.uint64)
