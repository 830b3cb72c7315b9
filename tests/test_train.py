"""The training loop: learning, exact resume, Ctrl-C, divergence."""

import numpy as np
import pytest
import torch

from models.training import ConfigError, TrainConfig, load_trained, train
from pchw.data import synthetic_teacher_student
from pchw.runlog import DivergenceError, History, Interrupted, RunError


@pytest.fixture(scope="module")
def data():
    return synthetic_teacher_student(n_train=4096, n_test=1024, seed=0)


def _config(**kw):
    base = dict(dataset="synthetic", depth=5, width=32, batch_size=32, param_lr=0.01, test_every=10,
                device="cpu", seed=0)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("model", ["mupc", "bp"])
def test_synthetic_training_reaches_high_accuracy(data, model):
    # T = 20 inference steps: near-equilibrium activities give PC its backprop-like gradient
    result = train(_config(model=model, epochs=3, width=64, batch_size=64, n_steps=20, param_lr=0.1,
                           test_every=64), data=data)
    assert result.test_acc >= 0.9, result.test_acc
    losses = [r["train_loss"] for r in result.history.rows]
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    if model == "mupc":
        assert all(r["free_energy"] <= r["train_loss"] + 1e-6 for r in result.history.rows)
    else:
        assert all(r["free_energy"] is None for r in result.history.rows)


def test_deep_mupc_trains(data):
    mupc = train(_config(model="mupc", depth=33, width=64, iters=150, n_steps=8, param_lr=0.1), data=data)
    assert mupc.test_acc > 0.75


@pytest.mark.parametrize("model", ["mupc", "bp"])
def test_resume_is_bit_identical(tmp_path, data, model):
    cfg = _config(model=model, iters=30)
    straight = train(cfg, data=data)
    first = train(_config(model=model, iters=17), data=data, out_dir=tmp_path / "run")
    assert first.iterations == 17
    resumed = train(cfg, data=data, out_dir=tmp_path / "run", resume=True)
    for a, b in zip(straight.weights(), resumed.weights()):
        assert np.array_equal(a, b)
    rows = History.read(tmp_path / "run" / "history.csv").rows
    assert [r["iteration"] for r in rows] == list(range(1, 31))
    assert rows[-1]["test_acc"] == pytest.approx(straight.test_acc)


def test_run_folder_contents_and_load_trained(tmp_path, data):
    out = tmp_path / "run"
    result = train(_config(iters=20), data=data, out_dir=out)
    assert {p.name for p in out.iterdir()} >= {"config.json", "history.csv", "checkpoint.pt"}
    spec, weights, cfg = load_trained(out)
    assert cfg == result.config and spec == result.spec
    for a, b in zip(weights, result.weights()):
        np.testing.assert_array_equal(a, b)
    header = (out / "history.csv").read_text().splitlines()[0]
    assert header == "iteration,train_loss,free_energy,test_acc,wall_s"  # no faked GPU energy on CPU


def test_existing_run_needs_resume_and_matching_config(tmp_path, data):
    out = tmp_path / "run"
    train(_config(iters=5), data=data, out_dir=out)
    with pytest.raises(RunError, match="already holds a run"):
        train(_config(iters=5), data=data, out_dir=out)
    with pytest.raises(RunError, match="width=64 differs"):
        train(_config(iters=10, width=64), data=data, out_dir=out, resume=True)


def test_ctrl_c_saves_a_checkpoint_that_resumes_exactly(tmp_path, data, monkeypatch, ctrl_c_after):
    ctrl_c_after(12)
    with pytest.raises(Interrupted) as info:
        train(_config(iters=30), data=data, out_dir=tmp_path / "run")
    assert info.value.iteration == 12
    monkeypatch.undo()
    resumed = train(_config(iters=30), data=data, out_dir=tmp_path / "run", resume=True)
    straight = train(_config(iters=30), data=data)
    for a, b in zip(straight.weights(), resumed.weights()):
        assert np.array_equal(a, b)


def test_divergence_stops_with_a_clear_message_and_keeps_the_good_checkpoint(tmp_path, data):
    out = tmp_path / "run"
    with pytest.raises(DivergenceError, match="diverged at iteration .* not finite") as info:
        train(_config(model="sp", depth=12, activity_lr=1e6, param_lr=1e3, iters=200, test_every=1),
              data=data, out_dir=out)
    good = info.value.checkpoint_iteration
    if good is not None:  # the checkpoint on disk is the last finite state
        state = torch.load(out / "checkpoint.pt", weights_only=True)
        assert state["iteration"] == good
        assert all(torch.isfinite(v).all() for v in state["model"].values())


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"depth": 1}, "depth=1 is invalid"),
        ({"param_lr": -0.1}, "param_lr=-0.1 is invalid"),
        ({"activity_lr": float("nan")}, "activity_lr=nan"),
        ({"model": "ff"}, "model='ff'"),
        ({"iters": 5, "epochs": 1.0}, "either iters or epochs"),
        ({"device": "tpu"}, "device='tpu'"),
        ({"cuda_graph": "yes"}, "cuda_graph='yes' is invalid: must be true or false"),
    ],
)
def test_bad_config_is_one_clear_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        _config(**kwargs)
