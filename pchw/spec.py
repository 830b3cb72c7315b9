"""The network specification shared by every backend (DESIGN.md §2).

A network has input x ∈ R^D, H = depth − 1 hidden layers of width N and output
y ∈ R^{d_y}; ``depth`` counts weight matrices (L), as JPC's ``make_mlp`` does.
Weights are stored ``(out, in)``: W_1 is (N, D), W_2..W_{L−1} are (N, N), W_L is (d_y, N).

Predictions (residual "skip" model):
    μ_1 = a_1 W_1 x
    μ_ℓ = z_{ℓ−1} + a_ℓ W_ℓ φ(z_{ℓ−1}),   ℓ = 2..L−1   (the skip term only when ``skip``)
    μ_L = a_L W_L φ(z_{L−1})
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum, StrEnum

import numpy as np

from .errors import PchwError


class SpecError(PchwError, ValueError):
    """An invalid network specification; the message names the field and what is allowed."""


class Activation(StrEnum):
    """Activation φ applied to a layer's activities before the next weight matrix."""

    RELU = "relu"
    TANH = "tanh"
    LINEAR = "linear"


class Parameterisation(StrEnum):
    """Scalings a_ℓ and initialisation of W (DESIGN.md §2)."""

    MUPC = "mupc"  # a_1 = 1/√D, a_ℓ = 1/√(N·L) (skips) or 1/√N, a_L = 1/N; W ~ N(0, 1)
    SP = "sp"  # all a = 1; W ~ U(±1/√fan_in)


def _enum(cls: type[Enum], value: object, field: str) -> Enum:
    if isinstance(value, cls):
        return value
    try:
        return cls(str(value).lower())
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise SpecError(f"{field}={value!r} is not one of: {allowed}") from None


@dataclass(frozen=True)
class NetworkSpec:
    """Shape, activation and parameterisation of a residual PC/BP network.

    Attributes:
        input_dim: D, size of the clamped input x.
        width: N, size of every hidden layer.
        depth: L, number of weight matrices (hidden layers H = L − 1); at least 2.
        output_dim: d_y, size of the output/target y.
        act: activation φ (``relu``, ``tanh``, ``linear``).
        param: parameterisation (``mupc`` or ``sp``).
        skip: identity skip connections on the hidden-to-hidden layers.
    """

    input_dim: int
    width: int
    depth: int
    output_dim: int
    act: Activation = Activation.RELU
    param: Parameterisation = Parameterisation.MUPC
    skip: bool = True

    def __post_init__(self) -> None:
        for field, minimum in (("input_dim", 1), ("width", 1), ("depth", 2), ("output_dim", 1)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise SpecError(f"{field}={value!r} must be an integer >= {minimum}")
            if value < minimum:
                raise SpecError(f"{field}={value} must be >= {minimum}")
            object.__setattr__(self, field, int(value))
        object.__setattr__(self, "act", _enum(Activation, self.act, "act"))
        object.__setattr__(self, "param", _enum(Parameterisation, self.param, "param"))
        object.__setattr__(self, "skip", bool(self.skip))

    @property
    def n_hidden(self) -> int:
        """H, the number of free (hidden) activity layers."""
        return self.depth - 1

    def weight_shapes(self) -> list[tuple[int, int]]:
        """Shapes ``(out, in)`` of W_1..W_L."""
        n = self.width
        return [(n, self.input_dim)] + [(n, n)] * (self.depth - 2) + [(self.output_dim, n)]

    def scalings(self) -> tuple[float, ...]:
        """The multipliers a_1..a_L of DESIGN.md §2."""
        n, depth = self.width, self.depth
        if self.param is Parameterisation.SP:
            return (1.0,) * depth
        hidden = 1.0 / math.sqrt(n * depth) if self.skip else 1.0 / math.sqrt(n)
        return (1.0 / math.sqrt(self.input_dim),) + (hidden,) * (depth - 2) + (1.0 / n,)

    def n_weights(self) -> int:
        return sum(o * i for o, i in self.weight_shapes())

    def to_dict(self) -> dict:
        return {
            "input_dim": self.input_dim,
            "width": self.width,
            "depth": self.depth,
            "output_dim": self.output_dim,
            "act": self.act.value,
            "param": self.param.value,
            "skip": self.skip,
        }

    @classmethod
    def from_dict(cls, d: dict) -> NetworkSpec:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def init_weights(spec: NetworkSpec, *, seed: int = 0) -> list[np.ndarray]:
    """Float64 weights W_1..W_L drawn as the parameterisation prescribes.

    μPC: W ~ N(0, 1) (the scalings a_ℓ carry the variance); SP: W ~ U(±1/√fan_in).
    """
    rng = np.random.default_rng(seed)
    weights = []
    for out_dim, in_dim in spec.weight_shapes():
        if spec.param is Parameterisation.MUPC:
            weights.append(rng.standard_normal((out_dim, in_dim)))
        else:
            bound = 1.0 / math.sqrt(in_dim)
            weights.append(rng.uniform(-bound, bound, size=(out_dim, in_dim)))
    return weights


def check_weights(spec: NetworkSpec, weights: list[np.ndarray]) -> None:
    """Raise :class:`SpecError` unless ``weights`` match ``spec.weight_shapes()``."""
    shapes = spec.weight_shapes()
    if len(weights) != len(shapes):
        raise SpecError(f"expected {len(shapes)} weight matrices for depth {spec.depth}, got {len(weights)}")
    for i, (w, shape) in enumerate(zip(weights, shapes), start=1):
        if tuple(np.shape(w)) != shape:
            raise SpecError(f"W_{i} has shape {tuple(np.shape(w))}, expected {shape}")
