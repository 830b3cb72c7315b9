import math

import numpy as np
import pytest

from pchw.spec import (
    Activation,
    NetworkSpec,
    Parameterisation,
    SpecError,
    check_weights,
    init_weights,
)


def test_scalings_follow_the_parameterisation():
    spec = NetworkSpec(input_dim=784, width=128, depth=10, output_dim=10)
    a = spec.scalings()
    assert a[0] == pytest.approx(1 / math.sqrt(784))
    assert a[1:-1] == pytest.approx([1 / math.sqrt(128 * 10)] * 8)
    assert a[-1] == pytest.approx(1 / 128)
    no_skip = NetworkSpec(input_dim=784, width=128, depth=10, output_dim=10, skip=False)
    assert no_skip.scalings()[1] == pytest.approx(1 / math.sqrt(128))
    assert NetworkSpec(input_dim=3, width=4, depth=3, output_dim=2, param="sp").scalings() == (1.0, 1.0, 1.0)


def test_shapes_and_init_statistics():
    spec = NetworkSpec(input_dim=50, width=200, depth=4, output_dim=3)
    assert spec.weight_shapes() == [(200, 50), (200, 200), (200, 200), (3, 200)]
    w = init_weights(spec, seed=0)
    check_weights(spec, w)
    assert np.std(w[1]) == pytest.approx(1.0, abs=0.01)
    sp = init_weights(NetworkSpec(input_dim=50, width=200, depth=4, output_dim=3, param="sp"), seed=0)
    assert np.abs(sp[1]).max() <= 1 / math.sqrt(200) and np.abs(sp[0]).max() <= 1 / math.sqrt(50)
    assert np.array_equal(init_weights(spec, seed=5)[2], init_weights(spec, seed=5)[2])


def test_enums_and_round_trip():
    spec = NetworkSpec(input_dim=3, width=4, depth=3, output_dim=2, act="TANH", param="sp", skip=False)
    assert spec.act is Activation.TANH and spec.param is Parameterisation.SP
    assert NetworkSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"depth": 1}, "depth=1 must be >= 2"),
        ({"width": 0}, "width=0"),
        ({"act": "gelu"}, "act='gelu' is not one of: relu, tanh, linear"),
        ({"param": "ntk"}, "param='ntk'"),
        ({"input_dim": 2.5}, "input_dim=2.5 must be an integer"),
    ],
)
def test_invalid_specs_are_refused_clearly(kwargs, match):
    args = {"input_dim": 3, "width": 4, "depth": 3, "output_dim": 2, **kwargs}
    with pytest.raises(SpecError, match=match):
        NetworkSpec(**args)


def test_check_weights_names_the_bad_matrix():
    spec = NetworkSpec(input_dim=3, width=4, depth=3, output_dim=2)
    w = init_weights(spec)
    w[1] = np.zeros((4, 5))
    with pytest.raises(SpecError, match=r"W_2 has shape \(4, 5\), expected \(4, 4\)"):
        check_weights(spec, w)
