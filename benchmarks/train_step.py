"""PC training speed: the bare step, the CLI's iteration, and the matmul rate, in one run.

Default mode prints, per configuration and dtype, the median (and min–max over ``--repeats``
interleaved rounds) of

- ``step``: one training step (feedforward init, T inference steps, ∇W, Adam) on a fixed batch,
  the code ``pchw train`` runs (``models.steps``), eager;
- ``graph`` (CUDA only): the same step with its PC part replayed as a CUDA graph
  (``models.graphs``, ``pchw train``'s default on CUDA), and its ratio to the bmm rate;
- ``iteration``: one iteration of ``pchw train``'s loop with its defaults (``models.train`` on
  MNIST with a run folder: batch gather, step, history row, divergence checks, thread governor),
  from the ``wall_s`` column of its history (test points excluded; their cost is printed
  apart); ``it/step`` divides it by the step it runs: graphed on CUDA, eager on the CPU;
- GFLOP/s of the step (matmul FLOPs only, 2 per multiply–add) against the fp32 rate of the
  step's own batched matmuls (two ``bmm`` at the same shapes, back to back) measured in the
  same rounds; ``ratio`` = step GFLOP/s ÷ that rate. bf16 rows also show torch's native bf16
  bmm rate on this device.

``--under-load`` instead runs each configuration idle and beside ``--competitors`` CPU-bound
processes (a Python busy loop each), alternating, and prints the slowdown of the bare step at
a fixed thread count, the bare step under the thread governor, and the CLI iteration.

    python benchmarks/train_step.py [--device cpu|cuda] [--repeats 5] [--dtypes float32,bfloat16]
    python benchmarks/train_step.py --under-load [--depths 30,9] [--competitors 1]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

from models.pcnet import PCNet  # noqa: E402
from models.training import TrainConfig, train  # noqa: E402
from pchw.spec import NetworkSpec  # noqa: E402

try:  # absent in checkouts before the thread governor: the benchmark then measures without it
    from models.steps import adam, pc_step
    from models.threads import ThreadGovernor
except ImportError:
    adam = pc_step = ThreadGovernor = None
try:  # absent before the CUDA-graph step
    from models.graphs import PCStep
except ImportError:
    PCStep = None

CONFIGS = {129: ("depth 129 (H=128), T=128", 128), 30: ("depth 30 (H=29), T=30", 30),  # depth: (name, T)
           9: ("depth 9 (H=8), T=8", 8)}  # 9: pchw demo's networks
WIDTH, BATCH, D, D_Y = 128, 64, 784, 10


def step_flops(depth: int, n: int, b: int, t: int) -> float:
    """Matmul FLOPs of one PC training step."""
    h = depth - 1
    forward = 2 * b * (D * n + (h - 1) * n * n + n * D_Y)  # one pass through every layer
    per_inference_step = 2 * b * (2 * (h - 1) * n * n + 2 * n * D_Y)  # predictions + feedback
    return forward * 3 + t * per_inference_step  # ff init, errors, weight gradients


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def per_call_s(fn, device: torch.device, min_s: float) -> list[float]:
    """Seconds of each call of ``fn``, called until ``min_s`` has passed (at least twice)."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 2 or time.perf_counter() - start < min_s:
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def bare_step(depth: int, t: int, device: torch.device, dtype: str, *, graph: bool = False):
    """A closure running one PC training step on a fixed random batch (its PC part as a CUDA graph
    with ``graph``)."""
    spec = NetworkSpec(input_dim=D, width=WIDTH, depth=depth, output_dim=D_Y)
    net = PCNet(spec, seed=0, device=device, **({"precision": dtype} if dtype != "float32" else {}))
    opt = adam(net, 1e-3) if adam is not None else torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, D, generator=gen).to(device)
    y = torch.nn.functional.one_hot(torch.randint(0, D_Y, (BATCH,), generator=gen), D_Y).float().to(device)
    params = (net.w_in, net.w_hid, net.w_out)

    def legacy_step():  # the step as train() ran it before models.steps existed
        z, _ = net.feedforward(x)
        net.inference(x, y, z, n_steps=t, activity_lr=0.5)
        _, grads = net.energy_and_weight_grads(x, y, z)
        for p, g in zip(params, grads):
            p.grad = g

    graphed = PCStep(net, n_steps=t, activity_lr=0.5, graph=True) if graph else None

    def step():
        if graphed is not None:
            graphed(x, y)
        elif pc_step is None:
            legacy_step()
        else:
            pc_step(net, x, y, n_steps=t, activity_lr=0.5)
        opt.step()

    return step


