"""device-realism: what each piece of device physics does to a μPC network on an analog crossbar.

One point is one effect of ``analog-rram-clocked-realistic`` switched on alone on top of the base
preset (``analog-rram-clocked``), or all of them (the realistic preset itself), or none, at one seed:

- ``correlated-read-noise``: the read noise is 1/f over a band of correlation times, not white;
- ``state-dependent-read-noise``: each device's read noise grows as g^0.35 (aihwkit's PCM form);
- ``state-dependent-programming``: programming noise σ_p(g) of aihwkit's PCM fit;
- ``conductance-pairs``: weights on differential pairs clamped at g_min = 0;
- ``ir-drop``: the first-order IR drop of the lines (0.35 Ω per segment at 5 µS);
- ``asymmetry-spread``: each device's up/down asymmetry scattered (in situ only: it acts on updates).

``mode="deploy"`` deploys the software-trained μPC network (cached, :mod:`experiments.trained`) through
the chip's forward sweep on ``n_test`` test images; ``mode="insitu"`` trains it on the chip
(:mod:`experiments.insitu_runs`, the default recipe) and measures the trained chip. The values of every
effect are read from the realistic preset, with their sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

NAME = "device-realism"
TITLE = "Device realism: each effect of the realistic RRAM preset alone, and all together"
BASE = "analog-rram-clocked"
REALISTIC = "analog-rram-clocked-realistic"
EFFECTS = {
    "none": (),
    "correlated-read-noise": ("read_noise_tau_min_s", "read_noise_tau_max_s"),
    "state-dependent-read-noise": ("read_noise_state_exp",),
    "state-dependent-programming": ("prog_noise_lin", "prog_noise_quad"),
    "conductance-pairs": ("differential_pairs", "g_min_frac"),
    "ir-drop": ("wire_r_ohm", "g_max_siemens"),
    "asymmetry-spread": ("asym_d2d_frac",),
    "all": None,
}
profile_fields = ()


@dataclass(frozen=True)
class Config:
    """One point.

    Attributes:
        effect: one of :data:`EFFECTS` (``none``: the base preset; ``all``: the realistic preset).
        mode: ``deploy`` (a software-trained network on the chip) or ``insitu`` (trained on the chip).
        seed: the chip's seed (programming and every noise draw) and, in situ, the training seed.
        dataset, depth, width, epochs: the network and its training.
        n_train: training examples of in-situ runs (None: all); n_test: test images (None: all).
    """

    effect: str = "all"
    mode: str = "deploy"
    seed: int = 0
    dataset: str = "mnist"
    depth: int = 5
    width: int = 128
    epochs: float = 1.0
    n_train: int | None = None
    n_test: int | None = None

    def __post_init__(self) -> None:
        if self.effect not in EFFECTS:
            raise ValueError(f"effect={self.effect!r} is not one of: {', '.join(EFFECTS)}")
        if self.mode not in ("deploy", "insitu"):
            raise ValueError(f"mode={self.mode!r} is not one of: deploy, insitu")


GRID = {"effect": list(EFFECTS), "seed": [0, 1, 2]}


def effect_profile(effect: str):
    """The base preset with ``effect``'s fields taken from the realistic preset (sources included)."""
    from pchw.profiles import load_profile

    base, realistic = load_profile(BASE), load_profile(REALISTIC)
    names = EFFECTS[effect]
    if names is None:
        return realistic
    if not names:
        return base
    import dataclasses

    changes = {n: getattr(realistic, n) for n in names}
    return dataclasses.replace(base, name=f"{BASE}+{effect}", **changes,
                               sources={**base.sources, **{n: realistic.sources[n] for n in names}})


def run(config: Config) -> dict:
    """The chip's test accuracy (with its 95% interval) and joules per inference for one effect and seed."""
    from pchw.stats import wilson_interval

    profile = effect_profile(config.effect)
    if config.mode == "deploy":
        acc, n, energy = _deploy(config, profile)
    else:
        acc, n, energy = _in_situ(config, profile)
    low, high = wilson_interval(acc, n)
    return {"effect": config.effect, "mode": config.mode, "profile": profile.name, "test_acc": acc, "n_test": n,
            "test_acc_ci_low": low, "test_acc_ci_high": high, **energy}


