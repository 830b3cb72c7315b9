"""hardware-sweep: accuracy and energy of a trained μPC network over grids of circuit parameters.

Each point deploys the same trained network (cached, :mod:`experiments.trained`) on the base
profile with some fields changed — read noise, converter bits, weight bits, dt/τ, PC steps,
integrator leak — and reports the circuit's test accuracy and joules per inference. With two
swept fields the figure is a heat map; every swept field also gets a sensitivity line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from .framework.table import number, param, wilson_interval

NAME = "hardware-sweep"
TITLE = "Hardware sweep: how circuit parameters move accuracy and energy"
DESCRIPTION = ("Each point deploys the same trained μPC network on the base circuit profile with some of its fields "
               "changed (noise, converter and weight resolution, dt/τ, PC steps, leak) and measures the circuit's "
               "test accuracy and its joules per inference.")
profile_fields = ("profile",)

# what each sweepable field measures, for axis labels (units in brackets)
UNITS = {
    "read_noise_frac": "read noise σ (fraction of w_max)",
    "out_noise_frac": "output noise σ (fraction of full scale)",
    "adc_bits": "ADC resolution (bits)",
    "dac_bits": "DAC resolution (bits)",
    "weight_bits": "weight resolution (bits)",
    "h": "dt/τ (dimensionless)",
    "n_steps": "PC steps after the forward phase (steps)",
    "leak_tau_s": "integrator leak τ_leak (s; 0 = none)",
}
SWEEPABLE = tuple(UNITS)
# fields whose values are levels, not magnitudes: drawn on categorical axes; 0 bits is the unquantised weight
CATEGORICAL = ("adc_bits", "dac_bits", "weight_bits")
sample_counts = {"test_acc": "test_samples"}


@dataclass(frozen=True)
class Config:
    """One point of the sweep; ``None`` keeps the base profile's value.

    Attributes:
        profile: base circuit profile (preset name or TOML path).
        dataset, depth, width, epochs, seed: the μPC network, trained once in software.
        samples: test samples deployed per point.
        read_noise_frac, out_noise_frac, adc_bits, dac_bits, weight_bits, leak_tau_s: profile fields.
        h: dt/τ of the circuit (τ is set to dt / h).
        n_steps: PC-dynamics steps after the forward phase (the output free).
    """

    profile: str = "analog-rram-clocked"
    dataset: str = "mnist"
    depth: int = 9
    width: int = 128
    epochs: float = 1.0
    seed: int = 0
    samples: int = 1000
    read_noise_frac: float | None = None
    out_noise_frac: float | None = None
    adc_bits: int | None = None
    dac_bits: int | None = None
    weight_bits: int | None = None
    h: float | None = None
    n_steps: int = 0
    leak_tau_s: float | None = None


GRID = {"read_noise_frac": [0.0, 0.02, 0.05, 0.1, 0.2], "weight_bits": [0, 6, 4, 3]}


def run(config: Config) -> dict:
    """Circuit test accuracy and joules per inference at one parameter setting."""
    from experiments.deploy import deploy
    from experiments.trained import get_trained
    from pchw.data import load_dataset
    from pchw.profiles import load_profile

    base = load_profile(config.profile)
    changes = {f: getattr(config, f) for f in ("read_noise_frac", "out_noise_frac", "adc_bits", "dac_bits",
                                                "weight_bits", "leak_tau_s") if getattr(config, f) is not None}
    profile = base.replace(**changes, source="hardware-sweep point") if changes else base
    tau_s = profile.dt_s / config.h if config.h is not None else None
    net = get_trained(model="mupc", dataset=config.dataset, depth=config.depth, width=config.width,
                      epochs=config.epochs, seed=config.seed)
    data = load_dataset(config.dataset)
    n = config.samples
    result = deploy(net.spec, net.weights, data.x_test[:n], data.y_test[:n], profile=profile, tau_s=tau_s,
                    n_steps=config.n_steps, seed=config.seed)
    return {"test_acc": result.accuracy, "test_samples": result.n_samples,
            "software_test_acc": result.software_accuracy,
            "agreement": result.agreement, "energy_j": result.energy.total_j, "dominant": result.energy.dominant(),
            "max_grad": result.max_grad}




def _swept(table: list[dict]) -> list[str]:
    """The Config fields that take more than one value in the table (as p_<field> columns)."""
    return [f.name for f in fields(Config) if len({str(param(r, f.name)) for r in table}) > 1]


def _levels(rows: list[dict], name: str) -> list:
    """The values a swept field takes, in axis order (for bits: 3, 4, …, then float last)."""
    values = {number(param(r, name)) for r in rows}
    if name == "weight_bits":
        return sorted(values, key=lambda v: (v == 0, v))
    return sorted(values)


def _tick(name: str, v: float) -> str:
    if name == "weight_bits" and v == 0:
        return "float"
    return f"{v:g}"


def _axis(ax, rows: list[dict], name: str, which: str = "x") -> list:
    """Label an axis of field ``name`` with its unit; categorical fields get one evenly spaced tick per level."""
    levels = _levels(rows, name)
    setter = ax.set_xticks if which == "x" else ax.set_yticks
    setter(range(len(levels)), [_tick(name, v) for v in levels])
    (ax.set_xlabel if which == "x" else ax.set_ylabel)(UNITS.get(name, name))
    return levels


def _accuracy_interval(r: dict) -> tuple[float, float, float]:
    """(accuracy, lower, upper) in percent, the 95 % Wilson interval over the row's test samples."""
    acc, n = number(r.get("test_acc")), number(r.get("test_samples"))
    lo, hi = wilson_interval(acc, int(n)) if math.isfinite(n) else (float("nan"), float("nan"))
    return 100 * acc, 100 * lo, 100 * hi


