"""Run directories, history CSVs, atomic writes and progress bars for training loops.

Shared by the software training loop (``models``) and in-situ hardware training
(``simulators``), which must not import each other (DESIGN.md §1). A run directory holds:

- ``config.json``  — the full configuration, git sha and package versions;
- ``history.csv``  — one row per iteration: ``iteration, train_loss, free_energy, test_acc,
  wall_s`` plus optional measured columns (e.g. ``gpu_energy_j``); empty cells mean "not
  measured at this iteration", never zero;
- ``checkpoint.<ext>`` — backend-specific state (weights, optimiser, RNG, iteration, wall_s),
  always written atomically so that a crash, Ctrl-C or a full disk leaves the previous one
  intact, and carrying :func:`payload_sha256` of its contents, verified when it is read
  (:func:`verify_payload`), with :func:`check_matches_run` against the config.json beside it.

Every file error (no such folder, not writable, disk full, invalid JSON, a history cell that is
not a number) is a one-line :class:`RunError`. Writes follow a symlink to its target and go
straight through a pipe or character device; they never replace either with a plain file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import PchwError

HISTORY_COLUMNS = ("iteration", "train_loss", "free_energy", "test_acc", "wall_s")
PROGRESS_ENV = "PCHW_PROGRESS"  # "1": loops run inside an experiment point show their own progress bars


class RunError(PchwError, ValueError):
    """A run directory or file that cannot be used as asked (one clear line)."""


class CheckpointError(RunError):
    """A checkpoint that cannot be trusted: unreadable, truncated, corrupt or from another run."""


class DivergenceError(PchwError, RuntimeError):
    """Training produced a non-finite free energy, loss or weight (the input was valid: exit 1)."""

    exit_code = 1

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


def _write_target(path: Path) -> tuple[Path, bool]:
    """(where to write, atomically?) for ``path``: a regular or absent file is replaced atomically; a
    symlink is followed and its target replaced; a FIFO or character device (a pipe, /dev/stdout,
    /dev/null) is written straight through; a folder, socket or block device is refused."""
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return target, True
    except OSError as exc:
        raise RunError(f"cannot write {path}: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode):
        return target, True
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return target, False
    kind = "a folder" if stat.S_ISDIR(mode) else "a block device" if stat.S_ISBLK(mode) else "not a regular file"
    raise RunError(f"cannot write {path}: it is {kind}; give a file path")


def check_writable(path: str | os.PathLike) -> None:
    """Raise a one-line :class:`RunError` now if ``path`` could not be written later (so an hour of work
    is not lost to a typo): a folder, socket or block device, or a place whose folder cannot hold files."""
    target, atomic = _write_target(Path(path))
    if not atomic:
        return
    anchor = target.parent  # the nearest existing folder (a file on the way fails in _write_target)
    while not anchor.exists() and anchor != anchor.parent:
        anchor = anchor.parent
    try:
        fd, probe = tempfile.mkstemp(prefix=".pchw-probe.", dir=anchor)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise RunError(f"cannot write {path}: {exc.strerror or exc}") from None


def atomic_save(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``: readers see old or new, never half.

    A symlink is written through to its target; a pipe or character device is written directly.
    Any OS failure (no such folder, not writable, disk full) is a one-line :class:`RunError`; the
    old file, if any, is left as it was.
    """
    path = Path(path)
    target, atomic = _write_target(path)
    if not atomic:
        try:
            write(str(target))
        except OSError as exc:
            raise RunError(f"cannot write {path}: {exc.strerror or exc}") from None
        return
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        write(tmp)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise RunError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_save`), synced to disk."""
    def _write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            if os.path.isfile(tmp):  # fsync is for files; a pipe or device has nothing to sync
                os.fsync(f.fileno())

    atomic_save(path, _write)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: object) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def make_dir(path: str | os.PathLike, *, what: str = "folder") -> Path:
    """Create folder ``path`` (and its parents) or say in one line why it cannot be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RunError(f"cannot create {what} {path}: a file of that name is in the way; choose another path") from None
    except OSError as exc:
        raise RunError(f"cannot create {what} {path}: {exc.strerror or exc}") from None
    return path


# ------------------------------------------------------------------------------ checkpoint integrity
def _feed(h, obj: object, leaf: Callable[[object], object] | None) -> None:
    if leaf is not None:
        obj = leaf(obj)
    if isinstance(obj, dict):
        h.update(b"d%d:" % len(obj))
        for key in sorted(obj, key=str):
            _feed(h, str(key), None)
            _feed(h, obj[key], leaf)
    elif isinstance(obj, list | tuple):
        h.update(b"l%d:" % len(obj))
        for item in obj:
            _feed(h, item, leaf)
    elif isinstance(obj, np.ndarray):
        data = np.ascontiguousarray(obj)
        h.update(f"a{data.dtype.str}{data.shape}:".encode())
        h.update(data.tobytes())
    elif isinstance(obj, bool | np.bool_):
        h.update(b"b1" if obj else b"b0")
    elif isinstance(obj, int | np.integer):
        h.update(b"i%d;" % int(obj))
    elif isinstance(obj, float | np.floating):
        h.update(b"f" + float(obj).hex().encode() + b";")
    elif isinstance(obj, str):
        data = obj.encode()
        h.update(b"s%d:" % len(data) + data)
    elif isinstance(obj, bytes):
        h.update(b"y%d:" % len(obj) + obj)
    elif obj is None:
        h.update(b"n")
    else:
        raise TypeError(f"payload_sha256 cannot hash {type(obj).__name__} (give a leaf converter)")


def payload_sha256(payload: object, *, leaf: Callable[[object], object] | None = None) -> str:
    """sha256 of a checkpoint's contents, stored in the checkpoint and verified when it is loaded.

    The hash runs over a canonical walk of nested dicts (keys sorted), lists, numpy arrays (dtype,
    shape and bytes), numbers, strings, bytes and None; ``leaf`` turns anything else (a torch
    tensor) into those first. Equal contents hash equal whatever the file's container format, and
    any changed byte of an array, number or string changes the hash.
    """
    h = hashlib.sha256()
    _feed(h, payload, leaf)
    return h.hexdigest()


def verify_payload(payload: object, stored: object, path: str | os.PathLike, *,
                   leaf: Callable[[object], object] | None = None) -> None:
    """Raise :class:`CheckpointError` unless ``stored`` is the :func:`payload_sha256` of ``payload``."""
    if not isinstance(stored, str):
        raise CheckpointError(f"{path} carries no integrity digest (written by an older pchw, or not a pchw "
                              f"checkpoint); start the run again")
    if payload_sha256(payload, leaf=leaf) != stored:
        raise CheckpointError(f"{path} fails its integrity check: the sha256 of its contents differs from the one "
                              f"stored when it was saved, so the file is corrupt or was edited; restore it or "
                              f"start the run again")


def check_matches_run(path: str | os.PathLike, config: dict, *, ignore: tuple[str, ...]) -> None:
    """Raise :class:`CheckpointError` if the checkpoint at ``path`` was written for another configuration
    than the ``config.json`` beside it (keys in ``ignore`` may differ: they may change on resume)."""
    config_path = Path(path).parent / "config.json"
    if not config_path.exists():
        return
    saved = read_json(config_path).get("config")
    if not isinstance(saved, dict):
        raise RunError(f"{config_path} has no 'config' object; it is not a pchw run's config.json")
    for key in sorted(set(saved) & set(config)):
        if key not in ignore and saved[key] != config[key]:
            raise CheckpointError(f"{path} was written for {key}={config[key]!r} but {config_path} says "
                                  f"{saved[key]!r}: the two files come from different runs")


def config_from_dict(cls, d: dict):
    """Rebuild a frozen config dataclass from its saved dict, ignoring keys it no longer has."""
    from dataclasses import fields

    return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def read_json(path: str | os.PathLike) -> dict:
    """A JSON object from ``path``; one-line RunError if it is unreadable, not JSON or not an object."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                       f"restore it or start again in a new folder") from None
    if not isinstance(obj, dict):
        raise RunError(f"{path} holds a JSON {type(obj).__name__}, expected an object")
    return obj


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
        """The history in ``path``; one-line RunError for an unreadable file or a cell that is not a number."""
        try:
            with open(path, encoding="utf-8", newline="") as f:
                reader = csv.DictReader(f)
                columns = tuple(reader.fieldnames or HISTORY_COLUMNS)
                if "iteration" not in columns:
                    raise RunError(f"{path} is not a training history: its header lacks 'iteration'")
                rows = [_history_row(raw, f"{path} line {reader.line_num}") for raw in reader]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise RunError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
        return cls(columns=columns, rows=rows)


def _history_row(raw: dict, where: str) -> dict:
    if None in raw or any(v is None for v in raw.values()):
        raise RunError(f"{where} has a different number of cells than the header; fix or delete that line")
    row: dict = {}
    for k, v in raw.items():
        try:
            row[k] = None if v == "" else int(v) if k == "iteration" else float(v)
        except ValueError:
            raise RunError(f"{where}: {k}={v!r} is not a number; fix or delete that line") from None
    return row


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
        self.may_change: tuple[str, ...] = ()
        self._pending: dict | None = None

    def start(self, config: dict, *, resume: bool, may_change: tuple[str, ...] = ()) -> None:
        """Create the folder for a new run (writing config.json), or check that ``config`` matches the
        run to resume (config.json is rewritten only by :meth:`commit`, once the checkpoint is read).

        Keys in ``may_change`` (e.g. the iteration budget) may differ on resume.
        """
        self.may_change = may_change
        self._pending = {"config": config, "git_sha": git_sha(), "versions": package_versions()}
        if resume:
            if not self.checkpoint_path.exists():
                raise RunError(f"--resume: no checkpoint at {self.checkpoint_path}")
            saved = read_json(self.config_path).get("config")
            if not isinstance(saved, dict):
                raise RunError(f"--resume: {self.config_path} has no 'config' object; it is not a pchw run's")
            for key in sorted(set(saved) | set(config)):
                if key not in may_change and saved.get(key) != config.get(key):
                    raise RunError(f"--resume: {key}={config.get(key)!r} differs from the saved run's "
                                   f"{saved.get(key)!r} in {self.config_path}")
            return
        if self.checkpoint_path.exists():
            raise RunError(f"{self.path} already holds a run; pass --resume to continue it or choose another --out")
        make_dir(self.path, what="run folder")
        self.commit(0, 0)

    def commit(self, done: int, total: int) -> None:
        """Write config.json for a run that goes from iteration ``done`` to ``total``; refuse a resumed
        run whose new budget ends before the iterations it has already done."""
        if done > total:
            raise RunError(f"--resume: {self.path} has done {done} iterations, more than the {total} now asked "
                           f"for; give --iters/--epochs for at least {done} iterations (the run is unchanged)")
        if self._pending is not None:
            write_json(self.config_path, self._pending)
            self._pending = None

    def read_history(self, columns: tuple[str, ...]) -> History:
        if not self.history_path.exists():
            return History(columns=columns)
        saved = History.read(self.history_path)
        return History(columns=columns, rows=saved.rows)


def nested_progress() -> bool:
    """True when the experiment runner asked the loops inside a point (e.g. the training of a shared
    network) to show progress bars of their own (``PCHW_PROGRESS=1``)."""
    return os.environ.get(PROGRESS_ENV) == "1"


def progress(total: int, *, desc: str, enabled: bool = True, initial: int = 0, leave: bool = True):
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
        leave=leave,
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
    loop's own checkpoint format; a save that fails (disk full) stops the run with one line saying
    that the previous checkpoint is kept. A resumed run whose budget ``total`` ends before ``start``
    is refused before anything is written.
    """

    def __init__(self, *, history: History, run: RunDir | None, total: int, start: int, wall_before: float,
                 test_every: int, save: Callable[[int, float], None], desc: str, show_progress: bool,
                 resumed: bool):
        if run is not None:
            run.commit(start, total)
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
        try:
            self.history.write(self.run.history_path)
            self._save(iteration, self.wall())
        except RunError as exc:
            kept = ("no checkpoint of this run was written yet" if self.checkpoint_at is None
                    else f"the previous checkpoint (iteration {self.checkpoint_at}) is kept")
            raise RunError(f"checkpoint at iteration {iteration} not saved: {exc.one_line()}; {kept}") from None
        self.checkpoint_at = iteration

    def is_test_point(self, done: int) -> bool:
        """Whether iteration ``done`` ends with an evaluation and a checkpoint."""
        return done % self.test_every == 0 or done == self.total

    def end_iteration(self, done: int, row: dict, evaluate: Callable[[], dict]) -> None:
        """Record iteration ``done``; ``evaluate()`` returns the columns measured at test points."""
        row = {"iteration": done, **row, "wall_s": self.wall()}
        test_point = self.is_test_point(done)
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
