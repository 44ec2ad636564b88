"""Accuracy of an ONNX classifier in ONNX Runtime (CPU, one intra-op thread by default)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from onnx_netadapt.data.dataset import ArrayDataset
from onnx_netadapt.errors import DataError
from onnx_netadapt.graph.large import ort_session


def _proto(model) -> onnx.ModelProto:
    """The ModelProto of a ModelProto or a LoadedModel."""
    return model.model if hasattr(model, "model") else model


def input_spec(model) -> tuple[str, tuple[int | None, ...], np.dtype]:
    """(name, shape with None for unknown dims, numpy dtype) of the model's first real input."""
    graph = _proto(model).graph
    weights = {init.name for init in graph.initializer}
    value = next((v for v in graph.input if v.name not in weights), None)
    if value is None:
        raise DataError("the model has no input to feed data to")
    tensor = value.type.tensor_type
    dims = tuple(
        d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
        for d in tensor.shape.dim
    )
    return value.name, dims, np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type))


def output_classes(model) -> int | None:
    """The size of the last axis of the first output (the number of classes), if static."""
    dims = _proto(model).graph.output[0].type.tensor_type.shape.dim
    if not dims or not dims[-1].HasField("dim_value") or dims[-1].dim_value <= 0:
        return None
    return int(dims[-1].dim_value)


def predict(model, data: ArrayDataset, batch_size: int = 256, threads: int = 1) -> np.ndarray:
    """Predicted classes: argmax over the last axis of the first output, one per example.

    A model whose batch dimension is fixed runs in batches of exactly that size (the last one
    padded, the padding dropped); a dynamic batch dimension runs ``batch_size`` at a time.
    """
    import onnxruntime as ort

    proto = _proto(model)
    name, shape, _ = input_spec(proto)
    fixed = shape[0] if shape else None
    step = fixed or max(1, batch_size)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort_session(proto, options, ["CPUExecutionProvider"])
    output = session.get_outputs()[0].name
    chunks = []
    for start in range(0, len(data), step):
        x = data.x[start : start + step]
        count = len(x)
        if fixed and count < fixed:
            pad = np.zeros((fixed - count, *x.shape[1:]), dtype=x.dtype)
            x = np.concatenate([x, pad])
        logits = session.run([output], {name: x})[0]
        chunks.append(np.asarray(logits).argmax(axis=-1)[:count])
    if not chunks:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(chunks).astype(np.int64)


def accuracy(
    model,
    data: ArrayDataset,
    reference: np.ndarray | None = None,
    batch_size: int = 256,
    threads: int = 1,
) -> float:
    """Top-1 accuracy against ``data.y``, or agreement with ``reference`` predictions if given."""
    if len(data) == 0:
        raise DataError("cannot measure accuracy on empty data: give at least one example")
    truth = reference if reference is not None else data.y
    if truth is None:
        raise DataError(
            "the data has no targets: pass the original model's predictions as reference"
        )
    if len(truth) != len(data):
        raise DataError(f"{len(truth)} reference predictions for {len(data)} examples")
    predicted = predict(model, data, batch_size=batch_size, threads=threads)
    return float(np.mean(predicted == np.asarray(truth)))
