"""The simulators' user-facing error."""

from __future__ import annotations

from pchw.errors import PchwError


class SimulationError(PchwError, ValueError):
    """An invalid simulation request (one line naming the value and what is allowed)."""
