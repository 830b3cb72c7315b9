"""The tables of a codesign folder, rewritten atomically as the studies go on.

- ``trials.csv`` — every trial of every study: ``study``, ``trial``, ``state`` (complete, pruned, failed,
  interrupted, running), ``retry_of``, ``knob_<name>`` values, what it measured at search fidelity
  (``examples``, ``test_acc`` on ``n_test`` images with its 95% Wilson interval, ``energy_per_example_j``,
  ``latency_per_example_s``, ``inference_energy_j``), the accuracy at each evaluation, whether it is on the
  search's Pareto front, ``wall_s`` and ``error``;
- ``front.csv`` — the full-fidelity runs: ``role`` (``front``: a design of the search's front;
  ``reference``: the profile's default recipe), the knob values, the same measurements, the joules per
  example by component, the search-fidelity figures of the design, and ``on_front`` (not dominated by
  another full-fidelity run of its study);
- ``importance.csv`` — each knob's importance (Optuna's PED-ANOVA evaluator) for reaching the study's
  Pareto front, for accuracy and for joules.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from pchw.stats import wilson_interval

from .study import STORAGE, interrupted_numbers
from .tradeoff import pareto

TRIALS, FRONT, IMPORTANCE = "trials.csv", "front.csv", "importance.csv"
MEASURED = ("examples", "test_acc", "n_test", "test_acc_ci_low", "test_acc_ci_high", "energy_per_example_j",
            "latency_per_example_s", "inference_energy_j")
IMPORTANCE_TARGETS = ("pareto front", "test accuracy", "J per training example")
MIN_TRIALS_FOR_IMPORTANCE = 4


def read_table(path: Path) -> list[dict]:
    """The typed rows of a CSV written here (empty when the file does not exist)."""
    from .framework.runs_csv import read_runs

    return read_runs(path, required=())[1] if path.is_file() else []


def write_table(path: Path, rows: list[dict]) -> None:
    from pchw.runlog import atomic_write_text

    from .framework.runs_csv import runs_to_csv

    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    atomic_write_text(path, runs_to_csv(columns, rows))


def _interval(acc, n) -> tuple:
    if acc is None or not n:
        return None, None
    return wilson_interval(acc, int(n))


def _measured(acc, n, **figures) -> dict:
    low, high = _interval(acc, n)
    return {"test_acc": acc, "n_test": n, "test_acc_ci_low": low, "test_acc_ci_high": high, **figures}


# ------------------------------------------------------------------------------------ trials.csv
def trial_rows(study, name: str) -> list[dict]:
    """One row per trial of ``study`` (queued, not yet started ones left out)."""
    from optuna.trial import TrialState as S

    trials = study.get_trials(deepcopy=False)
    lost = interrupted_numbers(trials)
    front = {t.number for t in study.best_trials}
    names = {S.COMPLETE: "complete", S.PRUNED: "pruned", S.FAIL: "failed", S.RUNNING: "running"}
    rows = []
    for t in trials:
        if t.state not in names:
            continue
        a = t.user_attrs
        curve = a.get("curve", {})
        rows.append({"study": name, "trial": t.number,
                     "state": "interrupted" if t.number in lost else names[t.state],
                     "origin": a.get("origin", "sampler"), "retry_of": a.get("retry_of"),
                     **{f"knob_{k}": v for k, v in t.params.items()}, "examples": a.get("examples"),
                     **_measured(a.get("test_acc"), a.get("n_test"), energy_per_example_j=a.get("energy_per_example_j"),
                                 latency_per_example_s=a.get("latency_per_example_s"),
                                 inference_energy_j=a.get("inference_energy_j")),
                     "accuracy_at_evaluations": ";".join(f"{curve[k]:.4f}" for k in sorted(curve, key=int)),
                     "search_front": t.number in front, "wall_s": a.get("wall_s"),
                     "started": t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else None,
                     "finished": t.datetime_complete.isoformat(timespec="seconds") if t.datetime_complete else None,
                     "error": a.get("error")})
    return rows


def write_trials(out: Path, meta: dict) -> list[dict]:
    """Rewrite ``trials.csv`` from the storage (every study of ``meta`` that has begun); returns its rows."""
    import optuna

    storage = optuna.storages.RDBStorage(f"sqlite:///{(out / STORAGE).resolve()}")
    begun = set(optuna.get_all_study_names(storage))
    rows = []
    for name in meta.get("studies", {}):
        if name in begun:
            rows += trial_rows(optuna.load_study(study_name=name, storage=storage), name)
    write_table(out / TRIALS, rows)
    return rows


def best_so_far(study, target_acc: float) -> dict:
    """The progress bar's figures: best search accuracy, cheapest complete trial reaching the target, pruned."""
    from optuna.trial import TrialState as S

    done = study.get_trials(deepcopy=False, states=(S.COMPLETE,))
    reaching = [t.values[1] for t in done if t.values[0] >= target_acc]
    return {"best": f"{100 * max((t.values[0] for t in done), default=0):.1f}%",
            f"≥{100 * target_acc:g}%": f"{min(reaching):.2e} J" if reaching else "none yet",
            "pruned": len(study.get_trials(deepcopy=False, states=(S.PRUNED,)))}


