"""The thread governor: its decisions, and that the thread count never changes a result."""

import numpy as np
import pytest
import torch

import models.training as training
from models.pcnet import PCNet
from models.steps import adam, bp_step, pc_step
from models.threads import ThreadGovernor, busy_seconds, threads_for
from models.training import TrainConfig, train
from pchw.data import synthetic_teacher_student
from pchw.spec import NetworkSpec


@pytest.mark.parametrize(
    "others,expected",
    [(0.0, 2), (0.1, 2), (0.35, 2), (0.45, 1), (0.67, 1), (1.0, 1), (1.9, 1), (5.0, 1)],
)
def test_threads_follow_the_free_cores_of_two(others, expected):
    # 0.67: one busy competitor beside our two threads gets its fair third of the machine
    assert threads_for(n_cpus=2, others_cores=others, max_threads=2) == expected


def test_threads_never_exceed_the_starting_count():
    assert threads_for(n_cpus=16, others_cores=0.0, max_threads=4) == 4
    assert threads_for(n_cpus=16, others_cores=13.0, max_threads=8) == 3


def test_busy_seconds_reads_only_our_cpus(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  900 0 100 5000 50 0 0 0 0 0\n"
        "cpu0 100 10 20 1000 5 1 2 3 0 0\n"
        "cpu1 400 0 50 2000 5 0 0 0 0 0\n"
        "cpu2 999 0 0 0 0 0 0 0 0 0\n"
        "intr 12345\n"
    )
    ticks = __import__("os").sysconf("SC_CLK_TCK")
    assert busy_seconds(frozenset({0, 1}), stat_path=stat) == pytest.approx((136 + 450) / ticks)
    assert busy_seconds(frozenset({0, 7}), stat_path=stat) is None  # a CPU we cannot see: unknown
    assert busy_seconds(frozenset({0}), stat_path=tmp_path / "absent") is None


class FakeMachine:
    """A clock, this process's CPU time and the machine's busy time, advanced by hand."""

    def __init__(self):
        self.t = self.busy = self.own = 0.0

    def run(self, seconds, *, own_cores, other_cores):
        self.t += seconds
        self.own += own_cores * seconds
        self.busy += (own_cores + other_cores) * seconds


def _governor(machine, set_to, **kw):
    gov = ThreadGovernor(max_threads=2, interval_s=0.5, busy=lambda: machine.busy, clock=lambda: machine.t,
                         own_cpu=lambda: machine.own, set_threads=set_to.append, **kw)
    gov.n_cpus = 2
    return gov


def test_governor_drops_to_one_thread_beside_a_competitor_and_returns():
    machine, set_to = FakeMachine(), []
    with _governor(machine, set_to) as gov:
        machine.run(0.05, own_cores=1.95, other_cores=0.02)
        assert gov.update() == 2  # before the first (short) interval: not measured
        machine.run(0.05, own_cores=1.95, other_cores=0.02)
        assert gov.update() == 2
        machine.run(0.2, own_cores=1.3, other_cores=0.7)
        assert gov.update() == 2  # inside the interval: not re-measured
        machine.run(0.4, own_cores=1.3, other_cores=0.7)
        assert gov.update() == 1
        machine.run(0.6, own_cores=1.0, other_cores=1.0)
        assert gov.update() == 1
        machine.run(0.6, own_cores=1.0, other_cores=0.0)  # the competitor left
        assert gov.update() == 2
    assert gov.switches == 2
    assert set_to[0] == 2 and set_to[1:3] == [1, 2]  # entered at the max, switched twice, then restored


def test_governor_keeps_its_count_when_the_machine_cannot_be_read():
    machine, set_to = FakeMachine(), []
    gov = ThreadGovernor(max_threads=2, busy=lambda: None, clock=lambda: machine.t, set_threads=set_to.append)
    with gov:
        machine.run(5.0, own_cores=1.0, other_cores=1.0)
        assert gov.update() == 2
    assert gov.switches == 0


# -- the thread count never changes a result -----------------------------------------------------
SHAPES = dict(input_dim=784, width=128, output_dim=10)  # the sizes at which kernels go parallel


def _steps(model, depth, precision, threads, n_iters=3):
    torch.set_num_threads(threads)
    spec = NetworkSpec(depth=depth, param="sp" if model == "sp" else "mupc", **SHAPES)
    net = PCNet(spec, seed=0, precision=precision)
    opt = adam(net, 0.05)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 784, generator=gen)
    y = torch.nn.functional.one_hot(torch.randint(0, 10, (64,), generator=gen), 10).float()
    history = []
    for _ in range(n_iters):
        opt.zero_grad(set_to_none=False)
        if model == "bp":
            history.append(float(bp_step(net, x, y)))
        else:
            history.extend(float(v) for v in pc_step(net, x, y, n_steps=6, activity_lr=0.5))
        opt.step()
    outputs = net.predict(torch.randn(3000, 784, generator=gen))
    return [p.detach().clone() for p in net.parameters()], history, outputs


@pytest.mark.parametrize("model,depth,precision", [("mupc", 6, "float32"), ("sp", 2, "float32"),
                                                   ("bp", 6, "float32"), ("mupc", 6, "bfloat16"),
                                                   ("bp", 4, "bfloat16")])
def test_a_step_gives_the_same_bits_for_any_thread_count(model, depth, precision):
    before = torch.get_num_threads()
    try:
        ref = _steps(model, depth, precision, 1)
        for threads in (2, 3):
            got = _steps(model, depth, precision, threads)
            assert all(torch.equal(a, b) for a, b in zip(ref[0], got[0])), f"weights differ at {threads} threads"
            assert ref[1] == got[1], f"loss / free energy differ at {threads} threads"
            assert torch.equal(ref[2], got[2]), f"outputs differ at {threads} threads"
    finally:
        torch.set_num_threads(before)


def test_training_while_the_governor_switches_every_iteration_is_bit_identical(monkeypatch):
    data = synthetic_teacher_student(n_train=640, n_test=256, input_dim=784, n_classes=10, seed=0)
    cfg = TrainConfig(model="mupc", dataset="synthetic", depth=5, width=128, batch_size=64, iters=6,
                      n_steps=4, test_every=3, device="cpu")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        steady = train(cfg, data=data)

        class Flapping(ThreadGovernor):
            def update(self):
                self.threads = 3 - self.threads
                torch.set_num_threads(self.threads)
                return self.threads

        monkeypatch.setattr(training, "ThreadGovernor", Flapping)
        flapping = train(cfg, data=data)
    finally:
        torch.set_num_threads(before)
    for a, b in zip(steady.weights(), flapping.weights()):
        assert np.array_equal(a, b)
    assert [r["free_energy"] for r in steady.history.rows] == [r["free_energy"] for r in flapping.history.rows]
    assert steady.test_acc == flapping.test_acc
