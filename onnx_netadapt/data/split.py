"""Disjoint, reproducible splits: holdout and validation sets carved out of training data."""

from __future__ import annotations

import logging

import numpy as np

from onnx_netadapt.data.dataset import ArrayDataset
from onnx_netadapt.errors import DataError

logger = logging.getLogger(__name__)

# Below this many holdout examples per class, comparing proposals is mostly noise.
MIN_HOLDOUT_PER_CLASS = 10


def carve_holdout(
    train: ArrayDataset, per_class: int, seed: int
) -> tuple[ArrayDataset, ArrayDataset]:
    """Split ``train`` into (rest, holdout) with ``per_class`` examples of every class in holdout.

    A class with fewer than ``2 * per_class`` examples gives half of them (with a warning), so
    training keeps some of every class. Without targets the holdout is ``per_class * 10`` random
    examples (at most half the data). The two parts are disjoint and keep the original order.
    """
    if per_class < 1:
        raise DataError(f"holdout size per class must be at least 1, got {per_class}")
    rng = np.random.default_rng(seed)
    if train.y is None:
        want = per_class * 10
        take = min(want, len(train) // 2)
        if take < want:
            logger.warning(
                "only %d training examples: holdout takes %d of them, not %d",
                len(train),
                take,
                want,
            )
        chosen = rng.permutation(len(train))[:take]
    else:
        classes, counts = np.unique(train.y, return_counts=True)
        if per_class > int(counts.max()) // 2:
            raise DataError(
                f"--holdout-per-class {per_class} asks for more than the data has: the largest "
                f"class has {int(counts.max())} training examples, and at most half of each "
                f"class goes to the holdout set; use --holdout-per-class "
                f"{max(1, int(counts.max()) // 2)} or less, or give more data"
            )
        small = [
            (int(c), int(n)) for c, n in zip(classes, counts, strict=True) if n < 2 * per_class
        ]
        if small:
            logger.warning(
                "classes with fewer than %d training examples give half of them to the holdout "
                "set (class: examples): %s",
                2 * per_class,
                ", ".join(f"{c}: {n}" for c, n in small),
            )
        chosen = _stratified_counts(train.y, rng, lambda count: min(per_class, count // 2))
    return _partition(train, chosen)


def warn_small_holdout(holdout: ArrayDataset) -> None:
    """Warn when some class has fewer than MIN_HOLDOUT_PER_CLASS holdout examples."""
    if holdout.y is None:
        return
    classes, counts = np.unique(holdout.y, return_counts=True)
    if len(counts) and counts.min() < MIN_HOLDOUT_PER_CLASS:
        logger.warning(
            "the holdout set that picks each iteration's proposal has only %d example(s) of "
            "class %d (%d in all; one example moves its accuracy by %.1f points): the choice "
            "between proposals is mostly noise; give at least %d per class "
            "(--holdout-per-class, more data)",
            int(counts.min()),
            int(classes[counts.argmin()]),
            len(holdout),
            100 / len(holdout),
            MIN_HOLDOUT_PER_CLASS,
        )


def carve_fraction(
    data: ArrayDataset, fraction: float, seed: int
) -> tuple[ArrayDataset, ArrayDataset]:
    """Split ``data`` into (rest, part) with ``fraction`` of it in part, stratified by class."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"the validation fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    if data.y is None:
        take = round(len(data) * fraction)
        chosen = rng.permutation(len(data))[:take]
    else:
        chosen = _stratified_counts(data.y, rng, lambda count: round(count * fraction))
    return _partition(data, chosen)


def _stratified_counts(y: np.ndarray, rng: np.random.Generator, count_for) -> np.ndarray:
    """Indices of ``count_for(n)`` random examples of each class (n = examples of that class)."""
    chosen = [np.zeros(0, dtype=np.int64)]
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        chosen.append(rng.permutation(members)[: count_for(len(members))])
    return np.sort(np.concatenate(chosen))


def _partition(data: ArrayDataset, chosen: np.ndarray) -> tuple[ArrayDataset, ArrayDataset]:
    mask = np.zeros(len(data), dtype=bool)
    mask[chosen] = True
    return data.subset(np.flatnonzero(~mask)), data.subset(np.flatnonzero(mask))
