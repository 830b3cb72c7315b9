"""Counter-based random numbers: the same stream in numba kernels and in numpy.

A draw is a pure function of (seed, counter): splitmix64 of the two mixed together. No state
to carry, nothing to allocate, ~1–2 ns per draw inside numba, and any draw can be recomputed by
the numpy twin, so noisy numba and numpy runs agree sample for sample. A standard normal uses
the Box–Muller transform of two uniforms drawn at counters 2c and 2c + 1.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_INV_2_53 = 1.0 / 9007199254740992.0  # 2^-53


@nb.njit(inline="always")
def _mix(x):
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@nb.njit(inline="always")
def uniform(seed, counter):
    """U(0, 1], 53 bits, for integer seed and counter (both taken modulo 2^64)."""
    h = _mix(_mix(np.uint64(seed)) ^ np.uint64(counter))
    return ((h >> np.uint64(11)) + np.uint64(1)) * _INV_2_53


@nb.njit(inline="always")
def normal(seed, counter):
    """A standard normal draw."""
    c = np.uint64(counter) * np.uint64(2)
    u1 = uniform(seed, c)
    u2 = uniform(seed, c + np.uint64(1))
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _mix_np(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def uniform_np(seed: int, counter: np.ndarray) -> np.ndarray:
    """numpy twin of :func:`uniform` for an array of counters."""
    c = np.asarray(counter).astype(np.uint64)
    h = _mix_np(_mix_np(np.uint64(seed % 2**64)) ^ c)
    return ((h >> np.uint64(11)) + np.uint64(1)).astype(np.float64) * _INV_2_53


def normal_np(seed: int, counter: np.ndarray) -> np.ndarray:
    """numpy twin of :func:`normal` for an array of counters."""
    with np.errstate(over="ignore"):
        c = np.asarray(counter).astype(np.uint64) * np.uint64(2)
    u1 = uniform_np(seed, c)
    with np.errstate(over="ignore"):
        u2 = uniform_np(seed, c + np.uint64(1))
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
