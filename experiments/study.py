"""A multi-objective Optuna study kept in a file: ask, run on a :class:`~experiments.trial_pool.TrialPool`, tell.

The study lives in an SQLite file (``study.db`` in the results folder) and only this process writes
it: workers get a task and return a result. Objectives: test accuracy (maximise) and joules per
training example (minimise); a trial ends ``COMPLETE`` (both objectives), ``PRUNED`` (stopped by the
pruner; its measurements are kept as user attributes) or ``FAIL``.

Resuming: after a kill (even ``kill -9``) the trials that were running are marked failed and their
designs queued again (``retry_of`` names the trial they repeat), so a rerun continues the same study
and measures every design once; finished trials are never touched. ``trials`` counts finished trials
(complete, pruned or failed — not the interrupted ones), so a resumed study stops at the same total.
Samplers are seeded: a serial study (one worker) is reproducible; with several workers the order in
which trials finish, and so what the sampler and pruner see, depends on timing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from .codesign_trial import Curve, TrialResult, TrialState, run_trial

STORAGE = "study.db"
ACCURACY, ENERGY = 0, 1  # objective indices: test_acc (max), energy_per_example_j (min)
RESULT_ATTRS = ("test_acc", "n_test", "examples", "energy_per_example_j", "inference_energy_j",
                "latency_per_example_s", "wall_s", "error")


class SamplerKind(StrEnum):
    """Optuna's multi-objective samplers."""

    TPE = "tpe"  # multi-objective TPE (MOTPE): good with tens of trials
    NSGA2 = "nsga2"  # NSGA-II: a genetic algorithm, for hundreds of trials
    RANDOM = "random"  # a baseline


def make_sampler(kind: str, *, seed: int, startup: int):
    """The seeded sampler ``kind``; ``startup``: TPE's random start, or NSGA-II's population size."""
    import optuna

    kind = SamplerKind(kind)
    if kind is SamplerKind.TPE:
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True, constant_liar=True)
    if kind is SamplerKind.NSGA2:
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(2, startup))
    return optuna.samplers.RandomSampler(seed=seed)


def open_study(out: Path, name: str, *, sampler, knobs: tuple[str, ...]):
    """The study ``name`` in ``out/study.db`` (created the first time), with the interrupted trials requeued."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{(out / STORAGE).resolve()}")
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, load_if_exists=True,
                                directions=["maximize", "minimize"])
    requeue_interrupted(study, knobs)
    return study


def requeue_interrupted(study, knobs: tuple[str, ...]) -> list[int]:
    """Trials left running by a killed process: mark them interrupted (failed) and queue their designs again
    (a design whose ``knobs`` were not all drawn yet is left to the sampler)."""
    import optuna
    from optuna.trial import TrialState as S

    stale = study.get_trials(deepcopy=False, states=(S.RUNNING,))
    for trial in stale:
        optuna.trial.Trial(study, trial._trial_id).set_user_attr("interrupted", True)
        study.tell(trial.number, state=S.FAIL)
        if set(trial.params) == set(knobs):
            again = {"retry_of": trial.number, "origin": trial.user_attrs.get("origin", "sampler")}
            study.enqueue_trial(trial.params, user_attrs=again, skip_if_exists=False)
    return [t.number for t in stale]


def interrupted_numbers(trials) -> set[int]:
    return {t.number for t in trials if t.user_attrs.get("interrupted")}


def finished(study) -> int:
    """Trials that ended on their own: complete, pruned, or failed for a reason of their own."""
    from optuna.trial import TrialState as S

    trials = study.get_trials(deepcopy=False)
    lost = interrupted_numbers(trials)
    return sum(t.state in (S.COMPLETE, S.PRUNED) or (t.state == S.FAIL and t.number not in lost) for t in trials)


def curves(study) -> tuple[Curve, ...]:
    """The accuracy curves of the finished trials (what the pruner compares a new trial with)."""
    from optuna.trial import TrialState as S

    out = []
    for t in study.get_trials(deepcopy=False, states=(S.COMPLETE, S.PRUNED)):
        accuracy = {int(k): float(v) for k, v in t.user_attrs.get("curve", {}).items()}
        if accuracy:
            state = TrialState.COMPLETE if t.state == S.COMPLETE else TrialState.PRUNED
            out.append(Curve(state=state.value, accuracy=accuracy, pruner_attrs=t.user_attrs.get("pruner_attrs", {})))
    return tuple(out)


def tell(study, trial, result: TrialResult) -> None:
    """Record ``result`` on ``trial``: its measurements as user attributes, then its state and objectives."""
    from optuna.trial import TrialState as S

    for key in RESULT_ATTRS:
        trial.set_user_attr(key, getattr(result, key))
    trial.set_user_attr("curve", {str(k): v for k, v in result.curve.items()})
    trial.set_user_attr("pruner_attrs", result.pruner_attrs)
    if result.state == TrialState.COMPLETE:
        study.tell(trial, [result.test_acc, result.energy_per_example_j])
    else:
        study.tell(trial, state=S.PRUNED if result.state == TrialState.PRUNED else S.FAIL)


def search(study, *, distributions: dict, make_task: Callable, pool, trials: int, timeout_s: float | None,
           on_tell: Callable[[], None] = lambda: None) -> int:
    """Ask, run and tell until ``trials`` trials have finished or ``timeout_s`` seconds have passed (no trial
    starts after it; those in flight finish). Returns the trials finished by this call.

    ``make_task(trial)`` builds a trial's task from its sampled ``trial.params``; ``on_tell()`` runs after
    every told trial (tables, progress). Ctrl-C propagates; the trials in flight stay RUNNING in the
    storage and are requeued by the next :func:`open_study`.
    """
    start, done_before = time.monotonic(), finished(study)
    running: dict = {}

    def may_start() -> bool:
        in_time = timeout_s is None or time.monotonic() - start < timeout_s
        return in_time and finished(study) + len(running) < trials

    while True:
        while len(running) < pool.slots and may_start():
            trial = study.ask(distributions)
            running[pool.submit(run_trial, make_task(trial))] = trial
        if not running:
            return finished(study) - done_before
        for future in sorted(pool.wait_first(running), key=lambda f: running[f].number):
            trial = running.pop(future)
            tell(study, trial, pool.result(future, lost=lambda msg: TrialResult(state=TrialState.FAILED, error=msg)))
            on_tell()
