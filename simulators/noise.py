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

from .rng import normal_keyed, normal_np, seed_key

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
        corr_rho: (K,) per-step autocorrelations exp(−dt/τ_k) of the temporally correlated read-noise
            processes (empty: every read draws white noise only).
        corr_gain: (K,) each process's σ, fraction of w_max per unit ‖p_n‖₂ (like ``read_sigma``).
        tile_rows, tile_cols: the largest array's rows and columns (0 = unlimited): a forward read splits
            its inputs into tiles of ``tile_rows``, a transposed read into tiles of ``tile_cols``, and each
            tile digitises its own partial sums (:func:`simulators.mvm.analog_mvm_np`).
    With correlated processes, ``read_sigma`` holds only the white part of the read noise.
    """

    seed: int
    levels_in: float
    levels_out: float
    out_bound: float
    read_sigma: float
    out_sigma: float
    leak_factor: float
    ktc_sigma: float
    corr_rho: np.ndarray = np.zeros(0)
    corr_gain: np.ndarray = np.zeros(0)
    tile_rows: int = 0
    tile_cols: int = 0

    @property
    def correlated(self) -> bool:
        return self.corr_rho.size > 0

    @property
    def mvm_active(self) -> bool:
        return bool(self.levels_in or self.levels_out or self.out_bound or self.read_sigma or self.out_sigma
                    or self.correlated)

    @property
    def integrator_active(self) -> bool:
        return self.leak_factor != 1.0 or self.ktc_sigma != 0.0

    @property
    def active(self) -> bool:
        return self.mvm_active or self.integrator_active


NO_NOISE = StepNoise(seed=0, levels_in=0.0, levels_out=0.0, out_bound=0.0, read_sigma=0.0, out_sigma=0.0,
                     leak_factor=1.0, ktc_sigma=0.0)


def correlated_processes(profile: HardwareProfile) -> tuple[np.ndarray, np.ndarray]:
    """(τ_k (K,) in seconds, σ_k (K,)) of the read noise's Ornstein–Uhlenbeck processes.

    1/f read noise over [τ_min, τ_max]: K processes (one per decade unless ``read_noise_processes``
    says otherwise) with log-spaced τ_k and equal variance σ_read²/K, so their sum has variance σ_read²
    and a 1/f spectrum between the corners; telegraph noise adds one process (τ_rtn, σ_rtn).
    """
    taus, gains = [], []
    lo, hi = profile.read_noise_tau_min_s, profile.read_noise_tau_max_s
    if profile.read_noise_frac > 0 and hi > 0:
        k = int(profile.read_noise_processes) or max(1, math.ceil(math.log10(hi / lo)))
        taus += list(np.geomspace(lo, hi, k))
        gains += [profile.read_noise_frac / math.sqrt(k)] * k
    if profile.rtn_frac > 0:
        taus.append(profile.rtn_tau_s)
        gains.append(profile.rtn_frac)
    return np.array(taus, dtype=np.float64), np.array(gains, dtype=np.float64)


def step_noise(profile: HardwareProfile, *, dt_s: float, seed: int) -> StepNoise:
    """The per-step non-idealities of ``profile`` (converters only quantise in the clocked mode)."""
    clocked = profile.substrate is Substrate.ANALOG_CLOCKED
    quantize = bool(profile.quantize_io) and clocked
    if quantize and profile.out_bound <= 0:
        raise ValueError(f"profile {profile.name}: quantize_io needs out_bound > 0 (the ADC's range)")
    taus, gains = correlated_processes(profile)
    band = profile.read_noise_tau_max_s > 0  # the read noise is correlated, not white
    return StepNoise(
        seed=int(seed),
        levels_in=float(2 ** (profile.dac_bits - 1) - 1) if quantize else 0.0,
        levels_out=float(2 ** (profile.adc_bits - 1) - 1) if quantize else 0.0,
        out_bound=float(profile.out_bound),
        read_sigma=0.0 if band else float(profile.read_noise_frac),
        out_sigma=float(profile.out_noise_frac),
        leak_factor=math.exp(-dt_s / profile.leak_tau_s) if profile.leak_tau_s > 0 else 1.0,
        ktc_sigma=float(profile.ktc_noise_frac * profile.z_full_scale),
        corr_rho=np.exp(-dt_s / taus),
        corr_gain=gains,
        tile_rows=int(profile.max_rows),
        tile_cols=int(profile.max_cols),
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


# ------------------------------------------------------------------ temporally correlated read noise
# State of the correlated read noise: s (K, 2L, B, n) — process k of the outputs of crossbar ℓ read in
# direction d (index 2ℓ + d), per sample and output unit — and its sum c = Σ_k σ_k s_k (2L, B, n), the
# read noise an output carries per unit ‖p_n‖₂. Each process is an exact Ornstein–Uhlenbeck discretisation
#     s ← ρ_k s + √(1 − ρ_k²) ξ,    ρ_k = exp(−dt/τ_k),
# started from its stationary law N(0, 1); process k draws from its own stream (seed of :func:`corr_seed`)
# at counter (step, slot(ℓ, d, 1), sample, unit), the start at step CORR_INIT_EVAL.
CORR_INIT_EVAL = (1 << 24) - 6


def corr_seed(seed: int, k: int) -> int:
    """The seed of correlated process k's draws (distinct from the white draws' stream)."""
    return (int(seed) + (k + 1) * 0x9E3779B97F4A7C15) % (1 << 64)


def n_tiles(n_in: int, tile: int) -> int:
    """Tiles of at most ``tile`` inputs (0: one) a read of ``n_in`` inputs splits into."""
    return -(-n_in // tile) if 0 < tile < n_in else 1


def read_units(spec, noise: StepNoise) -> int:
    """The most noise outputs any read draws: tiles × outputs over every crossbar and direction."""
    n, d, dy = spec.width, spec.input_dim, spec.output_dim
    fwd = [n_tiles(d, noise.tile_rows) * n, n_tiles(n, noise.tile_rows) * max(n, dy)]
    back = [n_tiles(n, noise.tile_cols) * n, n_tiles(dy, noise.tile_cols) * n]
    return max(fwd + back)


def corr_shape(spec, noise: StepNoise, batch: int) -> tuple[int, int, int]:
    """(2L, B, n) of the correlated read noise's state: every tile of every read its own processes."""
    return (2 * spec.depth, batch, read_units(spec, noise))


