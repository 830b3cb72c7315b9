"""Backprop trained in situ on the same arrays as PC: on an exact circuit its update is SGD on the
loss (autograd), its events are the sweep, the backward sweep and the update, it learns, and the
recipes give every circuit preset a default for both algorithms."""

import numpy as np
import pytest
import torch

from pchw.circuit_events import backward_sweep_counts, forward_sweep_counts, update_counts
from pchw.data import synthetic_teacher_student
from pchw.profiles import list_profiles, load_profile
from pchw.spec import NetworkSpec, init_weights
from simulators import Learning
from simulators.backprop import backprop_step
from simulators.insitu import InsituConfig, train_insitu
from simulators.recipes import Algorithm, default_recipe


def _net(skip=True, act="relu", batch=5):
    spec = NetworkSpec(input_dim=7, width=6, depth=4, output_dim=3, act=act, skip=skip)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 7))
    y = np.eye(3)[rng.integers(0, 3, batch)]
    return spec, init_weights(spec, seed=2), x, y


def _autograd_loss_grads(spec, weights, x, y):
    """∂/∂W_ℓ of the batch-mean ½‖y − out‖² through the μPC forward map, by torch autograd (float64)."""
    a = spec.scalings()
    ws = [torch.tensor(w, requires_grad=True) for w in weights]
    act = {"relu": torch.relu, "tanh": torch.tanh}[spec.act.value]
    z = a[0] * torch.tensor(x) @ ws[0].T
    for l in range(1, spec.depth - 1):
        mu = a[l] * act(z) @ ws[l].T
        z = z + mu if spec.skip else mu
    out = a[-1] * act(z) @ ws[-1].T
    loss = 0.5 * ((torch.tensor(y) - out) ** 2).sum() / len(x)
    loss.backward()
    return [w.grad.numpy() for w in ws], float(loss.detach())


@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_exact_device_backprop_step_is_sgd_on_the_loss(skip, act):
    spec, weights, x, y = _net(skip, act)
    rates = (0.1, 0.2, 0.3, 0.4)
    step = backprop_step(spec, weights, x, y, profile=load_profile("ideal"), w_max=np.full(4, 50.0),
                         learning=Learning(lr=rates))
    grads, loss = _autograd_loss_grads(spec, weights, x, y)
    assert step.loss == pytest.approx(loss, rel=1e-12)
    for w, new, g, eta in zip(weights, step.weights, grads, rates, strict=True):
        np.testing.assert_allclose(new - w, -eta * g, rtol=1e-9, atol=1e-15)


def test_backprop_step_counts_its_sweeps_and_update():
    spec, weights, x, y = _net()
    p = load_profile("analog-rram-clocked")
    w_max = np.array([2 * np.abs(w).max() for w in weights])
    step = backprop_step(spec, weights, x, y, profile=p, w_max=w_max, learning=Learning(lr=0.5), seed=3)
    expected = (forward_sweep_counts(spec, p, n_samples=5) + backward_sweep_counts(spec, p, n_samples=5)
                + update_counts(spec, p, batch=5, write_pulses=step.write_pulses))
    assert step.counts == expected and step.write_pulses > 0
    again = backprop_step(spec, weights, x, y, profile=p, w_max=w_max, learning=Learning(lr=0.5), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(step.weights, again.weights))  # same seed, same bits
    ideal = backprop_step(spec, weights, x, y, profile=load_profile("ideal"), w_max=w_max, learning=Learning(lr=0.5))
    assert step.loss != ideal.loss  # the noisy arrays computed a different output


@pytest.fixture(scope="module")
def data():
    return synthetic_teacher_student(n_train=2048, n_test=512, seed=0)


@pytest.mark.parametrize("profile", ["ideal", "analog-rram-clocked"])
def test_backprop_in_situ_learns_a_synthetic_task(data, profile):
    config = InsituConfig(profile=profile, algorithm="bp", dataset="synthetic", depth=4, width=32, epochs=3,
                          test_every=32)
    result = train_insitu(config, data=data)
    assert result.test_acc >= 0.85, result.test_acc
    assert result.config.recipe == "bp-sgd" and result.config.n_steps == 0
    assert result.energy_j > 0 or profile == "ideal"
    assert result.inference_energy_j >= 0 and result.n_test == 512


def test_every_circuit_preset_has_a_default_recipe_for_both_algorithms():
    for name in list_profiles():
        p = load_profile(name)
        if not p.is_circuit:
            continue
        for algorithm in Algorithm:
            recipe = default_recipe(p, algorithm)
            assert recipe.why
            resolved = InsituConfig(profile=name, algorithm=algorithm.value).resolved(p)
            assert None not in (resolved.n_steps, resolved.update_window, resolved.param_lr, resolved.lr_schedule)
    assert default_recipe(load_profile("analog-rram-clocked"), "pc").name == "pc-window"
    assert default_recipe(load_profile("analog-cap-ota"), "pc").name == "pc-snapshot"
    loihi = load_profile("neuromorphic-loihi")
    assert loihi.rate_code_bits > 0 and default_recipe(loihi, "pc").name == "pc-rate-coded"
    assert default_recipe(loihi.replace(rate_code_bits=0), "pc").name == "pc-snapshot"  # graded messages
    assert InsituConfig(n_steps=50).resolved(load_profile("analog-rram-clocked")).recipe == "pc-window (modified)"


def test_backprop_refuses_relaxation_settings():
    from simulators import SimulationError

    with pytest.raises(SimulationError, match="backprop has none"):
        InsituConfig(algorithm="bp", n_steps=20)
    with pytest.raises(SimulationError, match="algorithm='hebb' is not one of: pc, bp"):
        InsituConfig(algorithm="hebb")
