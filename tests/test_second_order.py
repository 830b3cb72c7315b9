"""pchw.second_order: the activity Fisher, block-tridiagonal solves, the trust-region step and exact equilibria."""

import numpy as np
import pytest

from pchw import oracle, second_order, theory
from pchw.second_order import dense_block_tridiagonal as dense
from pchw.spec import NetworkSpec, init_weights


def _net(act, skip, *, depth=5, scale=1.0, batch=7, seed=1):
    spec = NetworkSpec(input_dim=5, width=6, depth=depth, output_dim=3, act=act, param="sp", skip=skip)
    weights = [scale * w for w in init_weights(spec, seed=seed)]
    rng = np.random.default_rng(seed + 10)
    return spec, weights, rng.standard_normal((batch, 5)), rng.standard_normal((batch, 3))


@pytest.mark.parametrize("shared", [True, False])
def test_block_tridiagonal_solve_matches_a_dense_solve(shared):
    rng = np.random.default_rng(0)
    h, s, n, batch = 6, 1 if shared else 4, 3, 4
    low = rng.standard_normal((h, s, n, n))
    diag = np.eye(n) * 4 + low @ np.swapaxes(low, -1, -2)
    upper = rng.standard_normal((h - 1, s, n, n))
    rhs = rng.standard_normal((h, batch, n))
    x = second_order.solve_block_tridiagonal(diag, upper, rhs)
    for b in range(batch):
        expect = np.linalg.solve(dense(diag, upper, 0 if shared else b), rhs[:, b].ravel())
        np.testing.assert_allclose(x[:, b].ravel(), expect, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("skip", [True, False])
def test_linear_fisher_is_the_activity_hessian(skip):
    spec, w, x, _ = _net("linear", skip)
    diag, upper = second_order.fisher_blocks(spec, w, oracle.feedforward(spec, w, x)[0])
    assert diag.shape[1] == 1  # one matrix for every sample
    np.testing.assert_allclose(dense(diag, upper, 0), theory.activity_hessian(spec, w), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize("skip", [True, False])
def test_fisher_is_the_gauss_newton_matrix_of_each_samples_residuals(act, skip):
    spec, w, x, y = _net(act, skip, batch=3)
    zs = [np.random.default_rng(l).standard_normal((3, spec.width)) for l in range(spec.n_hidden)]
    diag, upper = second_order.fisher_blocks(spec, w, zs)
    n, h = spec.width, spec.n_hidden
    for b in range(3):
        def residuals(v, b=b):
            parts = [v[None, l * n:(l + 1) * n] for l in range(h)]
            return np.concatenate([e.ravel() for e in oracle.errors(spec, w, x[b:b + 1], y[b:b + 1], parts)])

        flat = np.concatenate([z[b] for z in zs])
        jac = np.stack([(residuals(flat + 1e-6 * e) - residuals(flat - 1e-6 * e)) / 2e-6 for e in np.eye(h * n)], 1)
        np.testing.assert_allclose(dense(diag, upper, b), jac.T @ jac, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("skip", [True, False])
def test_linear_equilibrium_is_one_newton_step_and_the_trust_region_solution(skip):
    spec, w, x, y = _net("linear", skip, scale=2.0)
    eq = second_order.equilibrium(spec, w, x, y)
    assert eq.iterations == 1 and eq.converged and eq.residual < 1e-13 * eq.start_residual
    zs, _ = oracle.feedforward(spec, w, x)
    g = np.concatenate(oracle.activity_grad(spec, w, x, y, zs), axis=1) * x.shape[0]
    exact = np.concatenate(zs, axis=1) - np.linalg.solve(theory.activity_hessian(spec, w), g.T).T
    np.testing.assert_allclose(np.concatenate(eq.zs, axis=1), exact, rtol=1e-11, atol=1e-12)
    z_hat, step = second_order.trust_region_step(spec, w, x, y)
    np.testing.assert_allclose(np.concatenate([a + b for a, b in zip(z_hat, step)], axis=1), exact, atol=1e-12)
    assert eq.free_energy == pytest.approx(theory.equilibrated_energy(spec, w, x, y), rel=1e-12)


@pytest.mark.parametrize("skip", [True, False])
def test_tanh_equilibrium_is_where_long_gradient_descent_inference_ends(skip):
    spec, w, x, y = _net("tanh", skip, scale=2.0)
    eq = second_order.equilibrium(spec, w, x, y)
    assert eq.converged and eq.residual < 1e-10 * eq.start_residual
    zs, _ = oracle.feedforward(spec, w, x)
    diag, _ = second_order.fisher_blocks(spec, w, zs)
    beta = 0.3 * x.shape[0] / np.linalg.eigvalsh(diag).max()
    zs = oracle.inference(spec, w, x, y, zs, n_steps=20000, activity_lr=beta)
    np.testing.assert_allclose(np.concatenate(zs, 1), np.concatenate(eq.zs, 1), atol=1e-6)
    # and a warm start from elsewhere lands on the same point
    warm = second_order.equilibrium(spec, w, x, y, start=[z + 0.01 for z in eq.zs])
    np.testing.assert_allclose(np.concatenate(warm.zs, 1), np.concatenate(eq.zs, 1), atol=1e-10)


def test_relu_equilibrium_is_stationary_with_units_held_on_their_kink():
    spec, w, x, y = _net("relu", False, scale=2.0)
    eq = second_order.equilibrium(spec, w, x, y)
    assert eq.converged and eq.residual < 1e-13 * eq.start_residual
    z = np.stack(eq.zs)
    on_kink = z == 0.0
    assert on_kink.any()  # minima on kinks are common: a unit whose one-sided derivatives straddle 0
    left, right = second_order._one_sided(spec, w, x, y, eq.zs)
    assert np.all(left[on_kink] <= 1e-15) and np.all(right[on_kink] >= -1e-15)
    grad = np.stack(oracle.activity_grad(spec, w, x, y, eq.zs))
    assert np.abs(grad[~on_kink]).max() < 1e-14
    # plain gradient-descent inference chatters around the kinks but ends next to it, never below it
    zs, _ = oracle.feedforward(spec, w, x)
    for beta in (0.1, 0.01, 0.001):
        zs = oracle.inference(spec, w, x, y, zs, n_steps=4000, activity_lr=beta)
    assert oracle.free_energy(spec, w, x, y, zs) == pytest.approx(eq.free_energy, rel=1e-4)
    assert oracle.free_energy(spec, w, x, y, zs) >= eq.free_energy - 1e-12
    np.testing.assert_allclose(np.concatenate(zs, 1), np.concatenate(eq.zs, 1), atol=2e-2)


def test_equilibrated_weight_grad_is_the_gradient_of_the_closed_form_energy():
    spec, w, x, y = _net("linear", False, depth=4)
    grads, eq = second_order.equilibrated_weight_grad(spec, w, x, y)
    for layer, (i, j) in ((0, (1, 2)), (2, (0, 3)), (3, (1, 1))):
        wp, wm = [v.copy() for v in w], [v.copy() for v in w]
        wp[layer][i, j] += 1e-6
        wm[layer][i, j] -= 1e-6
        fd = (theory.equilibrated_energy(spec, wp, x, y) - theory.equilibrated_energy(spec, wm, x, y)) / 2e-6
        assert grads[layer][i, j] == pytest.approx(fd, rel=1e-6, abs=1e-10)
