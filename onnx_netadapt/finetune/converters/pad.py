"""Pad-18/19/21 (``axes`` input, ``wrap`` mode)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from onnx_netadapt.finetune.converters._common import (
    OnnxGraph,
    OnnxNode,
    OnnxToTorchModule,
    OperationConverterResult,
    _const_floats,
    _const_ints,
    _tensor_ints,
    static_or_runtime,
)
from onnx_netadapt.finetune.converters._registry import converts

_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def _torch_pads(pads: list[int], axes: list[int] | None, rank: int) -> list[int]:
    """ONNX pads (all begins, then all ends, over ``axes``) -> F.pad order (last axis first)."""
    axes = list(range(rank)) if axes is None else [a + rank if a < 0 else a for a in axes]
    if len(pads) != 2 * len(axes):
        raise ValueError(f"Pad has {len(pads)} pads for {len(axes)} axes")
    begin, end = [0] * rank, [0] * rank
    for i, axis in enumerate(axes):
        begin[axis], end[axis] = pads[i], pads[i + len(axes)]
    out: list[int] = []
    for axis in reversed(range(rank)):
        out += [begin[axis], end[axis]]
    while len(out) > 2 and out[-2:] == [0, 0]:  # leading (batch, channel) axes without padding
        out = out[:-2]
    return out


class OnnxPad18(nn.Module, OnnxToTorchModule):
    """Pad-18+: pads, constant value and axes static (initializers) or given at run time."""

    def __init__(
        self, mode: str, pads: list[int] | None, value: float, axes: list[int] | None
    ) -> None:
        super().__init__()
        self.mode = mode
        self.pads = pads
        self.value = value
        self.axes = axes

    def forward(
        self,
        x: torch.Tensor,
        pads: torch.Tensor | None = None,
        constant_value: torch.Tensor | None = None,
        axes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        onnx_pads = self.pads if pads is None else _tensor_ints(pads) or []
        onnx_axes = self.axes if axes is None else _tensor_ints(axes)
        value = self.value if constant_value is None else float(constant_value.reshape(-1)[0])
        torch_pads = _torch_pads(onnx_pads or [], onnx_axes, x.dim())
        if self.mode == "constant":
            return F.pad(x, torch_pads, mode="constant", value=value)
        if len(torch_pads) // 2 > max(1, x.dim() - 2):
            raise NotImplementedError(
                f"Pad mode {self.mode!r} on the batch or channel axis is not supported by torch"
            )
        return F.pad(x, torch_pads, mode=self.mode)


@converts("Pad", 18, 19, 21)
def _convert_pad(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    onnx_mode = node.attributes.get("mode", "constant")
    if onnx_mode not in _PAD_MODES:
        raise NotImplementedError(f"Pad mode {onnx_mode!r} is not implemented")
    mode = _PAD_MODES[onnx_mode]

    def module(static: bool) -> OnnxPad18:
        if not static:
            return OnnxPad18(mode, None, 0.0, None)
        value = _const_floats(node, graph, 2)
        pads, axes = _const_ints(node, graph, 1), _const_ints(node, graph, 3)
        return OnnxPad18(mode, pads, value[0] if value else 0.0, axes)

    return static_or_runtime(node, graph, [1, 2, 3], module)
