"""The PC step replayed as a CUDA graph gives the eager step's numbers (models.graphs).

The CUDA tests run only where a GPU is present; on the CPU the graph option must leave the
eager step in place.
"""

import numpy as np
import pytest
import torch

from models.graphs import PCStep
from models.pcnet import PCNet
from models.steps import adam, pc_step
from models.training import TrainConfig, train
from pchw.data import synthetic_teacher_student
from pchw.spec import NetworkSpec

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
SPEC = NetworkSpec(input_dim=20, width=32, depth=7, output_dim=5)


def _batches(n: int, device: str, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = torch.randn(16, SPEC.input_dim, generator=gen)
        y = torch.nn.functional.one_hot(torch.randint(0, SPEC.output_dim, (16,), generator=gen), SPEC.output_dim)
        out.append((x.to(device), y.float().to(device)))
    return out


def _run(device: str, precision: str, graph: bool, n_iters: int) -> list[list[torch.Tensor]]:
    """Loss, F, gradients and weights after each of ``n_iters`` Adam steps, copied to the CPU."""
    net = PCNet(SPEC, seed=3, precision=precision, device=device)
    opt = adam(net, 1e-2)
    step = PCStep(net, n_steps=6, activity_lr=0.3, graph=graph)
    assert step.graphed == (graph and device == "cuda")
    record = []
    for x, y in _batches(n_iters, device):
        loss, free_energy = step(x, y)
        grads = [p.grad.clone() for p in (net.w_in, net.w_hid, net.w_out)]
        opt.step()
        record.append([t.detach().cpu() for t in (loss, free_energy, *grads, net.w_in, net.w_hid, net.w_out)])
    return record


def test_graph_option_is_the_eager_step_on_the_cpu():
    eager = _run("cpu", "float32", graph=False, n_iters=3)
    asked = _run("cpu", "float32", graph=True, n_iters=3)
    for a, b in zip(eager, asked):
        for u, v in zip(a, b):
            assert torch.equal(u, v)
    net = PCNet(SPEC, seed=3)
    x, y = _batches(1, "cpu")[0]
    loss, free_energy = PCStep(net, n_steps=6, activity_lr=0.3)(x, y)
    grads = [p.grad.clone() for p in (net.w_in, net.w_hid, net.w_out)]
    ref_loss, ref_f = pc_step(net, x, y, n_steps=6, activity_lr=0.3)
    assert torch.equal(loss, ref_loss) and torch.equal(free_energy, ref_f)
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, (net.w_in, net.w_hid, net.w_out)))


@CUDA
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_graph_replays_give_the_eager_steps_numbers(precision):
    """Five steps with Adam between them: the replays follow the weights as Adam updates them."""
    eager = _run("cuda", precision, graph=False, n_iters=5)
    graphed = _run("cuda", precision, graph=True, n_iters=5)
    for it, (a, b) in enumerate(zip(eager, graphed)):
        for name, u, v in zip(("loss", "F", "∇W_in", "∇W_hid", "∇W_out", "W_in", "W_hid", "W_out"), a, b):
            scale = float(u.abs().max())
            assert float((u - v).abs().max()) <= 1e-6 * scale, f"iteration {it}, {name}"


@CUDA
def test_graph_rejects_another_batch_shape():
    net = PCNet(SPEC, seed=3, device="cuda")
    step = PCStep(net, n_steps=2, activity_lr=0.3, graph=True)
    step(*_batches(1, "cuda")[0])
    x, y = _batches(1, "cuda")[0]
    with pytest.raises(ValueError, match="captured for inputs"):
        step(x[:8], y[:8])


@CUDA
def test_training_with_and_without_graph_agree():
    data = synthetic_teacher_student(n_train=1024, n_test=256, seed=0)
    kw = dict(dataset="synthetic", depth=6, width=32, batch_size=32, iters=25, test_every=10, param_lr=0.01,
              device="cuda")
    runs = [train(TrainConfig(**kw, cuda_graph=g), data=data) for g in (False, True)]
    for col in ("train_loss", "free_energy", "test_acc"):
        a = np.array([r.get(col) for r in runs[0].history.rows], dtype=float)
        b = np.array([r.get(col) for r in runs[1].history.rows], dtype=float)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=0, equal_nan=True)
    for a, b in zip(runs[0].weights(), runs[1].weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(a).max())
