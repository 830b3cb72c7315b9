"""pchw's counting and pricing against published silicon: the logic of ``pchw validate``.

Every chip preset (``pchw/profiles/chips``) lists the figures its papers measured
(:mod:`pchw.published`); every generic preset may claim to stand for some of them. For each
figure pchw runs the figure's workload through the one counting model of the circuit
(:mod:`pchw.circuit_events`) or of digital hardware (:mod:`pchw.digital`), prices it with the
profile (:func:`pchw.events.price`) and compares:

    ratio = pchw's figure / published figure,   in band ⟺ 1/band ≤ ratio ≤ band

Workloads: ``mvm`` is one clocked read of a rows × cols crossbar (tiles, bit-serial inputs and all,
:func:`~pchw.circuit_events.crossbar_read_counts`); ``mlp`` is one forward pass of the network
(a circuit's forward sweep, a digital chip's inference at batch 1). The measurement's input and
output resolutions are counted as such and priced by the profile's laws (DAC linear in bits, ADC by
``adc_scaling``), so a figure measured at other bits tests those laws.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .circuit_events import crossbar_read_counts, forward_sweep_counts
from .digital import digital_inference_counts
from .events import EnergyReport, EventCounts, price
from .profiles import (
    HardwareProfile,
    ProfileError,
    Substrate,
    list_chips,
    list_profiles,
    load_calibration,
    load_profile,
)
from .published import Metric, PublishedFigure, Workload, WorkloadKind
from .spec import NetworkSpec

CHIP = "chip"  # a chip preset checked against its own paper's figures
STANDS_FOR = "stands for"  # a generic preset checked against a chip it claims to represent


@dataclass(frozen=True)
class ValidationRow:
    """One published figure beside pchw's estimate of it under one profile."""

    profile: str
    chip: str
    figure: PublishedFigure
    modelled: float  # pchw's figure, in the metric's unit
    band: float  # the row is in band when 1/band ≤ modelled/published ≤ band
    dominant: str  # the priced component that costs most in pchw's estimate
    claim: str  # CHIP or STANDS_FOR

    @property
    def ratio(self) -> float:
        return self.modelled / self.figure.value

    @property
    def in_band(self) -> bool:
        return 1.0 / self.band <= self.ratio <= self.band

    def to_dict(self) -> dict:
        f = self.figure
        return {"profile": self.profile, "chip": self.chip, "figure": f.id, "metric": f.metric.value,
                "unit": f.metric.unit, "published": f.value, "modelled": self.modelled, "ratio": self.ratio,
                "band": self.band, "in_band": self.in_band, "dominant": self.dominant, "claim": self.claim,
                "role": f.role.value, "workload": f.workload.to_dict(), "source": f.source, "kind": "estimate"}


def _at_bits(profile: HardwareProfile, workload: Workload) -> HardwareProfile:
    """The profile counting at the measurement's resolutions (its prices stay referenced to the profile's)."""
    changes = {}
    if workload.input_bits and workload.input_bits != profile.dac_bits:
        changes["dac_bits"] = workload.input_bits
    if workload.output_bits and workload.output_bits != profile.adc_bits:
        changes["adc_bits"] = workload.output_bits
    return profile.replace(source="resolution of the validation workload", **changes) if changes else profile


def workload_counts(profile: HardwareProfile, workload: Workload) -> EventCounts:
    """The events of one sample of ``workload`` on ``profile``."""
    if workload.kind is WorkloadKind.MLP:
        d, n, dy = workload.layers[0], workload.layers[1], workload.layers[-1]
        spec = NetworkSpec(input_dim=d, width=n, depth=len(workload.layers) - 1, output_dim=dy)
        if profile.substrate is Substrate.DIGITAL:
            return digital_inference_counts(spec, profile, batch_size=1)
        return forward_sweep_counts(spec, _at_bits(profile, workload), n_samples=1,
                                    window_steps=workload.time_steps or None)
    rows, cols = workload.layers
    if profile.substrate is Substrate.DIGITAL:
        return EventCounts(macs={profile.precision.value: float(rows * cols)})
    if profile.substrate is not Substrate.ANALOG_CLOCKED:
        raise ProfileError(f"{profile.name}: an mvm workload is a clocked crossbar read; use an mlp workload for "
                           f"a {profile.substrate.value} profile")
    return crossbar_read_counts(rows, cols, _at_bits(profile, workload))


