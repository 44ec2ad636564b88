"""A filter unit's excess (its in-network time over its in-context kernel time) read off kernel
times profiled in the same rounds as the network: entries the table took at another moment,
on a host whose speed moved since, leave the estimate alone."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from models import CASES
from test_kernels_by_turns import weight_elements

from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.measure.calibration import Unit, pair_kernel_times
from onnx_netadapt.measure.estimate import Estimator
from onnx_netadapt.measure.runner import Runner
from onnx_netadapt.measure.signature import model_signatures
from onnx_netadapt.measure.strategies import ProfileStrategy
from onnx_netadapt.measure.table import LatencyTable

# Inside the network a conv takes this many times its in-context kernel time.
EXCESS = 1.25
MS_PER_WEIGHT = 1e-4


class SlowingRunner(Runner):
    """A conv takes time in proportion to its weights, times the host's ``slowness`` at that
    moment, and ``EXCESS`` times that inside a network (a context model's layer is "layer")."""

    name = "slowing"

    def __init__(self) -> None:
        super().__init__()
        self.slowness = 1.0

    def _fingerprint_impl(self) -> dict[str, object]:
        return {"fake": 1}

    def profile_layers(self, model: onnx.ModelProto) -> dict[str, float]:
        context = any(n.name == "layer" for n in model.graph.node)
        out = {}
        for node in model.graph.node:
            if node.op_type == "Conv" and (not context or node.name == "layer"):
                ms = MS_PER_WEIGHT * weight_elements(model, node) * self.slowness
                out[node.name] = ms if context else ms * EXCESS
        return out

    def _measure_impl(self, model: onnx.ModelProto) -> list[float]:
        return [sum(self.profile_layers(model).values())]


def _estimate(tmp_path: Path, slow_entries: float, by_turns: bool) -> tuple[float, Estimator]:
    """Keep-0.5 pruning's estimate, the calibrated network's table entries having been taken
    while the host ran ``slow_entries`` times slower than during the calibration."""
    loaded = load_model(CASES["conv_bn_relu_chain"].build())
    strategy = ProfileStrategy(event_cost=False, model_overhead=False, excess_by_turns=by_turns)
    with SlowingRunner() as runner:
        table = LatencyTable(runner.fingerprint(), tmp_path / f"t{slow_entries}{by_turns}.json")
        estimator = Estimator(runner, table, mode=strategy)
        runner.slowness = slow_entries
        estimator.source.kernel_ms(model_signatures(loaded))  # an earlier run filled the table
        runner.slowness = 1.0
        estimator.calibrate(loaded)
        pruned = prune(analyse(loaded), ratio=0.5).model
        return estimator.estimate(pruned), estimator


def test_the_excess_comes_from_the_same_rounds_as_the_profile(tmp_path: Path) -> None:
    steady, estimator = _estimate(tmp_path, 1.0, by_turns=True)
    units = [u for u in estimator.calibration.base.profile.units if u.filters]
    assert units and all(u.kernel_ms == pytest.approx(u.ms / EXCESS) for u in units)
    slowed, estimator = _estimate(tmp_path, 1.8, by_turns=True)
    units = [u for u in estimator.calibration.base.profile.units if u.filters]
    assert all(u.kernel_ms == pytest.approx(u.ms / EXCESS) for u in units)
    assert all(u.base == pytest.approx(1.8 * u.ms / EXCESS) for u in units)  # the table's
    assert slowed == pytest.approx(steady)


def test_entries_apart_carry_the_slow_moment_into_the_estimate(tmp_path: Path) -> None:
    steady, _ = _estimate(tmp_path, 1.0, by_turns=False)
    slowed, estimator = _estimate(tmp_path, 1.8, by_turns=False)
    units = [u for u in estimator.calibration.base.profile.units if u.filters]
    assert all(u.kernel_ms is None for u in units)  # nothing profiled in the rounds
    # the entries (x1.8) exceed the in-network times (x1.25): no excess left to shrink faster
    assert slowed > 1.02 * steady


def test_pairing_skips_rounds_that_miss_a_unit() -> None:
    unit = Unit("conv", 3.0, ["conv", "relu"], ["conv"], 9.9)
    other = Unit("add", 1.0, ["add"], [], 100.0)
    rounds = [{"conv": 2.0, "add": 1.0}, {"add": 1.0}, {"conv": 4.0}]
    kernels = [{"conv": 1.0}, {"conv": 1.0}, {}]
    pair_kernel_times([unit, other], rounds, kernels)
    assert unit.kernel_ms == pytest.approx(1.5)  # only the first round has both
    assert other.kernel_ms is None  # no filter layers: nothing to pair
    lonely = Unit("conv", 3.0, ["conv"], ["conv"], 9.9)
    pair_kernel_times([lonely], [{}], [{}])
    assert lonely.kernel_ms is None  # no round: the table's entry serves


def test_the_rounds_fill_the_calibrated_networks_entries(tmp_path: Path) -> None:
    """A calibrated network's layers missing from the table take their entries from the
    profiles of the rounds: no layer is profiled alone again."""
    loaded = load_model(CASES["conv_bn_relu_chain"].build())
    strategy = ProfileStrategy(event_cost=False, model_overhead=False, rounds=4)
    with CountingSlowingRunner() as runner:
        estimator = Estimator(runner, LatencyTable(runner.fingerprint()), mode=strategy)
        estimator.calibrate(loaded)
        distinct = set(model_signatures(loaded).values())
        assert runner.context_profiles == 4 * len(distinct)
        table = estimator.kernels_table
        assert table is not None and table.measurements == len(distinct)
        for sig in distinct:
            assert table.get(sig).n == 4  # the median of the four rounds
        assert estimator.calibration.mode == "profile"


class CountingSlowingRunner(SlowingRunner):
    """Counts the context models it profiles."""

    def __init__(self) -> None:
        super().__init__()
        self.context_profiles = 0

    def profile_layers(self, model: onnx.ModelProto) -> dict[str, float]:
        self.context_profiles += any(n.name == "layer" for n in model.graph.node)
        return super().profile_layers(model)
