"""The oracle's backprop gradient of the MSE loss and its forward-mode output derivative."""

import numpy as np
import pytest

from pchw import oracle
from pchw.spec import NetworkSpec, init_weights


def _net(act, skip):
    spec = NetworkSpec(input_dim=3, width=4, depth=4, output_dim=2, act=act, param="sp", skip=skip)
    rng = np.random.default_rng(2)
    return spec, init_weights(spec, seed=1), rng.standard_normal((5, 3)), rng.standard_normal((5, 2))


@pytest.mark.parametrize("act", ["linear", "relu", "tanh"])
@pytest.mark.parametrize("skip", [True, False])
def test_mse_weight_grad_matches_finite_differences(act, skip):
    spec, w, x, y = _net(act, skip)
    grads = oracle.mse_weight_grad(spec, w, x, y)
    for layer, (i, j) in ((0, (1, 2)), (1, (3, 0)), (2, (0, 3)), (3, (1, 1))):
        wp, wm = [v.copy() for v in w], [v.copy() for v in w]
        wp[layer][i, j] += 1e-6
        wm[layer][i, j] -= 1e-6
        fd = (oracle.mse_loss(spec, wp, x, y) - oracle.mse_loss(spec, wm, x, y)) / 2e-6
        assert grads[layer][i, j] == pytest.approx(fd, rel=1e-6, abs=1e-10)


@pytest.mark.parametrize("act", ["linear", "relu", "tanh"])
@pytest.mark.parametrize("skip", [True, False])
def test_feedforward_jvp_is_the_directional_derivative_of_the_output(act, skip):
    spec, w, x, _ = _net(act, skip)
    v = [np.random.default_rng(7).standard_normal(s) for s in spec.weight_shapes()]
    plus = oracle.feedforward(spec, [a + 1e-6 * b for a, b in zip(w, v)], x)[1]
    minus = oracle.feedforward(spec, [a - 1e-6 * b for a, b in zip(w, v)], x)[1]
    np.testing.assert_allclose(oracle.feedforward_jvp(spec, w, x, v), (plus - minus) / 2e-6, atol=1e-8)
    # and Jᵀ through mse_weight_grad is its adjoint: ⟨J v, u⟩ = B ⟨v, (1/B) Jᵀ u⟩
    u = np.random.default_rng(8).standard_normal((5, 2))
    out = oracle.feedforward(spec, w, x)[1]
    jtu = oracle.mse_weight_grad(spec, w, x, out - u)
    lhs = float(np.sum(oracle.feedforward_jvp(spec, w, x, v) * u))
    assert lhs == pytest.approx(5 * sum(float(np.sum(a * b)) for a, b in zip(v, jtu)), rel=1e-12)
