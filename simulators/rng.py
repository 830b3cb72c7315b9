"""Counter-based random numbers: the same stream in numba kernels and in numpy.

A draw is a pure function of (seed, counter): splitmix64 of the two mixed together. No state
to carry, nothing to allocate, ~1–2 ns per draw inside numba, and any draw can be recomputed by
the numpy twin, so noisy numba and numpy runs agree sample for sample.

``normal`` is the fast noise source of the circuit kernels: the four 16-bit quarters of one
64-bit hash summed (Irwin–Hall, n = 4) and scaled to unit variance — mean 0 and variance 1
exactly (to 1e-9), kurtosis 2.7 instead of 3, tails cut at ±2√3 σ. It costs one hash
instead of the log, square root and cosine of Box–Muller (``normal_exact``, 20+ ns), which
would cost more than the 128 MACs of the output it perturbs.
"""

from __future__ import annotations

import math

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


_IH_SCALE = math.sqrt(12.0 / 4.0) / 65536.0  # unit variance for the sum of four U(0, 1) quarters


@nb.njit(inline="always")
def seed_key(seed):
    """The mixed seed that :func:`normal_keyed` takes (hoist it out of loops)."""
    return _mix(np.uint64(seed))


@nb.njit(inline="always")
def normal(seed, counter):
    """An approximately normal draw with mean 0 and variance 1 (Irwin–Hall of four 16-bit uniforms)."""
    return normal_keyed(_mix(np.uint64(seed)), counter)


@nb.njit(inline="always")
def normal_keyed(key, counter):
    """:func:`normal` with the seed already mixed by :func:`seed_key`."""
    h = _mix(key ^ np.uint64(counter))
    m = np.uint64(0xFFFF)
    total = float(h & m) + float((h >> np.uint64(16)) & m) + float((h >> np.uint64(32)) & m) + float(h >> np.uint64(48))
    return (total + 2.0 - 2.0 * 65536.0) * _IH_SCALE  # quarters are k + ½ on 0..65535: mean 2·65536


@nb.njit(inline="always")
def normal_exact(seed, counter):
    """A standard normal draw (Box–Muller of two uniforms at counters 2c and 2c + 1)."""
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
    h = _mix_np(_mix_np(np.uint64(seed % 2**64)) ^ np.asarray(counter).astype(np.uint64))
    m = np.uint64(0xFFFF)
    total = ((h & m).astype(np.float64) + ((h >> np.uint64(16)) & m).astype(np.float64)
             + ((h >> np.uint64(32)) & m).astype(np.float64) + (h >> np.uint64(48)).astype(np.float64))
    return (total + 2.0 - 2.0 * 65536.0) * _IH_SCALE  # quarters are k + ½ on 0..65535: mean 2·65536


def normal_exact_np(seed: int, counter: np.ndarray) -> np.ndarray:
    """numpy twin of :func:`normal_exact` for an array of counters."""
    with np.errstate(over="ignore"):
        c = np.asarray(counter).astype(np.uint64) * np.uint64(2)
    u1 = uniform_np(seed, c)
    with np.errstate(over="ignore"):
        u2 = uniform_np(seed, c + np.uint64(1))
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
