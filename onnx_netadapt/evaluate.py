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


def outputs(model, data: ArrayDataset, batch_size: int = 256, threads: int = 1) -> np.ndarray:
    """The first output (e.g. logits) for every example, stacked along the first axis.

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
        chunks.append(np.asarray(logits)[:count])
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(chunks)


def predict(model, data: ArrayDataset, batch_size: int = 256, threads: int = 1) -> np.ndarray:
    """Predicted classes: argmax over the last axis of the first output, one per example."""
    out = outputs(model, data, batch_size=batch_size, threads=threads)
    if out.size == 0:
        return np.zeros(0, dtype=np.int64)
    return out.argmax(axis=-1).astype(np.int64)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy of ``logits`` (N, C) against class ``labels`` (N,)."""
    z = logits.reshape(len(logits), -1).astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(z)), labels].mean())


def score(
    model, data: ArrayDataset, reference: np.ndarray | None = None, threads: int = 1
) -> tuple[float, float]:
    """(top-1 accuracy, mean cross-entropy) against ``data.y`` or ``reference`` predictions.

    The loss separates proposals whose accuracy ties on a small holdout set.
    """
    truth = _truth(data, reference)
    out = outputs(model, data, threads=threads)
    return float(np.mean(out.argmax(axis=-1) == truth)), cross_entropy(out, truth)


def accuracy(
    model,
    data: ArrayDataset,
    reference: np.ndarray | None = None,
    batch_size: int = 256,
    threads: int = 1,
) -> float:
    """Top-1 accuracy against ``data.y``, or agreement with ``reference`` predictions if given."""
    truth = _truth(data, reference)
    predicted = predict(model, data, batch_size=batch_size, threads=threads)
    return float(np.mean(predicted == np.asarray(truth)))


def _truth(data: ArrayDataset, reference: np.ndarray | None) -> np.ndarray:
    """The labels to score against: ``reference`` predictions if given, else the targets."""
    if len(data) == 0:
        raise DataError("cannot measure accuracy on empty data: give at least one example")
    truth = reference if reference is not None else data.y
    if truth is None:
        raise DataError(
            "the data has no targets: pass the original model's predictions as reference"
        )
    if len(truth) != len(data):
        raise DataError(f"{len(truth)} reference predictions for {len(data)} examples")
    return np.asarray(truth)
