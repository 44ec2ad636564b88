"""A ``--data package.module:function`` source, as a deployment pipeline would write one.

``onnx-netadapt model.onnx --data data:splits`` (with this folder on PYTHONPATH) calls
``splits()``, which returns training, holdout and validation data as iterables of
(input, target) batches. Here: scikit-learn's bundled digits (8x8), split by a fixed seed.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def _batches(x: np.ndarray, y: np.ndarray, size: int = 128) -> Iterator[tuple]:
    for start in range(0, len(x), size):
        yield x[start : start + size], y[start : start + size]


def splits() -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """{"train", "holdout", "val"} -> list of (x (N,1,8,8) float32, y (N,) int64) batches."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    parts = {"val": slice(0, 300), "holdout": slice(300, 400), "train": slice(400, None)}
    return {k: list(_batches(x[s], y[s])) for k, s in parts.items()}
