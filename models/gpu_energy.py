"""Measured GPU energy from NVML's cumulative energy counter (Volta and newer).

On a CPU, or where NVML is unavailable, :func:`open_meter` returns ``None`` and callers
leave the measured-energy column out instead of faking it.

One read of the counter takes 3.2 ms (median of 200, H200, driver 580), and the counter itself
advances in coarse ticks (tens of ms). Read every iteration of a graphed μPC step (8.5 ms at
depth 129) it made the training loop 1.4× slower and added no resolution, so the loop reads it
at most every :data:`READ_INTERVAL_S` and wherever a figure is kept (test points, the last
iteration, checkpoints): :meth:`NvmlEnergyMeter.joules_if_due`.
"""

from __future__ import annotations

import time

import torch

READ_INTERVAL_S = 0.5  # seconds between reads of the counter in a loop: ≤ 1 % of the loop's time


class NvmlEnergyMeter:
    """Joules consumed by one GPU since the meter was opened (board counter, mJ resolution)."""

    def __init__(self, device_index: int):
        import pynvml  # from nvidia-ml-py

        pynvml.nvmlInit()
        self._nvml = pynvml
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
        self._start_mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        self._last_read_s = -float("inf")

    def joules(self) -> float:
        """Joules since the meter opened, read now."""
        now_mj = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        self._last_read_s = time.monotonic()
        return (now_mj - self._start_mj) / 1000.0

    def joules_if_due(self, *, force: bool = False) -> float | None:
        """:meth:`joules` when ``force`` or :data:`READ_INTERVAL_S` has passed since the last read,
        else None ("not read at this point")."""
        if force or time.monotonic() - self._last_read_s >= READ_INTERVAL_S:
            return self.joules()
        return None


def open_meter(device: torch.device) -> NvmlEnergyMeter | None:
    """An energy meter for a CUDA device, or None (CPU, no NVML, or counter unsupported)."""
    if device.type != "cuda":
        return None
    try:
        index = device.index if device.index is not None else torch.cuda.current_device()
        return NvmlEnergyMeter(index)
    except Exception:  # any NVML failure means "not measured", never a crash of training
        return None
