"""Run directories, history CSVs, atomic writes and progress bars for training loops.

Shared by the software training loop (``models``) and in-situ hardware training
(``simulators``), which must not import each other (DESIGN.md §1). A run directory holds:

- ``config.json``  — the full configuration, git sha and package versions;
- ``history.csv``  — one row per iteration: ``iteration, train_loss, free_energy, test_acc,
  wall_s`` plus optional measured columns (e.g. ``gpu_energy_j``); empty cells mean "not
  measured at this iteration", never zero;
- ``checkpoint.<ext>`` — backend-specific state (weights, optimiser, RNG, iteration, wall_s),
  always written atomically so that a crash or Ctrl-C leaves the previous one intact.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HISTORY_COLUMNS = ("iteration", "train_loss", "free_energy", "test_acc", "wall_s")


class RunError(ValueError):
    """A run directory that cannot be used as asked (one clear line)."""


class DivergenceError(RuntimeError):
    """Training produced a non-finite free energy, loss or weight."""

    def __init__(self, iteration: int, what: str, checkpoint_iteration: int | None):
        self.iteration = iteration
        self.checkpoint_iteration = checkpoint_iteration
        kept = (
            f"; last good checkpoint is at iteration {checkpoint_iteration}"
            if checkpoint_iteration is not None
            else ""
        )
        super().__init__(
            f"training diverged at iteration {iteration}: {what} is not finite "
            f"(try a smaller --param-lr or --activity-lr){kept}"
        )


def atomic_save(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``: readers see old or new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    def _write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    atomic_save(path, _write)


def write_json(path: str | os.PathLike, obj: object) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def config_from_dict(cls, d: dict):
    """Rebuild a frozen config dataclass from its saved dict, ignoring keys it no longer has."""
    from dataclasses import fields

    return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def read_json(path: str | os.PathLike) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def csv_cell(value: object) -> str:
    """A CSV cell: empty for None and NaN ("not measured"), repr for floats (exact round trip)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


@dataclass
class History:
    """Per-iteration training metrics, written as a tidy CSV."""

    columns: tuple[str, ...] = HISTORY_COLUMNS
    rows: list[dict] = field(default_factory=list)

    def append(self, **row: object) -> None:
        unknown = set(row) - set(self.columns)
        if unknown:
            raise KeyError(f"unknown history columns {sorted(unknown)}; known: {self.columns}")
        self.rows.append(row)

    def truncate(self, iteration: int) -> None:
        """Drop rows after ``iteration`` (rows written after the checkpoint we resume from)."""
        self.rows = [r for r in self.rows if int(r["iteration"]) <= iteration]

    def last(self, column: str) -> float | None:
        """The most recent non-empty value of ``column``."""
        for row in reversed(self.rows):
            value = row.get(column)
            if value not in (None, "") and not (isinstance(value, float) and math.isnan(value)):
                return float(value)
        return None

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow([csv_cell(row.get(c)) for c in self.columns])
        return buf.getvalue()

    def write(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, self.to_csv())

    @classmethod
    def read(cls, path: str | os.PathLike) -> History:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            columns = tuple(reader.fieldnames or HISTORY_COLUMNS)
            rows = []
            for raw in reader:
                row: dict = {}
                for k, v in raw.items():
                    if v == "":
                        row[k] = None
                    elif k == "iteration":
                        row[k] = int(v)
                    else:
                        row[k] = float(v)
                rows.append(row)
        return cls(columns=columns, rows=rows)


