"""The ``.npz`` cache of converted data sets under ``cache_dir()`` (env ``PCHW_CACHE``).

A real data set is converted once to ``<cache>/<name>.npz``: raw uint8 pixels ``(n, 784)``,
int64 labels, the source it came from and that source's key. A cache built from another source
(another wheel hash, another folder) is not reused; an unreadable or inconsistent one is rebuilt.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .idx import IDX_FILES, N_CLASSES


def cache_dir() -> Path:
    """Folder for converted ``.npz`` files and the pinned wheel: env ``PCHW_CACHE`` or
    ``~/.cache/pchw``. Not created here; writers create it when they need it."""
    env = os.environ.get("PCHW_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pchw"


def cache_file(name: str) -> Path:
    """Where data set ``name`` is cached."""
    return cache_dir() / f"{name}.npz"


def _open_tagged(name: str, key: str):
    """The cache file of ``name`` opened (an ``NpzFile``) if it was built from the source with ``key``, else None."""
    path = cache_file(name)
    if not path.is_file():
        return None
    z = np.load(path, allow_pickle=False)
    if str(z["key"]) != key:
        z.close()
        return None
    return z


def read_cache(name: str, key: str) -> tuple[dict[str, np.ndarray], str] | None:
    """Arrays and source string from the cache, or None when absent, stale or corrupt."""
    try:
        z = _open_tagged(name, key)
        if z is None:
            return None
        with z:
            arrays = {k: np.array(z[k]) for k in IDX_FILES}
            source = f"{z['source']} (cached at {cache_file(name)})"
        for split in ("train", "test"):
            x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
            if (x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 784 or y.dtype != np.int64
                    or y.shape != (x.shape[0],) or x.shape[0] == 0
                    or y.min() < 0 or y.max() >= N_CLASSES):
                return None
    except Exception:  # any unreadable cache is simply rebuilt
        return None
    return arrays, source


def write_cache(name: str, key: str, arrays: dict[str, np.ndarray], source: str) -> None:
    """Write the cache atomically (temp file in the same folder, then os.replace)."""
    path = cache_file(name)
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


def cached_source(name: str, key: str) -> str | None:
    """Source string of a cache file built from the source with ``key``, else None (cheap: no arrays read)."""
    try:
        z = _open_tagged(name, key)
        if z is None:
            return None
        with z:
            return str(z["source"])
    except Exception:  # a corrupt cache is not a source
        return None
