"""Deploy a trained network on a circuit profile: accuracy and joules per inference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pchw.events import EnergyReport, EventCounts, price
from pchw.oracle import feedforward
from pchw.profiles import HardwareProfile
from pchw.spec import NetworkSpec
from simulators import check_circuit_time, simulate


@dataclass
class DeployResult:
    """Test accuracy of the circuit next to the software network's, and energy per inference.

    Attributes:
        accuracy: circuit test accuracy in [0, 1].
        software_accuracy: float64 feedforward accuracy on the same samples.
        agreement: fraction of samples where circuit and software predict the same class.
        energy: joules per inference by component.
        counts: events per inference.
        max_grad: largest |∂F/∂z| at the end of any sample (0 at exact settling).
        settings: the circuit settings used (init, n_steps, ff_steps, dt_s, tau_s, h, method, backend).
    """

    profile: str
    n_samples: int
    accuracy: float
    software_accuracy: float
    agreement: float
    energy: EnergyReport
    counts: EventCounts
    max_grad: float
    settings: dict
    compile_s: float
    run_s: float

    def to_dict(self) -> dict:
        return {
            "profile": self.profile,
            "n_samples": self.n_samples,
            "test_acc": self.accuracy,
            "software_test_acc": self.software_accuracy,
            "agreement": self.agreement,
            "energy_per_inference_j": self.energy.total_j,
            "energy_components_j": dict(self.energy.components_j),
            "dominant": self.energy.dominant(),
            "counts_per_inference": self.counts.to_dict(),
            "max_grad": self.max_grad,
            "settings": self.settings,
            "compile_s": self.compile_s,
            "run_s": self.run_s,
        }


def deploy(spec: NetworkSpec, weights: list[np.ndarray], x: np.ndarray, labels: np.ndarray, *,
           profile: HardwareProfile, n_steps: int = 0, init: str = "sweep", ff_steps: int | None = None,
           dt_s: float | None = None,
           tau_s: float | None = None, method: str = "euler", backend: str = "numba", device: str | None = None,
           chunk: int = 500,
           seed: int = 0, spiking=None, on_progress: Callable[[int], None] | None = None) -> DeployResult:
    """Run the circuit's prediction on every sample, in chunks of ``chunk`` samples: the physical
    forward sweep (``init="sweep"``; or the emulated cascade of ``ff_steps``, ``init="cascade"``),
    then ``n_steps`` of PC dynamics with the output free."""
    dt_s = profile.dt_s if dt_s is None else dt_s
    tau_s = profile.tau_s if tau_s is None else tau_s
    check_circuit_time(dt_s, tau_s)
    software = np.argmax(feedforward(spec, weights, x.astype(np.float64))[1], axis=1)
    predicted = np.empty(len(x), dtype=np.int64)
    counts = EventCounts()
    max_grad = compile_s = run_s = 0.0
    ff_steps_used = 0
    for start in range(0, len(x), chunk):
        xb = x[start : start + chunk].astype(np.float64)
        r = simulate(spec, weights, xb, profile=profile, n_steps=n_steps, init=init, ff_steps=ff_steps, dt_s=dt_s,
                     tau_s=tau_s, method=method, backend=backend, device=device, seed=seed, sample_offset=start,
                     spiking=spiking)
        ff_steps_used = r.meta["ff_steps"]
        predicted[start : start + len(xb)] = r.predictions()
        counts = counts + r.counts
        max_grad = max(max_grad, r.max_grad)
        compile_s += r.compile_s
        run_s += r.run_s
        if on_progress is not None:
            on_progress(len(xb))
    per_inference = counts.scaled(1.0 / len(x))
    return DeployResult(
        profile=profile.name, n_samples=len(x), accuracy=float(np.mean(predicted == labels)),
        software_accuracy=float(np.mean(software == labels)), agreement=float(np.mean(predicted == software)),
        energy=price(per_inference, profile), counts=per_inference, max_grad=max_grad,
        settings={"init": init, "n_steps": n_steps, "ff_steps": ff_steps_used, "dt_s": dt_s, "tau_s": tau_s,
                  "h": dt_s / tau_s,
                  "method": method, "backend": backend, "device": device,
                  "spiking": None if spiking is None else {"rate_hz": spiking.rate_hz, "duration_s": spiking.duration_s,
                                                           "full_scale": spiking.full_scale}},
        compile_s=compile_s, run_s=run_s,
    )
