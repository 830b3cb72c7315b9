"""Joules per training example and per inference of one network, for BP and PC, on every profile.

Digital profiles are priced from the analytic counts of :mod:`pchw.digital`. Circuit profiles
are priced from the events of simulated runs (:func:`simulators.simulate` on a few real
samples): PC training = forward phase + ``n_steps`` of clamped PC dynamics per sample, plus one
in-place update per batch; PC inference = the forward phase with the output free. Backprop on
a circuit is modelled on clocked crossbars only (forward and backward sweeps, as analog
in-memory training does it); on other substrates it has no row. Digital inference is priced
in batches of ``batch_size`` like training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pchw.circuit_events import analog_bp_training_counts, analog_forward_counts, circuit_update_counts
from pchw.digital import digital_inference_counts, digital_training_counts
from pchw.events import EnergyReport, price
from pchw.profiles import HardwareProfile, Substrate
from pchw.spec import NetworkSpec
from simulators import forward_settle_steps, simulate


@dataclass(frozen=True)
class EnergyRow:
    """One (profile, algorithm, phase) price: ``report`` is per example."""

    profile: str
    substrate: str
    algorithm: str  # "bp" | "pc"
    phase: str  # "train" | "inference"
    report: EnergyReport

    def to_dict(self) -> dict:
        return {"profile": self.profile, "substrate": self.substrate, "algorithm": self.algorithm,
                "phase": self.phase, "energy_j": self.report.total_j, "dominant": self.report.dominant(),
                "components_j": dict(self.report.components_j)}


def energy_rows(spec: NetworkSpec, weights: list[np.ndarray], profiles: list[HardwareProfile], *,
                x: np.ndarray, y: np.ndarray, batch_size: int = 64, n_steps: int | None = None) -> list[EnergyRow]:
    """Per-example joules of BP and PC training and inference of ``spec`` on each profile.

    Args:
        x, y: a few real samples (B', D), (B', d_y) whose simulated runs give the circuit counts.
        batch_size: samples per weight update (updates are shared by the batch).
        n_steps: PC inference steps per training example (default H).
    """
    t = spec.n_hidden if n_steps is None else n_steps
    rows: list[EnergyRow] = []
    for p in profiles:
        def add(algorithm: str, phase: str, report: EnergyReport, p=p) -> None:
            rows.append(EnergyRow(p.name, p.substrate.value, algorithm, phase, report))

        if p.substrate is Substrate.DIGITAL:
            # inference in batches of the same size as training, so weight reads are shared alike
            inference = price(digital_inference_counts(spec, p, batch_size=batch_size), p).scaled(1.0 / batch_size)
            for algorithm in ("bp", "pc"):
                counts = digital_training_counts(spec, p, algorithm=algorithm, batch_size=batch_size, n_steps=t)
                add(algorithm, "train", price(counts, p).scaled(1.0 / batch_size))
                add(algorithm, "inference", inference)
            continue
        ff = forward_settle_steps(spec.n_hidden, p.dt_s / p.tau_s)
        train = simulate(spec, weights, x, y, profile=p, init="zero", ff_steps=ff, n_steps=t)
        update = circuit_update_counts(spec, p).scaled(1.0 / batch_size)
        add("pc", "train", price(train.counts.scaled(1.0 / len(x)) + update, p))
        infer = simulate(spec, weights, x, profile=p, init="zero", ff_steps=ff, n_steps=0)
        add("pc", "inference", price(infer.counts.scaled(1.0 / len(x)), p))
        if p.substrate is Substrate.ANALOG_CLOCKED:
            bp = analog_bp_training_counts(spec, p, batch_size=batch_size).scaled(1.0 / batch_size)
            add("bp", "train", price(bp, p))
            add("bp", "inference", price(analog_forward_counts(spec, p), p))
    return rows
