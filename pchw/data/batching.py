"""Mini-batch orders that any (seed, epoch) regenerates, so resuming needs no saved data state."""

from __future__ import annotations

import numpy as np


def batches_per_epoch(n: int, batch_size: int, drop_last: bool = True) -> int:
    """Number of mini-batches in one epoch of ``n`` samples."""
    if n < 0 or batch_size < 1:
        raise ValueError(f"batches_per_epoch: need n ≥ 0 and batch_size ≥ 1, got n={n}, "
                         f"batch_size={batch_size}")
    return n // batch_size if drop_last else -(-n // batch_size)


def batch_indices(n: int, batch_size: int, *, seed: int, epoch: int,
                  drop_last: bool = True) -> np.ndarray:
    """Sample indices of every mini-batch of one epoch, int64 ``(n_batches, batch_size)``.

    The epoch's order is ``np.random.default_rng([seed, epoch]).permutation(n)``, so any
    (seed, epoch) — and hence any batch — can be regenerated on resume with no saved state.
    With ``drop_last`` the trailing ``n % batch_size`` samples of the permutation are
    dropped; without it the last batch is completed by wrapping round to the start of the
    same permutation (keeps the array rectangular; those few samples are seen twice).
    """
    nb = batches_per_epoch(n, batch_size, drop_last)
    if seed < 0 or epoch < 0:
        raise ValueError(f"batch_indices: seed and epoch must be ≥ 0, got seed={seed}, "
                         f"epoch={epoch}")
    perm = np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64)
    if drop_last or nb == 0:
        return perm[: nb * batch_size].reshape(nb, batch_size)
    return np.resize(perm, nb * batch_size).reshape(nb, batch_size)
