"""Static size metrics of a model: parameters and multiply-accumulates (no device, exact)."""

from __future__ import annotations

import onnx

from onnx_netadapt.graph.load import load_model
from onnx_netadapt.measure.signature import model_signatures


def parameter_count(model: onnx.ModelProto) -> int:
    """Number of elements in all initializers (a model's parameter count)."""
    total = 0
    for init in model.graph.initializer:
        n = 1
        for d in init.dims:
            n *= int(d)
        total += n
    return total


def model_macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates of every Conv/ConvTranspose/Gemm/MatMul-with-constant layer."""
    return sum(sig.macs() for sig in model_signatures(load_model(model, fold=False)).values())
