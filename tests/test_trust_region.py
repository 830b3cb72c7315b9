"""theory, check ``trust-region``: PC's weight update is the trust-region step's, where the theory says so.

Stated values: at the exact equilibrium of a linear network the PC update equals the trust-region
update (cosine 1 to 1e-10: the energy is quadratic in z, the Fisher is its Hessian); for ReLU at L = 2
its cosine with it is above 0.95 for every seed (measured 0.977–0.995). After T = 20 inference steps,
at L = 2 and every activity lr from 0.08 to 0.4 of the stability bound, the cosine is above 0.99
(linear; measured ≥ 0.998) and 0.95 (ReLU, every seed; measured ≥ 0.976).
"""

import json
import math

import numpy as np
import pytest

from experiments import theory_checks as tc
from experiments import trust_region as tr
from pchw import oracle
from pchw.second_order import equilibrium, trust_region_step
from pchw.spec import NetworkSpec, init_weights


def _row(**kw):
    return tc.run(tc.Config(check="trust-region", **{"seeds": 2, **kw}))


def _curve(row):
    return {round(c["beta_frac"], 4): c for c in json.loads(row["beta_curve"])}


@pytest.mark.parametrize("param", ["mupc", "sp"])
def test_linear_pc_update_at_equilibrium_is_the_trust_region_update_not_the_gradient(param):
    rows = [_row(depth=d, param=param) for d in (2, 4, 8)]
    for r in rows:
        assert r["eq_converged"] and r["eq_cos_tr"] > 1 - 1e-10 and r["eq_cos_tr_worst"] > 1 - 1e-10
        assert r["eq_dz_cos"] > 1 - 1e-10  # inference's activity change is the trust-region step
    cos_bp = [r["eq_cos_bp"] for r in rows]
    assert all(c < 0.99 for c in cos_bp[1:]) and cos_bp[-1] < cos_bp[0]  # and drifts from BP with depth


def test_the_trust_region_update_is_exactly_the_update_at_the_linear_equilibrium():
    spec = NetworkSpec(input_dim=4, width=5, depth=5, output_dim=3, act="linear", param="mupc", skip=True)
    w = init_weights(spec, seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 3))
    z_hat, step = trust_region_step(spec, w, x, y)
    g_tr = oracle.weight_grad(spec, w, x, y, [a + b for a, b in zip(z_hat, step)])
    g_eq = oracle.weight_grad(spec, w, x, y, equilibrium(spec, w, x, y).zs)
    for a, b in zip(g_tr, g_eq):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("param", ["mupc", "sp"])
@pytest.mark.parametrize("act", ["linear", "relu"])
def test_alignment_holds_where_the_theory_says(act, param):
    row = _row(depth=2, act=act, param=param)
    bound = 0.99 if act == "linear" else 0.95
    assert row["eq_cos_tr_worst"] > bound
    window = [c for f, c in _curve(row).items() if 0.08 <= f <= 0.4]
    assert len(window) == 3 and all(c["cos_tr_worst"] > bound for c in window)


def test_where_the_approximation_breaks():
    row = _row(depth=4)
    curve = list(_curve(row).values())
    # above the stability bound inference diverges and the update points anywhere
    top = curve[-1]
    assert top["beta_frac"] > 1 and top["diverged_seeds"] == 2 and top["cos_tr"] < 0.5
    # far below it, T steps are a first-order step in z: the update is only partly the TR one
    assert curve[0]["cos_tr"] < row["best_cos_tr"] - 0.2
    # and the window of good alignment at fixed T closes with depth (κ(H_z) grows)
    assert _row(depth=16, seeds=1)["best_cos_tr"] < row["best_cos_tr"] - 0.2


def test_beta_grid_and_row_bookkeeping():
    cfg = tc.Config(check="trust-region", n_betas=5, beta_min_frac=0.1, beta_max_frac=1.0)
    np.testing.assert_allclose(tr.beta_fractions(cfg), np.geomspace(0.1, 1.0, 5))
    row = tc.run(tc.Config(check="trust-region", depth=3, seeds=1, n_betas=3))
    assert row["seeds_used"] == 1 and row["tr_steps_used"] == 20 and len(json.loads(row["beta_curve"])) == 3
    assert math.isfinite(row["kappa"]) and row["kappa"] >= 1 and row["beta_max"] > 0
