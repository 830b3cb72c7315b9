"""Co-design search spaces: the knobs a study may turn and their ranges, read from a TOML file users edit.

A search space belongs to one algorithm and lists knobs with their ranges::

    algorithm = "pc"

    [knobs]
    adc_bits = { low = 4, high = 8 }                 # a profile field: integers 4..8
    n_steps = { low = 40, high = 820, log = true }   # a recipe field, sampled uniformly in log
    update_window_frac = { low = 0.5, high = 1.0 }   # the update window as a fraction of n_steps
    lr_schedule = { choices = ["constant", "cosine"] }

A knob is a numeric field of :class:`pchw.profiles.HardwareProfile` (the chip: converter bits,
noise, τ, prices; applied with ``HardwareProfile.replace``), a recipe field of
:class:`simulators.insitu.InsituConfig` (:data:`RECIPE_KNOBS`), or ``update_window_frac`` (PC: the
last ``round(frac · n_steps)`` steps of the relaxation are averaged). A range is ``low``/``high``
(inclusive; integers for integer fields), optionally ``log = true`` (uniform in log) or ``step``
(a grid), or a list of ``choices``. Every value a range admits is checked at load time against the
field's own validation, and every problem is one line naming the file, the knob and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path

from pchw.profiles import HardwareProfile, ProfileError

from .framework.registry import ExperimentError

SPACES_DIR = Path(__file__).resolve().parent / "codesign_spaces"
RECIPE_KNOBS = ("n_steps", "update_window", "zero_shift", "h", "param_lr", "hidden_lr_mult", "lr_schedule",
                "batch_size", "w_max_scale")
WINDOW_FRAC = "update_window_frac"
PC_ONLY = ("n_steps", "update_window", WINDOW_FRAC)
RANGE_KEYS = ("low", "high", "log", "step", "choices")
_PROFILE_TEXT = {"name", "description", "substrate", "precision", "sources"}


class SearchSpaceError(ExperimentError):
    """A search-space file that cannot be used (one line: the file, the knob, what is allowed)."""


def profile_knob_types() -> dict[str, type]:
    """Numeric profile fields and their types (int or float)."""
    hints = typing.get_type_hints(HardwareProfile)
    return {f.name: hints[f.name] for f in dataclasses.fields(HardwareProfile) if f.name not in _PROFILE_TEXT}


def recipe_knob_types() -> dict[str, type]:
    """Recipe fields of an in-situ run a search may set, and their types (the InsituConfig annotations)."""
    from simulators.insitu import InsituConfig

    hints = typing.get_type_hints(InsituConfig)
    out = {}
    for name in RECIPE_KNOBS:
        args = [a for a in typing.get_args(hints[name]) if a is not type(None)] or [hints[name]]
        out[name] = args[0]
    return out | {WINDOW_FRAC: float}


@dataclass(frozen=True)
class Knob:
    """One searched field: ``target`` ``profile`` or ``recipe``, a numeric range or a list of choices."""

    name: str
    target: str
    kind: type
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple | None = None

    def distribution(self):
        """The Optuna distribution the sampler draws this knob from."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.choices is not None:
            return CategoricalDistribution(self.choices)
        if self.kind is int:
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)

    def describe(self) -> str:
        """The range in words, e.g. ``40…820 (log)`` or ``{constant, cosine}``."""
        if self.choices is not None:
            return "{" + ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in self.choices) + "}"
        extra = " (log)" if self.log else f" (step {self.step:g})" if self.step else ""
        return f"{self.low:g}…{self.high:g}{extra}"


