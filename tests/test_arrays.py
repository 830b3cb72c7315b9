"""Weights on physical arrays: conductance pairs clamped per device (the bias and spread of the
programmed weight against their closed forms), state-dependent programming and read noise, the
first-order IR drop against an exact nodal solve of the lines, and every backend alike with all on."""

import numpy as np
import pytest
from scipy.linalg import solve_banded

from pchw.profiles import load_profile
from pchw.spec import NetworkSpec, init_weights
from simulators import simulate
from simulators.arrays import _line_factors, ir_drop, program_array, read_variance, to_conductances
from simulators.mvm import analog_mvm_np
from simulators.noise import step_noise

IDEAL = load_profile("ideal")
PCM_PROG = dict(prog_noise_frac=0.2635 / 25, prog_noise_lin=1.9650 / 25, prog_noise_quad=-1.1731 / 25)


def test_pairs_clamped_at_zero_bias_weights_towards_zero_by_the_closed_form():
    """w > 0 on (g⁺ = w/w_max, g⁻ = 0): the unused device keeps max(0, σξ), so the weight error has mean
    −σ/√(2π) and variance σ²(3/2 − 1/(2π)) (units of w_max)."""
    sigma, w_max = 0.03, 2.0
    profile = IDEAL.replace(differential_pairs=1, prog_noise_frac=sigma)
    w = np.full((400, 500), 0.5 * w_max)
    err = (program_array(w, w_max, profile, np.random.default_rng(0)) - w) / w_max
    assert err.mean() == pytest.approx(-sigma / np.sqrt(2 * np.pi), rel=0.02)
    assert err.std() == pytest.approx(sigma * np.sqrt(1.5 - 1 / (2 * np.pi)), rel=0.02)
    # with g_min the unused device sits at its clamp g_min just the same, and a device's swing is 1 − g_min
    lifted = IDEAL.replace(differential_pairs=1, prog_noise_frac=sigma, g_min_frac=0.2)
    err = (program_array(w, w_max, lifted, np.random.default_rng(1)) - w) / w_max
    assert err.mean() == pytest.approx(-sigma / np.sqrt(2 * np.pi) / 0.8, rel=0.02)


def test_state_dependent_programming_noise_follows_the_pcm_polynomial():
    profile = IDEAL.replace(**PCM_PROG)
    rng = np.random.default_rng(2)
    for g in (0.1, 0.5, 0.9):
        w = np.full((300, 300), g)
        err = program_array(w, 1.0, profile, rng) - w
        expected = (0.2635 + 1.9650 * g - 1.1731 * g * g) / 25
        assert err.std() == pytest.approx(expected, rel=0.03)


def test_read_variance_of_pairs_and_states():
    w = np.array([[0.5, -1.0], [0.0, 0.25]])
    s = read_variance(w, 1.0, IDEAL.replace(read_noise_state_exp=0.35, read_noise_frac=0.01))
    np.testing.assert_allclose(s, np.abs(w) ** 0.7 * (w != 0))
    pairs = read_variance(w, 1.0, IDEAL.replace(read_noise_state_exp=0.35, differential_pairs=1, g_min_frac=0.1))
    gp, gn = to_conductances(w, 1.0, 0.1)
    np.testing.assert_allclose(pairs, gp**0.7 + gn**0.7)
    assert read_variance(w, 1.0, IDEAL) is None


def test_state_dependent_read_noise_has_the_configured_output_sigma():
    rng = np.random.default_rng(3)
    w = rng.uniform(-1, 1, (6, 40))
    p = np.tile(rng.uniform(-1, 1, (1, 40)), (6000, 1))
    profile = IDEAL.replace(read_noise_frac=0.05, read_noise_state_exp=0.35)
    var = read_variance(w, 1.0, profile)
    y = analog_mvm_np(w, p, 1.0, step_noise(profile, dt_s=1.0, seed=0), eval_index=0, slot_base=0,
                      samples=np.arange(6000), read_var=var)
    pn = p[0] / np.abs(p[0]).max()
    expected = 0.05 * np.sqrt((pn * pn) @ var.T) * np.abs(p[0]).max()
    np.testing.assert_allclose((y - p @ w.T).std(axis=0), expected, rtol=0.05)


def _exact_line(g: np.ndarray, x: np.ndarray, ratio: float) -> float:
    """The current into the sense amplifier (virtual ground after the last cell) of one line, solved
    exactly: KCL at node j, g_j (x_j − v_j) + (v_{j−1} − v_j)/r − (v_j − v_{j+1})/r = 0, units of g_max."""
    n, gw = len(g), 1.0 / ratio
    ab = np.zeros((3, n))
    ab[1] = g + 2 * gw
    ab[1, 0] = g[0] + gw  # the far end has one neighbour
    ab[0, 1:] = -gw
    ab[2, :-1] = -gw
    v = solve_banded((1, 1), ab, g * x)
    return gw * v[-1]


