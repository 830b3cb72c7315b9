"""simulators — fixed-step circuit dynamics of PC hardware behind one backend seam.

``simulate`` (validate → prepare → start → integrate → count, learn, price) is the entry; the
prepared :class:`Circuit`, the named contracts of a phase and the backend registry are the seam.
"""

from .backends import BACKENDS, CircuitBackend, backend_names, make_backend, register_backend
from .circuit import Circuit, prepare_circuit
from .contracts import CircuitState, Drive, Method, Phase, PhaseTrace, Record, WindowSums
from .errors import SimulationError
from .forward import Sweep, forward_sweep
from .learning import Learning, apply_update
from .simulate import Init, SimResult, check_circuit_time, forward_settle_steps, simulate

__all__ = [
    "BACKENDS",
    "Circuit",
    "CircuitBackend",
    "CircuitState",
    "Drive",
    "Init",
    "Learning",
    "Method",
    "Phase",
    "PhaseTrace",
    "Record",
    "SimResult",
    "SimulationError",
    "Sweep",
    "WindowSums",
    "apply_update",
    "backend_names",
    "check_circuit_time",
    "forward_settle_steps",
    "forward_sweep",
    "make_backend",
    "prepare_circuit",
    "register_backend",
    "simulate",
]