@dataclass(frozen=True)
class SearchSpace:
    """The knobs of one algorithm's study, as read from ``path`` (``text`` keeps the file for the record)."""

    path: str
    algorithm: str
    knobs: tuple[Knob, ...]
    text: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.knobs)

    def distributions(self) -> dict:
        return {k.name: k.distribution() for k in self.knobs}

    def design(self, params: dict, *, profile: HardwareProfile, base):
        """(the chip, the run's config) of a design: ``params`` applied to ``profile`` and to ``base`` (an
        InsituConfig); the chip's name lists its changed fields."""
        from simulators.recipes import default_recipe

        chip = {k.name: params[k.name] for k in self.knobs if k.target == "profile"}
        recipe = {k.name: params[k.name] for k in self.knobs if k.target == "recipe" and k.name != WINDOW_FRAC}
        if WINDOW_FRAC in params:
            steps = recipe.get("n_steps", base.n_steps or default_recipe(profile, base.algorithm).n_steps)
            recipe["update_window"] = int(round(params[WINDOW_FRAC] * steps))
        if chip:
            label = ", ".join(f"{k}={v:g}" for k, v in chip.items())
            prices = converter_prices(profile, chip)
            profile = profile.replace(source="co-design search", **chip).replace(name=f"{profile.name} [{label}]")
            if prices:
                profile = profile.replace(source=f"co-design search: {CONVERTER_LAW}", **prices)
        return profile, dataclasses.replace(base, **recipe)

    def values_of(self, profile: HardwareProfile, config) -> dict:
        """Each knob's value in a run of ``config`` (resolved) on ``profile``: a design the search did not
        propose (the default recipe) in the knobs' terms."""
        out = {}
        for k in self.knobs:
            if k.name == WINDOW_FRAC:
                out[k.name] = config.update_window / config.n_steps if config.n_steps else 0.0
            elif k.name == "h" and config.h is None:  # the relaxation runs at the profile's own dt/τ
                out[k.name] = profile.dt_s / (config.tau_s or profile.tau_s)
            else:
                out[k.name] = getattr(profile if k.target == "profile" else config, k.name)
        return out

    def contains(self, params: dict) -> bool:
        """Whether every knob's value in ``params`` lies in its range (or among its choices)."""
        return all(p in k.choices if k.choices is not None else k.low <= p <= k.high
                   for k in self.knobs for p in [params[k.name]])


CONVERTERS = {"adc_bits": ("e_adc_j", "adc_conversions"), "dac_bits": ("e_dac_j", "dac_conversions")}
CONVERTER_LAW = "the profile's price at its resolution scaled as pchw.events prices other resolutions"


def converter_prices(profile: HardwareProfile, chip: dict) -> dict:
    """The conversion prices of a chip whose converter bits change: a profile prices one conversion at its own
    resolution, so fewer bits would cost the same unless the price follows them — by the law
    :func:`pchw.events.price` applies to other resolutions (ADC ∝ 2^bits, Walden; DAC ∝ bits, bit-serial).
    A price the search sets itself is left alone."""
    from pchw.events import EventCounts, price

    return {energy: price(EventCounts(**{events: {int(chip[bits]): 1.0}}), profile).total_j
            for bits, (energy, events) in CONVERTERS.items() if bits in chip and energy not in chip}


def default_space_path(algorithm: str) -> Path:
    """The shipped search space of ``algorithm`` (``experiments/codesign_spaces/<algorithm>.toml``)."""
    return SPACES_DIR / f"{algorithm}.toml"


def load_space(path: str | Path, *, algorithm: str) -> SearchSpace:
    """Read and validate a search-space file for ``algorithm``; :class:`SearchSpaceError` names the problem."""
    path = Path(path)
    where = f"search space {path}"
    if not path.is_file():
        raise SearchSpaceError(f"{where} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SearchSpaceError(f"{where}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - {"algorithm", "knobs"})
    if unknown:
        raise SearchSpaceError(f"{where}: unknown key {unknown[0]!r}; allowed: algorithm, knobs")
    if data.get("algorithm") != algorithm:
        raise SearchSpaceError(f"{where}: algorithm = {data.get('algorithm')!r}, but this study trains "
                               f"{algorithm!r} (set algorithm = \"{algorithm}\" or choose that algorithm's file)")
    table = data.get("knobs")
    if not isinstance(table, dict) or not table:
        raise SearchSpaceError(f"{where}: needs a [knobs] table with at least one knob")
    knobs = tuple(_knob(f"{where}: knobs.{name}", name, spec, algorithm) for name, spec in table.items())
    names = {k.name for k in knobs}
    if "update_window" in names and ({"n_steps", WINDOW_FRAC} & names):
        raise SearchSpaceError(f"{where}: knob update_window must not exceed n_steps: with n_steps (or "
                               f"{WINDOW_FRAC}) searched, search {WINDOW_FRAC} instead")
    return SearchSpace(path=str(path), algorithm=algorithm, knobs=knobs, text=text)


