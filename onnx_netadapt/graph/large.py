"""Models over protobuf's 2 GiB limit: they cannot be serialised whole.

Shape inference runs on a *skeleton* (large initializers keep their dims but not their data),
and ONNX Runtime gets the model as a file with external data.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

import onnx

# A little under the limit: leave room for the graph itself.
LARGE_MODEL_BYTES = 1_900_000_000
_SKELETON_MIN_BYTES = 1 << 20


def is_large(model: onnx.ModelProto) -> bool:
    """True when ``model`` is too big to serialise in one piece."""
    weights = sum(len(init.raw_data) for init in model.graph.initializer)
    if weights > LARGE_MODEL_BYTES:
        return True
    try:
        return model.ByteSize() > LARGE_MODEL_BYTES
    except Exception:  # protobuf refuses to even size messages over 2 GiB
        return True


def skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose large initializers are external-data stubs (dims and type, no values).

    Enough for shape inference; small initializers (shape constants) keep their values. Models
    under the limit are copied whole.
    """
    out = onnx.ModelProto()
    if not is_large(model):
        out.CopyFrom(model)
        return out
    _copy_fields(model, out, skip="graph")
    _copy_fields(model.graph, out.graph, skip="initializer")
    for init in model.graph.initializer:
        if len(init.raw_data) < _SKELETON_MIN_BYTES:
            out.graph.initializer.add().CopyFrom(init)
            continue
        stub = out.graph.initializer.add()
        stub.name = init.name
        stub.data_type = init.data_type
        stub.dims.extend(init.dims)
        stub.data_location = onnx.TensorProto.EXTERNAL
        entry = stub.external_data.add()
        entry.key, entry.value = "location", "weights-not-loaded.bin"
    return out


def _copy_fields(source, target, skip: str) -> None:
    """Copy every set field of a protobuf message except ``skip``."""
    for field, value in source.ListFields():
        if field.name == skip:
            continue
        repeated = getattr(field, "is_repeated", None)
        if repeated is None:  # older protobuf
            repeated = field.label == field.LABEL_REPEATED
        if repeated:
            getattr(target, field.name).extend(value)
        elif field.message_type is not None:
            getattr(target, field.name).CopyFrom(value)
        else:
            setattr(target, field.name, value)


@contextlib.contextmanager
def model_path(model: onnx.ModelProto) -> Iterator[str]:
    """A temporary file holding ``model`` (with external data when it is large)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        if is_large(model):
            copy = onnx.ModelProto()
            copy.CopyFrom(model)
            onnx.save(copy, path, save_as_external_data=True, location="model.onnx.data")
        else:
            with open(path, "wb") as handle:
                handle.write(model.SerializeToString())
        yield path


def ort_session(model: onnx.ModelProto, options, providers: list[str]):
    """An ONNX Runtime session for ``model`` of any size."""
    import onnxruntime as ort

    if not is_large(model):
        return ort.InferenceSession(model.SerializeToString(), options, providers=providers)
    with model_path(model) as path:
        return ort.InferenceSession(path, options, providers=providers)
