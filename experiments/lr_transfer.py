"""lr-transfer: μPC's zero-shot hyperparameter transfer across width and depth.

One point trains one μPC network (:func:`models.training.train`) of width N and H hidden layers
with one (activity_lr β, param_lr) pair for a short run on a training subset, and reports its
test loss and accuracy. Under μPC the best (β, param_lr) should sit at the same place for every
(N, H): tuned on a small network, they transfer to a large one.

``test_loss`` is the training objective's MSE on the test subset: (1/2n) Σ_i ‖onehot(y_i) − f(x_i)‖²
with f the feedforward pass of the trained network (the same scalings as training). A run that
diverges (non-finite free energy, loss or weight, or a non-finite test output) is a row with
``diverged=True``, ``test_loss`` NaN and the test accuracy of chance; the plots leave it blank.

Figures: a heat map of test loss over activity_lr × param_lr for every (width, hidden) panel
with the optimum marked, and the optimal activity_lr and param_lr against width, one line per
depth (flat lines = transfer). Other swept fields (seeds, …) are averaged within a cell.

The default grid (36 points: β ∈ {2, 8, 32} × param_lr ∈ {0.01, 0.1, 1} × N ∈ {32, 128} ×
H ∈ {4, 16}, 150 iterations = one epoch of a 9600-image MNIST subset) takes about 45 s with
``--workers 2`` on two CPU cores (serially, set ``OMP_NUM_THREADS=1``: one torch thread per
process is much faster for these small networks on a busy machine). Its β axis brackets the
optimum of this short run (β ≈ 8, i.e. a per-sample step β/B ≈ 0.125 at batch 64; at
β ∈ {0.1, 0.5, 2} the best β sat on the grid's edge).
A paper-like grid (one full epoch, wider and deeper)::

    pchw run lr-transfer --set width=64,256,1024 --set hidden=8,32,128 \\
        --set activity_lr=0.5,1,2,4,8,16,32,64 --set param_lr=0.003,0.01,0.03,0.1,0.3,1 \\
        --set n_train=None --set iters=None --workers 2
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .framework.table import number, param

NAME = "lr-transfer"
TITLE = "μPC learning-rate transfer across width and depth"
DESCRIPTION = ("Test loss of μPC over a grid of activity lr × param lr at several widths and depths, "
               "and where the optimum sits at each size.")
profile_fields = ()


@dataclass(frozen=True)
class Config:
    """One (size, learning rates) point.

    Attributes:
        width: N, the hidden width.
        hidden: H, hidden layers (L = H + 1 weight matrices).
        activity_lr: β, the inference step on the batch-mean free energy.
        param_lr: Adam learning rate of the weights.
        dataset: ``mnist``, ``fashion-mnist`` or ``synthetic``.
        n_train, n_test: the first n samples of each split (``None`` → all).
        iters: weight updates; ``None`` → one epoch of the (subset of the) training set.
        seed: weight init and data order.
        batch_size: samples per weight update.
        n_steps: inference steps T; ``None`` → H.
    """

    width: int = 32
    hidden: int = 4
    activity_lr: float = 0.5
    param_lr: float = 0.1
    dataset: str = "mnist"
    n_train: int | None = 9600
    n_test: int | None = None
    iters: int | None = 150
    seed: int = 0
    batch_size: int = 64
    n_steps: int | None = None


GRID = {"width": [32, 128], "hidden": [4, 16], "activity_lr": [2.0, 8.0, 32.0], "param_lr": [0.01, 0.1, 1.0]}


def run(config: Config) -> dict:
    """Train μPC at one (width, hidden, β, param_lr); test loss, test accuracy, divergence."""
    import torch

    from models.training import TrainConfig, train
    from pchw.data import load_dataset
    from pchw.runlog import DivergenceError

    for name in ("width", "hidden"):
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}={value!r} is invalid: must be an integer >= 1")
    data = load_dataset(config.dataset, n_train=config.n_train, n_test=config.n_test, seed=config.seed)
    tc = TrainConfig(model="mupc", dataset=config.dataset, depth=config.hidden + 1, width=config.width,
                     iters=config.iters, n_steps=config.n_steps, activity_lr=config.activity_lr,
                     param_lr=config.param_lr, batch_size=config.batch_size, seed=config.seed,
                     test_every=config.iters or 10**9, device="cpu", n_train=config.n_train, n_test=config.n_test)
    chance = 1.0 / data.n_classes
    nan = float("nan")
    row: dict = {"depth": tc.depth, "chance_acc": chance}
    t0 = time.perf_counter()
    try:
        result = train(tc, data=data)
    except DivergenceError as exc:
        row.update(test_loss=nan, test_acc=chance, train_loss=nan, diverged=True, diverged_at=exc.iteration,
                   iterations=exc.iteration)
    else:
        with torch.no_grad():
            x = torch.as_tensor(data.x_test, dtype=result.net.w_in.dtype)
            out = result.net.predict(x).double().numpy()
        target = data.one_hot(data.y_test).astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            loss = 0.5 * float(np.sum(np.square(target - out))) / len(target)
        last = result.history.last("train_loss")
        if math.isfinite(loss):
            row.update(test_loss=loss, test_acc=result.test_acc, test_samples=len(data.x_test),
                       train_loss=nan if last is None else last, diverged=False, diverged_at=None,
                       iterations=result.iterations)
        else:
            row.update(test_loss=nan, test_acc=chance, train_loss=nan if last is None else last, diverged=True,
                       diverged_at=result.iterations, iterations=result.iterations)
    row["train_wall_s"] = time.perf_counter() - t0
    return row


# ------------------------------------------------------------------------------------------ analysis
def _cell_mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def panels(table: list[dict]) -> dict:
    """{(width, hidden): {"activity_lr": [..], "param_lr": [..], "loss": (n_β, n_lr), "acc": (n_β, n_lr)}}.

    Loss and accuracy are averaged over the rows of a cell (seeds…), NaN losses (divergence)
    left out; a cell with no finite loss is NaN, one with no row at all is NaN too.
    """
    rows = [r for r in table if param(r, "width") not in (None, "") and param(r, "activity_lr") not in (None, "")]
    out: dict = {}
    for key in sorted({(int(param(r, "width")), int(param(r, "hidden"))) for r in rows}):
        members = [r for r in rows if (int(param(r, "width")), int(param(r, "hidden"))) == key]
        betas = sorted({number(param(r, "activity_lr")) for r in members})
        lrs = sorted({number(param(r, "param_lr")) for r in members})
        loss = np.full((len(betas), len(lrs)), np.nan)
        acc = np.full((len(betas), len(lrs)), np.nan)
        for i, b in enumerate(betas):
            for j, p in enumerate(lrs):
                cell = [r for r in members
                        if number(param(r, "activity_lr")) == b and number(param(r, "param_lr")) == p]
                if cell:
                    loss[i, j] = _cell_mean([number(r.get("test_loss")) for r in cell])
                    acc[i, j] = _cell_mean([number(r.get("test_acc")) for r in cell])
        out[key] = {"activity_lr": betas, "param_lr": lrs, "loss": loss, "acc": acc}
    return out


def optima(table: list[dict]) -> list[dict]:
    """The lowest-test-loss (activity_lr, param_lr) of every (width, hidden) panel with a finite loss."""
    best = []
    for (width, hidden), p in panels(table).items():
        if not np.isfinite(p["loss"]).any():
            continue
        i, j = np.unravel_index(np.nanargmin(p["loss"]), p["loss"].shape)
        best.append({"width": width, "hidden": hidden, "activity_lr": p["activity_lr"][i],
                     "param_lr": p["param_lr"][j], "test_loss": float(p["loss"][i, j]),
                     "test_acc": float(p["acc"][i, j]), "index": (int(i), int(j))})
    return best


# ------------------------------------------------------------------------------------------ plots
def plot(table: list[dict], outdir: Path) -> list[Path]:
    """Heat maps of test loss per (width, hidden) with the optimum marked; optimum vs width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    data = panels(table)
    if not data:
        return []
    best = {(b["width"], b["hidden"]): b for b in optima(table)}
    paths = [outdir / "lr_transfer_heatmaps.png", outdir / "lr_transfer_optimum.png"]
    _heatmaps(plt, data, best, paths[0])
    _optimum(plt, data, best, paths[1])
    return paths


