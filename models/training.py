"""One training loop for μPC, SP (predictive coding) and the Depth-μP backprop baseline.

PC step for a batch (DESIGN.md §2): activities start at the feedforward pass, ``n_steps``
(T) steps of gradient descent on the batch-mean free energy with step ``activity_lr`` (β),
then one Adam step on ∇_W F at the final activities. BP: one Adam step on the gradient of
the MSE loss (1/2B) Σ‖y − f(x)‖² of the same network (same forward map and init as μPC).
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from pchw.data import Dataset, batch_indices, batches_per_epoch, load_dataset
from pchw.errors import PchwError
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
from pchw.spec import Activation, NetworkSpec, Parameterisation

from .gpu_energy import open_meter
from .graphs import PCStep
from .pcnet import PCNet
from .precision import Precision
from .steps import adam, bp_step
from .threads import ThreadGovernor

MODELS = ("mupc", "sp", "bp")
CHECKPOINT_FORMAT = "pchw-torch-checkpoint-1"


class ConfigError(PchwError, ValueError):
    """An invalid training option: the message names the value and what is allowed."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (saved as ``config.json``).

    Attributes:
        model: ``mupc`` (μPC), ``sp`` (standard-parameterisation PC) or ``bp`` (Depth-μP backprop).
        dataset: ``mnist``, ``fashion-mnist`` or ``synthetic``.
        depth: number of weight matrices L (hidden layers H = L − 1), ≥ 2.
        width: hidden width N.
        act: activation (``relu``, ``tanh``, ``linear``).
        skip: residual skip connections between hidden layers.
        iters: number of weight updates; ``None`` uses ``epochs``.
        epochs: passes over the training set (may be fractional); both ``None`` → one epoch.
        n_steps: inference steps T per batch; ``None`` → H (the μPC paper's default).
        activity_lr: β, the step of gradient descent on the batch-mean free energy.
        param_lr: Adam learning rate for the weights.
        batch_size: samples per batch (the last partial batch of an epoch is dropped).
        seed: seeds the weight init and the data order.
        test_every: evaluate test accuracy and checkpoint every this many iterations.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
        dtype: ``float32``, ``float64`` or ``bfloat16`` (bf16 matmul operands, fp32 state:
            :mod:`models.precision`).
        n_train, n_test: use only the first n samples (quick runs); ``None`` → all.
        cuda_graph: on a CUDA device, replay the PC step as a CUDA graph (:mod:`models.graphs`:
            the same numbers with one launch per step instead of ~10 per inference step); no
            effect on the CPU or for ``bp``.
    """

    model: str = "mupc"
    dataset: str = "mnist"
    depth: int = 9
    width: int = 128
    act: str = "relu"
    skip: bool = True
    iters: int | None = None
    epochs: float | None = None
    n_steps: int | None = None
    activity_lr: float = 0.5
    param_lr: float = 0.1
    batch_size: int = 64
    seed: int = 0
    test_every: int = 100
    device: str = "auto"
    dtype: str = "float32"
    n_train: int | None = None
    n_test: int | None = None
    cuda_graph: bool = True

    def __post_init__(self) -> None:
        def bad(name: str, allowed: str) -> ConfigError:
            return ConfigError(f"{name}={getattr(self, name)!r} is invalid: {allowed}")

        if self.model not in MODELS:
            raise bad("model", "choose one of " + ", ".join(MODELS))
        if self.act not in [a.value for a in Activation]:
            raise bad("act", "choose one of " + ", ".join(a.value for a in Activation))
        if self.dtype not in [p.value for p in Precision]:
            raise bad("dtype", "choose one of " + ", ".join(p.value for p in Precision))
        for name, minimum in (("depth", 2), ("width", 1), ("batch_size", 1), ("test_every", 1), ("seed", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise bad(name, f"must be an integer >= {minimum}")
        for name in ("iters", "n_steps", "n_train", "n_test"):
            value = getattr(self, name)
            minimum = 0 if name == "n_steps" else 1
            if value is not None and (not isinstance(value, int) or value < minimum):
                raise bad(name, f"must be an integer >= {minimum}")
        if not isinstance(self.cuda_graph, bool):
            raise bad("cuda_graph", "must be true or false")
        if self.iters is not None and self.epochs is not None:
            raise ConfigError("give either iters or epochs, not both")
        if self.epochs is not None and not (self.epochs > 0 and math.isfinite(self.epochs)):
            raise bad("epochs", "must be > 0")
        for name in ("activity_lr", "param_lr"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise bad(name, "must be a finite number > 0")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise bad("device", "choose auto, cpu, cuda or cuda:N")

    @property
    def algorithm(self) -> str:
        """``pc`` or ``bp``."""
        return "bp" if self.model == "bp" else "pc"

    @property
    def inference_steps(self) -> int:
        return self.depth - 1 if self.n_steps is None else self.n_steps

    def network_spec(self, data: Dataset) -> NetworkSpec:
        param = Parameterisation.SP if self.model == "sp" else Parameterisation.MUPC
        return NetworkSpec(
            input_dim=data.input_dim,
            width=self.width,
            depth=self.depth,
            output_dim=data.n_classes,
            act=self.act,
            param=param,
            skip=self.skip,
        )

    def total_iterations(self, per_epoch: int) -> int:
        if self.iters is not None:
            return self.iters
        return max(1, round((1.0 if self.epochs is None else self.epochs) * per_epoch))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return config_from_dict(cls, d)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        config: the run's configuration.
        spec: the network specification built from it.
        net: the trained network (weights on the training device).
        history: per-iteration metrics (the rows of ``history.csv``).
        test_acc: final test accuracy in [0, 1].
        iterations: weight updates done in total (including those before a resume).
        wall_s: wall-clock seconds of training in total.
        gpu_energy_j: joules measured by NVML over the run, or ``None`` when not measured.
        out_dir: the run folder, when one was written.
    """

    config: TrainConfig
    spec: NetworkSpec
    net: PCNet
    history: History
    test_acc: float
    iterations: int
    wall_s: float
    gpu_energy_j: float | None
    out_dir: Path | None

    def weights(self) -> list[np.ndarray]:
        """W_1..W_L as float64 numpy arrays."""
        return self.net.numpy_weights()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} requested but no CUDA device is available; use --device cpu")
    return torch.device(name)


