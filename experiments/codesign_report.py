"""The codesign report: the measured fronts, the knobs of every front design, the knobs' importance and
one headline sentence per substrate (PC against backprop at the target accuracy), drawn from the
folder's CSV files alone (``pchw report DIR`` redraws it)."""

from __future__ import annotations

import html
import math
import traceback
from pathlib import Path

from .codesign_tables import FRONT, IMPORTANCE, IMPORTANCE_TARGETS, TRIALS, read_table

FRONTS_PNG, IMPORTANCE_PNG = "codesign_fronts.png", "codesign_importance.png"
LABEL = {"pc": "μPC", "bp": "BP"}


def si(value: float, unit: str) -> str:
    """``2.68e-06, "J"`` → ``2.68 µJ``."""
    if value is None or not math.isfinite(value) or value == 0:
        return f"{value} {unit}"
    exponent = min(max(int(math.floor(math.log10(abs(value)) / 3)), -5), 1)
    return f"{value / 1000.0 ** exponent:.3g} {dict(zip(range(-5, 2), 'fpnµm k'))[exponent].strip()}{unit}"


def _pct(r: dict) -> str:
    return (f"{100 * r['test_acc']:.1f}% (95% interval {100 * r['test_acc_ci_low']:.1f}–"
            f"{100 * r['test_acc_ci_high']:.1f}%, {int(r['n_test'])} test images)")


def _ok(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("status") == "ok" and r.get("energy_per_example_j")]


def cheapest(rows: list[dict], study: str, target_acc: float) -> dict | None:
    """The full-fidelity run of ``study`` with the fewest joules per training example among those reaching
    ``target_acc``."""
    reaching = [r for r in _ok(rows) if r["study"] == study and r["test_acc"] >= target_acc]
    return min(reaching, key=lambda r: r["energy_per_example_j"], default=None)


def _design(r: dict) -> str:
    return f"the default recipe {r['recipe']}" if r["role"] == "reference" else f"design {r['trial']}"


def _one_algorithm(rows: list[dict], algorithm: str, profile: str, target_acc: float) -> tuple[str, dict | None]:
    study = f"{algorithm}:{profile}"
    best = cheapest(rows, study, target_acc)
    if best is None:
        mine = _ok([r for r in rows if r["study"] == study])
        top = max(mine, key=lambda r: r["test_acc"], default=None)
        return (f"no {LABEL[algorithm]} design reached {100 * target_acc:g}%" +
                (f" (best {100 * top['test_acc']:.1f}% at {si(top['energy_per_example_j'], 'J')})" if top else ""),
                None)
    text = f"{LABEL[algorithm]}'s is {_design(best)}, {_pct(best)}, at {si(best['energy_per_example_j'], 'J')}"
    ref = next((r for r in _ok(rows) if r["study"] == study and r["role"] == "reference"), None)
    if ref is not None and ref is not best:
        factor = ref["energy_per_example_j"] / best["energy_per_example_j"]
        text += (f", {factor:.2g}× cheaper than the default recipe {ref['recipe']} "
                 f"({si(ref['energy_per_example_j'], 'J')}, {100 * ref['test_acc']:.1f}%)")
    return text, best


def headline(rows: list[dict], target_acc: float) -> list[str]:
    """One sentence per substrate: the cheapest full-fidelity design reaching the target, PC vs BP."""
    out = []
    for profile in dict.fromkeys(r["profile"] for r in rows):
        parts, best = [], {}
        for algorithm in ("pc", "bp"):
            if any(r["study"] == f"{algorithm}:{profile}" for r in rows):
                text, best[algorithm] = _one_algorithm(rows, algorithm, profile, target_acc)
                parts.append(text)
        sentence = f"On {profile}, the cheapest measured design reaching {100 * target_acc:g}%: " + "; ".join(parts)
        if best.get("pc") and best.get("bp"):
            ratio = best["pc"]["energy_per_example_j"] / best["bp"]["energy_per_example_j"]
            sentence += (f"; at {100 * target_acc:g}% μPC costs {ratio:.3g}× " +
                         ("more" if ratio >= 1 else "less") + " per training example than BP"
                         + ("" if ratio >= 1 else f" (BP {1 / ratio:.3g}× more)"))
        out.append(sentence + ".")
    return out