def _deploy(config: Config, profile) -> tuple[float, int, dict]:
    from experiments.deploy import deploy
    from experiments.trained import get_trained
    from pchw.data import load_dataset

    net = get_trained(model="mupc", dataset=config.dataset, depth=config.depth, width=config.width,
                      epochs=config.epochs, seed=0)
    data = load_dataset(config.dataset, n_test=config.n_test)
    r = deploy(net.spec, net.weights, data.x_test, data.y_test, profile=profile, seed=config.seed, chunk=2000)
    return r.accuracy, r.n_samples, {"inference_energy_j": r.energy.total_j, "software_test_acc": r.software_accuracy}


def _in_situ(config: Config, profile) -> tuple[float, int, dict]:
    from experiments.insitu_runs import get_insitu
    from simulators.insitu import InsituConfig

    run = get_insitu(InsituConfig(profile=BASE, dataset=config.dataset, depth=config.depth, width=config.width,
                                  epochs=config.epochs, n_train=config.n_train, n_test=config.n_test,
                                  seed=config.seed, test_every=10**9), profile=profile)
    return run.test_acc, run.n_test, {"train_energy_j": run.energy_per_example_j,
                                      "inference_energy_j": run.inference_energy_j, "recipe": run.config.recipe}


def summary(table: list[dict]) -> list[dict]:
    """Mean ± std over seeds of each (effect, mode), and the change against ``none``."""
    groups: dict = {}
    for r in table:
        if r.get("test_acc") in (None, ""):
            continue
        groups.setdefault((r["effect"], r["mode"]), []).append(float(r["test_acc"]))
    out = []
    for (effect, mode), accs in groups.items():
        base = groups.get(("none", mode))
        out.append({"effect": effect, "mode": mode, "seeds": len(accs), "mean_acc": float(np.mean(accs)),
                    "std_acc": float(np.std(accs, ddof=1)) if len(accs) > 1 else float("nan"),
                    "change_vs_none": float(np.mean(accs) - np.mean(base)) if base else float("nan")})
    order = list(EFFECTS)
    return sorted(out, key=lambda r: (r["mode"], order.index(r["effect"])))


def describe(table: list[dict]) -> dict[str, str]:
    rows = summary(table)
    if not rows:
        return {}
    worst = min((r for r in rows if r["effect"] not in ("none", "all")), key=lambda r: r["change_vs_none"],
                default=None)
    all_row = next((r for r in rows if r["effect"] == "all"), None)
    text = "Test accuracy of the chip with each device effect alone and all together (mean ± std over seeds)"
    if worst is not None and all_row is not None:
        text += (f"; {worst['effect']} costs most alone ({100 * worst['change_vs_none']:+.2f} points), all together "
                 f"{100 * all_row['change_vs_none']:+.2f} points")
    return {"device_realism.png": text + "."}


def plot(table: list[dict], outdir: Path) -> list[Path]:
    """Accuracy change against the base preset per effect (categorical axis), error bars = std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary(table)
    if not rows:
        return []
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    modes = sorted({r["mode"] for r in rows})
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(modes)
    for k, mode in enumerate(modes):
        sel = [r for r in rows if r["mode"] == mode]
        x = np.arange(len(sel)) + k * width
        ax.bar(x, [100 * r["mean_acc"] for r in sel], width, yerr=[100 * np.nan_to_num(r["std_acc"]) for r in sel],
               capsize=3, label=mode)
        ax.set_xticks(np.arange(len(sel)) + width * (len(modes) - 1) / 2, [r["effect"] for r in sel], rotation=25,
                      ha="right", fontsize=8)
    accs = [100 * r["mean_acc"] for r in rows]
    ax.set_ylim(max(0.0, min(accs) - 5), min(100.0, max(accs) + 2))
    ax.set_ylabel("chip test accuracy (%), mean ± std over seeds")
    ax.set_title(f"{BASE} with each effect of {REALISTIC}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    path = outdir / "device_realism.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]
