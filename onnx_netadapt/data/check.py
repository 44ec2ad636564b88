"""Checks that a dataset can be fed to a model: shape, dtype, finite inputs, targets in range."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from onnx_netadapt.data.dataset import ArrayDataset
from onnx_netadapt.data.layout import example_shape, shape_matches
from onnx_netadapt.errors import DataError

if TYPE_CHECKING:
    from onnx_netadapt.tasks.base import OutputInfo, Task

# Shape and dtype of every model input, by name (graph order), for models with several inputs.
InputSpecs = Mapping[str, tuple[Sequence[int | None], np.dtype]]


def check_fits(
    data: ArrayDataset,
    input_shape: Sequence[int | None] | InputSpecs,
    input_dtype: np.dtype | type | None,
    name: str,
    num_classes: int | None = None,
    task: Task | None = None,
    outputs: list[OutputInfo] | None = None,
) -> None:
    """Raise DataError unless ``data`` fits a model input of ``input_shape`` and ``input_dtype``.

    ``input_shape`` includes the batch dimension (any value; only the per-example part is
    compared); for a model with several inputs it is the :data:`InputSpecs` of every input (and
    ``input_dtype`` is ignored). The targets are checked by ``task`` against the model's
    ``outputs`` (class indices below ``num_classes`` when no task is given).
    """
    if len(data) == 0:
        raise DataError(f"{name} data is empty: give at least one example")
    if isinstance(input_shape, Mapping):
        _check_inputs(data, input_shape, name)
    else:
        _check_array(data.x, input_shape, np.dtype(input_dtype), name)
    if data.y is None:
        return
    if task is None:
        check_class_targets(data.y, len(data), name, num_classes)
    else:
        task.check_targets(data.y, outputs or [], name, num_classes)


def _check_inputs(data: ArrayDataset, specs: InputSpecs, name: str) -> None:
    x = data.x if isinstance(data.x, Mapping) else None
    if x is None or list(x) != list(specs):
        got = list(x) if x is not None else "one array"
        raise DataError(
            f"{name} data gives inputs {got} but the model takes {list(specs)}: give a dict "
            "(or a tuple, in this order) with one array per model input"
        )
    for key, (shape, dtype) in specs.items():
        _check_array(x[key], shape, np.dtype(dtype), f"{name} input {key!r}")


def _check_array(
    x: np.ndarray, input_shape: Sequence[int | None], dtype: np.dtype, name: str
) -> None:
    per = example_shape(input_shape)
    if not shape_matches(x.shape[1:], per):
        wanted = ", ".join("?" if d is None else str(d) for d in per)
        raise DataError(
            f"{name} data has shape {tuple(x.shape)} but the model input is "
            f"{tuple(input_shape)}: give the data as (N, {wanted})"
        )
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


def check_class_targets(y: np.ndarray, n: int, name: str, num_classes: int | None) -> None:
    """Raise DataError unless ``y`` are ``n`` class indices in [0, ``num_classes``)."""
    y = np.asarray(y)
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
