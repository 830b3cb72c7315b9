"""The registry of experiments: names → module paths, imported lazily.

An experiment is a module with ``NAME``, ``TITLE``, a frozen ``Config`` dataclass of defaults,
``GRID`` (dict of lists over Config fields), a pure ``run(config) -> dict`` (one row of metrics)
and ``plot(table, outdir) -> list[Path]``; optionally ``DESCRIPTION``, ``profile_fields``
(Config fields holding a hardware profile name or TOML path, whose resolved values enter the
run id and config.json), ``describe(table) -> dict[figure file name, sentence]`` (what each
figure shows and concludes, for the report) and ``sample_counts`` (accuracy column → the column
holding its number of test samples; see :mod:`experiments.framework.report`).

Three ways to name an experiment:

- a registered name (``EXPERIMENTS``, or :func:`register` at run time);
- ``PCHW_EXPERIMENTS="name=package.module,other=pkg.mod"`` in the environment (plugins);
- ``module:package.module`` — any importable module that follows the protocol, without
  registering it (the tests run ``pchw run module:tests.toy_experiment``).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from pchw.errors import PchwError

EXPERIMENTS: dict[str, str] = {
    "tradeoff": "experiments.tradeoff",
    "hardware-sweep": "experiments.hardware_sweep",
    "break-even": "experiments.break_even",
    "theory": "experiments.theory_checks",
    "depth-scaling": "experiments.depth_scaling",
    "lr-transfer": "experiments.lr_transfer",
    "insitu-ablation": "experiments.insitu_ablation",
    "device-realism": "experiments.device_realism",
    "noise-correlation": "experiments.noise_correlation",
    "codesign": "experiments.codesign",
}

MODULE_PREFIX = "module:"
ENV_VAR = "PCHW_EXPERIMENTS"
REQUIRED = ("NAME", "TITLE", "Config", "GRID", "run", "plot")
# a study (an optimiser proposes its points; experiments.codesign) runs and reports itself
STUDY_REQUIRED = ("NAME", "TITLE", "Config", "run_study", "rebuild")


class ExperimentError(PchwError, ValueError):
    """An unknown or broken experiment, or a bad grid/override (one clear line)."""


def register(name: str, module_path: str) -> None:
    """Make ``name`` run the experiment module ``module_path`` (for tests and plugins)."""
    if not name or not module_path:
        raise ExperimentError("register() needs a name and a module path")
    EXPERIMENTS[name] = module_path


def _env_entries() -> dict[str, str]:
    out: dict[str, str] = {}
    for item in os.environ.get(ENV_VAR, "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ExperimentError(f"{ENV_VAR}: expected 'name=package.module', got {item!r}")
        out[name.strip()] = path.strip()
    return out


def _all() -> dict[str, str]:
    return {**EXPERIMENTS, **_env_entries()}


def names() -> list[str]:
    """Registered experiment names (built-in, registered, then from ``PCHW_EXPERIMENTS``)."""
    return list(_all())


def module_path(name: str) -> str:
    """The dotted module path behind ``name`` (a registered name or ``module:pkg.mod``)."""
    if name.startswith(MODULE_PREFIX):
        path = name[len(MODULE_PREFIX):].strip()
        if not path:
            raise ExperimentError(f"{name!r}: expected 'module:package.module'")
        return path
    known = _all()
    if name not in known:
        raise ExperimentError(
            f"unknown experiment {name!r}; known: {', '.join(known) or 'none'} "
            f"(or module:package.module)"
        )
    return known[name]


def load_module(path: str, *, label: str | None = None) -> ModuleType:
    """Import an experiment module by dotted path and check it follows the protocol."""
    label = label or path
    try:
        module = importlib.import_module(path)
    except ImportError as exc:
        raise ExperimentError(f"experiment {label!r} is not installed ({path}: {exc})") from None
    required = STUDY_REQUIRED if hasattr(module, "run_study") else REQUIRED
    missing = [attr for attr in required if not hasattr(module, attr)]
    if missing:
        raise ExperimentError(f"experiment module {path} lacks {', '.join(missing)}")
    return module


def registered_path(name: str) -> str | None:
    """The module path of a registered name (built-in, :func:`register` or ``PCHW_EXPERIMENTS``), else None.

    Only these, or a module the user names on the command line, may be imported: a name read from
    a file (a results folder's config.json) is looked up here, never imported as a path.
    """
    return _all().get(name)


def get(name: str) -> ModuleType:
    """The experiment module called ``name`` (imported now); one-line error if unknown."""
    return load_module(module_path(name), label=name)


def status() -> list[dict]:
    """One entry per registered experiment: name, module, title and whether it imports."""
    rows = []
    for name, path in _all().items():
        try:
            module = load_module(path, label=name)
        except ExperimentError as exc:
            rows.append({"name": name, "module": path, "title": None, "installed": False, "error": str(exc)})
        except Exception as exc:  # a module that fails while importing: still listed, marked broken
            rows.append({"name": name, "module": path, "title": None, "installed": False,
                         "error": f"{type(exc).__name__}: {exc}"})
        else:
            rows.append({"name": name, "module": path, "title": module.TITLE, "installed": True, "error": None})
    return rows
