"""Figures of the ``theory`` experiment, each with a one-sentence result computed from the rows it draws.

Rows come from runs.csv (``p_<field>`` parameters, text cells) or straight from ``run`` (raw values);
they are read through :mod:`experiments.framework.table`. A figure whose check has no rows is skipped.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .framework.table import number, param

ALGO_COLORS = {"pc": "tab:blue", "bp": "tab:red"}
PARAM_MARKERS = {"mupc": "o", "sp": "s"}
ACT_STYLES = {"linear": "-", "relu": "--", "tanh": ":"}


def value(row: dict, name: str) -> float:
    """A numeric cell (parameter or metric) as a float; NaN when empty."""
    return number(param(row, name))


def text(row: dict, name: str) -> str:
    v = param(row, name)
    return "" if v in (None, "", "None") else str(v)


def truthy(row: dict, name: str) -> bool:
    return text(row, name) in ("True", "true", "1")


def rows_of(table: list[dict], check: str) -> list[dict]:
    return sorted((r for r in table if text(r, "check") == check),
                  key=lambda r: (text(r, "act"), text(r, "param"), text(r, "skip_used"), value(r, "depth")))


def _curve(row: dict, name: str) -> list:
    cell = param(row, name)
    if cell in (None, "", "None"):
        return []
    return json.loads(cell) if isinstance(cell, str) else cell


def _groups(rows: list[dict]) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault(f"{text(r, 'param').lower()}{'' if truthy(r, 'skip_used') else ', no skips'}", []).append(r)
    return out


def _save(fig, outdir: Path, name: str, sentence: str, paths: list[Path]) -> None:
    """Write the figure with its result sentence underneath."""
    import matplotlib.pyplot as plt

    fig.text(0.5, 0.01, sentence, ha="center", va="bottom", fontsize=9, wrap=True)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    paths.append(outdir / name)
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)


def plot_all(table: list[dict], outdir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    outdir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    figures = (("energy", (_energy,)), ("conditioning", (_conditioning,)), ("saddle", (_saddle,)),
               ("escape", (_escape_summary, _escape_curves)), ("trust-region", (_trust_region,)))
    for check, draws in figures:
        rows = rows_of(table, check)
        for draw in draws if rows else ():
            draw(rows, outdir, paths)
    return paths


# ---------------------------------------------------------------------------------------------
# closed forms


def _energy(rows, outdir, paths) -> None:
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.4))
    for label, grp in _groups(rows).items():
        ax1.scatter([value(r, "f_closed_form") for r in grp], [value(r, "f_simulated") for r in grp], label=label)
        ax2.plot([value(r, "depth") for r in grp], [max(value(r, "f_rel_diff"), 1e-17) for r in grp], "o-",
                 label=label)
    lo = min(min(value(r, "f_closed_form"), value(r, "f_simulated")) for r in rows)
    hi = max(max(value(r, "f_closed_form"), value(r, "f_simulated")) for r in rows)
    ax1.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    ax1.set_xlabel("F* closed form")
    ax1.set_ylabel("F reached by oracle inference")
    ax1.set_title("equilibrated energy: closed form vs inference")
    ax1.legend(fontsize=7)
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("log")
    ax2.axhline(1e-6, color="grey", ls=":", lw=1)
    ax2.set_xlabel("depth L (weight matrices)")
    ax2.set_ylabel("|F − F*| / F* (floored at 1e-17)")
    ax2.set_title("relative difference (open marker: not converged)", fontsize=9)
    for r in rows:
        if not truthy(r, "converged"):
            ax2.plot([value(r, "depth")], [max(value(r, "f_rel_diff"), 1e-17)], "o", mfc="none", ms=12, color="r")
    ax2.legend(fontsize=7)
    done = [r for r in rows if truthy(r, "converged")]
    worst = max((value(r, "f_rel_diff") for r in done), default=math.nan)
    sentence = (f"Inference converged (certified gap) on {len(done)} of {len(rows)} networks, and there the "
                f"closed-form F* matches the energy it reaches to a relative {worst:.1e} at worst.")
    _save(fig, outdir, "theory_energy.png", sentence, paths)


def _conditioning(rows, outdir, paths) -> None:
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.4))
    groups = _groups(rows)
    for label, grp in groups.items():
        d = [value(r, "depth") for r in grp]
        ax1.plot(d, [value(r, "kappa") for r in grp], "o-", label=label)
        line, = ax2.plot(d, [value(r, "lambda_min") for r in grp], "o-", label=f"{label} λ_min")
        ax2.plot(d, [value(r, "lambda_max") for r in grp], "s--", color=line.get_color(), label=f"{label} λ_max")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("depth L (weight matrices)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    ax1.set_ylabel("condition number κ(H_z)")
    ax1.set_title("activity-Hessian conditioning at init")
    ax2.set_ylabel("eigenvalue")
    ax2.set_title("extreme eigenvalues of H_z")
    deepest = {label: max(grp, key=lambda r: value(r, "depth")) for label, grp in groups.items()}
    parts = [f"{label} {value(r, 'kappa'):.3g}" for label, r in deepest.items()]
    sentence = (f"κ(H_z) grows with depth for every parameterisation; at the largest depth "
                f"(L = {int(max(value(r, 'depth') for r in rows))}) it is {', '.join(parts)}.")
    _save(fig, outdir, "theory_conditioning.png", sentence, paths)


def _saddle(rows, outdir, paths) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5.0))
    labels = [f"L={int(value(r, 'depth'))}\n{text(r, 'param')}" for r in rows]
    pos = np.arange(len(rows))
    ax.bar(pos - 0.2, [value(r, "fstar_min_eig") for r in rows], 0.4, label="λ_min of ∇²F* at W = 0")
    ax.bar(pos + 0.2, [value(r, "mse_min_eig") for r in rows], 0.4, label="λ_min of ∇²(MSE) at W = 0")
    ax.plot(pos - 0.2, [value(r, "fstar_predicted_min_eig") for r in rows], "k_", ms=16, mew=2,
            label="−a_L² λ_max(Σ_yy)")
    for i, r in enumerate(rows):
        if value(r, "mse_max_abs_eig") < 1e-8:
            ax.text(pos[i] + 0.2, 0, "0", ha="center", va="top", fontsize=7, color="tab:orange")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_yscale("symlog", linthresh=1e-6)
    ax.set_xticks(pos, labels, fontsize=7)
    ax.set_ylabel("smallest Hessian eigenvalue (symlog)")
    ax.set_title("the origin: strict saddle of F*, degenerate saddle of the MSE")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    strict = sum(truthy(r, "strict_saddle") for r in rows)
    deep = [r for r in rows if value(r, "depth") >= 3]
    degenerate = sum(truthy(r, "mse_degenerate") for r in deep)
    sentence = (f"The origin is a strict saddle of F* in {strict} of {len(rows)} networks, while the MSE Hessian "
                f"there is exactly zero in {degenerate} of the {len(deep)} with L ≥ 3.")
    _save(fig, outdir, "theory_saddle.png", sentence, paths)


# ---------------------------------------------------------------------------------------------
# escape


def _never_at(budget: float) -> float:
    return budget * 1.6


def _escape_summary(rows, outdir, paths) -> None:
    import matplotlib.pyplot as plt

    acts = sorted({text(r, "act") for r in rows}, key=list(ACT_STYLES).index)
    budget = max(value(r, "iters_budget") for r in rows)
    fig, axes = plt.subplots(len(acts), 2, figsize=(11, 3.9 * len(acts)), squeeze=False)
    for row_axes, act in zip(axes, acts):
        mine = [r for r in rows if text(r, "act") == act]
        for p in sorted({text(r, "param") for r in mine}):
            grp = sorted((r for r in mine if text(r, "param") == p), key=lambda r: value(r, "depth"))
            depth = [value(r, "depth") for r in grp]
            for algo in ("pc", "bp"):
                for ax, key, pred in ((row_axes[0], "leave_iters", "leave_pred"), (row_axes[1], "loss_iters", None)):
                    _iters_line(ax, depth, grp, f"{algo}_{key}", budget, color=ALGO_COLORS[algo],
                                marker=PARAM_MARKERS.get(p, "o"), label=f"{algo.upper()} {p}")
                    if pred:
                        ys = [min(value(r, f"{algo}_{pred}"), _never_at(budget)) for r in grp]
                        ax.plot(depth, ys, ls=":", color=ALGO_COLORS[algo], marker=PARAM_MARKERS.get(p, "o"),
                                mfc="none", ms=9, label=f"{algo.upper()} {p}, predicted")
        for ax, title in zip(row_axes, ("leaving the origin saddle: objective ≤ (1 − drop)·origin",
                                        "learning the map: MSE ≤ threshold × initial")):
            ax.axhline(budget, color="grey", lw=0.8)
            ax.text(2, _never_at(budget), "never within budget", fontsize=7, va="bottom", color="grey")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_ylim(0.7, _never_at(budget) * 2)
            ax.set_xlabel("depth L (weight matrices)")
            ax.set_ylabel("iterations (median; bars: seed range)")
            ax.set_title(f"{act}: {title}", fontsize=9)
            ax.grid(alpha=0.3, which="both")
        row_axes[0].legend(fontsize=6, ncol=2)
    _save(fig, outdir, "theory_escape.png", _escape_sentence(rows, budget), paths)


def _iters_line(ax, depth, grp, key, budget, *, color, marker, label) -> None:
    med = [min(value(r, key), _never_at(budget)) for r in grp]
    lo, hi = [], []
    for r, m in zip(grp, med):
        seeds = [budget * 1.6 if v is None else v for v in _curve(r, f"{key}_seeds")] or [m]
        lo.append(m - min(seeds))
        hi.append(min(max(seeds), _never_at(budget)) - m)
    ax.errorbar(depth, med, yerr=[lo, hi], color=color, marker=marker, ms=5, capsize=2, label=label)


def _escape_sentence(rows: list[dict], budget: float) -> str:
    seeds = int(max(value(r, "seeds_used") for r in rows))

    def summary(algo: str, key: str, *, name_misses: bool = False) -> str:
        done = [r for r in rows if math.isfinite(value(r, f"{algo}_{key}"))]
        out = f"{len(done)}/{len(rows)} cases" + (f" (L ≤ {max(int(value(r, 'depth')) for r in done)})" if done else "")
        misses: dict = {}
        for r in rows:
            if r not in done:
                misses.setdefault(f"{text(r, 'act')}/{text(r, 'param')}", []).append(str(int(value(r, "depth"))))
        if name_misses and misses:
            out += " — not " + "; ".join(f"{case} L = {','.join(ds)}" for case, ds in misses.items())
        return out

    ratios = [value(r, "pc_leave_ratio_worst") for r in rows if math.isfinite(value(r, "pc_leave_ratio_worst"))]
    worst = max(ratios, key=lambda v: abs(math.log(v))) if ratios else math.nan
    return (f"Median of {seeds} seeds, budget {int(budget)} iterations: PC left the origin saddle in "
            f"{summary('pc', 'leave_iters', name_misses=True)}, within ×{worst:.2g} of the prediction from the "
            f"negative eigenvalue; BP in {summary('bp', 'leave_iters')}. PC learnt the map in "
            f"{summary('pc', 'loss_iters')}, BP in {summary('bp', 'loss_iters')}.")


def _escape_curves(rows, outdir, paths) -> None:
    import matplotlib.pyplot as plt

    cases = sorted({(text(r, "act"), text(r, "param")) for r in rows})
    depths = sorted({int(value(r, "depth")) for r in rows})
    fig, axes = plt.subplots(len(cases), len(depths), figsize=(2.9 * len(depths), 2.5 * len(cases)),
                             squeeze=False, sharey=True)
    stuck = []
    for axes_row, (act, p) in zip(axes, cases):
        for ax, depth in zip(axes_row, depths):
            match = [r for r in rows if (text(r, "act"), text(r, "param"), int(value(r, "depth"))) == (act, p, depth)]
            ax.set_title(f"{act}, {p}, L={depth}", fontsize=8)
            if not match:
                ax.axis("off")
                continue
            r = match[0]
            for algo, name, ls in (("pc", "curve", "-"), ("bp", "curve", "-"), ("pc", "objective_curve", "--")):
                pts = np.array(_curve(r, f"{algo}_{name}"), dtype=float)
                if pts.size:
                    ax.plot(np.maximum(pts[:, 0], 0.5), pts[:, 1], ls=ls, color=ALGO_COLORS[algo],
                            label=f"{algo.upper()} {'F*' if name == 'objective_curve' else 'MSE'}")
            ax.axhline(value(r, "threshold_frac") * value(r, "pc_initial_loss"), color="grey", ls=":", lw=0.8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_ylim(1e-6, 5)
            ax.set_xlabel("iteration", fontsize=7)
            ax.tick_params(labelsize=7)
            fstar = np.array(_curve(r, "pc_objective_curve"), dtype=float)
            if fstar.size and fstar[-1, 1] < 0.5 * fstar[0, 1] and not math.isfinite(value(r, "pc_loss_iters")):
                stuck.append(depth)
        axes_row[0].set_ylabel("training MSE / F*", fontsize=8)
    axes[0][0].legend(fontsize=6)
    sentence = ("Seed 0 (solid: training MSE; dashed: PC's equilibrated energy F*): "
                + (f"at L ∈ {sorted(set(stuck))} F* fell below half its start while the MSE stayed above the "
                   "threshold — PC lowered F* by growing its top layers, which explains the targets with "
                   "hidden-layer errors, before the map was learnt." if stuck else
                   "wherever F* fell, the MSE followed within the budget."))
    _save(fig, outdir, "theory_escape_curves.png", sentence, paths)


# ---------------------------------------------------------------------------------------------
# trust region


def _trust_region(rows, outdir, paths) -> None:
    import matplotlib.pyplot as plt

    params = sorted({text(r, "param") for r in rows})
    depths = sorted({int(value(r, "depth")) for r in rows})
    cmap = plt.get_cmap("viridis")
    colour = {d: cmap(i / max(len(depths) - 1, 1)) for i, d in enumerate(depths)}
    fig, axes = plt.subplots(len(params), 4, figsize=(17, 3.9 * len(params)), squeeze=False)
    for axes_row, p in zip(axes, params):
        mine = [r for r in rows if text(r, "param") == p]
        for r in mine:
            curve = _curve(r, "beta_curve")
            frac = [c["beta_frac"] for c in curve]
            style = dict(color=colour[int(value(r, "depth"))], ls=ACT_STYLES.get(text(r, "act"), "-"), lw=1.3)
            label = f"L={int(value(r, 'depth'))}, {text(r, 'act')}"
            for ax, key in zip(axes_row[:3], ("cos_tr", "cos_bp", "step_ratio")):
                ax.plot(frac, [np.nan if c[key] is None else c[key] for c in curve], label=label, **style)
        for act in sorted({text(r, "act") for r in mine}):
            grp = sorted((r for r in mine if text(r, "act") == act), key=lambda r: value(r, "depth"))
            d = [value(r, "depth") for r in grp]
            axes_row[3].plot(d, [value(r, "eq_cos_tr") for r in grp], marker="o", ls=ACT_STYLES.get(act, "-"),
                             color="tab:green", label=f"cos(ΔW_PC*, ΔW_TR), {act}")
            axes_row[3].plot(d, [value(r, "eq_cos_bp") for r in grp], marker="s", ls=ACT_STYLES.get(act, "-"),
                             color="tab:red", label=f"cos(ΔW_PC*, ΔW_BP), {act}")
        titles = ("cos(ΔW_PC(T, β), ΔW_TR)", "cos(ΔW_PC(T, β), ΔW_BP)", "‖ΔW_PC(T, β)‖ / ‖ΔW_BP‖")
        for ax, title in zip(axes_row[:3], titles):
            ax.set_xscale("log")
            ax.axvline(1.0, color="grey", lw=0.8)
            ax.set_xlabel("activity lr β / (2B / λ_max(I(ẑ)))  (> 1: inference unstable)")
            ax.set_title(f"{p}: {title}, T = {int(value(mine[0], 'tr_steps_used'))}", fontsize=9)
            ax.grid(alpha=0.3, which="both")
        axes_row[2].set_yscale("log")
        axes_row[0].set_ylim(-0.1, 1.05)
        axes_row[1].set_ylim(-0.1, 1.05)
        axes_row[3].set_xscale("log", base=2)
        axes_row[3].set_xlabel("depth L (weight matrices)")
        axes_row[3].set_title(f"{p}: at the inference equilibrium (T = ∞)", fontsize=9)
        axes_row[3].set_ylim(-0.1, 1.05)
        axes_row[3].grid(alpha=0.3)
        axes_row[3].legend(fontsize=6)
        axes_row[0].legend(fontsize=6, ncol=2)
    _save(fig, outdir, "theory_trust_region.png", _trust_region_sentence(rows), paths)


def _trust_region_sentence(rows: list[dict]) -> str:
    seeds = int(max(value(r, "seeds_used") for r in rows))
    steps = int(max(value(r, "tr_steps_used") for r in rows))
    exact = [value(r, "eq_cos_tr_worst") for r in rows if text(r, "act") == "linear"]
    approx = []
    for act in sorted({text(r, "act") for r in rows} - {"linear"}, key=list(ACT_STYLES).index):
        for p in sorted({text(r, "param") for r in rows}):
            grp = [r for r in rows if (text(r, "act"), text(r, "param")) == (act, p)]
            if grp:
                worst = min(grp, key=lambda r: value(r, "eq_cos_tr_worst"))
                low = f"{value(worst, 'eq_cos_tr_worst'):.2f} (lowest at L = {int(value(worst, 'depth'))})"
                approx.append(f"{act}/{p} ≥ {low}")
    low_bp = min(rows, key=lambda r: value(r, "eq_cos_bp"))
    windows = []
    for depth in sorted({int(value(r, "depth")) for r in rows}):
        good = [c["beta_frac"] for r in rows if int(value(r, "depth")) == depth
                for c in _curve(r, "beta_curve") if (c["cos_tr"] or -1) >= 0.99]
        if good:
            windows.append(f"{min(good):.2g}–{max(good):.2g} at L = {depth}")
    first = (f"{seeds} seeds: at the inference equilibrium the PC update equals the trust-region update for linear "
             f"networks (cosine ≥ {min(exact):.6f})" if exact else f"{seeds} seeds: at the inference equilibrium")
    return (first + (f" and approximates it for {', '.join(approx)}" if approx else "")
            + f", while its cosine with the gradient step falls to {value(low_bp, 'eq_cos_bp'):.2f} "
            f"(L = {int(value(low_bp, 'depth'))}, {text(low_bp, 'param')}, {text(low_bp, 'act')}); after T = {steps} "
            f"steps of inference it is within cosine 0.99 of the trust-region update only for β/β_max in "
            f"{'; '.join(windows) or 'no case'}.")