def describe(table: list[dict], importance: list[dict] = (), target_acc: float = 0.9) -> dict[str, str]:
    """One sentence per figure: what it shows and what it concludes (``table``: the rows of front.csv)."""
    rows = _ok(table)
    if not rows:
        return {}
    n = sorted({int(r["n_test"]) for r in rows})
    at_target = [f"{LABEL.get(r['algorithm'], r['algorithm'])} on {r['profile']} {si(r['energy_per_example_j'], 'J')}"
                 for s in dict.fromkeys(r["study"] for r in rows) if (r := cheapest(rows, s, target_acc))]
    out = {FRONTS_PNG: (
        f"Test accuracy (95% Wilson intervals, {', '.join(map(str, n))} test images) against joules per training "
        f"example of every full-fidelity run — the designs of each study's search front and its default recipe "
        f"(star), the line joining the runs no other beats on both; the cheapest reaching "
        f"{100 * target_acc:g}% costs " + ("; ".join(at_target) if at_target else "— none reached it") + ".")}
    if importance:
        tops = []
        for study in dict.fromkeys(r["study"] for r in importance):
            mine = [r for r in importance if r["study"] == study and r["objective"] == IMPORTANCE_TARGETS[0]]
            top = max(mine, key=lambda r: r["importance"])
            tops.append(f"{study}: {top['knob']} ({top['importance']:.2f}, {int(top['n_trials'])} trials)")
        out[IMPORTANCE_PNG] = (
            "Importance of each knob (Optuna's PED-ANOVA over the complete search trials, normalised per objective) "
            "for reaching the Pareto front, for accuracy and for joules; the knob that most decides the front is "
            + "; ".join(tops) + ".")
    return out


