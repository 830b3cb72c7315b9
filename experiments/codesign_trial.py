"""One co-design trial: a design's in-situ training run, stopped early when Optuna's pruner says so.

A trial is ``train_insitu`` (the code behind ``pchw train --on``) on a chip built with
``HardwareProfile.replace`` and a recipe, at the search's fidelity (``iters`` weight updates). At each
of its evaluations the chip's test accuracy goes to an Optuna pruner (median or successive halving),
which compares it with the accuracies the trials finished before this one reached at the same
evaluation. Those curves travel with the task, so a worker — a spawned process or a Dask worker on
another machine — needs no access to the study's storage; the pruner's decision depends only on the
trials told before this one started, which keeps a serial study reproducible.

:func:`run_trial` and :func:`run_full` are top level and take one picklable task; they never raise.
"""

from __future__ import annotations

import functools
import time
import traceback
from dataclasses import dataclass, field
from enum import StrEnum

from pchw.profiles import HardwareProfile, Substrate

STARTUP_DEFAULT = 5


class TrialState(StrEnum):
    """How a trial ended."""

    COMPLETE = "complete"  # trained to its fidelity: its accuracy and joules are objectives
    PRUNED = "pruned"  # stopped by the pruner at an evaluation: measured up to there, not an objective
    FAILED = "failed"  # diverged or raised: the error is kept


class PrunerKind(StrEnum):
    """Optuna pruners on the trial's intermediate accuracy."""

    MEDIAN = "median"  # stop a trial below the median of the complete trials at the same evaluation
    HALVING = "successive-halving"  # keep the best third at each rung (evaluation 1, 3, 9, ...)
    NONE = "none"


def make_pruner(kind: str, *, startup: int = STARTUP_DEFAULT):
    """The Optuna pruner ``kind`` (``startup``: complete trials before the median pruner acts)."""
    import optuna

    kind = PrunerKind(kind)
    if kind is PrunerKind.MEDIAN:
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=0)
    if kind is PrunerKind.HALVING:
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


@dataclass(frozen=True)
class Curve:
    """A finished trial's accuracy at evaluation k = 1, 2, ... and the pruner's bookkeeping on it."""

    state: str
    accuracy: dict[int, float]
    pruner_attrs: dict = field(default_factory=dict)


class SnapshotPruner:
    """Optuna's pruner for one trial, against the curves of the trials finished before it (an in-memory
    single-objective study: the accuracy is what the pruner ranks)."""

    def __init__(self, kind: str, *, startup: int, history: tuple[Curve, ...]):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._study = optuna.create_study(direction="maximize", pruner=make_pruner(kind, startup=startup))
        for curve in history:
            complete = curve.state == TrialState.COMPLETE
            self._study.add_trial(optuna.trial.create_trial(
                state=optuna.trial.TrialState.COMPLETE if complete else optuna.trial.TrialState.PRUNED,
                value=curve.accuracy[max(curve.accuracy)] if complete else None,
                intermediate_values=curve.accuracy, system_attrs=curve.pruner_attrs))
        self._trial = self._study.ask()

    def should_stop(self, step: int, accuracy: float) -> bool:
        self._trial.report(accuracy, step)
        return self._trial.should_prune()

    def attrs(self) -> dict:
        """The pruner's records on this trial (successive halving's rungs), for the trials after it."""
        return dict(self._study.trials[-1].system_attrs)


@dataclass(frozen=True)
class TrialTask:
    """A search trial: the design's run (``config`` at search fidelity, ``profile`` its chip) and the pruner."""

    number: int
    config: object  # simulators.insitu.InsituConfig
    profile: HardwareProfile
    pruner: str = PrunerKind.MEDIAN.value
    pruner_startup: int = STARTUP_DEFAULT
    history: tuple[Curve, ...] = ()


@dataclass(frozen=True)
class TrialResult:
    """What a run measured: the chip's accuracy on ``n_test`` images at its last evaluation, joules per
    training example of its ledger (``examples`` trained), joules per inference, circuit time per example."""

    state: str
    test_acc: float | None = None
    n_test: int | None = None
    examples: int | None = None
    energy_per_example_j: float | None = None
    inference_energy_j: float | None = None
    latency_per_example_s: float | None = None
    curve: dict = field(default_factory=dict)
    pruner_attrs: dict = field(default_factory=dict)
    wall_s: float = 0.0
    error: str | None = None
    components_j: dict = field(default_factory=dict)
    run_dir: str | None = None
    traceback: str | None = None


