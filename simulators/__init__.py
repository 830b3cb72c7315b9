"""simulators — fixed-step circuit dynamics of PC hardware (numpy reference, numba, brian2)."""

__all__: list[str] = []