def bmm_pair(depth: int, device: torch.device, dtype: torch.dtype):
    """The two batched matmuls of one inference step, at the step's shapes."""
    a = torch.randn(depth - 2, BATCH, WIDTH, device=device).to(dtype)
    w = torch.randn(depth - 2, WIDTH, WIDTH, device=device).to(dtype)
    out = torch.empty_like(a)
    w_t = w.transpose(1, 2)

    def matmuls():
        torch.bmm(a, w_t, out=out)
        torch.bmm(a, w, out=out)

    return matmuls, 2 * 2 * (depth - 2) * BATCH * WIDTH * WIDTH


def cli_iterations(depth: int, t: int, device: torch.device, dtype: str, data,
                   iters: int) -> tuple[list[float], float, tuple]:
    """(per-iteration seconds of ``pchw train``'s loop, seconds of its final test point, (NVML joules of the
    whole GPU, seconds, iterations) between its first and last energy reads — empty off NVIDIA GPUs)."""
    cfg = TrainConfig(model="mupc", dataset=data.name, depth=depth, width=WIDTH, n_steps=t, batch_size=BATCH,
                      iters=iters, device=device.type, dtype=dtype)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = train(cfg, data=data, out_dir=Path(tmp) / "run")
        total = time.perf_counter() - t0
    rows = result.history.rows
    wall = np.array([row["wall_s"] for row in rows])
    # NVML is read every ~0.5 s and at the last iteration (models.gpu_energy): the block's joules run from
    # the first read to the last, which leaves out the first iteration (its read comes at its end)
    read = [(row["iteration"], row["wall_s"], row["gpu_energy_j"]) for row in rows
            if row.get("gpu_energy_j") not in (None, "")]
    joules = ()
    if len(read) >= 2 and read[-1][0] > read[0][0]:
        (i0, t0, j0), (i1, t1, j1) = read[0], read[-1]
        joules = (float(j1) - float(j0), float(t1) - float(t0), i1 - i0)
    # rows record wall_s before their test point, so the diffs exclude the final evaluation
    return list(np.diff(wall)[1:]), total - wall[-1], joules


def load_data():
    from pchw.data import DataError, load_dataset, synthetic_teacher_student

    try:
        return load_dataset("mnist")
    except DataError:  # MNIST's shapes on generated data: the same work per iteration
        return synthetic_teacher_student(n_train=6400, n_test=10000, input_dim=D, n_classes=D_Y)


def _spread(values) -> str:
    v = np.asarray(values) * 1e3
    return f"{np.median(v):9.1f} [{v.min():.1f}–{v.max():.1f}]"


def _after(first, fn):
    def call():
        first()
        fn()
    return call


@contextlib.contextmanager
def governed():
    """Yields ``run(fn)``: ``fn`` preceded by a thread-governor update (after a 1 s settling run)."""
    if ThreadGovernor is None:
        yield lambda fn: fn
        return
    with ThreadGovernor() as governor:
        settle_until = time.perf_counter() + 1.0
        while time.perf_counter() < settle_until:
            governor.update()
            time.sleep(0.05)
        yield lambda fn: _after(governor.update, fn)


def measure_round(case: dict, device: torch.device, data, block_s: float) -> None:
    """One interleaved round of a configuration × dtype: appends to ``case``'s sample lists."""
    with governed() as run:  # the thread policy train() runs under, on a shared machine too
        case["step"].append(np.median(per_call_s(run(case["step_fn"]), device, block_s)))
        if case["graph_fn"] is not None:
            case["graph"].append(np.median(per_call_s(run(case["graph_fn"]), device, block_s)))
        case["mm"].append(np.median(per_call_s(run(case["mm_fn"]), device, block_s / 4)))
        if case["own_fn"] is not None:
            case["own"].append(np.median(per_call_s(run(case["own_fn"]), device, block_s / 4)))
    iteration, test_point, joules = cli_iterations(case["depth"], case["t"], device, case["dtype"], data,
                                                   case["cli_iters"])
    case["iteration"].append(np.median(iteration))
    if joules:  # NVML's counter ticks coarsely (~every 20-100 ms): a block's joules, not per-iteration diffs
        case["joules"].append(joules)
    case["test_point"].append(test_point)


