"""theory: the checks measure what the theory says (closed form, conditioning, saddle); grid and figures.

The escape and trust-region checks have their own files (test_theory_escape.py, test_trust_region.py).
"""

from dataclasses import asdict

import numpy as np
import pytest

from experiments import theory_checks as tc
from experiments.framework.grid import expand_grid
from experiments.framework.registry import ExperimentError
from pchw import oracle
from pchw.second_order import equilibrium
from pchw.spec import NetworkSpec, init_weights
from pchw.theory import equilibrated_energy

PNG = b"\x89PNG\r\n\x1a\n"


def _row(config):
    row = tc.run(config)
    row.update({f"p_{k}": v for k, v in asdict(config).items()})
    return row


@pytest.mark.parametrize("skip", [True, False])
def test_exact_gradients_match_finite_differences(skip):
    spec = NetworkSpec(3, 4, 4, 2, act="linear", param="sp", skip=skip)
    w = init_weights(spec, seed=1)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    for grad_fn, f in ((tc.mse_weight_grad, lambda ws: oracle.mse_loss(spec, ws, x, y)),
                       (tc.pc_weight_grad, lambda ws: equilibrated_energy(spec, ws, x, y))):
        g = grad_fn(spec, w, x, y)
        for layer, (i, j) in ((0, (1, 2)), (2, (0, 3)), (3, (1, 1))):
            wp = [v.copy() for v in w]
            wm = [v.copy() for v in w]
            wp[layer][i, j] += 1e-6
            wm[layer][i, j] -= 1e-6
            assert g[layer][i, j] == pytest.approx((f(wp) - f(wm)) / 2e-6, rel=1e-6, abs=1e-9)
    # the equilibrium is one: oracle inference from it does not move
    zs = equilibrium(spec, w, x, y).zs
    assert max(np.abs(g).max() for g in oracle.activity_grad(spec, w, x, y, zs)) < 1e-12


def test_energy_closed_form_matches_inference():
    for param in ("mupc", "sp"):
        row = tc.run(tc.Config(check="energy", depth=5, param=param))
        assert row["converged"] and row["inference_steps"] > 0
        assert row["f_rel_diff"] < 1e-6
        assert row["f_feedforward"] > row["f_simulated"]  # inference lowers F from the feedforward pass


def test_conditioning_grows_with_depth_faster_for_sp():
    depths = [2, 4, 8, 16, 32]
    kappa = {p: [tc.run(tc.Config(check="conditioning", depth=d, param=p))["kappa"] for d in depths]
             for p in ("mupc", "sp")}
    for p, ks in kappa.items():
        assert all(b > a for a, b in zip(ks, ks[1:])), (p, ks)  # ill-conditioning grows with depth
    # measured: from L = 8 to 32, μPC's κ grows ≈ 16× (∝ H²), SP's ≈ 40×; SP is worse at depth
    assert kappa["sp"][-1] / kappa["sp"][2] > 1.5 * kappa["mupc"][-1] / kappa["mupc"][2]
    assert kappa["sp"][-1] > 2 * kappa["mupc"][-1]
    row = tc.run(tc.Config(check="conditioning", depth=32, param="mupc"))
    assert row["hessian_size"] == 31 * 16 and row["kappa"] == pytest.approx(row["lambda_max"] / row["lambda_min"])


def test_origin_is_a_strict_saddle_of_fstar_and_degenerate_for_mse():
    for depth in (3, 4):  # H = 2, 3
        row = tc.run(tc.Config(check="saddle", depth=depth, param="sp"))
        assert row["mse_max_abs_eig"] < 1e-8 and row["mse_degenerate"]
        assert row["fstar_min_eig"] < -1e-3 and row["strict_saddle"]
        assert row["fstar_min_eig"] == pytest.approx(row["fstar_predicted_min_eig"], rel=1e-6)
    shallow = tc.run(tc.Config(check="saddle", depth=2, param="sp"))  # H = 1: both strict saddles
    assert shallow["strict_saddle"] and shallow["mse_min_eig"] < -1e-3 and not shallow["mse_degenerate"]


def test_default_grid_collapses_the_linear_only_checks():
    points = expand_grid(tc.Config, tc.GRID)
    by_check = {c: [p for p in points if p.check == c] for c in tc.CHECKS}
    for check in tc.LINEAR_ONLY:  # one point per depth and parameterisation, whatever the act axis
        assert len(by_check[check]) == 10 and {p.act for p in by_check[check]} == {"linear"}
    for check in ("escape", "trust-region"):
        assert len(by_check[check]) == 20 and {p.act for p in by_check[check]} == {"linear", "relu"}
    assert len(points) == 70


@pytest.mark.parametrize("bad, match", [({"check": "bogus"}, "check="), ({"act": "sigmoid"}, "act="),
                                        ({"param": "ntk"}, "param="), ({"seeds": 0}, "seeds="),
                                        ({"lr": -1.0}, "lr="), ({"saddle_drop": 1.0}, "saddle_drop="),
                                        ({"beta_min_frac": 2.0}, "beta_min_frac=")])
def test_bad_values_are_one_clear_error(bad, match):
    with pytest.raises(ExperimentError, match=match):
        tc.Config(**bad)


def test_plot_writes_every_figure_with_its_sentence(tmp_path):
    rows = [_row(tc.Config(check="energy", depth=d, param="mupc")) for d in (2, 4)]
    rows += [_row(tc.Config(check="conditioning", depth=d, param=p)) for d in (2, 8) for p in ("mupc", "sp")]
    rows += [_row(tc.Config(check="saddle", depth=d, param="sp")) for d in (2, 3)]
    rows += [_row(tc.Config(check="escape", depth=d, param="sp", act=a, max_iters=60, seeds=1))
             for d in (2, 3) for a in ("linear", "relu")]
    rows += [_row(tc.Config(check="trust-region", depth=d, act=a, seeds=1)) for d in (2, 3) for a in ("linear", "relu")]
    # as runs.csv hands them back: every cell a string
    text_rows = [{k: ("" if v is None else str(v)) for k, v in r.items()} | {"status": "ok"} for r in rows]
    for table in (rows, text_rows):
        paths = tc.plot(table, tmp_path / "fig")
        assert {p.name for p in paths} == {"theory_energy.png", "theory_conditioning.png", "theory_saddle.png",
                                           "theory_escape.png", "theory_escape_curves.png",
                                           "theory_trust_region.png"}
        for p in paths:
            data = p.read_bytes()
            assert data.startswith(PNG) and len(data) > 1000
    from experiments.theory_plots import _escape_sentence, _trust_region_sentence

    escape = [r for r in rows if r["check"] == "escape"]
    sentence = _escape_sentence(escape, 60)
    assert "PC left the origin saddle in 4/4 cases (L ≤ 3)" in sentence and "Median of 1 seeds" in sentence
    assert "1 seeds" in _trust_region_sentence([r for r in rows if r["check"] == "trust-region"])
