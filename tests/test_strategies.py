"""Estimator strategies: one interface, the fallback of ``auto``, what an estimate needs."""

from __future__ import annotations

import onnx
import pytest
from models import CASES
from test_estimate_fidelity import FakeRunner, _prunings

from onnx_netadapt.adapt.resources import Tracked
from onnx_netadapt.graph.load import LoadedModel, load_model
from onnx_netadapt.measure.estimate import Estimator
from onnx_netadapt.measure.event_cost import event_chain_model
from onnx_netadapt.measure.runner import NetworkProfile
from onnx_netadapt.measure.signature import model_signatures
from onnx_netadapt.measure.strategies import (
    MODES,
    Calibration,
    ConstantCalibration,
    Entries,
    ProfileStrategy,
    Pruning,
    Strategy,
    make_strategy,
)
from onnx_netadapt.measure.table import LatencyTable


class CountingRunner(FakeRunner):
    """A runner without an in-network profile that counts how often it is asked for one."""

    def __init__(self) -> None:
        super().__init__(profiles=False)
        self.asked = 0

    def profile_layers(self, model: onnx.ModelProto) -> dict[str, float]:
        self.asked += 1
        return super().profile_layers(model)


def test_auto_asks_a_runner_that_cannot_profile_only_once():
    model = load_model(CASES["residual_chain"].build())
    with CountingRunner() as runner:
        estimator = Estimator(runner, LatencyTable(runner.fingerprint()))
        assert estimator.calibrate(model).mode == "split"
        assert estimator.calibrate(model).mode == "split"
        assert runner.asked == 1
        assert not estimator.needs_shapes


def test_every_mode_makes_its_strategy():
    assert [make_strategy(mode).mode for mode in MODES] == list(MODES)


@pytest.mark.parametrize(("mode", "needs"), [("profile", True), ("split", False)])
def test_needs_shapes_follows_the_calibration(mode: str, needs: bool):
    with FakeRunner() as runner:
        estimator = Estimator(runner, LatencyTable(runner.fingerprint()), mode=mode)
        assert not estimator.needs_shapes  # uncalibrated: the layers alone
        estimator.calibrate(load_model(CASES["residual_chain"].build()))
        assert estimator.needs_shapes is needs


class ShapeCalibration(Calibration):
    """Entries plus one hundredth of a millisecond per activation element (needs shapes)."""

    mode = "shape-test"
    needs_shapes = True

    def estimate(self, pruning: Pruning) -> float:
        assert pruning.model is not None and pruning.shapes, "the strategy said it needs shapes"
        return pruning.layers_ms() + 0.01 * len(pruning.shapes)


class ShapeStrategy(Strategy):
    mode = "shape-test"

    def calibrate(
        self, entries: Entries, loaded: LoadedModel, measured_ms: float | None = None
    ) -> Calibration:
        layer_ms = entries.table_ms(model_signatures(loaded))
        return ShapeCalibration(entries.measured(loaded.model, measured_ms), sum(layer_ms.values()))


def test_a_strategy_plugs_in_and_resources_give_it_the_shapes_it_needs():
    """The resource set asks the estimator what it needs, not which mode it runs."""
    model = CASES["residual_chain"].build()
    pruned = _prunings(model)[1]
    with FakeRunner() as runner:
        table = LatencyTable(runner.fingerprint())
        estimator = Estimator(runner, table, mode=ShapeStrategy())
        item = Tracked("latency", runner, table, estimator=estimator)
        item.calibrate(load_model(model), measured=1.0)
        signatures = model_signatures(load_model(pruned, fold=False))
        elements = item.estimate(pruned, signatures) - estimator.layers_ms(signatures)
        tensors = len(load_model(pruned, fold=False).shapes)
        assert 0.5 * tensors <= elements / 0.01 <= 2 * tensors


class RunTimedRunner(FakeRunner):
    """Reports its profiled runs' own time: the nodes' times plus ``extra`` ms no node covers."""

    def __init__(self, extra: float) -> None:
        super().__init__()
        self.extra = extra

    def profile_network(self, model: onnx.ModelProto) -> NetworkProfile:
        layers = self.profile_layers(model)
        return NetworkProfile(layers, sum(layers.values()) + self.extra)


def test_the_run_share_reads_the_overhead_off_the_profiled_runs():
    model = load_model(CASES["residual_chain"].build())
    measured = 2.0
    with RunTimedRunner(extra=0.05) as runner:
        entries = Entries(runner, LatencyTable(runner.fingerprint()))
        profile = ProfileStrategy(run_share=True).profile(entries, model.model)
        nodes = sum(profile.times.values())
        assert profile.run_ms == pytest.approx(nodes + 0.05)
        shared = ProfileStrategy(run_share=True).fit(entries, model, profile, measured)
        plain = ProfileStrategy().fit(entries, model, profile, measured)
    # the uncovered share of the profiled runs, of the measured latency
    assert shared.profile.overhead_ms == pytest.approx(measured * 0.05 / (nodes + 0.05))
    # plain: measured minus the nodes scaled through a whole-network measurement
    assert plain.profile.overhead_ms == pytest.approx(measured * (1 - nodes / profile.measured_ms))


def test_without_a_run_time_the_run_share_falls_back_to_the_measurement():
    model = load_model(CASES["residual_chain"].build())
    with FakeRunner() as runner:  # profile_network's default: no run time
        entries = Entries(runner, LatencyTable(runner.fingerprint()))
        profile = ProfileStrategy(run_share=True).profile(entries, model.model)
        assert profile.run_ms is None
        shared = ProfileStrategy(run_share=True).fit(entries, model, profile, 2.0)
        plain = ProfileStrategy().fit(entries, model, profile, 2.0)
    assert shared.profile.overhead_ms == pytest.approx(plain.profile.overhead_ms)


class NoRunTimeRunner(FakeRunner):
    """Fails if asked for a network's run time: the default calibration must not pay for it
    (it times only the tiny chains of ``event_cost``)."""

    def profile_network(self, model: onnx.ModelProto) -> NetworkProfile:
        if model.graph.name != event_chain_model().graph.name:
            raise AssertionError("the run time was asked for")
        return super().profile_network(model)


def test_the_default_profile_does_not_time_the_run():
    model = load_model(CASES["residual_chain"].build())
    with NoRunTimeRunner() as runner:
        entries = Entries(runner, LatencyTable(runner.fingerprint()))
        assert ProfileStrategy().profile(entries, model.model).run_ms is None


@pytest.mark.parametrize(("measured", "entries", "expected"), [(10.0, 6.0, 7.0), (6.0, 10.0, 1.8)])
def test_constant_keeps_a_positive_residual_and_shrinks_a_negative_one(
    measured: float, entries: float, expected: float
):
    """A negative residual (entries carrying their micro-models' overhead) kept constant would
    take a small pruning below zero: it scales with the entries instead."""
    calibration = ConstantCalibration(measured_ms=measured, layers_ms=entries)
    signatures = {name: None for name in ("a", "b")}
    pruned = Pruning(signatures=signatures, layer_ms={"a": 2.0, "b": 1.0})  # type: ignore[arg-type]
    assert calibration.estimate(pruned) == pytest.approx(expected)
    assert calibration.estimate(Pruning(signatures, {"a": 0.1, "b": 0.1})) > 0  # type: ignore[arg-type]
