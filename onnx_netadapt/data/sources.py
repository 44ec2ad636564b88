"""``--data`` sources: a builtin name (``NAME[:DIR][@HxW]``, see builtin.py),
``package.module:function``, an ``.npz`` file or an image folder, turned into
:class:`DataSplits` that fit the model input.

Every source gives a training set and, optionally, holdout and validation sets. What is missing
is carved out of the training data: validation first (``val_fraction``, stratified), then the
holdout set (``holdout_per_class`` per class). All parts are disjoint.
"""

from __future__ import annotations

import importlib
import logging
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from onnx_netadapt.data.builtin import NUM_CLASSES, builtin_names, load_builtin, parse_builtin
from onnx_netadapt.data.check import InputSpecs, check_classes, check_fits
from onnx_netadapt.data.dataset import ArrayDataset, DataSplits
from onnx_netadapt.data.images import read_image_folder
from onnx_netadapt.data.layout import (
    example_shape,
    shape_matches,
    to_model_dtype,
    to_model_layout,
    to_targets,
)
from onnx_netadapt.data.split import carve_fraction, carve_holdout, warn_small_holdout
from onnx_netadapt.errors import DataError

if TYPE_CHECKING:
    from onnx_netadapt.tasks.base import OutputInfo, Task

logger = logging.getLogger(__name__)

PARTS = ("train", "holdout", "val")
_CALLABLE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_NPZ_KEYS = {f"{kind}_{part}" for kind in "xy" for part in PARTS}
# (x, y) of one part, raw as the source gave it
Raw = tuple[np.ndarray, Any]


def load_data(
    spec: str,
    input_shape: tuple[int, ...] | InputSpecs,
    input_dtype: np.dtype | type = np.float32,
    holdout_per_class: int = 10,
    seed: int = 0,
    val_fraction: float = 0.2,
    num_classes: int | None = None,
    task: Task | None = None,
    outputs: list[OutputInfo] | None = None,
) -> DataSplits:
    """Read ``spec`` into train/holdout/val datasets shaped and typed for the model input.

    ``input_shape`` is the model input's shape with its batch dimension (any value; only the
    per-example part is compared; unknown dims may be None or <= 0); for a model with several
    inputs, the :data:`InputSpecs` of each (the data then gives a dict or a tuple per example).
    ``num_classes``, when known from the model's output, bounds class targets; ``task`` (default
    classification) prepares and checks the targets against the model's ``outputs``. Raises
    DataError for anything unusable.
    """
    if isinstance(input_shape, Mapping) and not _CALLABLE.fullmatch(spec):
        raise DataError(
            f"the model has {len(input_shape)} inputs ({', '.join(input_shape)}): give --data "
            "as package.module:function yielding a dict or a tuple of inputs per example"
        )
    raw, source, classes = _read(spec, _first_shape(input_shape))
    parts = {
        name: _prepare(pair, input_shape, input_dtype, name, task)
        for name, pair in raw.items()
        if pair is not None
    }
    if "train" not in parts:
        raise DataError(f"{source} gives no training data: give a 'train' part")
    _check_targets_agree(parts, source)
    for name, data in parts.items():
        check_fits(data, input_shape, input_dtype, name, num_classes, task, outputs)
    classes_task = task is None or task.name == "classification"
    if classes_task:
        check_classes(parts, num_classes)
    train = parts["train"]
    if "val" not in parts:
        train, parts["val"] = carve_fraction(train, val_fraction, seed)
        logger.info("%s: validation = %d examples carved from training", source, len(parts["val"]))
    if "holdout" not in parts:
        train, parts["holdout"] = carve_holdout(train, holdout_per_class, seed)
    parts["train"] = train
    if classes_task:
        warn_small_holdout(parts["holdout"])
    for name in PARTS:
        check_fits(parts[name], input_shape, input_dtype, name, num_classes, task, outputs)
    classes = num_classes or classes or _infer_classes(parts)
    splits = DataSplits(parts["train"], parts["holdout"], parts["val"], classes, source)
    logger.info("data %s", splits.summary())
    return splits


def _first_shape(input_shape: tuple[int, ...] | InputSpecs) -> Sequence[int | None]:
    """The shape of the (first) model input."""
    if isinstance(input_shape, Mapping):
        return next(iter(input_shape.values()))[0]
    return input_shape


