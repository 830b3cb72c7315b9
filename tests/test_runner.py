"""The experiment runner: grids, run ids, results folders, failures, resume, parallelism, reports, CLI.

Uses tests/toy_experiment.py, named as ``module:tests.toy_experiment`` (no registration needed)
or registered as ``toy`` through ``PCHW_EXPERIMENTS``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `tests.toy_experiment` must import however pytest was started
    sys.path.insert(0, str(ROOT))

import cli  # noqa: E402
from experiments.framework import expand_grid, parse_set, read_runs, registry, run_experiment, run_id  # noqa: E402
from experiments.framework.registry import ExperimentError  # noqa: E402
from tests import toy_experiment as toy  # noqa: E402

TOY = "module:tests.toy_experiment"
COLUMNS = ["run_id", "p_a", "p_b", "p_fail_on", "p_sleep_s", "value", "energy_j", "status", "wall_s", "error"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sub_env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    env.update(extra)
    return env


def rows_of(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def header_of(path: Path) -> list[str]:
    with open(path, newline="") as f:
        return next(csv.reader(f))


def call_log(path: Path) -> list[tuple[int, str, int]]:
    """(a, OPENBLAS_NUM_THREADS, pid) of every toy run() call, in call order."""
    if not path.exists():
        return []
    return [(int(a), threads, int(pid)) for a, threads, pid in (line.split() for line in path.read_text().splitlines())]


def calls(path: Path) -> list[int]:
    return [a for a, _, _ in call_log(path)]


def run_cli(*args, env=None):
    result = CliRunner().invoke(cli.main, list(args), env=env)
    return result.exit_code, result.output


def without_wall(rows):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]


# ------------------------------------------------------------------------------------- grids
def test_grid_expansion_order_count_and_overrides():
    points = expand_grid(toy.Config, toy.GRID, None)
    assert [p.a for p in points] == [1, 2, 3] and all(p.b == 0.5 for p in points)
    points = expand_grid(toy.Config, toy.GRID, {"b": ["0.1", "0.2"], "fail_on": ["7"]})
    assert [(p.a, p.b, p.fail_on) for p in points] == [
        (1, 0.1, 7), (1, 0.2, 7), (2, 0.1, 7), (2, 0.2, 7), (3, 0.1, 7), (3, 0.2, 7)]
    assert all(isinstance(p.b, float) and isinstance(p.a, int) for p in points)
    # an override replaces the grid's axis; a default instance works as well as the class
    points = expand_grid(toy.Config(b=2.0), toy.GRID, {"a": ["5", "6"]})
    assert [(p.a, p.b) for p in points] == [(5, 2.0), (6, 2.0)]
    assert len(expand_grid(toy.Config, {}, None)) == 1
    assert len(expand_grid(toy.Config, toy.GRID, {"a": ["1", "1", "2"]})) == 2  # duplicates dropped


@dataclass(frozen=True)
class Typed:
    flag: bool = False
    name: str = "x"
    opt: int | None = None
    x: float = 1.0


def test_set_values_are_converted_to_the_field_types():
    points = expand_grid(Typed, {}, parse_set(["flag=true,no", "name=abc", "opt=none,3", "x=1e-3"]))
    assert [(p.flag, p.name, p.opt, p.x) for p in points] == [
        (True, "abc", None, 1e-3), (True, "abc", 3, 1e-3), (False, "abc", None, 1e-3), (False, "abc", 3, 1e-3)]
    assert expand_grid(Typed, {"x": [2]}, None)[0].x == 2.0  # Python ints widen to float
    with pytest.raises(ExperimentError, match=r"bad value 'two' for opt: expected int \| None"):
        expand_grid(Typed, {}, {"opt": ["two"]})
    with pytest.raises(ExperimentError, match="bad value 'maybe' for flag: expected bool"):
        expand_grid(Typed, {}, {"flag": ["maybe"]})
    with pytest.raises(ExperimentError, match="bad value 'x' for a: expected int"):
        expand_grid(toy.Config, toy.GRID, {"a": ["x"]})
    with pytest.raises(ExperimentError, match="unknown parameter 'c'; Config fields are: a, b, fail_on, sleep_s"):
        expand_grid(toy.Config, toy.GRID, {"c": ["1"]})
    with pytest.raises(ExperimentError, match="unknown parameter 'zz'"):
        expand_grid(toy.Config, {"zz": [1]}, None)
    with pytest.raises(ExperimentError, match="expects key=v1,v2"):
        parse_set(["a"])
    with pytest.raises(ExperimentError, match="given twice"):
        parse_set(["a=1", "a=2"])


# ------------------------------------------------------------------------------------ run ids
def test_run_ids_are_stable_across_processes_and_distinct():
    ids = [run_id(p, toy) for p in expand_grid(toy.Config, toy.GRID, None)]
    assert len(set(ids)) == 3 and all(len(i) == 12 and int(i, 16) >= 0 for i in ids)
    assert run_id(toy.Config(a=1), toy) == ids[0]
    assert run_id(toy.Config(a=1, b=0.25), toy) not in ids
    code = ("from experiments.framework import expand_grid, run_id; from tests import toy_experiment as t; "
            "print(' '.join(run_id(p, t) for p in expand_grid(t.Config, t.GRID, None)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=sub_env(PYTHONHASHSEED="7"),
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ids


@dataclass(frozen=True)
class WithProfile:
    profile: str = "ideal"
    n: int = 1


def test_run_id_includes_the_resolved_profile_values(tmp_path):
    from pchw.profiles import load_profile, profile_to_toml

    module = SimpleNamespace(NAME="hw", profile_fields=("profile",))
    toml = tmp_path / "mine.toml"
    toml.write_text(profile_to_toml(load_profile("ideal")))
    config = WithProfile(profile=str(toml))
    before = run_id(config, module)
    assert run_id(config, module) == before
    toml.write_text(toml.read_text().replace("dt_s = { value = 0.1,", "dt_s = { value = 0.05,"))
    assert load_profile(toml).dt_s == 0.05
    assert run_id(config, module) != before  # same config text, different hardware: a new point
    assert run_id(WithProfile(), module) != run_id(WithProfile(), SimpleNamespace(NAME="hw"))


# ------------------------------------------------------------------------- a run's results folder
def test_run_writes_config_csv_figures_and_report(tmp_path):
    out = tmp_path / "r"
    s = run_experiment(TOY, overrides={"fail_on": ["2"]}, out_dir=out, show_progress=False)
    assert (s.n_points, s.n_done, s.n_failed, s.n_skipped) == (3, 2, 1, 0)

    config = json.loads((out / "config.json").read_text())
    assert config["experiment"] == "toy" and config["module"] == "tests.toy_experiment"
    assert config["defaults"] == {"a": 1, "b": 0.5, "fail_on": -1, "sleep_s": 0.0}
    assert config["grid"] == {"a": [1, 2, 3]} and config["overrides"] == {"fail_on": [2]}
    assert "numpy" in config["versions"] and "git_sha" in config
    assert len(config["points"]) == 3
    assert all(p["config"]["fail_on"] == 2 and p["profiles"] == {} for p in config["points"].values())

    assert header_of(out / "runs.csv") == COLUMNS
    rows = rows_of(out / "runs.csv")
    assert [r["p_a"] for r in rows] == ["1", "2", "3"]
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert set(config["points"]) == {r["run_id"] for r in rows}
    assert float(rows[0]["value"]) == 0.5 and float(rows[2]["value"]) == 1.5
    assert float(rows[2]["energy_j"]) == pytest.approx(3e-9)
    assert rows[1]["value"] == "" and rows[1]["error"] == "RuntimeError: toy failure at a=2 second line"
    assert rows[0]["error"] == "" and all(float(r["wall_s"]) >= 0 for r in rows)
    assert "toy failure" in (out / "errors" / f"{rows[1]['run_id']}.txt").read_text()

    pngs = sorted((out / "figures").glob("*.png"))
    assert pngs == s.figures == [out / "figures" / "value.png"]
    for png in pngs:
        data = png.read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 1000
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert s.report == out / "report.md"
    assert "![Figure 1](figures/value.png)" in md and '<img src="figures/value.png"' in html
    caption = "value = a·b rises linearly with a, from 0.5 at a=1 to 1.5 at a=3 (2 ok points)."
    assert f"**Figure 1.** {caption}" in md and caption in html  # the module's describe() sentence
    for text in (md, html):
        assert toy.TITLE in text and "toy" in text
        assert all(r["run_id"] in text for r in rows)
        assert "1.5" in text and "3e-09" in text and "toy failure at a=2" in text


def test_failed_points_are_retried_and_ok_points_skipped(tmp_path, monkeypatch):
    out, log = tmp_path / "r", tmp_path / "calls.txt"
    monkeypatch.setenv("PCHW_TOY_CALLS", str(log))
    first = run_experiment(TOY, overrides={"a": ["1", "2", "3", "4"], "fail_on": ["3"]}, out_dir=out,
                           show_progress=False)
    assert (first.n_done, first.n_failed) == (3, 1) and calls(log) == [1, 2, 3, 4]
    before = rows_of(out / "runs.csv")
    log.unlink()
    again = run_experiment(TOY, overrides={"a": ["1", "2", "3", "4"], "fail_on": ["3"]}, out_dir=out,
                           show_progress=False)
    assert (again.n_points, again.n_done, again.n_skipped, again.n_failed) == (4, 0, 3, 1)
    assert calls(log) == [3]  # only the failed point ran again
    after = rows_of(out / "runs.csv")
    assert len(after) == 4 and [r["run_id"] for r in after] == [r["run_id"] for r in before]
    assert [r for r in after if r["status"] == "ok"] == [r for r in before if r["status"] == "ok"]  # untouched

    # a transient failure: same run ids, so the retry replaces the failed row in place
    monkeypatch.setenv("PCHW_TOY_FAIL", "2")
    out2 = tmp_path / "r2"
    s = run_experiment(TOY, out_dir=out2, show_progress=False)
    assert s.n_failed == 1 and [r["status"] for r in rows_of(out2 / "runs.csv")] == ["ok", "failed", "ok"]
    monkeypatch.delenv("PCHW_TOY_FAIL")
    log.unlink()
    s = run_experiment(TOY, out_dir=out2, show_progress=False)
    assert (s.n_done, s.n_skipped, s.n_failed) == (1, 2, 0) and calls(log) == [2]
    rows = rows_of(out2 / "runs.csv")
    assert [r["status"] for r in rows] == ["ok", "ok", "ok"] and float(rows[1]["value"]) == 1.0
    assert not any((out2 / "errors").glob("*.txt"))  # the old traceback went with the failure

    # a grown grid into the same folder runs only the new points
    log.unlink()
    s = run_experiment(TOY, overrides={"a": ["1", "2", "3", "4", "5"]}, out_dir=out2, show_progress=False)
    assert (s.n_done, s.n_skipped) == (2, 3) and calls(log) == [4, 5] and len(rows_of(out2 / "runs.csv")) == 5
    assert len(json.loads((out2 / "config.json").read_text())["invocations"]) == 3


def test_dry_run_writes_nothing_and_knows_what_is_done(tmp_path):
    out = tmp_path / "r"
    s = run_experiment(TOY, out_dir=out, dry_run=True, show_progress=False)
    assert not out.exists() and s.n_points == 3 and [r["status"] for r in s.rows] == ["pending"] * 3
    run_experiment(TOY, overrides={"a": ["1"]}, out_dir=out, show_progress=False)
    s = run_experiment(TOY, out_dir=out, dry_run=True)
    assert [r["status"] for r in s.rows] == ["done", "pending", "pending"] and s.n_skipped == 1
    assert s.rows[0]["run_id"] == run_id(toy.Config(a=1), toy)


# ------------------------------------------------------------------------ crash, kill and Ctrl-C
def _start(out: Path, log: Path, *extra: str, sleep_s: float = 0.25) -> subprocess.Popen:
    args = [sys.executable, "-m", "cli", "run", TOY, "--set", "a=1,2,3,4,5,6", "--set", f"sleep_s={sleep_s}",
            "--out", str(out), "--quiet", *extra]
    return subprocess.Popen(args, cwd=ROOT, env=sub_env(PCHW_TOY_CALLS=str(log)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_rows(proc: subprocess.Popen, csv_path: Path, n: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if csv_path.exists() and len(rows_of(csv_path)) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("no rows appeared in runs.csv")


@pytest.mark.slow
def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path):
    out, log1, log2 = tmp_path / "r", tmp_path / "calls1.txt", tmp_path / "calls2.txt"
    proc = _start(out, log1)
    _wait_for_rows(proc, out / "runs.csv", 1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    saved = rows_of(out / "runs.csv")  # what survived the kill is a complete, parseable CSV
    assert 1 <= len(saved) < 6 and all(r["status"] == "ok" for r in saved)
    assert header_of(out / "runs.csv") == COLUMNS

    proc = _start(out, log2)
    stdout, stderr = proc.communicate(timeout=600)  # a bound on a hang, not a speed test
    assert proc.returncode == 0, stderr
    assert f"6 points: {6 - len(saved)} done, {len(saved)} skipped (already done), 0 failed" in stdout
    final = rows_of(out / "runs.csv")
    assert len(final) == 6 and len({r["run_id"] for r in final}) == 6
    assert sorted(int(r["p_a"]) for r in final) == [1, 2, 3, 4, 5, 6] and all(r["status"] == "ok" for r in final)
    assert final[: len(saved)] == saved  # finished points kept as they were (same wall_s: not rerun)
    done_before = {int(r["p_a"]) for r in saved}
    assert sorted(calls(log2)) == sorted({1, 2, 3, 4, 5, 6} - done_before)  # each missing point ran once


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_writes_finished_points_and_exits_130(tmp_path, workers):
    out, log = tmp_path / "r", tmp_path / "calls.txt"
    proc = _start(out, log, "--workers", workers, sleep_s=3.0)  # the grid takes >= 6 s; we stop it after one point
    _wait_for_rows(proc, out / "runs.csv", 1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)  # a bound on a hang, not a speed test
    assert len(calls(log)) < 6  # the rest of the grid was not waited for
    assert proc.returncode == 130, stderr
    rows = rows_of(out / "runs.csv")
    assert 1 <= len(rows) < 6 and f"finished point(s) saved in {out}" in stderr
    assert "Traceback" not in stderr and "Aborted" not in stderr and "\naborted" not in stderr


# ---------------------------------------------------------------------------------- parallelism
def test_two_workers_give_the_same_rows_as_one(tmp_path, monkeypatch):
    grid = {"a": ["1", "2", "3", "4"], "b": ["0.5", "2"]}
    one = run_experiment(TOY, overrides=grid, out_dir=tmp_path / "one", show_progress=False)
    log = tmp_path / "calls.txt"
    monkeypatch.setenv("PCHW_TOY_CALLS", str(log))
    threads_before = os.environ.get("OPENBLAS_NUM_THREADS")
    two = run_experiment(TOY, overrides=grid, out_dir=tmp_path / "two", workers=2, show_progress=False)
    assert one.n_done == two.n_done == 8
    seen = call_log(log)
    assert len(seen) == 8 and all(threads == "1" for _, threads, _ in seen)  # one BLAS thread per worker
    assert os.getpid() not in {pid for _, _, pid in seen} and len({pid for _, _, pid in seen}) <= 2
    assert os.environ.get("OPENBLAS_NUM_THREADS") == threads_before  # the parent's environment is restored
    assert without_wall(rows_of(tmp_path / "one" / "runs.csv")) == without_wall(rows_of(tmp_path / "two" / "runs.csv"))


@pytest.mark.slow
def test_a_tiny_grid_runs_on_a_dask_local_cluster(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the spawned workers import tests.toy_experiment
    log = tmp_path / "calls.txt"
    monkeypatch.setenv("PCHW_TOY_CALLS", str(log))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster:
        s = run_experiment(TOY, overrides={"fail_on": ["3"]}, out_dir=tmp_path / "dask",
                           scheduler=cluster.scheduler_address, show_progress=False)
    assert (s.n_done, s.n_failed) == (2, 1) and sorted(calls(log)) == [1, 2, 3]
    serial = run_experiment(TOY, overrides={"fail_on": ["3"]}, out_dir=tmp_path / "serial", show_progress=False)
    assert serial.n_done == 2
    dask_rows, serial_rows = rows_of(tmp_path / "dask" / "runs.csv"), rows_of(tmp_path / "serial" / "runs.csv")
    assert without_wall(dask_rows) == without_wall(serial_rows)
    assert header_of(tmp_path / "dask" / "runs.csv") == COLUMNS


# ------------------------------------------------------------------------------------- reports
def test_pchw_report_rebuilds_from_the_csv_alone(tmp_path):
    out = tmp_path / "r"
    run_experiment(TOY, overrides={"b": ["0.5", "4"]}, out_dir=out, show_progress=False)
    shutil.rmtree(out / "figures")
    (out / "report.md").unlink()
    (out / "report.html").unlink()
    code, text = run_cli("report", str(out))  # 'toy' is not registered: its module is not imported on trust
    assert code == 2 and text.count("\n") == 1 and "pass --module" in text
    code, text = run_cli("report", str(out), "--module", "tests.toy_experiment")
    assert code == 0, text
    assert f"report: {out / 'report.md'}" in text
    png = (out / "figures" / "value.png").read_bytes()
    assert png[:8] == PNG_SIGNATURE and len(png) > 1000
    md = (out / "report.md").read_text()
    assert "![Figure 1](figures/value.png)" in md
    assert '<img src="figures/value.png"' in (out / "report.html").read_text()
    _, rows = read_runs(out / "runs.csv", toy.Config)
    assert len(rows) == 6 and all(r["run_id"] in md for r in rows) and "| 12 |" in md  # value 3 × 4

    code, text = run_cli("report", str(tmp_path))
    assert code == 2 and text.count("\n") == 1 and "is not a results folder" in text
    code, text = run_cli("report", str(out), "--module", "experiments.tradeoff")
    assert code == 2 and "is experiment 'tradeoff'" in text
    code, text = run_cli("report", str(out), env={"PCHW_EXPERIMENTS": "toy=tests.toy_experiment"})
    assert code == 0, text  # a registered name (here through the plugin variable) is trusted


def test_pchw_report_never_imports_a_module_named_by_the_folder(tmp_path, monkeypatch):
    """config.json is data: a module path written into it must not be imported (it could run anything)."""
    package = tmp_path / "evilpkg"
    package.mkdir()
    marker = tmp_path / "imported.txt"
    (package / "__init__.py").write_text("")
    (package / "payload.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "r"
    run_experiment(TOY, out_dir=out, show_progress=False)
    meta = json.loads((out / "config.json").read_text())
    for experiment in ("toy", "evil"):
        meta.update(experiment=experiment, module="evilpkg.payload")
        (out / "config.json").write_text(json.dumps(meta))
        code, text = run_cli("report", str(out))
        assert code == 2 and "not registered" in text and "evilpkg.payload" in text
        assert not marker.exists()
    meta.update(experiment="tradeoff", module="evilpkg.payload")  # a registered name: its own module is used
    (out / "config.json").write_text(json.dumps(meta))
    run_cli("report", str(out))
    assert not marker.exists()


# ----------------------------------------------------------------------------------------- CLI
def test_cli_list_shows_registered_and_plugin_experiments(monkeypatch):
    code, text = run_cli("list", env={"PCHW_EXPERIMENTS": "toy=tests.toy_experiment,ghost=no.such.module"})
    assert code == 0, text
    lines = {line.split()[0]: line for line in text.splitlines()}
    assert "tradeoff" in lines and "hardware-sweep" in lines
    assert toy.TITLE in lines["toy"] and "not installed" in lines["ghost"]
    registry.register("toy2", "tests.toy_experiment")
    try:
        code, text = run_cli("list")
        assert code == 0 and toy.TITLE in text and "toy2" in registry.names()
        assert registry.get("toy2") is toy
    finally:
        registry.EXPERIMENTS.pop("toy2")


def test_cli_run_prints_where_results_went(tmp_path):
    out = tmp_path / "r"
    code, text = run_cli("run", "toy", "--set", "a=1,2", "--out", str(out), "--quiet",
                         env={"PCHW_EXPERIMENTS": "toy=tests.toy_experiment"})
    assert code == 0, text
    assert f"results in {out}" in text and "2 points: 2 done, 0 skipped (already done), 0 failed" in text
    assert len(rows_of(out / "runs.csv")) == 2
    code, text = run_cli("run", TOY, "--set", "a=1,2,3", "--out", str(out), "--dry-run")
    assert code == 0 and text.count("done") >= 2 and "pending" in text and "3 points, 2 already done" in text
    code, text = run_cli("run", TOY, "--set", "a=1,2", "--out", str(out), "--quiet")
    assert code == 0 and "2 points: 0 done, 2 skipped (already done), 0 failed" in text
    code, text = run_cli("run", TOY, "--results-root", str(tmp_path / "res"), "--quiet")
    assert code == 0 and len(list((tmp_path / "res" / "toy").glob("*/runs.csv"))) == 1


def test_a_run_with_failed_points_exits_1_and_says_how_many(tmp_path):
    out = tmp_path / "r"
    code, text = run_cli("run", TOY, "--out", str(out), "--quiet", env={"PCHW_TOY_FAIL": "2"})
    assert code == 1, text
    assert "3 points: 2 done, 0 skipped (already done), 1 failed" in text
    assert f"error: 1 of 3 points failed; their errors are in {out / 'runs.csv'}" in text
    assert "Traceback" not in text
    code, text = run_cli("run", TOY, "--out", str(out), "--quiet")  # the failure was transient: retried, ok
    assert code == 0 and "1 done, 2 skipped" in text


def test_cli_list_help_matches_its_output():
    code, help_text = run_cli("list", "--help")
    assert code == 0 and "name, points in the default grid and title" in " ".join(help_text.split())
    code, text = run_cli("list")
    for line in text.splitlines():
        name, points, word, *title = line.split()
        assert name in registry.names() and int(points) >= 1 and word == "points" and title
    assert "tradeoff" in text and f"{len(expand_grid(toy.Config, toy.GRID))} points" in run_cli(
        "list", env={"PCHW_EXPERIMENTS": "toy=tests.toy_experiment"})[1]


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["run", TOY, "--set", "a"], "--set expects key=v1,v2, got 'a'"),
        (["run", TOY, "--set", "=1"], "--set expects key=v1,v2"),
        (["run", TOY, "--set", "c=1"], "unknown parameter 'c'; Config fields are: a, b, fail_on, sleep_s"),
        (["run", TOY, "--set", "a=1,x"], "bad value 'x' for a: expected int"),
        (["run", "nope"], "unknown experiment 'nope'; known: tradeoff, hardware-sweep"),
        (["run", "module:no.such.module"], "experiment 'module:no.such.module' is not installed"),
        (["run", TOY, "--workers", "0"], "--workers"),
    ],
)
def test_cli_bad_input_gives_one_error_line_and_exit_2(args, fragment, tmp_path):
    code, text = run_cli(*args, "--out", str(tmp_path / "r"))
    assert code == 2, text
    assert text.count("\n") == 1 and text.startswith("error: ") and fragment in text
    assert not (tmp_path / "r").exists()
