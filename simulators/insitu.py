"""In-situ PC training on simulated hardware: the circuit relaxes, the crossbars learn in place.

Per batch: every sample's circuit runs a forward phase (sample-and-hold, ff_h = 1, H + 1 steps)
and ``n_steps`` of PC dynamics with the output clamped to its one-hot target (dt/τ from the
the profile, or ``h``); then each crossbar applies ΔW_ℓ = η_ℓ (a_ℓ/B) Σ_b ε_ℓ φ(z_{ℓ−1})ᵀ
with the pulsed-update device model of :mod:`simulators.pulsed` — plain SGD, since Adam's state
has no place on a crossbar. The per-layer rates follow μP: η_ℓ = lr / a_ℓ² (so each layer's
function changes at the SGD rate lr), with the input and hidden layers multiplied by
``hidden_lr_mult`` because the short relaxation leaves their errors smaller than the output's.

It shares the run folder, history, checkpoint, resume, Ctrl-C and progress machinery with the
software loop through :mod:`pchw.runlog`, adds the energy ledger of the whole run (every
simulated inference and every write pulse, priced by the profile) as ``energy_j`` in the
history, and checkpoints the device weights as ``checkpoint.npz``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pchw.data import Dataset, batch_indices, batches_per_epoch, load_dataset
from pchw.events import EventCounts, price
from pchw.oracle import feedforward, phi
from pchw.profiles import HardwareProfile, load_profile
from pchw.runlog import (
    HISTORY_COLUMNS,
    DivergenceError,
    History,
    RunDir,
    TrainingLoop,
    atomic_save,
    config_from_dict,
)
from pchw.spec import NetworkSpec, init_weights

from .devices import program_weights
from .pulsed import device_gains, pulsed_update
from .simulate import SimulationError, simulate

CHECKPOINT = "checkpoint.npz"
INSITU_COLUMNS = HISTORY_COLUMNS + ("energy_j",)


@dataclass(frozen=True)
class InsituConfig:
    """Everything that decides an in-situ run (saved as ``config.json``).

    Attributes:
        profile: preset name or TOML path of the circuit (analog or neuromorphic).
        dataset, depth, width, act, skip, param: the network (param ``mupc`` or ``sp``).
        iters / epochs: weight updates, or passes over the data (both None → one epoch).
        n_steps: PC-dynamics steps per batch after the forward phase.
        h: dt/τ of the clamped relaxation (τ = dt/h); None keeps the profile's. Training grows the
            weights and λ_max of the activity Hessian with them (~30 measured on trained nets): at the
            presets' 0.1, device-only in-situ MNIST training collapsed to chance mid-epoch, at 0.03 it
            stayed stable (see the closing note of the non-idealities issue).
        tau_s: integrator time constant; overrides ``h`` when given.
        param_lr: SGD rate lr in μP units (η_ℓ = lr / a_ℓ²).
        hidden_lr_mult: extra factor on η_ℓ of the input and hidden crossbars.
        w_max_scale: each crossbar's conductance range is this many times its largest initial
            |w| (design choice: room for the weights to grow).
        batch_size, seed, test_every, n_train, n_test: as in software training.
    """

    profile: str = "analog-rram-clocked"
    dataset: str = "mnist"
    depth: int = 5
    width: int = 128
    act: str = "relu"
    skip: bool = True
    param: str = "mupc"
    iters: int | None = None
    epochs: float | None = None
    n_steps: int = 20
    h: float | None = None
    tau_s: float | None = None
    param_lr: float = 0.03
    hidden_lr_mult: float = 100.0
    w_max_scale: float = 2.0
    batch_size: int = 64
    seed: int = 0
    test_every: int = 100
    n_train: int | None = None
    n_test: int | None = None

    def __post_init__(self) -> None:
        for name, minimum in (("depth", 2), ("width", 1), ("batch_size", 1), ("test_every", 1), ("n_steps", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise SimulationError(f"{name}={value!r} is invalid: must be an integer >= {minimum}")
        if self.h is not None and not (isinstance(self.h, (int, float)) and math.isfinite(self.h) and self.h > 0):
            raise SimulationError(f"h={self.h!r} is invalid: must be a finite number > 0")
        for name in ("param_lr", "hidden_lr_mult", "w_max_scale"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise SimulationError(f"{name}={value!r} is invalid: must be a finite number > 0")
        if self.iters is not None and self.epochs is not None:
            raise SimulationError("give either iters or epochs, not both")

    @property
    def inference_steps(self) -> int:
        return self.n_steps

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> InsituConfig:
        return config_from_dict(cls, d)


@dataclass
class InsituResult:
    """What :func:`train_insitu` returns (weights are the device states, float64)."""

    config: InsituConfig
    spec: NetworkSpec
    weights: list[np.ndarray]
    w_max: np.ndarray
    history: History
    test_acc: float
    iterations: int
    wall_s: float
    counts: EventCounts
    energy_j: float
    energy_components_j: dict
    write_pulses: float
    out_dir: Path | None


def _save(path: Path, weights, w_max, iteration: int, wall_s: float, counts: EventCounts, config, spec) -> None:
    arrays = {f"w{i}": w for i, w in enumerate(weights)}
    meta = json.dumps({"iteration": iteration, "wall_s": wall_s, "counts": counts.to_dict(),
                       "config": config.to_dict(), "spec": spec.to_dict(), "format": "pchw-insitu-checkpoint-1"})

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, w_max=w_max, meta=np.array(meta), **arrays)

    atomic_save(path, write)


def _counts_from_dict(d: dict) -> EventCounts:
    d = dict(d)
    for key in ("dac_conversions", "adc_conversions"):
        d[key] = {int(k): v for k, v in d.get(key, {}).items()}
    return EventCounts(**d)


def load_insitu(run_dir: str | Path) -> tuple[NetworkSpec, list[np.ndarray], InsituConfig, dict]:
    """(spec, device weights, config, meta) of an in-situ run folder."""
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        raise SimulationError(f"no in-situ checkpoint at {path}")
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        spec = NetworkSpec.from_dict(meta["spec"])
        weights = [f[f"w{i}"] for i in range(spec.depth)]
        meta["w_max"] = f["w_max"]
    return spec, weights, InsituConfig.from_dict(meta["config"]), meta


def train_insitu(config: InsituConfig, *, data: Dataset | None = None, out_dir: str | Path | None = None,
                 resume: bool = False, show_progress: bool = False) -> InsituResult:
    """Train on the circuit of ``config.profile``; see the module docstring."""
    profile: HardwareProfile = load_profile(config.profile)
    if not profile.is_circuit:
        raise SimulationError(f"--on {profile.name} is digital; in-situ training needs a circuit profile")
    if resume and out_dir is None:
        raise SimulationError("resume needs an output folder (--out)")
    if data is None:
        data = load_dataset(config.dataset, n_train=config.n_train, n_test=config.n_test)
    spec = NetworkSpec(input_dim=data.input_dim, width=config.width, depth=config.depth,
                       output_dim=data.n_classes, act=config.act, param=config.param, skip=config.skip)
    batch = config.batch_size
    per_epoch = batches_per_epoch(len(data.x_train), batch)
    if per_epoch == 0:
        raise SimulationError(f"batch_size={batch} is larger than the {len(data.x_train)} training samples")
    total = config.iters if config.iters is not None else max(1, round((config.epochs or 1.0) * per_epoch))
    if config.tau_s is not None:
        tau_s = config.tau_s
    else:
        tau_s = profile.tau_s if config.h is None else profile.dt_s / config.h
    a = spec.scalings()
    lrs = [config.param_lr / a[l] ** 2 * (config.hidden_lr_mult if l < spec.depth - 1 else 1.0)
           for l in range(spec.depth)]
    x_test = data.x_test.astype(np.float64)
    y_train = data.one_hot(data.y_train).astype(np.float64)

    # initial programming: μPC init written with the profile's programming noise
    initial = init_weights(spec, seed=config.seed)
    w_max = np.array([config.w_max_scale * float(np.max(np.abs(w))) for w in initial])
    programmed, _ = program_weights(initial, profile.replace(weight_bits=0, weight_clip_std=0.0, deploy_time_s=0.0),
                                    seed=config.seed)
    weights = [np.clip(w, -m, m) for w, m in zip(programmed, w_max)]
    gammas = [device_gains(w.shape, profile.d2d_frac, seed=config.seed, layer=l) for l, w in enumerate(weights)]

    history = History(columns=INSITU_COLUMNS)
    counts = EventCounts()
    run = RunDir(out_dir, checkpoint_name=CHECKPOINT) if out_dir is not None else None
    start, wall_before = 0, 0.0
    if run is not None:
        run.start(config.to_dict() | {"profile_values": profile.values()}, resume=resume,
                  may_change=("iters", "epochs", "test_every"))
        if resume:
            _, weights, _, meta = load_insitu(run.path)
            weights = [np.array(w) for w in weights]
            start, wall_before = int(meta["iteration"]), float(meta["wall_s"])
            counts = _counts_from_dict(meta["counts"])
            history = run.read_history(INSITU_COLUMNS)
            history.truncate(start)

    def accuracy() -> float:
        out = feedforward(spec, weights, x_test)[1]
        return float(np.mean(np.argmax(out, axis=1) == data.y_test))

    def evaluate() -> dict:
        return {"test_acc": accuracy(), "energy_j": price(counts, profile).total_j}

    def save(iteration: int, wall_s: float) -> None:
        _save(run.checkpoint_path, weights, w_max, iteration, wall_s, counts, config, spec)

    cells = sum(o * i for o, i in spec.weight_shapes())
    drives = batch * sum(o + i for o, i in spec.weight_shapes())  # row and column drives of one batch
    order, order_epoch = None, -1
    with TrainingLoop(history=history, run=run, total=total, start=start, wall_before=wall_before,
                      test_every=config.test_every, save=save, desc=f"in-situ {profile.name}",
                      show_progress=show_progress, resumed=resume) as loop:
        for it in range(start, total):
            epoch, j = divmod(it, per_epoch)
            if epoch != order_epoch:
                order, order_epoch = batch_indices(len(data.x_train), batch, seed=config.seed, epoch=epoch), epoch
            idx = order[j]
            x = data.x_train[idx].astype(np.float64)
            y = y_train[idx]
            sample0 = (it * batch) % ((1 << 18) - batch)  # noise counters hold 18 bits of sample index
            r = simulate(spec, weights, x, y, profile=profile, init="zero", ff_steps=spec.n_hidden + 1,
                         ff_h=1.0, n_steps=config.n_steps, tau_s=tau_s, seed=config.seed,
                         sample_offset=sample0, w_max=w_max)
            free_energy = float(np.mean(r.free_energy))
            loss = 0.5 * float(np.sum((y - feedforward(spec, weights, x)[1]) ** 2)) / batch
            if not (math.isfinite(free_energy) and math.isfinite(loss)):
                raise DivergenceError(it + 1, "the free energy", loop.checkpoint_at)
            eps = r.errors  # the error neurons' own values: converter errors cancel against the states
            pre = [x] + [phi(spec.act, r.z[l]) for l in range(spec.n_hidden)]
            pulses = 0
            for l in range(spec.depth):
                base = ((it * spec.depth + l) << 30) % (1 << 62)
                pulses += pulsed_update(weights[l], np.ascontiguousarray(eps[l]), np.ascontiguousarray(pre[l]),
                                        lrs[l] * a[l] / batch, w_max[l], int(profile.pulse_bl), profile.dw_min_frac,
                                        profile.up_down_asym, profile.c2c_frac, bool(profile.soft_bounds),
                                        gammas[l], config.seed, base)
            update = EventCounts(write_pulses=float(pulses if profile.dw_min_frac > 0 else batch * cells),
                                 dac_conversions={profile.dac_bits: float(drives)})
            counts = counts + r.counts + update
            loop.end_iteration(it + 1, {"train_loss": loss, "free_energy": free_energy}, evaluate)
    report = price(counts, profile)
    acc = history.last("test_acc")
    return InsituResult(config=config, spec=spec, weights=weights, w_max=w_max, history=history,
                        test_acc=float(acc if acc is not None else accuracy()), iterations=total, wall_s=loop.wall(),
                        counts=counts, energy_j=report.total_j, energy_components_j=dict(report.components_j),
                        write_pulses=counts.write_pulses, out_dir=Path(out_dir) if out_dir is not None else None)
