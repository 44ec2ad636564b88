"""Small readers of ONNX node attributes and constant inputs, across opset versions."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import numpy_helper

logger = logging.getLogger(__name__)

QUANTIZED_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
        "ConvInteger",
        "MatMulInteger",
        "QLinearAdd",
        "QLinearMul",
        "QLinearSigmoid",
        "QLinearLeakyRelu",
        "QLinearConcat",
        "QLinearGlobalAveragePool",
        "QLinearAveragePool",
        "QGemm",
    }
)


def consumers_of(graph: onnx.GraphProto) -> defaultdict[str, list[onnx.NodeProto]]:
    """The nodes that read each tensor of ``graph``, by tensor name (in graph order)."""
    consumers: defaultdict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    return consumers


def attr(node: onnx.NodeProto, name: str, default=None):
    """Value of attribute ``name`` of ``node`` (python types), or ``default``."""
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def set_attr(node: onnx.NodeProto, name: str, value) -> None:
    """Set (replace or add) attribute ``name`` on ``node``."""
    for i, a in enumerate(node.attribute):
        if a.name == name:
            del node.attribute[i]
            break
    node.attribute.append(onnx.helper.make_attribute(name, value))


def input_name(node: onnx.NodeProto, index: int) -> str:
    """Name of input ``index`` or '' when absent (ONNX optional inputs)."""
    return node.input[index] if index < len(node.input) else ""


def const_value(
    node: onnx.NodeProto, index: int, constants: Mapping[str, onnx.TensorProto]
) -> np.ndarray | None:
    """Constant value of input ``index`` when it is an initializer, else None."""
    name = input_name(node, index)
    if not name or name not in constants:
        return None
    return numpy_helper.to_array(constants[name])


def axes_of(
    node: onnx.NodeProto, constants: Mapping[str, onnx.TensorProto], input_index: int = 1
) -> list[int] | None:
    """Axes of Reduce*/Squeeze/Unsqueeze, from the attribute (old opsets) or an input (new).

    Returns None when axes are absent (meaning "all" for reductions), and raises
    ``ValueError`` when they are given by a non-constant input.
    """
    value = attr(node, "axes")
    if value is not None:
        return [int(v) for v in value]
    name = input_name(node, input_index)
    if not name:
        return None
    arr = const_value(node, input_index, constants)
    if arr is None:
        raise ValueError("axes are computed at run time")
    return [int(v) for v in arr.reshape(-1)]


def normalize_axis(axis: int, rank: int) -> int:
    """Map a possibly negative axis into [0, rank)."""
    return axis + rank if axis < 0 else axis


def numpy_dtype(elem_type: int) -> np.dtype:
    """The numpy dtype of an ONNX tensor element type (float32 when it has none)."""
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        return np.dtype(np.float32)
