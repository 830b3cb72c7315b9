"""insitu-ablation: which non-ideality limits in-situ PC training on a device preset.

Each point trains a μPC network in situ (:func:`simulators.insitu.train_insitu`) on the base
profile with one group of non-idealities switched off (``disable``), and reports test accuracy,
the energy ledger of the whole run and its write pulses. ``none`` is the full preset; the
limiting non-ideality is the one whose removal gains the most accuracy.

Groups (the profile fields they zero):
    converters        quantize_io and out_bound (8-bit DAC/ADC at every clocked step, and the ADC's
                      ±out_bound range that saturates the MVM outputs)
    output_noise      out_noise_frac
    read_noise        read_noise_frac
    programming_noise prog_noise_frac
    mvm               all four above (the MVMs become exact)
    asymmetry         up_down_asym
    soft_bounds       soft_bounds (hard ±w_max bounds instead; an asymmetric hard-bounded device has no
                      symmetry point, so this point also runs without zero shift)
    cycle_to_cycle    c2c_frac
    device_to_device  d2d_frac
    pulse_update      dw_min_frac (the update becomes the exact outer product, which also removes
                      asymmetry, soft bounds, c2c and d2d: they act through the pulses)
    all               every group (the ideal circuit at the same dt/τ)

The training options (relaxation steps, update window, zero shift, rates, schedule) are Config
fields; the defaults are the recipe measured best on ``analog-rram-clocked`` (README).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from .framework.table import number, param

NAME = "insitu-ablation"
TITLE = "In-situ training: each non-ideality switched off in turn"
DESCRIPTION = ("In-situ μPC training on a device preset with one group of non-idealities off per point: "
               "accuracy, energy and write pulses, and which non-ideality limits learning.")
profile_fields = ("profile",)

GROUPS: dict[str, dict] = {
    "none": {},
    "converters": {"quantize_io": 0, "out_bound": 0.0},
    "output_noise": {"out_noise_frac": 0.0},
    "read_noise": {"read_noise_frac": 0.0},
    "programming_noise": {"prog_noise_frac": 0.0},
    "mvm": {"quantize_io": 0, "out_bound": 0.0, "out_noise_frac": 0.0, "read_noise_frac": 0.0, "prog_noise_frac": 0.0},
    "asymmetry": {"up_down_asym": 0.0},
    "soft_bounds": {"soft_bounds": 0},
    "cycle_to_cycle": {"c2c_frac": 0.0},
    "device_to_device": {"d2d_frac": 0.0},
    "pulse_update": {"dw_min_frac": 0.0},
}
GROUPS["all"] = {k: v for g in GROUPS.values() for k, v in g.items()}


@dataclass(frozen=True)
class Config:
    """One ablation point.

    Attributes:
        disable: the group of non-idealities switched off (see the module docstring).
        profile: base circuit profile (preset name or TOML path).
        dataset, depth, width, seed, batch_size: the network and data order.
        iters: weight updates (``None`` → one epoch).
        n_steps, update_window, zero_shift, h, param_lr, hidden_lr_mult, lr_schedule: the in-situ
            recipe (:class:`simulators.insitu.InsituConfig`).
        n_test: test images (``None`` → all).
        test_every: test accuracy is measured this often (its best value is reported too).
    """

    disable: str = "none"
    profile: str = "analog-rram-clocked"
    dataset: str = "mnist"
    depth: int = 5
    width: int = 128
    seed: int = 0
    batch_size: int = 64
    iters: int | None = None
    n_steps: int = 420
    update_window: int = 400
    zero_shift: bool = True
    h: float | None = None
    param_lr: float = 0.03
    hidden_lr_mult: float = 30.0
    lr_schedule: str = "cosine"
    n_test: int | None = None
    test_every: int = 100


GRID = {"disable": list(GROUPS)}


def ablated_profile(base, disable: str):
    """``base`` with the fields of group ``disable`` zeroed."""
    if disable not in GROUPS:
        raise ValueError(f"disable={disable!r} is not one of: {', '.join(GROUPS)}")
    changes = GROUPS[disable]
    return base.replace(**changes, source=f"insitu-ablation: {disable} off") if changes else base


def run(config: Config) -> dict:
    """Train in situ with one group of non-idealities off; accuracy, energy, write pulses."""
    from pchw.profiles import load_profile
    from simulators.insitu import InsituConfig, train_insitu

    profile = ablated_profile(load_profile(config.profile), config.disable)
    zero_shift = config.zero_shift and bool(profile.soft_bounds or profile.up_down_asym == 0)
    # every field but ``disable`` is an InsituConfig field of the same name and meaning
    shared = {f.name: getattr(config, f.name) for f in fields(config) if f.name != "disable"}
    ic = InsituConfig(**(shared | {"zero_shift": zero_shift}))
    result = train_insitu(ic, profile=profile)
    accs = [float(r["test_acc"]) for r in result.history.rows if r.get("test_acc") not in (None, "")]
    examples = result.iterations * config.batch_size
    return {"test_acc": result.test_acc, "best_test_acc": max(accs) if accs else result.test_acc,
            "energy_j": result.energy_j, "j_per_example": result.energy_j / examples,
            "write_pulses": result.write_pulses, "iterations": result.iterations, "train_wall_s": result.wall_s,
            "zero_shift_used": zero_shift,
            "dominant": max(result.energy_components_j, key=result.energy_components_j.get)}


def summary(table: list[dict]) -> list[dict]:
    """Rows in GROUPS order with the accuracy gained over the full preset (``none``)."""
    rows = {param(r, "disable"): r for r in table if param(r, "disable") in GROUPS and r.get("test_acc") not in
            (None, "")}
    full = number(rows["none"]["test_acc"]) if "none" in rows else float("nan")
    return [{"disable": g, "test_acc": number(rows[g]["test_acc"]), "gain": number(rows[g]["test_acc"]) - full,
             "j_per_example": number(rows[g].get("j_per_example"))} for g in GROUPS if g in rows]


def limiting(table: list[dict]) -> str | None:
    """The single group (``mvm``, ``pulse_update`` and ``all`` aside) whose removal gains the most."""
    singles = [r for r in summary(table) if r["disable"] not in ("none", "mvm", "pulse_update", "all")
               and np.isfinite(r["gain"])]
    return max(singles, key=lambda r: r["gain"])["disable"] if singles else None


def plot(table: list[dict], outdir: Path) -> list[Path]:
    """Bars of the accuracy change per switched-off group against the full preset, 90 % marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rows = summary(table)
    if not rows:
        return []
    names = [r["disable"] for r in rows]
    accs = [100 * r["test_acc"] for r in rows]
    full = next((a for n, a in zip(names, accs) if n == "none"), None)
    base = full if full is not None else 0.0
    gains = [a - base for a in accs]
    # a change in points against the full preset; a collapse is drawn clipped, its accuracy printed
    top = max(max(gains), 90 - base, 0.0) + 1.5
    floor = -max(5.0, 0.5 * top)
    shown = [max(g, floor) for g in gains]
    colors = ["tab:grey" if n == "none" else "tab:green" if n in ("mvm", "pulse_update", "all") else "tab:blue"
              for n in names]
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(rows) + 1.6))
    ax.barh(range(len(rows)), shown, color=colors, hatch=["//" if g < floor else "" for g in gains])
    for i, (a, g, v) in enumerate(zip(accs, gains, shown)):
        label = f"{a:.1f} %" + (f" ({g:+.1f}, clipped)" if g < floor else "")
        ax.text(max(v, 0.0) + 0.1, i, label, va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [f"{n} off" if n != "none" else "full preset" for n in names])
    ax.invert_yaxis()
    ax.axvline(0, color="tab:grey", lw=1)
    if full is not None:
        ax.axvline(90 - base, color="red", ls="--", lw=1, label="90 % accuracy")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    ax.set_xlim(floor, top + 1.5)
    ax.set_xlabel(f"test accuracy change against the full preset ({base:.1f} %), points")
    worst = limiting(table)
    gain = next((r["gain"] for r in rows if r["disable"] == worst), float("nan"))
    ax.set_title("In-situ training with each non-ideality switched off"
                 + (f"\nlimiting: {worst} ({100 * gain:+.1f} points when off)" if worst else ""), fontsize=10)
    fig.tight_layout()
    path = outdir / "insitu_ablation.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]
