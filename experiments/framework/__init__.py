"""The machinery behind every experiment: registry, grids, run ids, runs.csv, execution, reports.

- :mod:`~experiments.framework.registry` — experiment names → modules, the experiment protocol;
- :mod:`~experiments.framework.grid` — ``--set`` typing and grid expansion into checked points;
- :mod:`~experiments.framework.run_ids` — a point's id (hash of its config and hardware values);
- :mod:`~experiments.framework.runs_csv` — the runs.csv table, written and read back strictly;
- :mod:`~experiments.framework.executor` — serial, process-pool and Dask execution of points;
- :mod:`~experiments.framework.runner` — :func:`run_experiment`: a grid into a results folder;
- :mod:`~experiments.framework.report` — figures with captions, intervals, the report files;
- :mod:`~experiments.framework.table` — reading table cells in ``plot``/``describe``, Wilson intervals.

Imports flow one way down that list (registry ← grid ← runs_csv ← report ← runner); no module
imports one below it (tests/test_layering.py checks that no package has an import circle).
"""

from .grid import FIELD_RULES, config_fields, convert_value, expand_grid, parse_set
from .registry import EXPERIMENTS, ExperimentError, register
from .report import combine, rebuild, render, write_report
from .run_ids import profile_values, run_id
from .runner import RunInterrupted, RunSummary, run_experiment
from .runs_csv import STATUS_COLUMNS, read_runs, runs_columns, runs_to_csv
from .table import flag, number, param, value, wilson_interval

__all__ = [
    "EXPERIMENTS",
    "FIELD_RULES",
    "STATUS_COLUMNS",
    "ExperimentError",
    "RunInterrupted",
    "RunSummary",
    "combine",
    "config_fields",
    "convert_value",
    "expand_grid",
    "flag",
    "number",
    "param",
    "parse_set",
    "profile_values",
    "read_runs",
    "rebuild",
    "register",
    "render",
    "run_experiment",
    "run_id",
    "runs_columns",
    "runs_to_csv",
    "value",
    "wilson_interval",
    "write_report",
]
