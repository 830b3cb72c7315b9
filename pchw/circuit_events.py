"""Event counts of PC inference on a circuit (DESIGN.md §3), from the shape and the run length.

The circuit maps layer ℓ to value neurons z_ℓ (integrators), error neurons ε_ℓ and one crossbar
W_ℓ that computes predictions W φ(z) on its rows and feedback Wᵀ ε on its columns. Samples are
processed one after another, each for ``n_steps`` steps of ``dt_s`` seconds.

Cells: c_1 = N·D (input crossbar), c_h = (H−1)·N², c_L = d_y·N. Neurons per sample:
value H·N (+ d_y when the output is free), error H·N + d_y.

Per sample, by substrate:
- analog-clocked: once, DAC of x (D) [and y when clamped (d_y)], c_1 cell reads and ADC of μ_1 (N);
  every step, forward and feedback MVMs 2(c_h + c_L) cell reads, DAC of their inputs
  (H·N + (H−1)·N + d_y) and ADC of their outputs ((H−1)·N + d_y + H·N), one update per neuron;
  at the end, ADC of the free output (d_y).
- analog-continuous: DAC of x [and y], ADC of the free output; the crossbars conduct for the whole
  settling time: (c_1 + 2(c_h + c_L)) cells × n_steps·dt_s.
- neuromorphic (rate-coded messages): c_1 synaptic events once, 2(c_h + c_L) per step, one update
  per neuron per step.
In every substrate the neurons draw static power for n_steps·dt_s seconds.
An update window of W steps adds one accumulator per error neuron and per hidden activation
(H·N + d_y + H·N), each updated (and drawing static power) on each of the W steps.

An optional forward phase of ``ff_steps`` steps runs before, with the feedback paths off: each
of its steps has only the forward half of the above (c_h + c_L cell reads, DAC of H·N inputs, ADC
of (H−1)·N + d_y outputs; c_h + c_L conducting cells or synaptic events) and the same neuron
updates and static power.
"""

from __future__ import annotations

from .events import EventCounts
from .profiles import HardwareProfile, Substrate
from .spec import NetworkSpec


def circuit_inference_counts(spec: NetworkSpec, profile: HardwareProfile, *, n_steps: int, dt_s: float,
                             n_samples: int, clamp_output: bool, ff_steps: int = 0,
                             window_steps: int = 0) -> EventCounts:
    """Events of ``n_samples`` inference runs of ``ff_steps`` forward-phase steps then ``n_steps``
    steps of PC dynamics each; the last ``window_steps`` of them also accumulate every error neuron
    and every hidden activation for the update (one more neuron update each per step)."""
    if profile.substrate is Substrate.DIGITAL:
        raise ValueError(f"profile {profile.name} is digital: use pchw.digital for its counts")
    d, n, h, dy = spec.input_dim, spec.width, spec.n_hidden, spec.output_dim
    c_in, c_rest = n * d, (h - 1) * n * n + dy * n
    value_neurons = h * n + (0 if clamp_output else dy)
    error_neurons = h * n + dy
    neurons = value_neurons + error_neurons
    steps = ff_steps + n_steps
    dac_in = d + (dy if clamp_output else 0)
    adc_out = 0 if clamp_output else dy
    fwd_dac, fwd_adc = h * n, (h - 1) * n + dy  # inputs φ(z_1..z_H); outputs μ_2..μ_L
    fb_dac, fb_adc = (h - 1) * n + dy, h * n  # inputs ε_2..ε_L; outputs Wᵀε onto z_1..z_H
    sub = profile.substrate
    accumulators = error_neurons + h * n
    per_sample: dict = {"circuit_seconds": (neurons * steps + accumulators * window_steps) * dt_s}
    if sub is Substrate.ANALOG_CLOCKED:
        per_sample["cell_reads"] = c_in + ff_steps * c_rest + n_steps * 2 * c_rest
        dac = dac_in + steps * fwd_dac + n_steps * fb_dac
        adc = n + steps * fwd_adc + n_steps * fb_adc + adc_out
        per_sample["dac_conversions"] = {profile.dac_bits: dac}
        per_sample["adc_conversions"] = {profile.adc_bits: adc}
        per_sample["neuron_updates"] = steps * neurons + window_steps * accumulators
    elif sub is Substrate.ANALOG_CONTINUOUS:
        per_sample["cell_seconds"] = (c_in * steps + c_rest * (ff_steps + 2 * n_steps)) * dt_s
        per_sample["dac_conversions"] = {profile.dac_bits: dac_in}
        per_sample["adc_conversions"] = {profile.adc_bits: adc_out}
    else:  # neuromorphic, rate-coded
        per_sample["synaptic_events"] = c_in + ff_steps * c_rest + n_steps * 2 * c_rest
        per_sample["neuron_updates"] = steps * neurons + window_steps * accumulators
    return EventCounts(**per_sample).scaled(n_samples)


