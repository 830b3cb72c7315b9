"""The experiment runner: grids, run ids, resume, local/Dask parallelism, results folders.

``run_experiment(name)`` expands the experiment's grid (with ``--set`` overrides), gives each
point a run id (hash of its full config, profile values included), skips ids already finished
in the output folder, runs the rest serially, in a local process pool or on a Dask cluster,
and writes ``results/<experiment>/<stamp>/`` (DESIGN.md §6):

- ``config.json`` — experiment, defaults, grid, overrides, git sha, package versions and every
  point's config with its resolved hardware-profile values;
- ``runs.csv`` — one tidy row per point: ``run_id``, ``p_<field>`` for every Config field, the
  metrics ``run()`` returned, ``status`` (ok/failed), ``wall_s``, ``error``; rewritten atomically
  after every finished point, so a crash or Ctrl-C loses only the points in flight;
- ``errors/<run_id>.txt`` — the traceback of a failed point (removed when a retry succeeds);
- ``figures/*.png`` and ``report.md``/``report.html`` (see :mod:`experiments.report`).

The table handed to ``plot()`` is the list of ok rows of runs.csv, values typed.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import importlib
import io
import itertools
import json
import os
import sys
import time
import traceback
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from experiments import registry
from experiments.registry import ExperimentError
from pchw.runlog import (
    RunError,
    atomic_write_text,
    csv_cell,
    git_sha,
    package_versions,
    progress,
    read_json,
    write_json,
)

STATUS_COLUMNS = ("status", "wall_s", "error")
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"", "none", "null"}


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run after the finished points were written to ``out_dir``."""

    def __init__(self, out_dir: Path, n_saved: int):
        self.out_dir, self.n_saved = out_dir, n_saved
        super().__init__(f"interrupted: {n_saved} finished point(s) saved in {out_dir} "
                         f"(rerun with --out {out_dir} to resume)")


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


# ------------------------------------------------------------------------------ config fields
def _config_class(config_cls_or_default) -> type:
    return config_cls_or_default if isinstance(config_cls_or_default, type) else type(config_cls_or_default)


def config_fields(config_cls_or_default) -> list[str]:
    """The Config's field names in declaration order."""
    return [f.name for f in dataclasses.fields(_config_class(config_cls_or_default))]


def _field_types(cls: type) -> dict[str, object]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # unresolvable annotations: fall back to the defaults' types
        return {f.name: f.type for f in dataclasses.fields(cls)}


def _type_name(tp: object) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _parse_one(tp: object, text: str) -> object:
    """Parse ``text`` as ``tp`` (int, float, bool, str, X | None, Literal); ValueError if it is not."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and text.strip().lower() in _NONE:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _parse_one(arg, text)
            except ValueError:
                continue
        raise ValueError
    if origin is typing.Literal:
        for choice in typing.get_args(tp):
            if str(choice) == text:
                return choice
        raise ValueError
    if tp is bool:
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError
    if tp is int:
        return int(text.strip())
    if tp is float:
        return float(text.strip())
    if tp is str:
        return text
    try:  # anything else: a JSON literal, else the plain string
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _check_typed(tp: object, value: object) -> object:
    """A Python (non-string) grid value: accept it if it fits ``tp`` (ints widen to float)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _check_typed(arg, value)
            except ValueError:
                continue
        raise ValueError
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise ValueError
    if tp is type(None):
        if value is None:
            return None
        raise ValueError
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp in (bool, str):
        if isinstance(value, tp):
            return value
        raise ValueError
    return value  # unknown annotation: trust the caller


def convert_value(config_cls_or_default, key: str, value: object) -> object:
    """``value`` for Config field ``key``: strings (from ``--set``) are parsed as the field's type."""
    cls = _config_class(config_cls_or_default)
    names = config_fields(cls)
    if key not in names:
        raise ExperimentError(f"unknown parameter {key!r}; {cls.__name__} fields are: {', '.join(names)}")
    tp = _field_types(cls).get(key, object)
    try:
        if isinstance(value, str) and tp is not str:
            return _parse_one(tp, value)
        return _check_typed(tp, value)
    except (ValueError, TypeError):
        raise ExperimentError(f"bad value {value!r} for {key}: expected {_type_name(tp)}") from None


