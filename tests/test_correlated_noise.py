"""Temporally correlated read noise: 1/f noise as a sum of Ornstein–Uhlenbeck processes and the aggregate
of telegraph noise. Its statistics match the closed forms (stationary variance, the variance of a W-step
mean, the 1/f slope), every backend draws the same numbers, and switched off it changes nothing."""

import numpy as np
import pytest
from scipy.signal import welch

from pchw.profiles import ProfileError, load_profile
from pchw.spec import NetworkSpec, init_weights
from simulators import Learning, simulate
from simulators.noise import corr_advance, corr_advance_np, corr_start_np, correlated_processes, step_noise

IDEAL = load_profile("ideal")
BAND = IDEAL.replace(read_noise_frac=0.05, read_noise_tau_min_s=1e-9, read_noise_tau_max_s=1e-5, rtn_frac=0.02,
                     rtn_tau_s=3e-8, out_noise_frac=0.02, quantize_io=1, out_bound=10.0, dt_s=1e-8, tau_s=1e-7)


def _net(batch=4, depth=5, width=12, seed=0):
    spec = NetworkSpec(input_dim=10, width=width, depth=depth, output_dim=3)
    rng = np.random.default_rng(seed)
    return spec, init_weights(spec, seed=seed + 1), rng.standard_normal((batch, 10)), rng.standard_normal((batch, 3))


def test_processes_span_the_band_with_equal_variance():
    taus, gains = correlated_processes(BAND)
    assert len(taus) == 4 + 1  # one per decade of 1e-9..1e-5, and the telegraph noise
    np.testing.assert_allclose(taus[:4], np.geomspace(1e-9, 1e-5, 4))
    assert np.sum(gains[:4] ** 2) == pytest.approx(0.05**2, rel=1e-12) and gains[4] == 0.02
    noise = step_noise(BAND, dt_s=1e-8, seed=0)
    assert noise.read_sigma == 0.0 and noise.correlated  # all of the read noise is in the processes
    np.testing.assert_allclose(noise.corr_rho, np.exp(-1e-8 / taus))


@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("free", [True, False])
def test_every_backend_draws_the_same_correlated_noise(method, free):
    spec, weights, x, y = _net(batch=3)
    target = None if free else y
    kw = dict(profile=BAND, n_steps=25, method=method, seed=4, record=("free_energy",),
              init="zero" if free else "sweep", update_window=0 if free else 10)
    ref = simulate(spec, weights, x, target, backend="numpy", **kw)
    white = simulate(spec, weights, x, target, backend="numpy",
                     **{**kw, "profile": BAND.replace(read_noise_tau_min_s=0.0, read_noise_tau_max_s=0.0)})
    assert np.abs(ref.z - white.z).max() > 1e-4  # correlation changed the trajectory
    for backend in ("numba", "torch"):
        got = simulate(spec, weights, x, target, backend=backend, **kw)
        np.testing.assert_allclose(got.z, ref.z, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got.free_energy_trace, ref.free_energy_trace, rtol=1e-9, atol=1e-12)
        if not free:
            for a, b in zip(got.mean_errors, ref.mean_errors):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    one = simulate(spec, weights, x[:1], None if free else y[:1], backend="numba", **{**kw, "update_window": 0})
    alone = simulate(spec, weights, x[:1], None if free else y[:1], backend="numpy", **{**kw, "update_window": 0})
    np.testing.assert_allclose(one.z, alone.z, rtol=1e-9, atol=1e-12)  # B = 1 takes the batched kernel


