"""Hardware profiles: frozen, cited sets of prices and circuit constants.

A profile is a TOML file. Every numeric field is a table with its value and its source:

    name = "analog-rram-clocked"
    description = "..."
    substrate = "analog-clocked"          # digital | analog-clocked | analog-continuous | neuromorphic
    precision = "fp32"                    # digital arithmetic of the periphery / digital chip
    e_adc_j = { value = 1.67e-12, source = "ISAAC (Shafiee et al., ISCA 2016), 8-bit SAR ADC at 32 nm" }

Fields left out take the defaults below (zero prices, the ideal circuit), so a profile only
lists what it prices. Units are in the field names: ``_j`` joules, ``_w`` watts, ``_s``
seconds, ``_bits`` bits, ``_bytes`` bytes. Presets ship in ``pchw/profiles/*.toml``
(their figures come from REFERENCES.md); users load their own by path.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from enum import Enum, StrEnum
from pathlib import Path

from .errors import PchwError
from .published import CALIBRATION_KEYS, Calibration, CalibrationError, parse_calibration

PRESET_DIR = Path(__file__).resolve().parent / "profiles"
CHIP_DIR = PRESET_DIR / "chips"  # presets of specific published chips, each with its measured figures


class ProfileError(PchwError, ValueError):
    """An invalid or unknown profile (one line: which file or field, what is allowed)."""


class Substrate(StrEnum):
    """Where the PC computation runs; decides which events a run produces (DESIGN.md §3–4)."""

    DIGITAL = "digital"  # GPU / ASIC: MACs, ops and memory traffic, counted analytically
    ANALOG_CLOCKED = "analog-clocked"  # crossbar MVMs; ADC/DAC at every step
    ANALOG_CONTINUOUS = "analog-continuous"  # states stay analog; static power × settling time
    NEUROMORPHIC = "neuromorphic"  # spiking cores: synaptic events and neuron updates


class Precision(StrEnum):
    """Digital arithmetic precision (of a digital chip, or of an analog chip's periphery)."""

    FP32 = "fp32"
    BF16 = "bf16"
    INT8 = "int8"

    @property
    def bits(self) -> int:
        return {"fp32": 32, "bf16": 16, "int8": 8}[self.value]


class AdcScaling(StrEnum):
    """How an ADC conversion's energy grows with its resolution ``b`` (profile resolution ``b0``)."""

    WALDEN = "walden"  # E ∝ 2^b: the Walden figure of merit of SAR/flash ADCs (Murmann survey)
    LINEAR = "linear"  # E ∝ b: one integrate-and-compare step per bit (NeuRRAM's variable-precision ADC)


@dataclass(frozen=True)
class HardwareProfile:
    """Prices and circuit constants of one piece of hardware.

    Digital arithmetic and memory:
        e_mac_j: energy of one multiply-accumulate at ``precision`` (J).
        e_op_j: energy of one elementwise op (add, multiply, compare, activation) at ``precision`` (J).
        e_sram_bit_j: energy per bit read or written in on-chip SRAM (J/bit).
        e_dram_bit_j: energy per bit read or written off chip (DRAM/HBM) (J/bit).
        sram_bytes: on-chip memory capacity; decides whether weights/activations spill to DRAM (bytes).
    Analog crossbar and periphery:
        e_cell_read_j: one crossbar cell read, V²·G·t (J) — an analog MAC in clocked mode.
        t_cell_read_s: duration of one cell read (s); continuous mode draws e_cell_read_j / t_cell_read_s
            per conducting cell for as long as it settles.
        e_dac_j: one input conversion of ``dac_bits`` bits (J); bit-serial drive, so linear in bits.
        dac_bits: DAC resolution (bits).
        e_adc_j: one output conversion of ``adc_bits`` bits (J); scaled to other resolutions by ``adc_scaling``.
        adc_bits: ADC resolution (bits).
        adc_scaling: ``walden`` (E ∝ 2^bits) or ``linear`` (E ∝ bits).
        max_rows, max_cols: the largest crossbar tile: inputs (rows) × outputs (columns) of one array
            (0 = unlimited). A layer W (out, in) is split into ⌈in/max_rows⌉ row tiles × ⌈out/max_cols⌉
            column tiles; clocked chips digitise every tile's partial sums (ADC conversions × row tiles)
            and add them in the digital periphery; every tile has its own input drivers.
        bit_serial: 1 = inputs are driven one bit per array read (ISAAC-style 1-bit DACs): an MVM reads
            its cells and digitises its columns ``dac_bits`` times and shift-adds the partial results in
            the periphery; 0 = one read per MVM (multi-level or pulse-width inputs). Tiles and bit-serial
            reads are counted and priced (:mod:`pchw.circuit_events`); the simulators' noise and
            quantisation model of an MVM is their own (see simulators/).
        e_neuron_update_j: one value- or error-neuron update (integrator step) (J).
        e_write_pulse_j: one programming pulse on a synapse (J).
        e_synaptic_event_j: one synaptic (spike) operation (J).
        p_static_w: static power of one active neuron circuit (value or error neuron) (W).
        rate_code_bits: neuromorphic messages of a forward sweep are rate codes of this many bits: a
            full-scale value fires 2^bits − 1 spikes over as many time steps (0 = graded messages,
            one event per synapse).
        tau_s: integrator time constant τ of the value neurons (s).
        dt_s: fixed step / clock period of the circuit (s).
    Non-idealities (every one off at its default; 0 means "off" where noted). MVMs work in
    normalised units: inputs scaled by their absolute maximum, weights by the crossbar's w_max
    (the conductance range g_max), outputs in those units ("full scale"):
        weight_bits: conductance levels 2^bits, symmetric over ±w_max (0 = analog, unquantised).
        weight_clip_std: w_max = this many standard deviations of the layer's weights, larger
            weights clipped (0 = w_max is the largest |w|, nothing clipped).
        prog_noise_frac: programming (write) noise σ at deployment, fraction of w_max (of g_max per device
            with ``differential_pairs``); with the next two, σ_p(g) = max(frac + lin·g + quad·g², 0) for a
            device at g = G/g_max (the state-dependent form of aihwkit's PCM model).
        prog_noise_lin, prog_noise_quad: the linear and quadratic coefficients of σ_p(g) (fractions of g_max).
        differential_pairs: 1 = each weight is a pair of devices, w ∝ G⁺ − G⁻, the unused one at g_min;
            programming noise and clamping to [g_min, g_max] act on each device.
        g_min_frac: the lowest conductance a device holds, fraction of g_max (with differential_pairs).
        read_noise_state_exp: γ of state-dependent read noise, σ_read(g) = read_noise_frac · g^γ per device
            (0 = the same for every state).
        wire_r_ohm: wire resistance of one cell segment of the array's lines (Ω); with g_max_siemens, the IR drop
            of the lines (first order: the line voltages from the linear currents) distorts every read.
        g_max_siemens: a device's maximal conductance (S), for the IR drop.
        drift_nu, drift_t0_s: conductance drift G(t) = G(t0)·(t/t0)^−ν (PCM law).
        deploy_time_s: time since programming at which the network runs (0 = no drift).
        read_noise_frac: σ of each weight read, fraction of w_max (output σ = this × ‖input‖₂).
        read_noise_tau_min_s, read_noise_tau_max_s: the band of correlation times of the read noise:
            0 and 0 = white (a fresh draw at every read); otherwise 1/f noise between the corner
            frequencies 1/(2π τ_max) and 1/(2π τ_min), as a sum of Ornstein–Uhlenbeck processes with
            log-spaced correlation times and equal variance (one process when the two are equal).
        read_noise_processes: OU processes of that sum (0 = one per decade of the band, at least 1).
        rtn_frac: σ of random telegraph noise on each weight read, fraction of w_max (output σ = this ×
            ‖input‖₂); an output sums many devices' two-level switchings, so it is modelled by their
            aggregate: a Gaussian process with the telegraph signal's Lorentzian spectrum.
        rtn_tau_s: correlation time of that telegraph noise (2/(switching rate up + down)).
        out_noise_frac: additive output noise σ of every MVM, fraction of full scale.
        out_bound: output saturation, ± this many full scales (0 = unbounded).
        quantize_io: 1 = quantise MVM inputs (DAC, dac_bits) and outputs (ADC, adc_bits over
            ±out_bound) at every step of the clocked mode; 0 = ideal converters.
        leak_tau_s: integrator retention τ_leak; z decays by exp(−dt/τ_leak) per step (0 = none).
        ktc_noise_frac: kT/C noise added to every value neuron each step, rms as a fraction of
            the integrator's full swing.
        z_full_scale: the activity that maps to the integrator's full swing (activity units).
        act_mismatch_frac: σ of each neuron's fixed activation-gain error φ̃ = (1 + δ)φ.
    Pulsed in-place updates (in-situ learning):
        dw_min_frac: weight change of one programming pulse, fraction of w_max (0 = exact update).
        up_down_asym: asymmetry a: up pulses move +dw_min(1 + a/2), down pulses −dw_min(1 − a/2).
        asym_d2d_frac: device-to-device σ of the asymmetry (each device's a_ij = a + this · ξ, fixed): the
            symmetry points (a_ij/2)·w_max of soft-bounded devices scatter around the crossbar's mean.
        c2c_frac: cycle-to-cycle noise σ of each pulse, fraction of dw_min.
        d2d_frac: device-to-device σ of each device's dw_min (fixed per device).
        soft_bounds: 1 = pulses shrink linearly to zero at ±w_max (saturating devices).
        pulse_bl: length of the stochastic pulse trains (bits per update).
    """

    name: str
    description: str = ""
    substrate: Substrate = Substrate.DIGITAL
    precision: Precision = Precision.FP32
    e_mac_j: float = 0.0
    e_op_j: float = 0.0
    e_sram_bit_j: float = 0.0
    e_dram_bit_j: float = 0.0
    sram_bytes: float = math.inf
    e_cell_read_j: float = 0.0
    t_cell_read_s: float = 1e-9
    e_dac_j: float = 0.0
    dac_bits: int = 8
    e_adc_j: float = 0.0
    adc_bits: int = 8
    adc_scaling: AdcScaling = AdcScaling.WALDEN
    max_rows: int = 0
    max_cols: int = 0
    bit_serial: int = 0
    e_neuron_update_j: float = 0.0
    e_write_pulse_j: float = 0.0
    e_synaptic_event_j: float = 0.0
    p_static_w: float = 0.0
    rate_code_bits: int = 0
    tau_s: float = 1e-6
    dt_s: float = 1e-7
    weight_bits: int = 0
    weight_clip_std: float = 0.0
    prog_noise_frac: float = 0.0
    prog_noise_lin: float = 0.0
    prog_noise_quad: float = 0.0
    differential_pairs: int = 0
    g_min_frac: float = 0.0
    read_noise_state_exp: float = 0.0
    wire_r_ohm: float = 0.0
    g_max_siemens: float = 0.0
    drift_nu: float = 0.0
    drift_t0_s: float = 20.0
    deploy_time_s: float = 0.0
    read_noise_frac: float = 0.0
    read_noise_tau_min_s: float = 0.0
    read_noise_tau_max_s: float = 0.0
    read_noise_processes: int = 0
    rtn_frac: float = 0.0
    rtn_tau_s: float = 0.0
    out_noise_frac: float = 0.0
    out_bound: float = 0.0
    quantize_io: int = 0
    leak_tau_s: float = 0.0
    ktc_noise_frac: float = 0.0
    z_full_scale: float = 1.0
    act_mismatch_frac: float = 0.0
    dw_min_frac: float = 0.0
    up_down_asym: float = 0.0
    asym_d2d_frac: float = 0.0
    c2c_frac: float = 0.0
    d2d_frac: float = 0.0
    soft_bounds: int = 0
    pulse_bl: int = 31
    sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        def enum(cls, value, name):
            if isinstance(value, cls):
                return value
            try:
                return cls(str(value))
            except ValueError:
                allowed = ", ".join(m.value for m in cls)
                raise ProfileError(f"{self.name}: {name}={value!r} is not one of: {allowed}") from None

        object.__setattr__(self, "substrate", enum(Substrate, self.substrate, "substrate"))
        object.__setattr__(self, "precision", enum(Precision, self.precision, "precision"))
        object.__setattr__(self, "adc_scaling", enum(AdcScaling, self.adc_scaling, "adc_scaling"))
        for f in fields(self):
            if f.name in _TEXT_FIELDS or f.name in _CITED_ENUMS or f.name == "sources":
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ProfileError(f"{self.name}: {f.name}={value!r} must be a number")
            if math.isnan(value) or (value < 0 and f.name not in _SIGNED):
                raise ProfileError(f"{self.name}: {f.name}={value!r} must be >= 0")
            lowest = 0 if f.name in _ZERO_IS_OFF else 1
            if f.name.endswith("_bits") and not (float(value).is_integer() and lowest <= value <= 32):
                raise ProfileError(f"{self.name}: {f.name}={value!r} must be an integer from {lowest} to 32")
            if f.name.endswith("_s") and value == 0 and f.name not in _ZERO_IS_OFF:
                raise ProfileError(f"{self.name}: {f.name} must be > 0 (a zero time constant)")
            if f.name in _FLAGS and value not in (0, 1):
                raise ProfileError(f"{self.name}: {f.name}={value!r} must be 0 or 1")
            if f.name in ("pulse_bl",) and not (float(value).is_integer() and value >= 1):
                raise ProfileError(f"{self.name}: {f.name}={value!r} must be an integer >= 1")
            if f.name in _COUNTS and not float(value).is_integer():
                raise ProfileError(f"{self.name}: {f.name}={value!r} must be a whole number (0 = unlimited)")
            if f.name == "up_down_asym" and value >= 2:
                raise ProfileError(f"{self.name}: up_down_asym={value!r} must be < 2 (down pulses would grow)")
            if f.name != "sram_bytes" and math.isinf(value):
                raise ProfileError(f"{self.name}: {f.name} must be finite")
        self._check_noise_band()

    def _check_noise_band(self) -> None:
        lo, hi = self.read_noise_tau_min_s, self.read_noise_tau_max_s
        if (lo == 0) != (hi == 0) or lo > hi:
            raise ProfileError(f"{self.name}: read_noise_tau_min_s={lo!r} and read_noise_tau_max_s={hi!r} must be both "
                               "0 (white read noise) or 0 < min <= max")
        if not float(self.read_noise_processes).is_integer():
            raise ProfileError(f"{self.name}: read_noise_processes={self.read_noise_processes!r} must be an integer")
        if self.g_min_frac >= 1:
            raise ProfileError(f"{self.name}: g_min_frac={self.g_min_frac!r} must be < 1 (g_min below g_max)")
        if self.wire_r_ohm > 0 and self.g_max_siemens <= 0:
            raise ProfileError(f"{self.name}: wire_r_ohm={self.wire_r_ohm!r} needs g_max_siemens > 0 (the IR drop "
                               "scales with the wire resistance times the device conductance)")
        if (self.rtn_frac > 0) != (self.rtn_tau_s > 0):
            raise ProfileError(f"{self.name}: rtn_frac={self.rtn_frac!r} and rtn_tau_s={self.rtn_tau_s!r} must be both "
                               "0 (no telegraph noise) or both > 0")

    @property
    def is_ideal_circuit(self) -> bool:
        """True when no non-ideality is switched on (results equal the ideal profile's)."""
        return all(getattr(self, f) == 0 for f in _NONIDEAL_FIELDS)

    @property
    def is_circuit(self) -> bool:
        """True for substrates simulated by the circuit simulator (analog, neuromorphic)."""
        return self.substrate is not Substrate.DIGITAL

    def values(self) -> dict:
        """All fields as plain values (enums as strings), for config.json and reports."""
        out = {}
        for f in fields(self):
            if f.name == "sources":
                continue
            v = getattr(self, f.name)
            out[f.name] = v.value if isinstance(v, Enum) else v
        return out

    def replace(self, *, source: str = "set by the user", **changes) -> HardwareProfile:
        """A copy with some fields changed (validated again); sweeps use this.

        The changed fields' sources become ``source`` so no swept value keeps a citation
        that no longer applies.
        """
        import dataclasses

        sources = {**self.sources, **{k: source for k in changes if k not in _TEXT_FIELDS}}
        return dataclasses.replace(self, **changes, sources=sources)


_ZERO_IS_OFF = {"weight_bits", "leak_tau_s", "deploy_time_s", "rate_code_bits", "read_noise_tau_min_s",
                "read_noise_tau_max_s", "rtn_tau_s"}
_FLAGS = {"quantize_io", "soft_bounds", "differential_pairs", "bit_serial"}
_SIGNED = {"prog_noise_lin", "prog_noise_quad"}  # polynomial coefficients may be negative
_COUNTS = {"max_rows", "max_cols"}
_NONIDEAL_FIELDS = ("weight_bits", "weight_clip_std", "prog_noise_frac", "deploy_time_s", "read_noise_frac",
                    "out_noise_frac", "out_bound", "quantize_io", "leak_tau_s", "ktc_noise_frac",
                    "act_mismatch_frac", "rtn_frac", "prog_noise_lin", "prog_noise_quad", "differential_pairs",
                    "g_min_frac", "wire_r_ohm")
_TEXT_FIELDS = {"name", "description", "substrate", "precision"}
_CITED_ENUMS = {"adc_scaling"}  # a choice with a source: { value = "linear", source = "..." }
_NUMERIC_FIELDS = {f.name for f in fields(HardwareProfile)} - _TEXT_FIELDS - _CITED_ENUMS - {"sources"}


def parse_profile(data: dict, *, origin: str) -> HardwareProfile:
    """Build a profile from parsed TOML; every unknown key or missing source is an error.

    The ``validation`` and ``stands_for`` tables of a chip or preset file (:mod:`pchw.published`) are
    checked here too, so a malformed table fails where the profile loads; :func:`load_calibration`
    returns them.
    """
    if "name" not in data:
        raise ProfileError(f"{origin}: missing 'name'")
    kwargs: dict = {}
    sources: dict[str, str] = {}
    for key, raw in data.items():
        if key in _TEXT_FIELDS:
            if not isinstance(raw, str):
                raise ProfileError(f"{origin}: {key} must be a string")
            kwargs[key] = raw
        elif key in _NUMERIC_FIELDS or key in _CITED_ENUMS:
            if not isinstance(raw, dict) or "value" not in raw or "source" not in raw:
                raise ProfileError(f"{origin}: {key} must be a table {{ value = ..., source = \"...\" }}")
            extra = set(raw) - {"value", "source"}
            if extra:
                raise ProfileError(f"{origin}: {key} has unknown keys {sorted(extra)}; allowed: value, source")
            value = raw["value"]
            if key == "sram_bytes" and value == "inf":
                value = math.inf
            kwargs[key] = value
            sources[key] = str(raw["source"])
        elif key not in CALIBRATION_KEYS:
            allowed = ", ".join(sorted(_TEXT_FIELDS | _NUMERIC_FIELDS | _CITED_ENUMS | set(CALIBRATION_KEYS)))
            raise ProfileError(f"{origin}: unknown key {key!r}; allowed keys: {allowed}")
    _parse_calibration(data, origin)
    name = kwargs["name"]
    try:
        return HardwareProfile(**kwargs, sources=sources)
    except ProfileError as exc:
        raise ProfileError(f"{origin}: {str(exc).removeprefix(name + ': ')}") from None


def _parse_calibration(data: dict, origin: str) -> Calibration:
    try:
        calibration = parse_calibration(data)
    except CalibrationError as exc:
        raise ProfileError(f"{origin}: {exc}") from None
    for claim in calibration.stands_for:
        if claim.chip not in list_chips():
            raise ProfileError(f"{origin}: stands_for names unknown chip {claim.chip!r}; "
                               f"chips: {', '.join(list_chips())}")
    return calibration


def list_profiles() -> list[str]:
    """Names of the shipped generic presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def list_chips() -> list[str]:
    """Names of the shipped chip presets (specific published chips, with their measured figures)."""
    return sorted(p.stem for p in CHIP_DIR.glob("*.toml"))


def _read(name_or_path: str | Path) -> tuple[dict, str]:
    """The parsed TOML of a preset, chip or file, and where it came from."""
    text = str(name_or_path)
    path = Path(text)
    if text in list_profiles():  # a preset name wins over a same-named file in the working folder
        path = PRESET_DIR / f"{text}.toml"
    elif text in list_chips():
        path = CHIP_DIR / f"{text}.toml"
    elif not (text.endswith(".toml") or path.exists()):
        raise ProfileError(f"unknown profile {text!r}; presets: {', '.join(list_profiles())}; chips: "
                           f"{', '.join(list_chips())}; or a .toml path")
    if not path.is_file():
        raise ProfileError(f"profile file {path} does not exist")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")), str(path)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: not valid TOML ({exc})") from None


def load_profile(name_or_path: str | Path) -> HardwareProfile:
    """A preset or chip by name (``pchw profiles list``) or a user's TOML file by path."""
    data, origin = _read(name_or_path)
    return parse_profile(data, origin=origin)


def load_calibration(name_or_path: str | Path) -> Calibration:
    """The published figures and stands-for claims of a preset, chip or file (empty when it has none)."""
    data, origin = _read(name_or_path)
    parse_profile(data, origin=origin)
    return _parse_calibration(data, origin)


def profile_to_toml(profile: HardwareProfile) -> str:
    """The TOML text of a profile (a template users can copy and edit).

    A field the profile does not cite shows its default and says what that default is: an unpriced
    event (a price of 0), an ideal circuit (a non-ideality switched off), or a circuit constant
    that is not cited (unused on a digital profile)."""
    def quote(text: str) -> str:  # JSON string escapes are valid TOML basic-string escapes
        return json.dumps(text, ensure_ascii=False)

    digital = profile.substrate is Substrate.DIGITAL
    device = ("dw_min_frac", "up_down_asym", "asym_d2d_frac", "c2c_frac", "d2d_frac", "soft_bounds")
    helpers = {"drift_t0_s": "drift_nu", "z_full_scale": "ktc_noise_frac", "pulse_bl": "dw_min_frac",
               "read_noise_tau_min_s": "read_noise_frac", "read_noise_tau_max_s": "read_noise_frac",
               "read_noise_processes": "read_noise_frac", "read_noise_state_exp": "read_noise_frac",
               "rtn_tau_s": "rtn_frac", "g_max_siemens": "wire_r_ohm", "rate_code_bits": "a neuromorphic substrate"}

    def default_note(key: str) -> str:
        if key.startswith("e_") or key == "p_static_w":
            return "default: not priced by this profile (0)"
        if key == "sram_bytes":
            return "default: unlimited on-chip memory (nothing spills to DRAM)"
        if digital:
            return "default: unused on a digital profile (no circuit is simulated)"
        if key in _NONIDEAL_FIELDS or key == "drift_nu":
            return "default: off (ideal circuit)"
        if key in device:
            return "default: off (ideal device: exact in-place updates)"
        if key in helpers:
            return f"default, not cited; used only when {helpers[key]} is switched on"
        return "default circuit constant, not cited"

    lines = [f"{key} = {quote(str(profile.values()[key]))}" for key in ("name", "description", "substrate",
                                                                          "precision")]
    for key, value in profile.values().items():
        if key in _TEXT_FIELDS:
            continue
        source = profile.sources.get(key, default_note(key))
        shown = '"inf"' if value == math.inf else quote(value) if isinstance(value, str) else repr(value)
        lines.append(f"{key} = {{ value = {shown}, source = {quote(source)} }}")
    return "\n".join(lines) + "\n"
