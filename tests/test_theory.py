"""Closed forms for linear networks, and the depth behaviour of μPC vs SP."""

import numpy as np
import pytest

from pchw import oracle, theory
from pchw.spec import NetworkSpec, SpecError, init_weights


def _linear(depth, skip, param, width=5, seed=0):
    spec = NetworkSpec(input_dim=4, width=width, depth=depth, output_dim=3, act="linear", skip=skip, param=param)
    weights = init_weights(spec, seed=seed)
    rng = np.random.default_rng(seed + 10)
    return spec, weights, rng.standard_normal((6, 4)), rng.standard_normal((6, 3))


def _equilibrium(spec, weights, x, y):
    """Exact minimiser of F over the activities (a linear system), then polished by inference."""
    h, n = spec.n_hidden, spec.width
    hess = theory.activity_hessian(spec, weights)
    zs0 = [np.zeros((x.shape[0], n)) for _ in range(h)]
    g0 = np.concatenate(oracle.activity_grad(spec, weights, x, y, zs0), axis=1) * x.shape[0]
    z = -np.linalg.solve(hess, g0.T).T  # F is quadratic: z* = −H⁻¹ ∇F(0)
    return [z[:, l * n : (l + 1) * n] for l in range(h)]


@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("param", ["mupc", "sp"])
@pytest.mark.parametrize("depth", [2, 3, 5])
def test_closed_form_energy_matches_converged_inference(depth, skip, param):
    spec, weights, x, y = _linear(depth, skip, param)
    f_star = theory.equilibrated_energy(spec, weights, x, y)
    # plain gradient-descent inference from the feedforward pass, run to convergence
    zs, _ = oracle.feedforward(spec, weights, x)
    lam_max = np.linalg.eigvalsh(theory.activity_hessian(spec, weights))[-1]
    beta = x.shape[0] / lam_max  # stable step for the batch-mean energy (Hessian H_z / B)
    for _ in range(400):
        zs = oracle.inference(spec, weights, x, y, zs, n_steps=50, activity_lr=beta)
        if max(np.abs(g).max() for g in oracle.activity_grad(spec, weights, x, y, zs)) < 1e-13:
            break
    assert oracle.free_energy(spec, weights, x, y, zs) == pytest.approx(f_star, rel=1e-6)
    exact = _equilibrium(spec, weights, x, y)
    assert oracle.free_energy(spec, weights, x, y, exact) == pytest.approx(f_star, rel=1e-10)


def test_energy_at_equilibrium_is_below_the_mse_loss():
    spec, weights, x, y = _linear(5, True, "mupc")
    assert theory.equilibrated_energy(spec, weights, x, y) < oracle.mse_loss(spec, weights, x, y)


@pytest.mark.parametrize("skip", [True, False])
def test_activity_hessian_matches_finite_differences(skip):
    spec, weights, x, y = _linear(4, skip, "sp", width=3)
    x, y = x[:1], y[:1]  # one sample: H_z is the Hessian of its energy
    rng = np.random.default_rng(2)
    zs = [rng.standard_normal((1, spec.width)) for _ in range(spec.n_hidden)]
    flat = np.concatenate(zs, axis=1)[0]
    n, h = spec.width, spec.n_hidden

    def grad(v):
        parts = [v[None, l * n : (l + 1) * n] for l in range(h)]
        return np.concatenate(oracle.activity_grad(spec, weights, x, y, parts), axis=1)[0]

    step = 1e-6
    fd = np.stack([(grad(flat + step * e) - grad(flat - step * e)) / (2 * step) for e in np.eye(h * n)], axis=1)
    hess = theory.activity_hessian(spec, weights)
    np.testing.assert_allclose(hess, fd, rtol=1e-7, atol=1e-8)
    np.testing.assert_array_equal(hess, hess.T)
    assert np.linalg.eigvalsh(hess)[0] > 0  # F is strictly convex in the activities


