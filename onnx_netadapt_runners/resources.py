"""Resources that need no device: MACs, parameters and peak activation memory.

They follow the runner protocol so that budgets on them work like latency budgets (and the
paper's MAC-guided ablation can be run). Their "statistics" are exact: one sample each.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx

from onnx_netadapt.graph.load import load_model
from onnx_netadapt.graph.ops import numpy_dtype
from onnx_netadapt.measure.metrics import model_macs, parameter_count
from onnx_netadapt.measure.runner import Runner
from onnx_netadapt.measure.signature import LayerSignature

logger = logging.getLogger(__name__)


class _DeviceFree(Runner):
    """Shared plumbing: nothing to acquire; the fingerprint is the resource itself."""

    def _fingerprint_impl(self) -> dict[str, object]:
        return {"device": "none", "resource": self.name, "unit": self.unit}


class MacsRunner(_DeviceFree):
    """Multiply-accumulates (millions) of the filter layers."""

    name = "macs"
    summary = "multiply-accumulates of Conv/Gemm/MatMul layers (no device)"
    unit = "MMAC"

    def _measure_impl(self, model: onnx.ModelProto) -> list[float]:
        return [model_macs(model) / 1e6]

    def _measure_layer_impl(self, signature: LayerSignature) -> list[float]:
        return [signature.macs() / 1e6]


class ParamsRunner(_DeviceFree):
    """Parameters (millions): elements of all initializers."""

    name = "params"
    summary = "parameter count (no device)"
    unit = "Mparam"

    def _measure_impl(self, model: onnx.ModelProto) -> list[float]:
        return [parameter_count(model) / 1e6]

    def _measure_layer_impl(self, signature: LayerSignature) -> list[float]:
        s = signature
        if s.op == "Gemm":
            weights = s.in_channels * s.out_channels
        else:
            weights = s.in_channels * s.out_channels // s.groups * int(np.prod(s.kernel))
        return [(weights + (s.out_channels if s.bias else 0)) / 1e6]


def peak_activation_bytes(model: onnx.ModelProto) -> int:
    """Peak bytes of live activations when running nodes in graph order (inputs included).

    A tensor is live from the node that produces it to its last consumer; weights are not
    counted (see ``params``).
    """
    loaded = load_model(model, fold=False)
    graph = loaded.model.graph
    constants = {i.name for i in graph.initializer}
    types = {
        vi.name: vi.type.tensor_type.elem_type
        for vi in [*graph.input, *graph.value_info, *graph.output]
    }
    last_use: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for name in node.input:
            last_use[name] = index
    outputs = {o.name for o in graph.output}

    def size(name: str) -> int:
        shape = loaded.shapes.get(name)
        if shape is None:
            return 0
        return int(np.prod(shape)) * numpy_dtype(types.get(name, onnx.TensorProto.FLOAT)).itemsize

    live = {i.name: size(i.name) for i in graph.input if i.name not in constants}
    peak = sum(live.values())
    for index, node in enumerate(graph.node):
        for name in node.output:
            if name:
                live[name] = size(name)
        peak = max(peak, sum(live.values()))
        for name in list(live):
            if name not in outputs and last_use.get(name, -1) <= index:
                del live[name]
    return peak


class MemoryRunner(_DeviceFree):
    """Peak activation memory (MB) in graph order: not a sum over layers."""

    name = "memory"
    summary = "peak activation memory in graph order (no device)"
    unit = "MB"
    additive = False

    def _measure_impl(self, model: onnx.ModelProto) -> list[float]:
        return [peak_activation_bytes(model) / 1e6]

    def _measure_layer_impl(self, signature: LayerSignature) -> list[float]:
        from onnx_netadapt.measure.micromodel import onnx_layer_model

        return self._measure_impl(onnx_layer_model(signature))