# config keys a resumed run may change (a graphed step gives the eager step's numbers)
RESUMABLE_KEYS = ("iters", "epochs", "test_every", "device", "cuda_graph")


def _plain(obj: object) -> object:
    """A tensor as (dtype, shape, raw bytes) for the checkpoint's digest; anything else unchanged."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        return {"dtype": str(t.dtype), "shape": list(t.shape), "bytes": t.reshape(-1).view(torch.uint8).numpy()}
    return obj


def _save_checkpoint(path: Path, net, opt, iteration: int, wall_s: float, energy_j: float | None, config) -> None:
    state = {
        "format": CHECKPOINT_FORMAT,
        "iteration": iteration,
        "wall_s": wall_s,
        "gpu_energy_j": energy_j,
        "config": config.to_dict(),
        "spec": net.spec.to_dict(),
        "model": net.state_dict(),
        "optimizer": opt.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    state["sha256"] = payload_sha256(state, leaf=_plain)
    buf = io.BytesIO()  # serialise first: a full disk then fails in a plain file write (OSError), not in torch
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def _check_state(state: object, path: Path) -> None:
    """Raise CheckpointError unless ``state`` has the checkpoint's structure and self-consistent shapes."""
    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{path} is not a valid pchw training checkpoint ({what}); restore it or start the "
                               f"run again")

    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise bad("no pchw-torch-checkpoint-1 format tag")
    for key, kind in (("iteration", int), ("wall_s", float), ("config", dict), ("spec", dict), ("model", dict),
                      ("optimizer", dict), ("torch_rng", torch.Tensor)):
        if not isinstance(state.get(key), kind):
            raise bad(f"{key} is missing or not {kind.__name__}")
    try:
        spec = NetworkSpec.from_dict(state["spec"])
        config = TrainConfig.from_dict(state["config"])
    except (PchwError, KeyError, TypeError, ValueError) as exc:
        raise bad(f"its spec or config is invalid: {' '.join(str(exc).split())}") from None
    if (config.depth, config.width) != (spec.depth, spec.width):
        raise bad(f"its config says depth {config.depth}, width {config.width}; its spec {spec.depth}, {spec.width}")
    shapes = spec.weight_shapes()
    expected = {"w_in": shapes[0], "w_hid": (spec.depth - 2, spec.width, spec.width), "w_out": shapes[-1]}
    found = {k: tuple(v.shape) if isinstance(v, torch.Tensor) else None for k, v in state["model"].items()}
    if found != expected:
        raise bad(f"weights {found} do not have the shapes {expected} of its network")
    moments = [s.get("exp_avg") for s in state["optimizer"].get("state", {}).values() if isinstance(s, dict)]
    moment_shapes = [tuple(m.shape) if isinstance(m, torch.Tensor) else None for m in moments]
    if moments and moment_shapes != list(expected.values()):
        raise bad("its optimizer state does not fit its weights")
    if state["iteration"] < 0 or state["torch_rng"].dtype != torch.uint8 or state["torch_rng"].dim() != 1:
        raise bad("a negative iteration or a malformed RNG state")


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict:
    """Read and verify a checkpoint written by :func:`train` (tensors only; nothing arbitrary is unpickled).

    Raises :class:`~pchw.runlog.CheckpointError` for a file that is unreadable, truncated, empty,
    not a pchw checkpoint, fails its sha256 integrity check, has weights that disagree with its own
    network spec, or was written for another configuration than the ``config.json`` beside it.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for a damaged file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise CheckpointError(f"{path} cannot be read as a checkpoint ({first}); it is truncated or corrupt: "
                              f"restore it or start the run again") from None
    _check_state(state, path)
    verify_payload({k: v for k, v in state.items() if k != "sha256"}, state.get("sha256"), path, leaf=_plain)
    check_matches_run(path, state["config"], ignore=RESUMABLE_KEYS)
    return state


def load_trained(run_dir: str | Path) -> tuple[NetworkSpec, list[np.ndarray], TrainConfig]:
    """(spec, float64 weights W_1..W_L, config) of a run folder written by ``pchw train``."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.exists():
        raise ConfigError(f"no checkpoint at {path}; train one with `pchw train --out {run_dir}`")
    state = load_checkpoint(path)
    spec = NetworkSpec.from_dict(state["spec"])
    net = PCNet(spec, dtype=torch.float64)
    net.load_state_dict({k: v.double() for k, v in state["model"].items()})
    return spec, net.numpy_weights(), TrainConfig.from_dict(state["config"])