def _read(
    spec: str, input_shape: Sequence[int | None]
) -> tuple[dict[str, Raw | None], str, int | None]:
    """Raw parts of ``spec``, a description of the source, and its number of classes if known."""
    path = Path(spec).expanduser()
    if not path.exists() and parse_builtin(spec) is not None:
        train, val = load_builtin(spec)
        return {"train": (train.x, train.y), "val": (val.x, val.y)}, f"builtin:{spec}", NUM_CLASSES
    if path.is_dir():
        train, val, count = read_image_folder(path, input_shape)
        parts = {"train": (train.x, train.y), "val": None if val is None else (val.x, val.y)}
        return parts, f"folder:{path.resolve()}", count
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise DataError(
                f"cannot read data from {path}: give an .npz file (x_train, y_train, ...), an "
                "image folder, a builtin name or package.module:function"
            )
        return _read_npz(path), f"npz:{path.resolve()}", None
    if _CALLABLE.fullmatch(spec):
        return _read_callable(spec, input_shape), f"callable:{spec}", None
    if path.suffix or "/" in spec:
        raise DataError(f"data file or folder {spec} does not exist: check the path")
    raise DataError(
        f"cannot understand the data source {spec!r}: give a builtin name "
        f"({', '.join(sorted(builtin_names()))}, optionally @HxW), an .npz file, an image "
        "folder, or package.module:function"
    )


def _read_npz(path: Path) -> dict[str, Raw | None]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"cannot read {path} as an .npz file ({exc}): write it with np.savez"
        ) from exc
    if "x_train" not in arrays:
        raise DataError(
            f"{path} has no 'x_train' array (it has: {', '.join(sorted(arrays)) or 'nothing'}): "
            "save it with np.savez(path, x_train=..., y_train=..., x_val=..., y_val=...)"
        )
    unknown = sorted(set(arrays) - _NPZ_KEYS)
    if unknown:
        logger.warning("%s: ignoring arrays %s", path, ", ".join(unknown))
    parts: dict[str, Raw | None] = {}
    for part in PARTS:
        x, y = arrays.get(f"x_{part}"), arrays.get(f"y_{part}")
        if x is None and y is not None:
            raise DataError(f"{path} has y_{part} but no x_{part}: add x_{part} or drop y_{part}")
        parts[part] = None if x is None else (x, y)
    return parts


def _read_callable(spec: str, input_shape: Sequence[int | None]) -> dict[str, Raw | None]:
    module_name, _, attr = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise DataError(
            f"cannot import {module_name} for --data {spec} ({exc}): install it or add its "
            "folder to PYTHONPATH"
        ) from exc
    for part in attr.split("."):
        if not hasattr(target, part):
            raise DataError(f"{module_name} has no {attr}: check the name after ':' in {spec}")
        target = getattr(target, part)
    if not callable(target):
        raise DataError(f"{spec} is not a function: point --data at a function")
    try:
        result = target()
    except Exception as exc:
        raise DataError(f"{spec}() failed: {type(exc).__name__}: {exc}") from exc
    if isinstance(result, dict):
        if "train" not in result:
            raise DataError(f"{spec}() returned a dict without 'train': give train/holdout/val")
        values = [result.get(part) for part in PARTS]
    elif isinstance(result, (tuple, list)) and len(result) == 3:
        values = list(result)
    else:
        raise DataError(
            f"{spec}() returned {type(result).__name__}: return (train, holdout, val) or a dict "
            "with those keys, each an iterable of (input, target) or None"
        )
    per = example_shape(input_shape)
    return {
        part: None if value is None else _materialise(value, per, f"{spec}() {part}")
        for part, value in zip(PARTS, values, strict=True)
    }


def _materialise(value: Any, per: tuple[int | None, ...], name: str) -> Raw:
    """Arrays (x, y) from an ArrayDataset, an (x, y) pair of arrays, or an iterable of batches
    or single examples, each (input, target) or a lone input."""
    if isinstance(value, ArrayDataset):
        return value.x, value.y
    if _is_array_pair(value):
        return _numpy(value[0]), None if value[1] is None else _numpy(value[1])
    inputs, targets = [], []
    try:
        for item in value:
            if isinstance(item, dict) or (
                isinstance(item, (tuple, list)) and isinstance(item[0], (dict, tuple, list))
            ):
                inputs.append(item if isinstance(item, dict) else item[0])
                targets.append(None if isinstance(item, dict) else _numpy_or_none(item[1]))
                continue
            if isinstance(item, (tuple, list)) and len(item) == 2:
                inp, tgt = _numpy(item[0]), _numpy_or_none(item[1])
            else:
                inp, tgt = _numpy(item), None
            if _is_single(inp, tgt, per):
                inp, tgt = inp[None], None if tgt is None else np.reshape(tgt, (1, *tgt.shape))
            elif tgt is not None and (tgt.ndim == 0 or len(tgt) != len(inp)):
                raise DataError(f"{name}: a batch of {len(inp)} inputs has targets {tgt.shape}")
            inputs.append(inp)
            targets.append(tgt)
    except TypeError as exc:
        raise DataError(
            f"{name} is a {type(value).__name__}, not an iterable of (input, target): {exc}"
        ) from exc
    if not inputs:
        return np.zeros(0, dtype=np.float32), None
    if any(t is None for t in targets) and not all(t is None for t in targets):
        raise DataError(f"{name}: some examples have targets and some do not; give all or none")
    if isinstance(inputs[0], (dict, tuple, list)):
        return _stack_examples(inputs, targets, name)
    try:
        x = np.concatenate(inputs)
        y = None if targets[0] is None else np.concatenate(targets)
    except ValueError as exc:
        raise DataError(f"{name}: examples of different shapes ({exc}); give one shape") from exc
    return x, y


