"""Estimate a network's latency from its layers' table entries plus a measured residual.

estimate(model) = sum of the table entries of its filter layers + residual, where the residual
(the cost of everything pruning cannot change, and the difference between a layer alone and in
the network) is calibrated by measuring a whole network on the runner. Each real measurement
recalibrates it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

import onnx

from onnx_netadapt.graph.load import LoadedModel, load_model
from onnx_netadapt.measure.runner import Runner
from onnx_netadapt.measure.signature import LayerSignature, layer_signature
from onnx_netadapt.measure.table import LatencyTable

logger = logging.getLogger(__name__)


def model_signatures(loaded: LoadedModel) -> dict[str, LayerSignature]:
    """Signature of every filter layer of ``loaded``, by node name."""
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in loaded.model.graph.node:
        for name in node.input:
            consumers[name].append(node)
    constants = loaded.initializers
    out = {}
    for node in loaded.model.graph.node:
        sig = layer_signature(node, loaded.shapes, consumers, constants)
        if sig is not None:
            out[node.name] = sig
    return out


@dataclass
class Calibration:
    """The measured whole-network latency and the residual it implies."""

    measured_ms: float
    layers_ms: float

    @property
    def residual_ms(self) -> float:
        """Measured minus the sum of the layers' table entries."""
        return self.measured_ms - self.layers_ms


class Estimator:
    """Table-based estimates for one runner setup."""

    def __init__(self, runner: Runner, table: LatencyTable) -> None:
        self.runner = runner
        self.table = table
        self.calibration: Calibration | None = None

    def layers_ms(self, signatures: dict[str, LayerSignature]) -> float:
        """Sum of the table entries (medians) of ``signatures`` (measuring missing ones)."""
        entries = self.table.lookup(list(signatures.values()), self.runner)
        return sum(entries[s].median_ms for s in signatures.values())

    def calibrate(self, model: onnx.ModelProto | LoadedModel) -> Calibration:
        """Measure ``model`` on the runner and set the residual from it."""
        loaded = model if isinstance(model, LoadedModel) else load_model(model)
        measured = self.runner.measure(loaded.model).median_ms
        self.calibration = Calibration(measured, self.layers_ms(model_signatures(loaded)))
        return self.calibration

    def estimate(self, model: onnx.ModelProto | LoadedModel) -> float:
        """Estimated latency (ms) of ``model``: table entries + calibrated residual."""
        loaded = model if isinstance(model, LoadedModel) else load_model(model)
        if not self.runner.additive:
            return self.runner.measure(loaded.model).median_ms
        residual = self.calibration.residual_ms if self.calibration else 0.0
        return self.layers_ms(model_signatures(loaded)) + residual
