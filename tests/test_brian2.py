"""The Brian2 backend: its rate network reproduces the numpy reference stepper step for step
(DESIGN.md §5), its spiking mode converges to the rate model as the spike budget grows, and a
missing Brian2 is reported as one clear line."""

import sys

import numpy as np
import pytest

pytest.importorskip("brian2")

from pchw.events import price  # noqa: E402
from pchw.oracle import feedforward  # noqa: E402
from pchw.profiles import load_profile  # noqa: E402
from pchw.spec import NetworkSpec, init_weights  # noqa: E402
from simulators import reference  # noqa: E402
from simulators.backends import brian2_backend as bb  # noqa: E402
from simulators.circuit import ideal_circuit  # noqa: E402
from simulators.contracts import CircuitState, Drive, Method, Phase, Record  # noqa: E402

B, STEPS, H_STEP = 3, 100, 0.1


def integrate(cw, x, y, z, zout, *, h, n_steps, method, free_output, feedback=True, record_energy=False,
              record_states=False):
    """The numpy reference stepper with the brian2 functions' arguments and returns."""
    state = CircuitState(z=np.array(z, dtype=float), zout=np.array(zout, dtype=float))
    samples = np.arange(x.shape[0])
    drive = Drive(x, reference.first_prediction(cw, x, samples), y, samples)
    trace = reference.integrate(cw, state, drive, Phase(n_steps=n_steps, h=h, method=Method(method),
                                                        feedback=feedback, free_output=free_output),
                                record=Record(free_energy=record_energy, activities=record_states))
    return state.z, state.zout, trace.free_energy, trace.activities


def _targets():
    return [pytest.param("numpy", id="numpy"),
            pytest.param("cython", id="cython", marks=pytest.mark.skipif(
                bb.brian2_target()[0] != "cython", reason="no working C compiler for brian2's cython target"))]


def _net(act="relu", skip=True, depth=4, seed=0, start="perturbed"):
    spec = NetworkSpec(input_dim=6, width=5, depth=depth, output_dim=3, act=act, skip=skip)
    weights = init_weights(spec, seed=seed + 1)
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((B, 6)), rng.standard_normal((B, 3))
    zs, out = feedforward(spec, weights, x)
    if start == "zero":
        z, zout = np.zeros((spec.n_hidden, B, 5)), np.zeros((B, 3))
    else:  # away from the feedforward pass, so that every configuration moves
        z = np.stack(zs) + 0.5 * rng.standard_normal((spec.n_hidden, B, 5))
        zout = out + 0.5 * rng.standard_normal((B, 3))
    return ideal_circuit(spec, weights), x, y, z, zout


def _assert_same(got, ref):
    names = ("z", "zout", "energy trace", "state trace")
    for name, g, r in zip(names, got, ref):
        assert g.shape == r.shape, name
        np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("target", _targets())
@pytest.mark.parametrize("free", [False, True], ids=["clamped", "free"])
@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("skip", [True, False], ids=["skip", "noskip"])
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_rate_network_equals_reference(act, skip, method, free, target):
    cw, x, y, z, zout = _net(act, skip)
    kw = dict(h=H_STEP, n_steps=STEPS, method=method, free_output=free, record_energy=True, record_states=True)
    ref = integrate(cw, x, y, z, zout, **kw)
    assert np.abs(ref[0] - z).max() > 1e-2  # it moved
    z_in = z.copy()
    got = bb.integrate_brian2(cw, x, y, z, zout, target=target, **kw)
    _assert_same(got, ref)
    np.testing.assert_array_equal(z, z_in)  # inputs untouched


@pytest.mark.parametrize("target", _targets())
@pytest.mark.parametrize("free", [False, True], ids=["clamped", "free"])
@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_forward_phase_equals_reference(act, method, free, target):
    """feedback=False: each value neuron follows its own error only (g = ε)."""
    cw, x, y, z, zout = _net(act, skip=True, start="zero")
    kw = dict(h=H_STEP, n_steps=STEPS, method=method, free_output=free, feedback=False, record_energy=True,
              record_states=True)
    _assert_same(bb.integrate_brian2(cw, x, y, z, zout, target=target, **kw), integrate(cw, x, y, z, zout, **kw))


