"""numpy oracle == torch hand-written gradients == autograd, float64, rtol 1e-10."""

import numpy as np
import pytest
import torch

from models.pcnet import PCNet
from pchw import oracle
from pchw.spec import NetworkSpec, init_weights

CASES = [
    (act, skip, depth, param)
    for act in ("relu", "tanh", "linear")
    for skip in (True, False)
    for depth in (2, 3, 6)
    for param in ("mupc", "sp")
]


def _problem(act, skip, depth, param, seed=0):
    spec = NetworkSpec(input_dim=7, width=6, depth=depth, output_dim=3, act=act, skip=skip, param=param)
    weights = init_weights(spec, seed=seed + 1)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5, 7))
    y = rng.standard_normal((5, 3))
    zs, _ = oracle.feedforward(spec, weights, x)
    zs = [z + 0.3 * rng.standard_normal(z.shape) for z in zs]  # off the feedforward point
    net = PCNet(spec, weights=weights, dtype=torch.float64)
    t = (torch.tensor(x), torch.tensor(y), torch.tensor(np.stack(zs)))
    return spec, weights, x, y, zs, net, t


def _close(a, b, rtol=1e-10):
    a, b = np.asarray(a), np.asarray(b)
    scale = max(np.abs(b).max(), 1e-300)
    assert np.abs(a - b).max() <= rtol * scale, np.abs(a - b).max() / scale


@pytest.mark.parametrize("act,skip,depth,param", CASES)
def test_activity_gradient_three_ways(act, skip, depth, param):
    spec, weights, x, y, zs, net, (tx, ty, tz) = _problem(act, skip, depth, param)
    expected = np.stack(oracle.activity_grad(spec, weights, x, y, zs))
    _close(net.activity_grad(tx, ty, tz).numpy(), expected)
    z = tz.clone().requires_grad_(True)
    energy = net.free_energy(tx, ty, z)
    energy.backward()
    _close(z.grad.numpy(), expected)
    assert energy.item() == pytest.approx(oracle.free_energy(spec, weights, x, y, zs), rel=1e-12)


@pytest.mark.parametrize("act,skip,depth,param", CASES)
def test_weight_gradient_three_ways(act, skip, depth, param):
    spec, weights, x, y, zs, net, (tx, ty, tz) = _problem(act, skip, depth, param)
    expected = oracle.weight_grad(spec, weights, x, y, zs)
    g_in, g_hid, g_out = net.weight_grads(tx, ty, tz)
    net.zero_grad()
    net.free_energy(tx, ty, tz).backward()
    for hand, auto, ref in ((g_in, net.w_in.grad, expected[0]), (g_out, net.w_out.grad, expected[-1])):
        _close(hand.numpy(), ref)
        _close(auto.numpy(), ref)
    if depth > 2:
        _close(g_hid.numpy(), np.stack(expected[1:-1]))
        _close(net.w_hid.grad.numpy(), np.stack(expected[1:-1]))


@pytest.mark.parametrize("act,skip,depth,param", CASES[::3])
def test_fast_inference_matches_oracle(act, skip, depth, param):
    spec, weights, x, y, zs, net, (tx, ty, tz) = _problem(act, skip, depth, param)
    expected = np.stack(oracle.inference(spec, weights, x, y, zs, n_steps=7, activity_lr=0.2))
    _close(net.inference(tx, ty, tz.clone(), n_steps=7, activity_lr=0.2).numpy(), expected)


def test_inference_lowers_free_energy_and_keeps_feedforward_errors_zero():
    spec = NetworkSpec(input_dim=10, width=16, depth=8, output_dim=4)
    weights = init_weights(spec, seed=3)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((8, 10)), rng.standard_normal((8, 4))
    zs, out = oracle.feedforward(spec, weights, x)
    eps = oracle.errors(spec, weights, x, y, zs)
    assert all(np.abs(e).max() == 0 for e in eps[:-1])  # feedforward init: only the output errs
    assert oracle.free_energy(spec, weights, x, y, zs) == pytest.approx(oracle.mse_loss(spec, weights, x, y))
    energies = [oracle.free_energy(spec, weights, x, y, zs)]
    for _ in range(5):
        zs = oracle.inference(spec, weights, x, y, zs, n_steps=4, activity_lr=0.5)
        energies.append(oracle.free_energy(spec, weights, x, y, zs))
    assert all(b < a for a, b in zip(energies, energies[1:]))


def test_bp_forward_is_the_same_map():
    spec, weights, x, *_ = _problem("relu", True, 6, "mupc")
    net = PCNet(spec, weights=weights, dtype=torch.float64)
    _, out = oracle.feedforward(spec, weights, x)
    _close(net(torch.tensor(x)).detach().numpy(), out)
    _close(net.feedforward(torch.tensor(x))[1].numpy(), out)


def test_numpy_weights_round_trip():
    spec, weights, *_ = _problem("tanh", False, 5, "sp")
    back = PCNet(spec, weights=weights, dtype=torch.float64).numpy_weights()
    assert all(np.array_equal(a, b) for a, b in zip(back, weights))


@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_predict_is_the_feedforward_output_bit_for_bit(skip, precision):
    """predict keeps one layer instead of all H, chunk by chunk: the same kernels, the same bits."""
    spec = NetworkSpec(input_dim=7, width=6, depth=6, output_dim=3, skip=skip)
    net = PCNet(spec, weights=init_weights(spec, seed=2), precision=precision)
    x = torch.randn(50, 7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(net.predict(x), net.feedforward(x)[1])
    chunked = net.predict(x, chunk=16)
    assert torch.equal(chunked, torch.cat([net.feedforward(x[i : i + 16])[1] for i in range(0, 50, 16)]))
    _, out = oracle.feedforward(spec, init_weights(spec, seed=2), x.double().numpy())
    if precision == "float32":
        _close(chunked.double().numpy(), out, rtol=1e-5)
