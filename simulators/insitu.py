"""In-situ training on simulated hardware: PC or backprop, the crossbars learn in place.

Per batch, on the circuit of a profile, every sample's circuit runs the physical forward sweep
(each crossbar read once, inputs held), then

- **PC**: ``n_steps`` of PC dynamics with the output clamped to its one-hot target (dt/τ from the
  profile, or ``h``); each crossbar applies ΔW_ℓ = η_ℓ (a_ℓ/B) Σ_b ε_ℓ φ(z_{ℓ−1})ᵀ from its error
  neurons (at the end, or their means over the last ``update_window`` steps);
- **BP** (analog SGD, :mod:`simulators.backprop`): the backward sweep through the transposed
  arrays, and each crossbar applies ΔW_ℓ = −η_ℓ ∂L̄/∂W_ℓ from its deltas;

both with the pulsed-update device model of :mod:`simulators.pulsed` — plain SGD, since Adam's
state has no place on a crossbar. The per-layer rates follow μP: η_ℓ = lr / a_ℓ² (so each layer's
function changes at the SGD rate lr), with the input and hidden layers multiplied by
``hidden_lr_mult`` (PC's relaxation leaves their errors smaller than the output's), and
``lr_schedule`` scaling all of them over the run. Fields left at None take the profile's default
recipe (:mod:`simulators.recipes`), and the run folder records the resolved values.

μPC's hidden errors are far smaller than the per-step MVM noise of an analog crossbar
(measured: 4e-4…4e-3 RMS after 20 steps against 1e-2…7e-2 of noise), so on noisy arrays a
snapshot update is noise; averaging W independent reads divides the noise by √W.
``zero_shift`` reads every weight against a reference conductance at its device's symmetry point
(the zero-shifting technique of Kim et al., arXiv:1907.10228, 2019): soft-bounded asymmetric
devices drift under random ± pulses to w* = (a/2)·w_max (:mod:`simulators.pulsed`); with the
reference there, that drift pulls weights to 0. The reference array doubles the cell reads.

Every evaluation measures the chip itself: the test images go through the trained arrays' forward
sweep (noise and converters included), which gives ``test_acc`` and the measured joules per
inference. The history adds the energy ledger of the training so far (every simulated sweep,
relaxation, backward sweep and write pulse, priced by the profile) in total and per component;
the checkpoint (``checkpoint.npz``) holds the device states and references, and ``--resume`` is exact.
It shares the run folder, history, checkpoint, Ctrl-C and progress machinery with the software loop
through :mod:`pchw.runlog`.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path

import numpy as np

from pchw.data import Dataset, batch_indices, batches_per_epoch, load_dataset
from pchw.errors import PchwError
from pchw.events import COMPONENTS, EventCounts, price
from pchw.oracle import feedforward
from pchw.profiles import HardwareProfile, load_profile
from pchw.runlog import (
    HISTORY_COLUMNS,
    CheckpointError,
    DivergenceError,
    History,
    RunDir,
    TrainingLoop,
    atomic_write_bytes,
    check_matches_run,
    config_from_dict,
    payload_sha256,
    verify_payload,
)
from pchw.spec import NetworkSpec, check_weights, init_weights

from .backends import backend_names
from .backprop import backprop_step
from .circuit import prepare_circuit
from .contracts import as_enum
from .devices import program_weights
from .errors import SimulationError
from .forward import predict
from .learning import Learning
from .recipes import Algorithm, default_recipe, has_symmetry_point
from .simulate import simulate

CHECKPOINT = "checkpoint.npz"
LEDGER_COLUMNS = ("energy_j",) + tuple(f"energy_{c}_j" for c in COMPONENTS)
INSITU_COLUMNS = HISTORY_COLUMNS + LEDGER_COLUMNS + ("inference_energy_j",)
RECIPE_FIELDS = ("n_steps", "update_window", "zero_shift", "h", "param_lr", "hidden_lr_mult", "lr_schedule")


class LrSchedule(StrEnum):
    CONSTANT = "constant"
    COSINE = "cosine"  # η(t) = η · ½(1 + cos(π t/T)) over the T updates of the run


def lr_factor(schedule: str, iteration: int, total: int) -> float:
    """The rate multiplier of update ``iteration`` (0-based) of ``total`` under ``schedule``."""
    if LrSchedule(schedule) is LrSchedule.COSINE:
        return 0.5 * (1.0 + math.cos(math.pi * iteration / total))
    return 1.0


def _check_int(config, name: str, minimum: int) -> None:
    value = getattr(config, name)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < minimum):
        raise SimulationError(f"{name}={value!r} is invalid: must be an integer >= {minimum}")


def _check_positive(config, name: str) -> None:
    value = getattr(config, name)
    if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                  and math.isfinite(value) and value > 0):
        raise SimulationError(f"{name}={value!r} is invalid: must be a finite number > 0")


@dataclass(frozen=True)
class InsituConfig:
    """Everything that decides an in-situ run (saved as ``config.json``, recipe fields resolved).

    Attributes:
        profile: preset name or TOML path of the circuit (analog or neuromorphic).
        algorithm: ``pc`` (predictive coding) or ``bp`` (backprop, analog SGD).
        dataset, depth, width, act, skip, param: the network (param ``mupc`` or ``sp``).
        iters / epochs: weight updates, or passes over the data (both None → one epoch).
        n_steps: PC-dynamics steps per batch after the forward sweep (PC only).
        update_window: the last this many of the ``n_steps`` are averaged into the update's errors
            and activations (0: the final values; PC only).
        zero_shift: weights are read against a reference at each device's symmetry point (needs soft
            bounds when the devices are asymmetric; a no-op for symmetric ones).
        h: dt/τ of the clamped relaxation (τ = dt/h); None keeps the recipe's, or the profile's.
            Training grows the weights and λ_max of the activity Hessian with them (~30 measured on
            trained nets), so long relaxations of deep nets may need a smaller h.
        tau_s: integrator time constant; overrides ``h`` when given.
        param_lr: SGD rate lr in μP units (η_ℓ = lr / a_ℓ²).
        hidden_lr_mult: extra factor on η_ℓ of the input and hidden crossbars.
        lr_schedule: ``constant`` or ``cosine`` (decays to 0 over the run: the stochastic updates'
            noise floor falls with the rate; its run length is then fixed, resuming cannot change it).
        w_max_scale: each crossbar's conductance range is this many times its largest initial
            |w| (design choice: room for the weights to grow).
        batch_size, seed, test_every, n_train, n_test: as in software training (``n_test`` images go
            through the chip at every evaluation).
        backend, device: the circuit backend (:mod:`simulators.backends`) and, for torch, its device;
            they change the speed, not the result (the backends agree draw for draw).
    Recipe fields (n_steps … lr_schedule) left at None take :func:`simulators.recipes.default_recipe`.
    """

    profile: str = "analog-rram-clocked"
    algorithm: str = "pc"
    dataset: str = "mnist"
    depth: int = 5
    width: int = 128
    act: str = "relu"
    skip: bool = True
    param: str = "mupc"
    iters: int | None = None
    epochs: float | None = None
    n_steps: int | None = None
    update_window: int | None = None
    zero_shift: bool | None = None
    h: float | None = None
    tau_s: float | None = None
    param_lr: float | None = None
    hidden_lr_mult: float | None = None
    lr_schedule: str | None = None
    w_max_scale: float = 2.0
    batch_size: int = 64
    seed: int = 0
    test_every: int = 100
    n_train: int | None = None
    n_test: int | None = None
    backend: str = "numba"
    device: str | None = None
    recipe: str | None = None

    def __post_init__(self) -> None:
        as_enum(Algorithm, self.algorithm, "algorithm")
        for name, minimum in (("depth", 2), ("width", 1), ("batch_size", 1), ("test_every", 1), ("n_steps", 0),
                              ("update_window", 0)):
            _check_int(self, name, minimum)
        if self.lr_schedule is not None:
            as_enum(LrSchedule, self.lr_schedule, "lr_schedule")
        if self.n_steps is not None and self.update_window is not None and self.update_window > self.n_steps:
            raise SimulationError(f"update_window={self.update_window} is invalid: must be <= n_steps ({self.n_steps})")
        if self.zero_shift is not None and not isinstance(self.zero_shift, bool):
            raise SimulationError(f"zero_shift={self.zero_shift!r} is invalid: must be true or false")
        for name in ("h", "tau_s", "param_lr", "hidden_lr_mult", "w_max_scale"):
            _check_positive(self, name)
        if self.iters is not None and self.epochs is not None:
            raise SimulationError("give either iters or epochs, not both")
        if self.backend not in backend_names():
            raise SimulationError(f"backend={self.backend!r} is not one of: {', '.join(backend_names())}")
        if self.algorithm == Algorithm.BP and (self.n_steps or self.update_window):
            raise SimulationError("n_steps and update_window set PC's relaxation: backprop has none (algorithm=bp)")

    def resolved(self, profile: HardwareProfile) -> InsituConfig:
        """This config with every recipe field set (None → the profile's default recipe)."""
        recipe = default_recipe(profile, self.algorithm)
        filled = {f: getattr(recipe, f) if getattr(self, f) is None else getattr(self, f) for f in RECIPE_FIELDS}
        if self.algorithm == Algorithm.BP:
            filled.update(n_steps=0, update_window=0)
        elif self.update_window is None:  # a shorter relaxation than the recipe's averages all of it at most
            filled["update_window"] = min(recipe.update_window, filled["n_steps"])
        changed = any(getattr(self, f) is not None and getattr(self, f) != getattr(recipe, f) for f in RECIPE_FIELDS)
        name = self.recipe or (recipe.name + (" (modified)" if changed else ""))
        return replace(self, **filled, recipe=name)

    @property
    def inference_steps(self) -> int:
        return self.n_steps or 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> InsituConfig:
        return config_from_dict(cls, d)


@dataclass
class InsituResult:
    """What :func:`train_insitu` returns: the weights the network computes with (device states minus
    the reference conductances, float64), the device states and the per-crossbar references; the
    chip's test accuracy on ``n_test`` images and measured joules per inference; the training ledger
    (``energy_j`` over ``examples`` training examples)."""

    config: InsituConfig
    spec: NetworkSpec
    weights: list[np.ndarray]
    w_max: np.ndarray
    device_states: list[np.ndarray]
    reference: np.ndarray
    history: History
    test_acc: float
    iterations: int
    wall_s: float
    counts: EventCounts
    energy_j: float
    energy_components_j: dict
    write_pulses: float
    out_dir: Path | None
    examples: int = 0
    n_test: int = 0
    inference_energy_j: float = 0.0


def _save(path: Path, states, reference, w_max, iteration: int, wall_s: float, counts: EventCounts, config,
          spec) -> None:
    arrays = {f"g{i}": np.asarray(g) for i, g in enumerate(states)}
    meta = json.dumps({"iteration": iteration, "wall_s": wall_s, "counts": counts.to_dict(),
                       "config": config.to_dict(), "spec": spec.to_dict(), "format": "pchw-insitu-checkpoint-2"})
    contents = {"w_max": np.asarray(w_max), "reference": np.asarray(reference), "meta": np.array(meta), **arrays}
    buf = io.BytesIO()  # serialise first: a full disk then fails in a plain file write, leaving the old file
    np.savez(buf, sha256=np.array(payload_sha256(contents)), **contents)
    atomic_write_bytes(path, buf.getvalue())


def load_insitu(run_dir: str | Path) -> tuple[NetworkSpec, list[np.ndarray], InsituConfig, dict]:
    """(spec, weights, config, meta) of an in-situ run folder: the weights the network computes with
    (device states minus references); meta adds ``device_states``, ``reference`` and ``w_max``.

    The checkpoint is verified first (its sha256 digest, its arrays against its network spec, its
    config against the run's config.json): a damaged or mismatched file is a one-line CheckpointError."""
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        raise SimulationError(f"no in-situ checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            contents = {k: f[k] for k in f.files}
    except Exception as exc:  # zipfile, numpy and OS errors of a truncated or foreign file
        raise CheckpointError(f"{path} cannot be read as a checkpoint ({type(exc).__name__}: {exc}); it is "
                              f"truncated or corrupt: restore it or start the run again") from None
    stored = contents.pop("sha256", None)
    verify_payload(contents, None if stored is None else str(stored), path)
    try:
        meta = json.loads(str(contents["meta"]))
        if meta.get("format") != "pchw-insitu-checkpoint-2":
            raise ValueError(f"format {meta.get('format')!r}, not pchw-insitu-checkpoint-2")
        spec = NetworkSpec.from_dict(meta["spec"])
        config = InsituConfig.from_dict(meta["config"])
        meta["device_states"] = [contents[f"g{i}"] for i in range(spec.depth)]
        meta["reference"], meta["w_max"] = contents["reference"], contents["w_max"]
        check_weights(spec, meta["device_states"])
        if meta["reference"].shape != (spec.depth,) or meta["w_max"].shape != (spec.depth,):
            raise ValueError(f"reference {meta['reference'].shape} and w_max {meta['w_max'].shape} need "
                             f"({spec.depth},)")
    except (PchwError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{path} is not a valid in-situ checkpoint ({' '.join(str(exc).split())}); restore it "
                              f"or start the run again") from None
    check_matches_run(path, meta["config"], ignore=("iters", "epochs", "test_every", "backend", "device"))
    weights = [g - r for g, r in zip(meta["device_states"], meta["reference"])]
    return spec, weights, config, meta


@dataclass
class _Chip:
    """The arrays being trained: device states W_ℓ + reference, their references and ranges."""

    states: list[np.ndarray]
    reference: np.ndarray
    w_max: np.ndarray

    def effective(self) -> list[np.ndarray]:
        return [g - r for g, r in zip(self.states, self.reference)]


def _initial_chip(spec: NetworkSpec, config: InsituConfig, profile: HardwareProfile) -> _Chip:
    """μPC's init written with the profile's programming noise, referenced at the devices' symmetry
    point (a/2)·w_max when zero shifting (0 for symmetric devices: nothing to shift)."""
    initial = init_weights(spec, seed=config.seed)
    w_max = np.array([config.w_max_scale * float(np.max(np.abs(w))) for w in initial])
    programmed, _ = program_weights(initial, profile.replace(weight_bits=0, weight_clip_std=0.0, deploy_time_s=0.0),
                                    seed=config.seed)
    if config.zero_shift and not has_symmetry_point(profile) and profile.up_down_asym != 0:
        raise SimulationError(f"zero_shift needs soft-bounded devices: {profile.name} has hard bounds and "
                              f"up_down_asym={profile.up_down_asym}, so its devices have no symmetry point")
    shift = 0.5 * profile.up_down_asym if config.zero_shift else 0.0
    reference = shift * w_max
    states = [np.clip(w + r, -m, m) for w, r, m in zip(programmed, reference, w_max)]
    return _Chip(states=states, reference=reference, w_max=w_max)


def _rates(spec: NetworkSpec, config: InsituConfig) -> list[float]:
    """η_ℓ = lr / a_ℓ² (× hidden_lr_mult below the output crossbar)."""
    a = spec.scalings()
    return [config.param_lr / a[l] ** 2 * (config.hidden_lr_mult if l < spec.depth - 1 else 1.0)
            for l in range(spec.depth)]


def _chip_evaluation(spec: NetworkSpec, chip: _Chip, profile: HardwareProfile, data: Dataset, seed: int) -> dict:
    """Test accuracy of the chip itself (the trained arrays' forward sweep, noise and converters
    included) and the measured joules per inference."""
    circuit = prepare_circuit(spec, chip.states, profile, dt_s=profile.dt_s, seed=seed, w_max=chip.w_max,
                              reference=chip.reference)
    labels, counts = predict(circuit, data.x_test.astype(np.float64))
    return {"test_acc": float(np.mean(labels == data.y_test)),
            "inference_energy_j": price(counts, profile).total_j / len(labels)}


def _learning_step(config: InsituConfig, spec: NetworkSpec, profile: HardwareProfile, chip: _Chip, x, y, *,
                   rates: list[float], tau_s: float, it: int, sample0: int,
                   checkpoint_at: int | None) -> tuple[list[np.ndarray], EventCounts, dict]:
    """One batch: (new device states, the step's events, the history row's train_loss/free_energy)."""
    learning = Learning(lr=tuple(rates), update_index=it)
    if config.algorithm == Algorithm.BP:
        step = backprop_step(spec, chip.states, x, y, profile=profile, w_max=chip.w_max, learning=learning,
                             seed=config.seed, sample_offset=sample0, reference=chip.reference)
        if not math.isfinite(step.loss):
            raise DivergenceError(it + 1, "the loss", checkpoint_at)
        return step.weights, step.counts, {"train_loss": step.loss, "free_energy": None}
    r = simulate(spec, chip.states, x, y, profile=profile, n_steps=config.n_steps, tau_s=tau_s, seed=config.seed,
                 sample_offset=sample0, w_max=chip.w_max, reference=chip.reference,
                 update_window=config.update_window, backend=config.backend, device=config.device, learn=learning)
    free_energy = float(np.mean(r.free_energy))
    loss = 0.5 * float(np.sum((y - feedforward(spec, chip.effective(), x)[1]) ** 2)) / x.shape[0]
    if not (math.isfinite(free_energy) and math.isfinite(loss)):
        raise DivergenceError(it + 1, "the free energy", checkpoint_at)
    return r.weights, r.counts, {"train_loss": loss, "free_energy": free_energy}


def _ledger(counts: EventCounts, profile: HardwareProfile) -> dict:
    """The training's energy so far: total and per component (history columns)."""
    report = price(counts, profile)
    return {"energy_j": report.total_j} | {f"energy_{c}_j": report.components_j.get(c, 0.0) for c in COMPONENTS}


def train_insitu(config: InsituConfig, *, data: Dataset | None = None, out_dir: str | Path | None = None,
                 resume: bool = False, show_progress: bool = False, profile: HardwareProfile | None = None,
                 on_evaluation: Callable[[dict], None] | None = None) -> InsituResult:
    """Train on the circuit of ``config.profile`` (or of ``profile``, a variant built in code, whose
    values the run folder records); see the module docstring.

    ``on_evaluation(row)`` is called with the history row of every evaluation (``iteration``, ``test_acc``,
    ``inference_energy_j`` and the ledger so far), after its checkpoint; it may raise to stop the run
    (an optimiser's pruner does)."""
    profile = load_profile(config.profile) if profile is None else profile
    if not profile.is_circuit:
        raise SimulationError(f"--on {profile.name} is digital; in-situ training needs a circuit profile")
    if resume and out_dir is None:
        raise SimulationError("resume needs an output folder (--out)")
    config = config.resolved(profile)
    if data is None:
        data = load_dataset(config.dataset, n_train=config.n_train, n_test=config.n_test)
    spec = NetworkSpec(input_dim=data.input_dim, width=config.width, depth=config.depth,
                       output_dim=data.n_classes, act=config.act, param=config.param, skip=config.skip)
    batch = config.batch_size
    per_epoch = batches_per_epoch(len(data.x_train), batch)
    if per_epoch == 0:
        raise SimulationError(f"batch_size={batch} is larger than the {len(data.x_train)} training samples")
    total = config.iters if config.iters is not None else max(1, round((config.epochs or 1.0) * per_epoch))
    tau_s = config.tau_s or (profile.tau_s if config.h is None else profile.dt_s / config.h)
    rates = _rates(spec, config)
    y_train = data.one_hot(data.y_train).astype(np.float64)
    chip = _initial_chip(spec, config, profile)
    history, counts = History(columns=INSITU_COLUMNS), EventCounts()
    run = RunDir(out_dir, checkpoint_name=CHECKPOINT) if out_dir is not None else None
    start, wall_before = 0, 0.0
    if run is not None:
        # a decaying rate is a function of the run's length: its budget is fixed once started
        budget = ("iters", "epochs") if LrSchedule(config.lr_schedule) is LrSchedule.CONSTANT else ()
        run.start(config.to_dict() | {"profile_values": profile.values()}, resume=resume,
                  may_change=budget + ("test_every", "backend", "device"))
        if resume:
            _, _, _, meta = load_insitu(run.path)
            chip = _Chip([np.array(g) for g in meta["device_states"]], np.array(meta["reference"]), chip.w_max)
            start, wall_before = int(meta["iteration"]), float(meta["wall_s"])
            counts = EventCounts.from_dict(meta["counts"])
            history = run.read_history(INSITU_COLUMNS)
            history.truncate(start)

    def evaluate() -> dict:
        return _chip_evaluation(spec, chip, profile, data, config.seed)

    def save(iteration: int, wall_s: float) -> None:
        _save(run.checkpoint_path, chip.states, chip.reference, chip.w_max, iteration, wall_s, counts, config, spec)

    order, order_epoch = None, -1
    with TrainingLoop(history=history, run=run, total=total, start=start, wall_before=wall_before,
                      test_every=config.test_every, save=save, desc=f"in-situ {config.algorithm} {profile.name}",
                      show_progress=show_progress, resumed=resume) as loop:
        for it in range(start, total):
            epoch, j = divmod(it, per_epoch)
            if epoch != order_epoch:
                order, order_epoch = batch_indices(len(data.x_train), batch, seed=config.seed, epoch=epoch), epoch
            idx = order[j]
            rate = lr_factor(config.lr_schedule, it, total)
            chip.states, step_counts, row = _learning_step(
                config, spec, profile, chip, data.x_train[idx].astype(np.float64), y_train[idx],
                rates=[rate * v for v in rates], tau_s=tau_s, it=it, checkpoint_at=loop.checkpoint_at,
                sample0=(it * batch) % ((1 << 18) - batch))  # noise counters hold 18 bits of sample index
            counts = counts + step_counts
            loop.end_iteration(it + 1, row | _ledger(counts, profile), evaluate)
            if on_evaluation is not None and history.rows[-1].get("test_acc") is not None:
                on_evaluation(history.rows[-1])
    report = price(counts, profile)
    last = history.rows[-1] if history.rows else {}
    final = last if last.get("test_acc") not in (None, "") else evaluate()
    return InsituResult(config=config, spec=spec, weights=chip.effective(), w_max=chip.w_max,
                        device_states=chip.states, reference=chip.reference, history=history,
                        test_acc=float(final["test_acc"]), iterations=total, examples=total * batch,
                        n_test=len(data.x_test), inference_energy_j=float(final["inference_energy_j"]),
                        wall_s=loop.wall(), counts=counts, energy_j=report.total_j,
                        energy_components_j=dict(report.components_j), write_pulses=counts.write_pulses,
                        out_dir=Path(out_dir) if out_dir is not None else None)
