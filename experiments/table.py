"""Reading runs.csv rows in plot functions: parameters under ``p_<field>``, cells as numbers."""

from __future__ import annotations


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
