"""Event counts of a PC circuit (DESIGN.md §3): the one counting model of every circuit stage.

The circuit maps layer ℓ to value neurons z_ℓ (integrators), error neurons ε_ℓ and one crossbar
W_ℓ that computes predictions W φ(z) on its rows and feedback Wᵀ ε on its columns. Samples are
processed one after another. Cells: c_1 = N·D (input crossbar), c_h = (H−1)·N², c_L = d_y·N.
Neurons per sample: value H·N (+ d_y when the output is free), error H·N + d_y.

Stages, per sample:

- :func:`forward_sweep_counts` — a prediction: each crossbar read once, its input held
  (sample-and-hold). It is also backprop's inference, so PC and BP predict at the same price.
    clocked: every cell read once; DAC of every crossbar input (D + H·N), ADC of every output
    (H·N + d_y); the value neurons held for H + 1 read periods.
    continuous: the chain of H + 1 first-order stages settles to the ADC's precision in
    t_s = τ·Γ⁻¹(H + 1; 1 − 2^−(adc_bits+1)) (the quantile of the cascade's Gamma-distributed
    delay); every cell conducts and the value neurons draw static power for t_s; DAC of x, ADC of
    the output.
    neuromorphic: a rate code of ``rate_code_bits`` bits: each layer's inputs fire up to
    2^bits − 1 spikes over as many time steps; every spike is one synaptic event per synapse it
    reaches (the measured spike counts of the sweep); value neurons update every time step.
- :func:`input_read_counts` — μ_1 = a_1 W_1 x once, when the state does not start from a sweep.
- :func:`pc_phase_counts` — ``n_steps`` of PC dynamics (or of the emulated forward cascade,
  ``feedback=False``); clocked: per step the forward and feedback MVMs of crossbars 2..L,
  2(c_h + c_L) cell reads, DAC of their inputs, ADC of their outputs, one update per neuron;
  continuous: the crossbars conduct for n_steps·dt; neuromorphic: one graded event per synapse
  and direction per step (a lower bound for binary spikes: Brian2's spiking mode counts real
  spikes). A clamped output converts its target once (DAC of y). An update window of W steps
  adds one accumulator per error neuron and per hidden activation, updated on each of W steps.
- :func:`backward_sweep_counts` — backprop's backward pass on the same arrays (transposed reads).
- :func:`update_counts` — an in-place outer-product update of every crossbar.
In every substrate the active neurons draw static power for the stage's circuit time.

Every clocked read of a crossbar is counted by :func:`crossbar_read_counts`, which prices the
array's physical layout (``max_rows``, ``max_cols``, ``bit_serial`` of the profile). A weight matrix
W (out × in) drives its ``in`` inputs onto rows and senses its ``out`` outputs on columns; on tiles
of at most max_rows × max_cols it occupies R = ⌈in/max_rows⌉ × C = ⌈out/max_cols⌉ arrays:
    forward read  W p:   cells in·out; DAC in·C (every tile has its own drivers); ADC out·R (every
                         tile's partial sums digitised); out·(R − 1) digital adds in the periphery;
    transposed read Wᵀe: DAC out·R; ADC in·C; in·(C − 1) adds.
Bit-serial inputs (b = dac_bits) read the cells b times and digitise every tile's columns b times;
the b·R partial results of each output are shift-added: digital ops = ADC conversions − outputs.
Continuous circuits sum tiles' partial currents on shared wires (no extra conversions); their
boundary DACs drive every tile (x into the C_1 column tiles of W_1). Updates drive every tile's rows
and columns. Neuromorphic cores are unaffected (each spike reaches every synapse once).
"""

from __future__ import annotations

from .events import EventCounts
from .profiles import HardwareProfile, Substrate
from .spec import NetworkSpec


def _require_circuit(profile: HardwareProfile) -> None:
    if profile.substrate is Substrate.DIGITAL:
        raise ValueError(f"profile {profile.name} is digital: use pchw.digital for its counts")


def _cells(spec: NetworkSpec) -> tuple[int, int]:
    """(c_1, c_h + c_L): the input crossbar's cells and the other crossbars'."""
    n, h = spec.width, spec.n_hidden
    return n * spec.input_dim, (h - 1) * n * n + spec.output_dim * n