def modelled_figure(metric: Metric, workload: Workload, report: EnergyReport, counts: EventCounts) -> float:
    """pchw's value of ``metric`` from the priced events of one sample of ``workload``."""
    energy_j = report.total_j
    if energy_j <= 0:
        raise ProfileError(f"{report.profile} prices the workload at 0 J: nothing to compare")
    if metric is Metric.TOPS_PER_W:
        return 2.0 * workload.macs / energy_j / 1e12
    if metric is Metric.J_PER_INFERENCE:
        return energy_j
    if counts.synaptic_events <= 0:
        raise ProfileError(f"{report.profile}: pJ per synaptic op needs a workload with synaptic events")
    return energy_j / counts.synaptic_events * 1e12


def evaluate(profile: HardwareProfile, chip: str, figure: PublishedFigure, *, band: float, claim: str
             ) -> ValidationRow:
    """pchw's estimate of ``figure`` (of ``chip``) under ``profile``."""
    counts = workload_counts(profile, figure.workload)
    report = price(counts, profile)
    value = modelled_figure(figure.metric, figure.workload, report, counts)
    return ValidationRow(profile=profile.name, chip=chip, figure=figure, modelled=value, band=band,
                         dominant=report.dominant(), claim=claim)


def default_selection() -> list[str]:
    """Every chip preset and every generic preset that stands for a chip."""
    return list_chips() + [p for p in list_profiles() if load_calibration(p).stands_for]


def validate(names: list[str | Path] | None = None) -> list[ValidationRow]:
    """Rows for every published figure of the chips among ``names`` and every stands-for claim of the
    presets among them (presets, chips or TOML paths; default: :func:`default_selection`)."""
    rows: list[ValidationRow] = []
    for name in default_selection() if names is None else names:
        profile, calibration = load_profile(name), load_calibration(name)
        if not (calibration.figures or calibration.stands_for):
            raise ProfileError(f"{profile.name} has no published figures and stands for no chip: nothing to validate")
        rows += [evaluate(profile, profile.name, f, band=f.band, claim=CHIP) for f in calibration.figures]
        for claim in calibration.stands_for:
            chip = load_calibration(claim.chip)
            try:
                figures = [chip.figure(i) for i in claim.figures] if claim.figures else list(chip.figures)
            except ValueError as exc:
                raise ProfileError(f"{profile.name}: stands_for {claim.chip}: {exc}") from None
            rows += [evaluate(profile, claim.chip, f, band=claim.band, claim=STANDS_FOR) for f in figures]
    return rows


def out_of_band(rows: list[ValidationRow]) -> list[ValidationRow]:
    """The rows whose ratio left their band."""
    return [r for r in rows if not r.in_band]


def table_lines(rows: list[ValidationRow]) -> list[str]:
    """The rows as an aligned text table (published figure, pchw's, their ratio, the band, the
    dominant component of pchw's estimate)."""
    wp = max([len("profile")] + [len(r.profile) for r in rows])
    wf = max([len("chip:figure")] + [len(r.chip) + 1 + len(r.figure.id) for r in rows])
    lines = [f"{'profile':<{wp}} {'chip:figure':<{wf}} {'metric':<11} {'published':>10} {'pchw':>10} {'ratio':>6} "
             f"{'band':>6}  {'in':<3} {'role':<11} dominant"]
    for r in rows:
        f = r.figure
        role = f.role.value if r.claim == CHIP else STANDS_FOR
        lines.append(f"{r.profile:<{wp}} {r.chip + ':' + f.id:<{wf}} {f.metric.unit:<11} {f.value:>10.4g} "
                     f"{r.modelled:>10.4g} {r.ratio:>6.2f} {'×/÷' + format(r.band, 'g'):>6}  "
                     f"{'yes' if r.in_band else 'NO':<3} {role:<11} {r.dominant}")
    return lines
