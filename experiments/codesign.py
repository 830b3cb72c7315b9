"""codesign: the cheapest chip and recipe that train to a target accuracy, found by measured training runs.

A study searches the knobs of one substrate and one algorithm trained in situ (μPC or backprop) —
converter bits, relaxation steps, update window, dt/τ, learning rates and schedule, zero shift, batch
size, from a TOML search space (:mod:`experiments.search_space`) — for two objectives: the trained
chip's test accuracy (maximise) and joules per training example (minimise); the circuit time per
example stands beside them. Optuna's multi-objective sampler (TPE or NSGA-II) proposes designs.

- **Every point is measured**: a trial is ``train_insitu`` (what ``pchw train --on`` runs) on the chip
  ``HardwareProfile.replace(...)`` builds, for ``fidelity`` training examples; its accuracy is measured
  ``evaluations`` times on ``n_test`` test images, and Optuna's pruner (median of the complete trials at
  the same evaluation, or successive halving) stops the unpromising ones
  (:mod:`experiments.codesign_trial`).
- **The reported front is full fidelity**: the Pareto front of the search (its ``final_max`` most accurate
  designs) is trained again for ``epochs`` epochs and tested on ``final_n_test`` images, beside the
  profile's default recipe (``reference``); those runs are the figures, tables and headline.
- **Resumable and parallel**: each (algorithm, substrate) study lives in ``study.db`` (SQLite) in the results
  folder; a rerun with ``--out`` continues it (interrupted trials are requeued, finished ones kept); trials
  run in a local process pool (``--workers``) or on a Dask cluster (``--scheduler``)
  (:mod:`experiments.study`). Full-fidelity runs are cached like every in-situ run.

``pchw run codesign`` runs the studies of ``GRID`` (μPC and backprop on ``analog-rram-clocked``); ``--set
algorithm=pc`` or ``--set profile=a,b`` choose others (only these two fields take several values), and
``--trials``, ``--fidelity``, ``--timeout-s``, ``--target-acc`` bound it. The folder holds ``config.json``,
``study.db``, ``trials.csv`` (every trial), ``front.csv`` (the full-fidelity runs), ``importance.csv``,
``designs/*.toml`` (the chips of the front), ``figures/`` and ``report.md``/``report.html``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

from pchw.runlog import RunError, git_sha, package_versions, read_json, write_json

from . import codesign_tables as tables
from .codesign_trial import STARTUP_DEFAULT, FullTask, PrunerKind, TrialResult, TrialTask, run_full
from .framework.registry import ExperimentError
from .search_space import SearchSpace, default_space_path, load_space
from .study import SamplerKind, curves, finished, make_sampler, open_study, search

NAME = "codesign"
TITLE = "Co-design search: the cheapest hardware and recipe that train to a target accuracy"
GRID = {"algorithm": ["pc", "bp"], "profile": ["analog-rram-clocked"]}
STUDY_AXES = ("algorithm", "profile")
# what may change when a study is resumed: its budget and the full-fidelity runs, not what a trial is
RESUMABLE_FIELDS = ("trials", "timeout_s", "epochs", "final_n_test", "final_max", "reference", "target_acc",
                    "backend", "device", "start_from_reference")
profile_fields = ("profile",)
FULL_TEST_EVERY = 200  # full-fidelity runs measure and checkpoint every 200 updates: a killed one resumes


@dataclass(frozen=True)
class Config:
    """One co-design study: what trains where, the search's budget and fidelity, the full-fidelity runs.

    Attributes:
        algorithm: ``pc`` (μPC) or ``bp`` (backprop as analog SGD), trained in situ.
        profile: the substrate, a circuit preset or TOML file; fields the search space leaves out stay fixed.
        dataset, depth, width: the network (weight matrices L, hidden width N).
        n_train: training examples the runs draw from (None: the whole training set).
        trials: finished trials (complete, pruned or failed) the search runs to; a resumed study continues to it.
        timeout_s: no trial starts after this many seconds of this invocation's search (None: no limit); the
            trials in flight finish.
        fidelity: training examples of one search trial (its fidelity; the reported runs use ``epochs``).
        evaluations: accuracy measurements during a search trial, at k/evaluations of its examples; each goes
            to the pruner.
        n_test: test images of every search-trial evaluation.
        pruner: ``median``, ``successive-halving`` or ``none`` (Optuna pruners on the intermediate accuracy).
        pruner_startup: complete trials before the median pruner starts stopping trials.
        sampler: ``tpe`` (multi-objective TPE), ``nsga2`` (NSGA-II) or ``random``.
        startup_trials: random designs before the sampler models the front (TPE's start; NSGA-II's population).
        epochs: the full fidelity: passes over the ``n_train`` examples of every reported run.
        final_n_test: test images of the full-fidelity runs (None: the whole test set).
        final_max: front designs trained at full fidelity, at most (the most accurate of the search's front).
        reference: also train the profile's default recipe at full fidelity (the headline's baseline).
        start_from_reference: the first trial of a new study is the default recipe (when the space contains it),
            so the sampler and the pruner start from a design known to train.
        target_acc: the accuracy the headline asks for (fraction): the cheapest full-fidelity design reaching it.
        pc_space, bp_space: search-space TOML files (None: ``experiments/codesign_spaces/<algorithm>.toml``).
        seed: the sampler's seed, and the training and noise seed of every run (designs compared on the same
            draws).
        backend, device: the circuit backend of the runs (numba; torch, with device e.g. ``cuda`` on a GPU):
            speed only, not results (the backends agree draw for draw).
    """

    algorithm: str = "pc"
    profile: str = "analog-rram-clocked"
    dataset: str = "mnist"
    depth: int = 5
    width: int = 128
    n_train: int | None = None
    trials: int = 60
    timeout_s: float | None = None
    fidelity: int = 6400
    evaluations: int = 3
    n_test: int = 1000
    pruner: str = "median"
    pruner_startup: int = STARTUP_DEFAULT
    sampler: str = "tpe"
    startup_trials: int = 10
    epochs: float = 1.0
    final_n_test: int | None = None
    final_max: int = 4
    reference: bool = True
    start_from_reference: bool = True
    target_acc: float = 0.9
    pc_space: str | None = None
    bp_space: str | None = None
    seed: int = 0
    backend: str = "numba"
    device: str | None = None

    def __post_init__(self) -> None:
        _one_of("algorithm", self.algorithm, ("pc", "bp"))
        _one_of("pruner", self.pruner, tuple(k.value for k in PrunerKind))
        _one_of("sampler", self.sampler, tuple(k.value for k in SamplerKind))
        for name in ("trials", "fidelity", "evaluations", "n_test", "startup_trials", "final_max", "depth", "width"):
            if getattr(self, name) < 1:
                raise ExperimentError(f"{name}={getattr(self, name)!r} is invalid: must be >= 1")
        if self.pruner_startup < 0:
            raise ExperimentError(f"pruner_startup={self.pruner_startup!r} is invalid: must be >= 0")
        if not 0 < self.target_acc <= 1:
            raise ExperimentError(f"target_acc={self.target_acc!r} is invalid: a fraction in (0, 1], e.g. 0.9")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ExperimentError(f"timeout_s={self.timeout_s!r} is invalid: must be > 0 (or none)")
        if not self.epochs > 0:
            raise ExperimentError(f"epochs={self.epochs!r} is invalid: must be > 0")

    @property
    def name(self) -> str:
        return f"{self.algorithm}:{self.profile}"

    @property
    def space_path(self) -> Path:
        given = self.pc_space if self.algorithm == "pc" else self.bp_space
        return Path(given) if given else default_space_path(self.algorithm)


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ExperimentError(f"{name}={value!r} is not one of: {', '.join(allowed)}")


@dataclass
class StudySummary:
    """What ``pchw run codesign`` did (the runner's summary fields, and ``lines`` the CLI prints)."""

    out_dir: Path | None
    n_points: int = 0
    n_done: int = 0
    n_skipped: int = 0
    n_failed: int = 0
    rows: list = dataclasses.field(default_factory=list)
    figures: list = dataclasses.field(default_factory=list)
    report: Path | None = None
    plot_error: str | None = None
    lines: list[str] = dataclasses.field(default_factory=list)


# ------------------------------------------------------------------------------------------ plan
def _smoke_sized(config: Config) -> Config:
    """In smoke mode (:mod:`pchw.smoke`) a study runs three trials of one smoke epoch and re-runs one front
    design: it runs end to end in seconds, its numbers are not results."""
    from pchw import smoke

    if not smoke.enabled():
        return config
    return dataclasses.replace(config, trials=min(config.trials, 3), final_max=min(config.final_max, 1),
                               startup_trials=min(config.startup_trials, 2),
                               fidelity=min(config.fidelity, smoke.TRAIN_SAMPLES))


def plan(overrides: dict | None = None) -> list[tuple[Config, SearchSpace]]:
    """The studies of ``GRID`` with ``overrides`` (``--set``), each with its validated search space."""
    from .framework.grid import expand_grid

    for key, values in (overrides or {}).items():
        if key not in STUDY_AXES and isinstance(values, list | tuple) and len(values) > 1:
            raise ExperimentError(f"--set {key}: a study takes one value (only {' and '.join(STUDY_AXES)} take "
                                  f"several, one study each); run other values into another --out")
    points = [_smoke_sized(p) for p in expand_grid(Config, GRID, overrides)]
    from pchw.profiles import load_profile

    for p in points:
        if not load_profile(p.profile).is_circuit:
            raise ExperimentError(f"profile={p.profile!r} is digital: a co-design study trains in situ on a circuit")
    return [(p, load_space(p.space_path, algorithm=p.algorithm)) for p in points]


def _record(config: Config, space: SearchSpace) -> dict:
    from pchw.profiles import load_profile

    return {"config": dataclasses.asdict(config), "profile_values": load_profile(config.profile).values(),
            "space": {"path": space.path, "text": space.text,
                      "knobs": {k.name: {"target": k.target, "range": k.describe()} for k in space.knobs}}}


def _check_resumable(out: Path, saved: dict, config: Config, record: dict) -> None:
    """A study already in ``out`` must be the same search (its budget may change)."""
    old = saved.get("studies", {}).get(config.name)
    if old is None:
        return
    for key, value in record["config"].items():
        if key not in RESUMABLE_FIELDS and old["config"].get(key) != value:
            raise RunError(f"{out} holds study {config.name} with {key}={old['config'].get(key)!r}; this run asks "
                           f"{value!r} (only {', '.join(RESUMABLE_FIELDS)} may change): choose another --out")
    for what in ("profile_values", "space"):
        compared = (old[what], record[what]) if what == "profile_values" else (old[what]["text"], record[what]["text"])
        if compared[0] != compared[1]:
            raise RunError(f"{out} holds study {config.name} with other {what.replace('_', ' ')}; "
                           f"choose another --out to search a changed one")


def _write_meta(out: Path, plans, *, overrides, workers: int, scheduler: str | None) -> dict:
    path = out / "config.json"
    saved = read_json(path) if path.exists() else {}
    if saved and saved.get("experiment") != NAME:
        raise RunError(f"{out} holds results of experiment {saved.get('experiment')!r}, not {NAME!r}; "
                       f"choose another --out")
    studies = dict(saved.get("studies", {}))
    for config, space in plans:
        record = _record(config, space)
        _check_resumable(out, saved, config, record)
        studies[config.name] = record
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    meta = {"experiment": NAME, "module": __name__, "kind": "study", "title": TITLE,
            "stamp": saved.get("stamp", out.name), "started": saved.get("started", now), "git_sha": git_sha(),
            "versions": package_versions(("numpy", "numba", "scipy", "optuna", "matplotlib", "distributed")),
            "studies": studies,
            "invocations": [*saved.get("invocations", []),
                            {"time": now, "overrides": overrides or {}, "workers": workers, "scheduler": scheduler,
                             "studies": [c.name for c, _ in plans]}]}
    write_json(path, meta)
    return meta


# --------------------------------------------------------------------------------------- search
def _run_config(config: Config, **budget):
    """The in-situ run of this study's network with ``budget`` (iters/epochs, n_test, test_every)."""
    from simulators.insitu import InsituConfig

    return InsituConfig(profile=config.profile, algorithm=config.algorithm, dataset=config.dataset,
                        depth=config.depth, width=config.width, n_train=config.n_train, seed=config.seed,
                        backend=config.backend, device=config.device, **budget)


def trial_task(config: Config, space: SearchSpace, trial, *, base_profile, history) -> TrialTask:
    """A trial's task: its design at search fidelity (``fidelity`` examples in whole batches, ``evaluations``
    evenly spaced measurements)."""
    chip, run = space.design(trial.params, profile=base_profile, base=_run_config(config, n_test=config.n_test))
    iters = max(1, config.fidelity // run.batch_size)
    run = dataclasses.replace(run, iters=iters, test_every=max(1, math.ceil(iters / config.evaluations)))
    return TrialTask(number=trial.number, config=run, profile=chip, pruner=config.pruner,
                     pruner_startup=config.pruner_startup, history=history)


def _search(out: Path, config: Config, space: SearchSpace, pool, *, show_progress: bool, on_tell) -> tuple:
    from pchw.profiles import load_profile
    from pchw.runlog import progress

    study = open_study(out, config.name, knobs=space.names,
                       sampler=make_sampler(config.sampler, seed=config.seed, startup=config.startup_trials))
    before = finished(study)
    base_profile = load_profile(config.profile)
    if config.start_from_reference and not study.trials:
        default = space.values_of(base_profile, _run_config(config).resolved(base_profile))
        if space.contains(default):  # the sampler starts from a design known to train
            study.enqueue_trial(default, user_attrs={"origin": "default recipe"})
    bar = progress(config.trials, desc=f"codesign {config.name}", enabled=show_progress,
                   initial=min(before, config.trials))

    def told() -> None:
        bar.update(min(finished(study), config.trials) - bar.n)
        bar.set_postfix(tables.best_so_far(study, config.target_acc), refresh=True)
        on_tell()

    try:
        done = search(study, distributions=space.distributions(), pool=pool, trials=config.trials,
                      timeout_s=config.timeout_s, on_tell=told,
                      make_task=lambda trial: trial_task(config, space, trial, base_profile=base_profile,
                                                         history=curves(study)))
    finally:
        bar.close()
    return study, before, done


# ------------------------------------------------------------------------------- full fidelity
def most_accurate(front: list, k: int) -> list:
    """The ``k`` most accurate designs of the search's front, by energy: the runs that can reach a target
    (the front's cheap end, far below any useful accuracy, is not worth an epoch)."""
    return sorted(sorted(front, key=lambda t: -t.values[0])[:k], key=lambda t: t.values[1])


def full_tasks(out: Path, config: Config, space: SearchSpace, study) -> list[tuple[str, object, FullTask]]:
    """(role, trial, task) of the full-fidelity runs: the reference recipe and the search's front designs.

    A design that changes profile fields trains on a TOML of its chip written to ``designs/`` (the run cache
    keys it by that file's physics); one that changes only the recipe trains on the preset itself.
    """
    from pchw.profiles import load_profile, profile_to_toml
    from pchw.runlog import atomic_write_text

    base_profile = load_profile(config.profile)
    base = _run_config(config, epochs=config.epochs, n_test=config.final_n_test, test_every=FULL_TEST_EVERY)
    tasks = [("reference", None, FullTask(base))] if config.reference else []
    for trial in most_accurate(study.best_trials, config.final_max):
        if config.reference and trial.user_attrs.get("origin") == "default recipe":
            continue  # the reference run is this design
        chip, run = space.design(trial.params, profile=base_profile, base=base)
        if chip is not base_profile:
            path = out / "designs" / f"{config.algorithm}-{Path(config.profile).stem}-t{trial.number}.toml"
            atomic_write_text(path, profile_to_toml(chip))
            run = dataclasses.replace(run, profile=str(path.resolve()))
        tasks.append(("front", trial, FullTask(run)))
    return tasks


def _full_fidelity(out: Path, config: Config, space: SearchSpace, study, pool, *, show_progress: bool) -> list[dict]:
    from pchw.runlog import progress

    tasks = full_tasks(out, config, space, study)
    bar = progress(len(tasks), desc=f"full fidelity {config.name}", enabled=show_progress)
    try:
        results = pool.run_all(run_full, [task for _, _, task in tasks], on_done=lambda: bar.update(1),
                               lost=lambda msg: TrialResult(state="failed", error=msg))
    finally:
        bar.close()
    return [tables.full_row(config, space, role, trial, task.config, result)
            for (role, trial, task), result in zip(tasks, results)]


# ------------------------------------------------------------------------------------ the study
def run_study(*, overrides: dict | None = None, out_dir=None, workers: int = 1, scheduler: str | None = None,
              dry_run: bool = False, show_progress: bool = True, results_root="results") -> StudySummary:
    """Run (or continue) the studies of ``GRID`` with ``overrides``: search, full-fidelity front, report.

    The runner's semantics: ``out_dir`` (default ``results/codesign/<stamp>``) is resumed when it holds
    the same studies; ``workers``/``scheduler`` say where trials run; ``dry_run`` validates the studies and
    their search spaces and runs nothing. Ctrl-C stops, keeps every finished trial and raises
    :class:`~experiments.runner.RunInterrupted`.
    """
    from .framework.runner import RunInterrupted, _stamp_dir
    from .trial_pool import TrialPool

    plans = plan(overrides)
    if dry_run:
        return StudySummary(out_dir=Path(out_dir) if out_dir else None, lines=tables.plan_lines(plans))
    out = Path(out_dir) if out_dir is not None else _stamp_dir(Path(results_root), NAME)
    out.mkdir(parents=True, exist_ok=True)
    meta = _write_meta(out, plans, overrides=overrides, workers=workers, scheduler=scheduler)
    summary = StudySummary(out_dir=out)
    pool = TrialPool(workers=workers, scheduler=scheduler)
    try:
        for config, space in plans:
            study, before, done = _search(out, config, space, pool, show_progress=show_progress,
                                          on_tell=lambda: tables.write_trials(out, meta))
            summary.n_skipped, summary.n_done = summary.n_skipped + before, summary.n_done + done
            rows = _full_fidelity(out, config, space, study, pool, show_progress=show_progress)
            tables.write_front(out, config.name, rows)
            tables.write_importance(out, config.name, tables.importance_rows(study, space))
    except KeyboardInterrupt:
        pool.close(abort=True)
        tables.write_trials(out, meta)
        raise RunInterrupted(out, summary.n_skipped + summary.n_done) from None
    except BaseException:
        pool.close(abort=True)
        raise
    pool.close()
    return _finish(out, meta, summary, target_acc=plans[-1][0].target_acc)


def _finish(out: Path, meta: dict, summary: StudySummary, *, target_acc: float) -> StudySummary:
    from .codesign_report import render

    trials = tables.write_trials(out, meta)
    summary.n_points = len(trials)
    summary.n_failed = sum(r["state"] == "failed" for r in trials)
    summary.figures, summary.report, summary.plot_error, headline = render(out, meta, target_acc=target_acc)
    summary.lines = tables.summary_lines(out, trials, headline, summary)
    return summary


def rebuild(out_dir) -> tuple[Path, Path]:
    """Redraw the figures and rewrite the report of a codesign folder from its CSV files and config.json."""
    from .codesign_report import render

    out = Path(out_dir)
    if not (out / "front.csv").is_file() or not (out / "config.json").is_file():
        raise RunError(f"{out} is not a finished codesign folder (needs front.csv and config.json)")
    meta = read_json(out / "config.json")
    targets = [s["config"]["target_acc"] for s in meta.get("studies", {}).values()]
    _, md_path, plot_error, _ = render(out, meta, target_acc=targets[-1] if targets else 0.9)
    if plot_error:
        raise ExperimentError(f"plot failed: {plot_error}; {md_path} was written without figures")
    return md_path, out / "report.html"
