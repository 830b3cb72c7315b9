"""depth-scaling: μPC vs SP predictive coding vs Depth-μP backprop as the network gets deeper.

One point is one (model, hidden depth H, width, …) network: L = H + 1 weight matrices, trained
with :func:`models.training.train` (``mupc``, ``sp`` or ``bp``) on a subset of the training set,
reporting its test accuracy, final training loss and training wall time. A run that diverges
(non-finite free energy, loss or weight — SP at depth, or any model at a huge learning rate) is a
result, not a failure: its row has ``diverged=True`` and the test accuracy of chance.

Two diagnostics at initialisation, independent of training, come with every row:

- ``init_output_rms``: the RMS of the feedforward output over a batch of real training inputs
  (:func:`pchw.oracle.feedforward`, weights from :func:`pchw.spec.init_weights` with the point's
  seed, i.e. exactly the network that is trained; ``bp`` uses the μPC parameterisation). μPC keeps
  it O(1) at any depth; SP with skips lets it grow geometrically.
- ``hessian_cond``: the condition number of the activity Hessian H_z of the *linear* version of
  the network (``act="linear"``, same parameterisation and skips; :mod:`pchw.theory`). H_z is
  (H·N)²; when H·N exceeds ``hessian_max_dim`` it is computed at a smaller width (the largest
  power of two that fits; ``hessian_width`` fixes it), recorded in ``hessian_width``.

Learning rates: ``activity_lr`` β = 0.5 (DESIGN §2); ``param_lr=None`` takes the per-model
default of :data:`DEFAULT_PARAM_LR` (μPC and BP 0.1, SP 0.01 — the best of 1e-3/1e-2/1e-1 on
this grid's 200-iteration MNIST subset; SP at 0.1 stays near chance even at H = 4).

The default grid (9 points, H ∈ {4, 8, 16}, N = 64, 200 iterations on 5000 MNIST images) runs in
about 15 s on two CPU cores with ``--workers 2`` (or serially with ``OMP_NUM_THREADS=1``: torch's
default two threads per process on a busy 2-core machine made small points 10–50× slower).
Deeper on the CPU — a PC point at H = 128, N = 64 takes ~1 min per 200 iterations on one core,
so this is ~3 min with two workers (μPC stays at ~83% while SP falls to chance at H = 128)::

    pchw run depth-scaling --set hidden=4,8,16,32,64,128 --workers 2

The paper-scale comparison (DESIGN §2: N = 512, 900 iterations of the full training set, H up to
128; on a GPU, or hours on a CPU)::

    pchw run depth-scaling --set hidden=8,16,32,64,128 --set width=512 --set iters=900 --set n_train=None
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .framework.table import flag, number, param

NAME = "depth-scaling"
TITLE = "Depth scaling: μPC vs SP predictive coding vs Depth-μP backprop"
DESCRIPTION = ("Test accuracy against the number of hidden layers for μPC, standard-parameterisation PC "
               "and Depth-μP backprop, with the feedforward output norm and the activity-Hessian "
               "condition number (linear network) at initialisation.")
MODELS = ("mupc", "sp", "bp")
DEFAULT_ACTIVITY_LR = 0.5
DEFAULT_PARAM_LR = {"mupc": 0.1, "sp": 0.01, "bp": 0.1}
profile_fields = ()


@dataclass(frozen=True)
class Config:
    """One network of the depth comparison.

    Attributes:
        model: ``mupc`` (μPC), ``sp`` (standard-parameterisation PC) or ``bp`` (Depth-μP backprop).
        hidden: H, the number of hidden layers (L = H + 1 weight matrices).
        width: N, the hidden width.
        iters: weight updates (batches of ``batch_size``; the subset is cycled when shorter).
        dataset: ``mnist``, ``fashion-mnist`` or ``synthetic``.
        n_train, n_test: the first n samples of each split (``None`` → all).
        seed: weight init and data order.
        activity_lr: β, the inference step (PC models only).
        param_lr: Adam learning rate; ``None`` → :data:`DEFAULT_PARAM_LR` of the model.
        n_steps: inference steps T per batch; ``None`` → H.
        batch_size: samples per weight update.
        act: activation of the trained network (the Hessian is always of the linear version).
        skip: residual skip connections between hidden layers.
        norm_samples: training inputs over which the initial output RMS is taken.
        hessian_max_dim: the largest H·N at which the activity Hessian is built at full width.
        hessian_width: width of the linear network whose Hessian is taken; ``None`` → automatic.
    """

    model: str = "mupc"
    hidden: int = 8
    width: int = 64
    iters: int = 200
    dataset: str = "mnist"
    n_train: int | None = 5000
    n_test: int | None = None
    seed: int = 0
    activity_lr: float = DEFAULT_ACTIVITY_LR
    param_lr: float | None = None
    n_steps: int | None = None
    batch_size: int = 64
    act: str = "relu"
    skip: bool = True
    norm_samples: int = 512
    hessian_max_dim: int = 2048
    hessian_width: int | None = None


GRID = {"model": list(MODELS), "hidden": [4, 8, 16]}


def param_lr_of(config: Config) -> float:
    """The Adam learning rate a point trains with (its own, else the model's default)."""
    return float(config.param_lr) if config.param_lr is not None else DEFAULT_PARAM_LR[config.model]


def hessian_width_of(config: Config) -> int:
    """The width of the linear network whose activity Hessian is taken (see the module doc)."""
    if config.hessian_width is not None:
        return int(config.hessian_width)
    if config.hidden * config.width <= config.hessian_max_dim:
        return config.width
    fit = max(1, config.hessian_max_dim // config.hidden)
    return max(2, min(config.width, 2 ** int(math.floor(math.log2(fit)))))


def init_output_rms(spec, x: np.ndarray, *, seed: int = 0) -> float:
    """RMS of the feedforward output of ``spec`` at initialisation (``init_weights(seed)``) over ``x``."""
    from pchw.oracle import feedforward
    from pchw.spec import init_weights

    _, out = feedforward(spec, init_weights(spec, seed=seed), np.asarray(x, dtype=np.float64))
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sqrt(np.mean(np.square(out))))


def linear_hessian_cond(spec, *, seed: int = 0) -> float:
    """Condition number of the activity Hessian of the linear version of ``spec`` at init."""
    from dataclasses import replace

    from pchw.spec import init_weights
    from pchw.theory import activity_hessian, condition_number

    linear = replace(spec, act="linear")
    return condition_number(activity_hessian(linear, init_weights(linear, seed=seed)))


def _check(config: Config) -> None:
    if config.model not in MODELS:
        raise ValueError(f"model={config.model!r} is invalid: choose one of {', '.join(MODELS)}")
    for name in ("hidden", "width", "iters", "norm_samples", "hessian_max_dim"):
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}={value!r} is invalid: must be an integer >= 1")


