"""tradeoff: accuracy against joules per training example, PC on every substrate vs backprop.

One point is one (algorithm, profile) pair. μPC and its backprop twin (Depth-μP) are trained once
in software (cached, see :mod:`experiments.trained`); each point then prices one training example
and one inference of that network on its profile (:func:`experiments.energy.energy_rows`). On
digital profiles the accuracy is the software one; on circuit profiles the trained μPC network is
deployed through the circuit simulator, so its accuracy includes the profile's non-idealities
(`neuromorphic-loihi` runs on the Brian2 backend, the independent neuromorphic simulation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

NAME = "tradeoff"
TITLE = "Energy/accuracy trade-off: predictive coding on each hardware vs backprop"
DIGITAL = ("gpu-fp32", "gpu-bf16", "asic-int8-7nm")
CIRCUITS = ("analog-rram-clocked", "analog-rram-continuous", "analog-cap-ota", "neuromorphic-loihi")
POINTS = tuple(f"bp:{p}" for p in DIGITAL) + tuple(f"pc:{p}" for p in DIGITAL + CIRCUITS)
profile_fields = ()


@dataclass(frozen=True)
class Config:
    """One point of the trade-off.

    Attributes:
        point: ``<algorithm>:<profile>`` — ``bp`` (Depth-μP backprop) or ``pc`` (μPC).
        dataset: ``mnist`` or ``fashion-mnist``.
        depth, width: the network (weight matrices L, hidden width N).
        epochs: software training epochs of both networks.
        batch_size: samples per weight update (energy per example shares an update by the batch).
        samples: test samples deployed through the circuit simulator (all for digital profiles).
        brian2_samples: test samples of the Brian2 (neuromorphic) deployment, which is slower.
        seed: training seed and circuit noise seed.
    """

    point: str = "pc:analog-rram-clocked"
    dataset: str = "mnist"
    depth: int = 9
    width: int = 128
    epochs: float = 1.0
    batch_size: int = 64
    samples: int = 2000
    brian2_samples: int = 50
    seed: int = 0


GRID = {"point": list(POINTS)}


def run(config: Config) -> dict:
    """Accuracy and per-example joules of one (algorithm, profile) point."""
    from experiments.deploy import deploy
    from experiments.energy import energy_rows
    from experiments.trained import get_trained
    from pchw.data import load_dataset
    from pchw.profiles import load_profile

    algorithm, profile_name = config.point.split(":", 1)
    if algorithm not in ("bp", "pc"):
        raise ValueError(f"point={config.point!r}: the algorithm must be bp or pc")
    profile = load_profile(profile_name)
    net = get_trained(model="bp" if algorithm == "bp" else "mupc", dataset=config.dataset, depth=config.depth,
                      width=config.width, epochs=config.epochs, seed=config.seed)
    data = load_dataset(config.dataset)
    x_few, y_few = data.x_test[:8].astype(np.float64), data.one_hot(data.y_test[:8]).astype(np.float64)
    rows = {(r.algorithm, r.phase): r for r in energy_rows(net.spec, net.weights, [profile], x=x_few, y=y_few,
                                                           batch_size=config.batch_size)}
    if (algorithm, "train") not in rows:
        raise ValueError(f"{algorithm} has no model on {profile_name} ({profile.substrate.value})")
    train, infer = rows[(algorithm, "train")].report, rows[(algorithm, "inference")].report
    row = {"algorithm": algorithm, "profile": profile_name, "substrate": profile.substrate.value,
           "software_test_acc": net.test_acc}
    if profile.is_circuit:
        brian2 = profile.substrate.value == "neuromorphic"
        n = config.brian2_samples if brian2 else config.samples
        result = deploy(net.spec, net.weights, data.x_test[:n], data.y_test[:n], profile=profile,
                        backend="brian2" if brian2 else "numba", seed=config.seed, chunk=50 if brian2 else 500)
        row.update(test_acc=result.accuracy, deployed_samples=n, software_acc_same_samples=result.software_accuracy)
    else:
        row.update(test_acc=net.test_acc, deployed_samples=len(data.x_test),
                   software_acc_same_samples=net.test_acc)
    row.update(train_energy_j=train.total_j, inference_energy_j=infer.total_j,
               train_dominant=train.dominant(), inference_dominant=infer.dominant())
    row.update({f"train_{k}_j": v for k, v in train.components_j.items()})
    return row


def _pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both lower energy and higher accuracy."""
    front = []
    for i, (e, a) in enumerate(points):
        if not any((e2 <= e and a2 >= a) and (e2 < e or a2 > a) for j, (e2, a2) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def plot(table: list[dict], outdir: Path) -> list[Path]:
    """Accuracy vs J per training example (log x, Pareto front) and stacked energy breakdowns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rows = [r for r in table if r.get("train_energy_j") not in (None, "") and float(r["train_energy_j"]) > 0]
    paths = []
    if not rows:
        return paths
    energy = [float(r["train_energy_j"]) for r in rows]
    acc = [100 * float(r["test_acc"]) for r in rows]
    labels = [f"{str(r['algorithm']).upper()} · {r['profile']}" for r in rows]
    fig, ax = plt.subplots(figsize=(8, 5))
    for e, a, lab, r in zip(energy, acc, labels, rows):
        ax.scatter(e, a, marker="o" if r["algorithm"] == "pc" else "s", s=50,
                   color="tab:blue" if r["algorithm"] == "pc" else "tab:red")
        ax.annotate(lab, (e, a), textcoords="offset points", xytext=(5, 4), fontsize=7)
    front = _pareto(list(zip(energy, acc)))
    ax.plot([energy[i] for i in front], [acc[i] for i in front], "k--", lw=1, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("energy per training example (J, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("PC (circles) vs backprop (squares)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(outdir / "tradeoff_accuracy_vs_energy.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    components = sorted({k[len("train_"):-2] for r in rows for k in r if k.startswith("train_") and k.endswith("_j")
                         and k != "train_energy_j"})
    fig, ax = plt.subplots(figsize=(10.5, 5))
    totals = np.array(energy)
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
    ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=7)
    ax.set_ylabel("share of the energy per training example (%)")
    ax.set_title("Where the joules of one training example go (total above each bar)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    paths.append(outdir / "tradeoff_energy_breakdown.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths
