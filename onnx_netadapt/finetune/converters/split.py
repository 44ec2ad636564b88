"""Split-18 (``num_outputs``)."""

from __future__ import annotations

import math

import torch
from torch import nn

from onnx_netadapt.finetune.converters._common import (
    OnnxGraph,
    OnnxNode,
    OnnxToTorchModule,
    OperationConverterResult,
    _const_ints,
    _tensor_ints,
    static_or_runtime,
)
from onnx_netadapt.finetune.converters._registry import converts


class OnnxSplit18(nn.Module, OnnxToTorchModule):
    """Split-18: explicit sizes, or ``num_outputs`` chunks of ceil(len / n) (last smaller)."""

    def __init__(self, axis: int, num_outputs: int, split: list[int] | None) -> None:
        super().__init__()
        self.axis = axis
        self.num_outputs = num_outputs
        self.split = split

    def forward(self, x: torch.Tensor, split: torch.Tensor | None = None) -> tuple:
        sizes = self.split if split is None else _tensor_ints(split)
        if sizes is None:
            length = x.shape[self.axis]
            sizes = math.ceil(length / self.num_outputs)
        return tuple(torch.split(x, sizes, dim=self.axis))


@converts("Split", 18)
def _convert_split(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    axis = int(node.attributes.get("axis", 0))
    count = int(node.attributes.get("num_outputs", len(node.output_values)))
    return static_or_runtime(
        node,
        graph,
        [1],
        lambda static: OnnxSplit18(axis, count, _const_ints(node, graph, 1) if static else None),
    )
