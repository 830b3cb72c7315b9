"""The simulators' user-facing error."""

from __future__ import annotations


class SimulationError(ValueError):
    """An invalid simulation request (one line naming the value and what is allowed)."""