def _knob(where: str, name: str, spec: object, algorithm: str) -> Knob:
    profile_types, recipe_types = profile_knob_types(), recipe_knob_types()
    if name in recipe_types:
        target, kind = "recipe", recipe_types[name]
    elif name in profile_types:
        target, kind = "profile", profile_types[name]
    else:
        raise SearchSpaceError(f"{where}: unknown knob; knobs are the recipe fields {', '.join(recipe_types)} "
                               f"or a numeric profile field ({', '.join(profile_types)})")
    if algorithm == "bp" and name in PC_ONLY:
        raise SearchSpaceError(f"{where}: sets PC's relaxation, and backprop has none (algorithm bp)")
    if not isinstance(spec, dict):
        raise SearchSpaceError(f"{where}: expected a table such as {{ low = 1, high = 8 }} or {{ choices = [...] }}")
    extra = sorted(set(spec) - set(RANGE_KEYS))
    if extra:
        raise SearchSpaceError(f"{where}: unknown key {extra[0]!r}; allowed: {', '.join(RANGE_KEYS)}")
    knob = _choices(where, name, target, kind, spec) if "choices" in spec else _range(where, name, target, kind, spec)
    for value in knob.choices if knob.choices is not None else (knob.low, knob.high):
        _check_value(where, knob, value, algorithm)
    return knob


def _choices(where: str, name: str, target: str, kind: type, spec: dict) -> Knob:
    if set(spec) != {"choices"}:
        raise SearchSpaceError(f"{where}: give either choices or low/high, not both")
    choices = spec["choices"]
    if not isinstance(choices, list) or not choices:
        raise SearchSpaceError(f"{where}: choices must be a non-empty list")
    if len({repr(c) for c in choices}) != len(choices):
        raise SearchSpaceError(f"{where}: choices {choices!r} repeat a value")
    typed = tuple(_typed(where, kind, c, "choice") for c in choices)
    return Knob(name=name, target=target, kind=kind, choices=typed)


def _range(where: str, name: str, target: str, kind: type, spec: dict) -> Knob:
    if kind not in (int, float):
        raise SearchSpaceError(f"{where}: a {kind.__name__} field takes choices = [...], not a range")
    if "low" not in spec or "high" not in spec:
        raise SearchSpaceError(f"{where}: needs low and high (or choices)")
    low, high = (_typed(where, kind, spec[k], k) for k in ("low", "high"))
    if not low < high:
        raise SearchSpaceError(f"{where}: low={low!r} must be < high={high!r} (a fixed value belongs in the "
                               f"profile or the recipe)")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SearchSpaceError(f"{where}: log={log!r} must be true or false")
    if log and low <= 0:
        raise SearchSpaceError(f"{where}: log = true needs low > 0, got low={low!r}")
    step = spec.get("step")
    if step is not None:
        step = _typed(where, kind, step, "step")
        if log or not step > 0 or not math.isclose(round((high - low) / step) * step, high - low, rel_tol=1e-9):
            raise SearchSpaceError(f"{where}: step={step!r} must be > 0, divide high − low, and not be combined "
                                   f"with log")
    return Knob(name=name, target=target, kind=kind, low=low, high=high, log=log, step=step)


def _typed(where: str, kind: type, value: object, what: str):
    """``value`` as ``kind`` (ints widen to float; bools only for bool fields)."""
    ok = (isinstance(value, bool) if kind is bool else
          isinstance(value, int) and not isinstance(value, bool) if kind is int else
          isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) if kind is float
          else isinstance(value, kind))
    if not ok:
        raise SearchSpaceError(f"{where}: {what}={value!r} must be {_kind_words(kind)}")
    return float(value) if kind is float else value


def _kind_words(kind: type) -> str:
    return {int: "an integer", float: "a finite number", bool: "true or false", str: "a string"}[kind]


def _check_value(where: str, knob: Knob, value, algorithm: str) -> None:
    """The field's own validation, applied to one value the knob admits."""
    from simulators.errors import SimulationError
    from simulators.insitu import InsituConfig

    try:
        if knob.name == WINDOW_FRAC:
            if not 0 < value <= 1:
                raise SearchSpaceError(f"{where}: {value!r} must lie in (0, 1] (a fraction of n_steps)")
        elif knob.target == "profile":
            HardwareProfile(name="check", **{knob.name: value})
        else:
            InsituConfig(algorithm=algorithm, **{knob.name: value})
    except (ProfileError, SimulationError) as exc:
        reason = str(exc).removeprefix("check: ")
        raise SearchSpaceError(f"{where}: {reason}") from None