def _stack_examples(inputs: list, targets: list, name: str) -> Raw:
    """Single examples of a model with several inputs (a dict or tuple each) stacked into one
    array per input (a tuple keeps its order: input 0, 1, ...)."""
    first = inputs[0]
    keys = list(first) if isinstance(first, dict) else list(range(len(first)))
    try:
        x = {k: np.stack([_numpy(example[k]) for example in inputs]) for k in keys}
        y = None if targets[0] is None else np.stack(targets)
    except (KeyError, IndexError, ValueError) as exc:
        raise DataError(
            f"{name}: examples with different inputs or shapes ({type(exc).__name__}: {exc}); "
            "give every example the same inputs of the same shapes"
        ) from exc
    return x, y


def _numpy_or_none(value: Any) -> np.ndarray | None:
    return None if value is None else _numpy(value)


def _is_array_pair(value: Any) -> bool:
    """True for ``(x, y)`` with x (N, ...) and y (N,) or None: whole arrays, not examples."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        return False
    x, y = value
    if not hasattr(x, "shape") or len(x.shape) < 2:
        return False
    return y is None or (hasattr(y, "shape") and len(y.shape) == 1 and len(y) == len(x))


def _is_single(inp: np.ndarray, tgt: np.ndarray | None, per: tuple[int | None, ...]) -> bool:
    """Whether ``inp`` is one example (else a batch)."""
    if shape_matches(inp.shape, per):
        return True
    if tgt is not None:
        return tgt.ndim == 0
    if inp.ndim >= 1 and _adaptable(inp.shape[1:], per):
        return False
    return _adaptable(inp.shape, per)


def _adaptable(shape: tuple[int, ...], per: tuple[int | None, ...]) -> bool:
    try:
        to_model_layout(np.broadcast_to(np.float32(0), (1, *shape)), (1, *per), "probe")
    except DataError:
        return False
    return True


def _numpy(value: Any) -> np.ndarray:
    """A numpy array from an array, a list or a torch tensor (without importing torch)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _prepare(
    pair: Raw,
    input_shape: Sequence[int | None] | InputSpecs,
    input_dtype: np.dtype | type,
    name: str,
    task: Task | None = None,
) -> ArrayDataset:
    if isinstance(input_shape, Mapping):
        x: Any = _prepare_inputs(pair[0], input_shape, name)
        n = len(next(iter(x.values())))
    else:
        x = np.asarray(pair[0])
        if x.ndim == 0 or len(x) == 0:
            raise DataError(f"{name} data is empty: give at least one example")
        x = to_model_dtype(to_model_layout(x, input_shape, name), np.dtype(input_dtype), name)
        n = len(x)
    y = pair[1]
    return ArrayDataset(
        x, to_targets(y, n, name) if task is None else task.prepare_targets(y, n, name)
    )


def _prepare_inputs(x: Any, specs: InputSpecs, name: str) -> dict[str, np.ndarray]:
    """One array per model input, by name, from a dict (by name) or a tuple (in order)."""
    names = list(specs)
    if isinstance(x, dict):
        keys = list(x)
        if all(isinstance(k, int) for k in keys):
            x = [x[k] for k in sorted(keys)]
        elif set(keys) != set(names):
            raise DataError(
                f"{name} data gives inputs {keys} but the model takes {names}: name every "
                "model input once"
            )
        else:
            x = [x[k] for k in names]
    if not isinstance(x, (tuple, list)) or len(x) != len(names):
        got = len(x) if isinstance(x, (tuple, list)) else "one array"
        raise DataError(
            f"{name} data gives {got} inputs but the model takes {len(names)} ({', '.join(names)})"
            ": give a dict by input name or a tuple in this order"
        )
    out = {}
    for key, value in zip(names, x, strict=True):
        shape, dtype = specs[key]
        label = f"{name} input {key!r}"
        array = np.asarray(value)
        if array.ndim == 0 or len(array) == 0:
            raise DataError(f"{label} is empty: give at least one example")
        out[key] = to_model_dtype(to_model_layout(array, shape, label), np.dtype(dtype), label)
    return out


def _check_targets_agree(parts: dict[str, ArrayDataset], source: str) -> None:
    with_targets = sorted(name for name, data in parts.items() if data.has_targets)
    without = sorted(name for name, data in parts.items() if not data.has_targets)
    if with_targets and without:
        raise DataError(
            f"{source}: {', '.join(with_targets)} has targets but {', '.join(without)} has none: "
            "give targets for every part, or none at all (then the original model's outputs "
            "are the targets)"
        )


def _infer_classes(parts: dict[str, ArrayDataset]) -> int | None:
    tops = [
        int(data.y.max())
        for data in parts.values()
        if isinstance(data.y, np.ndarray) and data.y.dtype.kind in "iu" and len(data)
    ]
    return max(tops) + 1 if tops else None
