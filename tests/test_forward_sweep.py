"""The physical forward pass: a prediction on a circuit is one sweep (each crossbar read once), it
computes the feedforward pass on an exact circuit, and with no PC steps it costs exactly what
backprop's inference costs on every circuit preset; PC steps add only what they count."""

import dataclasses

import numpy as np
import pytest
from scipy.special import gammainc

from experiments.energy import energy_rows
from pchw import oracle
from pchw.circuit_events import forward_sweep_counts, pc_phase_counts, settle_time_s, sweep_time_s
from pchw.profiles import list_profiles, load_profile
from pchw.spec import NetworkSpec, init_weights
from simulators import forward_sweep, simulate
from simulators.circuit import ideal_circuit, prepare_circuit

CIRCUITS = [p for p in list_profiles() if load_profile(p).is_circuit and p != "ideal"]


def _net(depth=9, width=16, batch=6, seed=0):
    spec = NetworkSpec(input_dim=12, width=width, depth=depth, output_dim=4)
    rng = np.random.default_rng(seed)
    return spec, init_weights(spec, seed=seed + 1), rng.standard_normal((batch, 12)), rng.standard_normal((batch, 4))


@pytest.mark.parametrize("skip", [True, False])
def test_sweep_of_an_exact_circuit_is_the_feedforward_pass(skip):
    spec = NetworkSpec(input_dim=12, width=16, depth=6, output_dim=4, act="tanh", skip=skip)
    weights = init_weights(spec, seed=3)
    x = np.random.default_rng(1).standard_normal((5, 12))
    zs, out = oracle.feedforward(spec, weights, x)
    sweep = forward_sweep(ideal_circuit(spec, weights), x, np.arange(5))
    np.testing.assert_allclose(sweep.z, np.stack(zs), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sweep.output, out, rtol=1e-12, atol=1e-14)
    r = simulate(spec, weights, x, profile="ideal", n_steps=0)
    np.testing.assert_allclose(r.output, out, rtol=1e-12, atol=1e-14)
    assert r.max_grad < 1e-12


@pytest.mark.parametrize("profile", CIRCUITS)
def test_pc_prediction_costs_exactly_backprops_inference_and_pc_steps_add_what_they_count(profile):
    spec, weights, x, y = _net()
    p = load_profile(profile)
    rows = {(r.algorithm, r.phase): r.report for r in energy_rows(spec, weights, [p], x=x, y=y, batch_size=6)}
    assert rows[("pc", "inference")].components_j == rows[("bp", "inference")].components_j
    prediction = simulate(spec, weights, x, profile=p, n_steps=0)
    assert prediction.energy.total_j / len(x) == pytest.approx(rows[("bp", "inference")].total_j, rel=1e-12)
    measured = prediction.counts.synaptic_events if p.substrate.value == "neuromorphic" else None
    sweep_only = forward_sweep_counts(spec, p, n_samples=len(x), synaptic_events=measured)
    assert prediction.counts == sweep_only
    steps = simulate(spec, weights, x, y, profile=p, n_steps=7)
    added = pc_phase_counts(spec, p, n_steps=7, dt_s=p.dt_s, n_samples=len(x), clamp_output=True)
    clamped_sweep = simulate(spec, weights, x, y, profile=p, n_steps=0).counts
    assert steps.counts == clamped_sweep + added


def test_the_sweep_is_hundreds_of_times_cheaper_than_the_emulated_cascade():
    spec, weights, x, _ = _net(depth=30, width=8, batch=2)
    p = load_profile("analog-rram-clocked")
    sweep = simulate(spec, weights, x, profile=p, n_steps=0)
    cascade = simulate(spec, weights, x, profile=p, n_steps=0, init="cascade")
    assert cascade.meta["ff_steps"] > 300  # 30 lags at dt/τ = 0.1
    assert cascade.energy.total_j > 100 * sweep.energy.total_j
    np.testing.assert_allclose(sweep.output, oracle.feedforward(spec, weights, x)[1], rtol=0.2, atol=0.2)


def test_noisy_sweep_reads_each_crossbar_once_and_the_pc_phase_holds_its_first_read():
    spec, weights, x, y = _net(depth=4, batch=3)
    p = load_profile("analog-rram-clocked")
    circuit = prepare_circuit(spec, weights, p, dt_s=p.dt_s, seed=5)
    a = forward_sweep(circuit, x, np.arange(3))
    b = forward_sweep(circuit, x, np.arange(3))
    np.testing.assert_array_equal(a.z, b.z)  # the draws are a function of (seed, where, when)
    exact = oracle.feedforward(spec, circuit.crossbars, x)[0][0]
    assert 0 < np.abs(a.mu_first - exact).max() < 0.2 * np.abs(exact).max()  # noisy, but close
    r = simulate(spec, weights, x, y, profile=p, n_steps=0, seed=5)
    np.testing.assert_array_equal(r.z, a.z)


def test_rate_coded_sweep_counts_its_spikes_by_hand():
    spec = NetworkSpec(input_dim=3, width=2, depth=2, output_dim=2, skip=False)
    weights = [np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])]
    x = np.array([[0.5, -1.0, 0.25]])
    p = load_profile("neuromorphic-loihi").replace(rate_code_bits=2)  # 3 spikes at full scale
    sweep = forward_sweep(dataclasses.replace(ideal_circuit(spec, weights), profile=p), x, np.arange(1))
    # x/max|x| = (0.5, −1, 0.25) → rint(·3) = (2, −3, 1): 6 spikes × 2 synapses each; layer 2 input relu(μ_1)
    mu1 = weights[0] @ (np.array([2, -3, 1]) / 3.0) / np.sqrt(3)
    hidden_spikes = np.abs(np.rint(np.maximum(mu1, 0) / np.abs(np.maximum(mu1, 0)).max() * 3)).sum()
    assert sweep.synaptic_events == 6 * 2 + hidden_spikes * 2
    r = simulate(spec, weights, x, profile=p, n_steps=0)
    assert r.counts.synaptic_events == sweep.synaptic_events
    assert r.counts.neuron_updates == (2 + 2) * 3  # value neurons × 2^2 − 1 time steps


def test_continuous_settling_time_is_the_cascade_quantile():
    spec, *_ = _net(depth=2)  # H = 1: two stages, Gamma(2)
    p = load_profile("analog-rram-continuous")
    t = settle_time_s(spec, p) / p.tau_s
    assert gammainc(2, t) == pytest.approx(1 - 2.0 ** -(p.adc_bits + 1), rel=1e-12)
    assert 1 - np.exp(-t) * (1 + t) == pytest.approx(1 - 2.0 ** -(p.adc_bits + 1), rel=1e-12)  # closed form
    assert sweep_time_s(spec, p) == settle_time_s(spec, p)
    clocked = load_profile("analog-rram-clocked")
    assert sweep_time_s(spec, clocked) == pytest.approx(2 * clocked.dt_s)  # one read period per layer