def table_row(name: str, case: dict) -> str:
    flops = step_flops(case["depth"], WIDTH, BATCH, case["t"])
    step, it, mm = (np.median(case[k]) for k in ("step", "iteration", "mm"))
    own = f"{case['mm_flops'] / np.median(case['own']) / 1e9:7.1f}" if case["own"] else f"{'':7}"
    ratio = np.median([(flops / s) / (case["mm_flops"] / m) for s, m in zip(case["step"], case["mm"])])
    graph, looped = "", step  # it/step: the CLI iteration over the step it runs (graphed on CUDA)
    if case["graph"]:
        looped = np.median(case["graph"])
        graph_ratio = np.median([(flops / s) / (case["mm_flops"] / m) for s, m in zip(case["graph"], case["mm"])])
        graph = f" {_spread(case['graph']):>22} {graph_ratio:5.2f}"
    return (f"{name:<26} {case['dtype']:>8} {_spread(case['step']):>22} {_spread(case['iteration']):>22} "
            f"{it / looped:7.3f} {flops / step / 1e9:7.1f} {case['mm_flops'] / mm / 1e9:8.1f} {ratio:5.2f} {own}"
            f"{graph}")


def modelled_iteration_j(depth: int, t: int, dtype: str) -> tuple[str, float]:
    """(profile, J) of one training iteration as ``pchw`` prices it on the matching ``gpu-*`` profile: the
    step's digital event counts (MACs, memory traffic) × that profile's cited per-event energies."""
    from pchw.digital import digital_training_counts
    from pchw.events import price
    from pchw.profiles import load_profile

    name = "gpu-bf16" if dtype == "bfloat16" else "gpu-fp32"
    profile = load_profile(name)
    spec = NetworkSpec(input_dim=D, width=WIDTH, depth=depth, output_dim=D_Y)
    counts = digital_training_counts(spec, profile, algorithm="pc", batch_size=BATCH, n_steps=t)
    return name, price(counts, profile).total_j


def energy_note(name: str, case: dict) -> str:
    """NVML joules per CLI iteration (whole GPU, idle power included) beside the modelled figure.

    The counter advances in coarse ticks, so a round's figure is its block's joules ÷ its iterations."""
    joules, seconds, n = (np.array(v) for v in zip(*case["joules"]))
    per_it = joules / n
    watts = joules.sum() / seconds.sum()
    profile, modelled = modelled_iteration_j(case["depth"], case["t"], case["dtype"])
    return (f"{name}, {case['dtype']}: NVML {np.median(per_it):.3g} J per iteration [{per_it.min():.3g}–"
            f"{per_it.max():.3g}] over {n.sum()} iterations in {len(n)} blocks, {watts:.0f} W whole board; modelled "
            f"{modelled:.3g} J ({profile}, an estimate: counted work × cited J/event, no idle or launch-bound power); "
            f"measured ÷ modelled {np.median(per_it) / modelled:.0f}×")


def table(args, device: torch.device) -> None:
    data = load_data()
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, "
          f"width {WIDTH}, data {data.name}; median [min–max] of {args.repeats} rounds, dtypes interleaved")
    head = ("configuration", 26), ("dtype", 8), ("step ms", 22), ("iteration ms", 22), ("it/step", 7), \
        ("GFLOP/s", 7), ("bmm fp32", 8), ("ratio", 5), ("bmm own", 7)
    graphs = device.type == "cuda" and PCStep is not None
    if graphs:
        head += ("graph step ms", 22), ("ratio", 5)
    print(" ".join(f"{c:>{w}}" if i > 1 else f"{c:<{w}}" for i, (c, w) in enumerate(head)))
    notes = []
    for depth in args.depths:
        name, t = CONFIGS[depth]
        cases = {}
        for dtype in args.dtypes:
            step = bare_step(depth, t, device, dtype)
            step()  # warm-up
            mm_fn, mm_flops = bmm_pair(depth, device, torch.float32)
            cases[dtype] = {"depth": depth, "t": t, "dtype": dtype, "step_fn": step, "mm_fn": mm_fn,
                            "mm_flops": mm_flops, "cli_iters": max(4, int(args.block_s / min(per_call_s(
                                step, device, 0.0))) + 2),
                            "own_fn": bmm_pair(depth, device, torch.bfloat16)[0] if dtype == "bfloat16" else None,
                            "graph_fn": bare_step(depth, t, device, dtype, graph=True) if graphs else None,
                            **{k: [] for k in ("step", "mm", "own", "graph", "iteration", "test_point",
                                               "joules")}}
        for case in cases.values():
            if case["graph_fn"] is not None:
                case["graph_fn"]()  # the capture, outside the timed blocks
        for _ in range(args.repeats):
            for case in cases.values():
                measure_round(case, device, data, args.block_s)
        for dtype, case in cases.items():
            print(table_row(name, case))
            test_point, it = np.median(case["test_point"]), np.median(case["iteration"])
            if case["joules"]:
                notes.append(energy_note(name, case))
            notes.append(f"{name}, {dtype}: a test point (10,000-image evaluation + checkpoint) takes "
                         f"{1e3 * test_point:.0f} ms, {test_point / (100 * it):.1%} at the default --test-every 100")
        if "float32" in cases and "bfloat16" in cases:
            speed = [f32 / b16 for f32, b16 in zip(cases["float32"]["iteration"], cases["bfloat16"]["iteration"])]
            notes.append(f"{name}: bfloat16 iteration speed ÷ float32's, per round: median {np.median(speed):.2f} "
                         f"[{min(speed):.2f}–{max(speed):.2f}]")
    print("\n".join(notes))


