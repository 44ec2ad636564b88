"""Real torchvision classifiers, detectors (without NMS) and segmenters, exported by both torch
exporters: analysed, pruned, oracle-checked.

The model-zoo sweep over every torchvision and ~180 timm models is a benchmark
(benchmarks/prunability.py); these few run in the default suite, the broader list with -m slow.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import pytest

from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.graph.probe import random_inputs
from onnx_netadapt.verify import check_against_masked, run_model

torch = pytest.importorskip("torch")

FAST = [
    "resnet18",
    "mobilenet_v3_small",
    "shufflenet_v2_x0_5",
    "efficientnet_b0",
    "mnasnet0_5",
    "ssdlite320_mobilenet_v3_large",
    "lraspp_mobilenet_v3_large",
]
SLOW = [
    "regnet_x_400mf",
    "regnet_y_400mf",
    "resnext50_32x4d",
    "densenet121",
    "googlenet",
    "squeezenet1_1",
    "mobilenet_v2",
    "convnext_tiny",
    "inception_v3",
    "wide_resnet50_2",
    "retinanet_resnet50_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "deeplabv3_mobilenet_v3_large",
    "fcn_resnet50",
]
DETECTORS = (
    "ssdlite320_mobilenet_v3_large",
    "retinanet_resnet50_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn",
)
SEGMENTERS = ("lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large", "fcn_resnet50")
INPUT_SIZE = {
    "inception_v3": 96,
    "ssdlite320_mobilenet_v3_large": 160,
    "retinanet_resnet50_fpn": 128,
    "fasterrcnn_mobilenet_v3_large_320_fpn": 128,
}


class DetectorHeads(torch.nn.Module):
    """A torchvision detector without its post-processing (NMS runs outside the network)."""

    def __init__(self, detector: torch.nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = list(self.detector.backbone(x).values())
        if hasattr(self.detector, "rpn"):
            objectness, deltas = self.detector.rpn.head(features)
            return (*objectness, *deltas)
        out = self.detector.head(features)
        return out["bbox_regression"], out["cls_logits"]


def build(name: str) -> torch.nn.Module:
    """A torchvision network with random weights."""
    from benchmarks.zoo import import_torchvision

    tv = import_torchvision()
    no_weights = {"weights": None, "weights_backbone": None}
    if name in DETECTORS:
        return DetectorHeads(getattr(tv.models.detection, name)(**no_weights))
    if name in SEGMENTERS:
        return getattr(tv.models.segmentation, name)(**no_weights)
    if name in ("googlenet", "inception_v3"):
        return getattr(tv.models, name)(aux_logits=False, init_weights=True)
    return getattr(tv.models, name)()


def export(name: str, exporter: str) -> onnx.ModelProto:
    torch.manual_seed(0)
    model = build(name).eval()
    size = INPUT_SIZE.get(name, 64)
    x = torch.randn(1, 3, size, size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            program = torch.onnx.export(model, (x,), dynamo=True, verbose=False)
            return program.model_proto
        buffer = io.BytesIO()
        torch.onnx.export(model, x, buffer, dynamo=False, opset_version=13)
        return onnx.load_from_string(buffer.getvalue())


def check_network(name: str, exporter: str) -> None:
    original = export(name, exporter)
    analysis = analyse(load_model(original))
    summary = analysis.summary()
    share = max(summary["prunable_share"], summary["prunable_share_with_approximate"])
    assert share >= 0.9, [g.to_dict() for g in analysis.groups if g.status != "prunable"]
    result = prune(analysis, ratio=0.7)
    assert any(g["channels_after"] < g["channels_before"] for g in result.report["groups"])
    outcome = check_against_masked(analysis, result)
    assert outcome.ok, outcome
    keep_all = prune(analysis, {g.id: np.arange(g.units) for g in analysis.groups if g.prunable})
    feeds = random_inputs(original)
    for a, b in zip(run_model(original, feeds), run_model(keep_all.model, feeds), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(a).max())))


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
@pytest.mark.parametrize("name", FAST)
def test_torchvision_network(name, exporter):
    check_network(name, exporter)


@pytest.mark.slow
@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
@pytest.mark.parametrize("name", SLOW)
def test_torchvision_network_slow(name, exporter):
    check_network(name, exporter)
