"""IDX files (the MNIST format of http://yann.lecun.com/exdb/mnist/), raw or gzip-compressed."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .dataset import DataError

N_CLASSES = 10
IMAGE_SHAPE = (28, 28)
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
DATA_DIR_FIX = "pass --data-dir / set PCHW_DATA to a folder with the IDX files"

# IDX type byte → big-endian numpy dtype.
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
        raise DataError(f"IDX file {path} not found: {DATA_DIR_FIX}") from None
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


def find_idx(folder: Path, subdirs: tuple[str, ...]) -> dict[str, Path] | None:
    """The four IDX files under ``folder``: in one of ``subdirs`` (or its torchvision ``raw/``) first,
    then directly in ``folder``; None when no place holds all four."""
    candidates = [folder / s for s in subdirs] + [folder / s / "raw" for s in subdirs] + [folder]
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


def load_idx_set(files: dict[str, Path], label: str) -> dict[str, np.ndarray]:
    """Read and validate the four IDX files; pixels uint8 ``(n, 784)``, labels int64."""
    arrays = {key: read_idx(p) for key, p in files.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        where = files[f"x_{split}"].parent
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
            raise DataError(f"{label}: {files[f'x_{split}']} holds {x.dtype} {x.shape}, "
                            f"expected uint8 (n, 28, 28) images; {DATA_DIR_FIX}")
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise DataError(f"{label}: {split} labels {y.shape} do not match {x.shape[0]} images "
                            f"in {where}; replace the IDX files with a consistent set")
        if y.size and (y.min() < 0 or y.max() >= N_CLASSES):
            raise DataError(f"{label}: {split} labels outside 0..9 in {where}; "
                            f"replace the IDX files with a fresh copy")
        arrays[f"x_{split}"] = x.reshape(x.shape[0], -1)
        arrays[f"y_{split}"] = y.astype(np.int64)
    return arrays
