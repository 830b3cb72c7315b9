"""Device models: programming weights onto crossbars (the per-step non-idealities are in
:mod:`simulators.noise` and :mod:`simulators.mvm`).

Programming (once, at deployment; numpy, shared by every backend):
    w_max_ℓ = max|W_ℓ|  (or weight_clip_std · std(W_ℓ), clipping larger weights)
    quantise to 2^bits levels over ±w_max; add programming noise σ_p·w_max·ξ (clipped to ±w_max), or
    write differential pairs device by device (:mod:`simulators.arrays`);
    drift: W ← W · (t/t0)^−ν at the deployment time t.
Activation circuits have a fixed per-neuron gain error (1 + δ), δ ~ N(0, act_mismatch_frac²).
"""

from __future__ import annotations

import numpy as np

from pchw.profiles import HardwareProfile

from .arrays import program_array
from .noise import MAX_CROSSBARS


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
        q = program_array(quantize_weights(q, w_max, int(profile.weight_bits)), w_max, profile, rng)
        programmed.append((q * drift).astype(np.float32).astype(np.float64))
        w_maxes.append(w_max)
    return programmed, np.array(w_maxes)


def activation_gains(spec, profile: HardwareProfile, *, seed: int) -> np.ndarray:
    """Fixed per-neuron activation gains 1 + δ, (H, N); ones when there is no mismatch."""
    if profile.act_mismatch_frac == 0:
        return np.ones((spec.n_hidden, spec.width))
    rng = np.random.default_rng([seed, 0xAC])
    return 1.0 + profile.act_mismatch_frac * rng.standard_normal((spec.n_hidden, spec.width))
