"""CLI smoke tests and one-line errors for bad input."""

import json
import os
import subprocess
import sys
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


def test_missing_data_source_is_one_clear_line(tmp_path):
    code, text = run_cli("train", "--dataset", "mnist", "--iters", "1", "--quiet", "--device", "cpu")
    if code == 0:  # the real MNIST is installed; point at an empty data folder instead
        env = {**os.environ, "PCHW_DATA": str(tmp_path), "PCHW_CACHE": str(tmp_path / "cache")}
        proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", "--dataset", "mnist", "--iters",
                               "1", "--quiet"], capture_output=True, text=True, env=env, cwd=tmp_path)
        code, text = proc.returncode, proc.stderr
    assert code == 2
    assert len(text.strip().splitlines()) == 1 and "mnist" in text.lower()


def test_console_script_help_runs():
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", "--help"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0
    for option in ("--model", "--activity-lr", "--param-lr", "--n-steps", "--resume", "--device"):
        assert option in proc.stdout
