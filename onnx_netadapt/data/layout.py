"""Bring user arrays into the model's input layout (NCHW or NHWC) and dtype, when unambiguous."""

from __future__ import annotations

import logging
import numbers
from collections.abc import Sequence

import numpy as np

from onnx_netadapt.errors import DataError

logger = logging.getLogger(__name__)


def example_shape(input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
    """The per-example part of a model input shape; unknown dims (<= 0, None) become None."""
    if len(input_shape) < 1:
        raise DataError(
            "the model input is a scalar: it has no batch dimension to feed data through"
        )
    return tuple(
        int(d) if isinstance(d, numbers.Integral) and d > 0 else None for d in input_shape[1:]
    )


def shape_matches(shape: Sequence[int], expected: Sequence[int | None]) -> bool:
    """True when ``shape`` equals ``expected`` (None in ``expected`` matches anything)."""
    return len(shape) == len(expected) and all(
        e is None or s == e for s, e in zip(shape, expected, strict=True)
    )


def image_layout(
    input_shape: Sequence[int | None],
) -> tuple[str, int | None, int | None, int | None]:
    """("NCHW" or "NHWC", C, H, W) of a 4-D image input; NCHW unless the last dim looks like C."""
    per = example_shape(input_shape)
    if len(per) != 3:
        raise DataError(
            f"the model input {_fmt(input_shape)} is not an image batch (N, C, H, W) or "
            "(N, H, W, C): an image folder cannot feed it; give an .npz file or a "
            "package.module:function instead"
        )
    first, last = per[0], per[2]
    if last is not None and last <= 4 and (first is None or first > 4):
        return "NHWC", last, per[0], per[1]
    return "NCHW", first, per[1], per[2]


def _candidates(x: np.ndarray, per: tuple[int | None, ...]) -> list[tuple[str, np.ndarray]]:
    """Views of ``x`` (N, ...) that could be the model's layout, with what was done."""
    data = x.shape[1:]
    out: list[tuple[str, np.ndarray]] = []
    if len(data) == len(per) == 3:
        out.append(("NCHW to NHWC", np.transpose(x, (0, 2, 3, 1))))
        out.append(("NHWC to NCHW", np.transpose(x, (0, 3, 1, 2))))
    squeezed = tuple(d for d in data if d != 1)
    known = [d for d in per if d != 1]
    if None not in per and squeezed == tuple(known) and len(data) != len(per):
        out.append(("singleton axes", x.reshape((len(x), *per))))
    return out


def to_model_layout(x: np.ndarray, input_shape: Sequence[int | None], name: str) -> np.ndarray:
    """``x`` (N, ...) reshaped/transposed to the model's per-example shape, or a DataError.

    Accepts the exact shape, NCHW data for an NHWC model and back, and added or missing singleton
    axes (e.g. (N, 28, 28) for a (1, 1, 28, 28) or (1, 28, 28, 1) model).
    """
    per = example_shape(input_shape)
    if x.ndim == 0:
        raise DataError(f"{name} data is a scalar: give an array of examples (N, ...)")
    if shape_matches(x.shape[1:], per):
        return x
    matches = [(how, y) for how, y in _candidates(x, per) if shape_matches(y.shape[1:], per)]
    if len(matches) == 1:
        how, y = matches[0]
        logger.info("%s data: %s %s -> %s", name, how, _fmt(x.shape), _fmt(y.shape))
        return np.ascontiguousarray(y)
    why = "several layouts fit" if matches else "no layout fits"
    raise DataError(
        f"{name} data has examples of shape {_fmt(x.shape[1:])} (array {_fmt(x.shape)}) but the "
        f"model input is {_fmt(input_shape)} (examples {_fmt(per)}); {why}: give the data as "
        f"(N, {', '.join('?' if d is None else str(d) for d in per)}), "
        "or check that this is the model the data is meant for"
    )


def to_model_dtype(x: np.ndarray, dtype: np.dtype, name: str) -> np.ndarray:
    """``x`` cast to the model's input dtype when that loses nothing essential, else DataError."""
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    if x.dtype.kind == "O" or x.dtype.kind not in "biuf":
        raise DataError(
            f"{name} data has dtype {x.dtype}, not real numbers: give a numeric array ({dtype})"
        )
    if dtype.kind == "f":
        if x.dtype.kind in "iu" and x.size and x.max() > 1:
            logger.warning(
                "%s data: %s values up to %s cast to %s unscaled; scale them yourself if the "
                "model expects inputs in [0, 1]",
                name,
                x.dtype,
                x.max(),
                dtype,
            )
        return x.astype(dtype)
    if dtype.kind in "iub" and x.dtype.kind in "iub" and np.can_cast(x.dtype, dtype):
        return x.astype(dtype)
    raise DataError(
        f"{name} data has dtype {x.dtype} but the model input is {dtype}: the cast would lose "
        f"values; convert the data to {dtype} yourself"
    )


def to_targets(y: np.ndarray | None, n: int, name: str) -> np.ndarray | None:
    """Class targets as int64 (N,), or a DataError for one-hot, float or mis-sized targets."""
    if y is None:
        return None
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != n:
        hint = " (one-hot? give y.argmax(1))" if y.ndim == 2 and len(y) == n else ""
        raise DataError(
            f"{name} targets have shape {_fmt(y.shape)}: give class indices of shape ({n},), "
            f"one per example{hint}"
        )
    if y.dtype.kind not in "iu":
        raise DataError(
            f"{name} targets have dtype {y.dtype}: give integer class indices (int64), "
            "e.g. y.astype(np.int64) if they are whole numbers"
        )
    return y.astype(np.int64)


def _fmt(shape: Sequence[int | None]) -> str:
    dims = ", ".join("?" if d is None else str(d) for d in shape)
    return f"({dims},)" if len(shape) == 1 else f"({dims})"
