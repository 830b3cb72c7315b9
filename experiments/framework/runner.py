"""The experiment runner: grids, run ids, resume, local/Dask parallelism, results folders.

``run_experiment(name)`` expands the experiment's grid (with ``--set`` overrides, every point
checked: :mod:`~experiments.framework.grid`), gives each point a run id
(:mod:`~experiments.framework.run_ids`), skips ids already finished in the output folder, runs the
rest serially, in a local process pool or on a Dask cluster
(:mod:`~experiments.framework.executor`), and writes ``results/<experiment>/<stamp>/``:

- ``config.json`` — experiment, defaults, grid, overrides, git sha, package versions and every
  point's config with its resolved hardware-profile values;
- ``runs.csv`` — one tidy row per point (:mod:`~experiments.framework.runs_csv`), rewritten
  atomically after every finished point, so a crash or Ctrl-C loses only the points in flight;
- ``errors/<run_id>.txt`` — the traceback of a failed point (removed when a retry succeeds);
- ``figures/*.png`` and ``report.md``/``report.html`` (:mod:`~experiments.framework.report`).

The table handed to ``plot()`` is the list of ok rows of runs.csv, values typed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from pchw.runlog import (
    PROGRESS_ENV,
    Interrupted,
    RunError,
    atomic_write_text,
    git_sha,
    make_dir,
    package_versions,
    progress,
    read_json,
    write_json,
)

from . import registry
from .executor import Executor
from .grid import config_fields, convert_value, expand_grid
from .registry import ExperimentError
from .report import render
from .run_ids import profile_values, run_id
from .runs_csv import read_runs, runs_columns, runs_to_csv

VERSIONED = ("numpy", "torch", "numba", "brian2", "scipy", "matplotlib", "distributed")


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run after the finished points were written to ``out_dir``; ``inner`` is the
    Ctrl-C of a training loop inside a point (e.g. a shared network's), if it was one."""

    def __init__(self, out_dir: Path, n_saved: int, inner: BaseException | None = None):
        self.out_dir, self.n_saved = out_dir, n_saved
        training = ""
        if isinstance(inner, Interrupted):
            training = (f"; a network in training stopped at iteration {inner.iteration} with its checkpoint kept "
                        f"({inner.checkpoint}), and the rerun continues it")
        super().__init__(f"interrupted: {n_saved} finished point(s) saved in {out_dir} "
                         f"(rerun with --out {out_dir} to resume){training}")


@dataclass
class RunSummary:
    """What a run did: ``n_done`` ok and ``n_failed`` failed this time, ``n_skipped`` already ok."""

    out_dir: Path | None
    n_points: int
    n_done: int = 0
    n_skipped: int = 0
    n_failed: int = 0
    rows: list[dict] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    report: Path | None = None
    plot_error: str | None = None


@dataclass
class _Plan:
    """The points of one invocation: checked Configs, their run ids and resolved profile values."""

    module_name: str
    module: object
    points: list
    ids: list[str]
    profiles: list[dict]


def _plan(name: str, overrides: dict[str, list] | None) -> _Plan:
    module_name = registry.module_path(name)
    module = registry.get(name)
    points = expand_grid(module.Config, module.GRID, overrides)
    cache: dict = {}
    profiles = [profile_values(p, module, cache) for p in points]
    ids = [run_id(p, module, _profiles=pv) for p, pv in zip(points, profiles)]
    return _Plan(module_name, module, points, ids, profiles)


def _stamp_dir(root: Path, name: str) -> Path:
    base = make_dir(root / name, what="results folder")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out, n = base / stamp, 2
    while True:  # created here, so two runs started in the same second get different folders
        try:
            out.mkdir()
            return out
        except FileExistsError:
            out, n = base / f"{stamp}-{n}", n + 1


def saved_meta(out: Path | None, module) -> dict:
    """The config.json of an existing results folder ``out`` ({} if none); RunError if ``out`` is not a
    folder or holds another experiment's results (checked for dry runs too)."""
    if out is None or not (out.exists() or out.is_symlink()):
        return {}
    if not out.is_dir():
        raise RunError(f"--out {out} exists and is not a folder; choose a folder path")
    path = out / "config.json"
    saved = read_json(path) if path.exists() else {}
    if saved and saved.get("experiment") != module.NAME:
        raise RunError(f"{out} holds results of experiment {saved.get('experiment')!r}, not {module.NAME!r}; "
                       f"choose another --out")
    return saved


def _meta(plan: _Plan, saved: dict, out: Path, overrides, workers: int, scheduler) -> dict:
    module = plan.module
    points = dict(saved.get("points", {}))
    for rid, p, pv in zip(plan.ids, plan.points, plan.profiles):
        points[rid] = {"config": dataclasses.asdict(p), "profiles": pv}
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return {
        "experiment": module.NAME,
        "module": plan.module_name,
        "title": module.TITLE,
        "stamp": saved.get("stamp", out.name),
        "defaults": dataclasses.asdict(module.Config()),
        "grid": module.GRID,
        "overrides": {k: [convert_value(module.Config, k, v) for v in (vs if isinstance(vs, list | tuple) else [vs])]
                      for k, vs in (overrides or {}).items()},
        "git_sha": git_sha(),
        "versions": package_versions(VERSIONED),
        "started": saved.get("started", now),
        "invocations": [*saved.get("invocations", []),
                        {"time": now, "overrides": overrides or {}, "workers": workers, "scheduler": scheduler,
                         "n_points": len(plan.points)}],
        "points": points,
    }


