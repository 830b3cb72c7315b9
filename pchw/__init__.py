"""pchw — numpy-only core: network spec, maths oracle, closed forms, data sets, run logs.

Never imports torch, numba or brian2 (DESIGN.md §1).
"""

from . import oracle, theory
from .data import DATASETS, DataError, Dataset, batch_indices, batches_per_epoch, dataset_status, load_dataset
from .errors import PchwError
from .runlog import CheckpointError, DivergenceError, History, Interrupted, RunDir, RunError
from .spec import Activation, NetworkSpec, Parameterisation, SpecError, check_weights, init_weights

__all__ = [
    "DATASETS",
    "Activation",
    "CheckpointError",
    "DataError",
    "Dataset",
    "DivergenceError",
    "History",
    "Interrupted",
    "NetworkSpec",
    "Parameterisation",
    "PchwError",
    "RunDir",
    "RunError",
    "SpecError",
    "batch_indices",
    "batches_per_epoch",
    "check_weights",
    "dataset_status",
    "init_weights",
    "load_dataset",
    "oracle",
    "theory",
]
