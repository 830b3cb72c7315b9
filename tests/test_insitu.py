"""Pulsed in-place updates and in-situ training on simulated devices."""

import numpy as np
import pytest

from pchw.data import synthetic_teacher_student
from pchw.profiles import load_profile, profile_to_toml
from pchw.runlog import History
from simulators.insitu import InsituConfig, load_insitu, train_insitu
from simulators.pulsed import pulsed_update, pulsed_update_np


def _signals(seed=0, n_out=6, n_in=9, batch=3):
    rng = np.random.default_rng(seed)
    w = rng.uniform(-1, 1, (n_out, n_in)) * 0.3
    return w, rng.standard_normal((batch, n_out)), rng.standard_normal((batch, n_in))


def _update(w, d, x, eta, seed, base, **device):
    args = dict(w_max=1.0, bl=31, dw_min=0.001, asym=0.0, c2c=0.0, soft=False)
    args.update(device)
    w = w.copy()
    gamma = np.ones_like(w)
    pulses = pulsed_update(w, d, x, eta, args["w_max"], args["bl"], args["dw_min"], np.full(w.shape, args["asym"]),
                           args["c2c"],
                           args["soft"], gamma, seed, base)
    return w, pulses


def test_pulsed_update_equals_the_outer_product_in_expectation():
    w0, d, x = _signals()
    eta = 0.002
    ideal = eta * d.T @ x
    trials = np.stack([_update(w0, d, x, eta, seed, 0)[0] - w0 for seed in range(600)])
    mean, sem = trials.mean(axis=0), trials.std(axis=0) / np.sqrt(len(trials))
    assert np.all(np.abs(mean - ideal) <= 4 * sem + 1e-12)
    assert np.abs(mean - ideal).max() < 0.1 * np.abs(ideal).max()


def test_pulses_respect_granularity_and_bounds():
    w0, d, x = _signals()
    changed, pulses = _update(w0, d, x, 0.002, 1, 0)
    steps = (changed - w0) / 0.001
    assert pulses > 0 and np.allclose(steps, np.round(steps), atol=1e-9)  # whole pulses of dw_min
    big, _ = _update(w0, d * 50, x * 50, 5.0, 2, 0, w_max=0.4)
    assert np.abs(big).max() <= 0.4 + 1e-15  # hard bounds at ±w_max
    soft, _ = _update(np.full_like(w0, 0.39), np.abs(d), np.abs(x), 1.0, 3, 0, w_max=0.4, soft=True)
    assert soft.max() < 0.4  # soft bounds: steps shrink to zero at the bound


def test_asymmetry_and_exact_device():
    w0, d, x = _signals()
    exact, pulses = _update(w0, d, x, 0.01, 0, 0, dw_min=0.0)
    np.testing.assert_allclose(exact - w0, 0.01 * d.T @ x, rtol=1e-12)
    assert pulses == 0
    up = np.ones((1, 4)), np.ones((1, 5))
    w_up, n_up = _update(np.zeros((4, 5)), *up, 0.005, 0, 0, asym=0.5)
    assert np.allclose(w_up, np.round(w_up / 0.00125) * 0.00125)  # up pulses are (1 + a/2)·dw_min


def test_numba_and_numpy_pulse_updates_agree():
    w0, d, x = _signals(seed=4)
    gamma = 1 + 0.2 * np.random.default_rng(0).standard_normal(w0.shape)
    spread = 0.26 + 0.1 * np.random.default_rng(1).standard_normal(w0.shape)  # device-to-device asymmetry
    for device in [dict(dw_min=0.002, asym=spread, c2c=0.3, soft=True),
                   dict(dw_min=0.0, asym=np.zeros_like(w0), c2c=0.0, soft=False)]:
        w = w0.copy()
        n = pulsed_update(w, d, x, 0.003, 0.5, 31, device["dw_min"], device["asym"], device["c2c"], device["soft"],
                          gamma, 9, 12345)
        ref, n_ref = pulsed_update_np(w0, d, x, 0.003, 0.5, 31, device["dw_min"], device["asym"], device["c2c"],
                                      device["soft"], gamma, 9, 12345)
        np.testing.assert_allclose(w, ref, rtol=1e-12, atol=1e-15)
        assert n == n_ref


@pytest.fixture(scope="module")
def data():
    return synthetic_teacher_student(n_train=2048, n_test=512, seed=0)


