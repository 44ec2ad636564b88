"""In-memory datasets: arrays in the model's input layout, with targets or none.

Every data source (`--data` callable, `.npz`, image folder, the bundled MNIST) ends up as a
:class:`DataSplits` of three :class:`ArrayDataset`: training data for fine-tuning, a holdout set
carved out of the training data (the only data used to pick proposals), and validation data used
only for the final report. Arrays pickle cheaply, so proposals can be evaluated in worker
processes.

A model with several inputs has ``x`` as a dict of arrays, one per input in the graph's order.
Targets are whatever the task reads (``onnx_netadapt.tasks``): class indices (N,), an array
(N, ...), a dict of such arrays, or a list of N per-example arrays (e.g. boxes per image).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


def take(value: Any, indices: np.ndarray) -> Any:
    """The examples at ``indices`` of an array, a dict of arrays or a list (None stays None)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: take(v, indices) for k, v in value.items()}
    if isinstance(value, list):
        return [value[int(i)] for i in indices]
    return value[indices]


def count(value: Any) -> int:
    """The number of examples in an array, a dict of arrays (its first) or a list."""
    if isinstance(value, dict):
        return count(next(iter(value.values()))) if value else 0
    return len(value)


@dataclass
class ArrayDataset:
    """Inputs ``x`` (N, ...) in the model's layout (a dict of them for several inputs);
    targets ``y`` (class indices (N,) int64, or what the task reads) or None."""

    x: Any
    y: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.x, dict):
            sizes = {k: len(v) for k, v in self.x.items()}
            if len(set(sizes.values())) > 1:
                raise ValueError(f"inputs of different lengths: {sizes}")
        if self.y is not None and count(self.y) != len(self):
            raise ValueError(f"{len(self)} inputs but {count(self.y)} targets")

    def __len__(self) -> int:
        return count(self.x)

    @property
    def has_targets(self) -> bool:
        """True when the dataset carries targets (else: distillation/agreement)."""
        return self.y is not None

    def subset(self, indices: np.ndarray) -> ArrayDataset:
        """The examples at ``indices``."""
        return ArrayDataset(take(self.x, indices), take(self.y, indices))

    def batches(
        self, batch_size: int, shuffle: bool = False, seed: int = 0
    ) -> Iterator[tuple[Any, Any]]:
        """Batches of (x, y); a fixed ``seed`` gives the same order every time."""
        order = np.arange(len(self))
        if shuffle:
            order = np.random.default_rng(seed).permutation(len(self))
        for start in range(0, len(self), batch_size):
            idx = order[start : start + batch_size]
            yield take(self.x, idx), take(self.y, idx)


@dataclass
class DataSplits:
    """Training, holdout and validation data for one adaptation."""

    train: ArrayDataset
    holdout: ArrayDataset
    val: ArrayDataset
    num_classes: int | None = None
    source: str = ""

    def summary(self) -> dict:
        """Sizes and origin, for history.json and the report."""
        return {
            "source": self.source,
            "train": len(self.train),
            "holdout": len(self.holdout),
            "val": len(self.val),
            "num_classes": self.num_classes,
            "targets": self.train.has_targets,
        }