def run(config: Config) -> dict:
    """Train one network; its test accuracy, loss, divergence, and the two init diagnostics."""
    from dataclasses import replace

    from models.training import TrainConfig, train
    from pchw.data import load_dataset
    from pchw.runlog import DivergenceError

    _check(config)
    data = load_dataset(config.dataset, n_train=config.n_train, n_test=config.n_test, seed=config.seed)
    tc = TrainConfig(model=config.model, dataset=config.dataset, depth=config.hidden + 1, width=config.width,
                     act=config.act, skip=config.skip, iters=config.iters, n_steps=config.n_steps,
                     activity_lr=config.activity_lr, param_lr=param_lr_of(config), batch_size=config.batch_size,
                     seed=config.seed, test_every=config.iters, device="cpu", n_train=config.n_train,
                     n_test=config.n_test)
    chance = 1.0 / data.n_classes
    row: dict = {"depth": tc.depth, "n_steps_used": tc.inference_steps if tc.algorithm == "pc" else 0,
                 "param_lr_used": tc.param_lr, "chance_acc": chance}
    t0 = time.perf_counter()
    try:
        result = train(tc, data=data)
    except DivergenceError as exc:
        row.update(test_acc=chance, train_loss=float("nan"), free_energy=float("nan"), diverged=True,
                   diverged_at=exc.iteration, iterations=exc.iteration)
    else:
        loss = result.history.last("train_loss")
        free_energy = result.history.last("free_energy")
        row.update(test_acc=result.test_acc, test_samples=len(data.x_test),
                   train_loss=float("nan") if loss is None else loss,
                   free_energy=float("nan") if free_energy is None else free_energy, diverged=False,
                   diverged_at=None, iterations=result.iterations)
    row["train_wall_s"] = time.perf_counter() - t0

    spec = tc.network_spec(data)  # bp: the μPC parameterisation, as trained
    row["init_output_rms"] = init_output_rms(spec, data.x_train[: config.norm_samples], seed=config.seed)
    h_width = hessian_width_of(config)
    row.update(hessian_width=h_width, hessian_dim=h_width * config.hidden,
               hessian_cond=linear_hessian_cond(replace(spec, width=h_width), seed=config.seed))
    return row


