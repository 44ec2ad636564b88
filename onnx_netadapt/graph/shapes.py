"""Static shapes of every tensor of a model: ONNX shape inference, completed by one ORT run."""

from __future__ import annotations

import logging

import onnx

logger = logging.getLogger(__name__)


def is_static_dim(dim: onnx.TensorShapeProto.Dimension) -> bool:
    """True for a fixed size; a symbol, a missing value, or -1/0 (Paddle's and some other
    exporters' way of writing a dynamic size) is dynamic."""
    return dim.HasField("dim_value") and dim.dim_value > 0


def static_dims(type_proto: onnx.TypeProto) -> tuple[int, ...] | None:
    """Dims of a tensor type when all are known positive integers, else None."""
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    dims = []
    for d in type_proto.tensor_type.shape.dim:
        if not is_static_dim(d):
            return None
        dims.append(int(d.dim_value))
    return tuple(dims)


def infer_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Static shape of every tensor of ``model`` (inputs, initializers, node outputs).

    Writes the inferred shapes into ``model.graph.value_info``. Tensors whose shape ONNX shape
    inference cannot make static are taken from one ONNX Runtime run on zeros.
    """
    from onnx_netadapt.graph.large import skeleton

    inferred = onnx.shape_inference.infer_shapes(skeleton(model), data_prop=True)
    shapes: dict[str, tuple[int, ...]] = {}
    for init in model.graph.initializer:
        shapes[init.name] = tuple(int(d) for d in init.dims)
    for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = static_dims(vi.type)
        if dims is not None:
            shapes[vi.name] = dims
    missing = [out for node in model.graph.node for out in node.output if out and out not in shapes]
    if missing:
        logger.info(
            "shape inference left %d tensors without static shape; running ORT", len(missing)
        )
        try:
            shapes.update(_shapes_from_ort(model, missing))
        except Exception as exc:  # e.g. a custom op ORT does not know: analysis pins around it
            logger.warning(
                "could not complete shapes with ONNX Runtime (%s); nodes whose "
                "shapes stay unknown are reported as unsupported",
                exc,
            )
    del model.graph.value_info[:]
    model.graph.value_info.extend(
        vi for vi in inferred.graph.value_info if static_dims(vi.type) is not None
    )
    return shapes


def _shapes_from_ort(model: onnx.ModelProto, names: list[str]) -> dict[str, tuple[int, ...]]:
    """Shapes of ``names`` read off one ONNX Runtime run of ``model`` on zero inputs."""
    from onnx_netadapt.graph.probe import run_on_zeros

    return {n: tuple(int(d) for d in v.shape) for n, v in run_on_zeros(model, names).items()}
