"""simulators — fixed-step circuit dynamics of PC hardware (numpy reference, numba kernels)."""

from .simulate import (
    Backend,
    Init,
    Method,
    SimResult,
    SimulationError,
    check_circuit_time,
    forward_settle_steps,
    simulate,
)

__all__ = [
    "Backend",
    "Init",
    "Method",
    "SimResult",
    "SimulationError",
    "check_circuit_time",
    "forward_settle_steps",
    "simulate",
]