# ------------------------------------------------------------------------------------------ plots
_COLOURS = {"mupc": "tab:blue", "sp": "tab:orange", "bp": "tab:green"}
_LABELS = {"mupc": "μPC", "sp": "SP (PC)", "bp": "BP (Depth-μP)"}
_SERIES = ("width", "iters", "dataset", "act", "skip", "activity_lr", "param_lr", "n_steps", "batch_size")


def _series(rows: list[dict], models: tuple[str, ...]) -> dict:
    """{(model, other swept settings…): {H: [rows]}} — seeds pooled, one line per key."""
    swept = [f for f in _SERIES if len({str(param(r, f)) for r in rows}) > 1]
    out: dict = {}
    for r in rows:
        model = str(param(r, "model"))
        if model not in models:
            continue
        key = (model, tuple((f, param(r, f)) for f in swept))
        out.setdefault(key, {}).setdefault(int(param(r, "hidden")), []).append(r)
    return out


def _label(key) -> str:
    model, extra = key
    tail = ", ".join(f"{f}={v}" for f, v in extra)
    return _LABELS.get(model, model) + (f" ({tail})" if tail else "")


def _depth_axis(ax, depths: list[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.minorticks_off()
    ax.set_xlabel("hidden layers H (count, log scale)")
    ax.grid(alpha=0.3)


def plot(table: list[dict], outdir: Path) -> list[Path]:
    """Test accuracy vs depth per model; init output RMS and linear H_z condition vs depth (μPC, SP)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rows = [r for r in table if r.get("test_acc") not in (None, "") and param(r, "hidden") not in (None, "")]
    paths: list[Path] = []
    if not rows:
        return paths
    depths = sorted({int(param(r, "hidden")) for r in rows})

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, by_h in sorted(_series(rows, MODELS).items(), key=lambda kv: str(kv[0])):
        hs = sorted(by_h)
        acc = [100 * np.mean([number(r["test_acc"]) for r in by_h[h]]) for h in hs]
        ax.plot(hs, acc, "o-", color=_COLOURS.get(key[0]), label=_label(key))
        bad = [(h, a) for h, a in zip(hs, acc) if any(flag(r.get("diverged")) for r in by_h[h])]
        if bad:
            ax.scatter(*zip(*bad), marker="x", s=80, color="k", zorder=3)
    chance = sorted({number(r.get("chance_acc")) for r in rows if math.isfinite(number(r.get("chance_acc")))})
    for c in chance:
        ax.axhline(100 * c, color="grey", ls=":", lw=1)
    ax.plot([], [], "kx", ls="none", label="diverged (scored at chance)")
    _depth_axis(ax, depths)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Test accuracy vs depth")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(outdir / "depth_scaling_accuracy.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    for metric, ylabel, title, fname in (
        ("init_output_rms", "feedforward output RMS at init (activity units, log scale)",
         "Output norm at initialisation",
         "depth_scaling_output_norm.png"),
        ("hessian_cond", "cond(H_z) of the linear network (dimensionless, log scale)",
         "Activity-Hessian condition number at initialisation", "depth_scaling_hessian_cond.png"),
    ):
        series = _series(rows, ("mupc", "sp"))
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        reduced = False
        for key, by_h in sorted(series.items(), key=lambda kv: str(kv[0])):
            hs = sorted(by_h)
            vals = [np.mean([number(r.get(metric)) for r in by_h[h]]) for h in hs]
            ax.plot(hs, vals, "o-", color=_COLOURS.get(key[0]), label=_label(key))
            if metric == "hessian_cond":
                for h, v in zip(hs, vals):
                    widths = {str(r.get("hessian_width")) for r in by_h[h]}
                    if widths != {str(param(by_h[h][0], "width"))}:
                        reduced = True
                        ax.annotate(f"N={'/'.join(sorted(widths))}", (h, v), textcoords="offset points",
                                    xytext=(4, -10), fontsize=6)
        ax.set_yscale("log")
        _depth_axis(ax, depths)
        ax.set_ylabel(ylabel)
        ax.set_title(title + ("\n(N=… marks a Hessian taken at a reduced width)" if reduced else ""), fontsize=10)
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(outdir / fname)
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths


def _ends(rows: list[dict], metric: str, model: str) -> tuple[int, float, int, float] | None:
    """(shallowest H, its mean metric, deepest H, its mean metric) of ``model``'s rows, or None."""
    by_h: dict[int, list[float]] = {}
    for r in rows:
        if str(param(r, "model")) == model:
            by_h.setdefault(int(param(r, "hidden")), []).append(number(r.get(metric)))
    if not by_h:
        return None
    lo, hi = min(by_h), max(by_h)
    return lo, float(np.mean(by_h[lo])), hi, float(np.mean(by_h[hi]))


def describe(table: list[dict]) -> dict[str, str]:
    """One sentence per figure: how each model's measure changes from the shallowest to the deepest net."""
    rows = [r for r in table if r.get("test_acc") not in (None, "") and param(r, "hidden") not in (None, "")]
    if not rows:
        return {}
    n = sorted({int(r["test_samples"]) for r in rows if number(r.get("test_samples")) >= 1})
    diverged = sum(flag(r.get("diverged")) for r in rows)
    accuracy = []
    for m in MODELS:
        ends = _ends(rows, "test_acc", m)
        if ends:
            accuracy.append(f"{_LABELS[m]} {100 * ends[1]:.1f} % at H = {ends[0]} → "
                            f"{100 * ends[3]:.1f} % at H = {ends[2]}")
    out = {"depth_scaling_accuracy.png": (
        "Test accuracy against depth: " + "; ".join(accuracy)
        + (f" (n = {'/'.join(map(str, n))} test samples per point" if n else " (")
        + f"; {diverged} run(s) diverged and are scored at chance).")}
    for metric, fname, what in (("init_output_rms", "depth_scaling_output_norm.png", "feedforward output RMS"),
                                ("hessian_cond", "depth_scaling_hessian_cond.png", "cond(H_z) of the linear net")):
        parts = [f"{_LABELS[m]} {e[1]:.3g} at H = {e[0]} → {e[3]:.3g} at H = {e[2]}"
                 for m in ("mupc", "sp") if (e := _ends(rows, metric, m))]
        if parts:
            out[fname] = f"The {what} at initialisation against depth (one draw per point): " + "; ".join(parts) + "."
    return out
