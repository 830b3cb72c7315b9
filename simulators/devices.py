"""Device models: programming weights onto crossbars, and the per-step non-idealities.

Programming (once, at deployment; numpy, shared by every backend):
    w_max_ℓ = max|W_ℓ|  (or weight_clip_std · std(W_ℓ), clipping larger weights)
    quantise to 2^bits levels over ±w_max; add programming noise σ_p·w_max·ξ (clipped to ±w_max);
    drift: W ← W · (t/t0)^−ν at the deployment time t.
Per step (inside both steppers), for every MVM y = W p of a crossbar:
    s = max|p| (the DAC's input range), p_n = p/s, quantised to dac_bits (clocked mode);
    y_n = W p_n / w_max + σ_read‖p_n‖₂ ξ₁ + σ_out ξ₂ (drawn as one Gaussian of the summed
    variance), clipped to ±out_bound, quantised to
    adc_bits over ±out_bound (clocked mode); y = y_n · w_max · s.
Value neurons: z ← z·exp(−dt/τ_leak) + σ_kTC ξ after each update; activation circuits have a
fixed per-neuron gain error (1 + δ), δ ~ N(0, act_mismatch_frac²).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pchw.profiles import HardwareProfile, Substrate

from .rng import normal_np

# Noise counters: ((eval · 2^10 + slot) · 2^18 + sample) · 2^12 + unit, slot < 1024.
SLOT_BITS, SAMPLE_BITS, UNIT_BITS = 10, 18, 12
MAX_CROSSBARS = 200
MU_FIRST_EVAL = (1 << 24) - 1  # the input crossbar's single MVM per sample


def slot(crossbar: int, direction: int, kind: int) -> int:
    """Noise slot of an MVM output: crossbar ℓ (0 = input), direction (0 fwd, 1 feedback),
    kind (0 read noise, 1 output noise)."""
    return (crossbar * 2 + direction) * 2 + kind


def ktc_slot(n_crossbars: int, layer: int) -> int:
    return 4 * n_crossbars + layer


def counter(eval_index, slot_index, sample, unit):
    """The 64-bit noise counter (wrapping arithmetic, works on numpy uint64 arrays too)."""
    with np.errstate(over="ignore"):
        c = np.uint64(eval_index) << np.uint64(SLOT_BITS)
        c = (c + np.uint64(slot_index)) << np.uint64(SAMPLE_BITS)
        c = (c + np.asarray(sample, dtype=np.uint64)) << np.uint64(UNIT_BITS)
        return c + np.asarray(unit, dtype=np.uint64)


@dataclass(frozen=True)
class StepNoise:
    """The per-step non-idealities as plain numbers (what the kernels take).

    levels_in/levels_out are the positive quantisation levels (2^(bits−1) − 1; 0 = off).
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
    def active(self) -> bool:
        return self.mvm_active or self.leak_factor != 1.0 or self.ktc_sigma != 0.0

    def as_array(self) -> np.ndarray:
        return np.array([self.levels_in, self.levels_out, self.out_bound, self.read_sigma, self.out_sigma,
                         self.leak_factor, self.ktc_sigma], dtype=np.float64)


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


def w_max_of(w: np.ndarray, clip_std: float) -> float:
    """The weight mapped to g_max: the largest |w|, or clip_std standard deviations."""
    top = float(np.max(np.abs(w))) if w.size else 1.0
    if clip_std > 0:
        top = min(top, clip_std * float(np.std(w)))
    return top if top > 0 else 1.0


def quantize_weights(w: np.ndarray, w_max: float, bits: int) -> np.ndarray:
    """Symmetric uniform quantisation over ±w_max: 2^(bits−1) − 1 levels a side and zero (2^bits − 1
    levels); one bit is the binary ±w_max. bits = 0 leaves the weights unchanged."""
    if bits <= 0:
        return w.copy()
    if bits == 1:
        return np.where(w >= 0, w_max, -w_max)
    levels = 2 ** (bits - 1) - 1
    return np.rint(np.clip(w, -w_max, w_max) / w_max * levels) / levels * w_max


