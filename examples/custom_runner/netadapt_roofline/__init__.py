"""Roofline runner: latency of a hypothetical accelerator from MACs and bytes moved."""

from __future__ import annotations

import onnx

from onnx_netadapt.measure.runner import Runner
from onnx_netadapt.measure.signature import LayerSignature


class RooflineRunner(Runner):
    """Each layer takes max(MACs / peak rate, bytes / bandwidth) milliseconds."""

    name = "roofline"
    summary = "roofline model of an accelerator (example plugin)"

    def __init__(self, peak_gmacs: float = 500.0, bandwidth_gbs: float = 25.0) -> None:
        super().__init__()
        self.peak_gmacs = peak_gmacs
        self.bandwidth_gbs = bandwidth_gbs

    def _fingerprint_impl(self) -> dict[str, object]:
        return {
            "device": "roofline",
            "peak_gmacs": self.peak_gmacs,
            "bandwidth_gbs": self.bandwidth_gbs,
        }

    def _layer_ms(self, sig: LayerSignature) -> float:
        out_hw = sig.output_hw()
        activations = sig.in_channels * _prod(sig.input_hw) + sig.out_channels * _prod(out_hw)
        weights = sig.in_channels * sig.out_channels // sig.groups * _prod(sig.kernel)
        compute_ms = sig.macs() / (self.peak_gmacs * 1e6)
        memory_ms = 4 * (activations + weights) / (self.bandwidth_gbs * 1e6)
        return max(compute_ms, memory_ms)

    def _measure_layer_impl(self, signature: LayerSignature) -> list[float]:
        return [self._layer_ms(signature)]

    def _measure_impl(self, model: onnx.ModelProto) -> list[float]:
        from onnx_netadapt.graph.load import load_model
        from onnx_netadapt.measure.signature import model_signatures

        layers = model_signatures(load_model(model, fold=False))
        return [sum(self._layer_ms(sig) for sig in layers.values())]


def _prod(values: tuple[int, ...]) -> int:
    n = 1
    for v in values:
        n *= int(v)
    return n
