"""The update window: errors and activations averaged over the last W steps of the PC phase."""

import numpy as np
import pytest

from pchw import oracle
from pchw.profiles import load_profile
from pchw.spec import NetworkSpec, init_weights
from simulators import SimulationError, simulate
from simulators.reference import CircuitWeights, gradient

IDEAL = load_profile("ideal")
NOISY = IDEAL.replace(quantize_io=1, out_bound=10.0, read_noise_frac=0.02, out_noise_frac=0.04, leak_tau_s=5.0,
                      ktc_noise_frac=0.01, act_mismatch_frac=0.05, weight_bits=6, prog_noise_frac=0.02)


def _net(batch=4, depth=5, width=12, seed=0):
    spec = NetworkSpec(input_dim=10, width=width, depth=depth, output_dim=3)
    rng = np.random.default_rng(seed)
    return spec, init_weights(spec, seed=seed + 1), rng.standard_normal((batch, 10)), rng.standard_normal((batch, 3))


@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("free", [True, False])
@pytest.mark.parametrize("batch", [1, 4])
def test_numba_equals_numpy_with_noise_on(method, free, batch):
    spec, weights, x, y = _net(batch=batch)
    kw = dict(profile=NOISY, n_steps=20, ff_steps=5, method=method, seed=7, update_window=8)
    target = None if free else y
    ref = simulate(spec, weights, x, target, backend="numpy", **kw)
    fast = simulate(spec, weights, x, target, backend="numba", **kw)
    for a, b in zip(fast.mean_errors + fast.mean_activations, ref.mean_errors + ref.mean_activations, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fast.z, ref.z, rtol=1e-9, atol=1e-12)
    plain = simulate(spec, weights, x, target, backend="numba", **(kw | {"update_window": 0}))
    np.testing.assert_allclose(plain.z, fast.z, rtol=1e-12, atol=1e-15)  # accumulating leaves the dynamics alone
    assert plain.mean_errors is None and plain.mean_activations is None


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_window_means_are_the_means_over_the_recorded_states(backend):
    spec, weights, x, y = _net(batch=3)
    n_steps, window, ff = 15, 6, 4
    r = simulate(spec, weights, x, y, profile="ideal", n_steps=n_steps, ff_steps=ff, update_window=window,
                 record=("activities",), backend=backend)
    states = r.activity_trace[ff + n_steps - window: ff + n_steps]  # the states each window step starts from
    cw = CircuitWeights(spec, weights)
    mu1 = weights[0] @ x.T
    eps_sum = [0.0] * spec.depth
    for z in states:
        _, _, _, eps, eps_out = gradient(cw, cw.a_in * mu1.T, y, z, np.zeros_like(y), False)
        for l, e in enumerate([*eps, eps_out]):
            eps_sum[l] = eps_sum[l] + e / window
    for got, want in zip(r.mean_errors, eps_sum, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)
    for l, got in enumerate(r.mean_activations):
        np.testing.assert_allclose(got, oracle.phi(spec.act, states[:, l]).mean(axis=0), rtol=1e-10, atol=1e-13)


def test_averaging_shrinks_the_noise_as_one_over_root_w():
    """States held still (dt/τ tiny): the window mean of W independent noisy reads has σ/√W."""
    spec, weights, x, y = _net(batch=400, width=16)
    profile = IDEAL.replace(out_noise_frac=0.05)
    kw = dict(profile=profile, dt_s=1e-12, tau_s=1.0, seed=3)
    exact = simulate(spec, weights, x, y, profile="ideal", n_steps=1, dt_s=1e-12, tau_s=1.0, update_window=1)
    spreads = {}
    for window in (1, 16):
        r = simulate(spec, weights, x, y, n_steps=window, update_window=window, **kw)
        spreads[window] = np.std(r.mean_errors[2] - exact.mean_errors[2])
    assert spreads[1] > 1e-3
    assert spreads[1] / spreads[16] == pytest.approx(4.0, rel=0.08)


def test_accumulators_are_counted():
    spec, weights, x, y = _net(batch=2)
    profile = load_profile("analog-rram-clocked")
    base = simulate(spec, weights, x, y, profile=profile, n_steps=10)
    windowed = simulate(spec, weights, x, y, profile=profile, n_steps=10, update_window=4)
    accumulators = 2 * spec.n_hidden * spec.width + spec.output_dim
    assert windowed.counts.neuron_updates - base.counts.neuron_updates == 2 * 4 * accumulators
    extra_j = windowed.energy.components_j["neuron"] - base.energy.components_j["neuron"]
    assert extra_j == pytest.approx(2 * 4 * accumulators * profile.e_neuron_update_j, rel=1e-12)


@pytest.mark.parametrize("kwargs,match", [
    (dict(update_window=11), "update_window=11 must be an integer in 0..n_steps"),
    (dict(update_window=-1), "update_window=-1"),
    (dict(update_window=True), "update_window=True"),
    (dict(update_window=2, backend="brian2"), "update_window needs backend numba or numpy"),
])
def test_bad_windows_are_refused(kwargs, match):
    spec, weights, x, y = _net()
    with pytest.raises(SimulationError, match=match):
        simulate(spec, weights, x, y, n_steps=10, **kwargs)
