"""depth-scaling: rows, the init diagnostics' depth behaviour, divergence as a result, figures."""

import math
from dataclasses import asdict, replace

import numpy as np
import pytest

from experiments import depth_scaling as ds
from pchw.data import load_dataset
from pchw.spec import NetworkSpec

PNG = b"\x89PNG\r\n\x1a\n"
FIELDS = {"depth", "n_steps_used", "param_lr_used", "chance_acc", "test_acc", "train_loss", "free_energy",
          "diverged", "diverged_at", "iterations", "train_wall_s", "init_output_rms", "hessian_width",
          "hessian_dim", "hessian_cond"}
TINY = ds.Config(dataset="synthetic", width=8, iters=6, n_train=128, n_test=64, batch_size=32, norm_samples=64)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PCHW_CACHE", str(tmp_path / "cache"))


def _row(config):
    row = ds.run(config)
    row.update({f"p_{k}": v for k, v in asdict(config).items()})
    return row


@pytest.fixture(scope="module")
def tiny_rows():
    return [_row(replace(TINY, model=m, hidden=h)) for m in ds.MODELS for h in (1, 3)]


@pytest.mark.slow
def test_rows_have_the_expected_fields(tiny_rows):
    for row in tiny_rows:
        assert FIELDS <= set(row), FIELDS - set(row)
        assert not ({"wall_s", "status", "error", "run_id"} & set(row))  # the runner's own columns
        assert row["diverged"] is False and row["iterations"] == 6
        assert 0.0 <= row["test_acc"] <= 1.0 and math.isfinite(row["train_loss"])
        assert row["init_output_rms"] > 0 and row["hessian_cond"] >= 1.0
        assert row["depth"] == row["p_hidden"] + 1
        assert row["hessian_width"] == 8 and row["hessian_dim"] == 8 * row["p_hidden"]
        assert row["param_lr_used"] == ds.DEFAULT_PARAM_LR[row["p_model"]]
        pc = row["p_model"] != "bp"
        assert row["n_steps_used"] == (row["p_hidden"] if pc else 0)
        assert math.isfinite(row["free_energy"]) == pc
    by = {(r["p_model"], r["p_hidden"]): r for r in tiny_rows}
    # bp is built and initialised exactly as μPC: the same init diagnostics
    assert by[("bp", 3)]["init_output_rms"] == pytest.approx(by[("mupc", 3)]["init_output_rms"])
    assert by[("bp", 3)]["hessian_cond"] == pytest.approx(by[("mupc", 3)]["hessian_cond"])
    assert by[("sp", 3)]["init_output_rms"] != pytest.approx(by[("mupc", 3)]["init_output_rms"])


def test_init_output_norm_mupc_stays_put_sp_explodes_with_depth():
    data = load_dataset("synthetic", n_train=256, n_test=16)
    x = data.x_train
    depths = (2, 8, 32, 128)

    def norms(param):
        return np.array([ds.init_output_rms(NetworkSpec(data.input_dim, 32, h + 1, data.n_classes, param=param),
                                            x, seed=0) for h in depths])

    mupc, sp = norms("mupc"), norms("sp")
    assert mupc.max() / mupc.min() < 3.0, mupc
    assert sp[-1] / sp[0] > 100.0, sp
    assert np.all(np.diff(np.log(sp)) > 0), sp


def test_linear_hessian_is_better_conditioned_under_mupc():
    conds = {p: [ds.linear_hessian_cond(NetworkSpec(20, 16, h + 1, 4, param=p), seed=0) for h in (4, 32)]
             for p in ("mupc", "sp")}
    for p in conds:
        assert conds[p][1] > conds[p][0] >= 1.0
    assert conds["sp"][1] > 3 * conds["mupc"][1]


def test_hessian_width_is_capped_and_recorded():
    assert ds.hessian_width_of(ds.Config(hidden=16, width=64)) == 64
    assert ds.hessian_width_of(ds.Config(hidden=128, width=512)) == 16
    assert ds.hessian_width_of(ds.Config(hidden=64, width=512)) == 32
    assert ds.hessian_width_of(ds.Config(hidden=33, width=512)) == 32  # a power of two that fits
    assert ds.hessian_width_of(ds.Config(hidden=128, width=512, hessian_width=8)) == 8
    row = ds.run(replace(TINY, model="bp", hidden=4, width=16, iters=2, hessian_max_dim=32))
    assert row["hessian_width"] == 8 and row["hessian_dim"] == 32


def test_sp_divergence_is_a_row_at_chance():
    row = ds.run(replace(TINY, model="sp", hidden=3, param_lr=1e30))
    assert row["diverged"] is True
    assert row["test_acc"] == pytest.approx(row["chance_acc"]) == pytest.approx(0.25)
    assert math.isnan(row["train_loss"]) and 1 <= row["diverged_at"] <= TINY.iters
    assert row["init_output_rms"] > 0 and math.isfinite(row["hessian_cond"])


def test_bad_model_is_one_clear_error():
    with pytest.raises(ValueError, match="model='xx'"):
        ds.run(replace(TINY, model="xx"))


@pytest.mark.slow
def test_plot_writes_three_figures(tiny_rows, tmp_path, assert_reported):
    diverged = _row(replace(TINY, model="sp", hidden=5, param_lr=1e30))
    failed = {"p_model": "mupc", "p_hidden": 9, "test_acc": None}  # a failed point has no metrics
    paths = ds.plot([*tiny_rows, diverged, failed], tmp_path / "fig")
    assert_reported(ds, [*tiny_rows, diverged, failed], paths)
    assert "1 run(s) diverged" in ds.describe([*tiny_rows, diverged])["depth_scaling_accuracy.png"]
    assert [p.name for p in paths] == ["depth_scaling_accuracy.png", "depth_scaling_output_norm.png",
                                       "depth_scaling_hessian_cond.png"]
    for p in paths:
        data = p.read_bytes()
        assert data.startswith(PNG) and len(data) > 1000
    assert ds.plot([], tmp_path / "none") == []


@pytest.mark.slow
def test_plot_reads_rows_typed_as_from_runs_csv(tiny_rows, tmp_path):
    as_csv = [{k: ("True" if v is True else "False" if v is False else v) for k, v in r.items()} for r in tiny_rows]
    assert len(ds.plot(as_csv, tmp_path / "csv")) == 3
