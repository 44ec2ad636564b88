"""Scores of an ONNX model in ONNX Runtime (CPU, one intra-op thread by default): a task's score
over a split (``task_score``), and the accuracy of a classifier."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from onnx_netadapt.data.dataset import ArrayDataset, take
from onnx_netadapt.errors import DataError
from onnx_netadapt.graph.large import ort_session
from onnx_netadapt.tasks.base import OutputInfo, Task, TaskScore
from onnx_netadapt.tasks.classification import cross_entropy

__all__ = [
    "accuracy",
    "cross_entropy",
    "input_spec",
    "input_specs",
    "output_classes",
    "output_infos",
    "outputs",
    "predict",
    "run_outputs",
    "score",
    "task_score",
]


def _proto(model) -> onnx.ModelProto:
    """The ModelProto of a ModelProto or a LoadedModel."""
    return model.model if hasattr(model, "model") else model


def _dims(value: onnx.ValueInfoProto) -> tuple[int | None, ...]:
    return tuple(
        d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
        for d in value.type.tensor_type.shape.dim
    )


def input_specs(model) -> dict[str, tuple[tuple[int | None, ...], np.dtype]]:
    """(shape with None for unknown dims, numpy dtype) of every real input, by name, in order."""
    graph = _proto(model).graph
    weights = {init.name for init in graph.initializer}
    specs = {
        v.name: (_dims(v), np.dtype(helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)))
        for v in graph.input
        if v.name not in weights
    }
    if not specs:
        raise DataError("the model has no input to feed data to")
    return specs


def input_spec(model) -> tuple[str, tuple[int | None, ...], np.dtype]:
    """(name, shape with None for unknown dims, numpy dtype) of the model's first real input."""
    name, (dims, dtype) = next(iter(input_specs(model).items()))
    return name, dims, dtype


def output_infos(model) -> list[OutputInfo]:
    """Name and static shape of every model output, in order (for the tasks' target checks)."""
    return [OutputInfo(v.name, _dims(v)) for v in _proto(model).graph.output]


def output_classes(model) -> int | None:
    """The size of the last axis of the first output (the number of classes), if static."""
    dims = _proto(model).graph.output[0].type.tensor_type.shape.dim
    if not dims or not dims[-1].HasField("dim_value") or dims[-1].dim_value <= 0:
        return None
    return int(dims[-1].dim_value)


def run_outputs(
    model, data: ArrayDataset, batch_size: int = 256, threads: int = 1
) -> list[np.ndarray]:
    """Every output of the model for every example, each stacked along the first axis.

    A model whose batch dimension is fixed runs in batches of exactly that size (the last one
    padded, the padding dropped); a dynamic batch dimension runs ``batch_size`` at a time. A
    model with several inputs reads ``data.x`` as a dict by input name.
    """
    import onnxruntime as ort

    proto = _proto(model)
    specs = input_specs(proto)
    first = next(iter(specs.values()))[0]
    fixed = first[0] if first else None
    step = fixed or max(1, batch_size)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort_session(proto, options, ["CPUExecutionProvider"])
    chunks: list[list[np.ndarray]] = []
    for start in range(0, len(data), step):
        count = min(step, len(data) - start)
        rows = np.arange(start, start + (fixed or count)) % len(data)  # pad with the first rows
        fed = _feeds(take(data.x, rows), specs)
        chunks.append([np.asarray(out)[:count] for out in session.run(None, fed)])
    if not chunks:
        return [np.zeros((0, 0), dtype=np.float32) for _ in proto.graph.output]
    return [np.concatenate(parts) for parts in zip(*chunks, strict=True)]


def reference_outputs(
    original: onnx.ModelProto, data: ArrayDataset, task: Task
) -> list[np.ndarray] | None:
    """The original model's outputs on ``data`` when ``task`` scores against them."""
    return run_outputs(original, data) if task.needs_reference(data.has_targets) else None


def _feeds(x, specs: dict) -> dict[str, np.ndarray]:
    if isinstance(x, dict):
        return {name: x[name] for name in specs}
    return {next(iter(specs)): x}


def outputs(model, data: ArrayDataset, batch_size: int = 256, threads: int = 1) -> np.ndarray:
    """The first output (e.g. logits) for every example, stacked along the first axis."""
    return run_outputs(model, data, batch_size=batch_size, threads=threads)[0]


def task_score(
    model,
    data: ArrayDataset,
    task: Task,
    reference: list[np.ndarray] | None = None,
    threads: int = 1,
) -> TaskScore:
    """``task``'s score of the model on ``data`` (against ``reference``, the original model's
    outputs on the same examples, where the task needs them)."""
    if len(data) == 0:
        raise DataError(f"cannot score task {task.name!r} on empty data: give at least one example")
    return task.score(run_outputs(model, data, threads=threads), data.y, reference)


def predict(model, data: ArrayDataset, batch_size: int = 256, threads: int = 1) -> np.ndarray:
    """Predicted classes: argmax over the last axis of the first output, one per example."""
    out = outputs(model, data, batch_size=batch_size, threads=threads)
    if out.size == 0:
        return np.zeros(0, dtype=np.int64)
    return out.argmax(axis=-1).astype(np.int64)


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