def test_first_order_ir_drop_matches_an_exact_nodal_solve():
    rng = np.random.default_rng(4)
    n, ratio = 64, 1e-5
    g = rng.uniform(0, 1, n)
    x = rng.uniform(0, 1, n)
    ideal = float(g @ x)
    exact = _exact_line(g, x, ratio)
    first = float((g * _line_factors(g[None, :], ratio)[0]) @ x)
    assert ideal - exact > 1e-3 * ideal  # the drop is visible
    assert abs(first - exact) < 0.02 * (ideal - exact)  # first order: the drop to within its own square


def test_ir_drop_differs_between_forward_and_transposed_reads():
    rng = np.random.default_rng(5)
    w = rng.uniform(-1, 1, (8, 20))
    fwd, back = ir_drop(w, 1.0, IDEAL.replace(wire_r_ohm=2.0, g_max_siemens=5e-6))
    assert np.all(np.abs(fwd) <= np.abs(w) + 1e-15) and np.all(np.abs(back) <= np.abs(w) + 1e-15)
    assert not np.allclose(fwd, back)  # column lines against row lines
    assert np.abs(fwd - w)[:, 0].mean() > np.abs(fwd - w)[:, -1].mean()  # the first input is farthest


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_every_backend_agrees_with_pairs_state_dependent_noise_and_ir_drop(method):
    spec = NetworkSpec(input_dim=10, width=12, depth=5, output_dim=3)
    weights = init_weights(spec, seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3, 10)), rng.standard_normal((3, 3))
    profile = load_profile("analog-rram-clocked").replace(
        differential_pairs=1, g_min_frac=0.05, read_noise_state_exp=0.35, wire_r_ohm=50.0, g_max_siemens=5e-6,
        read_noise_tau_min_s=1e-9, read_noise_tau_max_s=1e-6, **PCM_PROG)
    kw = dict(profile=profile, n_steps=15, method=method, seed=2, update_window=5, record=("free_energy",))
    ref = simulate(spec, weights, x, y, backend="numpy", **kw)
    plain = simulate(spec, weights, x, y, backend="numpy", **{**kw, "profile": load_profile("analog-rram-clocked")})
    assert np.abs(ref.z - plain.z).max() > 1e-3
    for backend in ("numba", "torch"):
        got = simulate(spec, weights, x, y, backend=backend, **kw)
        np.testing.assert_allclose(got.z, ref.z, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got.free_energy_trace, ref.free_energy_trace, rtol=1e-9, atol=1e-12)


def test_tiles_digitise_their_own_partial_sums():
    rng = np.random.default_rng(6)
    w = rng.uniform(-1, 1, (5, 40))
    p = rng.uniform(-1, 1, (3, 40))
    profile = IDEAL.replace(quantize_io=1, out_bound=4.0, dac_bits=4, adc_bits=4)
    noise = step_noise(profile, dt_s=1.0, seed=0)
    kw = dict(eval_index=0, slot_base=0, samples=np.arange(3))
    whole = analog_mvm_np(w, p, 1.0, noise, **kw)
    np.testing.assert_array_equal(analog_mvm_np(w, p, 1.0, noise, tile=40, **kw), whole)  # one tile: the same
    tiled = analog_mvm_np(w, p, 1.0, noise, tile=16, **kw)
    by_hand = sum(analog_mvm_np(w[:, r], p[:, r], 1.0, noise, **kw) for r in (slice(0, 16), slice(16, 32),
                                                                                  slice(32, 40)))
    np.testing.assert_allclose(tiled, by_hand, rtol=1e-12)  # each tile converts on its own scale
    assert not np.allclose(tiled, whole)


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_every_backend_agrees_on_tiled_arrays(method):
    spec = NetworkSpec(input_dim=20, width=12, depth=4, output_dim=3)
    weights = init_weights(spec, seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3, 20)), rng.standard_normal((3, 3))
    profile = load_profile("analog-rram-clocked").replace(max_rows=8, max_cols=5, read_noise_state_exp=0.35,
                                                          read_noise_tau_min_s=1e-9, read_noise_tau_max_s=1e-6)
    kw = dict(profile=profile, n_steps=12, method=method, seed=2, update_window=4, record=("free_energy",))
    ref = simulate(spec, weights, x, y, backend="numpy", **kw)
    untiled = simulate(spec, weights, x, y, backend="numpy", **{**kw, "profile": profile.replace(max_rows=0,
                                                                                                 max_cols=0)})
    assert np.abs(ref.z - untiled.z).max() > 1e-4
    for backend in ("numba", "torch"):
        got = simulate(spec, weights, x, y, backend=backend, **kw)
        np.testing.assert_allclose(got.z, ref.z, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got.free_energy_trace, ref.free_energy_trace, rtol=1e-9, atol=1e-12)
