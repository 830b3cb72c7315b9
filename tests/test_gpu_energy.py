"""The NVML energy meter's read cadence, on a stand-in for pynvml (no GPU needed)."""

import sys
import types

import pytest

from models import gpu_energy


@pytest.fixture
def fake_nvml(monkeypatch):
    """pynvml whose counter reads 1000 mJ more at each call; a clock the test moves."""
    state = {"mj": 5000, "reads": 0, "now": 100.0}

    def read(handle):
        state["reads"] += 1
        state["mj"] += 1000
        return state["mj"]

    module = types.SimpleNamespace(nvmlInit=lambda: None, nvmlDeviceGetHandleByIndex=lambda i: ("gpu", i),
                                   nvmlDeviceGetTotalEnergyConsumption=read)
    monkeypatch.setitem(sys.modules, "pynvml", module)
    monkeypatch.setattr(gpu_energy.time, "monotonic", lambda: state["now"])
    return state


def test_meter_reads_joules_since_it_opened(fake_nvml):
    meter = gpu_energy.NvmlEnergyMeter(0)
    assert meter.joules() == 1.0 and meter.joules() == 2.0


def test_meter_reads_only_when_due_or_forced(fake_nvml):
    meter = gpu_energy.NvmlEnergyMeter(0)
    reads = fake_nvml["reads"]
    assert meter.joules_if_due() == 1.0  # never read since opening: due
    fake_nvml["now"] += gpu_energy.READ_INTERVAL_S / 2
    assert meter.joules_if_due() is None
    assert fake_nvml["reads"] == reads + 1  # the skipped call did not touch NVML
    assert meter.joules_if_due(force=True) == 2.0
    fake_nvml["now"] += gpu_energy.READ_INTERVAL_S * 0.99
    assert meter.joules_if_due() is None
    fake_nvml["now"] += gpu_energy.READ_INTERVAL_S * 0.02
    assert meter.joules_if_due() == 3.0
