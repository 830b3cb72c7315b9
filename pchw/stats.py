"""Uncertainty of measured figures: the accuracy of n test images is a binomial proportion."""

from __future__ import annotations

import math


def wilson_interval(successes: float, n: int, *, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion k/n (default 95%, z = Φ⁻¹(0.975)).

    center = (p̂ + z²/2n)/(1 + z²/n),  half = z/(1 + z²/n) · √(p̂(1 − p̂)/n + z²/4n²).
    Unlike p̂ ± z√(p̂(1 − p̂)/n) it stays inside [0, 1] and is not degenerate at p̂ = 0 or 1.
    """
    if n <= 0:
        raise ValueError(f"n={n!r} must be a positive count of trials")
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes!r} must lie in 0..n ({n})")
    p = successes / n
    denom = 1.0 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)