def _competitors(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
        p.wait()


def under_load(args, device: torch.device) -> None:
    data = load_data()
    threads = torch.get_num_threads()
    print(f"device {device}, torch {torch.__version__}, {threads} threads, data {data.name}; idle and beside "
          f"{args.competitors} busy-loop process(es), alternating, {args.repeats} rounds each; "
          "per-call median and 90th percentile")
    for depth in args.depths:
        name, t = CONFIGS[depth]
        step = bare_step(depth, t, device, "float32")
        step()

        governor = ThreadGovernor() if ThreadGovernor is not None else None
        runs = {f"step, {threads} threads fixed": step}
        if governor is not None:
            runs["step, thread governor"] = _after(governor.update, step)
        samples = {(k, load): [] for k in [*runs, "pchw train iteration"] for load in ("idle", "loaded")}
        for _ in range(args.repeats):
            for load in ("idle", "loaded"):
                procs = _competitors(args.competitors if load == "loaded" else 0)
                try:
                    time.sleep(1.0)  # let the scheduler settle and the governor see the competitor
                    for label, fn in runs.items():
                        with governor if label.endswith("governor") else contextlib.nullcontext():
                            if label.endswith("governor"):
                                per_call_s(fn, device, 1.0)  # the governor's first intervals
                            samples[label, load] += per_call_s(fn, device, args.block_s)
                    once = np.median(samples[next(iter(runs)), "idle"] or [0.05])
                    iters = max(4, int(args.block_s / once) + 2)
                    samples["pchw train iteration", load] += cli_iterations(depth, t, device, "float32", data,
                                                                            iters)[0]
                finally:
                    _stop(procs)
        print(f"\n{name}")
        print(f"{'':32} {'idle ms (p90)':>18} {'loaded ms (p90)':>18} {'slowdown':>9}")
        for label in [*runs, "pchw train iteration"]:
            idle, loaded = np.array(samples[label, "idle"]) * 1e3, np.array(samples[label, "loaded"]) * 1e3
            print(f"{label:32} {np.median(idle):9.1f} ({np.percentile(idle, 90):6.1f}) "
                  f"{np.median(loaded):9.1f} ({np.percentile(loaded, 90):6.1f}) "
                  f"{np.median(loaded) / np.median(idle):8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--depths", default="129,30", help="comma-separated, from 129, 30 and 9")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--block-s", type=float, default=2.0, help="seconds per timed block")
    parser.add_argument("--under-load", action="store_true")
    parser.add_argument("--competitors", type=int, default=1)
    args = parser.parse_args()
    args.depths = [int(d) for d in args.depths.split(",")]
    args.dtypes = args.dtypes.split(",")
    for depth in args.depths:
        if depth not in CONFIGS:
            parser.error(f"--depths: {depth} is not one of {sorted(CONFIGS)}")
    if pc_step is None and not args.under_load and args.dtypes != ["float32"]:
        parser.error("this checkout has no bfloat16 path; pass --dtypes float32")
    device = torch.device(args.device)
    (under_load if args.under_load else table)(args, device)


if __name__ == "__main__":
    main()
