"""The constant overhead predicted from the runtime's costs per node and per run (event_cost)."""

from __future__ import annotations

import onnx
import pytest
from models import CASES
from test_estimate_fidelity import OVERHEAD, FakeRunner, _calibrated, _prunings

from onnx_netadapt.measure.event_cost import (
    NodeCosts,
    event_chain_model,
    measure_node_costs,
    median_costs,
    model_overhead_ms,
)
from onnx_netadapt.measure.runner import NetworkProfile
from onnx_netadapt.measure.strategies import Entries, ProfileStrategy
from onnx_netadapt.measure.table import LatencyTable

PROFILER_MS = 0.002  # what the profiler adds to every node it times
DISPATCH_MS = 0.0005  # what a plain run spends on a node that does nothing


class ProfilerCostRunner(FakeRunner):
    """FakeRunner whose profile reports every node PROFILER_MS slower than a plain run spends
    on it (as ORT's does), that times its profiled sessions, and whose whole-network
    measurements take ``noise_ms`` more while it is set (a set of slower sessions)."""

    def __init__(self) -> None:
        super().__init__(event_ms=DISPATCH_MS)
        self.noise_ms = 0.0

    def _measure_impl(self, model: onnx.ModelProto) -> list[float]:
        return [super()._measure_impl(model)[0] + self.noise_ms]

    def profile_layers(self, model: onnx.ModelProto) -> dict[str, float]:
        return {name: ms + PROFILER_MS for name, ms in super().profile_layers(model).items()}

    def profile_network(self, model: onnx.ModelProto) -> NetworkProfile:
        run_ms = OVERHEAD + sum(self._node_ms(model).values())
        return NetworkProfile(self.profile_layers(model), run_ms)


def test_the_chains_give_the_runtimes_costs():
    with ProfilerCostRunner() as runner:
        costs = measure_node_costs(runner)
    assert costs.profiled_ms == pytest.approx(DISPATCH_MS + PROFILER_MS)
    assert costs.node_ms == pytest.approx(DISPATCH_MS)
    assert costs.call_ms == pytest.approx(OVERHEAD)


def test_without_run_times_there_is_no_model():
    with FakeRunner(event_ms=DISPATCH_MS) as runner:  # profile_network: no run time
        costs = measure_node_costs(runner)
        estimator = _calibrated(runner, CASES["residual_chain"].build())
    assert costs == NodeCosts(pytest.approx(DISPATCH_MS), None, None)
    assert model_overhead_ms(costs, 10) is None
    assert estimator.calibration.base.profile.model_overhead_ms is None
    assert median_costs([NodeCosts(1.0, 2.0, 3.0), NodeCosts(3.0, None, 1.0)]) == NodeCosts(
        2.0, None, 2.0
    )


def test_the_model_is_the_measured_overhead_and_takes_a_slow_measurement_proportionally():
    """Without noise the predicted overhead is the measured one (the run call less the
    profiler's cost of every profiled node). A calibration whose whole-network measurements
    ran 0.2 ms slow moves a small pruning's estimate by the full 0.2 ms with the measured
    overhead, and by the pruning's share of it with the predicted one."""
    model = CASES["residual_chain"].build()
    noise = 0.2
    with ProfilerCostRunner() as runner:
        quiet = _calibrated(runner, model)
        runner.noise_ms = noise
        noisy = _calibrated(runner, model)
        measured_original = runner.measure(model).median_ms
        runner.noise_ms = 0.0
        profile = quiet.calibration.base.profile
        nodes = len(profile.units) + profile.internal_events
        assert profile.model_overhead_ms == pytest.approx(OVERHEAD - nodes * PROFILER_MS)
        assert profile.overhead_ms == pytest.approx(profile.model_overhead_ms)
        assert noisy.estimate(model) == pytest.approx(measured_original)  # still exact on it
        smallest = _prunings(model)[-1]
        before = quiet.estimate(smallest)
        predicted = noisy.estimate(smallest) - before
        noisy.calibration.base.profile.model_overhead_ms = None
        measured = noisy.estimate(smallest) - before
    assert measured == pytest.approx(noise, rel=1e-3)
    model_ms = profile.model_overhead_ms
    share = (before - model_ms) / (measured_original - noise - model_ms)  # parts / profile
    assert 0 < predicted < 0.5 * noise
    assert predicted == pytest.approx(noise * share, rel=1e-3)


class RuntimeNamesRunner(FakeRunner):
    """Profiles under the runtime's own names (as TFLite and SNPE do), and fails if asked to
    profile the chains: nothing of such a profile is used, so nothing more is measured."""

    def profile_layers(self, model: onnx.ModelProto) -> dict[str, float]:
        if model.graph.name == event_chain_model().graph.name:
            raise AssertionError("the chains were profiled")
        return {f"op_{i}": ms for i, ms in enumerate(super().profile_layers(model).values())}


def test_a_profile_without_onnx_names_measures_no_costs():
    model = CASES["residual_chain"].build()
    with RuntimeNamesRunner() as runner:
        entries = Entries(runner, LatencyTable(runner.fingerprint()))
        profile = ProfileStrategy().profile(entries, model)
        assert profile.costs is None
        assert _calibrated(runner, model).calibration.mode == "split"  # auto falls back