def test_linear_single_hidden_layer_and_no_recording():
    for act, depth in (("linear", 4), ("relu", 2)):
        cw, x, y, z, zout = _net(act, depth=depth)
        kw = dict(h=H_STEP, n_steps=40, method="euler", free_output=True)
        got = bb.integrate_brian2(cw, x, y, z, zout, target="numpy", **kw)
        ref = integrate(cw, x, y, z, zout, **kw)
        assert got[2] is None and got[3] is None
        np.testing.assert_allclose(got[0], ref[0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got[1], ref[1], rtol=1e-9, atol=1e-12)
    zero = bb.integrate_brian2(cw, x, y, z, zout, h=H_STEP, n_steps=0, method="heun", free_output=True,
                               record_energy=True, record_states=True, target="numpy")
    _assert_same(zero, integrate(cw, x, y, z, zout, h=H_STEP, n_steps=0, method="heun", free_output=True,
                                 record_energy=True, record_states=True))


def test_repeated_calls_are_independent():
    brian2 = pytest.importorskip("brian2")
    cw, x, y, z, zout = _net()
    kw = dict(h=H_STEP, n_steps=10, method="heun", free_output=False, record_energy=True, target="numpy")
    first = bb.integrate_brian2(cw, x, y, z, zout, **kw)
    import gc

    gc.collect()
    alive = sum(o() is not None for o in brian2.Nameable.__instances__())
    second = bb.integrate_brian2(cw, x, y, z, zout, **kw)
    gc.collect()
    assert sum(o() is not None for o in brian2.Nameable.__instances__()) == alive  # no objects leak
    for a, b in zip(first[:3], second[:3]):
        np.testing.assert_array_equal(a, b)


def test_target_and_cache_dir(tmp_path, monkeypatch):
    brian2 = pytest.importorskip("brian2")
    target, build_s = bb.brian2_target()
    assert target in ("cython", "numpy") and build_s >= 0.0
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert bb.brian2_cache_dir() == tmp_path / "pchw" / "brian2"
    monkeypatch.delenv("XDG_CACHE_HOME")
    default = bb.brian2_cache_dir()
    assert default.parts[-2:] == ("pchw", "brian2") and default.parent.parent != default.home()
    bb.integrate_brian2(*_net()[:5], h=0.1, n_steps=1, method="euler", free_output=False, target="numpy")
    assert brian2.prefs.codegen.runtime.cython.cache_dir == str(default)
    with pytest.raises(ValueError, match="target"):
        bb.integrate_brian2(*_net()[:5], h=0.1, n_steps=1, method="euler", free_output=False, target="cuda")


def test_missing_brian2_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "brian2", None)  # `import brian2` now raises ImportError
    cw, x, y, z, zout = _net()
    with pytest.raises(bb.Brian2Unavailable) as info:
        bb.integrate_brian2(cw, x, y, z, zout, h=0.1, n_steps=1, method="euler", free_output=False)
    message = str(info.value)
    assert "\n" not in message and "pip install" in message and "brian2" in message
    with pytest.raises(bb.Brian2Unavailable):
        bb.integrate_spiking(cw, x, y, z, zout, h=0.1, n_steps=1, free_output=False,
                             coding=bb.SpikeCoding(100.0, 0.1), seed=0)


SPIKE_STEPS, SPIKE_H, DURATION_S = 20, 0.2, 0.05


def _spiking(target, budget, seed=3, free=False):
    cw, x, y, z, zout = _net("relu", skip=True, start="zero")
    coding = bb.SpikeCoding(rate_hz=budget / DURATION_S, duration_s=DURATION_S, full_scale=4.0)
    return bb.integrate_spiking(cw, x, y, z, zout, h=SPIKE_H, n_steps=SPIKE_STEPS, free_output=free, coding=coding,
                                seed=seed, record_energy=True, target=target)


@pytest.mark.parametrize("target", _targets())
def test_spiking_converges_to_the_rate_model(target):
    cw, x, y, z, zout = _net("relu", skip=True, start="zero")
    ref = integrate(cw, x, y, z, zout, h=SPIKE_H, n_steps=SPIKE_STEPS, method="euler", free_output=False,
                    record_energy=True)
    errors, counts = [], []
    for budget in (10, 100, 1000):
        z_s, _, e_trace, c = _spiking(target, budget)
        errors.append(float(np.abs(z_s - ref[0]).mean()))
        counts.append(c)
        assert e_trace.shape == ref[2].shape
        np.testing.assert_allclose(e_trace[0], ref[2][0], rtol=1e-12)  # same start, exact errors
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.05 * np.abs(ref[0]).mean(), errors
    for key in ("spikes", "synaptic_events", "neuron_updates"):
        values = [c[key] for c in counts]
        assert values[0] > 0 and values[0] < values[1] < values[2], (key, values)
    assert all(c["synaptic_events"] > c["spikes"] for c in counts)  # fan-out of each spike
    joules = price(bb.spiking_event_counts(counts[1]), load_profile("neuromorphic-loihi"))
    assert joules.components_j["synaptic"] > 0 and joules.components_j["neuron"] > 0


@pytest.mark.parametrize("target", _targets())
def test_spiking_is_reproducible_per_seed(target):
    a, b, c = (_spiking(target, 30, seed=s, free=True) for s in (5, 5, 6))
    assert a[3] == b[3] and a[3]["spikes"] > 0 and a[3]["synaptic_events"] > 0
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_spike_coding_is_validated():
    with pytest.raises(ValueError, match="rate_hz"):
        bb.SpikeCoding(rate_hz=0.0, duration_s=0.1)
    assert bb.SpikeCoding(rate_hz=250.0, duration_s=0.1).substeps == 25
    assert bb.SpikeCoding(rate_hz=1.0, duration_s=0.1).substeps == 1


def test_simulate_brian2_backend_agrees_with_numba_and_counts_the_same_events():
    import numpy as np

    from pchw.spec import NetworkSpec, init_weights
    from simulators import SimulationError, simulate

    spec = NetworkSpec(input_dim=6, width=5, depth=4, output_dim=3)
    weights = init_weights(spec, seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3, 6)), rng.standard_normal((3, 3))
    for target in (y, None):
        kw = dict(profile="ideal", n_steps=100, init="cascade", ff_steps=7, record=("free_energy",))
        fast = simulate(spec, weights, x, target, backend="numba", **kw)
        b2 = simulate(spec, weights, x, target, backend="brian2", **kw)
        np.testing.assert_allclose(b2.z, fast.z, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b2.free_energy_trace, fast.free_energy_trace, rtol=1e-9, atol=1e-14)
        assert b2.counts == fast.counts
    with pytest.raises(SimulationError, match="ideal circuit"):
        simulate(spec, weights, x, y, profile="analog-rram-clocked", n_steps=3, backend="brian2")