def circuit_update_counts(spec: NetworkSpec, profile: HardwareProfile, *, n_updates: int = 1) -> EventCounts:
    """Events of ``n_updates`` in-place outer-product updates ΔW_ℓ ∝ ε_ℓ φ(z_{ℓ−1})ᵀ of every crossbar.

    Each update drives every row with its error and every column with its presynaptic activity
    (one DAC conversion per row and per column) and fires one coincident programming pulse per
    cell. (The stochastic pulse-train device model of in-situ learning refines the pulse count.)
    """
    cells = sum(o * i for o, i in spec.weight_shapes())
    drives = sum(o + i for o, i in spec.weight_shapes())
    return EventCounts(write_pulses=float(cells), dac_conversions={profile.dac_bits: float(drives)}).scaled(n_updates)


def _require_clocked(profile: HardwareProfile, what: str) -> None:
    if profile.substrate is not Substrate.ANALOG_CLOCKED:
        raise ValueError(f"{what} is modelled on analog-clocked crossbars only, not on {profile.name} "
                         f"({profile.substrate.value})")


def analog_forward_counts(spec: NetworkSpec, profile: HardwareProfile, *, n_samples: int = 1) -> EventCounts:
    """One feedforward sweep per sample on clocked crossbars: each layer's MVM once, with the DAC of
    its inputs (D + H·N) and the ADC of its outputs (H·N + d_y); cells read: all weights once."""
    _require_clocked(profile, "a feedforward sweep")
    d, n, h, dy = spec.input_dim, spec.width, spec.n_hidden, spec.output_dim
    cells = sum(o * i for o, i in spec.weight_shapes())
    return EventCounts(cell_reads=float(cells), dac_conversions={profile.dac_bits: float(d + h * n)},
                       adc_conversions={profile.adc_bits: float(h * n + dy)}).scaled(n_samples)


def analog_bp_training_counts(spec: NetworkSpec, profile: HardwareProfile, *, batch_size: int) -> EventCounts:
    """Backprop on clocked crossbars (as analog in-memory training does it), one batch:
    per sample a forward sweep, a backward sweep through the transposed arrays W_L..W_2 (DAC of
    d_y + (H−1)·N errors, ADC of H·N results, cells (H−1)·N² + d_y·N) and the activations and
    derivatives kept in the digital periphery (2·H·N values written and read); then one in-place
    update per batch."""
    _require_clocked(profile, "backprop")
    n, h, dy = spec.width, spec.n_hidden, spec.output_dim
    bits = profile.precision.bits
    backward = EventCounts(cell_reads=float((h - 1) * n * n + dy * n),
                           dac_conversions={profile.dac_bits: float(dy + (h - 1) * n)},
                           adc_conversions={profile.adc_bits: float(h * n)},
                           sram_read_bits=float(2 * h * n * bits), sram_write_bits=float(2 * h * n * bits))
    per_sample = analog_forward_counts(spec, profile) + backward
    return per_sample.scaled(batch_size) + circuit_update_counts(spec, profile)
