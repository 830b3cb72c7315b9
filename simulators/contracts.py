"""The named objects every circuit backend takes and returns (the backend seam's contract).

A backend integrates one :class:`Phase` of a prepared :class:`simulators.circuit.Circuit` from a
:class:`CircuitState`, driven by a :class:`Drive`, recording what :class:`Record` asks and adding
the update window's sums into :class:`WindowSums`; it returns a :class:`PhaseTrace`. Shapes: H
hidden layers of width N, B samples, d_y outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from pchw.events import EventCounts

from .errors import SimulationError


class Method(StrEnum):
    """Fixed-step integrator of τ dz/dt = −∂F_b/∂z."""

    EULER = "euler"  # z ← z − h g(z)
    HEUN = "heun"  # z ← z − (h/2)(g(z) + g(z − h g(z)))


def as_enum(cls, value, name: str):
    """``cls(value)``, or :class:`SimulationError` naming the value and what is allowed."""
    try:
        return cls(value)
    except ValueError:
        raise SimulationError(f"{name}={value!r} is not one of: {', '.join(m.value for m in cls)}") from None


@dataclass(frozen=True)
class Phase:
    """One stretch of fixed steps with the same dynamics.

    Attributes:
        n_steps: steps to integrate; the circuit runs n_steps · dt_s seconds per sample.
        h: dt/τ, the step in units of the integrators' time constant.
        method: the integrator.
        feedback: True for PC dynamics; False for the forward cascade, where every value neuron
            follows only its own error (τ dz_ℓ/dt = −ε_ℓ).
        free_output: the output neurons are free (prediction) rather than clamped to y.
        step_offset: index of the phase's first step within the run (noise counters).
        window: the last this many steps add their errors and activations to the window sums.
    """

    n_steps: int
    h: float
    method: Method = Method.EULER
    feedback: bool = True
    free_output: bool = False
    step_offset: int = 0
    window: int = 0

    @property
    def evaluations(self) -> int:
        """Gradient evaluations per step (noise counters advance by this many)."""
        return 2 if self.method is Method.HEUN else 1


@dataclass
class CircuitState:
    """The circuit's state, updated in place: z (H, B, N) hidden value neurons, zout (B, d_y) the
    output value neurons (used only when the output is free); with temporally correlated read noise,
    its processes corr_state (K, 2L, B, n) and their sum corr_total (2L, B, n) (:mod:`simulators.noise`)."""

    z: np.ndarray
    zout: np.ndarray
    corr_state: np.ndarray | None = None
    corr_total: np.ndarray | None = None


@dataclass(frozen=True)
class Drive:
    """What drives a batch: inputs x (B, D), μ_1 = a_1 W_1 x as the input crossbar computed it
    (B, N), targets y (B, d_y) (zeros for a free output) and the global sample indices (B,) of
    the noise counters."""

    x: np.ndarray
    mu_first: np.ndarray
    y: np.ndarray
    samples: np.ndarray


@dataclass(frozen=True)
class Record:
    """Per-step traces to keep: the per-sample free energies F_b and/or the activities z."""

    free_energy: bool = False
    activities: bool = False


@dataclass
class WindowSums:
    """The update window's accumulators: Σ ε_ℓ (H, B, N), Σ ε_L (B, d_y), Σ g·φ(z_ℓ) (H, B, N)."""

    eps: np.ndarray
    eps_out: np.ndarray
    act: np.ndarray

    @classmethod
    def zeros(cls, n_hidden: int, batch: int, width: int, output_dim: int) -> WindowSums:
        return cls(np.zeros((n_hidden, batch, width)), np.zeros((batch, output_dim)),
                   np.zeros((n_hidden, batch, width)))


@dataclass
class PhaseTrace:
    """What a backend returns for one phase.

    Attributes:
        free_energy: (n_steps + 1, B) F_b before every step and at the end, or None.
        activities: (n_steps + 1, H, B, N), or None.
        compile_s: compilation (or network build) time spent in this call, seconds.
        counts: the phase's events when the backend counts them itself (Brian2's spiking mode);
            None when the analytic circuit counts apply.
    """

    free_energy: np.ndarray | None = None
    activities: np.ndarray | None = None
    compile_s: float = 0.0
    counts: EventCounts | None = None
