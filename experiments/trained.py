"""Trained networks shared by experiment points: trained once per configuration, cached on disk.

Every point of a grid that needs "μPC at depth 9, width 128, one epoch of MNIST, seed 0" gets
the same weights: the first asks ``models.train`` to train it into
``$PCHW_CACHE/trained/<hash>/`` (a normal run folder), later ones — in any worker process —
load its checkpoint. A file lock keeps two workers from training the same network at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pchw.data import cache_dir
from pchw.runlog import History
from pchw.spec import NetworkSpec


@dataclass(frozen=True)
class Trained:
    """A trained network: its spec, float64 weights, software test accuracy and run folder."""

    spec: NetworkSpec
    weights: list[np.ndarray]
    test_acc: float
    run_dir: Path


def get_trained(*, model: str, dataset: str, depth: int, width: int, epochs: float, seed: int = 0,
                n_steps: int | None = None, activity_lr: float = 0.5, param_lr: float = 0.1,
                iters: int | None = None, n_train: int | None = None) -> Trained:
    """The network trained with these settings (training it first if no cached run has it)."""
    from models.training import TrainConfig, load_trained, train

    config = TrainConfig(model=model, dataset=dataset, depth=depth, width=width,
                         epochs=None if iters is not None else epochs, iters=iters, n_steps=n_steps,
                         activity_lr=activity_lr, param_lr=param_lr, seed=seed, test_every=10**9, device="cpu",
                         n_train=n_train)
    key = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
    run_dir = cache_dir() / "trained" / f"{model}-{dataset}-d{depth}-w{width}-{key}"
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (run_dir / "history.csv").exists() or not (run_dir / "checkpoint.pt").exists():
                for stale in ("checkpoint.pt", "history.csv", "config.json"):
                    (run_dir / stale).unlink(missing_ok=True)
                train(config, out_dir=run_dir)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    spec, weights, _ = load_trained(run_dir)
    acc = History.read(run_dir / "history.csv").last("test_acc")
    return Trained(spec=spec, weights=weights, test_acc=float(acc), run_dir=run_dir)
