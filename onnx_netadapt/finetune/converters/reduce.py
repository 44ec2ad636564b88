"""Reduce*-18 (axes as an input) and ReduceMax/ReduceMin-20."""

from __future__ import annotations

import torch
from torch import nn

from onnx_netadapt.finetune.converters._common import (
    OnnxGraph,
    OnnxNode,
    OnnxToTorchModule,
    OperationConverterResult,
    _const_ints,
    _positive,
    _tensor_ints,
    static_or_runtime,
)
from onnx_netadapt.finetune.converters._registry import converts


def _reduce(op: str, x: torch.Tensor, dims: list[int], keepdim: bool) -> torch.Tensor:
    """ONNX reduction ``op`` over ``dims``; no dims reduces nothing (elementwise part only)."""
    if op in ("ReduceL1", "ReduceL2", "ReduceSumSquare"):
        x = torch.abs(x) if op == "ReduceL1" else x * x
        out = torch.sum(x, dim=dims, keepdim=keepdim) if dims else x
        return torch.sqrt(out) if op == "ReduceL2" else out
    if op == "ReduceLogSum":
        return torch.log(torch.sum(x, dim=dims, keepdim=keepdim) if dims else x)
    if not dims:
        return x
    if op == "ReduceMean":
        return torch.mean(x, dim=dims, keepdim=keepdim)
    if op == "ReduceMax":
        return torch.amax(x, dim=dims, keepdim=keepdim)
    if op == "ReduceMin":
        return torch.amin(x, dim=dims, keepdim=keepdim)
    if op == "ReduceLogSumExp":
        return torch.logsumexp(x, dim=dims, keepdim=keepdim)
    if op == "ReduceProd":
        for d in sorted(dims, reverse=True):  # from the last axis, so indices stay valid
            x = torch.prod(x, dim=d, keepdim=keepdim)
        return x
    raise NotImplementedError(f"{op} is not implemented")


class OnnxReduce18(nn.Module, OnnxToTorchModule):
    """Reduce*-18: axes from the ``axes`` input (static when it was an initializer)."""

    def __init__(
        self, op: str, axes: list[int] | None, keepdims: bool, noop_with_empty_axes: bool
    ) -> None:
        super().__init__()
        self.op = op
        self.axes = axes
        self.keepdims = keepdims
        self.noop_with_empty_axes = noop_with_empty_axes

    def forward(self, x: torch.Tensor, axes: torch.Tensor | None = None) -> torch.Tensor:
        chosen = self.axes if axes is None else _tensor_ints(axes)
        if not chosen:  # no axes: all of them, or none with noop_with_empty_axes
            chosen = [] if self.noop_with_empty_axes else list(range(x.dim()))
        return _reduce(self.op, x, _positive(chosen, x.dim()), self.keepdims)


@converts("ReduceMax", 18, 20)
@converts("ReduceMin", 18, 20)
@converts("ReduceL1", 18)
@converts("ReduceL2", 18)
@converts("ReduceLogSum", 18)
@converts("ReduceLogSumExp", 18)
@converts("ReduceMean", 18)
@converts("ReduceProd", 18)
@converts("ReduceSumSquare", 18)
def _convert_reduce(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    keepdims = bool(node.attributes.get("keepdims", 1))
    noop = bool(node.attributes.get("noop_with_empty_axes", 0))
    op = node.operation_type
    return static_or_runtime(
        node,
        graph,
        [1],
        lambda static: OnnxReduce18(
            op, _const_ints(node, graph, 1) if static else None, keepdims, noop
        ),
    )
