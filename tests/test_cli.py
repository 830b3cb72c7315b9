"""CLI smoke tests and one-line errors for bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli
from pchw.runlog import History

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args):
    result = CliRunner().invoke(cli.main, list(args))
    return result.exit_code, result.output


def test_train_writes_the_run_folder_and_prints_accuracy(tmp_path):
    out = tmp_path / "run"
    code, text = run_cli("train", "--dataset", "synthetic", "--depth", "4", "--width", "32", "--iters", "40",
                         "--test-every", "20", "--param-lr", "0.05", "--device", "cpu", "--quiet",
                         "--out", str(out))
    assert code == 0, text
    assert "test accuracy" in text and "after 40 iterations" in text
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["depth"] == 4 and config["config"]["model"] == "mupc"
    assert "torch" in config["versions"]
    rows = History.read(out / "history.csv").rows
    assert len(rows) == 40 and rows[19]["test_acc"] is not None and rows[18]["test_acc"] is None
    acc = float(text.split("test accuracy ")[1].split("%")[0])
    assert acc == pytest.approx(100 * rows[-1]["test_acc"], abs=0.006)
    code, text = run_cli("train", "--dataset", "synthetic", "--depth", "4", "--width", "32", "--iters", "60",
                         "--test-every", "20", "--param-lr", "0.05", "--device", "cpu", "--quiet",
                         "--out", str(out), "--resume")
    assert code == 0, text
    assert len(History.read(out / "history.csv").rows) == 60


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--depth", "1"], "depth=1 is invalid"),
        (["--param-lr", "-0.1"], "param_lr=-0.1 is invalid"),
        (["--activity-lr", "0"], "activity_lr=0.0 is invalid"),
        (["--dataset", "cifar"], "'cifar' is not one of"),
        (["--depth", "two"], "'two' is not a valid integer"),
        (["--resume"], "resume needs an output folder"),
        (["--device", "cuda:7"], "cuda"),
    ],
)
def test_bad_values_give_one_line_and_exit_2(args, fragment):
    if args == ["--device", "cuda:7"]:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device exists")
    code, text = run_cli("train", "--dataset", "synthetic", "--iters", "2", "--quiet", *args)
    assert code == 2, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    assert fragment in lines[0]


def test_data_status_lists_every_dataset():
    code, text = run_cli("data", "status")
    assert code == 0
    names = [line.split()[0] for line in text.splitlines()]
    assert names == ["mnist", "fashion-mnist", "synthetic"]
    assert text.splitlines()[2].split()[1] == "yes"


@pytest.mark.slow
def test_missing_data_source_is_one_clear_line(tmp_path):
    code, text = run_cli("train", "--dataset", "mnist", "--iters", "1", "--quiet", "--device", "cpu")
    if code == 0:  # the real MNIST is installed; point at an empty data folder instead
        env = {**os.environ, "PCHW_DATA": str(tmp_path), "PCHW_CACHE": str(tmp_path / "cache")}
        proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", "--dataset", "mnist", "--iters",
                               "1", "--quiet"], capture_output=True, text=True, env=env, cwd=tmp_path)
        code, text = proc.returncode, proc.stderr
    assert code == 2
    assert len(text.strip().splitlines()) == 1 and "mnist" in text.lower()


@pytest.mark.slow
def test_ctrl_c_prints_where_training_stopped_and_exits_130(tmp_path):
    """Click turns Ctrl-C into Abort before pchw's handler; the loop's own line must still be printed."""
    out = tmp_path / "run"
    args = [sys.executable, str(ROOT / "cli.py"), "train", "--dataset", "synthetic", "--depth", "3", "--width", "8",
            "--iters", "1000000", "--test-every", "5", "--device", "cpu", "--quiet", "--out", str(out)]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (out / "checkpoint.pt").exists():  # an event, not a clock: training has started once it is written
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("interrupted at iteration ") and f"checkpoint saved to {out / 'checkpoint.pt'}" in line
    assert "Aborted" not in stderr and "aborted" not in stderr and "Traceback" not in stderr
    done = int(line.split()[3].rstrip(";"))
    assert History.read(out / "history.csv").rows[-1]["iteration"] == done
    code, text = run_cli("train", "--dataset", "synthetic", "--depth", "3", "--width", "8", "--iters", str(done + 5),
                         "--test-every", "5", "--device", "cpu", "--quiet", "--out", str(out), "--resume")
    assert code == 0 and f"after {done + 5} iterations" in text, text


def test_console_script_help_runs():
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", "--help"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0
    for option in ("--model", "--activity-lr", "--param-lr", "--n-steps", "--resume", "--device"):
        assert option in proc.stdout


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "syn"
    code, text = run_cli("train", "--dataset", "synthetic", "--depth", "4", "--width", "16", "--iters", "60",
                         "--param-lr", "0.05", "--device", "cpu", "--quiet", "--out", str(out))
    assert code == 0, text
    return out


def test_profiles_commands(tmp_path):
    code, text = run_cli("profiles", "list")
    from pchw.profiles import list_chips, list_profiles

    lines = text.splitlines()  # a title line, then one line per preset, a title line, one per chip
    assert code == 0 and len(lines) == 2 + len(list_profiles()) + len(list_chips()) and "analog-rram-clocked" in text
    assert lines[0] == "presets:" and lines[1 + len(list_profiles())].startswith("chips")
    code, toml_text = run_cli("profiles", "show", "gpu-fp32")
    assert code == 0 and "e_mac_j = { value = 2.1e-11" in toml_text
    mine = tmp_path / "mine.toml"
    mine.write_text(toml_text.replace('name = "gpu-fp32"', 'name = "mine"'))
    code, text = run_cli("profiles", "validate", str(mine))
    assert code == 0 and text.startswith("ok: mine")
    mine.write_text(toml_text.replace("e_mac_j = { value = 2.1e-11", "e_mac_j = { value = -2.1e-11"))
    code, text = run_cli("profiles", "validate", str(mine))
    assert code == 2 and text.count("\n") == 1 and "e_mac_j" in text and ">= 0" in text
    code, text = run_cli("profiles", "show", "tpu-v9")
    assert code == 2 and "unknown profile 'tpu-v9'" in text


def test_simulate_command_matches_software_on_ideal(trained_run, tmp_path):
    out = tmp_path / "sim.json"
    code, text = run_cli("simulate", "--checkpoint", str(trained_run), "--profile", "ideal", "--samples", "200",
                         "--quiet", "--json", str(out))
    assert code == 0, text
    result = json.loads(out.read_text())
    assert result["n_samples"] == 200 and result["agreement"] == 1.0
    assert result["test_acc"] == result["software_test_acc"]
    assert f"{100 * result['test_acc']:6.2f}%" in text
    code, text = run_cli("simulate", "--checkpoint", str(trained_run), "--profile", "analog-rram-clocked",
                         "--samples", "50", "--quiet")
    assert code == 0 and "energy per inference" in text and "dac" in text
    code, text = run_cli("simulate", "--checkpoint", str(trained_run), "--profile", "gpu-fp32", "--quiet")
    assert code == 2 and "digital" in text
    code, text = run_cli("simulate", "--checkpoint", str(trained_run), "--dt-s", "-1", "--samples", "5", "--quiet")
    assert code == 2 and "dt_s=-1.0" in text


def test_energy_command_prices_every_preset(trained_run, tmp_path):
    out = tmp_path / "energy.json"
    code, text = run_cli("energy", "--checkpoint", str(trained_run), "--json", str(out))
    assert code == 0, text
    from pchw.profiles import list_profiles

    n = len([p for p in list_profiles() if p != "ideal"])
    assert "price profiles" in text and f"{n}/{n}" in text  # a progress bar over every preset
    rows = json.loads(out.read_text())
    seen = {(r["profile"], r["algorithm"], r["phase"]) for r in rows}
    for name in ("gpu-fp32", "gpu-bf16", "asic-int8-7nm", "analog-rram-clocked", "analog-cap-ota"):
        for algorithm in ("bp", "pc"):
            assert (name, algorithm, "train") in seen and (name, algorithm, "inference") in seen
    assert ("neuromorphic-loihi", "pc", "train") in seen and ("analog-rram-continuous", "pc", "inference") in seen
    for r in rows:
        assert r["energy_j"] == pytest.approx(sum(r["components_j"].values()))
        assert r["energy_j"] > 0
    gpu = {(r["profile"], r["algorithm"], r["phase"]): r["energy_j"] for r in rows}
    assert gpu[("gpu-fp32", "pc", "train")] > gpu[("gpu-fp32", "bp", "train")]  # T inference steps cost MACs
    assert gpu[("gpu-fp32", "bp", "train")] / gpu[("gpu-bf16", "bp", "train")] > 10


def test_train_on_a_circuit_profile_and_deploy_the_result(tmp_path):
    out = tmp_path / "insitu"
    code, text = run_cli("train", "--on", "ideal", "--dataset", "synthetic", "--depth", "3", "--width", "16",
                         "--iters", "30", "--test-every", "10", "--quiet", "--out", str(out))
    assert code == 0, text
    assert "in situ on ideal" in text and "energy of the whole run" in text
    assert (out / "checkpoint.npz").exists() and len(History.read(out / "history.csv").rows) == 30
    code, text = run_cli("simulate", "--checkpoint", str(out), "--profile", "ideal", "--samples", "50", "--quiet")
    assert code == 0 and "circuit test accuracy" in text, text
    code, text = run_cli("train", "--on", "ideal", "--model", "bp", "--dataset", "synthetic", "--depth", "3",
                         "--width", "16", "--iters", "4", "--quiet")
    assert code == 0 and "in situ on ideal: bp" in text and "bp-sgd" in text, text
    code, text = run_cli("train", "--on", "ideal", "--model", "bp", "--dataset", "synthetic", "--n-steps", "20",
                         "--iters", "2")
    assert code == 2 and "backprop has none" in text
    code, text = run_cli("train", "--on", "gpu-fp32", "--dataset", "synthetic", "--iters", "2", "--quiet")
    assert code == 2 and "digital" in text


def test_noisy_device_options_of_in_situ_training(tmp_path):
    out = tmp_path / "windowed"
    code, text = run_cli("train", "--on", "analog-rram-clocked", "--dataset", "synthetic", "--depth", "3", "--width",
                         "16", "--iters", "6", "--n-steps", "24", "--update-window", "16", "--zero-shift",
                         "--lr-schedule", "cosine", "--hidden-lr-mult", "30", "--quiet", "--out", str(out))
    assert code == 0, text
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["update_window"] == 16 and config["zero_shift"] is True and config["lr_schedule"] == "cosine"
    code, text = run_cli("train", "--dataset", "synthetic", "--update-window", "5")
    assert code == 2 and "give --on PROFILE" in text
    code, text = run_cli("train", "--on", "ideal", "--dataset", "synthetic", "--n-steps", "10", "--update-window",
                         "20", "--iters", "1")
    assert code == 2 and "update_window=20 is invalid: must be <= n_steps (10)" in text


@pytest.mark.slow
def test_simulate_with_brian2_rate_and_spiking(trained_run):
    pytest.importorskip("brian2")
    code, text = run_cli("simulate", "--checkpoint", str(trained_run), "--profile", "neuromorphic-loihi", "--samples",
                         "20", "--backend", "brian2", "--quiet")
    assert code == 0, text
    assert "same prediction on 100.00%" in text
    code, text = run_cli("simulate", "--checkpoint", str(trained_run), "--profile", "neuromorphic-loihi", "--samples",
                         "10", "--backend", "brian2", "--spiking", "--n-steps", "5", "--spike-duration-s", "0.02",
                         "--quiet")
    assert code == 0, text
    assert "synaptic" in text
    code, text = run_cli("simulate", "--checkpoint", str(trained_run), "--spiking", "--n-steps", "5", "--quiet")
    assert code == 2 and "--backend brian2" in text


def test_every_command_is_registered():
    assert set(cli.main.commands) == {"train", "demo", "data", "profiles", "simulate", "energy", "list", "run",
                                      "report", "validate"}
    assert set(cli.main.commands["profiles"].commands) == {"list", "show", "validate"}