def test_condition_number_closed_form_on_identity_like_case():
    # zero weights: M_ℓ = I (skips) so the Hessian is the tridiagonal [2 −1; −1 2 ...] ⊗ I with a 1
    # in the last diagonal block: eigenvalues 2 − 2cos((2k−1)π/(2H+1)), k = 1..H
    spec = NetworkSpec(input_dim=2, width=2, depth=6, output_dim=2, act="linear", skip=True)
    weights = [np.zeros(s) for s in spec.weight_shapes()]
    h = spec.n_hidden
    ks = np.arange(1, h + 1)
    eig = 2 - 2 * np.cos((2 * ks - 1) * np.pi / (2 * h + 1))
    kappa = theory.condition_number(theory.activity_hessian(spec, weights))
    assert kappa == pytest.approx(eig.max() / eig.min(), rel=1e-10)


def test_closed_forms_refuse_nonlinear_networks():
    spec = NetworkSpec(input_dim=2, width=2, depth=3, output_dim=2, act="relu")
    with pytest.raises(SpecError, match="act='linear'"):
        theory.equilibrated_energy(spec, init_weights(spec), np.zeros((1, 2)), np.zeros((1, 2)))


def _output_norm(param, depth, width=128, seed=0):
    spec = NetworkSpec(input_dim=784, width=width, depth=depth + 1, output_dim=10, param=param)
    weights = init_weights(spec, seed=seed)
    x = np.random.default_rng(seed).standard_normal((32, 784))
    _, out = oracle.feedforward(spec, weights, x)
    return float(np.sqrt(np.mean(np.sum(out**2, axis=1))))


def test_mupc_output_stays_order_one_with_depth_while_sp_explodes():
    depths = [8, 16, 32, 64, 128]
    mupc = [_output_norm("mupc", h) for h in depths]
    sp = [_output_norm("sp", h) for h in depths]
    assert max(mupc) / min(mupc) < 3.0 and 0.05 < min(mupc) and max(mupc) < 20
    assert sp[-1] / sp[0] > 1e4  # SP with skips: the residual stream grows geometrically


def test_sp_without_skips_vanishes_with_depth():
    def norm(h):
        spec = NetworkSpec(input_dim=784, width=128, depth=h + 1, output_dim=10, param="sp", skip=False)
        x = np.random.default_rng(0).standard_normal((32, 784))
        return float(np.abs(oracle.feedforward(spec, init_weights(spec), x)[1]).mean())

    assert norm(128) / norm(8) < 1e-20


# ---------------------------------------------------------------------------------------------
# the origin saddle: closed-form Hessian, escape time on its quadratic model, the balanced solution


def _saddle_data(spec, n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, spec.input_dim))
    return x, x @ rng.standard_normal((spec.output_dim, spec.input_dim)).T


def _fd_hessian(grad, spec, weights, h=1e-5):
    flat = np.concatenate([w.ravel() for w in weights])
    shapes = spec.weight_shapes()

    def unflat(v):
        out, i = [], 0
        for s in shapes:
            out.append(v[i:i + s[0] * s[1]].reshape(s))
            i += s[0] * s[1]
        return out

    cols = [(np.concatenate([g.ravel() for g in grad(unflat(flat + h * e))])
             - np.concatenate([g.ravel() for g in grad(unflat(flat - h * e))])) / (2 * h) for e in np.eye(flat.size)]
    return np.array(cols).T


