"""Trained networks shared by experiment points: trained once per configuration, cached on disk.

Every point of a grid that needs "μPC at depth 9, width 128, one epoch of MNIST, seed 0" gets
the same weights: the first asks ``models.train`` to train it into
``$PCHW_CACHE/trained/<hash>/`` (a normal run folder), later ones — in any worker process —
load its checkpoint. A file lock keeps two workers from training the same network at once.

An entry counts as finished only once ``COMPLETE`` is in its folder: a small JSON file written
atomically after training has ended and its checkpoint has been read back and verified. An
entry without it — training stopped by Ctrl-C, a crash or kill -9 — is resumed from its
checkpoint when that checkpoint verifies (bit-identical to an uninterrupted run), else trained
again from scratch; it is never taken as finished.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pchw import smoke
from pchw.data import cache_dir
from pchw.errors import PchwError
from pchw.runlog import History, RunError, nested_progress, read_json, write_json
from pchw.spec import NetworkSpec

COMPLETE = "COMPLETE"


@dataclass(frozen=True)
class Trained:
    """A trained network: its spec, float64 weights, software test accuracy and run folder."""

    spec: NetworkSpec
    weights: list[np.ndarray]
    test_acc: float
    run_dir: Path


def _train_entry(config, run_dir: Path) -> None:
    """Finish the cache entry ``run_dir``: resume its checkpoint if one verifies, else train from scratch."""
    from models.training import train

    show = nested_progress()
    if (run_dir / "checkpoint.pt").exists():
        try:
            train(config, out_dir=run_dir, resume=True, show_progress=show)
            return
        except PchwError:  # a checkpoint that does not verify or fit: start the entry again
            pass
    for stale in ("checkpoint.pt", "history.csv", "config.json"):
        (run_dir / stale).unlink(missing_ok=True)
    train(config, out_dir=run_dir, show_progress=show)


def _complete(run_dir: Path) -> bool:
    """True when the entry was marked complete (and the marker is readable)."""
    try:
        return read_json(run_dir / COMPLETE).get("complete") is True
    except PchwError:
        return False


def entry_dir(config) -> Path:
    """The cache folder of the network ``config`` trains (a smoke-mode network has its own)."""
    key = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
    root = cache_dir() / ("trained-smoke" if smoke.enabled() else "trained")
    return root / f"{config.model}-{config.dataset}-d{config.depth}-w{config.width}-{key}"


def get_trained(*, model: str, dataset: str, depth: int, width: int, epochs: float, seed: int = 0,
                n_steps: int | None = None, activity_lr: float = 0.5, param_lr: float = 0.1,
                iters: int | None = None, n_train: int | None = None) -> Trained:
    """The network trained with these settings (training, or finishing, it first if no complete entry has it)."""
    from models.training import TrainConfig, load_trained

    config = TrainConfig(model=model, dataset=dataset, depth=depth, width=width,
                         epochs=None if iters is not None else epochs, iters=iters, n_steps=n_steps,
                         activity_lr=activity_lr, param_lr=param_lr, seed=seed, test_every=10**9, device="cpu",
                         n_train=n_train)
    run_dir = entry_dir(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _complete(run_dir):
                (run_dir / COMPLETE).unlink(missing_ok=True)
                _train_entry(config, run_dir)
                load_trained(run_dir)  # verifies the checkpoint before the entry is declared finished
                write_json(run_dir / COMPLETE, {"complete": True, "config": config.to_dict()})
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    try:
        spec, weights, _ = load_trained(run_dir)
    except PchwError as exc:  # damaged after completion: say which entry to delete
        raise RunError(f"the cached network in {run_dir} does not load ({exc.one_line()}); delete that folder "
                        f"and rerun to train it again") from None
    acc = History.read(run_dir / "history.csv").last("test_acc")
    return Trained(spec=spec, weights=weights, test_acc=float(acc), run_dir=run_dir)
