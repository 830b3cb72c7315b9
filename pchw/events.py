"""Event counts and their price in joules (DESIGN.md §4).

Simulators and training loops count **events**, never joules; :func:`price` turns counts into
an :class:`EnergyReport` under a :class:`~pchw.profiles.HardwareProfile`. Components always
sum to the total.

Conversion energies by resolution (``b`` bits, profile resolution ``b0``):
    DAC (bit-serial drive, ISAAC):      E(b) = e_dac_j · b / b0
    ADC, ``adc_scaling = walden`` (the Walden figure of merit ∝ 2^b): E(b) = e_adc_j · 2^(b − b0)
    ADC, ``adc_scaling = linear`` (one integrate-and-compare step per bit): E(b) = e_adc_j · b / b0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from .errors import PchwError
from .profiles import AdcScaling, HardwareProfile

_SCALAR_EVENTS = (
    "sram_read_bits",
    "sram_write_bits",
    "dram_read_bits",
    "dram_write_bits",
    "cell_reads",
    "cell_seconds",
    "neuron_updates",
    "write_pulses",
    "synaptic_events",
    "circuit_seconds",
)
_BY_KEY_EVENTS = ("macs", "ops", "dac_conversions", "adc_conversions")


def _add_maps(a: Mapping, b: Mapping, scale: float = 1.0) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0.0) + scale * v
    return {k: v for k, v in out.items() if v != 0}


@dataclass(frozen=True)
class EventCounts:
    """Counts of priced events (all non-negative; floats so that per-example averages are exact).

    Attributes:
        macs: digital multiply-accumulates by precision name (``fp32``, ``bf16``, ``int8``).
        ops: digital elementwise ops (add, multiply, compare, activation) by precision name.
        sram_read_bits, sram_write_bits: on-chip memory traffic (bits).
        dram_read_bits, dram_write_bits: off-chip memory traffic (bits).
        cell_reads: crossbar cell reads, i.e. analog MACs of clocked MVMs.
        cell_seconds: conducting cells × seconds (continuous-mode crossbars).
        dac_conversions, adc_conversions: conversions by resolution in bits.
        neuron_updates: discrete value/error-neuron updates (integrator steps).
        write_pulses: programming pulses on synapses.
        synaptic_events: synaptic (spike) operations.
        circuit_seconds: active neuron circuits × seconds (static power).
    """

    macs: Mapping[str, float] = field(default_factory=dict)
    ops: Mapping[str, float] = field(default_factory=dict)
    sram_read_bits: float = 0.0
    sram_write_bits: float = 0.0
    dram_read_bits: float = 0.0
    dram_write_bits: float = 0.0
    cell_reads: float = 0.0
    cell_seconds: float = 0.0
    dac_conversions: Mapping[int, float] = field(default_factory=dict)
    adc_conversions: Mapping[int, float] = field(default_factory=dict)
    neuron_updates: float = 0.0
    write_pulses: float = 0.0
    synaptic_events: float = 0.0
    circuit_seconds: float = 0.0

    def __post_init__(self) -> None:
        for name in _SCALAR_EVENTS:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"event count {name}={value!r} must be finite and >= 0")
        for name in _BY_KEY_EVENTS:
            cleaned = {k: float(v) for k, v in getattr(self, name).items() if v != 0}
            if any(not (math.isfinite(v) and v >= 0) for v in cleaned.values()):
                raise ValueError(f"event counts {name}={cleaned!r} must be finite and >= 0")
            object.__setattr__(self, name, cleaned)

    def __add__(self, other: EventCounts) -> EventCounts:
        return self.combine(other, 1.0)

    def combine(self, other: EventCounts, scale: float = 1.0) -> EventCounts:
        """self + scale · other."""
        kwargs = {n: getattr(self, n) + scale * getattr(other, n) for n in _SCALAR_EVENTS}
        kwargs.update({n: _add_maps(getattr(self, n), getattr(other, n), scale) for n in _BY_KEY_EVENTS})
        return EventCounts(**kwargs)

    def scaled(self, factor: float) -> EventCounts:
        """Every count multiplied by ``factor`` (e.g. 1/B for per-example figures)."""
        return EventCounts().combine(self, factor)

    @classmethod
    def from_dict(cls, d: dict) -> EventCounts:
        """The inverse of :meth:`to_dict` (conversion resolutions back to int keys)."""
        d = dict(d)
        for key in ("dac_conversions", "adc_conversions"):
            d[key] = {int(k): v for k, v in d.get(key, {}).items()}
        return cls(**d)

    def to_dict(self) -> dict:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = {str(k): x for k, x in v.items()} if isinstance(v, Mapping) else v
        return out


@dataclass(frozen=True)
class EnergyReport:
    """Joules by component under one profile; ``total_j`` is the sum of ``components_j``."""

    profile: str
    components_j: Mapping[str, float]

    @property
    def total_j(self) -> float:
        return float(math.fsum(self.components_j.values()))

    def dominant(self) -> str:
        """The component that costs most (``none`` when everything is free)."""
        if self.total_j == 0:
            return "none"
        return max(self.components_j, key=self.components_j.get)

    def scaled(self, factor: float) -> EnergyReport:
        return EnergyReport(self.profile, {k: v * factor for k, v in self.components_j.items()})


COMPONENTS = (
    "digital_mac",
    "digital_op",
    "sram",
    "dram",
    "crossbar_read",
    "dac",
    "adc",
    "neuron",
    "write",
    "synaptic",
    "static",
)


class PricingError(PchwError, ValueError):
    """Counts that the profile cannot price (e.g. MACs at a precision it does not have)."""


def _digital(counts: Mapping[str, float], profile: HardwareProfile, price: float, what: str) -> float:
    unknown = set(counts) - {profile.precision.value}
    if unknown:
        raise PricingError(
            f"profile {profile.name} prices {what} at {profile.precision.value} only, got {sorted(unknown)}"
        )
    return counts.get(profile.precision.value, 0.0) * price


def adc_energy_factor(bits: int, profile: HardwareProfile) -> float:
    """The energy of one ``bits``-bit conversion in units of ``e_adc_j`` (see the module docstring)."""
    if profile.adc_scaling is AdcScaling.LINEAR:
        return bits / profile.adc_bits
    return 2.0 ** (bits - profile.adc_bits)


def price(counts: EventCounts, profile: HardwareProfile) -> EnergyReport:
    """Turn event counts into joules by component under ``profile``."""
    p = profile
    dac = math.fsum(n * p.e_dac_j * bits / p.dac_bits for bits, n in counts.dac_conversions.items())
    adc = math.fsum(n * p.e_adc_j * adc_energy_factor(bits, p) for bits, n in counts.adc_conversions.items())
    components = {
        "digital_mac": _digital(counts.macs, p, p.e_mac_j, "MACs"),
        "digital_op": _digital(counts.ops, p, p.e_op_j, "ops"),
        "sram": (counts.sram_read_bits + counts.sram_write_bits) * p.e_sram_bit_j,
        "dram": (counts.dram_read_bits + counts.dram_write_bits) * p.e_dram_bit_j,
        "crossbar_read": counts.cell_reads * p.e_cell_read_j
        + counts.cell_seconds * p.e_cell_read_j / p.t_cell_read_s,
        "dac": dac,
        "adc": adc,
        "neuron": counts.neuron_updates * p.e_neuron_update_j,
        "write": counts.write_pulses * p.e_write_pulse_j,
        "synaptic": counts.synaptic_events * p.e_synaptic_event_j,
        "static": counts.circuit_seconds * p.p_static_w,
    }
    return EnergyReport(profile=p.name, components_j=components)