def program_weights(weights: list[np.ndarray], profile: HardwareProfile, *, seed: int
                    ) -> tuple[list[np.ndarray], np.ndarray]:
    """Weights as the crossbars hold them at ``profile.deploy_time_s`` (float64 arrays of float32-exact
    values), and each crossbar's w_max."""
    if len(weights) > MAX_CROSSBARS:
        raise ValueError(f"at most {MAX_CROSSBARS} crossbars are supported with noise, got {len(weights)}")
    programmed, w_maxes = [], []
    drift = 1.0
    if profile.drift_nu > 0 and profile.deploy_time_s > 0:
        drift = (max(profile.deploy_time_s, profile.drift_t0_s) / profile.drift_t0_s) ** (-profile.drift_nu)
    rng = np.random.default_rng([seed, 0xD3])
    for w in weights:
        # conductances are held to float32 precision (24-bit mantissa, far finer than any device), so
        # the single-sample kernel can stream them as float32 and still compute exactly what numpy does;
        # w_max is float32-exact too, and rounding is monotone, so nothing rounds past ±w_max
        w_max = float(np.float32(w_max_of(w, profile.weight_clip_std)))
        q = np.clip(w, -w_max, w_max) if profile.weight_clip_std > 0 else w.copy()
        q = quantize_weights(q, w_max, int(profile.weight_bits))
        if profile.prog_noise_frac > 0:  # a device cannot be programmed past g_max
            q = np.clip(q + profile.prog_noise_frac * w_max * rng.standard_normal(q.shape), -w_max, w_max)
        programmed.append((q * drift).astype(np.float32).astype(np.float64))
        w_maxes.append(w_max)
    return programmed, np.array(w_maxes)


def activation_gains(spec, profile: HardwareProfile, *, seed: int) -> np.ndarray:
    """Fixed per-neuron activation gains 1 + δ, (H, N); ones when there is no mismatch."""
    if profile.act_mismatch_frac == 0:
        return np.ones((spec.n_hidden, spec.width))
    rng = np.random.default_rng([seed, 0xAC])
    return 1.0 + profile.act_mismatch_frac * rng.standard_normal((spec.n_hidden, spec.width))


def analog_mvm_np(w: np.ndarray, p: np.ndarray, w_max: float, noise: StepNoise, *, eval_index: int,
                  slot_base: int, samples: np.ndarray) -> np.ndarray:
    """y = p Wᵀ with the converter and noise model (numpy twin of the kernels); p (B, n_in),
    w (n_out, n_in), samples (B,) global sample indices for the noise counters."""
    if not noise.mvm_active:
        return p @ w.T
    scale = np.max(np.abs(p), axis=1, keepdims=True)
    safe = np.where(scale > 0, scale, 1.0)
    pn = p / safe
    if noise.levels_in:
        pn = np.rint(pn * noise.levels_in) / noise.levels_in
    yn = pn @ w.T / w_max
    units = np.arange(w.shape[0])
    if noise.read_sigma or noise.out_sigma:
        # read noise σ_r‖p_n‖₂ and output noise σ_o are independent Gaussians: one draw of their sum
        norm2 = np.sum(pn * pn, axis=1, keepdims=True) if noise.read_sigma else 0.0
        sigma = np.sqrt(noise.read_sigma**2 * norm2 + noise.out_sigma**2)
        ctr = counter(eval_index, slot_base, samples[:, None], units[None, :])
        yn = yn + sigma * normal_np(noise.seed, ctr)
    if noise.out_bound:
        yn = np.clip(yn, -noise.out_bound, noise.out_bound)
    if noise.levels_out:
        yn = np.rint(yn / noise.out_bound * noise.levels_out) / noise.levels_out * noise.out_bound
    return yn * (w_max * np.where(scale > 0, scale, 0.0))
