"""Grid axes: ``--set`` parsing, typing by the Config's annotations, expansion into checked points.

``expand_grid(Config, GRID, overrides)`` turns an experiment's grid and the user's ``--set key=v1,v2``
overrides into the list of Config points. Every value is typed by its field's annotation (int,
float, bool, str, ``X | None``, ``Literal[...]``) and every point is checked before anything runs,
so ``--dry-run`` refuses what a run would refuse:

- a float must be finite (no NaN or infinity), an integer at most :data:`MAX_INT` in size;
- a field of the project's shared vocabulary (:data:`FIELD_RULES`: ``depth``, ``width``,
  ``samples``, ``epochs``, learning rates, converter bits, ...) must lie in its range, whatever
  the experiment — these names mean the same thing in every experiment module;
- the Config's own ``__post_init__`` (if any) runs on the point.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import types
import typing
from typing import NamedTuple

from pchw.data import DATASETS

from .registry import ExperimentError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"", "none", "null"}
MAX_INT = 2**31 - 1  # larger integers are typing accidents (and overflow int32 indices downstream)


class Range(NamedTuple):
    """Allowed values of a numeric field: ``low`` ≤ v (< if ``open_low``), v ≤ ``high``, integer if ``integer``."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    integer: bool = False

    def admits(self, value: float) -> bool:
        if self.integer and not float(value).is_integer():
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"<= {self.high:g}")
        return f"{kind} {' and '.join(parts)}".strip()


def _count(low: int) -> Range:
    return Range(low=low, integer=True)


_POSITIVE = Range(low=0, open_low=True)
_NON_NEGATIVE = Range(low=0)
# The project's shared vocabulary: a field with one of these names means the same in every experiment
# (depth = L weight matrices, samples = test samples deployed, ...), so its range is checked for all.
FIELD_RULES: dict[str, Range] = {
    "depth": _count(2), "width": _count(1), "hidden": _count(1), "input_dim": _count(1), "output_dim": _count(1),
    "batch_size": _count(1), "samples": _count(1), "brian2_samples": _count(1), "norm_samples": _count(1),
    "n_train": _count(1), "n_test": _count(1), "iters": _count(1), "max_iters": _count(1), "max_steps": _count(1),
    "test_every": _count(1), "hessian_max_dim": _count(1), "hessian_width": _count(1),
    "n_steps": _count(0), "update_window": _count(0), "seed": _count(0),
    "epochs": _POSITIVE, "activity_lr": _POSITIVE, "param_lr": _POSITIVE, "lr": _POSITIVE,
    "hidden_lr_mult": _POSITIVE, "h": _POSITIVE, "tol": _POSITIVE, "init_scale": _POSITIVE,
    "threshold_frac": Range(low=0, high=1, open_low=True),
    "read_noise_frac": _NON_NEGATIVE, "out_noise_frac": _NON_NEGATIVE, "leak_tau_s": _NON_NEGATIVE,
    "adc_bits": Range(low=1, high=32, integer=True), "dac_bits": Range(low=1, high=32, integer=True),
    "weight_bits": Range(low=0, high=32, integer=True),
}
FIELD_CHOICES: dict[str, tuple[str, ...]] = {"dataset": DATASETS}


# ------------------------------------------------------------------------------ config fields
def config_class(config_cls_or_default) -> type:
    """The Config class of a class or of one of its instances."""
    return config_cls_or_default if isinstance(config_cls_or_default, type) else type(config_cls_or_default)


def config_fields(config_cls_or_default) -> list[str]:
    """The Config's field names in declaration order."""
    return [f.name for f in dataclasses.fields(config_class(config_cls_or_default))]


def _field_types(cls: type) -> dict[str, object]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # unresolvable annotations: fall back to the defaults' types
        return {f.name: f.type for f in dataclasses.fields(cls)}


def _type_name(tp: object) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _first_fit(members, convert, value: object) -> object:
    """``convert(member, value)`` for the first union member that accepts the value; ValueError if none does."""
    for member in members:
        try:
            return convert(member, value)
        except ValueError:
            continue
    raise ValueError


def _parse_one(tp: object, text: str) -> object:
    """Parse ``text`` as ``tp`` (int, float, bool, str, X | None, Literal); ValueError if it is not."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and text.strip().lower() in _NONE:
            return None
        return _first_fit([a for a in args if a is not type(None)], _parse_one, text)
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
        return _first_fit(typing.get_args(tp), _check_typed, value)
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


def _allowed(tp: object) -> str:
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(str(c) for c in typing.get_args(tp))
    return _type_name(tp)


def convert_value(config_cls_or_default, key: str, value: object) -> object:
    """``value`` for Config field ``key``: strings (from ``--set``) are parsed as the field's type."""
    cls = config_class(config_cls_or_default)
    names = config_fields(cls)
    if key not in names:
        raise ExperimentError(f"unknown parameter {key!r}; {cls.__name__} fields are: {', '.join(names)}")
    tp = _field_types(cls).get(key, object)
    try:
        if isinstance(value, str) and tp is not str:
            value = _parse_one(tp, value)
        else:
            value = _check_typed(tp, value)
    except (ValueError, TypeError):
        raise ExperimentError(f"bad value {value!r} for {key}: expected {_allowed(tp)}") from None
    check_value(key, value)
    return value


def check_value(key: str, value: object) -> None:
    """Refuse NaN/infinite floats, absurd integers and values outside :data:`FIELD_RULES`/:data:`FIELD_CHOICES`."""
    choices = FIELD_CHOICES.get(key)
    if choices is not None and value not in choices:
        raise ExperimentError(f"bad value {value!r} for {key}: expected one of {', '.join(choices)}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ExperimentError(f"bad value {value!r} for {key}: must be a finite number")
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise ExperimentError(f"bad value {value!r} for {key}: an integer this large is not a setting "
                              f"(at most {MAX_INT})")
    rule = FIELD_RULES.get(key)
    if rule is not None and not rule.admits(value):
        raise ExperimentError(f"bad value {value!r} for {key}: must be {rule.describe()}")


def check_point(point) -> None:
    """Check every field of a Config point (see the module docstring); one-line ExperimentError."""
    for f in dataclasses.fields(point):
        check_value(f.name, getattr(point, f.name))


def expand_grid(config_cls_or_default, grid: dict[str, list], overrides: dict[str, list] | None = None) -> list:
    """Every point of ``grid`` with ``overrides`` (which replace or add axes), as checked Config objects.

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
        setting = dict(zip(axes, combo))
        try:
            point = dataclasses.replace(default, **setting)
        except ExperimentError:
            raise
        except (ValueError, TypeError) as exc:  # the Config's own __post_init__ refused the point
            described = ", ".join(f"{k}={v!r}" for k, v in setting.items())
            raise ExperimentError(f"the point {described} is invalid: {' '.join(str(exc).split())}") from None
        check_point(point)
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
