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
"""

from __future__ import annotations

from .events import EventCounts
from .profiles import HardwareProfile, Substrate
from .spec import NetworkSpec


def circuit_inference_counts(spec: NetworkSpec, profile: HardwareProfile, *, n_steps: int, dt_s: float,
                             n_samples: int, clamp_output: bool) -> EventCounts:
    """Events of ``n_samples`` inference runs of ``n_steps`` steps each."""
    if profile.substrate is Substrate.DIGITAL:
        raise ValueError(f"profile {profile.name} is digital: use pchw.digital for its counts")
    d, n, h, dy = spec.input_dim, spec.width, spec.n_hidden, spec.output_dim
    c_in, c_rest = n * d, (h - 1) * n * n + dy * n
    value_neurons = h * n + (0 if clamp_output else dy)
    error_neurons = h * n + dy
    neurons = value_neurons + error_neurons
    settle_s = n_steps * dt_s
    dac_in = d + (dy if clamp_output else 0)
    adc_out = 0 if clamp_output else dy
    sub = profile.substrate
    per_sample: dict = {"circuit_seconds": neurons * settle_s}
    if sub is Substrate.ANALOG_CLOCKED:
        per_sample["cell_reads"] = c_in + n_steps * 2 * c_rest
        dac = dac_in + n_steps * (h * n + (h - 1) * n + dy)
        adc = n + n_steps * ((h - 1) * n + dy + h * n) + adc_out
        per_sample["dac_conversions"] = {profile.dac_bits: dac}
        per_sample["adc_conversions"] = {profile.adc_bits: adc}
        per_sample["neuron_updates"] = n_steps * neurons
    elif sub is Substrate.ANALOG_CONTINUOUS:
        per_sample["cell_seconds"] = (c_in + 2 * c_rest) * settle_s
        per_sample["dac_conversions"] = {profile.dac_bits: dac_in}
        per_sample["adc_conversions"] = {profile.adc_bits: adc_out}
    else:  # neuromorphic, rate-coded
        per_sample["synaptic_events"] = c_in + n_steps * 2 * c_rest
        per_sample["neuron_updates"] = n_steps * neurons
    return EventCounts(**per_sample).scaled(n_samples)