def _device_only(tmp_path):
    p = load_profile("analog-rram-clocked").replace(quantize_io=0, out_bound=0.0, out_noise_frac=0.0,
                                                     read_noise_frac=0.0, prog_noise_frac=0.0)
    path = tmp_path / "device.toml"
    path.write_text(profile_to_toml(p))
    return str(path)


@pytest.mark.parametrize("profile", ["ideal", "device"])
def test_insitu_training_learns_a_synthetic_task(tmp_path, data, profile):
    name = _device_only(tmp_path) if profile == "device" else "ideal"
    config = InsituConfig(profile=name, dataset="synthetic", depth=4, width=32, epochs=4, test_every=32,
                          param_lr=0.03, hidden_lr_mult=100.0)
    result = train_insitu(config, data=data)
    assert result.test_acc >= 0.85, result.test_acc
    if profile == "device":
        assert result.write_pulses > 0 and result.energy_j > 0
        assert result.energy_components_j["write"] > 0


def test_insitu_resume_is_exact_and_keeps_the_ledger(tmp_path, data):
    name = _device_only(tmp_path)
    cfg = dict(profile=name, dataset="synthetic", depth=3, width=16, test_every=5, param_lr=0.03)
    straight = train_insitu(InsituConfig(iters=12, **cfg), data=data)
    train_insitu(InsituConfig(iters=5, **cfg), data=data, out_dir=tmp_path / "run")
    resumed = train_insitu(InsituConfig(iters=12, **cfg), data=data, out_dir=tmp_path / "run", resume=True)
    for a, b in zip(straight.weights, resumed.weights):
        assert np.array_equal(a, b)
    assert resumed.energy_j == pytest.approx(straight.energy_j, rel=1e-12)
    rows = History.read(tmp_path / "run" / "history.csv").rows
    assert [r["iteration"] for r in rows] == list(range(1, 13)) and rows[-1]["energy_j"] > rows[4]["energy_j"]
    spec, weights, config, meta = load_insitu(tmp_path / "run")
    assert meta["iteration"] == 12 and config.iters == 12


def test_circuit_step_option(data):
    from simulators import SimulationError

    with pytest.raises(SimulationError, match="h=0"):
        InsituConfig(profile="ideal", h=0)
    a = train_insitu(InsituConfig(profile="ideal", dataset="synthetic", depth=3, width=16, iters=3, h=0.05), data=data)
    b = train_insitu(InsituConfig(profile="ideal", dataset="synthetic", depth=3, width=16, iters=3, h=0.2), data=data)
    assert not all(np.array_equal(x, y) for x, y in zip(a.weights, b.weights))  # the step changes the relaxation


def test_random_pulses_drive_soft_bounded_devices_to_their_symmetry_point():
    """Up (1 + a/2)(1 − w/w_max) equals down (1 − a/2)(1 + w/w_max) at w* = (a/2)·w_max."""
    rng = np.random.default_rng(3)
    w = np.zeros((8, 8))
    gamma = np.ones_like(w)
    asym = np.full(w.shape, 0.26)
    for k in range(3000):  # zero-mean random updates: only the device's asymmetry decides the drift
        pulsed_update(w, rng.standard_normal((1, 8)), rng.standard_normal((1, 8)), 0.02, 1.0, 31, 0.01, asym, 0.0,
                      True, gamma, 5, k << 12)
    assert np.mean(w) == pytest.approx(0.13, abs=0.01)
    spread = 0.26 + 0.3 * np.random.default_rng(4).standard_normal((8, 8))  # each device its own a_ij
    w, mean = np.zeros((8, 8)), np.zeros((8, 8))
    for k in range(6000):
        pulsed_update(w, rng.standard_normal((1, 8)), rng.standard_normal((1, 8)), 0.02, 1.0, 31, 0.01, spread, 0.0,
                      True, gamma, 6, k << 12)
        mean += w / 3000 if k >= 3000 else 0.0  # the time average over the random walk's fluctuations
    assert np.corrcoef(mean.ravel(), spread.ravel() / 2)[0, 1] > 0.9  # each settles at its own a_ij/2
    assert np.abs(mean - spread / 2).mean() < 0.03