@pytest.mark.parametrize("depth", [2, 3, 4])
@pytest.mark.parametrize("objective", ["fstar", "mse"])
@pytest.mark.parametrize("param", ["mupc", "sp"])
def test_origin_hessian_matches_finite_differences_of_exact_gradients(depth, objective, param):
    from pchw.second_order import equilibrated_weight_grad

    spec = NetworkSpec(input_dim=3, width=3, depth=depth, output_dim=2, act="linear", param=param, skip=False)
    x, y = _saddle_data(spec)
    grad = (lambda w: equilibrated_weight_grad(spec, w, x, y)[0]) if objective == "fstar" else \
        (lambda w: oracle.mse_weight_grad(spec, w, x, y))
    full = _fd_hessian(grad, spec, [np.zeros(s) for s in spec.weight_shapes()])
    layers, hess = theory.origin_hessian(spec, x, y, objective=objective)
    sizes = [s[0] * s[1] for s in spec.weight_shapes()]
    idx = np.concatenate([np.arange(sum(sizes[:l]), sum(sizes[:l + 1])) for l in layers]).astype(int) \
        if layers else np.zeros(0, int)
    embedded = np.zeros_like(full)
    embedded[np.ix_(idx, idx)] = hess
    np.testing.assert_allclose(embedded, full, atol=1e-8)
    if objective == "mse" and depth >= 3:
        assert layers == [] and np.abs(full).max() < 1e-12  # the degenerate saddle


def test_origin_hessian_refuses_skips():
    spec = NetworkSpec(input_dim=3, width=3, depth=3, output_dim=2, act="linear", skip=True)
    with pytest.raises(SpecError, match="skip=False"):
        theory.origin_hessian(spec, np.zeros((2, 3)), np.zeros((2, 2)))


def test_saddle_escape_iterations_is_the_closed_form_of_one_unstable_mode():
    lam, c, lr, drop = -0.3, 1e-3, 0.5, 0.05
    # ½ λ (1 + lr |λ|)^{2t} c² ≤ −drop  ⇔  t ≥ log(2 drop / (|λ| c²)) / (2 log(1 + lr |λ|))
    expect = np.ceil(np.log(2 * drop / (abs(lam) * c * c)) / (2 * np.log(1 + lr * abs(lam))))
    hess = np.diag([lam, 2.0])  # a stable mode alongside changes nothing
    assert theory.saddle_escape_iterations(hess, np.array([c, 1e-3]), lr=lr, drop=drop, max_iters=10_000) == expect
    assert theory.saddle_escape_iterations(hess, np.array([c, 0.0]), lr=lr, drop=drop, max_iters=10) == np.inf
    assert theory.saddle_escape_iterations(np.diag([1.0, 2.0]), np.ones(2), lr=lr, drop=drop, max_iters=10**6) \
        == np.inf  # a minimum is never left
    assert theory.saddle_escape_iterations(np.zeros((0, 0)), np.zeros(0), lr=lr, drop=drop, max_iters=10) == np.inf


@pytest.mark.parametrize("param", ["mupc", "sp"])
def test_balanced_factorisation_fits_the_map_and_is_balanced(param):
    spec = NetworkSpec(input_dim=5, width=4, depth=5, output_dim=3, act="linear", param=param, skip=False)
    target = np.random.default_rng(3).standard_normal((3, 5))
    w = theory.balanced_factorisation(spec, target)
    np.testing.assert_allclose(theory.end_to_end(spec, w), target, atol=1e-12)
    eff = [a * v for a, v in zip(spec.scalings(), w)]
    for lower, upper in zip(eff, eff[1:]):
        np.testing.assert_allclose(upper.T @ upper, lower @ lower.T, atol=1e-12)


def test_gauss_newton_top_eigenvalue_is_the_sharpness_at_a_zero_loss_point():
    spec = NetworkSpec(input_dim=4, width=3, depth=4, output_dim=2, act="linear", param="sp", skip=False)
    x, _ = _saddle_data(spec, n=10)
    w = theory.balanced_factorisation(spec, np.random.default_rng(5).standard_normal((2, 4)))
    y = oracle.feedforward(spec, w, x)[1]  # zero residual: the Hessian is the Gauss–Newton matrix
    hess = _fd_hessian(lambda v: oracle.mse_weight_grad(spec, v, x, y), spec, w)
    assert theory.gauss_newton_top_eigenvalue(spec, w, x) == pytest.approx(np.linalg.eigvalsh(hess)[-1], rel=1e-6)