@torch.no_grad()
def _health(loss: torch.Tensor, free_energy: torch.Tensor | None,
            params: tuple[torch.Tensor, ...]) -> tuple[float, float | None, float]:
    """(train loss, F or None, Σ of every weight in float64), read back in one device-to-host copy:
    on a GPU each read waits for the queued kernels, so one read per iteration instead of three.
    A NaN or ±inf weight anywhere makes the float64 sum non-finite (float32 values cannot overflow it)."""
    weights = sum(p.sum(dtype=torch.float64) for p in params)
    f = torch.full_like(loss, math.nan) if free_energy is None else free_energy
    loss_value, weight_sum, f_value = torch.stack([loss.double(), weights, f.double()]).tolist()
    return loss_value, (None if free_energy is None else f_value), weight_sum


def train(
    config: TrainConfig,
    *,
    data: Dataset | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    show_progress: bool = False,
) -> TrainResult:
    """Train ``config.model`` and return a :class:`TrainResult`.

    With ``out_dir`` the run writes ``config.json``, ``history.csv`` and ``checkpoint.pt``
    (every ``test_every`` iterations, at the end, and on Ctrl-C); ``resume=True`` continues
    from the checkpoint and gives bit-identical weights to an uninterrupted CPU run.
    Raises :class:`DivergenceError` on a non-finite energy, loss or weight (the last good
    checkpoint is kept) and :class:`Interrupted` after saving on Ctrl-C.
    """
    if resume and out_dir is None:
        raise ConfigError("resume needs an output folder (--out)")
    device = resolve_device(config.device)
    if data is None:
        data = load_dataset(config.dataset, n_train=config.n_train, n_test=config.n_test)
    spec = config.network_spec(data)
    precision = Precision(config.dtype)
    dtype = precision.storage
    batch = config.batch_size
    n_train = len(data.x_train)
    per_epoch = batches_per_epoch(n_train, batch)
    if per_epoch == 0:
        raise ConfigError(f"batch_size={batch} is larger than the {n_train} training samples")
    total = config.total_iterations(per_epoch)

    torch.manual_seed(config.seed)
    net = PCNet(spec, seed=config.seed, precision=precision, device=device)
    opt = adam(net, config.param_lr)
    x_train = torch.as_tensor(data.x_train, dtype=dtype, device=device)
    y_train = torch.as_tensor(data.one_hot(data.y_train), dtype=dtype, device=device)
    x_test = torch.as_tensor(data.x_test, dtype=dtype, device=device)
    y_test = torch.as_tensor(data.y_test, device=device)

    meter = open_meter(device)
    columns = HISTORY_COLUMNS + (("gpu_energy_j",) if meter is not None else ())
    history = History(columns=columns)
    run = RunDir(out_dir) if out_dir is not None else None
    start, wall_before, energy_before = 0, 0.0, 0.0
    if run is not None:
        run.start(config.to_dict(), resume=resume, may_change=RESUMABLE_KEYS)
        if resume:
            state = load_checkpoint(run.checkpoint_path, map_location=device)
            net.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["torch_rng"])
            start, wall_before = int(state["iteration"]), float(state["wall_s"])
            energy_before = float(state.get("gpu_energy_j") or 0.0)
            history = run.read_history(columns)
            history.truncate(start)

    def save(iteration: int, wall_s: float) -> None:
        _save_checkpoint(run.checkpoint_path, net, opt, iteration, wall_s, energy(), config)

    def energy(*, force: bool = True) -> float | None:
        """Joules since the run began (a resumed run's earlier ones included); None off NVML or, unless
        ``force``, where a read is not due (a read costs ~3 ms: models.gpu_energy)."""
        joules = None if meter is None else meter.joules_if_due(force=force)
        return None if joules is None else energy_before + joules

    def evaluate() -> dict:
        return {"test_acc": net.accuracy(x_test, y_test)}

    params = (net.w_in, net.w_hid, net.w_out)
    step = PCStep(net, n_steps=config.inference_steps, activity_lr=config.activity_lr, graph=config.cuda_graph)
    order: torch.Tensor | None = None
    order_epoch = -1
    # on CPU the intra-op thread count follows the cores other processes leave free (models.threads)
    governor = ThreadGovernor() if device.type == "cpu" else None
    loop = TrainingLoop(history=history, run=run, total=total, start=start, wall_before=wall_before,
                        test_every=config.test_every, save=save, desc=f"train {config.model}",
                        show_progress=show_progress, resumed=resume)
    with governor or contextlib.nullcontext(), loop:
        for it in range(start, total):
            if governor is not None:
                governor.update()
            epoch, j = divmod(it, per_epoch)
            if epoch != order_epoch:  # one copy to the device per epoch, not one per batch
                order = torch.as_tensor(batch_indices(n_train, batch, seed=config.seed, epoch=epoch), device=device)
                order_epoch = epoch
            idx = order[j]
            x, y = x_train[idx], y_train[idx]

            if config.algorithm == "pc":  # pc_step sets p.grad outright: nothing to zero
                loss, free_energy = step(x, y)
            else:
                opt.zero_grad(set_to_none=False)
                loss, free_energy = bp_step(net, x, y), None
            # Adam runs before the checks read anything back, so the host waits for the GPU once per
            # iteration; a diverged step still stops the run before its weights reach a checkpoint
            opt.step()
            loss, free_energy, weight_sum = _health(loss, free_energy, params)
            if free_energy is not None and not math.isfinite(free_energy):
                raise DivergenceError(it + 1, "the free energy", loop.checkpoint_at)
            if not math.isfinite(loss):
                raise DivergenceError(it + 1, "the training loss", loop.checkpoint_at)
            if not math.isfinite(weight_sum):
                raise DivergenceError(it + 1, "a weight", loop.checkpoint_at)
            row = {"train_loss": loss, "free_energy": free_energy}
            if meter is not None:
                row["gpu_energy_j"] = energy(force=loop.is_test_point(it + 1))
            loop.end_iteration(it + 1, row, evaluate)

    test_acc = history.last("test_acc")
    return TrainResult(
        config=config,
        spec=spec,
        net=net,
        history=history,
        test_acc=float(test_acc if test_acc is not None else net.accuracy(x_test, y_test)),
        iterations=total,
        wall_s=loop.wall(),
        gpu_energy_j=energy(),
        out_dir=Path(out_dir) if out_dir is not None else None,
    )
