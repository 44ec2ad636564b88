"""Reshape with ``allowzero=1`` (onnx2torch's own Reshape converter refuses it) and Reshape-19/21.

Before opset 19 the nodes with ``allowzero=1`` are rerouted here and onnx2torch converts the
others; from opset 19 on, ours converts every Reshape, delegating all but ``allowzero=1`` to
onnx2torch's Reshape-14.
"""

from __future__ import annotations

import onnx
import torch
from torch import nn

from onnx_netadapt.finetune.converters._common import (
    OnnxGraph,
    OnnxNode,
    OnnxToTorchModule,
    OperationConverterResult,
    onnx_mapping_from_node,
)
from onnx_netadapt.finetune.converters._registry import Converter, add, delegate, replaces
from onnx_netadapt.graph.ops import attr


class OnnxReshapeAllowZero(nn.Module, OnnxToTorchModule):
    """Reshape with ``allowzero=1``: a 0 in the shape is a zero-sized axis (plain torch)."""

    def forward(self, x: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        return torch.reshape(x, [int(v) for v in shape.tolist()])


def _allows_zero(node: onnx.NodeProto, opset: int) -> bool:
    return opset < 19 and int(attr(node, "allowzero", 0)) == 1


@replaces("Reshape", _allows_zero)
def _convert_allowzero(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    return OperationConverterResult(OnnxReshapeAllowZero(), onnx_mapping_from_node(node))


def _reshape_converter(fallback: Converter) -> Converter:
    """Reshape converter: ``allowzero=1`` handled here, anything else by ``fallback``."""

    def convert(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
        if node.attributes.get("allowzero", 0) != 1:
            return fallback(node, graph)
        return _convert_allowzero(node, graph)

    return convert


for _version in (19, 21):
    add("Reshape", _version, _reshape_converter(delegate("Reshape", 14)))
