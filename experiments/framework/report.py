"""Reports of experiment runs: ``report.md`` and ``report.html``, written like a results section.

A report has the experiment's title and description, its provenance (stamp, git sha, points),
every figure with a caption — one sentence from the module's ``describe(table)`` hook saying
what the figure shows and concludes — and the table of runs. An accuracy column whose rows carry
their number of test samples is shown in percent with its 95 % Wilson interval and n.

``rebuild(out_dir)`` recreates figures and report from ``runs.csv`` and ``config.json`` alone (what
``pchw report DIR`` does). Only a registered experiment, or a module the user names explicitly,
is imported: the module path stored in config.json is never imported on its own authority.
A *combined* folder (``pchw demo``'s) holds experiment folders as parts; its report embeds theirs.
"""

from __future__ import annotations

import html
import math
import os
import re
import traceback
from dataclasses import dataclass
from pathlib import Path

from pchw.runlog import RunError, atomic_write_text, read_json, write_json

from . import registry
from .runs_csv import read_runs
from .table import number, wilson_interval

HIDDEN_IF_EMPTY = ("error",)
# Columns that hold the number of test samples behind ``test_acc`` when a module declares none.
DEFAULT_SAMPLE_COLUMNS = ("n_test", "test_samples", "deployed_samples", "n_test_samples")
_PART_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Figure:
    """A figure file and the sentence that says what it shows."""

    path: Path
    caption: str


