"""Bad input on the command line: one ``error:`` line, exit 2, never a traceback — a table of cases.

Each case names a command line (``{name}`` stands for a file or folder the ``world`` fixture made:
trained runs, damaged copies of them, results folders, a FIFO, ...) and a fragment its one line
must contain. The table is the hostile user's checklist of the hardening issue; add a row for
every new way to get it wrong.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cli  # noqa: E402
from experiments.framework import run_experiment  # noqa: E402

TOY = "module:tests.toy_experiment"
SYN = ["--dataset", "synthetic", "--depth", "3", "--width", "8", "--quiet", "--device", "cpu"]
SYN16 = [("16" if a == "8" else a) for a in SYN]  # the same network, 16 wide


def invoke(args: list[str], env: dict | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli.main, args, env=env)
    text = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        text += "".join(traceback.format_exception(result.exception))
    return result.exit_code, text


def _copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _flip_inside_weights(path: Path) -> None:
    """Change one byte inside the stored bytes of W_1 (where a silent change would go unnoticed)."""
    blob = bytearray(path.read_bytes())
    w_in = torch.load(path, weights_only=True)["model"]["w_in"].numpy().tobytes()
    at = bytes(blob).find(w_in)
    assert at > 0
    blob[at + len(w_in) // 2] ^= 0x5A
    path.write_bytes(bytes(blob))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad")
    w: dict[str, Path] = {"root": root}
    code, text = invoke(["train", *SYN, "--iters", "20", "--test-every", "10", "--out", str(root / "run")])
    assert code == 0, text
    code, text = invoke(["train", *SYN16, "--iters", "10", "--out", str(root / "run16")])
    assert code == 0, text
    code, text = invoke(["train", "--on", "ideal", *SYN, "--iters", "6", "--test-every", "3",
                         "--out", str(root / "insitu")])
    assert code == 0, text
    run, insitu = root / "run", root / "insitu"
    (_copy_run(run, root / "run_badjson") / "config.json").write_text("{not json")
    (_copy_run(run, root / "run_badhist") / "history.csv").write_text("iteration,train_loss\n1,banana\n")
    ckpt = _copy_run(run, root / "run_trunc") / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    (_copy_run(run, root / "run_empty") / "checkpoint.pt").write_bytes(b"")
    _flip_inside_weights(_copy_run(run, root / "run_flip") / "checkpoint.pt")
    torch.save({"format": "pchw-torch-checkpoint-1", "iteration": "many"},
               _copy_run(run, root / "run_crafted") / "checkpoint.pt")
    shutil.copy(root / "run16" / "checkpoint.pt", _copy_run(run, root / "run_other") / "checkpoint.pt")
    (root / "nockpt").mkdir()
    npz = _copy_run(insitu, root / "insitu_trunc") / "checkpoint.npz"
    npz.write_bytes(npz.read_bytes()[:300])
    npz = _copy_run(insitu, root / "insitu_flip") / "checkpoint.npz"
    with np.load(npz) as f:
        contents = {k: f[k] for k in f.files}
    contents["g0"] = contents["g0"] + 1e-3  # a consistent zip whose arrays changed after the digest was taken
    np.savez(npz, **contents)

    (root / "file").write_text("a plain file\n")
    os.mkfifo(root / "fifo")
    (root / "bad.toml").write_text('name = "bad"\nsubstrate = "analog-clocked"\ne_adc_j = { value = -1.0, '
                                   'source = "x" }\n')
    (root / "broken.toml").write_text("name = [unclosed\n")
    (root / "binary.toml").write_bytes(b"\xff\xfe\x00garbage")
    toy = root / "toy"
    run_experiment(TOY, out_dir=toy, show_progress=False)
    for name in ("toy_badcsv", "toy_badjson", "toy_other"):
        shutil.copytree(toy, root / name)
    with open(root / "toy_badcsv" / "runs.csv", "a") as f:
        f.write("zzz,1,2\n")
    (root / "toy_badjson" / "config.json").write_text("[1, 2")
    meta = json.loads((toy / "config.json").read_text())
    (root / "toy_other" / "config.json").write_text(json.dumps({**meta, "experiment": "tradeoff"}))
    return {k: str(v) for k, v in w.items()} | {p.name.replace(".", "_"): str(p) for p in root.iterdir()}


TRAIN = ["train", *SYN, "--iters", "2"]
RESUME = ["train", *SYN, "--iters", "40", "--test-every", "10", "--resume", "--out"]
INSITU = ["train", "--on", "ideal", *SYN, "--iters", "2"]
SIM = ["simulate", "--checkpoint", "{run}", "--samples", "5", "--quiet"]
ENERGY = ["energy", "--checkpoint", "{run}", "--profiles", "gpu-fp32", "--quiet"]
TOY_ENV = {"PCHW_EXPERIMENTS": "toy=tests.toy_experiment"}

CASES = [
    # ------------------------------------------------------------------ train: values
    ("depth-1", [*TRAIN, "--depth", "1"], None, "depth=1 is invalid"),
    ("depth-0", [*TRAIN, "--depth", "0"], None, "depth=0 is invalid"),
    ("depth-negative", [*TRAIN, "--depth", "-3"], None, "depth=-3 is invalid"),
    ("depth-word", [*TRAIN, "--depth", "two"], None, "'two' is not a valid integer"),
    ("width-0", [*TRAIN, "--width", "0"], None, "width=0 is invalid"),
    ("param-lr-negative", [*TRAIN, "--param-lr", "-0.1"], None, "param_lr=-0.1 is invalid"),
    ("param-lr-nan", [*TRAIN, "--param-lr", "nan"], None, "param_lr=nan is invalid"),
    ("activity-lr-0", [*TRAIN, "--activity-lr", "0"], None, "activity_lr=0.0 is invalid"),
    ("activity-lr-inf", [*TRAIN, "--activity-lr", "inf"], None, "activity_lr=inf is invalid"),
    ("batch-size-0", [*TRAIN, "--batch-size", "0"], None, "batch_size=0 is invalid"),
    ("iters-0", [*TRAIN, "--iters", "0"], None, "iters=0 is invalid"),
    ("iters-negative", [*TRAIN, "--iters", "-5"], None, "iters=-5 is invalid"),
    ("epochs-0", ["train", *SYN, "--epochs", "0"], None, "epochs=0.0 is invalid"),
    ("epochs-nan", ["train", *SYN, "--epochs", "nan"], None, "epochs=nan is invalid"),
    ("iters-and-epochs", [*TRAIN, "--epochs", "1"], None, "either iters or epochs"),
    ("n-steps-negative", [*TRAIN, "--n-steps", "-1"], None, "n_steps=-1 is invalid"),
    ("test-every-0", [*TRAIN, "--test-every", "0"], None, "test_every=0 is invalid"),
    ("n-train-0", [*TRAIN, "--n-train", "0"], None, "n_train=0 is invalid"),
    ("n-test-negative", [*TRAIN, "--n-test", "-1"], None, "n_test=-1 is invalid"),
    ("n-train-absurd", [*TRAIN, "--n-train", "99999999999"], None, "n_train=99999999999 is out of range"),
    ("dataset-unknown", [*TRAIN, "--dataset", "cifar"], None, "'cifar' is not one of"),
    ("dtype-unknown", [*TRAIN, "--dtype", "float16"], None, "'float16' is not one of"),
    ("device-unknown", [*TRAIN, "--device", "tpu"], None, "device='tpu' is invalid"),
    ("batch-larger-than-data", [*TRAIN, "--n-train", "10"], None, "larger than the 10 training samples"),
    # ------------------------------------------------------------------ train: folders and resume
    ("resume-without-out", [*TRAIN, "--resume"], None, "resume needs an output folder"),
    ("resume-no-checkpoint", [*RESUME, "{nockpt}"], None, "no checkpoint at"),
    ("out-under-a-file", [*TRAIN, "--out", "{file}/run"], None, "cannot create run folder"),
    ("out-is-a-file", [*TRAIN, "--out", "{file}"], None, "is a file"),
    ("out-is-a-fifo", [*TRAIN, "--out", "{fifo}"], None, "a file of that name is in the way"),
    ("seed-negative", [*TRAIN, "--seed", "-1"], None, "--seed"),
    ("out-under-dev-null", [*TRAIN, "--out", "/dev/null/x"], None, "cannot create run folder /dev/null/x"),
    ("out-under-proc", [*TRAIN, "--out", "/proc/pchw-test/run"], None, "cannot create run folder /proc/pchw-test"),
    ("out-holds-a-run", [*TRAIN, "--out", "{run}"], None, "already holds a run"),
    ("resume-config-not-json", [*RESUME, "{run_badjson}"], None, "is not valid JSON"),
    ("resume-history-garbage", [*RESUME, "{run_badhist}"], None, "train_loss='banana' is not a number"),
    ("resume-checkpoint-truncated", [*RESUME, "{run_trunc}"], None, "truncated or corrupt"),
    ("resume-checkpoint-empty", [*RESUME, "{run_empty}"], None, "truncated or corrupt"),
    ("resume-checkpoint-bytes-changed", [*RESUME, "{run_flip}"], None, "fails its integrity check"),
    ("resume-checkpoint-crafted", [*RESUME, "{run_crafted}"], None, "not a valid pchw training checkpoint"),
    ("resume-checkpoint-of-another-run", [*RESUME, "{run_other}"], None, "come from different runs"),
    ("resume-other-width", ["train", *SYN16, "--iters", "40", "--resume", "--out", "{run}"],
     None, "--resume: width=16 differs"),
    ("resume-fewer-iters", ["train", *SYN, "--iters", "10", "--resume", "--out", "{run}"], None,
     "has done 20 iterations, more than the 10"),
    # ------------------------------------------------------------------ in-situ training
    ("insitu-unknown-profile", ["train", "--on", "nope", *SYN, "--iters", "2"], None, "unknown profile 'nope'"),
    ("insitu-digital-profile", ["train", "--on", "gpu-fp32", *SYN, "--iters", "2"], None, "is digital"),
    ("insitu-sp-backprop", [*INSITU, "--model", "bp", "--batch-size", "0"], None, "batch_size"),
    ("insitu-option-without-on", [*TRAIN, "--update-window", "5"], None, "give --on PROFILE"),
    ("insitu-window-too-long", [*INSITU, "--n-steps", "10", "--update-window", "20"], None,
     "update_window=20 is invalid"),
    ("insitu-circuit-h-negative", [*INSITU, "--circuit-h", "-1"], None, "h=-1.0 is invalid"),
    ("insitu-lr-mult-0", [*INSITU, "--hidden-lr-mult", "0"], None, "hidden_lr_mult=0.0 is invalid"),
    ("insitu-schedule-unknown", [*INSITU, "--lr-schedule", "step"], None, "'step' is not one of"),
    ("insitu-checkpoint-truncated", ["train", "--on", "ideal", *SYN, "--iters", "12", "--resume", "--out",
                                     "{insitu_trunc}"], None, "truncated or corrupt"),
    ("insitu-checkpoint-changed", ["train", "--on", "ideal", *SYN, "--iters", "12", "--resume", "--out",
                                   "{insitu_flip}"], None, "fails its integrity check"),
    ("insitu-resume-fewer-iters", ["train", "--on", "ideal", *SYN, "--iters", "3", "--resume", "--out",
                                   "{insitu}"], None, "has done 6 iterations, more than the 3"),
    # ------------------------------------------------------------------ simulate
    ("simulate-missing-folder", ["simulate", "--checkpoint", "{root}/nowhere"], None, "does not exist"),
    ("simulate-no-checkpoint", ["simulate", "--checkpoint", "{nockpt}"], None, "no checkpoint at"),
    ("simulate-unknown-profile", [*SIM, "--profile", "nope"], None, "unknown profile 'nope'"),
    ("simulate-digital-profile", [*SIM, "--profile", "gpu-fp32"], None, "is digital"),
    ("simulate-dt-negative", [*SIM, "--dt-s", "-1"], None, "dt_s=-1.0"),
    ("simulate-tau-0", [*SIM, "--tau-s", "0"], None, "tau_s"),
    ("simulate-samples-0", [*SIM, "--samples", "0"], None, "n_test=0 is out of range"),
    ("simulate-samples-negative", [*SIM, "--samples", "-1"], None, "n_test=-1 is out of range"),
    ("simulate-n-steps-negative", [*SIM, "--n-steps", "-1"], None, "-1"),
    ("simulate-ff-steps-negative", [*SIM, "--ff-steps", "-1"], None, "-1"),
    ("simulate-seed-negative", [*SIM, "--seed", "-1"], None, "--seed"),
    ("simulate-spiking-without-brian2", [*SIM, "--spiking", "--n-steps", "5"], None, "--backend brian2"),
    ("simulate-spiking-no-pc-steps", [*SIM, "--backend", "brian2", "--spiking"], None, "--n-steps > 0"),
    ("simulate-json-under-dev-null", [*SIM, "--json", "/dev/null/x.json"], None, "cannot write /dev/null/x.json"),
    ("simulate-json-is-a-folder", [*SIM, "--json", "{nockpt}"], None, "is a directory"),
    ("simulate-toml-broken", [*SIM, "--profile", "{broken_toml}"], None, "not valid TOML"),
    ("simulate-toml-negative", [*SIM, "--profile", "{bad_toml}"], None, "e_adc_j=-1.0 must be >= 0"),
    ("simulate-checkpoint-changed", ["simulate", "--checkpoint", "{run_flip}", "--samples", "5"], None,
     "fails its integrity check"),
    ("simulate-checkpoint-of-another-run", ["simulate", "--checkpoint", "{run_other}", "--samples", "5"], None,
     "come from different runs"),
    ("simulate-insitu-truncated", ["simulate", "--checkpoint", "{insitu_trunc}", "--samples", "5"], None,
     "truncated or corrupt"),
    # ------------------------------------------------------------------ energy
    ("energy-batch-size-0", [*ENERGY, "--batch-size", "0"], None, "--batch-size"),
    ("energy-batch-size-negative", [*ENERGY, "--batch-size", "-2"], None, "--batch-size"),
    ("energy-n-steps-negative", [*ENERGY, "--n-steps", "-1"], None, "--n-steps"),
    ("energy-unknown-profile", ["energy", "--checkpoint", "{run}", "--profiles", "gpu-fp32,nope"], None,
     "unknown profile 'nope'"),
    ("energy-json-under-proc", [*ENERGY, "--json", "/proc/pchw-test.json"], None, "cannot write /proc/pchw-test.json"),
    ("energy-checkpoint-empty", ["energy", "--checkpoint", "{run_empty}"], None, "truncated or corrupt"),
    # ------------------------------------------------------------------ data and profiles
    ("pchw-data-missing-folder", ["data", "status"], {"PCHW_DATA": "/nonexistent/pchw-data"},
     "PCHW_DATA=/nonexistent/pchw-data is not a folder"),
    ("pchw-data-missing-train", ["train", "--dataset", "mnist", "--iters", "1", "--quiet"],
     {"PCHW_DATA": "/nonexistent/pchw-data"}, "is not a folder"),
    ("profile-show-unknown", ["profiles", "show", "tpu-v9"], None, "unknown profile 'tpu-v9'"),
    ("profile-validate-missing", ["profiles", "validate", "{root}/missing.toml"], None, "does not exist"),
    ("profile-validate-negative", ["profiles", "validate", "{bad_toml}"], None, "must be >= 0"),
    ("profile-validate-broken", ["profiles", "validate", "{broken_toml}"], None, "not valid TOML"),
    ("profile-validate-binary", ["profiles", "validate", "{binary_toml}"], None, "not valid TOML"),
    ("profile-validate-folder", ["profiles", "validate", "{nockpt}"], None, "is a directory"),
    # ------------------------------------------------------------------ run
    ("run-unknown", ["run", "nope"], None, "unknown experiment 'nope'"),
    ("run-unknown-module", ["run", "module:no.such.module"], None, "is not installed"),
    ("run-set-no-equals", ["run", TOY, "--set", "a"], None, "--set expects key=v1,v2"),
    ("run-set-no-key", ["run", TOY, "--set", "=1"], None, "--set expects key=v1,v2"),
    ("run-set-unknown-field", ["run", TOY, "--set", "c=1"], None, "unknown parameter 'c'"),
    ("run-set-not-an-int", ["run", TOY, "--set", "a=x"], None, "bad value 'x' for a"),
    ("run-set-nan", ["run", TOY, "--set", "b=nan", "--dry-run"], None, "bad value nan for b: must be a finite"),
    ("run-set-absurd-int", ["run", TOY, "--set", "a=99999999999999999999", "--dry-run"], None,
     "an integer this large is not a setting"),
    ("run-set-twice", ["run", TOY, "--set", "a=1", "--set", "a=2"], None, "given twice"),
    ("run-workers-0", ["run", TOY, "--workers", "0"], None, "--workers"),
    ("run-negative-depth", ["run", "tradeoff", "--set", "depth=-3", "--dry-run"], None,
     "bad value -3 for depth: must be an integer >= 2"),
    ("run-zero-samples", ["run", "hardware-sweep", "--set", "samples=0", "--dry-run"], None,
     "bad value 0 for samples"),
    ("run-adc-bits-0", ["run", "hardware-sweep", "--set", "adc_bits=0", "--dry-run"], None,
     "bad value 0 for adc_bits: must be an integer >= 1 and <= 32"),
    ("run-weight-bits-negative", ["run", "hardware-sweep", "--set", "weight_bits=-1", "--dry-run"], None,
     "bad value -1 for weight_bits"),
    ("run-epochs-inf", ["run", "break-even", "--set", "epochs=inf", "--dry-run"], None, "must be a finite"),
    ("run-unknown-dataset", ["run", "tradeoff", "--set", "dataset=cifar", "--dry-run"], None,
     "bad value 'cifar' for dataset"),
    ("run-unknown-knob", ["run", "break-even", "--set", "knob=e_nothing_j", "--dry-run"], None,
     "bad value 'e_nothing_j' for knob"),
    ("run-unknown-profile", ["run", "hardware-sweep", "--set", "profile=nope", "--dry-run"], None,
     "unknown profile 'nope'"),
    ("run-out-under-a-file", ["run", TOY, "--out", "{file}/r"], None, "cannot create results folder"),
    ("run-out-is-a-file", ["run", TOY, "--out", "{file}"], None, "is a file"),
    ("run-out-is-a-fifo", ["run", TOY, "--out", "{fifo}"], None, "exists and is not a folder"),
    ("run-out-under-dev-null", ["run", TOY, "--out", "/dev/null/x"], None, "cannot create results folder"),
    ("run-out-under-proc", ["run", TOY, "--out", "/proc/pchw-test"], None, "cannot create results folder"),
    ("run-root-under-a-file", ["run", TOY, "--results-root", "{file}/res"], None, "cannot create results folder"),
    ("run-dry-run-other-experiment", ["run", TOY, "--dry-run", "--out", "{toy_other}"], None,
     "holds results of experiment 'tradeoff', not 'toy'"),
    ("run-into-other-experiment", ["run", TOY, "--out", "{toy_other}"], None, "holds results of experiment"),
    ("run-malformed-runs-csv", ["run", TOY, "--out", "{toy_badcsv}"], None, "fewer cells than the header"),
    ("run-invalid-config-json", ["run", TOY, "--out", "{toy_badjson}"], None, "is not valid JSON"),
    ("run-bad-plugin-variable", ["run", "x"], {"PCHW_EXPERIMENTS": "oops"}, "expected 'name=package.module'"),
    # ------------------------------------------------------------------ report
    ("report-not-results", ["report", "{nockpt}"], None, "is not a results folder"),
    ("report-malformed-runs-csv", ["report", "{toy_badcsv}"], TOY_ENV, "fewer cells than the header"),
    ("report-invalid-config-json", ["report", "{toy_badjson}"], TOY_ENV, "is not valid JSON"),
    ("report-unregistered", ["report", "{toy}"], None, "is not registered"),
    ("report-unknown-module", ["report", "{toy}", "--module", "no.such.module"], None, "is not installed"),
    # ------------------------------------------------------------------ demo
    ("demo-depth-1", ["demo", "--depth", "1", "--out", "{root}/demo1", "--quiet"], None,
     "bad value 1 for depth"),
    ("demo-samples-0", ["demo", "--samples", "0", "--out", "{root}/demo2", "--quiet"], None,
     "bad value 0 for samples"),
    ("demo-workers-0", ["demo", "--workers", "0", "--quiet"], None, "--workers"),
    ("demo-into-an-experiment-folder", ["demo", "--dataset", "synthetic", "--out", "{toy}", "--quiet"], None,
     "holds results of experiment 'toy'; choose another --out"),
    ("demo-out-under-dev-null", ["demo", "--dataset", "synthetic", "--out", "/dev/null/demo", "--quiet"], None,
     "cannot create results folder"),
]


def test_the_table_holds_at_least_sixty_distinct_cases():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("name,args,env,fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_error_line_and_exit_2(world, name, args, env, fragment):
    code, text = invoke([a.format(**world) for a in args], env=env)
    lines = [line for line in text.splitlines() if line.strip()]
    assert "Traceback" not in text, text
    assert code == 2, text
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    assert fragment in lines[0], text
