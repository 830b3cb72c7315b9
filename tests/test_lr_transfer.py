"""lr-transfer: a tiny synthetic grid, the optimum per panel, divergence as NaN loss, figures."""

import itertools
import math
from dataclasses import asdict, replace

import numpy as np
import pytest

from experiments import lr_transfer as lt

PNG = b"\x89PNG\r\n\x1a\n"
TINY = lt.Config(dataset="synthetic", width=8, hidden=2, iters=8, n_train=128, n_test=64, batch_size=32)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PCHW_CACHE", str(tmp_path / "cache"))


def _row(config):
    row = lt.run(config)
    row.update({f"p_{k}": v for k, v in asdict(config).items()})
    return row


@pytest.fixture(scope="module")
def grid_rows():
    rows = []
    for width, beta, lr in itertools.product((8, 16), (0.1, 1.0), (0.003, 0.1)):
        rows.append(_row(replace(TINY, width=width, activity_lr=beta, param_lr=lr)))
    return rows


@pytest.mark.slow
def test_tiny_grid_rows(grid_rows):
    for row in grid_rows:
        assert {"test_loss", "test_acc", "train_loss", "diverged", "chance_acc", "train_wall_s", "depth"} <= set(row)
        assert not ({"wall_s", "status", "error", "run_id"} & set(row))
        assert row["diverged"] is False and row["iterations"] == 8
        assert math.isfinite(row["test_loss"]) and row["test_loss"] > 0 and 0 <= row["test_acc"] <= 1


def test_test_loss_is_the_halved_mse_of_the_feedforward_output():
    from models.training import TrainConfig, train
    from pchw.data import load_dataset
    from pchw.oracle import feedforward

    row = lt.run(TINY)
    data = load_dataset("synthetic", n_train=128, n_test=64)
    res = train(TrainConfig(model="mupc", dataset="synthetic", depth=3, width=8, iters=8, batch_size=32,
                            device="cpu", test_every=8), data=data)
    _, out = feedforward(res.spec, res.weights(), data.x_test.astype(np.float64))
    expected = 0.5 * np.sum((data.one_hot(data.y_test) - out) ** 2) / len(out)
    assert row["test_loss"] == pytest.approx(expected, rel=1e-4)
    assert row["test_acc"] == pytest.approx(res.test_acc)


@pytest.mark.slow
def test_optimum_per_panel_is_the_argmin(grid_rows):
    best = lt.optima(grid_rows)
    assert [(b["width"], b["hidden"]) for b in best] == [(8, 2), (16, 2)]
    for b in best:
        panel = [r for r in grid_rows if r["p_width"] == b["width"]]
        arg = min(panel, key=lambda r: r["test_loss"])
        assert (b["activity_lr"], b["param_lr"]) == (arg["p_activity_lr"], arg["p_param_lr"])
        assert b["test_loss"] == pytest.approx(arg["test_loss"])


def test_optimum_from_hand_made_rows_and_divergence_skipped():
    rows = []
    losses = {(0.1, 0.01): 0.3, (0.1, 0.1): 0.2, (1.0, 0.01): 0.25, (1.0, 0.1): float("nan")}
    for (beta, lr), loss in losses.items():
        rows.append({"p_width": 4, "p_hidden": 1, "p_activity_lr": beta, "p_param_lr": lr, "test_loss": loss,
                     "test_acc": 0.5, "diverged": math.isnan(loss)})
    rows.append({"p_width": 8, "p_hidden": 1, "p_activity_lr": 0.1, "p_param_lr": 0.1, "test_loss": None,
                 "test_acc": 0.25, "diverged": True})  # NaN as read back from runs.csv (an empty cell)
    (best,) = lt.optima(rows)
    assert (best["width"], best["activity_lr"], best["param_lr"], best["index"]) == (4, 0.1, 0.1, (0, 1))
    panel = lt.panels(rows)[(4, 1)]
    assert np.isnan(panel["loss"][1, 1]) and panel["loss"][0, 1] == 0.2


@pytest.mark.slow
def test_divergence_is_nan_loss_at_chance_and_the_plot_copes(grid_rows, tmp_path, assert_reported):
    bad = _row(replace(TINY, width=16, activity_lr=1.0, param_lr=1e30))
    assert bad["diverged"] is True and math.isnan(bad["test_loss"])
    assert bad["test_acc"] == pytest.approx(bad["chance_acc"])
    rows = [r for r in grid_rows if not (r["p_width"] == 16 and r["p_activity_lr"] == 1.0 and r["p_param_lr"] == 0.1)]
    rows.append({**bad, "p_param_lr": 0.1})  # the diverged point takes a cell of the 16-wide panel
    assert np.isnan(lt.panels(rows)[(16, 2)]["loss"][1, 1])
    assert {b["width"] for b in lt.optima(rows)} == {8, 16}
    paths = lt.plot(rows, tmp_path / "fig")
    assert [p.name for p in paths] == ["lr_transfer_heatmaps.png", "lr_transfer_optimum.png"]
    assert_reported(lt, rows, paths)
    for p in paths:
        data = p.read_bytes()
        assert data.startswith(PNG) and len(data) > 1000


@pytest.mark.slow
def test_plot_with_several_depths_and_an_all_diverged_panel(grid_rows, tmp_path):
    deeper = [{**r, "p_hidden": 5, "test_loss": r["test_loss"] * 1.1} for r in grid_rows]
    dead = [{**r, "p_width": 32, "test_loss": float("nan"), "diverged": True} for r in grid_rows if r["p_width"] == 8]
    rows = grid_rows + deeper + dead
    assert (32, 2) not in {(b["width"], b["hidden"]) for b in lt.optima(rows)}
    paths = lt.plot(rows, tmp_path / "fig")
    assert len(paths) == 2 and all(p.stat().st_size > 1000 for p in paths)
    assert lt.plot([], tmp_path / "none") == []
