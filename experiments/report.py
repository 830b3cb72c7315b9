"""Reports of experiment runs: ``report.md`` and ``report.html`` with figures and the table.

``rebuild(out_dir)`` recreates figures and report from ``runs.csv`` and ``config.json`` alone
(what ``pchw report DIR`` does), so a plot can be changed and redrawn without rerunning.
"""

from __future__ import annotations

import html
import math
import os
import traceback
from pathlib import Path

from pchw.runlog import RunError, atomic_write_text, read_json

HIDDEN_IF_EMPTY = ("error",)


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


def _columns(table: list[dict]) -> list[str]:
    cols: list[str] = []
    for row in table:
        for c in row:
            if c not in cols:
                cols.append(c)
    return cols


def _layout(table: list[dict]) -> tuple[list[str], dict[str, object]]:
    """Columns to show, and the parameters that are the same in every row (shown once above)."""
    cols = _columns(table)
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


def _rel(path: Path, out_dir: Path) -> str:
    try:
        return Path(path).resolve().relative_to(out_dir.resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _meta_lines(meta: dict, fixed: dict) -> list[tuple[str, str]]:
    lines = [
        ("experiment", str(meta.get("experiment", ""))),
        ("stamp", str(meta.get("stamp", ""))),
        ("git sha", str(meta.get("git_sha") or "unknown")),
        ("points", str(meta.get("n_points", ""))),
    ]
    for key in ("n_ok", "n_failed"):
        if key in meta:
            lines.append((key[2:], str(meta[key])))
    if fixed:
        lines.append(("fixed parameters", ", ".join(f"{k}={_fmt(v)}" for k, v in fixed.items())))
    if meta.get("plot_error"):
        lines.append(("plot error", str(meta["plot_error"])))
    return lines


def write_report(out_dir: str | os.PathLike, *, title: str, table: list[dict], figures: list,
                 meta: dict) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir``: title, meta block, every figure,
    and the table of all rows (parameters equal in every row are listed once, above it)."""
    out = Path(out_dir)
    shown, fixed = _layout(table)
    meta_lines = _meta_lines(meta, fixed)
    figs = [_rel(Path(f), out) for f in figures]

    def md_cell(v: object) -> str:
        return _fmt(v).replace("|", "\\|").replace("\n", " ")

    md = [f"# {title}", ""]
    md += [f"- **{k}**: {v}" for k, v in meta_lines]
    md.append("")
    for f in figs:
        md += [f"![]({f})", ""]
    if table:
        md.append("| " + " | ".join(shown) + " |")
        md.append("|" + "|".join("---" for _ in shown) + "|")
        md += ["| " + " | ".join(md_cell(row.get(c)) for c in shown) + " |" for row in table]
    else:
        md.append("_no rows_")
    md_path = out / "report.md"
    atomic_write_text(md_path, "\n".join(md) + "\n")

    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:2px 6px;"
        "text-align:right}th{background:#eee}img{max-width:100%;margin:1em 0}"
        "tr.failed td{background:#fdd}</style>",
        "</head><body>",
        f"<h1>{e(title)}</h1>",
        "<ul>" + "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in meta_lines) + "</ul>",
    ]
    parts += [f'<div><img src="{e(f)}" alt="{e(Path(f).stem)}"></div>' for f in figs]
    if table:
        parts.append("<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in shown) + "</tr></thead><tbody>")
        for row in table:
            cls = ' class="failed"' if row.get("status") == "failed" else ""
            parts.append(f"<tr{cls}>" + "".join(f"<td>{e(_fmt(row.get(c)))}</td>" for c in shown) + "</tr>")
        parts.append("</tbody></table>")
    else:
        parts.append("<p><i>no rows</i></p>")
    parts.append("</body></html>")
    html_path = out / "report.html"
    atomic_write_text(html_path, "\n".join(parts) + "\n")
    return md_path, html_path


def render(out_dir: Path, module, rows: list[dict], meta: dict) -> tuple[list[Path], Path, str | None]:
    """Draw ``module.plot`` over the ok rows into ``out_dir/figures`` and write the report.

    Returns (figures, report.md path, plot error or None). A failing plot does not lose the
    results: the report is written without figures and the traceback goes to errors/plot.txt.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    ok = [r for r in rows if r.get("status") == "ok"]
    figdir = out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    figures: list[Path] = []
    plot_error = None
    plot_log = out / "errors" / "plot.txt"
    if ok:
        try:
            returned = module.plot(ok, figdir) or []
            figures = [Path(f) for f in returned if Path(f).is_file()]
            if plot_log.exists():
                plot_log.unlink()
        except Exception as exc:
            plot_error = " ".join(f"{type(exc).__name__}: {exc}".split())[:300] + f" (traceback in {plot_log})"
            atomic_write_text(plot_log, traceback.format_exc())
        finally:
            plt.close("all")
    report_meta = {
        "experiment": meta.get("experiment"),
        "stamp": meta.get("stamp"),
        "git_sha": meta.get("git_sha"),
        "n_points": len(rows),
        "n_ok": len(ok),
        "n_failed": sum(r.get("status") == "failed" for r in rows),
        "plot_error": plot_error,
    }
    md_path, _ = write_report(out, title=meta.get("title") or str(meta.get("experiment")), table=rows,
                              figures=figures, meta=report_meta)
    return figures, md_path, plot_error


def rebuild(out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Redraw the figures and rewrite the report of a results folder from runs.csv and config.json.

    Returns (report.md, report.html). Raises RunError for a folder without results and
    ExperimentError (after writing the report without figures) if plot() fails.
    """
    from experiments import registry
    from experiments.runner import read_runs

    out = Path(out_dir)
    config_path, runs_path = out / "config.json", out / "runs.csv"
    if config_path.is_file() and (saved := read_json(config_path)).get("kind") == "study":  # rebuilds itself
        return registry.load_module(saved["module"], label=saved.get("experiment")).rebuild(out)
    if not runs_path.is_file() or not config_path.is_file():
        raise RunError(f"{out} is not a results folder (needs runs.csv and config.json)")
    meta = read_json(config_path)
    name = meta.get("experiment")
    path = meta.get("module")
    if path:
        module = registry.load_module(path, label=name)
    elif name:
        module = registry.get(name)
    else:
        raise RunError(f"{config_path} names no experiment")
    _, rows = read_runs(runs_path, module.Config)
    _, md_path, plot_error = render(out, module, rows, meta)
    if plot_error:
        raise registry.ExperimentError(f"plot() failed: {plot_error}; {md_path} was written without figures")
    return md_path, out / "report.html"
