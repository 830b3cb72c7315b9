"""Estimated joules per training example and per inference of one network, BP and PC, on every profile.

These are **estimates**: the events of one training step or one inference priced by the profile,
not the ledger of a training run (``pchw train --on`` and the ``tradeoff`` experiment measure
those). Digital profiles are priced from the analytic counts of :mod:`pchw.digital`. Circuit
profiles from the events of simulated runs on a few real samples (:func:`simulators.simulate`):

- inference, PC and BP alike: the physical forward sweep (each crossbar read once);
- PC training: the sweep, ``n_steps`` of clamped PC dynamics and one in-place update per batch;
- BP training: the sweep, the backward sweep through the same arrays (transposed reads, derivative
  and loss gradient in the digital periphery) and one in-place update per batch.

Digital inference is priced in batches of ``batch_size`` like training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pchw.circuit_events import backward_sweep_counts, update_counts
from pchw.digital import digital_inference_counts, digital_training_counts
from pchw.events import EnergyReport, price
from pchw.profiles import HardwareProfile, Substrate
from pchw.spec import NetworkSpec
from simulators import simulate


@dataclass(frozen=True)
class EnergyRow:
    """One (profile, algorithm, phase) estimate: ``report`` is per example."""

    profile: str
    substrate: str
    algorithm: str  # "bp" | "pc"
    phase: str  # "train" | "inference"
    report: EnergyReport

    def to_dict(self) -> dict:
        return {"profile": self.profile, "substrate": self.substrate, "algorithm": self.algorithm,
                "phase": self.phase, "energy_j": self.report.total_j, "dominant": self.report.dominant(),
                "components_j": dict(self.report.components_j), "kind": "estimate"}


def _circuit_rows(spec: NetworkSpec, weights, p: HardwareProfile, x, y, batch_size: int, n_steps: int):
    n = len(x)
    infer = simulate(spec, weights, x, profile=p, n_steps=0)
    train = simulate(spec, weights, x, y, profile=p, n_steps=n_steps)
    update = update_counts(spec, p, batch=batch_size).scaled(1.0 / batch_size)
    sweep = infer.counts.scaled(1.0 / n)
    bp = sweep + backward_sweep_counts(spec, p, n_samples=1) + update
    return {("pc", "inference"): price(sweep, p), ("bp", "inference"): price(sweep, p),
            ("pc", "train"): price(train.counts.scaled(1.0 / n) + update, p), ("bp", "train"): price(bp, p)}


def energy_rows(spec: NetworkSpec, weights: list[np.ndarray], profiles: list[HardwareProfile], *,
                x: np.ndarray, y: np.ndarray, batch_size: int = 64, n_steps: int | None = None) -> list[EnergyRow]:
    """Estimated per-example joules of BP and PC training and inference of ``spec`` on each profile.

    Args:
        x, y: a few real samples (B', D), (B', d_y) whose simulated runs give the circuit counts.
        batch_size: samples per weight update (updates are shared by the batch).
        n_steps: PC inference steps per training example (default H).
    """
    t = spec.n_hidden if n_steps is None else n_steps
    rows: list[EnergyRow] = []
    for p in profiles:
        if p.substrate is Substrate.DIGITAL:
            # inference in batches of the same size as training, so weight reads are shared alike
            inference = price(digital_inference_counts(spec, p, batch_size=batch_size), p).scaled(1.0 / batch_size)
            reports = {("bp", "inference"): inference, ("pc", "inference"): inference}
            for algorithm in ("bp", "pc"):
                counts = digital_training_counts(spec, p, algorithm=algorithm, batch_size=batch_size, n_steps=t)
                reports[(algorithm, "train")] = price(counts, p).scaled(1.0 / batch_size)
        else:
            reports = _circuit_rows(spec, weights, p, x, y, batch_size, t)
        for algorithm in ("bp", "pc"):
            for phase in ("train", "inference"):
                rows.append(EnergyRow(p.name, p.substrate.value, algorithm, phase, reports[(algorithm, phase)]))
    return rows