def expand_grid(config_cls_or_default, grid: dict[str, list], overrides: dict[str, list] | None = None) -> list:
    """Every point of ``grid`` with ``overrides`` (which replace or add axes), as Config objects.

    The order is stable: axes in the grid's order, then new override axes in the order given;
    the last axis varies fastest. Duplicate points are dropped (first kept).
    """
    default = config_cls_or_default() if isinstance(config_cls_or_default, type) else config_cls_or_default
    axes: dict[str, list] = {}
    for source in (grid or {}, overrides or {}):
        for key, values in source.items():
            if isinstance(values, str | bytes) or not isinstance(values, list | tuple):
                values = [values]
            if not values:
                raise ExperimentError(f"no values given for {key!r}")
            axes[key] = [convert_value(default, key, v) for v in values]
    points: list = []
    for combo in itertools.product(*axes.values()):
        point = dataclasses.replace(default, **dict(zip(axes, combo)))
        if point not in points:
            points.append(point)
    return points


def parse_set(items: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    """``["a=1,2", "b=x"]`` → ``{"a": ["1", "2"], "b": ["x"]}``; one-line error on bad syntax."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ExperimentError(f"--set expects key=v1,v2, got {item!r}")
        if key in out:
            raise ExperimentError(f"--set {key} given twice; list every value once: {key}=v1,v2")
        out[key] = values.split(",")
    return out


# -------------------------------------------------------------------------------------- run ids
def _canonical(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def profile_values(config, module, cache: dict | None = None) -> dict[str, dict | None]:
    """Resolved hardware-profile values of the Config fields the module names in ``profile_fields``."""
    out: dict[str, dict | None] = {}
    names = config_fields(config)
    for name in getattr(module, "profile_fields", ()) or ():
        if name not in names:
            raise ExperimentError(f"profile_fields names {name!r}, which is not a Config field")
        value = getattr(config, name)
        if value is None:
            out[name] = None
            continue
        key = str(value)
        if cache is not None and key in cache:
            out[name] = cache[key]
            continue
        from pchw.profiles import load_profile

        resolved = json.loads(_canonical(load_profile(value).values()))  # plain JSON values
        if cache is not None:
            cache[key] = resolved
        out[name] = resolved
    return out


def run_id(config, module, *, _profiles: dict | None = None) -> str:
    """12 hex digits of the sha256 of the point's canonical JSON (experiment, config, profiles)."""
    profiles = _profiles if _profiles is not None else profile_values(config, module)
    payload = {"experiment": module.NAME, "config": dataclasses.asdict(config), "profiles": profiles}
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------------ runs.csv
_cell = csv_cell  # one cell format for every CSV the project writes


def _parse_cell(text: str) -> object:
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def runs_columns(fields: list[str], rows: list[dict], previous: tuple[str, ...] = ()) -> list[str]:
    """``run_id``, ``p_<field>``…, metrics (first-seen order, earlier CSV's first), status columns."""
    fixed = ["run_id", *(f"p_{f}" for f in fields)]
    metrics: list[str] = []
    for col in previous:
        if col not in fixed and col not in STATUS_COLUMNS and col not in metrics:
            metrics.append(col)
    for row in rows:
        for col in row:
            if col not in fixed and col not in STATUS_COLUMNS and col not in metrics:
                metrics.append(col)
    return [*fixed, *metrics, *STATUS_COLUMNS]


def runs_to_csv(columns: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def read_runs(path: str | os.PathLike, config_cls=None) -> tuple[list[str], list[dict]]:
    """Columns and typed rows of a runs.csv (``p_`` columns typed by ``config_cls`` when given)."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        raw_rows = list(reader)
    names = set(config_fields(config_cls)) if config_cls is not None else set()
    rows = []
    for raw in raw_rows:
        row: dict = {}
        for col, text in raw.items():
            if col in ("run_id", "status", "error"):
                row[col] = (text or None) if col == "error" else text
            elif col.startswith("p_") and col[2:] in names:
                try:
                    row[col] = convert_value(config_cls, col[2:], text)
                except ExperimentError:
                    row[col] = _parse_cell(text)
            else:
                row[col] = _parse_cell(text)
        rows.append(row)
    return columns, rows


# -------------------------------------------------------------------------------------- workers
def init_worker() -> None:
    """Process-pool initializer: one BLAS/OpenMP/numba thread per worker (set before imports)."""
    import signal

    for var in THREAD_ENV:
        os.environ[var] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _limit_torch_threads()


@contextlib.contextmanager
def _single_thread_env():
    """Set the thread-count variables to 1 in this process's environment for a moment.

    Spawned workers import numpy (through ``pchw``) while unpickling :func:`init_worker`, before
    it runs, so OpenBLAS must already see ``OPENBLAS_NUM_THREADS=1`` in the inherited environment.
    """
    saved = {var: os.environ.get(var) for var in THREAD_ENV}
    os.environ.update({var: "1" for var in THREAD_ENV})
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _limit_torch_threads() -> None:
    """torch.set_num_threads(1) if torch is loaded (importing it just for this costs seconds)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def run_point(module_name: str, config_dict: dict, *, single_thread: bool = True) -> dict:
    """Run one grid point: ``{"metrics", "status", "wall_s", "error", "traceback"}``; never raises.

    Top-level and taking plain values so it pickles for process pools and Dask.
    """
    t0 = time.perf_counter()
    try:
        module = importlib.import_module(module_name)
        config = module.Config(**config_dict)
        if single_thread:
            _limit_torch_threads()
        t0 = time.perf_counter()
        metrics = module.run(config)
        wall = time.perf_counter() - t0
        if not isinstance(metrics, dict):
            raise TypeError(f"run() returned {type(metrics).__name__}, expected a dict of metrics")
        reserved = sorted(k for k in metrics if k == "run_id" or k in STATUS_COLUMNS or str(k).startswith("p_"))
        if reserved:
            raise ValueError(f"run() returned reserved column names {reserved}")
        return {"metrics": metrics, "status": "ok", "wall_s": wall, "error": None, "traceback": None}
    except Exception as exc:
        wall = time.perf_counter() - t0
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
        return {"metrics": {}, "status": "failed", "wall_s": wall, "error": message,
                "traceback": traceback.format_exc()}


# ----------------------------------------------------------------------------------- the runner
def _stamp_dir(root: Path, name: str) -> Path:
    base = root / name
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base.mkdir(parents=True, exist_ok=True)
    out, n = base / stamp, 2
    while True:  # created here, so two runs started in the same second get different folders
        try:
            out.mkdir()
            return out
        except FileExistsError:
            out, n = base / f"{stamp}-{n}", n + 1


def _row(rid: str, config, fields: list[str], result: dict) -> dict:
    row = {"run_id": rid, **{f"p_{f}": getattr(config, f) for f in fields}}
    row.update(result["metrics"])
    row.update(status=result["status"], wall_s=result["wall_s"], error=result["error"])
    return row


class _Executor:
    """Serial, local process pool or Dask: submit points, yield (key, result) as they finish."""

    def __init__(self, workers: int, scheduler: str | None, n_todo: int):
        self.kind = "dask" if scheduler else ("pool" if workers > 1 and n_todo > 1 else "serial")
        self.pool = self.client = None
        self._futures: list = []
        if self.kind == "dask":
            try:
                import distributed
            except ImportError:
                raise ExperimentError("--scheduler needs Dask: pip install 'distributed>=2024.1'") from None
            try:
                self.client = distributed.Client(scheduler, timeout=30)
            except (OSError, TimeoutError) as exc:
                raise ExperimentError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        elif self.kind == "pool":
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(max_workers=min(workers, n_todo),
                                            mp_context=multiprocessing.get_context("spawn"),
                                            initializer=init_worker)

    def results(self, module_name: str, todo: list[tuple[str, dict]]):
        if self.kind == "serial":
            for key, config_dict in todo:
                yield key, run_point(module_name, config_dict, single_thread=False)
            return
        if self.kind == "pool":
            from concurrent.futures import as_completed
            from concurrent.futures.process import BrokenProcessPool

            with _single_thread_env():  # workers spawn during submit and inherit this environment
                futures = {self.pool.submit(run_point, module_name, c): k for k, c in todo}
            for future in as_completed(futures):
                try:
                    result = future.result()
                except BrokenProcessPool as exc:
                    result = {"metrics": {}, "status": "failed", "wall_s": None, "traceback": None,
                              "error": f"worker process died ({exc})"}
                yield futures[future], result
            return
        import distributed

        futures = {self.client.submit(run_point, module_name, c, pure=False): k for k, c in todo}
        self._futures = list(futures)
        for future in distributed.as_completed(list(futures)):
            try:
                result = future.result()
            except Exception as exc:  # a worker lost the task (killed, out of memory, ...)
                result = {"metrics": {}, "status": "failed", "wall_s": None, "traceback": None,
                          "error": " ".join(f"{type(exc).__name__}: {exc}".split())[:500]}
            yield futures[future], result

    def close(self, *, abort: bool = False) -> None:
        if self.pool is not None:
            if abort:
                for proc in list(getattr(self.pool, "_processes", {}).values()):
                    proc.terminate()  # points in flight are lost by design; don't wait for them
            self.pool.shutdown(wait=not abort, cancel_futures=True)
        if self.client is not None:
            if abort and self._futures:
                self.client.cancel(self._futures)
            self.client.close()


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
    module_name = registry.module_path(name)
    module = registry.get(name)
    if hasattr(module, "run_study"):  # a study, not a grid: it runs with the same options (experiments.codesign)
        return module.run_study(overrides=overrides, out_dir=out_dir, workers=workers, scheduler=scheduler,
                                dry_run=dry_run, show_progress=show_progress, results_root=results_root)
    fields = config_fields(module.Config)
    points = expand_grid(module.Config, module.GRID, overrides)
    cache: dict = {}
    profiles = [profile_values(p, module, cache) for p in points]
    ids = [run_id(p, module, _profiles=pv) for p, pv in zip(points, profiles)]

    out = Path(out_dir) if out_dir is not None else None
    previous_columns: tuple[str, ...] = ()
    existing: dict[str, dict] = {}
    if out is not None and (out / "runs.csv").exists():
        cols, old_rows = read_runs(out / "runs.csv", module.Config)
        previous_columns = tuple(cols)
        existing = {r["run_id"]: r for r in old_rows}
    done_ids = {rid for rid, r in existing.items() if r.get("status") == "ok"}

    if dry_run:
        rows = [{"run_id": rid, **{f"p_{f}": getattr(p, f) for f in fields},
                 "status": "done" if rid in done_ids else "pending"} for rid, p in zip(ids, points)]
        skipped = sum(r["status"] == "done" for r in rows)
        return RunSummary(out_dir=out, n_points=len(points), n_skipped=skipped, rows=rows)

    if out is None:
        out = _stamp_dir(Path(results_root), module.NAME)
    config_path = out / "config.json"
    saved = read_json(config_path) if config_path.exists() else {}
    if saved and saved.get("experiment") != module.NAME:
        raise RunError(f"{out} holds results of experiment {saved.get('experiment')!r}, not {module.NAME!r}; "
                       f"choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    point_info = dict(saved.get("points", {}))
    for rid, p, pv in zip(ids, points, profiles):
        point_info[rid] = {"config": dataclasses.asdict(p), "profiles": pv}
    meta = {
        "experiment": module.NAME,
        "module": module_name,
        "title": module.TITLE,
        "stamp": saved.get("stamp", out.name),
        "defaults": dataclasses.asdict(module.Config()),
        "grid": module.GRID,
        "overrides": {k: [convert_value(module.Config, k, v) for v in (vs if isinstance(vs, list | tuple) else [vs])]
                      for k, vs in (overrides or {}).items()},
        "git_sha": git_sha(),
        "versions": package_versions(("numpy", "torch", "numba", "brian2", "scipy", "matplotlib", "distributed")),
        "started": saved.get("started", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
        "invocations": [*saved.get("invocations", []),
                        {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "overrides": overrides or {},
                         "workers": workers, "scheduler": scheduler, "n_points": len(points)}],
        "points": point_info,
    }
    write_json(config_path, meta)

    order = [*existing, *(rid for rid in ids if rid not in existing)]
    rows_by_id = dict(existing)

    def flush() -> None:
        rows = [rows_by_id[rid] for rid in order if rid in rows_by_id]
        atomic_write_text(out / "runs.csv", runs_to_csv(runs_columns(fields, rows, previous_columns), rows))

    todo = [(rid, dataclasses.asdict(p)) for rid, p in zip(ids, points) if rid not in done_ids]
    by_id = dict(zip(ids, points))
    summary = RunSummary(out_dir=out, n_points=len(points), n_skipped=len(points) - len(todo))
    if todo:
        executor = _Executor(workers, scheduler, len(todo))
        bar = progress(len(points), desc=module.NAME, enabled=show_progress, initial=summary.n_skipped)
        try:
            for rid, result in executor.results(module_name, todo):
                rows_by_id[rid] = _row(rid, by_id[rid], fields, result)
                err_file = out / "errors" / f"{rid}.txt"
                if result["status"] == "ok":
                    summary.n_done += 1
                    if err_file.exists():
                        err_file.unlink()
                else:
                    summary.n_failed += 1
                    if result.get("traceback"):
                        atomic_write_text(err_file, result["traceback"])
                flush()
                bar.update(1)
                if summary.n_failed:
                    bar.set_postfix(failed=summary.n_failed)
        except KeyboardInterrupt:
            bar.close()
            executor.close(abort=True)
            flush()
            raise RunInterrupted(out, summary.n_done + summary.n_failed) from None
        except BaseException:
            executor.close(abort=True)
            flush()
            raise
        bar.close()
        executor.close()
    else:
        flush()

    from experiments.report import render

    rows = [rows_by_id[rid] for rid in order if rid in rows_by_id]
    summary.rows = rows
    summary.figures, summary.report, summary.plot_error = render(out, module, rows, meta)
    return summary