def test_window_and_zero_shift_options(tmp_path, data):
    from simulators import SimulationError

    with pytest.raises(SimulationError, match="update_window=30 is invalid: must be <= n_steps"):
        InsituConfig(n_steps=20, update_window=30)
    with pytest.raises(SimulationError, match="zero_shift=1 is invalid"):
        InsituConfig(zero_shift=1)
    name = _device_only(tmp_path)
    cfg = dict(profile=name, dataset="synthetic", depth=3, width=16, iters=4, n_steps=12)
    plain = train_insitu(InsituConfig(**cfg), data=data)
    shifted = train_insitu(InsituConfig(zero_shift=True, **cfg), data=data)
    w_max, asym = shifted.w_max, load_profile(name).up_down_asym
    np.testing.assert_allclose(shifted.reference, 0.5 * asym * w_max, rtol=1e-15)
    for w, g, r in zip(shifted.weights, shifted.device_states, shifted.reference, strict=True):
        np.testing.assert_array_equal(w, g - r)
    assert np.all(plain.reference == 0)
    # the reference array is read with every MVM: twice the cell reads, the rest of the ledger alike
    assert shifted.counts.cell_reads == 2 * plain.counts.cell_reads
    assert shifted.counts.neuron_updates == plain.counts.neuron_updates
    windowed = train_insitu(InsituConfig(update_window=6, **cfg), data=data)
    accumulators = 2 * 2 * 16 + data.n_classes  # 2 hidden layers of 16, and the output errors
    assert windowed.counts.neuron_updates - plain.counts.neuron_updates == 4 * 64 * 6 * accumulators
    assert not all(np.array_equal(a, b) for a, b in zip(plain.weights, windowed.weights))


def test_resume_is_exact_with_window_and_zero_shift(tmp_path, data):
    name = _device_only(tmp_path)
    cfg = dict(profile=name, dataset="synthetic", depth=3, width=16, test_every=4, n_steps=10, update_window=5,
               zero_shift=True)
    straight = train_insitu(InsituConfig(iters=8, **cfg), data=data)
    train_insitu(InsituConfig(iters=4, **cfg), data=data, out_dir=tmp_path / "run")
    resumed = train_insitu(InsituConfig(iters=8, **cfg), data=data, out_dir=tmp_path / "run", resume=True)
    for a, b in zip(straight.device_states, resumed.device_states, strict=True):
        assert np.array_equal(a, b)
    _, weights, _, meta = load_insitu(tmp_path / "run")
    for a, b in zip(straight.weights, weights, strict=True):
        assert np.array_equal(a, b)
    np.testing.assert_array_equal(meta["reference"], straight.reference)


def test_cosine_schedule():
    from simulators import SimulationError
    from simulators.insitu import lr_factor

    assert [lr_factor("cosine", t, 4) for t in range(4)] == pytest.approx([1.0, (1 + 2**-0.5) / 2, 0.5,
                                                                           (1 - 2**-0.5) / 2])
    assert lr_factor("constant", 3, 4) == 1.0
    with pytest.raises(SimulationError, match="lr_schedule='step' is not one of: constant, cosine"):
        InsituConfig(lr_schedule="step")


def test_zero_shift_needs_a_symmetry_point(tmp_path, data):
    from simulators import SimulationError

    hard = load_profile("analog-rram-clocked").replace(soft_bounds=0)
    with pytest.raises(SimulationError, match="zero_shift needs soft-bounded devices"):
        train_insitu(InsituConfig(profile="ideal", dataset="synthetic", depth=3, width=16, iters=1, zero_shift=True),
                     data=data, profile=hard)
    symmetric = train_insitu(InsituConfig(profile="ideal", dataset="synthetic", depth=3, width=16, iters=1,
                                          zero_shift=True), data=data)
    assert np.all(symmetric.reference == 0)  # a symmetric device's symmetry point is 0


def test_a_cosine_run_resumes_exactly_and_keeps_its_length(tmp_path, data, monkeypatch, ctrl_c_after):
    from pchw.runlog import Interrupted, RunError

    name = _device_only(tmp_path)
    cfg = dict(profile=name, dataset="synthetic", depth=3, width=16, test_every=3, n_steps=8, lr_schedule="cosine")
    straight = train_insitu(InsituConfig(iters=6, **cfg), data=data)
    ctrl_c_after(3)
    with pytest.raises(Interrupted) as info:
        train_insitu(InsituConfig(iters=6, **cfg), data=data, out_dir=tmp_path / "run")
    assert info.value.iteration == 3
    monkeypatch.undo()
    resumed = train_insitu(InsituConfig(iters=6, **cfg), data=data, out_dir=tmp_path / "run", resume=True)
    for a, b in zip(straight.device_states, resumed.device_states, strict=True):
        assert np.array_equal(a, b)
    with pytest.raises(RunError, match="iters=9 differs"):
        train_insitu(InsituConfig(iters=9, **cfg), data=data, out_dir=tmp_path / "run", resume=True)