def _heatmaps(plt, data: dict, best: dict, path: Path) -> None:
    import matplotlib
    from matplotlib.patches import Rectangle

    widths = sorted({w for w, _ in data})
    hiddens = sorted({h for _, h in data})
    finite = np.concatenate([p["loss"][np.isfinite(p["loss"]) & (p["loss"] > 0)] for p in data.values()])
    # one log colour scale for every panel, spanning a decade above the best loss: the region of
    # interest keeps its contrast and blown-up (but finite) losses saturate
    vmin = float(finite.min()) if finite.size else 1e-3
    vmax = min(float(finite.max()), 10 * vmin) if finite.size else 1.0
    norm = matplotlib.colors.LogNorm(vmin=vmin, vmax=max(vmax, vmin * 1.001))

    fig, axes = plt.subplots(len(hiddens), len(widths), figsize=(3.6 * len(widths) + 1.2, 3.1 * len(hiddens)),
                             squeeze=False, layout="constrained")
    cmap = matplotlib.colormaps["viridis_r"].with_extremes(bad="lightgrey")
    im = None
    for r_i, hidden in enumerate(hiddens):
        for c_i, width in enumerate(widths):
            ax = axes[r_i][c_i]
            p = data.get((width, hidden))
            if p is None:
                ax.set_axis_off()
                continue
            loss = np.ma.masked_invalid(p["loss"])
            im = ax.imshow(loss, origin="lower", cmap=cmap, norm=norm, aspect="auto")
            ax.set_xticks(range(len(p["param_lr"])), [f"{v:g}" for v in p["param_lr"]])
            ax.set_yticks(range(len(p["activity_lr"])), [f"{v:g}" for v in p["activity_lr"]])
            for (i, j), v in np.ndenumerate(p["loss"]):
                text = f"{v:.3g}" if np.isfinite(v) else "div"
                dark = np.isfinite(v) and v > 0 and norm(v) > 0.55  # viridis_r is dark at the top
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color="w" if dark else "k")
            b = best.get((width, hidden))
            if b is not None:
                i, j = b["index"]
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=2.5))
                ax.plot(j, i + 0.3, marker="*", color="red", ms=9)
            ax.set_title(f"N={width}, H={hidden}", fontsize=9)
            if r_i == len(hiddens) - 1:
                ax.set_xlabel("param_lr (Adam step, dimensionless)")
            if c_i == 0:
                ax.set_ylabel("activity_lr β (dimensionless)")
    if im is not None:
        fig.colorbar(im, ax=axes, label="test loss (½·MSE on one-hot targets, dimensionless, log scale)", shrink=0.9,
                     extend="max")
    fig.suptitle("μPC test loss over learning rates (red: optimum of each panel; grey: diverged)", fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _optimum(plt, data: dict, best: dict, path: Path) -> None:
    widths = sorted({w for w, _ in data})
    hiddens = sorted({h for _, h in data})

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    markers = "osD^vP*X"
    all_betas = sorted({v for p in data.values() for v in p["activity_lr"]})
    all_lrs = sorted({v for p in data.values() for v in p["param_lr"]})
    for k, hidden in enumerate(hiddens):
        pts = sorted((b["width"], b) for b in best.values() if b["hidden"] == hidden)
        if not pts:
            continue
        shift = 2 ** (0.06 * (k - (len(hiddens) - 1) / 2))  # side by side when the optima coincide
        xs = [w * shift for w, _ in pts]
        for ax, field in zip(axes, ("activity_lr", "param_lr")):
            ax.plot(xs, [b[field] for _, b in pts], marker=markers[k % len(markers)], ls="-", label=f"H={hidden}")
    for ax, field, ticks in zip(axes, ("activity_lr", "param_lr"), (all_betas, all_lrs)):
        ax.set_xscale("log", base=2)
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.set_yscale("log")
        ax.set_yticks(ticks, [f"{v:g}" for v in ticks])
        ax.set_ylim(min(ticks) / 1.5, max(ticks) * 1.5)
        ax.minorticks_off()
        ax.set_xlabel("width N (units, log scale)")
        ax.set_ylabel(f"optimal {field} (dimensionless, log scale)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_title("optimal activity lr β per size", fontsize=10)
    axes[1].set_title("optimal param lr per size (flat = transfer)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def describe(table: list[dict]) -> dict[str, str]:
    """One sentence per figure: where the optimum of each size sits, and whether it moves."""
    best = optima(table)
    if not best:
        return {}
    n = sorted({int(r["test_samples"]) for r in table if number(r.get("test_samples")) >= 1})
    where = "; ".join(f"N={b['width']}, H={b['hidden']}: β {b['activity_lr']:g}, lr {b['param_lr']:g} "
                      f"(loss {b['test_loss']:.3g}, accuracy {100 * b['test_acc']:.1f} %)" for b in best)
    moved = {field: len({b[field] for b in best}) > 1 for field in ("activity_lr", "param_lr")}
    verdict = ", ".join(f"the optimal {f} {'moves' if m else 'stays put'}" for f, m in moved.items())
    counts = f"n = {'/'.join(map(str, n))} test samples per cell" if n else "sample count not recorded"
    return {
        "lr_transfer_heatmaps.png": f"μPC test loss over activity lr β × param lr at each size ({counts}); the "
                                    f"optimum of each panel (red): {where}.",
        "lr_transfer_optimum.png": f"The optimal learning rates against width, one line per depth: across "
                                   f"{len(best)} sizes {verdict} (a flat line is zero-shot transfer).",
    }