def _heatmap(plt, rows: list[dict], fx: str, fy: str, others: list[str], path: Path) -> None:
    """Accuracy over fx × fy; with more swept fields, each cell is the mean over their settings (the title says so)."""
    xs, ys = _levels(rows, fx), _levels(rows, fy)
    cells: dict[tuple[int, int], list[float]] = {}
    for r in rows:
        key = (ys.index(number(param(r, fy))), xs.index(number(param(r, fx))))
        cells.setdefault(key, []).append(100 * number(r.get("test_acc")))
    grid = np.full((len(ys), len(xs)), np.nan)
    for (i, j), accs in cells.items():
        grid[i, j] = float(np.mean(accs))
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    im = ax.imshow(grid, origin="lower", cmap="viridis", aspect="auto")
    _axis(ax, rows, fx, "x")
    _axis(ax, rows, fy, "y")
    for (i, j), v in np.ndenumerate(grid):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="w", fontsize=8)
    fig.colorbar(im, ax=ax, label="circuit test accuracy (%)" + (", mean" if others else ""))
    ax.set_title("accuracy over the swept circuit parameters"
                 + (f"\n(each cell: mean over {', '.join(others)})" if others else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _sensitivity(plt, rows: list[dict], f: str, others: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    levels = _levels(rows, f)
    categorical = f in CATEGORICAL
    groups: dict = {}
    for r in rows:
        groups.setdefault(tuple(number(param(r, g)) for g in others), []).append(r)
    for key, members in sorted(groups.items()):
        members = sorted(members, key=lambda r: levels.index(number(param(r, f))))
        xs = [levels.index(number(param(r, f))) if categorical else number(param(r, f)) for r in members]
        acc, lo, hi = np.array([_accuracy_interval(r) for r in members]).T
        label = ", ".join(f"{g}={_tick(g, v)}" for g, v in zip(others, key)) or None
        ax.errorbar(xs, acc, yerr=[acc - lo, hi - acc], fmt="o-", capsize=3, label=label)
    if categorical:
        _axis(ax, rows, f, "x")
    else:
        ax.set_xlabel(UNITS.get(f, f))
    ax.set_ylabel("circuit test accuracy (%, 95 % CI)")
    ax.grid(alpha=0.3)
    if others:
        ax.legend(fontsize=7)
    ax.set_title(f"sensitivity to {f}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot(table: list[dict], outdir: Path) -> list[Path]:
    """A heat map of accuracy over the first two swept fields, and a sensitivity line per field."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rows = [r for r in table if r.get("test_acc") not in (None, "")]
    swept = _swept(rows)
    paths: list[Path] = []
    if len(swept) >= 2:
        paths.append(outdir / f"heatmap_{swept[0]}_{swept[1]}.png")
        _heatmap(plt, rows, swept[0], swept[1], swept[2:], paths[-1])
    for f in swept:
        paths.append(outdir / f"sensitivity_{f}.png")
        _sensitivity(plt, rows, f, [g for g in swept if g != f], paths[-1])
    return paths


def _setting(r: dict, swept: list[str]) -> str:
    return ", ".join(f"{f} {_tick(f, number(param(r, f)))}" for f in swept)


def describe(table: list[dict]) -> dict[str, str]:
    """One sentence per figure: the best and worst settings with their accuracies and sample counts."""
    rows = [r for r in table if math.isfinite(number(r.get("test_acc")))]
    swept = _swept(rows)
    if not rows or not swept:
        return {}
    best = max(rows, key=lambda r: number(r["test_acc"]))
    worst = min(rows, key=lambda r: number(r["test_acc"]))
    n = sorted({int(number(r.get("test_samples"))) for r in rows if math.isfinite(number(r.get("test_samples")))})
    n_text = f"n = {'/'.join(map(str, n))} test samples per point" if n else "sample count not recorded"
    span = (f"from {100 * number(best['test_acc']):.1f} % ({_setting(best, swept)}) down to "
            f"{100 * number(worst['test_acc']):.1f} % ({_setting(worst, swept)})")
    out = {}
    if len(swept) >= 2:
        mean = f", each cell the mean over {', '.join(swept[2:])}" if len(swept) > 2 else ""
        out[f"heatmap_{swept[0]}_{swept[1]}.png"] = (
            f"Circuit test accuracy of the trained μPC network on {param(best, 'profile')} over {swept[0]} × "
            f"{swept[1]} ({len(rows)} points, {n_text}{mean}): single points range {span}.")
    for f in swept:
        by_level = {v: [number(r["test_acc"]) for r in rows if number(param(r, f)) == v] for v in _levels(rows, f)}
        means = {v: 100 * float(np.mean(a)) for v, a in by_level.items()}
        first, last = _levels(rows, f)[0], _levels(rows, f)[-1]
        out[f"sensitivity_{f}.png"] = (
            f"Accuracy against {UNITS.get(f, f)}, one line per setting of the other swept fields, with 95 % Wilson "
            f"intervals ({n_text}): averaged over those settings it is {means[first]:.1f} % at {_tick(f, first)} and "
            f"{means[last]:.1f} % at {_tick(f, last)}.")
    return out
