"""hardware-sweep: accuracy and energy of a trained μPC network over grids of circuit parameters.

Each point deploys the same trained network (cached, :mod:`experiments.trained`) on the base
profile with some fields changed — read noise, converter bits, weight bits, dt/τ, PC steps,
integrator leak — and reports the circuit's test accuracy and joules per inference. With two
swept fields the figure is a heat map; every swept field also gets a sensitivity line.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from .framework.table import number, param

NAME = "hardware-sweep"
TITLE = "Hardware sweep: how circuit parameters move accuracy and energy"
SWEEPABLE = ("read_noise_frac", "out_noise_frac", "adc_bits", "dac_bits", "weight_bits", "h", "n_steps",
             "leak_tau_s")
profile_fields = ("profile",)


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
    return {"test_acc": result.accuracy, "software_test_acc": result.software_accuracy,
            "agreement": result.agreement, "energy_j": result.energy.total_j, "dominant": result.energy.dominant(),
            "max_grad": result.max_grad}


def _swept(table: list[dict]) -> list[str]:
    """The Config fields that take more than one value in the table (as p_<field> columns)."""
    out = []
    for f in fields(Config):
        values = {str(r.get(f"p_{f.name}", r.get(f.name))) for r in table}
        if len(values) > 1:
            out.append(f.name)
    return out


def _value(r: dict, name: str) -> float:
    return number(param(r, name))


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
        fx, fy = swept[:2]
        xs = sorted({_value(r, fx) for r in rows})
        ys = sorted({_value(r, fy) for r in rows})
        grid = np.full((len(ys), len(xs)), np.nan)
        for r in rows:
            grid[ys.index(_value(r, fy)), xs.index(_value(r, fx))] = 100 * float(r["test_acc"])
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        im = ax.imshow(grid, origin="lower", cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs])
        ax.set_yticks(range(len(ys)), [f"{v:g}" for v in ys])
        ax.set_xlabel(fx)
        ax.set_ylabel(fy)
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="w", fontsize=8)
        fig.colorbar(im, ax=ax, label="circuit test accuracy (%)")
        ax.set_title("accuracy over the swept circuit parameters")
        fig.tight_layout()
        paths.append(outdir / f"heatmap_{fx}_{fy}.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    for f in swept:
        others = [g for g in swept if g != f]
        fig, ax = plt.subplots(figsize=(6, 4))
        groups: dict = {}
        for r in rows:
            groups.setdefault(tuple(_value(r, g) for g in others), []).append(r)
        for key, members in sorted(groups.items()):
            members = sorted(members, key=lambda r: _value(r, f))
            label = ", ".join(f"{g}={v:g}" for g, v in zip(others, key)) or None
            ax.plot([_value(r, f) for r in members], [100 * float(r["test_acc"]) for r in members], "o-", label=label)
        ax.set_xlabel(f)
        ax.set_ylabel("circuit test accuracy (%)")
        ax.grid(alpha=0.3)
        if others:
            ax.legend(fontsize=7)
        ax.set_title(f"sensitivity to {f}")
        fig.tight_layout()
        paths.append(outdir / f"sensitivity_{f}.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths
