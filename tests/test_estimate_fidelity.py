"""Latency estimates of pruned networks: exact on a fake runner, consistent on ORT."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from models import CASES, GraphBuilder

from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.errors import NetAdaptError
from onnx_netadapt.measure.calibration import node_elements
from onnx_netadapt.measure.estimate import Estimator, estimate_from
from onnx_netadapt.measure.event_cost import event_chain_model
from onnx_netadapt.measure.kernels import LAYER_NODES
from onnx_netadapt.measure.registry import get_runner
from onnx_netadapt.measure.runner import ProfileUnsupported, Runner, RunnerError
from onnx_netadapt.measure.signature import LayerSignature, model_signatures
from onnx_netadapt.measure.stats import MeasureSettings
from onnx_netadapt.measure.table import LatencyTable

SESSION = 0.001  # ms a micro-model costs beyond its layer
MS_PER_MAC = 1e-4  # a layer alone
IN_NETWORK = 0.7  # a layer inside the network runs at this share of its time alone
MS_PER_ELEMENT = 2e-5  # other nodes, per activation element read and written
INTERNAL_PER_ELEMENT = 1e-6  # runtime-internal nodes, per activation element of the network
EVENT_MS = 0.003  # with FakeRunner(event_ms=...): fixed cost of a node other than a filter layer
OVERHEAD = 0.3  # per network run


class FakeRunner(Runner):
    """Network time is a known function of node shapes; profiles like ORT (BN fused in conv)."""

    name = "fake"

    def __init__(self, profiles: bool = True, event_ms: float = 0.0) -> None:
        super().__init__()
        self.profiles = profiles
        self.event_ms = event_ms
        self.device_lost = False

    def _fingerprint_impl(self) -> dict[str, object]:
        return {"fake": 1}

    def _measure_layer_impl(self, signature: LayerSignature) -> list[float]:
        return [SESSION + MS_PER_MAC * signature.macs()]

    def _measure_impl(self, model: onnx.ModelProto) -> list[float]:
        return [OVERHEAD + sum(self._node_ms(model).values())]

    def profile_layers(self, model: onnx.ModelProto) -> dict[str, float]:
        if self.device_lost:
            raise RunnerError("device disconnected")
        if not self.profiles:
            raise ProfileUnsupported("no profile")
        return self._node_ms(model)

    def _node_ms(self, model: onnx.ModelProto) -> dict[str, float]:
        """Filter layers: IN_NETWORK * their time alone (under the name of a BatchNormalization
        fused after them); a Relu right after a filter layer or its batch norm is fused into it
        (as ORT fuses Conv+BatchNormalization+Relu); other nodes and runtime-internal ones: per
        activation element, plus ``event_ms`` each (the nodes of ``event_chain_model``:
        ``event_ms`` alone, their work is too small to count)."""
        loaded = load_model(model, fold=False)
        signatures = model_signatures(loaded)
        elements = node_elements(loaded.model, loaded.shapes)
        nodes = loaded.model.graph.node
        if model.graph.name == event_chain_model().graph.name:
            return {node.name: self.event_ms for node in nodes}
        after = {n.input[0]: n.name for n in nodes}
        producer = {n.output[0]: n.name for n in nodes}
        out = {"ReorderInternal": self.event_ms + INTERNAL_PER_ELEMENT * sum(elements.values())}
        for node in nodes:
            if node.name in signatures:
                next_name = after.get(node.output[0], node.name)
                name = next_name if next_name.startswith("batchnorm") else node.name
                out[name] = IN_NETWORK * MS_PER_MAC * signatures[node.name].macs()
        for node in nodes:
            if node.name in signatures or node.op_type == "BatchNormalization":
                continue
            ms = MS_PER_ELEMENT * elements[node.name]
            source = producer.get(node.input[0])
            fused_bn = source in out and source.startswith("batchnorm")  # BN after a layer
            if node.op_type == "Relu" and (source in signatures or fused_bn):
                out[source] += ms  # fused into the filter layer (and batch norm) before it
            else:  # a micro-model's activation ("act") is part of its layer's kernel: no event
                out[node.name] = ms + (0.0 if node.name in LAYER_NODES else self.event_ms)
        return out


def _prunings(model: onnx.ModelProto, round_to: int = 1) -> list[onnx.ModelProto]:
    analysis = analyse(load_model(model))
    return [prune(analysis, ratio=r, round_to=round_to).model for r in (0.7, 0.5, 0.3)]


def _calibrated(runner: Runner, model: onnx.ModelProto, mode: str = "auto") -> Estimator:
    estimator = Estimator(runner, LatencyTable(runner.fingerprint()), mode=mode)
    estimator.calibrate(load_model(model))
    return estimator


@pytest.mark.parametrize("case", ["residual_chain", "squeeze_excite", "conv_bn_relu_chain"])
def test_profile_estimate_is_exact_on_a_fake_runner(case):
    model = CASES[case].build()
    with FakeRunner() as runner:
        estimator = _calibrated(runner, model)
        assert estimator.calibration.mode == "profile"
        assert estimator.estimate(model) == pytest.approx(runner.measure(model).median_ms)
        constant = _calibrated(runner, model, mode="constant")
        for pruned in _prunings(model):
            measured = runner.measure(pruned).median_ms
            # exact up to the one MAC of the layer that measures the micro-model overhead
            assert estimator.estimate(pruned) == pytest.approx(measured, rel=1e-4)
            # the fake tells the estimators apart: 'constant' (its residual is negative here, so
            # it shrinks with the entries) is off by 0.85-7.8 %, 'profile' by under 1e-4
            assert abs(constant.estimate(pruned) - measured) > 0.005 * measured  # not exact


@pytest.mark.parametrize("case", ["residual_chain", "squeeze_excite"])
def test_profile_estimate_keeps_each_nodes_fixed_cost(case):
    """The fixed cost of a profiled node is measured (EVENT_MS); where nodes have one, keeping
    it (``event_cost``) estimates prunings exactly, and scaling every node's whole time with
    its elements (``event_cost`` off) takes it off them and estimates them too fast."""
    model = CASES[case].build()
    with FakeRunner(event_ms=EVENT_MS) as runner:
        estimator = _calibrated(runner, model)
        profile = estimator.calibration.base.profile
        assert profile.event_ms == pytest.approx(EVENT_MS)
        assert profile.internal_events == 1
        for pruned in _prunings(model):
            measured = runner.measure(pruned).median_ms
            profile.event_cost = True
            error = estimator.estimate(pruned) - measured
            assert abs(error) < 1e-4 * measured
            profile.event_cost = False
            assert measured - estimator.estimate(pruned) > max(EVENT_MS, 10 * abs(error))


def test_cheap_path_matches_estimate():
    model = CASES["residual_chain"].build()
    with FakeRunner() as runner:
        estimator = _calibrated(runner, model)
        pruned = _prunings(model)[1]
        loaded = load_model(pruned, fold=False)
        signatures = model_signatures(loaded)
        cheap = estimator.estimate_pruned(pruned, loaded.shapes, signatures)
        assert cheap == pytest.approx(estimator.estimate(pruned))
        layer_ms = estimator.kernel_entries(signatures)  # what a 'profile' calibration uses
        direct = estimate_from(estimator.calibration, signatures, layer_ms, pruned, loaded.shapes)
        assert direct == pytest.approx(cheap)


def test_without_profile_auto_splits_the_residual():
    model = CASES["residual_chain"].build()
    with FakeRunner(profiles=False) as runner:
        estimator = _calibrated(runner, model)
        assert estimator.calibration.mode == "split"
        assert estimator.calibration.base.session_ms == pytest.approx(SESSION + MS_PER_MAC)
        assert estimator.estimate(model) == pytest.approx(runner.measure(model).median_ms)
        estimates = [estimator.estimate(p) for p in _prunings(model)]
        assert estimates[0] > estimates[1] > estimates[2] > 0
        with pytest.raises(NetAdaptError, match="no in-network profile"):
            _calibrated(runner, model, mode="profile")


def test_a_failure_while_profiling_stops_the_calibration():
    """Only 'cannot profile' falls back to the split estimate; a device lost while profiling
    is a measurement error like any other, and the next calibration profiles again."""
    model = CASES["residual_chain"].build()
    with FakeRunner() as runner:
        estimator = Estimator(runner, LatencyTable(runner.fingerprint()))
        runner.device_lost = True
        with pytest.raises(RunnerError, match="disconnected"):
            estimator.calibrate(load_model(model))
        runner.device_lost = False
        estimator.calibrate(load_model(model))
        assert estimator.calibration.mode == "profile"


def test_refine_fits_a_second_network():
    model = CASES["residual_chain"].build()
    with FakeRunner(profiles=False) as runner:
        estimator = _calibrated(runner, model, mode="constant")
        half, quarter = _prunings(model)[1:]
        slope = estimator.refine(load_model(half))
        assert slope != pytest.approx(1.0)
        assert estimator.estimate(half) == pytest.approx(runner.measure(half).median_ms)
        assert estimator.estimate(model) == pytest.approx(runner.measure(model).median_ms)
        assert 0 < estimator.estimate(quarter) < estimator.estimate(half)
        estimator.refine(load_model(quarter))  # a second anchor: the curve goes through both
        for network in (model, half, quarter):
            measured = runner.measure(network).median_ms
            assert estimator.estimate(network) == pytest.approx(measured)
        assert estimator.refine(load_model(quarter)) == estimator.calibration.slope  # not twice
        assert len(estimator.calibration.anchors) == 2
        with pytest.raises(NetAdaptError, match="calibrate"):
            Estimator(runner, LatencyTable(runner.fingerprint())).refine(model)


def _ort_model() -> onnx.ModelProto:
    """Two residual blocks at 32x32 with 64 channels: big enough to time reliably."""
    b = GraphBuilder("ort_estimate", seed=1)
    c = 64
    x = b.conv_bn_relu(b.input("input", [1, 3, 32, 32]), 3, c)
    for _ in range(2):
        y = b.conv_bn_relu(x, c, c)
        x = b.relu(b.op("Add", [b.bn(b.conv(y, c, c, bias=False), c), x]))
    b.output(b.head(x, c), [1, 10])
    return b.build()


def test_ort_profile_estimate_is_consistent():
    settings = MeasureSettings(warmup=2, min_runs=5, max_runs=30, max_seconds=0.3)
    model = _ort_model()
    with get_runner("ort")(threads=1, settings=settings) as runner:
        estimator = _calibrated(runner, model)
        assert estimator.calibration.mode == "profile"
        measured = estimator.calibration.measured_ms
        assert estimator.estimate(model) == pytest.approx(measured)
        estimates = [estimator.estimate(p) for p in _prunings(model, 8)]
    assert all(np.isfinite(estimates)) and min(estimates) > 0
    assert measured > estimates[0] > estimates[1] > estimates[2]
