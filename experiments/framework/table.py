"""Reading runs.csv tables in plot and describe functions, and the interval of a measured accuracy.

A table is a list of row dicts: parameters under ``p_<field>`` (runs.csv) or ``<field>`` (raw rows),
metrics under their names. Every experiment module reads cells through these functions.
"""

from __future__ import annotations

from pchw.stats import wilson_interval  # noqa: F401 - the report's interval, re-exported with the row readers


def param(row: dict, name: str):
    """A Config field's value in a row (``p_<name>`` in runs.csv tables, ``name`` in raw rows)."""
    return row.get(f"p_{name}", row.get(name))


def number(value) -> float:
    """A cell as a float; empty, None or non-numeric cells are NaN."""
    if value in (None, "", "None"):
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def value(row: dict, name: str) -> float:
    """``number(param(row, name))``: a parameter or metric of a row as a float (NaN if absent)."""
    return number(param(row, name))


def flag(cell) -> bool:
    """A boolean cell (``True``/``true``/``1``/``yes``) as a bool; anything else is False."""
    return str(cell).strip().lower() in ("true", "1", "yes")
