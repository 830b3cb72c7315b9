"""The numpy backend: the readable reference stepper of :mod:`simulators.reference`."""

from __future__ import annotations

from typing import ClassVar

from .. import reference


class NumpyBackend:
    """Every non-ideality, the update window, float64; slow and plain (the oracle)."""

    name: ClassVar[str] = "numpy"
    supports_noise: ClassVar[bool] = True
    supports_window: ClassVar[bool] = True

    def integrate(self, circuit, state, drive, phase, *, record, window):
        return reference.integrate(circuit, state, drive, phase, record=record, window=window)
