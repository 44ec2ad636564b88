"""Gelu-20 and Mish-18."""

from __future__ import annotations

from torch import nn

from onnx_netadapt.finetune.converters._common import (
    OnnxGraph,
    OnnxNode,
    OperationConverterResult,
    onnx_mapping_from_node,
)
from onnx_netadapt.finetune.converters._registry import converts


@converts("Gelu", 20)
def _convert_gelu(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    approximate = node.attributes.get("approximate", "none")
    return OperationConverterResult(nn.GELU(approximate=approximate), onnx_mapping_from_node(node))


@converts("Mish", 18)
def _convert_mish(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    return OperationConverterResult(nn.Mish(), onnx_mapping_from_node(node))
