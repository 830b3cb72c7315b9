"""Uncertainty of measured figures: the accuracy of n test images is a binomial proportion."""

from __future__ import annotations

import math

Z_95 = 1.959963984540054  # Φ⁻¹(0.975)


def wilson_interval(accuracy: float, n: int, *, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (95 % by default) of a proportion measured as ``accuracy`` on ``n`` samples.

    With p̂ = accuracy, centre = (p̂ + z²/2n)/(1 + z²/n) and half-width
    z/(1 + z²/n) · √(p̂(1 − p̂)/n + z²/4n²); unlike p̂ ± z√(p̂(1 − p̂)/n) it stays inside [0, 1] and is
    not empty at p̂ = 0 or 1. Returns (NaN, NaN) when n < 1 or the accuracy is not a number in [0, 1].
    """
    if not (n >= 1 and math.isfinite(accuracy) and 0.0 <= accuracy <= 1.0):
        return float("nan"), float("nan")
    z2n = z * z / n
    centre = (accuracy + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(accuracy * (1 - accuracy) / n + z2n / (4 * n))
    return max(0.0, centre - half), min(1.0, centre + half)
