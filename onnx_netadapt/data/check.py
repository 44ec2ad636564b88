"""Checks that a dataset can be fed to a model: shape, dtype, finite inputs, targets in range."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from onnx_netadapt.data.dataset import ArrayDataset
from onnx_netadapt.data.layout import example_shape, shape_matches
from onnx_netadapt.errors import DataError


def check_fits(
    data: ArrayDataset,
    input_shape: Sequence[int | None],
    input_dtype: np.dtype | type,
    name: str,
    num_classes: int | None = None,
) -> None:
    """Raise DataError unless ``data`` fits a model input of ``input_shape`` and ``input_dtype``.

    ``input_shape`` includes the batch dimension (any value; only the per-example part is
    compared). ``num_classes`` (from the model's output shape, when known) bounds the targets.
    """
    per = example_shape(input_shape)
    if len(data) == 0:
        raise DataError(f"{name} data is empty: give at least one example")
    x = data.x
    if not shape_matches(x.shape[1:], per):
        wanted = ", ".join("?" if d is None else str(d) for d in per)
        raise DataError(
            f"{name} data has shape {tuple(x.shape)} but the model input is "
            f"{tuple(input_shape)}: give the data as (N, {wanted})"
        )
    dtype = np.dtype(input_dtype)
    if x.dtype != dtype:
        raise DataError(
            f"{name} data has dtype {x.dtype} but the model input is {dtype}: cast it "
            f"(x.astype(np.{dtype.name}))"
        )
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = int(np.count_nonzero(~np.isfinite(x).reshape(len(x), -1).all(axis=1)))
        raise DataError(
            f"{name} data has NaN or infinite values in {bad} of {len(x)} examples: "
            "clean or drop those examples"
        )
    if data.y is not None:
        _check_targets(data.y, len(x), name, num_classes)


def _check_targets(y: np.ndarray, n: int, name: str, num_classes: int | None) -> None:
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{name} targets have shape {y.shape}: give class indices of shape ({n},)")
    if y.dtype.kind not in "iu":
        raise DataError(f"{name} targets have dtype {y.dtype}: give integer class indices (int64)")
    low, high = int(y.min()), int(y.max())
    if low < 0:
        raise DataError(f"{name} targets include {low}: class indices must be 0 or more")
    if num_classes is not None and high >= num_classes:
        raise DataError(
            f"{name} targets include class {high} but the model has {num_classes} outputs: "
            f"class indices must be in [0, {num_classes}); is this the right model or dataset?"
        )


def check_classes(parts: dict[str, ArrayDataset], num_classes: int | None) -> None:
    """Classification needs at least two classes in the training data (with targets)."""
    train = parts.get("train")
    if train is None or train.y is None or num_classes == 1:
        return
    present = np.unique(train.y)
    if len(present) < 2:
        raise DataError(
            f"the training data has a single class ({int(present[0])}, {len(train)} examples): "
            "a classifier cannot be fine-tuned or scored on one class; give examples of at "
            "least two classes (an image folder needs one subfolder per class)"
        )
