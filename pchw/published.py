"""Published silicon figures and the workloads they were measured on (the data of ``pchw validate``).

A chip preset (``pchw/profiles/chips/*.toml``) lists the figures its paper reports, each with the
workload pchw runs to reproduce it and the band its estimate must stay in:

    [[validation]]
    id = "tops_per_w_chip"
    metric = "tops_per_w"                 # tops_per_w | j_per_inference | pj_per_synaptic_op
    value = 9.76                          # in the metric's unit
    role = "cross-check"                  # calibration: the preset's prices were derived from it
    band = 2.0                            # pchw / published must lie in [1/band, band]
    source = "Le Gallo et al., Nat. Electron. 2023, abstract: ..."
    workload = { kind = "mvm", layers = [256, 256], input_bits = 8, output_bits = 8 }

A generic preset names the chips it stands for; it is run on their workloads and held to its own band:

    [[stands_for]]
    chip = "ibm-hermes"
    figures = ["tops_per_w_chip"]         # empty or absent: every figure of the chip
    band = 3.0
    reason = "why this preset should land near that chip"

Metrics: TOPS/W counts one multiply-accumulate as two operations (the convention of every paper
cited); J per inference is one sample's forward pass; pJ per synaptic op divides the energy of
the workload by its synaptic events.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import StrEnum

from .errors import PchwError


class CalibrationError(PchwError, ValueError):
    """A malformed ``validation`` or ``stands_for`` table (one line: which entry, what is allowed)."""


class Metric(StrEnum):
    """What a published figure measures."""

    TOPS_PER_W = "tops_per_w"
    J_PER_INFERENCE = "j_per_inference"
    PJ_PER_SYNAPTIC_OP = "pj_per_synaptic_op"

    @property
    def unit(self) -> str:
        return {"tops_per_w": "TOPS/W", "j_per_inference": "J/inference", "pj_per_synaptic_op": "pJ/SOP"}[self]


class WorkloadKind(StrEnum):
    """``mvm``: one matrix-vector product through a crossbar of ``layers = [rows, cols]``;
    ``mlp``: one forward pass of a network of widths ``layers = [D, N, ..., N, d_y]``."""

    MVM = "mvm"
    MLP = "mlp"


class Role(StrEnum):
    """``calibration``: the preset's prices were derived from this figure (agreement is by
    construction; the row guards the counting against regressions); ``cross-check``: an independent
    figure the preset was not fitted to."""

    CALIBRATION = "calibration"
    CROSS_CHECK = "cross-check"


@dataclass(frozen=True)
class Workload:
    """What pchw runs to reproduce a figure.

    Attributes:
        kind: mvm or mlp.
        layers: mvm: (rows = inputs, cols = outputs); mlp: (D, N, ..., N, d_y), equal hidden widths.
        input_bits: input (DAC) resolution of the measurement, bits (0 = the profile's ``dac_bits``).
        output_bits: output (ADC) resolution of the measurement, bits (0 = the profile's ``adc_bits``).
        time_steps: neuromorphic chips: time steps per inference of the benchmark (0 = the profile's
            rate-code window); every synapse counts one event per step (the full-rate bound).
    """

    kind: WorkloadKind
    layers: tuple[int, ...]
    input_bits: int = 0
    output_bits: int = 0
    time_steps: int = 0

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the workload (one sample)."""
        return sum(a * b for a, b in zip(self.layers[:-1], self.layers[1:]))

    def to_dict(self) -> dict:
        d = {"kind": self.kind.value, "layers": list(self.layers)}
        d.update({k: getattr(self, k) for k in ("input_bits", "output_bits", "time_steps") if getattr(self, k)})
        return d


@dataclass(frozen=True)
class PublishedFigure:
    """One measured figure of a chip, with its source and the band pchw must reproduce it in."""

    id: str
    metric: Metric
    value: float
    source: str
    workload: Workload
    band: float
    role: Role


@dataclass(frozen=True)
class StandsFor:
    """A generic preset's claim to land within ``band`` of some figures of ``chip`` (all when empty)."""

    chip: str
    band: float
    reason: str
    figures: tuple[str, ...] = ()


@dataclass(frozen=True)
class Calibration:
    """The published figures of a chip file and the stands-for claims of a preset file."""

    figures: tuple[PublishedFigure, ...] = ()
    stands_for: tuple[StandsFor, ...] = ()

    def figure(self, figure_id: str) -> PublishedFigure:
        for f in self.figures:
            if f.id == figure_id:
                return f
        raise CalibrationError(f"no figure {figure_id!r}; figures: {', '.join(f.id for f in self.figures)}")


CALIBRATION_KEYS = ("validation", "stands_for")
_FIGURE_KEYS = {"id", "metric", "value", "role", "band", "source", "workload"}
_WORKLOAD_KEYS = {"kind", "layers", "input_bits", "output_bits", "time_steps"}
_STANDS_KEYS = {"chip", "figures", "band", "reason"}


def _keys(table: object, allowed: set[str], where: str, required: set[str]) -> dict:
    if not isinstance(table, dict):
        raise CalibrationError(f"{where} must be a table")
    unknown = set(table) - allowed
    if unknown:
        raise CalibrationError(f"{where}: unknown keys {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}")
    missing = required - set(table)
    if missing:
        raise CalibrationError(f"{where}: missing {', '.join(sorted(missing))}")
    return table


def _enum(cls, value, where: str):
    try:
        return cls(str(value))
    except ValueError:
        raise CalibrationError(f"{where}={value!r} is not one of: {', '.join(m.value for m in cls)}") from None


def _number(value, where: str, *, integer: bool = False, lowest: float = 0.0) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value >= lowest
    if ok and integer:
        ok = float(value).is_integer()
    if not ok:
        kind = "an integer" if integer else "a finite number"
        raise CalibrationError(f"{where}={value!r} must be {kind} >= {lowest:g}")
    return int(value) if integer else float(value)


def _band(value, where: str) -> float:
    """A band ×/÷ b: a ratio must lie in [1/b, b], so b >= 1."""
    return _number(value, f"{where}.band", lowest=1.0)


def parse_workload(table: object, where: str) -> Workload:
    t = _keys(table, _WORKLOAD_KEYS, where, {"kind", "layers"})
    kind = _enum(WorkloadKind, t["kind"], f"{where}.kind")
    layers = t["layers"]
    if not isinstance(layers, list) or not layers:
        raise CalibrationError(f"{where}.layers must be a list of positive integers")
    sizes = tuple(_number(n, f"{where}.layers", integer=True, lowest=1) for n in layers)
    if kind is WorkloadKind.MVM and len(sizes) != 2:
        raise CalibrationError(f"{where}.layers of an mvm must be [rows, cols], got {list(sizes)}")
    if kind is WorkloadKind.MLP and (len(sizes) < 3 or len(set(sizes[1:-1])) != 1):
        raise CalibrationError(f"{where}.layers of an mlp must be [D, N, ..., N, d_y] with equal hidden widths, "
                               f"got {list(sizes)}")
    bits = {k: _number(t.get(k, 0), f"{where}.{k}", integer=True) for k in ("input_bits", "output_bits")}
    for k, v in bits.items():
        if v > 32:
            raise CalibrationError(f"{where}.{k}={v} must be at most 32")
    steps = _number(t.get("time_steps", 0), f"{where}.time_steps", integer=True)
    return Workload(kind=kind, layers=sizes, time_steps=steps, **bits)


def _figure(table: object, where: str) -> PublishedFigure:
    t = _keys(table, _FIGURE_KEYS, where, _FIGURE_KEYS)
    if not isinstance(t["id"], str) or not t["id"].strip():
        raise CalibrationError(f"{where}.id must be a non-empty string")
    where = f"{where} ({t['id']})"
    if not isinstance(t["source"], str) or not t["source"].strip():
        raise CalibrationError(f"{where}.source must cite the paper (a non-empty string)")
    value = _number(t["value"], f"{where}.value")
    if value == 0:
        raise CalibrationError(f"{where}.value must be > 0")
    return PublishedFigure(id=t["id"], metric=_enum(Metric, t["metric"], f"{where}.metric"), value=value,
                           source=t["source"], workload=parse_workload(t["workload"], f"{where}.workload"),
                           band=_band(t["band"], where), role=_enum(Role, t["role"], f"{where}.role"))


def _stands_for(table: object, where: str) -> StandsFor:
    t = _keys(table, _STANDS_KEYS, where, {"chip", "band", "reason"})
    if not isinstance(t["chip"], str) or not isinstance(t["reason"], str) or not t["reason"].strip():
        raise CalibrationError(f"{where}: chip must be a chip name and reason a non-empty string")
    figures = t.get("figures", [])
    if not isinstance(figures, list) or not all(isinstance(f, str) for f in figures):
        raise CalibrationError(f"{where}.figures must be a list of figure ids")
    return StandsFor(chip=t["chip"], band=_band(t["band"], where), reason=t["reason"], figures=tuple(figures))


def parse_calibration(data: dict) -> Calibration:
    """The ``validation`` and ``stands_for`` tables of a parsed profile file (absent: empty)."""
    tables = {}
    for key in CALIBRATION_KEYS:
        value = data.get(key, [])
        if not isinstance(value, list):
            raise CalibrationError(f"{key} must be an array of tables ([[{key}]])")
        tables[key] = value
    figures = tuple(_figure(t, f"validation[{i}]") for i, t in enumerate(tables["validation"]))
    ids = [f.id for f in figures]
    if len(set(ids)) != len(ids):
        raise CalibrationError(f"validation ids must be unique, got {ids}")
    stands = tuple(_stands_for(t, f"stands_for[{i}]") for i, t in enumerate(tables["stands_for"]))
    return Calibration(figures=figures, stands_for=stands)


def calibration_to_toml(calibration: Calibration) -> str:
    """The TOML text of the tables (appended to a profile's TOML by ``pchw profiles show``)."""
    def q(value) -> str:  # JSON strings and arrays of strings/numbers are valid TOML
        return json.dumps(value, ensure_ascii=False)

    lines = []
    for f in calibration.figures:
        w = ", ".join(f"{k} = {q(v)}" for k, v in f.workload.to_dict().items())
        lines += ["", "[[validation]]", f"id = {q(f.id)}", f"metric = {q(f.metric.value)}", f"value = {f.value!r}",
                  f"role = {q(f.role.value)}", f"band = {f.band!r}", f"source = {q(f.source)}",
                  f"workload = {{ {w} }}"]
    for s in calibration.stands_for:
        lines += ["", "[[stands_for]]", f"chip = {q(s.chip)}", f"figures = {q(list(s.figures))}",
                  f"band = {s.band!r}", f"reason = {q(s.reason)}"]
    return "\n".join(lines) + ("\n" if lines else "")
