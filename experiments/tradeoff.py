"""tradeoff: accuracy against joules per training example, PC and backprop trained on every substrate.

One point is one (algorithm, profile) pair and one real training run:

- on a circuit profile, in-situ training on the simulated chip (:mod:`simulators.insitu`, the
  profile's default recipe): PC relaxes and learns from its error neurons, BP runs a forward and a
  backward sweep through the same arrays (analog SGD); the accuracy is the trained chip's own
  (its forward sweep, noise and converters included) on ``n_test`` test images, the joules per
  training example are the run's ledger divided by its examples, the joules per inference are
  measured on the trained chip;
- on a digital profile, software training (μPC, or its Depth-μP backprop twin, Adam), shared by the
  digital profiles; its joules are the events of that training (one step's analytic counts) priced
  by the profile, and on an NVIDIA GPU the NVML-measured joules stand beside them.

Every accuracy carries its test-image count and a 95% Wilson interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

NAME = "tradeoff"
TITLE = "Energy/accuracy trade-off: PC and backprop trained on every substrate"
DIGITAL = ("gpu-bf16", "asic-int8-7nm")
CIRCUITS = ("analog-rram-clocked", "analog-rram-continuous", "analog-cap-ota", "neuromorphic-loihi")
POINTS = tuple(f"{a}:{p}" for p in DIGITAL + CIRCUITS for a in ("pc", "bp"))
profile_fields = ()


@dataclass(frozen=True)
class Config:
    """One point of the trade-off.

    Attributes:
        point: ``<algorithm>:<profile>`` — ``pc`` (μPC) or ``bp`` (backprop) on a preset or TOML file.
        dataset: ``mnist`` or ``fashion-mnist``.
        depth, width: the network (weight matrices L, hidden width N).
        epochs: training epochs of every run.
        n_train: training examples used (None: the whole training set).
        n_test: test images every accuracy is measured on (None: the whole test set).
        batch_size: samples per weight update.
        seed: training seed and circuit noise seed.
        backend: the circuit backend of in-situ runs (numba; torch on a GPU).
    """

    point: str = "pc:analog-rram-clocked"
    dataset: str = "mnist"
    depth: int = 5
    width: int = 128
    epochs: float = 1.0
    n_train: int | None = None
    n_test: int | None = None
    batch_size: int = 64
    seed: int = 0
    backend: str = "numba"

    def __post_init__(self) -> None:
        algorithm, sep, profile = self.point.partition(":")
        if not sep or algorithm not in ("pc", "bp") or not profile:
            raise ValueError(f"point={self.point!r} must be '<pc|bp>:<profile>'")


GRID = {"point": list(POINTS)}


def run(config: Config) -> dict:
    """Accuracy and per-example joules of one (algorithm, profile) training run."""
    from experiments.measured import measure
    from pchw.stats import wilson_interval

    algorithm, profile_name = config.point.split(":", 1)
    m = measure(algorithm, profile_name, dataset=config.dataset, depth=config.depth, width=config.width,
                epochs=config.epochs, n_train=config.n_train, n_test=config.n_test, batch_size=config.batch_size,
                seed=config.seed, backend=config.backend)
    train = m.train_report()
    low, high = wilson_interval(m.test_acc, m.n_test)
    return {"algorithm": algorithm, "profile": m.profile.name, "substrate": m.profile.substrate.value,
            "kind": "measured", "training": m.training, "test_acc": m.test_acc, "n_test": m.n_test,
            "test_acc_ci_low": low, "test_acc_ci_high": high, "train_energy_j": train.total_j,
            "inference_energy_j": m.inference_energy_j, "train_dominant": train.dominant(), "recipe": m.recipe,
            "examples": m.examples, "write_pulses": m.write_pulses, "measured_gpu_energy_j": m.measured_gpu_energy_j,
            "run_dir": m.run_dir, **{f"train_{k}_j": v for k, v in train.components_j.items()}}


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both lower energy and higher accuracy."""
    front = []
    for i, (e, a) in enumerate(points):
        if not any((e2 <= e and a2 >= a) and (e2 < e or a2 > a) for j, (e2, a2) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def _ok_rows(table: list[dict]) -> list[dict]:
    return [r for r in table if r.get("train_energy_j") not in (None, "") and float(r["train_energy_j"]) > 0
            and r.get("test_acc") not in (None, "")]


def describe(table: list[dict]) -> dict[str, str]:
    """One sentence per figure: what it shows and what it concludes (from the measured rows)."""
    rows = _ok_rows(table)
    if not rows:
        return {}
    best_bp = min((r for r in rows if r["algorithm"] == "bp"), key=lambda r: float(r["train_energy_j"]), default=None)
    pc = sorted((r for r in rows if r["algorithm"] == "pc"), key=lambda r: float(r["train_energy_j"]))
    if best_bp is None or not pc:
        verdict = "it needs both algorithms to compare them"
    else:
        target = float(best_bp["test_acc"]) - 0.01
        cheaper = [r for r in pc if float(r["test_acc"]) >= target
                   and float(r["train_energy_j"]) < float(best_bp["train_energy_j"])]
        verdict = (f"PC on {cheaper[0]['profile']} reaches within 1 point of the cheapest BP point "
                   f"({best_bp['profile']}, {100 * float(best_bp['test_acc']):.1f}%) for "
                   f"{float(best_bp['train_energy_j']) / float(cheaper[0]['train_energy_j']):.2g}× fewer joules"
                   if cheaper else
                   f"no PC point reaches within 1 point of the cheapest BP point ({best_bp['profile']}, "
                   f"{100 * float(best_bp['test_acc']):.1f}% at {float(best_bp['train_energy_j']):.2g} J) "
                   f"for fewer joules")
    n = sorted({int(float(r['n_test'])) for r in rows})
    return {
        "tradeoff_accuracy_vs_energy.png":
            f"Test accuracy (95% Wilson intervals, {', '.join(map(str, n))} test images) against measured joules "
            f"per training example, each point one training run on its substrate; {verdict}.",
        "tradeoff_energy_breakdown.png":
            "Where each run's joules per training example went, by component: the dominant component names what a "
            "chip designer would have to make cheaper.",
    }


def _scatter(rows: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    energy = np.array([float(r["train_energy_j"]) for r in rows])
    acc = np.array([100 * float(r["test_acc"]) for r in rows])
    low = np.array([100 * float(r.get("test_acc_ci_low") or r["test_acc"]) for r in rows])
    high = np.array([100 * float(r.get("test_acc_ci_high") or r["test_acc"]) for r in rows])
    colors = plt.get_cmap("tab10")
    profiles = sorted({r["profile"] for r in rows})
    fig, ax = plt.subplots(figsize=(8.5, 5.2))
    for i, r in enumerate(rows):
        color = colors(profiles.index(r["profile"]) % 10)
        ax.errorbar(energy[i], acc[i], yerr=[[acc[i] - low[i]], [high[i] - acc[i]]], fmt="o" if r["algorithm"] == "pc"
                    else "s", color=color, ms=7, capsize=3, mfc=color if r.get("kind") != "estimate" else "none")
        ax.annotate(f"{str(r['algorithm']).upper()} · {r['profile']}", (energy[i], acc[i]), textcoords="offset points",
                    xytext=(6, 4), fontsize=7)
    front = pareto(list(zip(energy, acc)))
    ax.plot(energy[front], acc[front], "k--", lw=1, label="Pareto front (measured)")
    ax.set_xscale("log")
    ax.set_xlabel("energy per training example (J, log scale)")
    ax.set_ylabel("test accuracy (%), 95% interval")
    ax.set_title("PC (circles) and backprop (squares), each trained on its substrate")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _breakdown(rows: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    components = sorted({k[len("train_"):-2] for r in rows for k in r if k.startswith("train_") and k.endswith("_j")
                         and k != "train_energy_j" and r.get(k) not in (None, "")})
    totals = np.array([float(r["train_energy_j"]) for r in rows])
    fig, ax = plt.subplots(figsize=(10.5, 5))
    bottom = np.zeros(len(rows))
    for c in components:
        vals = np.array([float(r.get(f"train_{c}_j") or 0.0) for r in rows]) / totals * 100
        if vals.sum() == 0:
            continue
        ax.bar(range(len(rows)), vals, bottom=bottom, label=c)
        bottom += vals
    for i, e in enumerate(totals):
        ax.text(i, 101, f"{e:.2g} J", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_ylim(0, 125)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"{str(r['algorithm']).upper()} · {r['profile']}" for r in rows], rotation=35, ha="right",
                       fontsize=7)
    ax.set_ylabel("share of the energy per training example (%)")
    ax.set_title("Where the joules of one training example go (total above each bar)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot(table: list[dict], outdir: Path) -> list[Path]:
    """Accuracy vs J per training example (log x, 95% intervals, measured Pareto front) and the
    stacked energy breakdown of every run."""
    import matplotlib

    matplotlib.use("Agg")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rows = _ok_rows(table)
    if not rows:
        return []
    paths = [outdir / "tradeoff_accuracy_vs_energy.png", outdir / "tradeoff_energy_breakdown.png"]
    _scatter(rows, paths[0])
    _breakdown(rows, paths[1])
    return paths
