"""The in-memory data set every loader returns, and the error every data source raises."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PchwError


class DataError(PchwError):
    """A data source is missing or corrupt. The message is one line: which source, what is
    wrong, and how to fix it."""


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no boolean equality
class Dataset:
    """A classification data set held in memory.

    Attributes:
        name: ``"mnist"``, ``"fashion-mnist"`` or ``"synthetic"``.
        x_train: float32 ``(n_train, D)``, normalised inputs.
        y_train: int64 ``(n_train,)``, class labels in ``[0, n_classes)``.
        x_test: float32 ``(n_test, D)``.
        y_test: int64 ``(n_test,)``.
        n_classes: number of classes.
        source: human-readable description of where the data came from.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    source: str

    @property
    def input_dim(self) -> int:
        """D, the length of one flattened input."""
        return int(self.x_train.shape[1])

    def one_hot(self, labels: np.ndarray) -> np.ndarray:
        """One-hot encode integer labels ``(n,)`` → float32 ``(n, n_classes)``."""
        lab = np.asarray(labels)
        if lab.ndim != 1 or not np.issubdtype(lab.dtype, np.integer):
            raise ValueError(f"one_hot: labels must be a 1-D integer array, got {lab.dtype}"
                             f" of shape {lab.shape}")
        if lab.size and (lab.min() < 0 or lab.max() >= self.n_classes):
            raise ValueError(f"one_hot: labels must lie in [0, {self.n_classes}), got "
                             f"[{lab.min()}, {lab.max()}]")
        out = np.zeros((lab.shape[0], self.n_classes), dtype=np.float32)
        out[np.arange(lab.shape[0]), lab] = 1.0
        return out


def check_count(label: str, value: int | None, available: int | None) -> int | None:
    """A subset size: ``None`` (all) or an integer in 1..available; one-line DataError otherwise."""
    if value is None:
        return None
    upper = f"{available}" if available is not None else "any positive integer"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataError(f"{label}={value!r} is not an integer; use 1..{upper}")
    if value < 1 or (available is not None and value > available):
        raise DataError(f"{label}={value} is out of range; use 1..{upper}")
    return int(value)
