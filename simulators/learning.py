"""In-place learning: every crossbar applies its outer-product update with the profile's device model.

    ΔW_ℓ = η_ℓ (a_ℓ/B) Σ_b d_ℓ,b p_ℓ,bᵀ

with d the learning signal of layer ℓ (PC: the error neurons ε_ℓ, or their window means, so the
step is gradient descent on the batch-mean free energy; backprop: −δ_ℓ, the negative loss
gradient) and p_ℓ its presynaptic input (x, g·φ(z_1), …). The pulses are the stochastic
coincidences of :mod:`simulators.pulsed`; the row and column drives and the pulses are counted
by :func:`pchw.circuit_events.update_counts` — the one counting model of an update.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pchw.circuit_events import update_counts
from pchw.events import EventCounts
from pchw.profiles import HardwareProfile
from pchw.spec import NetworkSpec

from .errors import SimulationError
from .pulsed import update_crossbars


@dataclass(frozen=True)
class Learning:
    """One in-place learning step after a circuit's inference.

    Attributes:
        lr: η_ℓ, one finite rate ≥ 0 or one per crossbar (L of them).
        update_index: which update of the run this is (its pulses draw from counters of it).
    """

    lr: float | tuple[float, ...]
    update_index: int = 0

    def rates(self, depth: int) -> np.ndarray:
        """η_ℓ as (L,), or :class:`SimulationError` naming the bad value."""
        try:
            rates = np.asarray(self.lr, dtype=np.float64)
        except (TypeError, ValueError):
            rates = np.array(np.nan)
        if rates.shape not in ((), (depth,)) or not np.all(np.isfinite(rates)) or np.any(rates < 0):
            raise SimulationError(f"lr={self.lr!r} must be one finite rate >= 0 or {depth} of them")
        index = self.update_index
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise SimulationError(f"update_index={index!r} must be an integer >= 0")
        return np.broadcast_to(rates, (depth,)).copy()


@dataclass(frozen=True)
class Update:
    """The device states after an update, the pulses it fired and its events."""

    states: list[np.ndarray]
    write_pulses: float
    counts: EventCounts


def check_w_max(w_max, depth: int) -> np.ndarray:
    """Per-crossbar conductance ranges (L,), finite and > 0, or :class:`SimulationError`."""
    try:
        arr = np.asarray(w_max, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (depth,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise SimulationError(f"w_max must hold {depth} finite full scales > 0, one per crossbar")
    return arr


def apply_update(spec: NetworkSpec, states: list[np.ndarray], signals: list[np.ndarray], pre: list[np.ndarray], *,
                 learning: Learning, w_max: np.ndarray, profile: HardwareProfile, seed: int) -> Update:
    """Apply ΔW_ℓ = η_ℓ (a_ℓ/B) Σ_b d_ℓ,b p_ℓ,bᵀ to copies of ``states`` with the pulsed device model.

    signals: d_1..d_L (B, n_ℓ); pre: p_1..p_L (B, n_in). The inputs are not modified.
    """
    rates = learning.rates(spec.depth)
    new_states, pulses = update_crossbars(spec, states, signals, pre, rates, w_max, profile, seed=seed,
                                          update_index=int(learning.update_index))
    batch = signals[0].shape[0]
    # an exact device (dw_min = 0) fires one write per cell and sample: update_counts' default
    counts = update_counts(spec, profile, batch=batch, write_pulses=float(pulses) if profile.dw_min_frac > 0 else None)
    return Update(states=new_states, write_pulses=counts.write_pulses, counts=counts)

