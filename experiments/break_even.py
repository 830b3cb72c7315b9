"""break-even: the analog price at which PC trained on analog hardware costs what backprop costs.

One point is one price ("knob") of the analog profile: the energy of one crossbar cell read
(an analog MAC, ``e_cell_read_j``), of one ADC conversion (``e_adc_j``), of one DAC conversion
(``e_dac_j``), and the other circuit prices. It starts from two **measured** training runs
(:mod:`experiments.measured`): μPC trained in situ on the analog profile (its default recipe) and
backprop on the reference profile (``gpu-bf16`` by default: software training; or a circuit
profile: in-situ analog SGD). Their events per training example are the runs' own ledgers, so
re-pricing them is exact: every price enters the energy linearly (:func:`pchw.events.price`),
and with the other prices held fixed PC's joules per training example are

    E_pc(k) = E_rest + k · n_k,

E_rest the energy with the knob priced at zero and n_k the events the knob prices per example
(cell reads, conversions at the profile's resolution). The break-even value is

    k* = (E_bp − E_rest) / n_k,

and the row re-prices PC at k* (``check_pc_energy_at_break_even_j``) to confirm it equals E_bp.
If E_rest ≥ E_bp the knob alone cannot bring PC down to backprop (k* would be negative): k* is
NaN and ``note`` says so; likewise when the knob prices no event of PC training (n_k = 0).
"Equal accuracy" is judged, not tuned: both runs' measured accuracies, their test-image counts
and their gap are in the row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .framework.table import value

NAME = "break-even"
TITLE = "Break-even: analog prices at which PC trained in situ matches backprop"
DESCRIPTION = ("Each point starts from two measured training runs — μPC trained in situ on the analog profile and "
               "backprop on the reference profile — and solves, in closed form (energy is linear in every price), for "
               "the price of one analog event at which μPC's training example costs what backprop's does.")
# knob (profile field) → the energy component it prices (pchw.events.price)
KNOBS = {
    "e_cell_read_j": "crossbar_read",
    "e_adc_j": "adc",
    "e_dac_j": "dac",
    "e_neuron_update_j": "neuron",
    "e_write_pulse_j": "write",
    "p_static_w": "static",
}
profile_fields = ("profile", "reference")


@dataclass(frozen=True)
class Config:
    """One break-even point.

    Attributes:
        knob: the analog profile's price to solve for (``e_cell_read_j``, ``e_adc_j``, ``e_dac_j``;
            also ``e_neuron_update_j``, ``e_write_pulse_j``, ``p_static_w``).
        dataset: ``mnist``, ``fashion-mnist`` or ``synthetic``.
        depth, width: the network (weight matrices L, hidden width N), the same for PC and BP.
        epochs: training epochs of both runs; n_train, n_test: their data (None: all).
        batch_size: samples per weight update (an update's cost is shared by the batch).
        profile: analog profile PC trains on in situ (preset name or TOML path).
        reference: profile backprop trains on (software on a digital one, in situ on a circuit).
        seed: training seed.
    """

    knob: Literal["e_cell_read_j", "e_adc_j", "e_dac_j", "e_neuron_update_j", "e_write_pulse_j",
                  "p_static_w"] = "e_cell_read_j"
    dataset: str = "mnist"
    depth: int = 5
    width: int = 128
    epochs: float = 1.0
    n_train: int | None = None
    n_test: int | None = None
    batch_size: int = 64
    profile: str = "analog-rram-clocked"
    reference: str = "gpu-bf16"
    seed: int = 0


GRID = {"knob": ["e_cell_read_j", "e_adc_j", "e_dac_j"]}


def run(config: Config) -> dict:
    """The knob's break-even value, the measured energies it balances and both accuracies."""
    from experiments.measured import measure
    from pchw.events import price
    from pchw.profiles import load_profile

    if config.knob not in KNOBS:
        raise ValueError(f"knob={config.knob!r} is not one of: {', '.join(KNOBS)}")
    analog = load_profile(config.profile)
    if not analog.is_circuit:
        raise ValueError(f"profile {analog.name} is digital; break-even solves for a circuit's price")
    shape = dict(dataset=config.dataset, depth=config.depth, width=config.width, epochs=config.epochs,
                 n_train=config.n_train, n_test=config.n_test, batch_size=config.batch_size, seed=config.seed)
    pc, bp = measure("pc", config.profile, **shape), measure("bp", config.reference, **shape)

    def pc_at(value: float):
        return price(pc.counts_per_example, analog.replace(**{config.knob: float(value)},
                                                           source="break-even re-pricing"))

    component = KNOBS[config.knob]
    e_bp_report, now = bp.train_report(), pc.train_report()
    e_bp = e_bp_report.total_j
    e_rest = pc_at(0.0).total_j
    count = pc_at(1.0).components_j.get(component, 0.0)  # events per example priced by the knob (at 1 J each)
    note = ""
    if count <= 0:
        k_star = math.nan
        note = f"PC training on {analog.name} has no events priced by {config.knob}: it cannot move the energy"
    elif e_rest > e_bp:
        k_star = math.nan
        note = (f"with {config.knob} = 0 PC still costs {e_rest:.3g} J/example > BP's {e_bp:.3g} J on "
                f"{bp.profile.name}: no value of {config.knob} alone breaks even")
    else:
        k_star = (e_bp - e_rest) / count
    current = float(getattr(analog, config.knob))
    return {
        "knob": config.knob, "analog_profile": analog.name, "reference_profile": bp.profile.name,
        "knob_current_j": current, "break_even_j": k_star,
        "current_over_break_even": current / k_star if math.isfinite(k_star) and k_star > 0 else math.nan,
        "knob_events_per_example": count, "bp_train_energy_j": e_bp, "pc_train_energy_j": now.total_j,
        "pc_over_bp_energy": now.total_j / e_bp if e_bp > 0 else math.nan, "pc_rest_energy_j": e_rest,
        "pc_knob_share": (current * count) / now.total_j if now.total_j > 0 else math.nan,
        "check_pc_energy_at_break_even_j": pc_at(k_star).total_j if math.isfinite(k_star) else math.nan,
        "pc_dominant": now.dominant(), "bp_dominant": e_bp_report.dominant(),
        "pc_test_acc": pc.test_acc, "pc_n_test": pc.n_test, "pc_training": f"{pc.training}, {pc.recipe}",
        "bp_test_acc": bp.test_acc, "bp_n_test": bp.n_test, "bp_training": f"{bp.training}, {bp.recipe}",
        "acc_gap_pc_minus_bp": pc.test_acc - bp.test_acc, "pc_run": pc.run_dir, "bp_run": bp.run_dir,
        "note": note,
    }


def plot(table: list[dict], outdir: Path) -> list[Path]:
    """PC joules per training example as each knob is scaled (log-log), BP's line, break-even marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rows = [r for r in table
            if math.isfinite(value(r, "bp_train_energy_j")) and value(r, "knob_events_per_example") > 0]
    if not rows:
        return []
    fig, axes = plt.subplots(1, len(rows), figsize=(4.6 * len(rows), 4.2), squeeze=False)
    for ax, r in zip(axes[0], rows):
        knob = str(r.get("knob") or r.get("p_knob"))
        cur, k_star = value(r, "knob_current_j"), value(r, "break_even_j")
        rest, count = value(r, "pc_rest_energy_j"), value(r, "knob_events_per_example")
        e_bp = value(r, "bp_train_energy_j")
        anchors = [v for v in (cur, k_star) if math.isfinite(v) and v > 0] or [e_bp / count]
        ks = np.logspace(math.log10(min(anchors)) - 2, math.log10(max(anchors)) + 2, 200)
        ax.loglog(ks, rest + ks * count, color="tab:blue", label=f"PC on {r.get('analog_profile', 'analog')}")
        ax.axhline(e_bp, color="tab:red", ls="--", label=f"BP on {r.get('reference_profile', 'reference')}")
        if rest > 0:
            ax.axhline(rest, color="tab:blue", ls=":", lw=1, label=f"PC with {knob} = 0")
        if math.isfinite(cur) and cur > 0:
            ax.plot([cur], [rest + cur * count], "o", color="tab:blue", label=f"current {cur:.3g} J")
        if math.isfinite(k_star) and k_star > 0:
            ax.plot([k_star], [e_bp], "*", ms=14, color="k", label=f"break-even {k_star:.3g} J")
            ax.axvline(k_star, color="k", lw=0.8, alpha=0.5)
        else:
            ax.text(0.97, 0.5, "no break-even\nby this knob alone", transform=ax.transAxes, fontsize=8, ha="right")
        ax.set_xlabel(f"{knob} (J)")
        ax.set_ylabel("energy per training example (J)")
        gap = value(r, "acc_gap_pc_minus_bp")
        ax.set_title(f"{knob}" + (f"  (acc. gap PC−BP {100 * gap:+.1f} pt)" if math.isfinite(gap) else ""),
                     fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path = outdir / "break_even.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]


def describe(table: list[dict]) -> dict[str, str]:
    """The sentence under break_even.png: each knob's break-even price against its present value."""
    parts = []
    for r in table:
        knob, k_star, cur = str(r.get("knob") or r.get("p_knob")), value(r, "break_even_j"), value(r, "knob_current_j")
        if math.isfinite(k_star) and k_star > 0:
            parts.append(f"{knob} {k_star:.3g} J ({cur / k_star:.3g}× its present {cur:.3g} J)")
        else:
            parts.append(f"{knob}: no break-even by this price alone")
    if not parts:
        return {}
    r = table[0]
    gap = value(r, "acc_gap_pc_minus_bp")
    return {"break_even.png": (
        f"PC's energy per training example on {r.get('analog_profile')} as one price is scaled (the others fixed), "
        f"against BP's on {r.get('reference_profile')} ({value(r, 'bp_train_energy_j'):.3g} J); PC matches BP at "
        + "; ".join(parts) + (f". The measured runs' test accuracies differ by {100 * gap:+.1f} points "
                               f"(PC − BP; PC {r.get('pc_training')}, BP {r.get('bp_training')})."
                               if math.isfinite(gap) else "."))}