def corr_start_np(noise: StepNoise, shape: tuple[int, int, int], samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(state (K, 2L, B, n), sum (2L, B, n)) at the start: each process at its stationary law."""
    k_count = noise.corr_rho.size
    state = np.empty((k_count,) + shape)
    slots = np.array([(si * 2) + 1 for si in range(shape[0])])  # slot(ℓ, d, 1) with si = 2ℓ + d
    ctr = counter(CORR_INIT_EVAL, slots[:, None, None], samples[None, :, None], np.arange(shape[2])[None, None, :])
    for k in range(k_count):
        state[k] = normal_np(corr_seed(noise.seed, k), ctr)
    return state, _corr_sum(noise, state)


def _corr_sum(noise: StepNoise, state: np.ndarray) -> np.ndarray:
    """Σ_k σ_k s_k, summed in k order (as the numba twin does)."""
    total = np.zeros(state.shape[1:])
    for k in range(state.shape[0]):
        total += noise.corr_gain[k] * state[k]
    return total


def corr_advance_np(state: np.ndarray, total: np.ndarray, noise: StepNoise, step: int, samples: np.ndarray) -> None:
    """Advance every process by one step (dt) in place, and their sum."""
    slots = np.array([(si * 2) + 1 for si in range(state.shape[1])])
    ctr = counter(step, slots[:, None, None], samples[None, :, None], np.arange(state.shape[3])[None, None, :])
    for k in range(state.shape[0]):
        rho = noise.corr_rho[k]
        state[k] = rho * state[k] + np.sqrt(1.0 - rho * rho) * normal_np(corr_seed(noise.seed, k), ctr)
    total[...] = _corr_sum(noise, state)


@nb.njit(cache=True)
def corr_advance(state, total, noise, step, samples):
    """numba twin of :func:`corr_advance_np` (same draws)."""
    k_count, n_slots, batch, n = state.shape
    total[:] = 0.0
    for k in range(k_count):
        key = seed_key(np.uint64(noise.seed) + np.uint64(k + 1) * np.uint64(0x9E3779B97F4A7C15))
        rho = noise.corr_rho[k]
        c = np.sqrt(1.0 - rho * rho)
        g = noise.corr_gain[k]
        for si in range(n_slots):
            for b in range(batch):
                for i in range(n):
                    xi = normal_keyed(key, counter_scalar(step, si * 2 + 1, samples[b], i))
                    v = rho * state[k, si, b, i] + c * xi
                    state[k, si, b, i] = v
                    total[si, b, i] += g * v