# ------------------------------------------------------------------------------------- cells
def _fmt(value: object) -> str:
    """Compact cell text: floats to 4 significant digits, None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value == 0:
            return "0"
        return f"{value:.4g}"
    return str(value)


def sample_columns(module) -> dict[str, tuple[str, ...]]:
    """Accuracy column → the columns that may hold its sample count (the module's ``sample_counts`` first)."""
    out: dict[str, tuple[str, ...]] = {"test_acc": DEFAULT_SAMPLE_COLUMNS}
    for acc, count in (getattr(module, "sample_counts", None) or {}).items():
        out[acc] = (count,) if isinstance(count, str) else tuple(count)
    return out


def _count(row: dict, columns: tuple[str, ...]) -> int | None:
    for c in columns:
        n = number(row.get(c, row.get(f"p_{c}")))
        if math.isfinite(n) and n >= 1:
            return int(n)
    return None


def accuracy_cell(accuracy: object, n: int | None) -> str:
    """``91.20 [89.30, 92.81] n=1000``: percent, 95 % Wilson interval and sample count (or just percent)."""
    acc = number(accuracy)
    if not math.isfinite(acc):
        return _fmt(accuracy)
    if n is None:
        return f"{100 * acc:.2f}"
    lo, hi = wilson_interval(acc, n)
    return f"{100 * acc:.2f} [{100 * lo:.2f}, {100 * hi:.2f}] n={n}"


# ------------------------------------------------------------------------------------ layout
def _layout(table: list[dict]) -> tuple[list[str], dict[str, object]]:
    """Columns to show, and the parameters that are the same in every row (shown once above)."""
    cols = list(dict.fromkeys(c for row in table for c in row))
    fixed: dict[str, object] = {}
    if len(table) > 1:
        for c in cols:
            if c.startswith("p_"):
                values = [row.get(c) for row in table]
                if all(v == values[0] for v in values):
                    fixed[c[2:]] = values[0]
    shown = [c for c in cols if not (c.startswith("p_") and c[2:] in fixed)]
    shown = [c for c in shown if c not in HIDDEN_IF_EMPTY or any(row.get(c) not in (None, "") for row in table)]
    return shown, fixed


def _table_cells(table: list[dict], samples: dict[str, tuple[str, ...]]) -> tuple[list[str], list[list[str]], dict]:
    """Header, cell texts and fixed parameters of the runs table."""
    shown, fixed = _layout(table)
    with_counts = {c for c in shown if c in samples and any(_count(r, samples[c]) for r in table)}
    header = [f"{c} (%, 95% CI, n)" if c in with_counts else c for c in shown]
    cells = [[accuracy_cell(row.get(c), _count(row, samples[c])) if c in with_counts else _fmt(row.get(c))
              for c in shown] for row in table]
    return header, cells, fixed


def _rel(path: Path, out_dir: Path) -> str:
    try:
        return Path(path).resolve().relative_to(out_dir.resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _meta_lines(meta: dict, fixed: dict) -> list[tuple[str, str]]:
    lines = [(k, str(meta[k])) for k in ("experiment", "stamp") if meta.get(k)]
    lines.append(("git sha", str(meta.get("git_sha") or "unknown")))
    lines += [(label, str(meta[key])) for key, label in (("n_points", "points"), ("n_ok", "ok"), ("n_failed", "failed"))
              if key in meta]
    if fixed:
        lines.append(("fixed parameters", ", ".join(f"{k}={_fmt(v)}" for k, v in fixed.items())))
    if meta.get("plot_error"):
        lines.append(("plot error", str(meta["plot_error"])))
    return lines


# ----------------------------------------------------------------------------------- writing
@dataclass(frozen=True)
class Section:
    """A part of a report: a heading (may be empty), an intro paragraph and figures."""

    heading: str
    intro: str
    figures: list[Figure]


def write_report(out_dir: str | os.PathLike, *, title: str, table: list[dict], sections: list[Section],
                 meta: dict, samples: dict[str, tuple[str, ...]] | None = None) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir``: title, provenance, each section's
    figures with numbered captions, then the table of runs (parameters equal in every row listed once)."""
    out = Path(out_dir)
    header, cells, fixed = _table_cells(table, samples or {"test_acc": DEFAULT_SAMPLE_COLUMNS})
    meta_lines = _meta_lines(meta, fixed)
    numbered = []
    k = 0
    for s in sections:
        figs = []
        for f in s.figures:
            k += 1
            figs.append((k, _rel(f.path, out), f.caption))
        numbered.append((s, figs))
    atomic_write_text(out / "report.md", _markdown(title, meta_lines, numbered, header, cells))
    atomic_write_text(out / "report.html", _html(title, meta_lines, numbered, header, cells, table))
    return out / "report.md", out / "report.html"


def _markdown(title, meta_lines, numbered, header, cells) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    md = [f"# {title}", ""]
    md += [f"- **{k}**: {v}" for k, v in meta_lines]
    md.append("")
    for s, figs in numbered:
        md += [f"## {s.heading}", ""] if s.heading else []
        md += [s.intro, ""] if s.intro else []
        for k, path, caption in figs:
            md += [f"![Figure {k}]({path})", "", f"**Figure {k}.** {caption}", ""]
    md += ["## Runs", ""]
    if cells:
        md.append("| " + " | ".join(header) + " |")
        md.append("|" + "|".join("---" for _ in header) + "|")
        md += ["| " + " | ".join(cell(c) for c in row) + " |" for row in cells]
    else:
        md.append("_no rows_")
    return "\n".join(md) + "\n"


def _html(title, meta_lines, numbered, header, cells, table) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>", '<html><head><meta charset="utf-8">', f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:2px 6px;"
        "text-align:right}th{background:#eee}img{max-width:100%;margin:1em 0 0.3em}"
        "figcaption{margin-bottom:1.5em}tr.failed td{background:#fdd}</style>",
        "</head><body>", f"<h1>{e(title)}</h1>",
        "<ul>" + "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in meta_lines) + "</ul>",
    ]
    for s, figs in numbered:
        parts += [f"<h2>{e(s.heading)}</h2>"] if s.heading else []
        parts += [f"<p>{e(s.intro)}</p>"] if s.intro else []
        parts += [f'<figure><img src="{e(path)}" alt="Figure {k}"><figcaption><b>Figure {k}.</b> {e(caption)}'
                  f"</figcaption></figure>" for k, path, caption in figs]
    parts.append("<h2>Runs</h2>")
    if cells:
        parts.append("<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in header) + "</tr></thead><tbody>")
        for row, texts in zip(table, cells):
            cls = ' class="failed"' if row.get("status") == "failed" else ""
            parts.append(f"<tr{cls}>" + "".join(f"<td>{e(t)}</td>" for t in texts) + "</tr>")
        parts.append("</tbody></table>")
    else:
        parts.append("<p><i>no rows</i></p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------------- drawing
def _captions(module, ok: list[dict], figures: list[Path]) -> list[Figure]:
    """Each figure with the module's sentence for it (``describe(table)``), or a plain note."""
    sentences: dict = {}
    describe = getattr(module, "describe", None)
    if describe is not None:
        try:
            sentences = dict(describe(ok) or {})
        except Exception as exc:  # a failing description must not lose the figures
            note = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
            return [Figure(f, f"{f.stem} (describe() failed: {note})") for f in figures]
    return [Figure(f, sentences.get(f.name) or sentences.get(f.stem)
                   or f"{f.stem.replace('_', ' ')} (the experiment module describes no figure).") for f in figures]


def draw(out_dir: Path, module, rows: list[dict]) -> tuple[list[Figure], str | None]:
    """Draw ``module.plot`` over the ok rows into ``out_dir/figures``; (figures with captions, plot error).

    A failing plot does not lose the results: the traceback goes to errors/plot.txt.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    ok = [r for r in rows if r.get("status") == "ok"]
    figdir = out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    plot_log = out / "errors" / "plot.txt"
    if not ok:
        return [], None
    try:
        returned = module.plot(ok, figdir) or []
        figures = [Path(f) for f in returned if Path(f).is_file()]
        plot_log.unlink(missing_ok=True)
    except Exception as exc:
        atomic_write_text(plot_log, traceback.format_exc())
        return [], " ".join(f"{type(exc).__name__}: {exc}".split())[:300] + f" (traceback in {plot_log})"
    finally:
        plt.close("all")
    return _captions(module, ok, figures), None


def _counts_meta(meta: dict, rows: list[dict], plot_error: str | None) -> dict:
    return {"experiment": meta.get("experiment"), "stamp": meta.get("stamp"), "git_sha": meta.get("git_sha"),
            "n_points": len(rows), "n_ok": sum(r.get("status") == "ok" for r in rows),
            "n_failed": sum(r.get("status") == "failed" for r in rows), "plot_error": plot_error}


def render(out_dir: Path, module, rows: list[dict], meta: dict) -> tuple[list[Path], Path, str | None]:
    """Draw the figures and write the report of one experiment's results folder.

    Returns (figures, report.md path, plot error or None).
    """
    figures, plot_error = draw(out_dir, module, rows)
    title = meta.get("title") or str(meta.get("experiment"))
    section = Section("", getattr(module, "DESCRIPTION", "") or "", figures)
    md_path, _ = write_report(out_dir, title=title, table=rows, sections=[section],
                              meta=_counts_meta(meta, rows, plot_error), samples=sample_columns(module))
    return [f.path for f in figures], md_path, plot_error


# ---------------------------------------------------------------------------------- rebuilding
def _module_of(meta: dict, config_path: Path, module_path: str | None):
    """The experiment module of a results folder: the registered one its config.json names, or the
    module the user named (which must be that experiment)."""
    name = meta.get("experiment")
    if not name:
        raise RunError(f"{config_path} names no experiment")
    if module_path is None:
        path = registry.registered_path(str(name))
        if path is None:
            stored = f" (its config.json says module {meta['module']})" if meta.get("module") else ""
            raise RunError(f"{config_path} names experiment {name!r}, which is not registered{stored}; "
                           f"pass --module PACKAGE.MODULE to import a module you trust")
        return registry.load_module(path, label=str(name))
    module = registry.load_module(module_path)
    if module.NAME != name:
        raise RunError(f"--module {module_path} is experiment {module.NAME!r}, but {config_path} holds "
                       f"{name!r}")
    return module


def _results(out: Path, module_path: str | None = None):
    """(module, meta, rows) of an experiment's results folder."""
    config_path, runs_path = out / "config.json", out / "runs.csv"
    if not runs_path.is_file() or not config_path.is_file():
        raise RunError(f"{out} is not a results folder (needs runs.csv and config.json)")
    meta = read_json(config_path)
    module = _module_of(meta, config_path, module_path)
    _, rows = read_runs(runs_path, module.Config)
    return module, meta, rows


def rebuild(out_dir: str | os.PathLike, *, module_path: str | None = None) -> tuple[Path, Path]:
    """Redraw the figures and rewrite the report of a results folder from runs.csv and config.json.

    Returns (report.md, report.html). Raises RunError for a folder without results or naming an
    unregistered experiment (unless ``module_path`` names it), and ExperimentError (after writing
    the report without figures) if plot() fails.
    """
    out = Path(out_dir)
    config_path = out / "config.json"
    saved = read_json(config_path) if config_path.is_file() else {}
    if saved.get("kind") == "combined":
        return write_combined(out)
    if saved.get("kind") == "study":  # an optimiser's study (experiments.codesign) rebuilds itself
        return registry.load_module(saved["module"], label=saved.get("experiment")).rebuild(out)
    module, meta, rows = _results(out, module_path)
    _, md_path, plot_error = render(out, module, rows, meta)
    if plot_error:
        raise registry.ExperimentError(f"plot() failed: {plot_error}; {md_path} was written without figures")
    return md_path, out / "report.html"


# ------------------------------------------------------------------------------ combined folders
def check_combined_folder(out_dir: str | os.PathLike) -> None:
    """Refuse (one line) to make ``out_dir`` a combined folder when it holds an experiment's own results,
    whose config.json the combined report would replace."""
    config_path = Path(out_dir) / "config.json"
    if config_path.is_file():
        meta = read_json(config_path)
        if meta.get("kind") != "combined":
            raise RunError(f"{out_dir} holds results of experiment {meta.get('experiment')!r}; choose another --out")


def combine(out_dir: str | os.PathLike, *, title: str, parts: list[str], table_part: str,
            table_columns: list[str], meta: dict) -> tuple[Path, Path]:
    """Make ``out_dir`` a combined results folder of the experiment folders ``parts`` (sub-folders) and
    write its report: each part's figures and captions under its title, then ``table_columns`` of
    ``table_part``'s ok rows. ``pchw report out_dir`` rebuilds it the same way."""
    out = Path(out_dir)
    check_combined_folder(out)
    write_json(out / "config.json", {**meta, "kind": "combined", "title": title, "parts": list(parts),
                                     "table_part": table_part, "table_columns": list(table_columns)})
    return write_combined(out)


def write_combined(out: Path) -> tuple[Path, Path]:
    """(Re)write the report of a combined folder from its parts' runs.csv (each part's report too)."""
    spec = read_json(out / "config.json")
    parts = [str(p) for p in spec.get("parts", [])]
    bad = [p for p in parts if not _PART_NAME.fullmatch(p)]
    if bad or not parts or spec.get("table_part") not in parts:
        raise RunError(f"{out / 'config.json'} lists bad parts {bad or parts}: expected names of its sub-folders")
    sections, rows_by_part, modules, points = [], {}, {}, []
    for part in parts:
        module, meta, rows = _results(out / part)
        figures, plot_error = draw(out / part, module, rows)
        write_report(out / part, title=meta.get("title") or part, table=rows,
                     sections=[Section("", getattr(module, "DESCRIPTION", "") or "", figures)],
                     meta=_counts_meta(meta, rows, plot_error), samples=sample_columns(module))
        intro = getattr(module, "DESCRIPTION", "") or ""
        if plot_error:
            intro += f" (plot error: {plot_error})"
        sections.append(Section(f"{meta.get('title') or part} ({part}/)", intro.strip(), figures))
        rows_by_part[part], modules[part] = rows, module
        points.append(f"{len(rows)} {part} ({sum(r.get('status') == 'failed' for r in rows)} failed)")
    columns = spec.get("table_columns") or []
    table = [{c: r.get(c) for c in columns} for r in rows_by_part[spec["table_part"]] if r.get("status") == "ok"]
    meta = {"experiment": spec.get("experiment"), "stamp": spec.get("stamp"), "git_sha": spec.get("git_sha"),
            "n_points": ", ".join(points)}
    return write_report(out, title=spec.get("title") or "combined report", table=table, sections=sections,
                        meta=meta, samples=sample_columns(modules[spec["table_part"]]))
