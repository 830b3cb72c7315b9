"""`pchw demo`: μPC and its backprop twin, the energy/accuracy trade-off and a small hardware sweep,
in one report — a few minutes on two CPU cores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pchw.runlog import git_sha

from .framework import RunSummary, combine, run_experiment
from .framework.report import check_combined_folder

# The columns of the tradeoff runs that the demo's own table shows.
TABLE_COLUMNS = ("p_point", "algorithm", "profile", "test_acc", "deployed_samples", "software_test_acc",
                 "train_energy_j", "inference_energy_j", "train_dominant", "inference_dominant")


@dataclass
class DemoResult:
    """Where the demo wrote, and the two experiment runs behind its report."""

    out_dir: Path
    report: Path
    tradeoff: RunSummary
    sweep: RunSummary


def run_demo(out_dir: str | Path = "results/demo", *, dataset: str = "mnist", depth: int = 9, width: int = 128,
             epochs: float = 1.0, samples: int = 1000, workers: int = 1, show_progress: bool = True) -> DemoResult:
    """Run ``tradeoff`` (every preset) and a read-noise × weight-bits ``hardware-sweep`` on the same
    trained networks, and write ``report.md``/``report.html`` into ``out_dir`` embedding both
    (``pchw report out_dir`` rebuilds all three reports from the two runs.csv files)."""
    out = Path(out_dir)
    check_combined_folder(out)  # before any work: never replace an experiment's own config.json
    net = {"dataset": [dataset], "depth": [str(depth)], "width": [str(width)], "epochs": [str(epochs)]}
    trade = run_experiment("tradeoff", overrides={**net, "samples": [str(samples)], "brian2_samples": ["20"]},
                           out_dir=out / "tradeoff", workers=workers, show_progress=show_progress)
    sweep = run_experiment("hardware-sweep", overrides={**net, "samples": [str(max(1, samples // 2))],
                                                        "read_noise_frac": ["0", "0.05", "0.1", "0.2"],
                                                        "weight_bits": ["0", "4", "3"]},
                           out_dir=out / "hardware-sweep", workers=workers, show_progress=show_progress)
    meta = {"experiment": f"demo (tradeoff + hardware-sweep): {dataset}, depth {depth}, width {width}, "
                          f"{epochs:g} epoch(s)",
            "stamp": datetime.now(UTC).strftime("%Y%m%d-%H%M%S"), "git_sha": git_sha()}
    md, _ = combine(out, title="pchw demo: predictive coding on hardware vs backprop",
                    parts=["tradeoff", "hardware-sweep"], table_part="tradeoff", table_columns=list(TABLE_COLUMNS),
                    meta=meta)
    return DemoResult(out_dir=out, report=md, tradeoff=trade, sweep=sweep)