def tiles(n_in: int, n_out: int, profile: HardwareProfile) -> tuple[int, int]:
    """(R, C): row tiles ⌈n_in/max_rows⌉ and column tiles ⌈n_out/max_cols⌉ of an n_out × n_in matrix."""
    rows = -(-n_in // int(profile.max_rows)) if profile.max_rows else 1
    cols = -(-n_out // int(profile.max_cols)) if profile.max_cols else 1
    return rows, cols


def crossbar_read_counts(n_in: int, n_out: int, profile: HardwareProfile, *, transposed: bool = False
                         ) -> EventCounts:
    """Events of one clocked MVM through an n_out × n_in weight matrix laid out on the profile's tiles:
    W p (inputs on rows) or, ``transposed``, Wᵀ e (inputs on columns); see the module docstring."""
    r, c = tiles(n_in, n_out, profile)
    driven, copies, sensed, partials = (n_out, r, n_in, c) if transposed else (n_in, c, n_out, r)
    cycles = int(profile.dac_bits) if profile.bit_serial else 1
    conversions = sensed * partials * cycles
    return EventCounts(cell_reads=float(n_in * n_out * cycles),
                       dac_conversions={profile.dac_bits: float(driven * copies)},
                       adc_conversions={profile.adc_bits: float(conversions)},
                       ops={profile.precision.value: float(conversions - sensed)})


def _reads(spec: NetworkSpec, profile: HardwareProfile, layers: slice, *, transposed: bool = False) -> EventCounts:
    """One clocked read of each crossbar ``layers`` selects (W_1 is index 0)."""
    total = EventCounts()
    for n_out, n_in in spec.weight_shapes()[layers]:
        total = total + crossbar_read_counts(n_in, n_out, profile, transposed=transposed)
    return total


def settle_time_s(spec: NetworkSpec, profile: HardwareProfile) -> float:
    """Time for a continuous circuit's forward cascade of H + 1 first-order stages (time constant τ)
    to settle within half an ADC step: the (1 − 2^−(adc_bits+1)) quantile of its Gamma(H + 1) delay."""
    from scipy.special import gammaincinv

    return profile.tau_s * float(gammaincinv(spec.n_hidden + 1, 1.0 - 2.0 ** -(profile.adc_bits + 1)))


def rate_window_steps(profile: HardwareProfile) -> int:
    """Time steps of one rate-coded value: 2^rate_code_bits − 1 (1 for graded messages)."""
    return 2 ** int(profile.rate_code_bits) - 1 if profile.rate_code_bits > 0 else 1


def sweep_time_s(spec: NetworkSpec, profile: HardwareProfile, *, window_steps: int | None = None) -> float:
    """Circuit time of one forward sweep (see :func:`forward_sweep_counts`)."""
    _require_circuit(profile)
    if profile.substrate is Substrate.ANALOG_CONTINUOUS:
        return settle_time_s(spec, profile)
    if profile.substrate is Substrate.NEUROMORPHIC:
        window = rate_window_steps(profile) if window_steps is None else window_steps
        return (spec.n_hidden + 1) * window * profile.dt_s
    return (spec.n_hidden + 1) * profile.dt_s


def forward_sweep_counts(spec: NetworkSpec, profile: HardwareProfile, *, n_samples: int,
                         synaptic_events: float | None = None, window_steps: int | None = None) -> EventCounts:
    """Events of ``n_samples`` forward sweeps (the physical prediction; also BP's inference).

    ``synaptic_events``: on a neuromorphic profile, the events the sweeps' messages caused (all
    samples together, measured by the simulator); without it every synapse counts one event per
    spike of a full-scale input (the upper bound). ``window_steps``: neuromorphic time steps per
    value (default: the profile's rate-code window).
    """
    _require_circuit(profile)
    d, n, h, dy = spec.input_dim, spec.width, spec.n_hidden, spec.output_dim
    c_in, c_rest = _cells(spec)
    held = h * n + dy  # value neurons holding the sweep's results
    t_s = sweep_time_s(spec, profile, window_steps=window_steps)
    sub = profile.substrate
    if sub is Substrate.ANALOG_CLOCKED:
        per = _reads(spec, profile, slice(None)) + EventCounts(circuit_seconds=held * t_s)
        return per.scaled(n_samples)
    if sub is Substrate.ANALOG_CONTINUOUS:
        _, c_1 = tiles(d, n, profile)
        per = EventCounts(cell_seconds=(c_in + c_rest) * t_s, dac_conversions={profile.dac_bits: float(d * c_1)},
                          adc_conversions={profile.adc_bits: float(dy)}, circuit_seconds=held * t_s)
        return per.scaled(n_samples)
    window = rate_window_steps(profile) if window_steps is None else window_steps
    per = EventCounts(neuron_updates=float(held * window), circuit_seconds=held * t_s).scaled(n_samples)
    if synaptic_events is None:
        synaptic_events = float(window * (c_in + c_rest) * n_samples)
    return per + EventCounts(synaptic_events=float(synaptic_events))


def input_read_counts(spec: NetworkSpec, profile: HardwareProfile, *, n_samples: int) -> EventCounts:
    """μ_1 = a_1 W_1 x read once per sample (clocked: one read of W_1; continuous: DAC of x into W_1's
    tiles; neuromorphic: c_1 events)."""
    _require_circuit(profile)
    d, n = spec.input_dim, spec.width
    c_in, _ = _cells(spec)
    sub = profile.substrate
    if sub is Substrate.ANALOG_CLOCKED:
        per = _reads(spec, profile, slice(0, 1))
    elif sub is Substrate.ANALOG_CONTINUOUS:
        per = EventCounts(dac_conversions={profile.dac_bits: float(d * tiles(d, n, profile)[1])})
    else:
        per = EventCounts(synaptic_events=float(c_in))
    return per.scaled(n_samples)


def pc_phase_counts(spec: NetworkSpec, profile: HardwareProfile, *, n_steps: int, dt_s: float, n_samples: int,
                    clamp_output: bool, feedback: bool = True, window_steps: int = 0,
                    reference_reads: bool = False) -> EventCounts:
    """Events of ``n_samples`` × ``n_steps`` steps of PC dynamics (``feedback``) or of the forward
    cascade (feedback off: the forward half of each step), the last ``window_steps`` accumulating the
    update window; ``reference_reads``: every MVM also reads a reference array (zero shifting)."""
    _require_circuit(profile)
    d_y, n, h = spec.output_dim, spec.width, spec.n_hidden
    c_in, c_rest = _cells(spec)
    value_neurons = h * n + (0 if clamp_output else d_y)
    neurons = value_neurons + h * n + d_y
    accumulators = (h * n + d_y) + h * n
    per = EventCounts(circuit_seconds=(neurons * n_steps + accumulators * window_steps) * dt_s)
    directions = 2 if feedback else 1
    target_dac = d_y if clamp_output and feedback and n_steps > 0 else 0  # the target y, driven once
    sub = profile.substrate
    if sub is Substrate.ANALOG_CLOCKED:
        step = _reads(spec, profile, slice(1, None))  # predictions μ_2..μ_L from φ(z_1..z_H)
        if feedback:
            step = step + _reads(spec, profile, slice(1, None), transposed=True)  # Wᵀε onto z_1..z_H
        per = per + step.scaled(n_steps) + EventCounts(
            dac_conversions={profile.dac_bits: float(target_dac)},
            neuron_updates=float(n_steps * neurons + window_steps * accumulators))
    elif sub is Substrate.ANALOG_CONTINUOUS:
        per = per + EventCounts(cell_seconds=(c_in * n_steps + c_rest * directions * n_steps) * dt_s,
                                dac_conversions={profile.dac_bits: float(target_dac)})
    else:
        per = per + EventCounts(synaptic_events=float(n_steps * directions * c_rest),
                                neuron_updates=float(n_steps * neurons + window_steps * accumulators))
    counts = per.scaled(n_samples)
    return with_reference_reads(counts) if reference_reads else counts


def free_output_read_counts(spec: NetworkSpec, profile: HardwareProfile, *, n_samples: int) -> EventCounts:
    """The ADC of a free output read at the end of a PC phase (a prediction that ran PC steps)."""
    _require_circuit(profile)
    if profile.substrate is Substrate.NEUROMORPHIC:
        return EventCounts()
    return EventCounts(adc_conversions={profile.adc_bits: float(spec.output_dim * n_samples)})


def backward_sweep_counts(spec: NetworkSpec, profile: HardwareProfile, *, n_samples: int) -> EventCounts:
    """Backprop's backward pass per sample on the same arrays, read through their columns: the
    output error and the deltas δ_L..δ_2 driven in, W_L..W_2 read transposed (clocked: one transposed
    read of each, :func:`crossbar_read_counts`; continuous: the same cells conduct for one settling
    of the H-stage backward chain, DAC of the output error into W_L's tiles, ADC of H·N results;
    neuromorphic: graded events per synapse), and in the digital periphery the loss gradient (d_y
    ops), φ'(z) ⊙ (H·N ops) and the skip sums ((H−1)·N ops), with the forward activations written
    and read back (2·H·N values at the periphery's precision)."""
    _require_circuit(profile)
    n, h, dy = spec.width, spec.n_hidden, spec.output_dim
    _, c_rest = _cells(spec)
    bits = profile.precision.bits
    periphery = EventCounts(ops={profile.precision.value: float(dy + h * n + (h - 1) * n * spec.skip)},
                            sram_read_bits=float(2 * h * n * bits), sram_write_bits=float(2 * h * n * bits))
    sub = profile.substrate
    if sub is Substrate.ANALOG_CLOCKED:
        array = _reads(spec, profile, slice(1, None), transposed=True) + EventCounts(
            circuit_seconds=(h * n + dy) * h * profile.dt_s)
    elif sub is Substrate.ANALOG_CONTINUOUS:
        t_s = settle_time_s(spec, profile)
        row_tiles, _ = tiles(n, dy, profile)
        array = EventCounts(cell_seconds=c_rest * t_s, dac_conversions={profile.dac_bits: float(dy * row_tiles)},
                            adc_conversions={profile.adc_bits: float(h * n)}, circuit_seconds=(h * n + dy) * t_s)
    else:
        array = EventCounts(synaptic_events=float(c_rest), neuron_updates=float(h * n + dy))
    return (array + periphery).scaled(n_samples)


def update_counts(spec: NetworkSpec, profile: HardwareProfile, *, batch: int, write_pulses: float | None = None
                  ) -> EventCounts:
    """One in-place update ΔW_ℓ ∝ Σ_b d_ℓ,b p_ℓ,bᵀ of every crossbar from a batch of ``batch`` samples:
    each sample's rank-1 update drives every tile's rows with its error and columns with its
    presynaptic activity (one DAC conversion each: out·R + in·C per crossbar; neuromorphic: a synaptic
    update per synapse is the write itself) and fires ``write_pulses`` programming pulses in all
    (default: one per cell and sample, an exact device; the stochastic pulse model counts its own)."""
    _require_circuit(profile)
    cells = sum(o * i for o, i in spec.weight_shapes())
    pulses = float(batch * cells) if write_pulses is None else float(write_pulses)
    if profile.substrate is Substrate.NEUROMORPHIC:
        return EventCounts(write_pulses=pulses)
    drives = 0
    for o, i in spec.weight_shapes():
        r, c = tiles(i, o, profile)
        drives += o * r + i * c
    return EventCounts(write_pulses=pulses, dac_conversions={profile.dac_bits: float(batch * drives)})


def circuit_inference_counts(spec: NetworkSpec, profile: HardwareProfile, *, n_steps: int, dt_s: float,
                             n_samples: int, clamp_output: bool, ff_steps: int = 0,
                             window_steps: int = 0) -> EventCounts:
    """Events of a run that starts from μ_1 read once, emulates ``ff_steps`` of the forward cascade
    and runs ``n_steps`` of PC dynamics (the cascade path of :func:`simulators.simulate`)."""
    counts = input_read_counts(spec, profile, n_samples=n_samples)
    counts = counts + pc_phase_counts(spec, profile, n_steps=ff_steps, dt_s=dt_s, n_samples=n_samples,
                                      clamp_output=clamp_output, feedback=False)
    counts = counts + pc_phase_counts(spec, profile, n_steps=n_steps, dt_s=dt_s, n_samples=n_samples,
                                      clamp_output=clamp_output, window_steps=window_steps)
    return counts + (EventCounts() if clamp_output else free_output_read_counts(spec, profile, n_samples=n_samples))


def with_reference_reads(counts: EventCounts) -> EventCounts:
    """``counts`` of MVMs on zero-shifted crossbars: every cell read also reads the reference array."""
    return counts + EventCounts(cell_reads=counts.cell_reads, cell_seconds=counts.cell_seconds)
