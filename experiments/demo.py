"""`pchw demo`: PC and backprop trained on every substrate (the measured trade-off) and a small sweep of
the analog circuit, in one report.

The trade-off's twelve points are real training runs — in situ on the four circuit presets, in
software for the two digital ones — on a budget that fits a few minutes of two CPU cores
(``n_train`` examples, one pass; accuracies on ``n_test`` test images, with their intervals). The
full-scale figures (one MNIST epoch, 10,000 test images) come from ``pchw run tradeoff``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pchw.runlog import git_sha

from .framework import RunSummary, combine, run_experiment
from .framework.report import check_combined_folder

# The columns of the tradeoff runs that the demo's own table shows.
TABLE_COLUMNS = ("p_point", "algorithm", "profile", "training", "test_acc", "n_test", "train_energy_j",
                 "inference_energy_j", "train_dominant", "recipe")


@dataclass
class DemoResult:
    """Where the demo wrote, and the two experiment runs behind its report."""

    out_dir: Path
    report: Path
    tradeoff: RunSummary
    sweep: RunSummary


def run_demo(out_dir: str | Path = "results/demo", *, dataset: str = "mnist", depth: int = 5, width: int = 128,
             epochs: float = 1.0, n_train: int | None = 12800, n_test: int | None = 2000, samples: int = 1000,
             workers: int = 1, show_progress: bool = True) -> DemoResult:
    """Run ``tradeoff`` (PC and BP trained on every preset) and a read-noise × weight-bits ``hardware-sweep``,
    and write ``report.md``/``report.html`` into ``out_dir`` embedding both (``pchw report out_dir``
    rebuilds all three reports from the two runs.csv files)."""
    out = Path(out_dir)
    check_combined_folder(out)  # before any work: never replace an experiment's own config.json
    net = {"dataset": [dataset], "depth": [str(depth)], "width": [str(width)], "epochs": [str(epochs)]}
    budget = {"n_train": [str(n_train)], "n_test": [str(n_test)]}
    parts = {"tradeoff": {**net, **budget},
             "hardware-sweep": {**net, "samples": [str(samples)], "read_noise_frac": ["0", "0.05", "0.1", "0.2"],
                                "weight_bits": ["0", "4", "3"]}}
    for name, overrides in parts.items():  # every point of both parts checked before any work (one error line)
        run_experiment(name, overrides=overrides, out_dir=out / name, dry_run=True, show_progress=False)
    trade = run_experiment("tradeoff", overrides=parts["tradeoff"], out_dir=out / "tradeoff", workers=workers,
                           show_progress=show_progress)
    sweep = run_experiment("hardware-sweep", overrides=parts["hardware-sweep"], out_dir=out / "hardware-sweep",
                           workers=workers, show_progress=show_progress)
    meta = {"experiment": f"demo (tradeoff + hardware-sweep): {dataset}, depth {depth}, width {width}, "
                          f"{epochs:g} pass(es) over {n_train or 'all'} training examples",
            "stamp": datetime.now(UTC).strftime("%Y%m%d-%H%M%S"), "git_sha": git_sha()}
    md, _ = combine(out, title="pchw demo: predictive coding and backprop trained on every substrate",
                    parts=["tradeoff", "hardware-sweep"], table_part="tradeoff", table_columns=list(TABLE_COLUMNS),
                    meta=meta)
    return DemoResult(out_dir=out, report=md, tradeoff=trade, sweep=sweep)
