"""CastLike."""

from __future__ import annotations

import torch
from torch import nn

from onnx_netadapt.finetune.converters._common import (
    OnnxGraph,
    OnnxNode,
    OnnxToTorchModule,
    OperationConverterResult,
    onnx_mapping_from_node,
)
from onnx_netadapt.finetune.converters._registry import converts


class OnnxCastLike(nn.Module, OnnxToTorchModule):
    """CastLike: ``x`` in the dtype of ``like``."""

    def forward(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return x.to(like.dtype)


@converts("CastLike", 15, 19, 21)
def _convert_cast_like(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    return OperationConverterResult(OnnxCastLike(), onnx_mapping_from_node(node))
