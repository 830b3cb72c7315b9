"""Measured GPU energy from NVML's cumulative energy counter (Volta and newer).

On a CPU, or where NVML is unavailable, :func:`open_meter` returns ``None`` and callers
leave the measured-energy column out instead of faking it.
"""

from __future__ import annotations

import torch


class NvmlEnergyMeter:
    """Joules consumed by one GPU since the meter was opened (board counter, mJ resolution)."""

    def __init__(self, device_index: int):
        import pynvml  # from nvidia-ml-py

        pynvml.nvmlInit()
        self._nvml = pynvml
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
        self._start_mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)

    def joules(self) -> float:
        now_mj = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        return (now_mj - self._start_mj) / 1000.0


def open_meter(device: torch.device) -> NvmlEnergyMeter | None:
    """An energy meter for a CUDA device, or None (CPU, no NVML, or counter unsupported)."""
    if device.type != "cuda":
        return None
    try:
        index = device.index if device.index is not None else torch.cuda.current_device()
        return NvmlEnergyMeter(index)
    except Exception:  # any NVML failure means "not measured", never a crash of training
        return None
