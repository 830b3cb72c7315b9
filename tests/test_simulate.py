"""The circuit simulator: backends agree with each other and with the torch reference,
integrators converge at their order, results are reproducible, bad input is refused."""

import numpy as np
import pytest
import scipy.linalg
import torch

from models.pcnet import PCNet
from pchw import oracle, theory
from pchw.spec import NetworkSpec, init_weights
from simulators import SimulationError, simulate

ACTS = ("relu", "tanh", "linear")


def _net(act="relu", skip=True, depth=6, width=16, batch=8, seed=0):
    spec = NetworkSpec(input_dim=12, width=width, depth=depth, output_dim=4, act=act, skip=skip)
    weights = init_weights(spec, seed=seed + 2)
    rng = np.random.default_rng(seed)
    return spec, weights, rng.standard_normal((batch, 12)), rng.standard_normal((batch, 4))


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("skip", [True, False])
def test_ideal_circuit_equals_torch_reference_inference(act, skip):
    """dt/τ = β/B: one Euler step of every backend is one step of the batch-mean reference."""
    spec, weights, x, y = _net(act, skip)
    beta, steps = 0.5, 20
    net = PCNet(spec, weights=weights, dtype=torch.float64)
    tx, ty = torch.tensor(x), torch.tensor(y)
    z, _ = net.feedforward(tx)
    expected = net.inference(tx, ty, z, n_steps=steps, activity_lr=beta).numpy()
    assert np.abs(expected - np.stack(oracle.feedforward(spec, weights, x)[0])).max() > 1e-3  # it moved
    for backend in ("numpy", "numba"):
        r = simulate(spec, weights, x, y, profile="ideal", n_steps=steps, dt_s=beta / x.shape[0], tau_s=1.0,
                     backend=backend)
        np.testing.assert_allclose(r.z, expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("free", [True, False])
def test_numba_batched_and_single_equal_numpy(act, method, free):
    spec, weights, x, y = _net(act, batch=5)
    target = None if free else y
    kw = dict(profile="ideal", n_steps=30, method=method, record=("free_energy", "activities"),
              init="zero" if free else "sweep")  # a free output at the sweep would not move
    ref = simulate(spec, weights, x, target, backend="numpy", **kw)
    fast = simulate(spec, weights, x, target, backend="numba", **kw)
    np.testing.assert_allclose(fast.z, ref.z, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(fast.output, ref.output, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(fast.free_energy_trace, ref.free_energy_trace, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(fast.activity_trace, ref.activity_trace, rtol=1e-10, atol=1e-13)
    for b in range(2):  # the single-sample kernel on each sample alone
        one = simulate(spec, weights, x[b : b + 1], None if free else y[b : b + 1], backend="numba", **kw)
        np.testing.assert_allclose(one.z[:, 0], ref.z[:, b], rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(one.free_energy_trace[:, 0], ref.free_energy_trace[:, b], rtol=1e-10)


def test_free_output_settles_to_the_feedforward_pass():
    spec, weights, x, _ = _net("relu", depth=5)
    r = simulate(spec, weights, x, profile="ideal", n_steps=1500, dt_s=0.2, tau_s=1.0, init="zero",
                 record=("free_energy",))
    _, out = oracle.feedforward(spec, weights, x)
    np.testing.assert_allclose(r.output, out, rtol=1e-6, atol=1e-9)
    assert r.max_grad < 1e-8
    trace = r.free_energy_trace.mean(axis=1)
    assert np.all(np.diff(trace[5:]) <= 1e-15)  # gradient flow: energy never rises once settling


def test_clamped_equilibrium_matches_the_closed_form():
    spec = NetworkSpec(input_dim=6, width=8, depth=4, output_dim=3, act="linear")
    weights = init_weights(spec, seed=1)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((4, 6)), rng.standard_normal((4, 3))
    r = simulate(spec, weights, x, y, profile="ideal", n_steps=4000, dt_s=0.2, tau_s=1.0, method="heun")
    assert r.free_energy.mean() == pytest.approx(theory.equilibrated_energy(spec, weights, x, y), rel=1e-8)


def _linear_exact(spec, weights, x, y, z0, t):
    """Exact z(t) of τ dz/dt = −(H_z z + b), τ = 1, for one sample (matrix exponential)."""
    hess = theory.activity_hessian(spec, weights)
    n, hidden = spec.width, spec.n_hidden
    flat0 = z0[:, 0, :].reshape(-1)
    zeros = [np.zeros((1, n)) for _ in range(hidden)]
    b = np.concatenate(oracle.activity_grad(spec, weights, x, y, zeros), axis=1)[0]  # B = 1
    z_star = -np.linalg.solve(hess, b)
    return (z_star + scipy.linalg.expm(-hess * t) @ (flat0 - z_star)).reshape(hidden, 1, n)


@pytest.mark.parametrize("method,order", [("euler", 1), ("heun", 2)])
def test_global_error_shrinks_at_the_integrator_order(method, order):
    spec = NetworkSpec(input_dim=5, width=6, depth=4, output_dim=3, act="linear")
    weights = init_weights(spec, seed=4)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((1, 5)), rng.standard_normal((1, 3))
    z0 = 0.5 * rng.standard_normal((spec.n_hidden, 1, spec.width))
    t_end = 2.0
    exact = _linear_exact(spec, weights, x, y, z0, t_end)
    steps = np.array([20, 40, 80, 160])
    errors = []
    for k in steps:
        r = simulate(spec, weights, x, y, profile="ideal", n_steps=int(k), dt_s=t_end / k, tau_s=1.0,
                     method=method, z0=z0, backend="numba")
        errors.append(np.abs(r.z - exact).max())
    slope = np.polyfit(np.log(t_end / steps), np.log(errors), 1)[0]  # log error vs log dt
    assert slope == pytest.approx(order, abs=0.1), (errors, slope)


def test_same_seed_same_result_and_time_accounting():
    spec, weights, x, y = _net()
    a = simulate(spec, weights, x, y, profile="analog-rram-clocked", n_steps=10, seed=3)
    b = simulate(spec, weights, x, y, profile="analog-rram-clocked", n_steps=10, seed=3)
    assert np.array_equal(a.z, b.z) and a.energy.total_j == b.energy.total_j
    assert a.circuit_time_s == pytest.approx((10 + spec.n_hidden + 1) * 5e-9)  # the sweep: one read per layer
    assert a.energy.total_j > 0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n_steps": -1}, "n_steps=-1"),
        ({"dt_s": 0.0}, "dt_s=0.0 must be"),
        ({"tau_s": float("inf")}, "tau_s=inf"),
        ({"dt_s": 3.0, "tau_s": 1.0}, "dt_s/tau_s=3 is past the stability bound"),
        ({"init": "sweep", "ff_steps": 4}, "ff_steps=4 sets the emulated forward cascade"),
        ({"method": "rk4"}, "method='rk4' is not one of: euler, heun"),
        ({"backend": "jax"}, "backend='jax'"),
        ({"init": "random"}, "init='random'"),
        ({"record": ("spikes",)}, "record='spikes'"),
        ({"profile": "gpu-fp32"}, "digital"),
    ],
)
def test_bad_simulation_requests_are_refused_clearly(kwargs, match):
    spec, weights, x, y = _net()
    args = {"profile": "ideal", "n_steps": 5, **kwargs}
    with pytest.raises((SimulationError, ValueError), match=match):
        simulate(spec, weights, x, y, **args)


def test_wrong_shapes_are_refused():
    spec, weights, x, y = _net()
    with pytest.raises(SimulationError, match=r"x has shape \(8, 11\)"):
        simulate(spec, weights, x[:, :11], profile="ideal", n_steps=1)
    with pytest.raises(SimulationError, match="W_2 has shape"):
        simulate(spec, [weights[0], weights[1][:, :3]] + weights[2:], x, profile="ideal", n_steps=1)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_emulated_forward_cascade_computes_the_feedforward_pass(backend):
    spec, weights, x, _ = _net("relu", depth=7, batch=3)
    _, out = oracle.feedforward(spec, weights, x)
    # h = 1: each step passes the signal one layer on, exact after H + 1 steps
    exact = simulate(spec, weights, x, profile="ideal", n_steps=0, init="cascade", ff_steps=spec.n_hidden + 1, dt_s=1.0,
                     tau_s=1.0, backend=backend)
    np.testing.assert_allclose(exact.output, out, rtol=1e-12, atol=1e-12)
    assert exact.max_grad < 1e-12
    short = simulate(spec, weights, x, profile="ideal", n_steps=0, init="cascade", ff_steps=spec.n_hidden, dt_s=1.0,
                     tau_s=1.0, backend=backend)
    assert np.abs(short.output - out).max() > 1e-3  # one step short: the output has not been reached
    lagged = simulate(spec, weights, x, profile="ideal", n_steps=0, init="cascade", ff_steps=400, dt_s=0.1, tau_s=1.0,
                      backend=backend, record=("free_energy",))
    np.testing.assert_allclose(lagged.output, out, rtol=1e-7, atol=1e-9)
    assert lagged.free_energy_trace.shape == (401, 3)


def test_forward_then_pc_phase_traces_join():
    spec, weights, x, y = _net(batch=2)
    r = simulate(spec, weights, x, y, profile="ideal", init="cascade", ff_steps=5, n_steps=7,
                 record=("free_energy", "activities"))
    assert r.free_energy_trace.shape == (13, 2) and r.activity_trace.shape[0] == 13
    assert r.circuit_time_s == pytest.approx(12 * 0.1)
