"""`pchw demo`: PC and backprop trained on every substrate (the measured trade-off) and a small sweep of
the analog circuit, in one report.

The trade-off's twelve points are real training runs — in situ on the four circuit presets, in
software for the two digital ones — on a budget that fits a few minutes of two CPU cores
(``n_train`` examples, one pass; accuracies on ``n_test`` test images, with their intervals). The
full-scale figures (one MNIST epoch, 10,000 test images) come from ``pchw run tradeoff``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from pchw.runlog import git_sha

from .report import write_report
from .runner import RunSummary, run_experiment


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
    """Run ``tradeoff`` (PC and BP on every preset) and a read-noise × weight-bits ``hardware-sweep``, and
    write ``report.md``/``report.html`` into ``out_dir`` embedding both."""
    out = Path(out_dir)
    net = {"dataset": [dataset], "depth": [str(depth)], "width": [str(width)], "epochs": [str(epochs)]}
    budget = {"n_train": [str(n_train)], "n_test": [str(n_test)]}
    trade = run_experiment("tradeoff", overrides={**net, **budget}, out_dir=out / "tradeoff", workers=workers,
                           show_progress=show_progress)
    sweep = run_experiment("hardware-sweep", overrides={**net, "samples": [str(samples)],
                                                        "read_noise_frac": ["0", "0.05", "0.1", "0.2"],
                                                        "weight_bits": ["0", "4", "3"]},
                           out_dir=out / "hardware-sweep", workers=workers, show_progress=show_progress)
    keep = ("p_point", "algorithm", "profile", "training", "test_acc", "n_test", "test_acc_ci_low", "test_acc_ci_high",
            "train_energy_j", "inference_energy_j", "train_dominant", "recipe")
    table = [{k: r.get(k) for k in keep} for r in trade.rows if r.get("status") == "ok"]
    from datetime import datetime

    meta = {"experiment": f"demo (tradeoff + hardware-sweep; details in tradeoff/ and hardware-sweep/): {dataset}, "
                          f"depth {depth}, width {width}, {epochs:g} epoch(s) of {n_train or 'all'} training examples",
            "stamp": datetime.now(UTC).strftime("%Y%m%d-%H%M%S"), "git_sha": git_sha(),
            "n_points": f"{trade.n_points} tradeoff, {sweep.n_points} hardware-sweep",
            "n_failed": trade.n_failed + sweep.n_failed}
    md, _ = write_report(out, title="pchw demo: predictive coding and backprop trained on every substrate",
                         table=table, figures=list(trade.figures) + list(sweep.figures), meta=meta)
    return DemoResult(out_dir=out, report=md, tradeoff=trade, sweep=sweep)
