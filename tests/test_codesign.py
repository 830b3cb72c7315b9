"""The co-design study: search spaces, trials with pruning, the Optuna study in its file, fronts and reports."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments import codesign
from experiments.codesign_report import describe, headline, si
from experiments.codesign_trial import Curve, SnapshotPruner, latency_per_example_s
from experiments.framework.runner import run_experiment
from experiments.search_space import SearchSpaceError, default_space_path, load_space
from pchw.profiles import load_profile
from simulators.insitu import InsituConfig

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
PC_SPACE = """algorithm = "pc"
[knobs]
adc_bits = { low = 4, high = 8 }
n_steps = { low = 10, high = 60, log = true }
param_lr = { low = 0.01, high = 0.1, log = true }
"""
BP_SPACE = """algorithm = "bp"
[knobs]
dac_bits = { low = 4, high = 8 }
param_lr = { low = 0.003, high = 0.05, log = true }
"""


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PCHW_CACHE", str(tmp_path / "cache"))


def tiny(tmp_path, algorithm="pc", trials=6, **extra) -> dict:
    """``--set`` overrides of a study small enough for a test: a synthetic task, 512 examples per trial."""
    (tmp_path / "pc.toml").write_text(PC_SPACE)
    (tmp_path / "bp.toml").write_text(BP_SPACE)
    settings = {"algorithm": algorithm, "dataset": "synthetic", "depth": 3, "width": 16, "n_train": 1024,
                "n_test": 256, "final_n_test": 256, "fidelity": 512, "trials": trials, "startup_trials": 3,
                "pruner_startup": 2, "final_max": 2, "epochs": 0.5, "pc_space": tmp_path / "pc.toml",
                "bp_space": tmp_path / "bp.toml", **extra}
    return {k: str(v).split(",") if k == "algorithm" else [str(v)] for k, v in settings.items()}


def rows_of(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def finished_trials(out: Path, name: str) -> dict:
    """{number: (state, params, values)} of the trials that ended on their own, read from study.db."""
    import optuna

    study = optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")
    lost = {t.number for t in study.trials if t.user_attrs.get("interrupted")}
    return {t.number: (t.state.name, t.params, t.values) for t in study.trials
            if t.state.name in ("COMPLETE", "PRUNED") or (t.state.name == "FAIL" and t.number not in lost)}


# ---------------------------------------------------------------------------------------- search spaces
def test_the_shipped_search_spaces_load():
    pc = load_space(default_space_path("pc"), algorithm="pc")
    bp = load_space(default_space_path("bp"), algorithm="bp")
    assert {"adc_bits", "n_steps", "update_window_frac", "h", "zero_shift", "batch_size"} <= set(pc.names)
    assert "n_steps" not in bp.names and {"adc_bits", "param_lr", "lr_schedule"} <= set(bp.names)
    kinds = {k.name: (k.target, k.kind) for k in pc.knobs}
    assert kinds["adc_bits"] == ("profile", int) and kinds["zero_shift"] == ("recipe", bool)
    assert pc.distributions()["n_steps"].log and pc.distributions()["batch_size"].choices == (64, 128)


@pytest.mark.parametrize("text, fragment", [
    ('algorithm = "pc"\n[knobs]\nfoo = { low = 1, high = 2 }', "knobs.foo: unknown knob"),
    ('algorithm = "pc"\n[knobs]\nadc_bits = { low = 8, high = 4 }', "low=8 must be < high=4"),
    ('algorithm = "pc"\n[knobs]\nadc_bits = { low = 4.5, high = 8 }', "low=4.5 must be an integer"),
    ('algorithm = "pc"\n[knobs]\nadc_bits = { low = 4, high = 40 }', "adc_bits=40 must be an integer from 1 to 32"),
    ('algorithm = "pc"\n[knobs]\nparam_lr = { low = 0.0, high = 0.1, log = true }', "log = true needs low > 0"),
    ('algorithm = "pc"\n[knobs]\nparam_lr = { low = 0.01, high = 0.1, scale = 2 }', "unknown key 'scale'"),
    ('algorithm = "pc"\n[knobs]\nlr_schedule = { choices = [] }', "choices must be a non-empty list"),
    ('algorithm = "pc"\n[knobs]\nlr_schedule = { choices = ["cosine", "step"] }', "lr_schedule='step' is not one of"),
    ('algorithm = "pc"\n[knobs]\nzero_shift = { choices = [1, 0] }', "choice=1 must be true or false"),
    ('algorithm = "pc"\n[knobs]\nlr_schedule = { low = 1, high = 2 }', "takes choices"),
    ('algorithm = "pc"\n[knobs]\nupdate_window_frac = { low = 0.5, high = 1.5 }', "must lie in (0, 1]"),
    ('algorithm = "pc"\n[knobs]\nn_steps = { low = 10, high = 50 }\nupdate_window = { low = 1, high = 9 }',
     "search update_window_frac instead"),
    ('algorithm = "bp"\n[knobs]\nn_steps = { low = 10, high = 50 }', "backprop has none (algorithm bp)"),
    ('algorithm = "bp"\n[knobs]\nadc_bits = { low = 4, high = 8 }', "this study trains 'pc'"),
    ('algorithm = "pc"\n[knobs]', "needs a [knobs] table"),
    ('algorithm = "pc"\nknobs = 3\nextra = 1', "unknown key 'extra'"),
    ('algorithm = "pc"\n[knobs\n', "not valid TOML"),
])
def test_search_space_errors_are_one_line(tmp_path, text, fragment):
    path = tmp_path / "space.toml"
    path.write_text(text)
    algorithm = "bp" if fragment.endswith("(algorithm bp)") else "pc"
    with pytest.raises(SearchSpaceError) as err:
        load_space(path, algorithm=algorithm)
    message = str(err.value)
    assert fragment in message and "\n" not in message and str(path) in message


def test_a_design_applies_its_knobs_and_converters_cost_what_their_bits_do(tmp_path):
    space_path = tmp_path / "s.toml"
    space_path.write_text('algorithm = "pc"\n[knobs]\nadc_bits = { low = 4, high = 8 }'
                          '\ndac_bits = { low = 4, high = 8 }\nn_steps = { low = 10, high = 800 }'
                          '\nupdate_window_frac = { low = 0.5, high = 1.0 }'
                          '\nzero_shift = { choices = [true, false] }')
    space = load_space(space_path, algorithm="pc")
    base = load_profile("analog-rram-clocked")
    chip, run = space.design({"adc_bits": 6, "dac_bits": 4, "n_steps": 200, "update_window_frac": 0.75,
                              "zero_shift": False}, profile=base, base=InsituConfig())
    assert (chip.adc_bits, chip.dac_bits, chip.read_noise_frac) == (6, 4, base.read_noise_frac)
    assert chip.e_adc_j == pytest.approx(base.e_adc_j / 4) and chip.e_dac_j == pytest.approx(base.e_dac_j / 2)
    assert (run.n_steps, run.update_window, run.zero_shift) == (200, 150, False)
    assert "adc_bits=6" in chip.name and "co-design" in chip.sources["e_adc_j"]
    same, _ = space.design({"adc_bits": 8, "dac_bits": 8, "n_steps": 200, "update_window_frac": 1.0,
                            "zero_shift": True}, profile=base, base=InsituConfig())
    assert (same.e_adc_j, same.e_dac_j) == (base.e_adc_j, base.e_dac_j)  # at the cited resolution, the cited price
    assert space.values_of(base, InsituConfig().resolved(base)) == {
        "adc_bits": 8, "dac_bits": 8, "n_steps": 420, "update_window_frac": 400 / 420, "zero_shift": True}


# ------------------------------------------------------------------------------------------- a trial
def test_training_reports_every_evaluation_and_a_callback_can_stop_it():
    from pchw.data import load_dataset
    from simulators.insitu import train_insitu

    data = load_dataset("synthetic", n_train=512, n_test=128)
    config = InsituConfig(profile="ideal", dataset="synthetic", depth=3, width=16, iters=7, test_every=3)
    seen = []
    result = train_insitu(config, data=data, on_evaluation=seen.append)
    assert [r["iteration"] for r in seen] == [3, 6, 7] and seen[-1]["test_acc"] == result.test_acc
    assert all(r["energy_j"] >= 0 and "inference_energy_j" in r for r in seen)

    class Stop(Exception):
        pass

    def stop_at_six(row):
        if row["iteration"] == 6:
            raise Stop

    with pytest.raises(Stop):
        train_insitu(config, data=data, on_evaluation=stop_at_six)


def test_the_pruner_stops_a_trial_below_the_median_of_the_finished_ones():
    history = tuple(Curve(state="complete", accuracy={1: a, 2: a + 0.1}) for a in (0.5, 0.6, 0.7))
    assert SnapshotPruner("median", startup=2, history=history).should_stop(1, 0.55)
    assert not SnapshotPruner("median", startup=2, history=history).should_stop(1, 0.65)
    assert not SnapshotPruner("median", startup=4, history=history).should_stop(1, 0.1)  # too few finished yet
    assert not SnapshotPruner("none", startup=0, history=history).should_stop(1, 0.0)
    halving = SnapshotPruner("successive-halving", startup=0, history=history)
    assert not halving.should_stop(1, 0.9) and any(k.startswith("completed_rung") for k in halving.attrs())


def test_latency_is_the_sweep_plus_the_relaxation_or_the_backward_sweep():
    from pchw.spec import NetworkSpec

    spec = NetworkSpec(input_dim=20, width=16, depth=4, output_dim=4)
    p = load_profile("analog-rram-clocked")
    assert latency_per_example_s(spec, p, algorithm="pc", n_steps=100) == pytest.approx((4 + 100) * p.dt_s)
    assert latency_per_example_s(spec, p, algorithm="bp", n_steps=0) == pytest.approx((4 + 3) * p.dt_s)


def test_the_most_accurate_front_designs_are_re_run():
    class T:
        def __init__(self, acc, joules):
            self.values = [acc, joules]

    front = [T(0.1, 1e-7), T(0.6, 5e-7), T(0.8, 1e-6), T(0.85, 3e-6)]
    assert codesign.most_accurate(front, 2) == front[2:] and codesign.most_accurate(front, 9) == front


def test_the_full_fidelity_runs_are_the_front_designs_and_the_default_recipe(tmp_path):
    from experiments.study import make_sampler, open_study

    (tmp_path / "pc.toml").write_text(PC_SPACE)
    space = load_space(tmp_path / "pc.toml", algorithm="pc")
    study = open_study(tmp_path, "s", knobs=space.names, sampler=make_sampler("random", seed=0, startup=1))
    designs = [({"adc_bits": 8, "n_steps": 40, "param_lr": 0.03}, [0.9, 3e-6], "default recipe"),
               ({"adc_bits": 6, "n_steps": 20, "param_lr": 0.05}, [0.8, 1e-6], None),
               ({"adc_bits": 7, "n_steps": 30, "param_lr": 0.05}, [0.7, 2e-6], None)]  # dominated by the second
    for params, values, origin in designs:
        study.enqueue_trial(params, user_attrs={"origin": origin} if origin else {})
        study.tell(study.ask(space.distributions()), values)
    config = codesign.Config(dataset="synthetic", depth=3, width=16, epochs=0.5, final_n_test=64, device="cpu")
    tasks = codesign.full_tasks(tmp_path, config, space, study)
    assert [(role, None if t is None else t.number) for role, t, _ in tasks] == [("reference", None), ("front", 1)]
    reference, design = tasks[0][2].config, tasks[1][2].config
    assert reference.n_steps is None and (reference.epochs, reference.n_test, reference.device) == (0.5, 64, "cpu")
    assert (design.n_steps, design.param_lr) == (20, 0.05) and design.profile.endswith("pc-analog-rram-clocked-t1.toml")
    assert load_profile(design.profile).adc_bits == 6  # the design's chip, written where the run cache can key it
    no_reference = codesign.full_tasks(tmp_path, codesign.Config(reference=False), space, study)
    assert [t.number for _, t, _ in no_reference] == [1, 0]  # the front by energy, the default recipe included


def test_the_headline_names_the_cheapest_design_reaching_the_target_and_the_ratio():
    def row(study, role, trial, acc, joules, recipe="r"):
        return {"study": study, "algorithm": study[:2], "profile": "chip", "role": role, "trial": trial,
                "status": "ok", "test_acc": acc, "n_test": 1000, "test_acc_ci_low": acc - 0.02,
                "test_acc_ci_high": acc + 0.02, "energy_per_example_j": joules, "recipe": recipe, "on_front": True}

    rows = [row("pc:chip", "reference", None, 0.91, 2.7e-6, "pc-window"), row("pc:chip", "front", 4, 0.905, 1e-6),
            row("pc:chip", "front", 7, 0.85, 1e-7), row("bp:chip", "front", 2, 0.92, 2e-8)]
    [sentence] = headline(rows, 0.9)
    assert "μPC's is design 4, 90.5%" in sentence and si(1e-6, "J") == "1 µJ" and "2.7× cheaper than" in sentence
    assert "BP's is design 2" in sentence and "μPC costs 50× more" in sentence
    [none] = headline([r for r in rows if r["study"] == "pc:chip"], 0.95)
    assert "no μPC design reached 95% (best 91.0%" in none
    assert "1000 test images" in describe(rows, target_acc=0.9)["codesign_fronts.png"]


# ----------------------------------------------------------------------------------------- the study
def test_a_tiny_study_finishes_its_front_is_a_true_front_and_the_report_is_written(tmp_path):
    out = tmp_path / "study"
    s = run_experiment("codesign", overrides=tiny(tmp_path, "pc,bp", trials=8), out_dir=out, show_progress=False)
    assert s.n_done == 16 and s.report == out / "report.md"
    trials = rows_of(out / "trials.csv")
    assert len(trials) == 16 and all(r["state"] in ("complete", "pruned", "failed") for r in trials)
    assert {r["state"] for r in trials} >= {"complete", "pruned"}
    for r in trials:
        if r["state"] != "failed":
            assert float(r["test_acc_ci_low"]) <= float(r["test_acc"]) <= float(r["test_acc_ci_high"])
            assert float(r["energy_per_example_j"]) > 0 and int(r["examples"]) <= 512
    front = rows_of(out / "front.csv")
    assert {r["role"] for r in front} == {"reference", "front"} and {r["study"] for r in front} == {
        "pc:analog-rram-clocked", "bp:analog-rram-clocked"}
    for study in ("pc", "bp"):
        mine = [r for r in front if r["study"].startswith(study) and r["status"] == "ok"]
        assert all(int(r["examples"]) == 512 for r in mine)  # full fidelity: 0.5 epoch of 1024 examples
        points = [(float(r["energy_per_example_j"]), float(r["test_acc"]), r["on_front"] == "True") for r in mine]
        for e, a, on in points:
            dominated = any(e2 <= e and a2 >= a and (e2 < e or a2 > a) for e2, a2, _ in points)
            assert on != dominated  # on the front exactly when no other run beats it on both
        searched = [r for r in trials if r["study"].startswith(study) and r["state"] == "complete"]
        for r in (r for r in searched if r["search_front"] == "True"):
            e, a = float(r["energy_per_example_j"]), float(r["test_acc"])
            assert not any(float(o["energy_per_example_j"]) <= e and float(o["test_acc"]) >= a and o is not r
                           and (float(o["energy_per_example_j"]) < e or float(o["test_acc"]) > a) for o in searched)
    for name in ("codesign_fronts.png",):
        assert (out / "figures" / name).read_bytes().startswith(PNG)
    report = (out / "report.md").read_text()
    assert "cheapest measured design reaching 90%" in report and "| trial " in report
    assert "default recipe" in report and (out / "report.html").is_file()


def test_a_seeded_study_is_reproducible(tmp_path):
    keep = ("study", "trial", "state", "knob_adc_bits", "knob_n_steps", "knob_param_lr", "test_acc",
            "energy_per_example_j", "accuracy_at_evaluations")
    runs = []
    for name in ("a", "b"):
        run_experiment("codesign", overrides=tiny(tmp_path, reference="false"), out_dir=tmp_path / name,
                       show_progress=False)
        runs.append([{k: r[k] for k in keep} for r in rows_of(tmp_path / name / "trials.csv")])
    assert runs[0] == runs[1] and len(runs[0]) == 6
    other = tiny(tmp_path, reference="false", seed=1)
    run_experiment("codesign", overrides=other, out_dir=tmp_path / "c", show_progress=False)
    assert [r["knob_param_lr"] for r in rows_of(tmp_path / "c" / "trials.csv")] != [r["knob_param_lr"] for r in runs[0]]


def test_a_killed_study_requeues_its_running_trials_and_keeps_the_finished_ones(tmp_path):
    from experiments.search_space import load_space
    from experiments.study import finished, make_sampler, open_study

    (tmp_path / "pc.toml").write_text(PC_SPACE)
    space = load_space(tmp_path / "pc.toml", algorithm="pc")
    def reopen():
        return open_study(tmp_path, "s", knobs=space.names, sampler=make_sampler("random", seed=0, startup=1))

    study = reopen()
    done = study.ask(space.distributions())
    study.tell(done, [0.5, 1e-6])
    lost = study.ask(space.distributions())  # the process dies while this one trains
    again = reopen()
    states = {t.number: t.state.name for t in again.trials}
    assert states == {0: "COMPLETE", 1: "FAIL", 2: "WAITING"} and finished(again) == 1
    assert again.trials[1].user_attrs["interrupted"] and again.trials[0].values == [0.5, 1e-6]
    retry = again.ask(space.distributions())
    assert retry.params == lost.params and retry.user_attrs["retry_of"] == 1
    again.tell(retry, [0.6, 2e-6])
    half = again.ask()  # the process dies while the sampler draws this one's knobs
    half.suggest_float("param_lr", 0.01, 0.1, log=True)
    third = reopen()
    assert [t.state.name for t in third.trials][3:] == ["FAIL"]  # no retry of a half-drawn design
    assert finished(third) == 2


def _start(out: Path, tmp_path: Path) -> subprocess.Popen:
    args = [f"{k}={v[0]}" for k, v in tiny(tmp_path, trials=12, reference="false").items()]
    cmd = [sys.executable, str(ROOT / "cli.py"), "run", "codesign", "--out", str(out), "--quiet"]
    for a in args:
        cmd += ["--set", a]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_resume_after_sigkill_continues_the_same_study(tmp_path):
    out, name = tmp_path / "r", "pc:analog-rram-clocked"
    proc = _start(out, tmp_path)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        rows = rows_of(out / "trials.csv") if (out / "trials.csv").exists() else []
        if sum(r["state"] in ("complete", "pruned") for r in rows) >= 3:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    before = finished_trials(out, name)
    assert 3 <= len(before) < 12

    proc = _start(out, tmp_path)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    after = finished_trials(out, name)
    assert len(after) == 12 and f"{12 - len(before)} finished now, {len(before)} before" in stdout
    assert {n: after[n] for n in before} == before  # finished trials kept exactly, none repeated
    rows = rows_of(out / "trials.csv")
    knobs = ("knob_adc_bits", "knob_n_steps", "knob_param_lr")
    for lost in (r for r in rows if r["state"] == "interrupted" and all(r[k] for k in knobs)):
        [retry] = [r for r in rows if r["retry_of"] == lost["trial"]]  # the design is measured once, by its retry
        assert [retry[k] for k in knobs] == [lost[k] for k in knobs] and retry["state"] != "interrupted"


def test_resuming_with_another_search_is_refused(tmp_path):
    from pchw.runlog import RunError

    out = tmp_path / "r"
    run_experiment("codesign", overrides=tiny(tmp_path, trials=2, reference="false"), out_dir=out, show_progress=False)
    more = run_experiment("codesign", overrides=tiny(tmp_path, trials=3, reference="false"), out_dir=out,
                          show_progress=False)  # a bigger budget continues the study
    assert (more.n_done, more.n_skipped) == (1, 2)
    with pytest.raises(RunError, match="fidelity=512; this run asks 256"):
        run_experiment("codesign", overrides=tiny(tmp_path, trials=3, fidelity=256), out_dir=out, show_progress=False)


def test_a_tiny_study_runs_on_a_dask_local_cluster(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster:
        s = run_experiment("codesign", overrides=tiny(tmp_path, trials=4), out_dir=tmp_path / "dask",
                           scheduler=cluster.scheduler_address, show_progress=False)
    assert s.n_done == 4
    assert len(rows_of(tmp_path / "dask" / "trials.csv")) == 4
    assert {r["role"] for r in rows_of(tmp_path / "dask" / "front.csv")} == {"reference", "front"}


# ------------------------------------------------------------------------------------------- the CLI
def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("args, fragment", [
    (["--set", "pc_space=missing.toml"], "search space missing.toml does not exist"),
    (["--set", "fidelity=1,2"], "--set fidelity: a study takes one value"),
    (["--set", "profile=gpu-bf16"], "is digital"),
    (["--set", "pruner=best"], "pruner='best' is not one of: median, successive-halving, none"),
    (["--target-acc", "1.5"], "--target-acc"),
])
def test_bad_study_input_is_one_error_line(tmp_path, args, fragment):
    r = _cli("run", "codesign", "--out", str(tmp_path / "x"), *args)
    assert r.returncode == 2 and fragment in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_study_flags_on_a_grid_experiment_are_refused(tmp_path):
    r = _cli("run", "tradeoff", "--trials", "3", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "bound a study" in r.stderr


def test_cli_dry_run_lists_the_knobs_and_report_rebuilds_a_study(tmp_path):
    r = _cli("run", "codesign", "--dry-run")
    assert r.returncode == 0 and "study pc:analog-rram-clocked: 60 trials" in r.stdout and "n_steps" in r.stdout
    assert "nothing was run or written" in r.stdout
    out = tmp_path / "s"
    run_experiment("codesign", overrides=tiny(tmp_path, trials=3), out_dir=out, show_progress=False)
    (out / "report.md").unlink()
    (out / "figures" / "codesign_fronts.png").unlink()
    r = _cli("report", str(out))
    assert r.returncode == 0, r.stderr
    assert (out / "report.md").is_file() and (out / "figures" / "codesign_fronts.png").is_file()
    listed = _cli("list")
    assert "codesign" in listed.stdout and "not installed" not in listed.stdout.split("codesign", 1)[1].split("\n")[0]
