"""AveragePool-19 without dilations (it is AveragePool-11)."""

from __future__ import annotations

from onnx_netadapt.finetune.converters._common import OnnxGraph, OnnxNode, OperationConverterResult
from onnx_netadapt.finetune.converters._registry import Converter, add, delegate


def _average_pool_converter(fallback: Converter) -> Converter:
    """AveragePool-19 without dilations is AveragePool-11."""

    def convert(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
        if any(d != 1 for d in node.attributes.get("dilations", [])):
            raise NotImplementedError("AveragePool with dilations is not implemented")
        return fallback(node, graph)

    return convert


add("AveragePool", 19, _average_pool_converter(delegate("AveragePool", 11)))
