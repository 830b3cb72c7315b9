"""A synthetic teacher–student classification task, generated on the fly (never cached)."""

from __future__ import annotations

import numpy as np

from .dataset import DataError, Dataset, check_count

MAX_SAMPLES = 1_000_000  # per split; beyond, generation would take minutes and gigabytes for a test task


def synthetic_teacher_student(*, n_train: int = 2048, n_test: int = 512, input_dim: int = 20,
                              n_classes: int = 4, hidden: int = 32, seed: int = 0) -> Dataset:
    """A learnable classification task labelled by a fixed random 2-layer tanh teacher.

    Inputs are Gaussian ``x ~ N(0, I_D)``; the label is ``argmax(tanh(x W1) W2 + b)`` where
    ``W1`` ``(D, hidden)``, ``W2`` ``(hidden, C)`` are drawn from ``seed`` and ``b`` centres
    the logits so classes are roughly balanced. Points whose top-two logit margin falls in
    the lowest 30% are rejected, so classes are well separated, and each split is filled
    with equal class quotas. Inputs are standardised with the training split's per-feature
    mean/std. Deterministic per ``seed``; never cached.

    Returns:
        Dataset ``"synthetic"``: x float32 ``(n, input_dim)``, y int64 ``(n,)``.
    """
    for label, v in (("n_train", n_train), ("n_test", n_test)):
        check_count(label, v, MAX_SAMPLES)
    for label, v in (("input_dim", input_dim), ("hidden", hidden)):
        check_count(label, v, None)
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise DataError(f"synthetic: n_classes={n_classes!r} must be an integer ≥ 2")
    rng = np.random.default_rng([seed, 0x5EED])
    w1 = rng.standard_normal((input_dim, hidden)) / np.sqrt(input_dim)
    w2 = rng.standard_normal((hidden, n_classes)) / np.sqrt(hidden)

    def logits(x: np.ndarray) -> np.ndarray:
        return np.tanh(x @ w1) @ w2

    pilot = logits(rng.standard_normal((8192, input_dim)))
    bias = -np.median(pilot, axis=0)  # centre each class's logit: no class is starved
    top2 = np.sort(pilot + bias, axis=1)[:, -2:]
    threshold = np.quantile(top2[:, 1] - top2[:, 0], 0.3)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        quota = np.full(n_classes, n // n_classes)
        quota[: n % n_classes] += 1
        xs, ys = [], []
        for _ in range(10_000):  # bounded: a class rarer than ~1e-5 would be a broken teacher
            if not quota.any():
                break
            x = rng.standard_normal((4096, input_dim))
            z = logits(x) + bias
            y = np.argmax(z, axis=1)
            srt = np.sort(z, axis=1)
            keep = srt[:, -1] - srt[:, -2] > threshold
            for c in np.flatnonzero(quota):
                idx = np.flatnonzero(keep & (y == c))[: quota[c]]
                xs.append(x[idx])
                ys.append(y[idx])
                quota[c] -= idx.size
        else:  # pragma: no cover
            raise DataError(f"synthetic: seed {seed} gave a teacher with a near-empty class; "
                            f"use another seed")
        x, y = np.concatenate(xs), np.concatenate(ys)
        order = rng.permutation(n)  # interleave classes
        return x[order], y[order]

    x_tr, y_tr = draw(n_train)
    x_te, y_te = draw(n_test)
    mu, sd = x_tr.mean(axis=0), x_tr.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return Dataset(
        name="synthetic",
        x_train=((x_tr - mu) / sd).astype(np.float32),
        y_train=y_tr.astype(np.int64),
        x_test=((x_te - mu) / sd).astype(np.float32),
        y_test=y_te.astype(np.int64),
        n_classes=n_classes,
        source=(f"synthetic teacher–student (seed={seed}, input_dim={input_dim}, "
                f"hidden={hidden}, n_classes={n_classes})"),
    )
