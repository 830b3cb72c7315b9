"""Smoke mode: ``PCHW_SMOKE=1`` runs every command at a toy size — to check that it runs, not what it finds.

The test that executes the README's commands uses it; a user can too, to try a pipeline in
seconds. In smoke mode

- every data set keeps only its first :data:`TRAIN_SAMPLES` training and :data:`TEST_SAMPLES`
  test samples (so an epoch is a few iterations and a deployment a few hundred samples), and its
  ``source`` says so;
- ``pchw train --iters N`` trains ``max(1, N // ITERATION_DIVISOR)`` iterations;
- run ids and the trained-network cache keep smoke results apart from real ones.

The numbers a smoke run prints are not results.
"""

from __future__ import annotations

import os

ENV_VAR = "PCHW_SMOKE"
TRAIN_SAMPLES = 320  # five batches of 64: an epoch is five iterations
TEST_SAMPLES = 32
ITERATION_DIVISOR = 100


def enabled() -> bool:
    """True when ``PCHW_SMOKE`` is set to anything but empty, 0, false, no or off."""
    return os.environ.get(ENV_VAR, "").strip().lower() not in ("", "0", "false", "no", "off")


def cap(n: int | None, limit: int) -> int | None:
    """``n`` samples, at most ``limit`` in smoke mode (``None`` = all, which smoke mode caps too)."""
    if not enabled():
        return n
    return limit if n is None else min(n, limit)


def iterations(n: int | None) -> int | None:
    """An iteration budget, divided by :data:`ITERATION_DIVISOR` (at least 1) in smoke mode."""
    if n is None or not enabled():
        return n
    return max(1, n // ITERATION_DIVISOR)