def latency_per_example_s(spec, profile: HardwareProfile, *, algorithm: str, n_steps: int) -> float:
    """Circuit time of one training example: its forward sweep, then PC's relaxation (``n_steps`` · dt_s) or
    backprop's backward sweep (H read periods; continuous: one settling; neuromorphic: H rate windows).
    The pulsed update, shared by the batch, is not included."""
    from pchw.circuit_events import rate_window_steps, settle_time_s, sweep_time_s

    forward = sweep_time_s(spec, profile)
    if algorithm == "pc":
        return forward + n_steps * profile.dt_s
    if profile.substrate is Substrate.ANALOG_CONTINUOUS:
        return forward + settle_time_s(spec, profile)
    window = rate_window_steps(profile) if profile.substrate is Substrate.NEUROMORPHIC else 1
    return forward + spec.n_hidden * window * profile.dt_s


@functools.lru_cache(maxsize=4)
def _dataset(name: str, n_train: int | None, n_test: int | None):
    from pchw.data import load_dataset

    return load_dataset(name, n_train=n_train, n_test=n_test)


class _Pruned(Exception):
    def __init__(self, row: dict):
        self.row = row


def _failed(t0: float, exc: BaseException) -> TrialResult:
    message = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
    return TrialResult(state=TrialState.FAILED.value, wall_s=time.perf_counter() - t0, error=message,
                       traceback=traceback.format_exc())


def run_trial(task: TrialTask) -> TrialResult:
    """Train the task's design at search fidelity, reporting every evaluation to the pruner."""
    t0 = time.perf_counter()
    try:
        from pchw.spec import NetworkSpec
        from simulators.insitu import train_insitu

        config = task.config
        pruner = SnapshotPruner(task.pruner, startup=task.pruner_startup, history=task.history)
        curve: dict[int, float] = {}

        def on_evaluation(row: dict) -> None:
            step = len(curve) + 1
            curve[step] = float(row["test_acc"])
            if pruner.should_stop(step, curve[step]):
                raise _Pruned(row)

        data = _dataset(config.dataset, config.n_train, config.n_test)
        spec = NetworkSpec(input_dim=data.input_dim, width=config.width, depth=config.depth, output_dim=data.n_classes,
                           act=config.act, param=config.param, skip=config.skip)
        n_steps = config.resolved(task.profile).n_steps
        latency = latency_per_example_s(spec, task.profile, algorithm=config.algorithm, n_steps=n_steps)
        try:
            r = train_insitu(config, data=data, profile=task.profile, on_evaluation=on_evaluation)
        except _Pruned as stop:
            examples = int(stop.row["iteration"]) * config.batch_size
            return TrialResult(state=TrialState.PRUNED.value, test_acc=curve[max(curve)], n_test=len(data.x_test),
                               examples=examples, energy_per_example_j=float(stop.row["energy_j"]) / examples,
                               inference_energy_j=float(stop.row["inference_energy_j"]),
                               latency_per_example_s=latency, curve=curve, pruner_attrs=pruner.attrs(),
                               wall_s=time.perf_counter() - t0)
        return TrialResult(state=TrialState.COMPLETE.value, test_acc=r.test_acc, n_test=r.n_test, examples=r.examples,
                           energy_per_example_j=r.energy_j / r.examples, inference_energy_j=r.inference_energy_j,
                           latency_per_example_s=latency, curve=curve, pruner_attrs=pruner.attrs(),
                           wall_s=time.perf_counter() - t0,
                           components_j={k: v / r.examples for k, v in r.energy_components_j.items()})
    except Exception as exc:  # a design that diverges or cannot be built is a measured failure, not a crash
        return _failed(t0, exc)


@dataclass(frozen=True)
class FullTask:
    """A full-fidelity run of a design (``config.profile`` a preset or a TOML file of its chip)."""

    config: object  # simulators.insitu.InsituConfig


def run_full(task: FullTask) -> TrialResult:
    """The design trained at full fidelity through the shared in-situ run cache (resumable, reused)."""
    t0 = time.perf_counter()
    try:
        from experiments.insitu_runs import get_insitu
        from pchw.profiles import load_profile
        from simulators.insitu import load_insitu

        run = get_insitu(task.config)
        profile = load_profile(run.config.profile)
        spec, _, _, _ = load_insitu(run.run_dir)
        latency = latency_per_example_s(spec, profile, algorithm=run.config.algorithm, n_steps=run.config.n_steps)
        return TrialResult(state=TrialState.COMPLETE.value, test_acc=run.test_acc, n_test=run.n_test,
                           examples=run.examples, energy_per_example_j=run.energy_per_example_j,
                           inference_energy_j=run.inference_energy_j, latency_per_example_s=latency,
                           wall_s=time.perf_counter() - t0, run_dir=str(run.run_dir),
                           components_j={k: v / run.examples for k, v in run.energy_components_j.items()})
    except Exception as exc:
        return _failed(t0, exc)