# ------------------------------------------------------------------------------------------ figures
def _plot_fronts(rows: list[dict], trials: list[dict], path: Path, target_acc: float) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 5.4))
    colors = plt.get_cmap("tab10")
    for i, study in enumerate(dict.fromkeys(r["study"] for r in rows)):
        color, mine = colors(i % 10), sorted((r for r in rows if r["study"] == study),
                                              key=lambda r: r["energy_per_example_j"])
        searched = [t for t in trials if t["study"] == study and t["state"] == "complete"]
        if searched:
            ax.scatter([t["energy_per_example_j"] for t in searched], [100 * t["test_acc"] for t in searched], s=9,
                       color=color, alpha=0.25, label=f"{study}: search trials ({int(searched[0]['examples'])} ex.)")
        for r in mine:
            acc = 100 * r["test_acc"]
            ax.errorbar(r["energy_per_example_j"], acc, yerr=[[acc - 100 * r["test_acc_ci_low"]],
                                                              [100 * r["test_acc_ci_high"] - acc]],
                        fmt="*" if r["role"] == "reference" else "o", ms=12 if r["role"] == "reference" else 6,
                        color=color, mfc=color if r["on_front"] else "none", capsize=3)
            ax.annotate("default" if r["role"] == "reference" else f"t{r['trial']}", (r["energy_per_example_j"], acc),
                        textcoords="offset points", xytext=(5, 4), fontsize=7, color=color)
        front = [r for r in mine if r["on_front"]]
        ax.plot([r["energy_per_example_j"] for r in front], [100 * r["test_acc"] for r in front], "-", color=color,
                lw=1.2, label=f"{study}: measured front (full fidelity)")
    ax.axhline(100 * target_acc, color="k", ls=":", lw=1, label=f"target {100 * target_acc:g}%")
    ax.set_xscale("log")
    ax.set_xlabel("energy per training example (J, log scale)")
    ax.set_ylabel("test accuracy of the trained chip (%), 95% interval")
    ax.set_title("Co-design fronts: full-fidelity runs (filled: on the front; star: default recipe)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_importance(importance: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    studies = list(dict.fromkeys(r["study"] for r in importance))
    fig, axes = plt.subplots(1, len(studies), figsize=(5.2 * len(studies), 4.2), squeeze=False)
    for ax, study in zip(axes[0], studies):
        knobs = list(dict.fromkeys(r["knob"] for r in importance if r["study"] == study))
        y = np.arange(len(knobs))
        for j, objective in enumerate(IMPORTANCE_TARGETS):
            value = {r["knob"]: r["importance"] for r in importance
                     if r["study"] == study and r["objective"] == objective}
            ax.barh(y + (j - 1) * 0.27, [value.get(k, 0.0) for k in knobs], height=0.27, label=objective)
        ax.set_yticks(y)
        ax.set_yticklabels(knobs, fontsize=8)
        ax.set_xlabel("importance (PED-ANOVA, sums to 1 per objective)")
        ax.set_title(study, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot(rows: list[dict], trials: list[dict], importance: list[dict], outdir: Path, target_acc: float) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    if _ok(rows):
        _plot_fronts(_ok(rows), trials, outdir / FRONTS_PNG, target_acc)
        paths.append(outdir / FRONTS_PNG)
    if importance:
        _plot_importance(importance, outdir / IMPORTANCE_PNG)
        paths.append(outdir / IMPORTANCE_PNG)
    return paths


# ----------------------------------------------------------------------------------------- document
def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def front_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """The knob values and measurements of every full-fidelity run (search-front designs and each default
    recipe); ``on front``: no other run of its study is as accurate for fewer joules."""
    shown = _ok(rows)
    knobs = list(dict.fromkeys(c for r in shown for c in r if c.startswith("knob_")))
    header = ["study", "design", *(k[5:] for k in knobs), "test acc (95% CI)", "n test", "J / train ex.",
              "s / train ex.", "J / inference", "dominant", "on front"]
    body = [[r["study"], "default recipe" if r["role"] == "reference" else f"trial {r['trial']}",
             *(_cell(r.get(k)) for k in knobs),
             f"{100 * r['test_acc']:.2f}% ({100 * r['test_acc_ci_low']:.1f}–{100 * r['test_acc_ci_high']:.1f})",
             str(int(r["n_test"])), si(r["energy_per_example_j"], "J"), si(r["latency_per_example_s"], "s"),
             si(r["inference_energy_j"], "J"), str(r.get("dominant") or ""), "yes" if r["on_front"] else "no"]
            for r in shown]
    return header, body


def importance_table(importance: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["study", "knob", *IMPORTANCE_TARGETS]
    keys = list(dict.fromkeys((r["study"], r["knob"]) for r in importance))
    value = {(r["study"], r["knob"], r["objective"]): r["importance"] for r in importance}
    return header, [[s, k, *(f"{value.get((s, k, o), 0.0):.3f}" for o in IMPORTANCE_TARGETS)] for s, k in keys]


def _study_lines(meta: dict, trials: list[dict]) -> list[str]:
    lines = []
    for name, record in meta.get("studies", {}).items():
        c = record["config"]
        mine = [t for t in trials if t["study"] == name]
        counts = ", ".join(f"{sum(t['state'] == s for t in mine)} {s}" for s in ("complete", "pruned", "failed"))
        lines.append(f"{name}: {len(mine)} trials ({counts}) of {c['fidelity']} training examples, "
                     f"{c['evaluations']} evaluations on {c['n_test']} test images, {c['sampler']} sampler, "
                     f"{c['pruner']} pruner; front re-run for {c['epochs']:g} epoch(s); knobs: "
                     + ", ".join(f"{k} {v['range']}" for k, v in record["space"]["knobs"].items()))
    return lines


def write_document(out: Path, *, title: str, meta: dict, lines: list[str], headline_text: list[str],
                   figures: list[Path], sentences: dict, tables: list[tuple[str, tuple]]) -> Path:
    """``report.md`` and ``report.html``: the headline, each figure with its sentence, then the tables."""
    from pchw.runlog import atomic_write_text

    md = [f"# {title}", "", *(f"- {x}" for x in lines), "", *headline_text, ""]
    e = html.escape
    page = [f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{e(title)}</title><style>"
            "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;font-size:.85em}"
            "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}img{max-width:100%}"
            f"</style></head><body><h1>{e(title)}</h1><ul>" + "".join(f"<li>{e(x)}</li>" for x in lines) + "</ul>",
            *(f"<p><b>{e(x)}</b></p>" for x in headline_text)]
    for f in figures:
        rel = f"figures/{f.name}"
        md += [f"![]({rel})", "", sentences.get(f.name, ""), ""]
        page.append(f'<div><img src="{e(rel)}" alt="{e(f.stem)}"><p>{e(sentences.get(f.name, ""))}</p></div>')
    for caption, (header, body) in tables:
        md += [f"## {caption}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        md += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
        md.append("")
        page.append(f"<h2>{e(caption)}</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"
                    + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in body)
                    + "</table>")
    page.append(f"<p>Every trial: <a href=\"{TRIALS}\">{TRIALS}</a>; the full-fidelity runs: "
                f"<a href=\"{FRONT}\">{FRONT}</a>.</p></body></html>")
    md.append(f"Every trial: [{TRIALS}]({TRIALS}); the full-fidelity runs: [{FRONT}]({FRONT}).")
    atomic_write_text(out / "report.html", "\n".join(page) + "\n")
    atomic_write_text(out / "report.md", "\n".join(md) + "\n")
    return out / "report.md"


def render(out: Path, meta: dict, *, target_acc: float) -> tuple[list[Path], Path, str | None, list[str]]:
    """Figures and report of a codesign folder: (figures, report.md, plot error or None, headline sentences)."""
    rows, trials, importance = (read_table(out / name) for name in (FRONT, TRIALS, IMPORTANCE))
    figures, plot_error = [], None
    try:
        figures = plot(rows, trials, importance, out / "figures", target_acc)
    except Exception as exc:  # a failing plot loses no result: the report is written without figures
        plot_error = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        (out / "errors").mkdir(exist_ok=True)
        (out / "errors" / "plot.txt").write_text(traceback.format_exc())
    head = headline(_ok(rows), target_acc) if _ok(rows) else ["no full-fidelity run finished yet"]
    lines = [f"stamp {meta.get('stamp')}, git sha {meta.get('git_sha') or 'unknown'}", *_study_lines(meta, trials)]
    tables = [("Full-fidelity runs: each search front's most accurate designs and each default recipe",
               front_table(rows))]
    if importance:
        tables.append(("Knob importance (PED-ANOVA over the complete search trials)", importance_table(importance)))
    md = write_document(out, title=meta.get("title", "codesign"), meta=meta, lines=lines, headline_text=head,
                        figures=figures, sentences=describe(rows, importance, target_acc), tables=tables)
    return figures, md, plot_error, head
