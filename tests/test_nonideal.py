"""Non-idealities: each has its configured statistical effect, numba == numpy with noise on,
and all of them at zero reproduce the ideal circuit bit for bit; the update window averages the
noise out of the learning signal."""

import numpy as np
import pytest

from pchw import oracle
from pchw.profiles import load_profile
from pchw.spec import NetworkSpec, init_weights
from simulators import SimulationError, simulate
from simulators.circuit import ideal_circuit
from simulators.devices import program_weights, quantize_weights
from simulators.kernels import xbar
from simulators.learning import Learning
from simulators.mvm import analog_mvm_np
from simulators.noise import step_noise
from simulators.reference import gradient

IDEAL = load_profile("ideal")
NOISY = IDEAL.replace(quantize_io=1, out_bound=10.0, read_noise_frac=0.02, out_noise_frac=0.04, leak_tau_s=5.0,
                      ktc_noise_frac=0.01, act_mismatch_frac=0.05, weight_bits=6, prog_noise_frac=0.02)


def _net(batch=4, depth=5, width=12, seed=0):
    spec = NetworkSpec(input_dim=10, width=width, depth=depth, output_dim=3)
    rng = np.random.default_rng(seed)
    return spec, init_weights(spec, seed=seed + 1), rng.standard_normal((batch, 10)), rng.standard_normal((batch, 3))


