"""The cache of shared trained networks: an entry counts only once training has ended and verified."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from experiments.framework import RunInterrupted, run_experiment  # noqa: E402
from experiments.framework.runs_csv import read_runs  # noqa: E402
from experiments.trained import COMPLETE, get_trained  # noqa: E402
from models.training import load_checkpoint  # noqa: E402

TOY = "module:tests.toy_trained"
NET = {"model": "mupc", "dataset": "synthetic", "depth": 3, "width": 8, "epochs": 3.0}


def entries(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "trained").iterdir() if p.is_dir())


@pytest.mark.slow
def test_ctrl_c_during_shared_training_is_resumed_not_taken_as_finished(tmp_path, monkeypatch, ctrl_c_after):
    cache = tmp_path / "cache"
    monkeypatch.setenv("PCHW_CACHE", str(cache))
    out = tmp_path / "results"
    ctrl_c_after(40)  # Ctrl-C once the shared network has trained 40 of its 96 iterations
    with pytest.raises(RunInterrupted, match="a network in training stopped at iteration 40 with its checkpoint kept"):
        run_experiment(TOY, out_dir=out, show_progress=False)
    [entry] = entries(cache)
    assert not (entry / COMPLETE).exists()  # half trained: not finished
    assert load_checkpoint(entry / "checkpoint.pt")["iteration"] == 40
    assert not (out / "runs.csv").exists() or not [r for r in read_runs(out / "runs.csv")[1] if r["status"] == "ok"]

    monkeypatch.undo()  # Ctrl-C no more
    monkeypatch.setenv("PCHW_CACHE", str(cache))
    s = run_experiment(TOY, out_dir=out, show_progress=False)
    assert (s.n_done, s.n_failed) == (2, 0)
    assert (entry / COMPLETE).exists() and load_checkpoint(entry / "checkpoint.pt")["iteration"] == 96

    # resumed, the network is bit-identical to one trained without interruption
    monkeypatch.setenv("PCHW_CACHE", str(tmp_path / "fresh"))
    fresh = get_trained(**NET)
    monkeypatch.setenv("PCHW_CACHE", str(cache))
    resumed = get_trained(**NET)
    for a, b in zip(fresh.weights, resumed.weights):
        np.testing.assert_array_equal(a, b)
    assert fresh.test_acc == resumed.test_acc
    assert {r["w_sum"] for r in s.rows} == {float(sum(w.sum() for w in fresh.weights))}


@pytest.mark.slow
def test_an_entry_without_the_mark_is_finished_and_a_damaged_one_redone(tmp_path, monkeypatch):
    monkeypatch.setenv("PCHW_CACHE", str(tmp_path))
    small = {**NET, "epochs": 0.5}  # 16 iterations
    first = get_trained(**small)
    [entry] = entries(tmp_path)
    (entry / COMPLETE).unlink()  # e.g. killed between the last checkpoint and the mark
    again = get_trained(**small)
    assert (entry / COMPLETE).exists()
    np.testing.assert_array_equal(first.weights[0], again.weights[0])

    (entry / COMPLETE).unlink()
    blob = bytearray((entry / "checkpoint.pt").read_bytes())
    (entry / "checkpoint.pt").write_bytes(bytes(blob[: len(blob) // 3]))  # a torn checkpoint: trained again
    redone = get_trained(**small)
    np.testing.assert_array_equal(first.weights[0], redone.weights[0])

    (entry / COMPLETE).write_text("{broken")  # an unreadable mark counts as no mark
    np.testing.assert_array_equal(first.weights[0], get_trained(**small).weights[0])


@pytest.mark.slow
def test_the_shared_training_shows_its_progress_under_the_grid(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("PCHW_CACHE", str(tmp_path / "cache"))
    s = run_experiment(TOY, overrides={"epochs": ["0.5"], "probe": ["0"]}, out_dir=tmp_path / "r", show_progress=True)
    assert s.n_done == 1
    err = capfd.readouterr().err
    assert "toy-trained" in err and "train mupc" in err and "16/16" in err  # the grid's bar and the training's
    run_experiment(TOY, overrides={"epochs": ["0.25"]}, out_dir=tmp_path / "q", show_progress=False)
    assert "train mupc" not in capfd.readouterr().err  # --quiet silences both
