"""Circuit backends behind one interface, kept in a registry.

A backend is a class with a ``name``, two capability flags and one method::

    integrate(circuit, state, drive, phase, *, record, window) -> PhaseTrace

that integrates one :class:`simulators.contracts.Phase` of a prepared
:class:`simulators.circuit.Circuit` in place on a :class:`~simulators.contracts.CircuitState`
(see :mod:`simulators.contracts`). Adding a backend is one new module and one line in
:data:`BACKENDS` (or :func:`register_backend` at run time); modules are imported lazily, so
Brian2 and torch are loaded only when asked for.

Entries: ``numba`` (the fast CPU kernels), ``numpy`` (the readable reference), ``brian2`` (an
independent Brian2 network, ideal circuits, with a spiking mode) and ``torch`` (batched, CPU or
CUDA, float64/float32).
"""

from __future__ import annotations

import importlib
from typing import ClassVar, Protocol

from ..circuit import Circuit
from ..contracts import CircuitState, Drive, Phase, PhaseTrace, Record, WindowSums
from ..errors import SimulationError

BACKENDS: dict[str, str] = {
    "numba": "simulators.backends.numba_backend:NumbaBackend",
    "numpy": "simulators.backends.numpy_backend:NumpyBackend",
    "brian2": "simulators.backends.brian2_backend:Brian2Backend",
    "torch": "simulators.backends.torch_backend:TorchBackend",
}


class CircuitBackend(Protocol):
    """The seam: what :func:`simulators.simulate` asks of a backend."""

    name: ClassVar[str]
    supports_noise: ClassVar[bool]  # runs noisy or mismatched circuits
    supports_window: ClassVar[bool]  # fills the update window's sums

    def integrate(self, circuit: Circuit, state: CircuitState, drive: Drive, phase: Phase, *, record: Record,
                  window: WindowSums | None) -> PhaseTrace: ...


def register_backend(name: str, path: str) -> None:
    """Make ``name`` refer to the backend class at ``'package.module:Class'``."""
    if not name or ":" not in path:
        raise SimulationError(f"register_backend needs a name and 'package.module:Class', got {name!r}, {path!r}")
    BACKENDS[name] = path


def backend_names() -> tuple[str, ...]:
    return tuple(BACKENDS)


def make_backend(name: str, **options) -> CircuitBackend:
    """A backend instance; ``options`` go to its constructor (e.g. ``device``/``dtype`` for torch,
    ``spiking`` for brian2). Unknown names and bad options are one-line :class:`SimulationError`."""
    if name not in BACKENDS:
        raise SimulationError(f"backend={name!r} is not one of: {', '.join(BACKENDS)}")
    module_path, _, cls_name = BACKENDS[name].partition(":")
    cls = getattr(importlib.import_module(module_path), cls_name)
    try:
        return cls(**options)
    except TypeError as exc:
        raise SimulationError(f"backend {name}: {exc}") from None


__all__ = ["BACKENDS", "CircuitBackend", "backend_names", "make_backend", "register_backend"]
