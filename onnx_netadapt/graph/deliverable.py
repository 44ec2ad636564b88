"""The interface of a model handed back to the user: the original's input/output declarations.

Inside the tool every tensor has a static shape (``--input-shape`` fixes dynamic dimensions).
What it writes for the user must load and run wherever the original did: dynamic dimensions
(a ``batch`` dim_param, Paddle's ``-1``) stay dynamic. Folding shape computations at the working
shape bakes the working batch into Reshape shapes; a Reshape that carries the batch through
gets ``0`` ("copy the input's dimension") there instead. The result is checked by running it
next to the original at other sizes; where a check fails the static working form is kept and
the note says why.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from onnx_netadapt.graph.large import is_large
from onnx_netadapt.graph.ops import attr
from onnx_netadapt.graph.shapes import infer_shapes, is_static_dim

logger = logging.getLogger(__name__)

# Probe sizes: a dynamic batch dimension is checked at this size, another dynamic dimension at
# this multiple of its working size.
PROBE_BATCH = 2
PROBE_SCALE = 2


@dataclass
class Deliverable:
    """The model to write and one line on its interface (for the summary and the log)."""

    model: onnx.ModelProto
    note: str


def dynamic_axes(value: onnx.ValueInfoProto) -> list[int]:
    """Axes of a declared graph input/output that are dynamic (symbol, unset, Paddle's -1/0)."""
    return [i for i, d in enumerate(value.type.tensor_type.shape.dim) if not is_static_dim(d)]


def with_original_interface(
    model: onnx.ModelProto, original: str | os.PathLike | onnx.ModelProto
) -> Deliverable:
    """``model`` (static working form) with ``original``'s input and output declarations.

    Args:
        model: a pruned/fine-tuned network in the working form (static shapes).
        original: the user's model (path or proto) whose declarations are restored.

    Returns:
        The deliverable; the working form itself, with a note, when the original has no
        dynamic dimension or the restored model fails its checks.
    """
    source = _declarations(original)
    inputs = {v.name: v for v in source.graph.input}
    outputs = {v.name: v for v in source.graph.output}
    if not any(dynamic_axes(v) for v in [*inputs.values(), *outputs.values()]):
        return Deliverable(model, "static shapes, as the original")
    if is_large(model):
        return Deliverable(model, "static working shapes kept (model over 2 GB: not checked)")
    attempts = [("every dynamic dimension", False), ("the batch dimension only", True)]
    failures = []
    for label, batch_only in attempts:
        candidate = _restored(model, inputs, outputs, batch_only)
        problem = _check(candidate, model, original, inputs, batch_only)
        if problem is None:
            return Deliverable(candidate, f"dynamic as the original ({label})")
        failures.append(f"{label}: {problem}")
    note = (
        "static working shapes kept: restoring dynamic dimensions failed ("
        + "; ".join(failures)
        + ")"
    )
    logger.warning("%s", note)
    return Deliverable(model, note)


def _declarations(original: str | os.PathLike | onnx.ModelProto) -> onnx.ModelProto:
    if isinstance(original, onnx.ModelProto):
        return original
    return onnx.load(str(original), load_external_data=False)


def _restored(
    model: onnx.ModelProto,
    inputs: dict[str, onnx.ValueInfoProto],
    outputs: dict[str, onnx.ValueInfoProto],
    batch_only: bool,
) -> onnx.ModelProto:
    """A copy of ``model`` declaring ``inputs``/``outputs`` as the original does."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for value in [*out.graph.input, *out.graph.output]:
        declared = inputs.get(value.name) or outputs.get(value.name)
        if declared is None:
            continue
        for axis in dynamic_axes(declared):
            if batch_only and axis != 0:
                continue
            dims = value.type.tensor_type.shape.dim
            if axis < len(dims):
                dims[axis].CopyFrom(declared.type.tensor_type.shape.dim[axis])
                if dims[axis].HasField("dim_value"):  # Paddle's -1 / 0: a named dim instead
                    dims[axis].dim_param = f"{value.name}_dim{axis}"
    del out.graph.value_info[:]  # working shapes would contradict other sizes
    if any(0 in dynamic_axes(v) for v in inputs.values()):
        _batch_generic_reshapes(out, model)
    return out


def _batch_generic_reshapes(out: onnx.ModelProto, working: onnx.ModelProto) -> int:
    """Reshapes that carry the (working) batch through get 0 there; returns how many."""
    copy = onnx.ModelProto()
    copy.CopyFrom(working)
    shapes = infer_shapes(copy)
    inits = {i.name: i for i in out.graph.initializer}
    changed = 0
    for node in out.graph.node:
        if node.op_type != "Reshape" or int(attr(node, "allowzero", 0)):
            continue
        target = inits.get(node.input[1])
        data_shape = shapes.get(node.input[0])
        out_shape = shapes.get(node.output[0])
        if target is None or not data_shape or not out_shape:
            continue
        values = numpy_helper.to_array(target).copy()
        if values.size and values[0] == data_shape[0] == out_shape[0] and values[0] > 0:
            values[0] = 0
            target.CopyFrom(numpy_helper.from_array(values.astype(np.int64), target.name))
            changed += 1
    return changed


def _probe_feeds(
    inputs: dict[str, onnx.ValueInfoProto],
    working: onnx.ModelProto,
    batch_only: bool,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Random feeds at the probe sizes (working sizes elsewhere)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in working.graph.input:
        if value.name not in inputs:
            continue
        shape = [d.dim_value for d in value.type.tensor_type.shape.dim]
        for axis in dynamic_axes(inputs[value.name]):
            if axis == 0:
                shape[0] = PROBE_BATCH
            elif not batch_only:
                shape[axis] *= PROBE_SCALE
        dtype = onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
        if np.issubdtype(dtype, np.floating):
            feeds[value.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[value.name] = np.zeros(shape, dtype)
    return feeds


def _check(
    candidate: onnx.ModelProto,
    working: onnx.ModelProto,
    original: str | os.PathLike | onnx.ModelProto,
    inputs: dict[str, onnx.ValueInfoProto],
    batch_only: bool,
) -> str | None:
    """Why ``candidate`` does not run where the original runs (None when it does).

    Probes: another batch size (outputs must equal the samples run one by one), and, unless
    ``batch_only``, every other dynamic dimension scaled (output shapes must match the
    original's at that size). A probe at which the original itself fails is skipped.
    """
    from onnx_netadapt.verify import run_model

    reference = original if isinstance(original, onnx.ModelProto) else _load(original)
    has_other = any(a != 0 for v in inputs.values() for a in dynamic_axes(v))
    for probe_batch_only in [True] + ([False] if has_other and not batch_only else []):
        feeds = _probe_feeds(inputs, working, probe_batch_only)
        try:
            expected = run_model(reference, feeds)
        except Exception:  # the original does not run there either: nothing to promise
            continue
        try:
            got = run_model(candidate, feeds)
        except Exception as exc:
            return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        for want, have in zip(expected, got, strict=True):
            if want.shape != have.shape:
                return f"output shape {have.shape} where the original gives {want.shape}"
        if probe_batch_only and (problem := _same_per_sample(working, feeds, got)):
            return problem
    return None


def _same_per_sample(
    working: onnx.ModelProto, feeds: dict[str, np.ndarray], batched: list[np.ndarray]
) -> str | None:
    """The batched outputs equal the working model (batch 1) run on each sample."""
    from onnx_netadapt.verify import run_model

    working_batch = {v.name: v.type.tensor_type.shape.dim[0].dim_value for v in working.graph.input}
    if any(working_batch.get(k) != 1 or v.shape[0] != PROBE_BATCH for k, v in feeds.items()):
        return None  # only a batch-1 working form gives a per-sample reference
    for index in range(PROBE_BATCH):
        single = {k: v[index : index + 1] for k, v in feeds.items()}
        for whole, alone in zip(batched, run_model(working, single), strict=True):
            if whole.shape[:1] != (PROBE_BATCH,) or not np.allclose(
                whole[index : index + 1], alone, rtol=1e-4, atol=1e-5
            ):
                return "a batch of 2 does not give the outputs of its samples run one by one"
    return None


def _load(path: str | os.PathLike) -> onnx.ModelProto:
    return onnx.load(str(Path(path)))