@contextlib.contextmanager
def _nested_progress(enabled: bool):
    """Let what a point runs (e.g. the shared network's training) show its own progress bar."""
    saved = os.environ.get(PROGRESS_ENV)
    os.environ[PROGRESS_ENV] = "1" if enabled else "0"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = saved


def _execute(plan: _Plan, out: Path, existing: dict, previous_columns: tuple, summary: RunSummary, *,
             workers: int, scheduler: str | None, show_progress: bool) -> list[dict]:
    """Run the points not yet ok, writing runs.csv after each; returns every row (earlier rows first)."""
    fields = config_fields(plan.module.Config)
    order = list(dict.fromkeys([*existing, *plan.ids]))
    rows_by_id = dict(existing)

    def rows() -> list[dict]:
        return [rows_by_id[rid] for rid in order if rid in rows_by_id]

    def flush() -> None:
        atomic_write_text(out / "runs.csv", runs_to_csv(runs_columns(fields, rows(), previous_columns), rows()))

    by_id = dict(zip(plan.ids, plan.points))
    todo = [(rid, dataclasses.asdict(p)) for rid, p in by_id.items() if existing.get(rid, {}).get("status") != "ok"]
    summary.n_skipped = len(plan.points) - len(todo)
    if not todo:
        flush()
        return rows()
    executor = Executor(workers, scheduler, len(todo))
    bar = progress(len(plan.points), desc=plan.module.NAME, enabled=show_progress, initial=summary.n_skipped)
    try:
        with _nested_progress(show_progress):
            for rid, result in executor.results(plan.module_name, todo):
                config = by_id[rid]
                rows_by_id[rid] = {"run_id": rid, **{f"p_{f}": getattr(config, f) for f in fields},
                                   **result["metrics"], "status": result["status"], "wall_s": result["wall_s"],
                                   "error": result["error"]}
                _record_outcome(out, rid, result, summary)
                flush()
                bar.update(1)
                if summary.n_failed:
                    bar.set_postfix(failed=summary.n_failed)
    except KeyboardInterrupt as exc:
        bar.close()
        executor.close(abort=True)
        flush()
        raise RunInterrupted(out, summary.n_done + summary.n_failed, exc) from None
    except BaseException:
        executor.close(abort=True)
        flush()
        raise
    bar.close()
    executor.close()
    return rows()


def _record_outcome(out: Path, rid: str, result: dict, summary: RunSummary) -> None:
    err_file = out / "errors" / f"{rid}.txt"
    if result["status"] == "ok":
        summary.n_done += 1
        err_file.unlink(missing_ok=True)
    else:
        summary.n_failed += 1
        if result.get("traceback"):
            atomic_write_text(err_file, result["traceback"])


def run_experiment(name: str, *, overrides: dict[str, list] | None = None, out_dir: str | os.PathLike | None = None,
                   workers: int = 1, scheduler: str | None = None, dry_run: bool = False,
                   show_progress: bool = True, results_root: str | os.PathLike = "results") -> RunSummary:
    """Run every point of experiment ``name``'s grid (with ``overrides``) that is not finished yet.

    ``workers > 1``: a local spawn process pool with one thread per worker; ``scheduler``
    ("tcp://host:port"): an existing Dask cluster. ``dry_run``: return the points with their run
    ids (status "done" for those already ok in ``out_dir``, else "pending") and write nothing.
    Ctrl-C: stop, write what finished, raise :class:`RunInterrupted` (a KeyboardInterrupt).
    """
    if workers < 1:
        raise ExperimentError(f"--workers must be at least 1, got {workers}")
    module = registry.get(name)
    if hasattr(module, "run_study"):  # a study, not a grid: it runs with the same options (experiments.codesign)
        return module.run_study(overrides=overrides, out_dir=out_dir, workers=workers, scheduler=scheduler,
                                dry_run=dry_run, show_progress=show_progress, results_root=results_root)
    plan = _plan(name, overrides)
    out = Path(out_dir) if out_dir is not None else None
    saved = saved_meta(out, plan.module)
    previous_columns: tuple[str, ...] = ()
    existing: dict[str, dict] = {}
    if out is not None and (out / "runs.csv").exists():
        cols, old_rows = read_runs(out / "runs.csv", plan.module.Config)
        previous_columns, existing = tuple(cols), {r["run_id"]: r for r in old_rows}
    done_ids = {rid for rid, r in existing.items() if r.get("status") == "ok"}

    if dry_run:
        fields = config_fields(plan.module.Config)
        rows = [{"run_id": rid, **{f"p_{f}": getattr(p, f) for f in fields},
                 "status": "done" if rid in done_ids else "pending"} for rid, p in zip(plan.ids, plan.points)]
        return RunSummary(out_dir=out, n_points=len(plan.points), n_skipped=len(done_ids & set(plan.ids)), rows=rows)

    out = make_dir(out, what="results folder") if out is not None else _stamp_dir(Path(results_root), plan.module.NAME)
    meta = _meta(plan, saved, out, overrides, workers, scheduler)
    write_json(out / "config.json", meta)
    summary = RunSummary(out_dir=out, n_points=len(plan.points))
    summary.rows = _execute(plan, out, existing, previous_columns, summary, workers=workers, scheduler=scheduler,
                            show_progress=show_progress)
    summary.figures, summary.report, summary.plot_error = render(out, plan.module, summary.rows, meta)
    return summary
