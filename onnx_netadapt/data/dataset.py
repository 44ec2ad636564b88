"""In-memory datasets: arrays in the model's input layout, with class targets or none.

Every data source (`--data` callable, `.npz`, image folder, the bundled MNIST) ends up as a
:class:`DataSplits` of three :class:`ArrayDataset`: training data for fine-tuning, a holdout set
carved out of the training data (the only data used to pick proposals), and validation data used
only for the final report. Arrays pickle cheaply, so proposals can be evaluated in worker
processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass
class ArrayDataset:
    """Inputs ``x`` (N, ...) float32 in the model's layout; targets ``y`` (N,) int64 or None."""

    x: np.ndarray
    y: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"{len(self.x)} inputs but {len(self.y)} targets")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def has_targets(self) -> bool:
        """True when the dataset carries class targets (else: distillation/agreement)."""
        return self.y is not None

    def subset(self, indices: np.ndarray) -> ArrayDataset:
        """The examples at ``indices``."""
        return ArrayDataset(self.x[indices], None if self.y is None else self.y[indices])

    def batches(
        self, batch_size: int, shuffle: bool = False, seed: int = 0
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Batches of (x, y); a fixed ``seed`` gives the same order every time."""
        order = np.arange(len(self))
        if shuffle:
            order = np.random.default_rng(seed).permutation(len(self))
        for start in range(0, len(self), batch_size):
            idx = order[start : start + batch_size]
            yield self.x[idx], None if self.y is None else self.y[idx]


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
