"""pchw.stacked agrees with the oracle it re-arranges."""

import numpy as np
import pytest

from pchw import oracle
from pchw.spec import NetworkSpec, init_weights
from pchw.stacked import StackedEnergy


@pytest.mark.parametrize("act", ["linear", "relu", "tanh"])
@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("depth", [2, 5])
def test_stacked_energy_and_gradient_match_the_oracle(act, skip, depth):
    spec = NetworkSpec(input_dim=4, width=5, depth=depth, output_dim=3, act=act, param="mupc", skip=skip)
    w = init_weights(spec, seed=3)
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    zs = [rng.standard_normal((6, 5)) for _ in range(spec.n_hidden)]
    net = StackedEnergy(spec, w, x, y)
    eps, eps_out = net.errors(np.stack(zs))
    ref = oracle.errors(spec, w, x, y, zs)
    np.testing.assert_allclose(eps, np.stack(ref[:-1]), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(eps_out, ref[-1], rtol=1e-13, atol=1e-13)
    assert net.energy(eps, eps_out) == pytest.approx(oracle.free_energy(spec, w, x, y, zs), rel=1e-13)
    np.testing.assert_allclose(net.grad(np.stack(zs), eps, eps_out), np.stack(oracle.activity_grad(spec, w, x, y, zs)),
                               rtol=1e-12, atol=1e-14)