def _mvm_samples(profile, n_samples=4000, n_in=64, n_out=8, seed=0):
    """Many independent MVMs of the same input through both implementations."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(-1, 1, (n_out, n_in))
    p = np.tile(rng.uniform(-1, 1, (1, n_in)), (n_samples, 1))
    noise = step_noise(profile, dt_s=profile.dt_s, seed=seed)
    samples = np.arange(n_samples)
    ref = analog_mvm_np(w, p, 1.0, noise, eval_index=3, slot_base=4, samples=samples)
    out = np.empty((n_samples, n_out))
    xbar(p, np.ascontiguousarray(w.T), out, True, np.empty_like(p), np.empty(n_samples), 1.0, noise, 3, 4, samples,
         np.zeros((1, 0)), np.zeros((0, 0)), np.empty_like(p), np.empty_like(out), np.empty(n_samples), 0,
         np.empty(0))
    exact = p @ w.T
    return ref, out, exact, p


@pytest.mark.parametrize("field,sigma", [("read_noise_frac", 0.03), ("out_noise_frac", 0.05)])
def test_mvm_noise_has_the_configured_sigma(field, sigma):
    profile = IDEAL.replace(**{field: sigma})
    ref, fast, exact, p = _mvm_samples(profile)
    np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=1e-12)  # numba == numpy, draw for draw
    scale = np.abs(p[0]).max()  # outputs are in units of w_max · max|p|
    per_unit = (fast - exact) / scale
    if field == "read_noise_frac":
        per_unit = per_unit / np.linalg.norm(p[0] / scale)  # read noise grows with ‖p_n‖₂
    measured = per_unit.std(axis=0)
    assert np.all(np.abs(measured / sigma - 1) < 0.05), measured
    assert np.abs(per_unit.mean(axis=0)).max() < 4 * sigma / np.sqrt(len(p))


def test_output_bound_and_converters():
    profile = IDEAL.replace(quantize_io=1, out_bound=2.0, dac_bits=4, adc_bits=5)
    ref, fast, exact, p = _mvm_samples(profile, n_samples=8)
    np.testing.assert_array_equal(fast, ref)
    scale = np.abs(p[0]).max()
    assert np.abs(fast).max() <= 2.0 * scale + 1e-12  # saturation holds the bound
    levels = np.unique(np.round(fast / scale / 2.0 * 15, 9))
    assert np.allclose(levels, np.round(levels))  # ADC: 2^(5−1) − 1 = 15 levels a side
    assert np.abs(np.clip(exact, -2 * scale, 2 * scale) - fast).max() <= 2 * scale * (1 / 15 + 64 / 7 / 2)


@pytest.mark.parametrize("bits", [1, 2, 3, 5])
def test_quantised_weights_take_at_most_2_to_the_bits_levels(bits):
    spec, weights, *_ = _net(width=40)
    programmed, w_max = program_weights(weights, IDEAL.replace(weight_bits=bits), seed=0)
    for w, top in zip(programmed, w_max):
        assert len(np.unique(w)) <= 2**bits
        assert np.abs(w).max() <= top + 1e-12
    fine = quantize_weights(weights[1], np.abs(weights[1]).max(), 12)
    assert np.abs(fine - weights[1]).max() <= np.abs(weights[1]).max() / (2**11 - 1) / 2 + 1e-12


def test_programming_noise_clipping_and_drift_laws():
    spec, weights, *_ = _net(width=64)
    programmed, w_max = program_weights(weights, IDEAL.replace(prog_noise_frac=0.03), seed=1)
    diff = (programmed[1] - weights[1]) / w_max[1]
    assert abs(diff.std() / 0.03 - 1) < 0.05
    clipped, top = program_weights(weights, IDEAL.replace(weight_clip_std=1.5), seed=0)
    assert top[1] == pytest.approx(1.5 * np.std(weights[1])) and np.abs(clipped[1]).max() <= top[1] + 1e-12
    day = IDEAL.replace(drift_nu=0.05, drift_t0_s=20.0, deploy_time_s=86400.0)
    drifted, _ = program_weights(weights, day, seed=0)
    ratio = drifted[2] / weights[2]
    assert ratio == pytest.approx(np.full_like(ratio, (86400 / 20) ** -0.05))
    assert ratio.flat[0] == pytest.approx(0.66, abs=0.01)  # ≈ −34% after one day (REFERENCES.md)


def _frozen_dynamics(profile, n_steps, batch=400):
    """Zero network, huge τ: the PC dynamics barely move, what remains is the integrator."""
    spec, weights, x, _ = _net(batch=batch)
    weights = [np.zeros_like(w) for w in weights]
    z0 = np.ones((spec.n_hidden, batch, spec.width))
    return simulate(spec, weights, np.zeros_like(x), profile=profile, n_steps=n_steps, z0=z0, dt_s=1e-3,
                    tau_s=1e9, record=("activities",))


def test_leak_decays_with_the_configured_time_constant():
    r = _frozen_dynamics(IDEAL.replace(leak_tau_s=0.05), n_steps=100)
    # 100 steps of 1 ms with τ_leak = 50 ms: e^−2
    assert r.z.mean() == pytest.approx(np.exp(-2.0), rel=1e-6)
    trace = r.activity_trace[:, 0, 0, 0]
    assert np.allclose(np.diff(np.log(trace)), -1e-3 / 0.05, rtol=1e-5)


def test_ktc_noise_accumulates_as_a_random_walk():
    sigma = 0.01
    r = _frozen_dynamics(IDEAL.replace(ktc_noise_frac=sigma / 2, z_full_scale=2.0), n_steps=25)
    spread = (r.z - 1.0).std()
    assert spread == pytest.approx(sigma * np.sqrt(25), rel=0.05)


@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("free", [True, False])
def test_numba_equals_numpy_with_every_noise_on(method, free):
    spec, weights, x, y = _net()
    kw = dict(profile=NOISY, n_steps=25, init="cascade", ff_steps=5, method=method, seed=7, record=("free_energy",))
    target = None if free else y
    ref = simulate(spec, weights, x, target, backend="numpy", **kw)
    fast = simulate(spec, weights, x, target, backend="numba", **kw)
    np.testing.assert_allclose(fast.z, ref.z, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fast.free_energy_trace, ref.free_energy_trace, rtol=1e-9, atol=1e-12)
    ideal = simulate(spec, weights, x, target, profile=IDEAL, n_steps=25, init="cascade", ff_steps=5, method=method)
    assert np.abs(fast.z - ideal.z).max() > 1e-3  # the noise did something


def test_seeds_and_sample_offsets_decide_the_noise():
    spec, weights, x, y = _net(batch=6)
    a = simulate(spec, weights, x, y, profile=NOISY, n_steps=10, seed=1)
    b = simulate(spec, weights, x, y, profile=NOISY, n_steps=10, seed=1)
    c = simulate(spec, weights, x, y, profile=NOISY, n_steps=10, seed=2)
    assert np.array_equal(a.z, b.z) and not np.array_equal(a.z, c.z)
    # a chunk of samples 3..5 with its offset draws the same noise as inside the full batch
    part = simulate(spec, weights, x[3:], y[3:], profile=NOISY, n_steps=10, seed=1, sample_offset=3)
    np.testing.assert_allclose(part.z, a.z[:, 3:], rtol=1e-12, atol=1e-14)


def test_every_nonideality_at_zero_is_the_ideal_circuit_bit_for_bit():
    spec, weights, x, y = _net()
    rram = load_profile("analog-rram-clocked")
    off = rram.replace(quantize_io=0, out_bound=0.0, out_noise_frac=0.0, read_noise_frac=0.0, prog_noise_frac=0.0)
    assert off.is_ideal_circuit and not rram.is_ideal_circuit
    for backend in ("numpy", "numba"):
        a = simulate(spec, weights, x, y, profile=off, n_steps=30, backend=backend, seed=5)
        b = simulate(spec, weights, x, y, profile=IDEAL, n_steps=30, dt_s=off.dt_s, tau_s=off.tau_s, backend=backend)
        assert np.array_equal(a.z, b.z)


def test_activation_mismatch_gains():
    from simulators.devices import activation_gains

    spec = NetworkSpec(input_dim=3, width=500, depth=4, output_dim=2)
    gains = activation_gains(spec, IDEAL.replace(act_mismatch_frac=0.1), seed=0)
    assert gains.shape == (3, 500) and abs(gains.std() / 0.1 - 1) < 0.05 and abs(gains.mean() - 1) < 0.01


@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("free", [True, False])
def test_single_sample_kernel_with_noise_equals_numpy(method, free):
    spec, weights, x, y = _net(batch=3)
    kw = dict(profile=NOISY, n_steps=20, init="cascade", ff_steps=4, method=method, seed=3, record=("free_energy",))
    ref = simulate(spec, weights, x, None if free else y, backend="numpy", **kw)
    for b in range(3):
        one = simulate(spec, weights, x[b : b + 1], None if free else y[b : b + 1], backend="numba",
                       sample_offset=b, **kw)
        np.testing.assert_allclose(one.z[:, 0], ref.z[:, b], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(one.free_energy_trace[:, 0], ref.free_energy_trace[:, b], rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------ update window
@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("free", [True, False])
@pytest.mark.parametrize("batch", [1, 4])
def test_update_window_numba_equals_numpy_with_noise_on(method, free, batch):
    spec, weights, x, y = _net(batch=batch)
    kw = dict(profile=NOISY, n_steps=20, init="cascade", ff_steps=5, method=method, seed=7, update_window=8)
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
    r = simulate(spec, weights, x, y, profile="ideal", n_steps=n_steps, init="cascade", ff_steps=ff,
                 update_window=window, record=("activities",), backend=backend)
    states = r.activity_trace[ff + n_steps - window: ff + n_steps]  # the states each window step starts from
    cw = ideal_circuit(spec, weights)
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
    kw = dict(profile=profile, dt_s=1e-12, tau_s=1.0, seed=3, init="feedforward")
    exact = simulate(spec, weights, x, y, profile="ideal", n_steps=1, dt_s=1e-12, tau_s=1.0, update_window=1,
                     init="feedforward")
    spreads = {}
    for window in (1, 16):
        r = simulate(spec, weights, x, y, n_steps=window, update_window=window, **kw)
        spreads[window] = np.std(r.mean_errors[2] - exact.mean_errors[2])
    assert spreads[1] > 1e-3
    assert spreads[1] / spreads[16] == pytest.approx(4.0, rel=0.08)


def test_update_window_accumulators_are_counted():
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
    (dict(update_window=2, backend="brian2"), "update_window needs a backend that accumulates it"),
])
def test_bad_update_windows_are_refused(kwargs, match):
    spec, weights, x, y = _net()
    with pytest.raises(SimulationError, match=match):
        simulate(spec, weights, x, y, n_steps=10, **kwargs)


# ------------------------------------------------------------------ learning in place
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_exact_device_learning_is_gradient_descent_on_the_free_energy(backend):
    """With dw_min = 0 the update is ΔW_ℓ = −η_ℓ ∇_{W_ℓ} F̄ at the final state (the oracle's gradient)."""
    spec, weights, x, y = _net(batch=5)
    w_max = np.full(spec.depth, 50.0)  # far from the bounds
    lr = [0.1, 0.2, 0.3, 0.4, 0.5]
    r = simulate(spec, weights, x, y, profile="ideal", n_steps=12, w_max=w_max, learn=Learning(lr=tuple(lr)),
                 backend=backend)
    grads = oracle.weight_grad(spec, weights, x, y, list(r.z))
    for w, new, g, eta in zip(weights, r.weights, grads, lr, strict=True):
        np.testing.assert_allclose(new - w, -eta * g, rtol=1e-9, atol=1e-15)
    cells = sum(o * i for o, i in spec.weight_shapes())
    assert r.counts.write_pulses == r.write_pulses == 5 * cells  # one programming event per cell and sample
    inference = simulate(spec, weights, x, y, profile="ideal", n_steps=12, backend=backend).counts
    drives = r.counts.dac_conversions[IDEAL.dac_bits] - inference.dac_conversions.get(IDEAL.dac_bits, 0.0)
    assert drives == 5 * sum(o + i for o, i in spec.weight_shapes())  # every row and column, every sample
    assert all(w0 is not w1 for w0, w1 in zip(weights, r.weights))  # the inputs are left alone


def test_learning_with_an_update_window_uses_the_window_means():
    spec, weights, x, y = _net(batch=3)
    kw = dict(profile=NOISY.replace(prog_noise_frac=0.0, weight_bits=0), n_steps=16, update_window=6, seed=2,
              w_max=np.full(spec.depth, 40.0))
    r = simulate(spec, weights, x, y, learn=Learning(lr=0.05), **kw)
    a = spec.scalings()
    pre = [x] + r.mean_activations
    for l, (w, new) in enumerate(zip(weights, r.weights, strict=True)):
        np.testing.assert_allclose(new - w, 0.05 * a[l] / 3 * r.mean_errors[l].T @ pre[l], rtol=1e-9, atol=1e-15)


def test_pulsed_learning_counts_its_pulses():
    spec, weights, x, y = _net(batch=4)
    device = IDEAL.replace(dw_min_frac=0.01, up_down_asym=0.2, soft_bounds=1, c2c_frac=0.3, d2d_frac=0.2)
    w_max = np.array([2 * np.abs(w).max() for w in weights])
    r = simulate(spec, weights, x, y, profile=device, n_steps=10, w_max=w_max, learn=Learning(lr=0.5), seed=1)
    again = simulate(spec, weights, x, y, profile=device, n_steps=10, w_max=w_max, learn=Learning(lr=0.5), seed=1)
    other = simulate(spec, weights, x, y, profile=device, n_steps=10, w_max=w_max, seed=1,
                     learn=Learning(lr=0.5, update_index=1))
    assert r.write_pulses > 0 and r.counts.write_pulses == r.write_pulses
    assert all(np.array_equal(p, q) for p, q in zip(r.weights, again.weights))
    assert not all(np.array_equal(p, q) for p, q in zip(r.weights, other.weights))  # fresh pulse draws
    assert np.abs(r.weights[-1] - weights[-1]).max() > 0  # the output crossbar, whose errors are largest, moved


def test_reference_conductances_offset_the_read():
    spec, weights, x, y = _net(batch=3)
    ref = np.linspace(0.01, 0.05, spec.depth)
    states = [w + r for w, r in zip(weights, ref)]
    w_max = np.full(spec.depth, 10.0)
    shifted = simulate(spec, states, x, y, profile="analog-rram-clocked", n_steps=8, w_max=w_max, reference=ref)
    plain = simulate(spec, [g - r for g, r in zip(states, ref)], x, y, profile="analog-rram-clocked", n_steps=8,
                     w_max=w_max + ref)
    np.testing.assert_array_equal(shifted.z, plain.z)
    assert shifted.counts.cell_reads == 2 * plain.counts.cell_reads  # the reference array is read too


@pytest.mark.parametrize("kwargs,match", [
    (dict(learn=Learning(lr=0.1)), "learn needs targets y .* and w_max"),
    (dict(learn=Learning(lr=None), w_max=np.ones(5)), "lr=None must be one finite rate"),
    (dict(learn=Learning(lr=(0.1, 0.2)), w_max=np.ones(5)), "must be one finite rate >= 0 or 5 of them"),
    (dict(learn=Learning(lr=-1.0), w_max=np.ones(5)), "lr=-1.0"),
    (dict(reference=np.zeros(5)), "reference needs w_max"),
    (dict(reference=np.zeros(3), w_max=np.ones(5)), "reference must hold 5 finite conductances"),
    (dict(w_max=np.ones(3)), "w_max must hold 5 finite full scales > 0"),
    (dict(w_max=2.0), "w_max must hold 5"),
    (dict(w_max=np.zeros(5)), "w_max must hold 5"),
    (dict(learn=Learning(lr=np.ones((5, 1))), w_max=np.ones(5)), "must be one finite rate >= 0 or 5 of them"),
    (dict(learn=Learning(lr="x"), w_max=np.ones(5)), "lr='x'"),
    (dict(learn=Learning(lr=0.1, update_index=1.5), w_max=np.ones(5)), "update_index=1.5 must be an integer >= 0"),
    (dict(learn=Learning(lr=0.1), w_max=np.ones(5), spiking=object()), "learning with spiking errors"),
    (dict(reference=np.ones(5), w_max=np.ones(5), profile="neuromorphic-loihi"), "not on a neuromorphic profile"),
])
def test_bad_learning_requests_are_refused(kwargs, match):
    spec, weights, x, y = _net()
    with pytest.raises(SimulationError, match=match):
        simulate(spec, weights, x, y, n_steps=4, **kwargs)
    if kwargs.get("learn"):
        with pytest.raises(SimulationError, match="learn needs targets y"):
            simulate(spec, weights, x, None, n_steps=4, **kwargs)
