"""noise-correlation: deploy and in-situ accuracy against the correlation time of the read noise.

PC's in-situ recipe on noisy arrays averages the error neurons over a window of the relaxation, which
divides white read noise by √W; read noise that stays correlated over the window does not average.
One point is one correlation time τ_c of the read noise of ``profile`` (a single Ornstein–Uhlenbeck
process of the same variance; 0 = white) and one mode: ``deploy`` puts the software-trained μPC
network on the chip (a forward sweep reads each crossbar once, so only the noise's variance can
matter) and ``insitu`` trains it on the chip with the profile's default recipe (the window). The
figure marks the relaxation's length, n_steps · dt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

NAME = "noise-correlation"
TITLE = "Read-noise correlation time: what PC's averaging can and cannot remove"
profile_fields = ("profile",)


@dataclass(frozen=True)
class Config:
    """One point.

    Attributes:
        tau_s: correlation time of the read noise (s); 0 = white.
        mode: ``deploy`` or ``insitu``.
        profile: the base circuit (its read_noise_frac and dt_s).
        dataset, depth, width, epochs, seed: the network and its training.
        n_train: training examples of in-situ runs (None: all); n_test: test images (None: all).
    """

    tau_s: float = 0.0
    mode: str = "insitu"
    profile: str = "analog-rram-clocked"
    dataset: str = "mnist"
    depth: int = 5
    width: int = 128
    epochs: float = 1.0
    seed: int = 0
    n_train: int | None = 12800
    n_test: int | None = 2000

    def __post_init__(self) -> None:
        if self.mode not in ("deploy", "insitu"):
            raise ValueError(f"mode={self.mode!r} is not one of: deploy, insitu")
        if not (self.tau_s >= 0):
            raise ValueError(f"tau_s={self.tau_s!r} must be >= 0 (0 = white read noise)")


GRID = {"tau_s": [0.0, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4], "mode": ["deploy", "insitu"]}


def correlated(profile_name: str, tau_s: float):
    from pchw.profiles import load_profile

    base = load_profile(profile_name)
    if tau_s == 0:
        return base
    return base.replace(read_noise_tau_min_s=tau_s, read_noise_tau_max_s=tau_s, read_noise_processes=1,
                        source="noise-correlation point").replace(name=f"{base.name}+tau{tau_s:g}")


def run(config: Config) -> dict:
    from experiments.deploy import deploy
    from experiments.insitu_runs import get_insitu
    from experiments.trained import get_trained
    from pchw.data import load_dataset
    from pchw.stats import wilson_interval
    from simulators.insitu import InsituConfig

    profile = correlated(config.profile, config.tau_s)
    row = {"tau_s": config.tau_s, "mode": config.mode, "dt_s": profile.dt_s}
    if config.mode == "deploy":
        net = get_trained(model="mupc", dataset=config.dataset, depth=config.depth, width=config.width,
                          epochs=config.epochs, seed=config.seed)
        data = load_dataset(config.dataset, n_test=config.n_test)
        r = deploy(net.spec, net.weights, data.x_test, data.y_test, profile=profile, seed=config.seed, chunk=2000)
        acc, n = r.accuracy, r.n_samples
    else:
        run_ = get_insitu(InsituConfig(profile=config.profile, dataset=config.dataset, depth=config.depth,
                                       width=config.width, epochs=config.epochs, n_train=config.n_train,
                                       n_test=config.n_test, seed=config.seed, test_every=10**9), profile=profile)
        acc, n = run_.test_acc, run_.n_test
        row.update(relaxation_s=run_.config.n_steps * profile.dt_s, window_steps=run_.config.update_window,
                   train_energy_j=run_.energy_per_example_j)
    low, high = wilson_interval(acc, n)
    return row | {"test_acc": acc, "n_test": n, "test_acc_ci_low": low, "test_acc_ci_high": high}


def _rows(table, mode):
    rows = [r for r in table if r.get("mode") == mode and r.get("test_acc") not in (None, "")]
    return sorted(rows, key=lambda r: float(r["tau_s"]))


def describe(table: list[dict]) -> dict[str, str]:
    ins = _rows(table, "insitu")
    if len(ins) < 2:
        return {}
    white = next((r for r in ins if float(r["tau_s"]) == 0), ins[0])
    worst = min(ins, key=lambda r: float(r["test_acc"]))
    return {"noise_correlation.png": (
        f"Chip test accuracy ({int(float(white['n_test']))} test images, 95% intervals) against the read noise's "
        f"correlation time: trained in situ, {100 * float(white['test_acc']):.1f}% with white noise and "
        f"{100 * float(worst['test_acc']):.1f}% at τ = {float(worst['tau_s']):.3g} s — noise correlated over the "
        f"relaxation does not average out of the update — while a deployed network's one-read sweep does not care.")}


def plot(table: list[dict], outdir: Path) -> list[Path]:
    """Accuracy against τ_c (log x, white noise drawn at the left edge), deploy and in situ."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    series = {m: _rows(table, m) for m in ("deploy", "insitu")}
    if not any(series.values()):
        return []
    taus = [float(r["tau_s"]) for rows in series.values() for r in rows if float(r["tau_s"]) > 0]
    white_x = min(taus) / 10 if taus else 1e-9
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for mode, rows in series.items():
        if not rows:
            continue
        x = np.array([float(r["tau_s"]) or white_x for r in rows])
        y = np.array([100 * float(r["test_acc"]) for r in rows])
        low = np.array([100 * float(r["test_acc_ci_low"]) for r in rows])
        high = np.array([100 * float(r["test_acc_ci_high"]) for r in rows])
        err = [y - low, high - y]
        ax.errorbar(x, y, yerr=err, fmt="o-", capsize=3, label="trained in situ" if mode == "insitu" else "deployed")
    relax = [float(r["relaxation_s"]) for r in series["insitu"] if r.get("relaxation_s") not in (None, "")]
    if relax:
        ax.axvline(relax[0], color="k", ls=":", lw=1, label=f"relaxation {relax[0]:.2g} s")
    ax.set_xscale("log")
    ax.set_xlabel("read-noise correlation time τ_c (s, log scale; leftmost point: white noise)")
    ax.set_ylabel("chip test accuracy (%), 95% interval")
    ax.set_title("Correlated read noise against PC's update window")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    path = outdir / "noise_correlation.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]