def git_sha() -> str | None:
    """The current commit of the source tree, if it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def package_versions(names: tuple[str, ...] = ("numpy", "torch", "numba", "brian2", "scipy")) -> dict:
    """Versions of the packages that decide numerical results (absent ones omitted)."""
    from importlib import metadata

    versions = {"python": sys.version.split()[0]}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


class RunDir:
    """A training run's folder: config, history and checkpoint, with resume checks."""

    def __init__(self, path: str | os.PathLike, *, checkpoint_name: str = "checkpoint.pt"):
        self.path = Path(path)
        self.config_path = self.path / "config.json"
        self.history_path = self.path / "history.csv"
        self.checkpoint_path = self.path / checkpoint_name

    def start(self, config: dict, *, resume: bool, may_change: tuple[str, ...] = ()) -> None:
        """Create the folder for a new run, or check that ``config`` matches the run to resume.

        Keys in ``may_change`` (e.g. the iteration budget) may differ on resume.
        """
        if resume:
            if not self.checkpoint_path.exists():
                raise RunError(f"--resume: no checkpoint at {self.checkpoint_path}")
            saved = read_json(self.config_path).get("config", {})
            for key in sorted(set(saved) | set(config)):
                if key in may_change:
                    continue
                if saved.get(key) != config.get(key):
                    raise RunError(
                        f"--resume: {key}={config.get(key)!r} differs from the saved run's "
                        f"{saved.get(key)!r} in {self.config_path}"
                    )
        elif self.checkpoint_path.exists():
            raise RunError(
                f"{self.path} already holds a run; pass --resume to continue it or choose another --out"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(
            self.config_path,
            {"config": config, "git_sha": git_sha(), "versions": package_versions()},
        )

    def read_history(self, columns: tuple[str, ...]) -> History:
        if not self.history_path.exists():
            return History(columns=columns)
        saved = History.read(self.history_path)
        return History(columns=columns, rows=saved.rows)


def progress(total: int, *, desc: str, enabled: bool = True, initial: int = 0):
    """A progress bar with rate and ETA on stderr (a no-op object when disabled)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        disable=not enabled,
        unit="it",
        dynamic_ncols=True,
        file=sys.stderr,
    )


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped training after a checkpoint was saved at ``iteration``."""

    def __init__(self, iteration: int, checkpoint: Path | None):
        self.iteration = iteration
        self.checkpoint = checkpoint
        where = f"; checkpoint saved to {checkpoint} (continue with --resume)" if checkpoint else ""
        super().__init__(f"interrupted at iteration {iteration}{where}")


class InterruptGuard:
    """Turn the first Ctrl-C into a flag checked between iterations, so that the loop can save
    a consistent checkpoint before stopping; a second Ctrl-C interrupts at once.

    Outside the main thread (where signal handlers cannot be installed) it does nothing.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> InterruptGuard:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return None


class TrainingLoop:
    """The bookkeeping every training loop shares, as a context manager around its iterations.

    It keeps the wall clock (continuing a resumed run's), appends one history row per iteration,
    evaluates and checkpoints every ``test_every`` iterations and at the last one, turns Ctrl-C
    into a checkpoint and :class:`Interrupted`, and on :class:`DivergenceError` writes the
    history while leaving the last good checkpoint alone. ``save(iteration, wall_s)`` writes the
    loop's own checkpoint format.
    """

    def __init__(self, *, history: History, run: RunDir | None, total: int, start: int, wall_before: float,
                 test_every: int, save: Callable[[int, float], None], desc: str, show_progress: bool,
                 resumed: bool):
        self.history, self.run, self.total, self.test_every = history, run, total, test_every
        self._save, self._wall_before = save, wall_before
        self.checkpoint_at: int | None = start if resumed else None
        self._bar = progress(total, desc=desc, enabled=show_progress, initial=start)
        self._guard = InterruptGuard()
        self._t0 = 0.0

    def __enter__(self) -> TrainingLoop:
        import time

        self._t0 = time.perf_counter()
        self._guard.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._guard.__exit__(exc_type, exc, tb)
        self._bar.close()
        if exc_type is not None and issubclass(exc_type, DivergenceError) and self.run is not None:
            self.history.write(self.run.history_path)  # the record of what happened; checkpoint untouched

    def wall(self) -> float:
        import time

        return self._wall_before + time.perf_counter() - self._t0

    def checkpoint(self, iteration: int) -> None:
        if self.run is None:
            return
        self.history.write(self.run.history_path)
        self._save(iteration, self.wall())
        self.checkpoint_at = iteration

    def end_iteration(self, done: int, row: dict, evaluate: Callable[[], dict]) -> None:
        """Record iteration ``done``; ``evaluate()`` returns the columns measured at test points."""
        row = {"iteration": done, **row, "wall_s": self.wall()}
        test_point = done % self.test_every == 0 or done == self.total
        if test_point:
            measured = evaluate()
            row.update(measured)
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in measured.items()})
        self.history.append(**row)
        if test_point:
            self.checkpoint(done)
        self._bar.update(1)
        if self._guard.requested:
            self.checkpoint(done)
            raise Interrupted(done, self.run.checkpoint_path if self.run is not None else None)