# ------------------------------------------------------------------------------------- front.csv
def full_row(config, space, role: str, trial, run_config, result) -> dict:
    """A full-fidelity run as a row of ``front.csv``."""
    from pchw.profiles import load_profile

    profile = load_profile(run_config.profile)
    resolved = run_config.resolved(profile)
    knobs = dict(trial.params) if trial is not None else space.values_of(profile, resolved)
    components = result.components_j or {}
    return {"study": config.name, "algorithm": config.algorithm, "profile": config.profile, "role": role,
           "trial": None if trial is None else trial.number, "recipe": resolved.recipe,
           **{f"knob_{k}": v for k, v in knobs.items()},
           "status": "ok" if result.state == "complete" else "failed", "examples": result.examples,
           **_measured(result.test_acc, result.n_test, energy_per_example_j=result.energy_per_example_j,
                       latency_per_example_s=result.latency_per_example_s,
                       inference_energy_j=result.inference_energy_j),
           "dominant": max(components, key=components.get) if components else None,
           **{f"energy_{c}_j": v for c, v in components.items()},
           "search_test_acc": None if trial is None else trial.values[0],
           "search_energy_per_example_j": None if trial is None else trial.values[1],
           "run_dir": result.run_dir, "error": result.error}


def mark_front(rows: list[dict]) -> list[dict]:
    """``on_front``: the row is not dominated (accuracy up, joules down) by another ok row of its study."""
    for study in {r["study"] for r in rows}:
        mine = [r for r in rows if r["study"] == study and r["status"] == "ok"]
        keep = set(pareto([(float(r["energy_per_example_j"]), float(r["test_acc"])) for r in mine]))
        for i, r in enumerate(mine):
            r["on_front"] = i in keep
    for r in rows:
        r.setdefault("on_front", False)
    return rows


def write_front(out: Path, name: str, rows: list[dict]) -> None:
    """Replace study ``name``'s rows of ``front.csv`` with ``rows``."""
    kept = [r for r in read_table(out / FRONT) if r["study"] != name]
    write_table(out / FRONT, mark_front([{k: v for k, v in r.items() if k != "on_front"} for r in kept + rows]))


# -------------------------------------------------------------------------------- importance.csv
def importance_rows(study, space) -> list[dict]:
    """Each knob's importance (Optuna's PED-ANOVA, normalised to sum 1) for the Pareto front, for accuracy
    and for joules, over the complete trials; none with fewer than 4 of them."""
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
    from optuna.trial import TrialState as S

    complete = study.get_trials(deepcopy=False, states=(S.COMPLETE,))
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        return []
    targets = (None, lambda t: -t.values[0], lambda t: t.values[1])  # PED-ANOVA ranks low values as good
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PED-ANOVA's note that it ranks low target values as good
        for label, target in zip(IMPORTANCE_TARGETS, targets):
            found = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator(), target=target,
                                          params=list(space.names))
            rows += [{"study": study.study_name, "objective": label, "knob": k, "importance": v,
                      "n_trials": len(complete)} for k, v in found.items()]
    return rows


def write_importance(out: Path, name: str, rows: list[dict]) -> None:
    kept = [r for r in read_table(out / IMPORTANCE) if r["study"] != name]
    write_table(out / IMPORTANCE, kept + rows)


# ------------------------------------------------------------------------------------ the console
def plan_lines(plans) -> list[str]:
    """What a dry run prints: each study, its budget and its knobs."""
    lines = []
    for config, space in plans:
        lines.append(f"study {config.name}: {config.trials} trials of {config.fidelity} training examples "
                     f"({config.evaluations} evaluations on {config.n_test} test images, {config.pruner} pruner, "
                     f"{config.sampler} sampler); front re-run for {config.epochs:g} epoch(s)")
        lines += [f"  {k.name:<20} {k.target:<8} {k.describe()}" for k in space.knobs]
    lines.append(f"{len(plans)} studies (dry run: nothing was run or written)")
    return lines


def summary_lines(out: Path, trials: list[dict], headline: list[str], summary) -> list[str]:
    counts = {s: sum(r["state"] == s for r in trials) for s in ("complete", "pruned", "failed", "interrupted")}
    lines = [f"results in {out}",
             f"{len(trials)} trials: {summary.n_done} finished now, {summary.n_skipped} before (resumed); "
             + ", ".join(f"{v} {k}" for k, v in counts.items())]
    lines += headline
    if summary.plot_error:
        lines.append(f"warning: plot failed: {summary.plot_error}")
    if summary.report is not None:
        lines.append(f"report: {summary.report}")
    return lines
