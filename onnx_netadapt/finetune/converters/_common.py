"""What the converters share: onnx2torch's types (imported safely once), constant operands
read at conversion time, axes, mappings."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from onnx_netadapt.finetune._imports import import_onnx2torch

import_onnx2torch()

from onnx2torch.onnx_graph import OnnxGraph
from onnx2torch.onnx_node import OnnxNode
from onnx2torch.utils.common import (
    OnnxMapping,
    OnnxToTorchModule,
    OperationConverterResult,
    onnx_mapping_from_node,
)

# what the op-family modules take from onnx2torch, imported here after import_onnx2torch()
__all__ = [
    "OnnxGraph",
    "OnnxMapping",
    "OnnxNode",
    "OnnxToTorchModule",
    "OperationConverterResult",
    "onnx_mapping_from_node",
]


def _const_ints(node: OnnxNode, graph: OnnxGraph, index: int) -> list[int] | None:
    """The values of input ``index`` when it is an initializer, else None (absent or dynamic)."""
    name = _input(node, index)
    if name is None or name not in graph.initializers:
        return None
    return [int(v) for v in graph.initializers[name].to_numpy().reshape(-1).tolist()]


def _const_floats(node: OnnxNode, graph: OnnxGraph, index: int) -> list[float] | None:
    name = _input(node, index)
    if name is None or name not in graph.initializers:
        return None
    return [float(v) for v in graph.initializers[name].to_numpy().reshape(-1).tolist()]


def _input(node: OnnxNode, index: int) -> str | None:
    """Name of input ``index``, None when absent or empty."""
    if index < len(node.input_values) and node.input_values[index]:
        return node.input_values[index]
    return None


def _all_static(node: OnnxNode, graph: OnnxGraph, indices: Sequence[int]) -> bool:
    return all(_input(node, i) is None or _input(node, i) in graph.initializers for i in indices)


def _data_only(node: OnnxNode) -> OnnxMapping:
    """Mapping that feeds only the first input (the others were read as constants)."""
    return OnnxMapping(inputs=(node.input_values[0],), outputs=node.output_values)


def static_or_runtime(
    node: OnnxNode,
    graph: OnnxGraph,
    operands: Sequence[int],
    module: Callable[[bool], torch.nn.Module],
) -> OperationConverterResult:
    """The converted node: ``module(True)`` when every input of ``operands`` is an initializer
    (read at conversion time; the module is fed the data input only), else ``module(False)``,
    fed every input at run time."""
    if _all_static(node, graph, operands):
        return OperationConverterResult(module(True), _data_only(node))
    return OperationConverterResult(module(False), onnx_mapping_from_node(node))


def _normal(axes: Sequence[int], rank: int) -> list[int]:
    """Axes in [0, rank), in the order given."""
    return [a + rank if a < 0 else a for a in axes]


def _positive(axes: Sequence[int], rank: int) -> list[int]:
    """Axes in [0, rank), sorted."""
    return sorted(_normal(axes, rank))


def _tensor_ints(value: torch.Tensor | None) -> list[int] | None:
    if value is None or value.numel() == 0:
        return None
    return [int(v) for v in value.reshape(-1).tolist()]
