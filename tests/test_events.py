"""Event counts (hand-computed for a tiny network) and their pricing."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pchw.circuit_events import circuit_inference_counts
from pchw.digital import digital_inference_counts, digital_training_counts
from pchw.events import COMPONENTS, EventCounts, PricingError, price
from pchw.profiles import list_profiles, load_profile
from pchw.spec import NetworkSpec

# D = 2, N = 3, L = 3 (H = 2), d_y = 2: input cells 6; other cells 3·3 + 2·3 = 15
TINY = NetworkSpec(input_dim=2, width=3, depth=3, output_dim=2)
DT = 5e-9
# the clocked preset on one unlimited array, read once per MVM (its shipped layout is tested below)
FLAT = load_profile("analog-rram-clocked").replace(bit_serial=0, max_rows=0, max_cols=0)


def test_clocked_counts_by_hand():
    p = FLAT
    free = circuit_inference_counts(TINY, p, n_steps=4, dt_s=DT, n_samples=1, clamp_output=False)
    # 8 value neurons (6 hidden + 2 output) + 8 error neurons
    assert free.cell_reads == 6 + 4 * 2 * 15 == 126
    assert free.dac_conversions == {8: 2 + 4 * (6 + 3 + 2)}  # x once; φ(z) of 2 layers, ε_2, ε_L per step
    assert free.adc_conversions == {8: 3 + 4 * (3 + 2 + 6) + 2}  # μ_1 once; predictions, feedback; readout
    assert free.neuron_updates == 4 * 16
    assert free.circuit_seconds == pytest.approx(16 * 4 * DT)
    assert free.cell_seconds == 0 and free.synaptic_events == 0
    clamped = circuit_inference_counts(TINY, p, n_steps=4, dt_s=DT, n_samples=3, clamp_output=True)
    assert clamped.dac_conversions == {8: 3 * (2 + 2 + 44)}  # y is driven in, nothing read out
    assert clamped.adc_conversions == {8: 3 * (3 + 44)}
    assert clamped.neuron_updates == 3 * 4 * 14


def test_continuous_counts_by_hand():
    p = load_profile("analog-rram-continuous")
    c = circuit_inference_counts(TINY, p, n_steps=4, dt_s=DT, n_samples=2, clamp_output=False)
    assert c.cell_seconds == pytest.approx(2 * (6 + 2 * 15) * 4 * DT)
    assert c.dac_conversions == {8: 2 * 2} and c.adc_conversions == {8: 2 * 2}
    assert c.cell_reads == 0 and c.neuron_updates == 0
    assert c.circuit_seconds == pytest.approx(2 * 16 * 4 * DT)


def test_neuromorphic_counts_by_hand():
    p = load_profile("neuromorphic-loihi")
    c = circuit_inference_counts(TINY, p, n_steps=4, dt_s=DT, n_samples=1, clamp_output=False)
    assert c.synaptic_events == 126 and c.neuron_updates == 64 and c.cell_reads == 0


def test_digital_counts_by_hand():
    gpu = load_profile("gpu-fp32")
    # M_f = 6 + 9 + 6 = 21 MACs per sample, M_h = 15; H·N = 6 hidden neurons
    bp = digital_training_counts(TINY, gpu, algorithm="bp", batch_size=1)
    assert bp.macs == {"fp32": 21 + 15 + 21}
    assert bp.ops == {"fp32": 2 * 6 + 2 * 2 + 12 * 21}
    assert bp.sram_read_bits == 32 * (2 * 21 + 3 * 21 + 2 * 6)  # 2 weight passes, Adam reads, activations
    assert bp.sram_write_bits == 32 * (3 * 21 + 2 * 6) and bp.dram_read_bits == 0
    pc = digital_training_counts(TINY, gpu, algorithm="pc", batch_size=1, n_steps=2)
    assert pc.macs == {"fp32": 21 + 2 * 2 * 15 + 2 * 21}
    assert pc.ops == {"fp32": 6 + 2 * (6 * 6 + 2 * 2) + 2 * 6 + 12 * 21}
    assert pc.sram_read_bits == 32 * ((1 + 2 * 2 + 2) * 21 + 3 * 21 + 6 * (1 + 4 * 2 + 4))
    inf = digital_inference_counts(TINY, gpu, batch_size=4)
    assert inf.macs == {"fp32": 4 * 21} and inf.ops == {"fp32": 4 * 6}
    # nothing fits on a chip with 10 bytes: all traffic moves off chip
    small = gpu.replace(sram_bytes=10.0)
    spilled = digital_training_counts(TINY, small, algorithm="bp", batch_size=1)
    assert spilled.sram_read_bits == 0 and spilled.dram_read_bits == bp.sram_read_bits
    # PC reads the weights 2T + 3 times per batch, BP twice: PC is costlier when they spill
    assert digital_training_counts(TINY, gpu, algorithm="pc", batch_size=1).macs["fp32"] > bp.macs["fp32"]


def test_price_by_hand():
    p = load_profile("analog-rram-clocked")
    counts = EventCounts(cell_reads=126, dac_conversions={8: 46}, adc_conversions={8: 49, 6: 4},
                         neuron_updates=64, write_pulses=10)
    report = price(counts, p)
    assert report.components_j["crossbar_read"] == pytest.approx(126 * 6.25e-15)
    assert report.components_j["dac"] == pytest.approx(46 * 8 * 0.42e-12)
    assert report.components_j["adc"] == pytest.approx(49 * 1.67e-12 + 4 * 1.67e-12 / 4)  # Walden 2^bits
    assert report.components_j["neuron"] == pytest.approx(64 * 0.25e-12)
    assert report.components_j["write"] == pytest.approx(10 * 0.2e-12)
    assert report.total_j == pytest.approx(sum(report.components_j.values()), rel=1e-15)
    assert report.dominant() == "dac"
    assert set(report.components_j) == set(COMPONENTS)


def test_continuous_cells_draw_power_while_settling():
    p = load_profile("analog-rram-continuous")
    report = price(EventCounts(cell_seconds=2.0e-6, circuit_seconds=1e-6), p)
    assert report.components_j["crossbar_read"] == pytest.approx(2.0e-6 * p.e_cell_read_j / p.t_cell_read_s)
    assert report.components_j["static"] == pytest.approx(1e-6 * 74e-6)


def test_ideal_profile_prices_nothing_and_wrong_precision_is_refused():
    ideal = load_profile("ideal")
    counts = circuit_inference_counts(TINY, ideal, n_steps=3, dt_s=0.1, n_samples=2, clamp_output=False)
    assert price(counts, ideal).total_j == 0 and price(counts, ideal).dominant() == "none"
    with pytest.raises(PricingError, match="fp32 only"):
        price(EventCounts(macs={"int8": 5}), load_profile("gpu-fp32"))
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        EventCounts(cell_reads=-1)


counts_strategy = st.builds(
    EventCounts,
    cell_reads=st.floats(0, 1e12),
    cell_seconds=st.floats(0, 1e-3),
    sram_read_bits=st.floats(0, 1e12),
    dram_write_bits=st.floats(0, 1e12),
    neuron_updates=st.floats(0, 1e9),
    write_pulses=st.floats(0, 1e9),
    synaptic_events=st.floats(0, 1e9),
    circuit_seconds=st.floats(0, 1.0),
    adc_conversions=st.dictionaries(st.integers(1, 16), st.floats(0, 1e9), max_size=3),
    dac_conversions=st.dictionaries(st.integers(1, 16), st.floats(0, 1e9), max_size=3),
)


@settings(max_examples=60, deadline=None)
@given(a=counts_strategy, b=counts_strategy, k=st.floats(0, 1e3), name=st.sampled_from(list_profiles()))
def test_pricing_is_linear_and_components_sum_to_total(a, b, k, name):
    p = load_profile(name)
    ra, rb = price(a, p), price(b, p)
    both = price(a + b, p)
    scaled = price(a.scaled(k), p)
    for c in COMPONENTS:
        assert both.components_j[c] == pytest.approx(ra.components_j[c] + rb.components_j[c], rel=1e-9, abs=1e-300)
        assert scaled.components_j[c] == pytest.approx(k * ra.components_j[c], rel=1e-9, abs=1e-300)
    for r in (ra, both, scaled):
        assert r.total_j == pytest.approx(math.fsum(r.components_j.values()), rel=1e-12, abs=1e-300)
        assert all(v >= 0 for v in r.components_j.values())


def test_forward_phase_counts_by_hand():
    p = FLAT
    c = circuit_inference_counts(TINY, p, n_steps=0, dt_s=DT, n_samples=1, clamp_output=False, ff_steps=3)
    assert c.cell_reads == 6 + 3 * 15  # forward half of the crossbars only
    assert c.dac_conversions == {8: 2 + 3 * 6}  # x; φ(z_1), φ(z_2) per step
    assert c.adc_conversions == {8: 3 + 3 * (3 + 2) + 2}  # μ_1; μ_2 and μ_L per step; readout
    assert c.neuron_updates == 3 * 16
    cont = circuit_inference_counts(TINY, load_profile("analog-rram-continuous"), n_steps=2, dt_s=DT,
                                    n_samples=1, clamp_output=False, ff_steps=3)
    assert cont.cell_seconds == pytest.approx((6 * 5 + 15 * (3 + 2 * 2)) * DT)


def test_sweep_update_and_backward_counts_by_hand():
    from pchw.circuit_events import backward_sweep_counts, forward_sweep_counts, update_counts

    p = FLAT
    up = update_counts(TINY, p, batch=2)
    assert up.write_pulses == 2 * 21 and up.dac_conversions == {8: 2 * ((3 + 2) + (3 + 3) + (2 + 3))}
    assert update_counts(TINY, p, batch=2, write_pulses=7).write_pulses == 7
    fwd = forward_sweep_counts(TINY, p, n_samples=2)
    assert fwd.cell_reads == 2 * 21 and fwd.dac_conversions == {8: 2 * (2 + 6)}
    assert fwd.adc_conversions == {8: 2 * (6 + 2)}
    assert fwd.circuit_seconds == pytest.approx(2 * (6 + 2) * 3 * DT)  # 8 neurons held over 3 read periods
    back = backward_sweep_counts(TINY, p, n_samples=1)
    assert back.cell_reads == 15 and back.dac_conversions == {8: 2 + 3} and back.adc_conversions == {8: 6}
    assert back.ops == {"int8": 2 + 6 + 3} and back.sram_write_bits == 2 * 6 * 8
    cont = forward_sweep_counts(TINY, load_profile("analog-rram-continuous"), n_samples=1)
    assert cont.dac_conversions == {8: 2} and cont.adc_conversions == {8: 2} and cont.cell_reads == 0
    loihi = load_profile("neuromorphic-loihi").replace(rate_code_bits=3)
    spikes = forward_sweep_counts(TINY, loihi, n_samples=2, synaptic_events=123.0)
    assert spikes.synaptic_events == 123.0 and spikes.neuron_updates == 2 * 8 * 7  # 2^3 − 1 time steps
    assert forward_sweep_counts(TINY, loihi, n_samples=1).synaptic_events == 7 * 21  # the full-scale bound


# ---- tiles and bit-serial inputs ------------------------------------------------------------
# D = 5, N = 4, L = 3 (H = 2), d_y = 3 on arrays of at most 2 rows × 3 columns:
#   W_1 (4 × 5): R = ⌈5/2⌉ = 3 row tiles, C = ⌈4/3⌉ = 2 column tiles
#   W_2 (4 × 4): R = 2, C = 2;   W_3 (3 × 4): R = 2, C = 1
WIDE = NetworkSpec(input_dim=5, width=4, depth=3, output_dim=3)
TILED = FLAT.replace(max_rows=2, max_cols=3)


def test_tiled_forward_sweep_by_hand():
    from pchw.circuit_events import forward_sweep_counts, tiles

    assert [tiles(i, o, TILED) for o, i in WIDE.weight_shapes()] == [(3, 2), (2, 2), (2, 1)]
    c = forward_sweep_counts(WIDE, TILED, n_samples=2)
    assert c.cell_reads == 2 * (20 + 16 + 12)  # tiling reads the same cells
    assert c.dac_conversions == {8: 2 * (5 * 2 + 4 * 2 + 4 * 1)}  # every column tile drives its own rows
    assert c.adc_conversions == {8: 2 * (4 * 3 + 4 * 2 + 3 * 2)}  # every row tile's partial sums digitised
    assert c.ops == {"int8": 2 * (26 - (4 + 4 + 3))}  # partial sums beyond one per output, added digitally
    flat = forward_sweep_counts(WIDE, FLAT, n_samples=2)
    assert flat.adc_conversions == {8: 2 * 11} and flat.dac_conversions == {8: 2 * 13} and flat.ops == {}
    roomy = forward_sweep_counts(WIDE, FLAT.replace(max_rows=5, max_cols=4), n_samples=2)
    assert roomy == flat  # layers that fit one tile cost what an unlimited array costs


def test_tiled_pc_phase_backward_sweep_and_update_by_hand():
    from pchw.circuit_events import backward_sweep_counts, forward_sweep_counts, pc_phase_counts, update_counts

    pc = pc_phase_counts(WIDE, TILED, n_steps=2, dt_s=DT, n_samples=1, clamp_output=True)
    # per step: W_2, W_3 forward (DAC 4·2 + 4·1, ADC 4·2 + 3·2) and transposed (DAC 4·2 + 3·2, ADC 4·2 + 4·1)
    assert pc.dac_conversions == {8: 2 * (12 + 14) + 3}  # + the clamped target y, once
    assert pc.adc_conversions == {8: 2 * (14 + 12)}
    assert pc.ops == {"int8": 2 * ((14 - 7) + (12 - 8))}
    assert pc.cell_reads == 2 * 2 * (16 + 12)
    back = backward_sweep_counts(WIDE, TILED, n_samples=1)
    assert back.dac_conversions == {8: 4 * 2 + 3 * 2} and back.adc_conversions == {8: 4 * 2 + 4 * 1}
    assert back.ops == {"int8": (12 - 8) + (3 + 2 * 4 + 4)}  # partial sums + loss grad, φ' ⊙, skip sums
    up = update_counts(WIDE, TILED, batch=2)
    assert up.dac_conversions == {8: 2 * ((4 * 3 + 5 * 2) + (4 * 2 + 4 * 2) + (3 * 2 + 4 * 1))}
    cont = load_profile("analog-rram-continuous").replace(max_rows=2, max_cols=3)
    sweep = forward_sweep_counts(WIDE, cont, n_samples=1)
    assert sweep.dac_conversions == {8: 5 * 2} and sweep.adc_conversions == {8: 3}  # currents summed in analog
    assert update_counts(WIDE, cont, batch=1).dac_conversions == {8: 22 + 16 + 10}  # drives of every tile
    assert backward_sweep_counts(WIDE, cont, n_samples=1).dac_conversions == {8: 3 * 2}  # y error into W_3's tiles


def test_bit_serial_reads_and_converts_once_per_input_bit():
    from pchw.circuit_events import crossbar_read_counts

    p = TILED.replace(bit_serial=1, dac_bits=3)
    c = crossbar_read_counts(5, 4, p)  # W_1: R = 3, C = 2, 3 input bits
    assert c.cell_reads == 3 * 20 and c.dac_conversions == {3: 5 * 2}  # one 3-bit DAC conversion per input and tile
    assert c.adc_conversions == {8: 4 * 3 * 3} and c.ops == {"int8": 36 - 4}  # shift-adds of 9 partials per output
    t = crossbar_read_counts(5, 4, p, transposed=True)  # Wᵀ e: 4 inputs into 3 row tiles, 5 outputs from 2 col tiles
    assert t.dac_conversions == {3: 4 * 3} and t.adc_conversions == {8: 5 * 2 * 3} and t.ops == {"int8": 30 - 5}
    shipped = load_profile("analog-rram-clocked")  # bit-serial 8-bit inputs on 256 × 256 tiles
    one = crossbar_read_counts(784, 128, shipped)
    assert one.cell_reads == 8 * 784 * 128 and one.adc_conversions == {8: 128 * 4 * 8}
    assert one.dac_conversions == {8: 784} and one.ops == {"int8": 128 * 4 * 8 - 128}


def test_adc_energy_law_walden_or_linear():
    walden = FLAT
    linear = FLAT.replace(adc_scaling="linear")
    counts = EventCounts(adc_conversions={8: 3, 4: 2, 10: 1})
    e = FLAT.e_adc_j
    assert price(counts, walden).components_j["adc"] == pytest.approx(e * (3 + 2 / 16 + 4))
    assert price(counts, linear).components_j["adc"] == pytest.approx(e * (3 + 2 * 4 / 8 + 10 / 8))
