"""``runs.csv``: the tidy table of a results folder, one row per grid point.

Columns: ``run_id``, ``p_<field>`` for every Config field, the metrics ``run()`` returned (in
first-seen order), then ``status`` (``ok``/``failed``), ``wall_s`` and ``error``. Cells are written
by :func:`pchw.runlog.csv_cell` (floats as ``repr``, so they read back exactly; None as empty).

:func:`read_runs` reads the table back with values typed, and refuses a malformed row (wrong
number of cells, no run id, an unknown status, a parameter its Config cannot hold) with one line
naming the file and line, so that a damaged table is never carried into the next one.
"""

from __future__ import annotations

import csv
import io
import os
import re

from pchw.runlog import RunError, csv_cell

from .grid import config_fields, convert_value
from .registry import ExperimentError

STATUS_COLUMNS = ("status", "wall_s", "error")
STATUSES = ("ok", "failed")
_RUN_ID = re.compile(r"[0-9a-f]{12}")


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
    for col in [*previous, *(c for row in rows for c in row)]:
        if col not in fixed and col not in STATUS_COLUMNS and col not in metrics:
            metrics.append(col)
    return [*fixed, *metrics, *STATUS_COLUMNS]


def runs_to_csv(columns: list[str], rows: list[dict]) -> str:
    """The CSV text of ``rows`` under ``columns`` (missing cells empty)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def _typed_row(raw: dict, names: set[str], config_cls, where: str, runs_table: bool = True) -> dict:
    if None in raw or any(v is None for v in raw.values()):
        raise RunError(f"{where} has {'more' if None in raw else 'fewer'} cells than the header; "
                       f"fix or delete that row (its point then runs again)")
    if runs_table and not _RUN_ID.fullmatch(raw.get("run_id") or ""):
        raise RunError(f"{where}: run_id {raw.get('run_id')!r} is not 12 hex digits; fix or delete that row")
    if runs_table and raw.get("status") not in STATUSES:
        raise RunError(f"{where}: status {raw.get('status')!r} is not one of {', '.join(STATUSES)}; "
                       f"fix or delete that row")
    row: dict = {}
    for col, text in raw.items():
        if col in ("run_id", "status"):
            row[col] = text
        elif col == "error":
            row[col] = text or None
        elif col.startswith("p_") and col[2:] in names:
            try:
                row[col] = convert_value(config_cls, col[2:], text)
            except ExperimentError as exc:
                raise RunError(f"{where}: {exc}; fix or delete that row") from None
        else:
            row[col] = _parse_cell(text)
    return row


def read_runs(path: str | os.PathLike, config_cls=None, *, required: tuple[str, ...] = ("run_id", "status")
              ) -> tuple[list[str], list[dict]]:
    """Columns and typed rows of a runs.csv (``p_`` columns typed by ``config_cls`` when given).

    Raises :class:`~pchw.runlog.RunError` for an unreadable file, a header without the ``required``
    columns (a runs table's ``run_id`` and ``status``; other tables name theirs), or a malformed row
    (the message names its line).
    """
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            columns = list(reader.fieldnames or [])
            missing = [c for c in required if c not in columns]
            if missing:
                raise RunError(f"{path} is not a runs table: its header lacks {', '.join(missing)}")
            names = set(config_fields(config_cls)) if config_cls is not None else set()
            runs_table = "run_id" in required
            rows = [_typed_row(raw, names, config_cls, f"{path} line {reader.line_num}", runs_table) for raw in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RunError(f"cannot read {path}: {exc}") from None
    return columns, rows
