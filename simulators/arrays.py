"""How weights sit on physical arrays: conductance pairs, per-device programming noise, state-dependent
read noise and the IR drop of the lines (all numpy, computed when a circuit is prepared).

Conductances are in units of g_max (a device holds g ∈ [g_min, 1]). With ``differential_pairs`` a weight
is a pair, w = (g⁺ − g⁻)·w_max/(1 − g_min): the device of the weight's sign at
g_min + (1 − g_min)|w|/w_max, the other at g_min (aihwkit's single-pair conductance converter maps
weights the same way; its PCM model has g_min = 0). Programming noise acts on each device,
σ_p(g) = max(c₀ + c₁g + c₂g², 0) — aihwkit's PCM fit (Nandakumar et al., ICECS 2019) in units of
g_max — and each device is clamped to [g_min, 1]: with g_min = 0 the unused device can only gain, which
biases every weight towards zero by σ_p(0)/√(2π)·w_max/(1 − g_min).

Read noise per device σ_r(g) = σ_r·g^γ (γ = 0.35 for aihwkit's PCM, where σ_nG ∝ g·Q_s and
Q_s ∝ g^−0.65), so an output's read-noise variance is σ_r²·Σ_j S_ij p_j² with S_ij = Σ_devices g^{2γ}
(:func:`read_variance`; without pairs and state dependence S = 1 and the sum is ‖p‖²).

IR drop, first order: a column line of wire resistance r per cell segment collects the currents
g_ij x_j of its cells, its sense amplifier at the last row (the first input is farthest, as in aihwkit's
``ir_drop``). The line voltage at cell j, from the linear currents, is r Σ_{k≥j} Σ_{m≤k} g_im x_m, so the
read becomes y_i = Σ_m x_m g_im (1 − r·g_max·K_im) with K_im = Σ_j g_ij (n − max(j, m)) — an input-
independent distortion of the weights, different for a transposed read (whose lines are the rows);
valid while r·g_max·K ≪ 1.
"""

from __future__ import annotations

import numpy as np

from pchw.profiles import HardwareProfile


def to_conductances(w: np.ndarray, w_max: float, g_min: float) -> tuple[np.ndarray, np.ndarray]:
    """(g⁺, g⁻) in units of g_max of weights w on differential pairs."""
    u = np.clip(w / w_max, -1.0, 1.0)
    span = 1.0 - g_min
    return g_min + span * np.maximum(u, 0.0), g_min + span * np.maximum(-u, 0.0)


def from_conductances(g_pos: np.ndarray, g_neg: np.ndarray, w_max: float, g_min: float) -> np.ndarray:
    return (g_pos - g_neg) * (w_max / (1.0 - g_min))


def prog_sigma(g: np.ndarray, profile: HardwareProfile) -> np.ndarray:
    """Programming noise σ_p(g) of a device at g (units of g_max)."""
    return np.maximum(profile.prog_noise_frac + profile.prog_noise_lin * g + profile.prog_noise_quad * g * g, 0.0)


def program_array(q: np.ndarray, w_max: float, profile: HardwareProfile, rng: np.random.Generator) -> np.ndarray:
    """Weights q written with the profile's programming noise (and clamping) onto one crossbar."""
    state_dependent = profile.prog_noise_lin or profile.prog_noise_quad
    if profile.differential_pairs:
        g_min = profile.g_min_frac
        g_pos, g_neg = to_conductances(q, w_max, g_min)
        noise = rng.standard_normal((2,) + q.shape)
        g_pos = np.clip(g_pos + prog_sigma(g_pos, profile) * noise[0], g_min, 1.0)
        g_neg = np.clip(g_neg + prog_sigma(g_neg, profile) * noise[1], g_min, 1.0)
        return from_conductances(g_pos, g_neg, w_max, g_min)
    if not (profile.prog_noise_frac > 0 or state_dependent):
        return q
    sigma = prog_sigma(np.abs(q) / w_max, profile) if state_dependent else profile.prog_noise_frac
    return np.clip(q + sigma * w_max * rng.standard_normal(q.shape), -w_max, w_max)  # nothing past g_max


def _power(g: np.ndarray, exponent: float) -> np.ndarray:
    """g^exponent, with a device at zero conductance carrying no noise (0^0 = 0)."""
    return np.where(g > 0, np.abs(g) ** exponent, 0.0)


def read_variance(w: np.ndarray, w_max: float, profile: HardwareProfile) -> np.ndarray | None:
    """S (n_out, n_in): each weight's read-noise variance in units of σ_r², or None when it is 1 everywhere."""
    gamma = profile.read_noise_state_exp
    if not profile.differential_pairs:
        return None if gamma == 0 else _power(np.abs(w) / w_max, 2 * gamma)
    g_pos, g_neg = to_conductances(w, w_max, profile.g_min_frac)
    return _power(g_pos, 2 * gamma) + _power(g_neg, 2 * gamma)


def _line_factors(g: np.ndarray, ratio: float) -> np.ndarray:
    """1 − r·g_max·K for each cell of lines along axis 1 (sense amplifier at the last index):
    K_im = Σ_j g_ij (n − max(j, m)) = (n − m)·Σ_{j<m} g_ij + Σ_{j≥m} g_ij (n − j)."""
    n = g.shape[1]
    idx = np.arange(n)
    before = np.cumsum(g, axis=1) - g  # Σ_{j<m}
    weighted = g * (n - idx)
    after = np.cumsum(weighted[:, ::-1], axis=1)[:, ::-1]  # Σ_{j≥m}
    return np.maximum(1.0 - ratio * ((n - idx) * before + after), 0.0)


def ir_drop(w: np.ndarray, w_max: float, profile: HardwareProfile) -> tuple[np.ndarray, np.ndarray]:
    """(forward, transposed) effective weights (both (n_out, n_in)) of crossbar w read through lines of
    resistance ``wire_r_ohm`` per segment: forward reads collect on the column lines (one per output),
    transposed reads on the row lines (one per input)."""
    ratio = profile.wire_r_ohm * profile.g_max_siemens
    g_min = profile.g_min_frac if profile.differential_pairs else 0.0
    g_pos, g_neg = to_conductances(w, w_max, g_min)
    fwd = from_conductances(g_pos * _line_factors(g_pos, ratio), g_neg * _line_factors(g_neg, ratio), w_max, g_min)
    back = from_conductances(g_pos * _line_factors(g_pos.T, ratio).T, g_neg * _line_factors(g_neg.T, ratio).T,
                             w_max, g_min)
    return fwd, back
