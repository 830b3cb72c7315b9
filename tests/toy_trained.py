"""A toy experiment whose points share one trained network (experiments.trained), for the cache tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

NAME = "toy-trained"
TITLE = "Toy experiment on a shared trained network (cache tests)"


@dataclass(frozen=True)
class Config:
    depth: int = 3
    width: int = 8
    epochs: float = 3.0
    probe: int = 0


GRID: dict[str, list] = {"probe": [0, 1]}


def run(config: Config) -> dict:
    from experiments.trained import get_trained

    net = get_trained(model="mupc", dataset="synthetic", depth=config.depth, width=config.width, epochs=config.epochs)
    return {"test_acc": net.test_acc, "w_sum": float(sum(w.sum() for w in net.weights)), "probe_out": config.probe}


def plot(table: list[dict], outdir: Path) -> list[Path]:
    return []
