"""simulators — fixed-step circuit dynamics of PC hardware (numpy reference, numba kernels)."""

from .simulate import Backend, Init, Method, SimResult, SimulationError, simulate

__all__ = ["Backend", "Init", "Method", "SimResult", "SimulationError", "simulate"]