def test_processes_are_stationary_with_the_configured_variance():
    noise = step_noise(BAND, dt_s=1e-8, seed=1)
    samples = np.arange(4000)
    state, total = corr_start_np(noise, (2, 4000, 8), samples)
    for step in range(30):
        corr_advance_np(state, total, noise, step, samples)
    expected = np.sum(noise.corr_gain**2)
    assert np.var(total) == pytest.approx(expected, rel=0.03)
    assert abs(np.mean(total)) < 4 * np.sqrt(expected / total.size)
    fast_state, fast_total = corr_start_np(noise, (2, 4000, 8), samples)
    for step in range(30):
        corr_advance(fast_state, fast_total, noise, step, samples)
    np.testing.assert_array_equal(fast_total, total)  # the numba twin, draw for draw


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_variance_of_a_window_mean_follows_the_ou_closed_form(rho):
    """States held still: the W-step mean of one OU process's reads has variance
    σ²/W² · [W + 2 Σ_{k=1}^{W−1} (W − k) ρ^k]."""
    spec, weights, x, y = _net(batch=600, width=16)
    dt = 1e-9
    tau_c = dt / -np.log(rho) if rho > 0 else 1e-30
    profile = IDEAL.replace(read_noise_frac=0.05, dt_s=dt)
    if rho > 0:
        profile = profile.replace(read_noise_tau_min_s=tau_c, read_noise_tau_max_s=tau_c)
    kw = dict(dt_s=dt, tau_s=1e6, seed=3, init="feedforward")  # dt/τ = 1e-15: the states do not move
    exact = simulate(spec, weights, x, y, profile="ideal", n_steps=1, update_window=1, **kw).mean_errors[2]
    spread = {w: np.std(simulate(spec, weights, x, y, profile=profile, n_steps=w, update_window=w, **kw)
                        .mean_errors[2] - exact) for w in (1, 12)}
    w = 12
    ratio = (w + 2 * sum((w - k) * rho**k for k in range(1, w))) / w**2
    assert spread[12] / spread[1] == pytest.approx(np.sqrt(ratio), rel=0.08)


def test_a_sum_over_the_band_has_a_one_over_f_spectrum():
    profile = IDEAL.replace(read_noise_frac=1.0, read_noise_tau_min_s=1e-8, read_noise_tau_max_s=1e-2,
                            read_noise_processes=12)
    noise = step_noise(profile, dt_s=1e-9, seed=2)
    samples = np.arange(64)
    state, total = corr_start_np(noise, (1, 64, 1), samples)
    series = np.empty((2**15, 64))
    for step in range(series.shape[0]):
        corr_advance(state, total, noise, step, samples)
        series[step] = total[0, :, 0]
    f, psd = welch(series, fs=1e9, axis=0, nperseg=4096)
    psd = psd.mean(axis=1)
    band = (f > 2e5) & (f < 2e7)  # well inside the corners 1/(2π·1e-2 s) and 1/(2π·1e-8 s)
    slope = np.polyfit(np.log(f[band]), np.log(psd[band]), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.15)


def test_learning_on_correlated_noise_is_reproducible_and_costs_nothing_more():
    spec, weights, x, y = _net()
    w_max = np.array([2 * np.abs(w).max() for w in weights])
    kw = dict(profile=BAND, n_steps=12, update_window=6, w_max=w_max, seed=2, learn=Learning(lr=0.1))
    a = simulate(spec, weights, x, y, **kw)
    b = simulate(spec, weights, x, y, **kw)
    assert all(np.array_equal(p, q) for p, q in zip(a.weights, b.weights))
    white = simulate(spec, weights, x, y, **{**kw, "profile": BAND.replace(read_noise_tau_min_s=0.0,
                                                                            read_noise_tau_max_s=0.0)})
    assert a.counts == white.counts  # correlation is physics of the read, not extra events


@pytest.mark.parametrize("changes,match", [
    (dict(read_noise_tau_min_s=1e-9), "must be both 0"),
    (dict(read_noise_tau_min_s=1e-6, read_noise_tau_max_s=1e-9), "0 < min <= max"),
    (dict(rtn_frac=0.01), "rtn_frac=0.01 and rtn_tau_s=0.0"),
    (dict(read_noise_processes=1.5), "read_noise_processes=1.5"),
])
def test_bad_noise_bands_are_refused(changes, match):
    with pytest.raises(ProfileError, match=match):
        IDEAL.replace(**changes)
