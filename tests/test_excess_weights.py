"""The excess as cold weights: a unit's in-network excess over its kernel entry follows the
network's share of weights a cache does not hold (``ProfileStrategy(excess_cache_bytes=...)``)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from models import GraphBuilder
from onnx import helper, numpy_helper

from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.measure.calibration import (
    calibrate_profiled,
    cold_share,
    estimate_parts,
    scale_kernel_unit,
    weight_bytes,
)
from onnx_netadapt.measure.signature import model_signatures

MIB = 1 << 20


def test_the_cold_share_is_what_a_cache_of_that_size_cannot_hold():
    assert cold_share(2 * MIB, 4 * MIB) == 0.0  # all cached
    assert cold_share(8 * MIB, 4 * MIB) == pytest.approx(0.5)
    assert cold_share(100 * MIB, 4 * MIB) == pytest.approx(0.96)
    assert cold_share(0, 4 * MIB) == 0.0


def test_with_a_cold_change_the_excess_follows_the_entry_and_the_cold_share():
    # kernel 0.053 of 0.106: the kernel part with the entry (0.3), the excess with 0.3 * cold
    assert scale_kernel_unit(0.106, 0.053, 0.3, cold=1.0) == pytest.approx(0.106 * 0.3)
    gone = scale_kernel_unit(0.106, 0.053, 0.3, cold=0.0, floor=False)
    assert gone == pytest.approx(0.053 * 0.3)
    half = scale_kernel_unit(0.106, 0.053, 0.3, cold=0.5)
    assert half == pytest.approx(0.053 * 0.3 + 0.053 * 0.3 * 0.5)
    assert scale_kernel_unit(0.106, 0.053, 1.5, cold=0.0) == pytest.approx(0.106 * 1.5)  # grows


def test_the_power_rule_is_the_weight_rules_floor():
    """Weights that shrink below the cache take their part of the excess away, not the rest:
    the excess shrinks no faster than the power rule (ratio ** 2)."""
    power = scale_kernel_unit(0.106, 0.053, 0.3)
    assert scale_kernel_unit(0.106, 0.053, 0.3, cold=0.0) == pytest.approx(power)
    assert scale_kernel_unit(0.106, 0.053, 0.3, cold=0.1) == pytest.approx(power)  # 0.1 < 0.3
    assert scale_kernel_unit(0.106, 0.053, 0.3, cold=0.8) > power


def test_weight_bytes_count_initializers_and_constant_nodes():
    g = GraphBuilder("w")
    x = g.input("x", [1, 4, 8, 8])
    g.output(g.conv(x, 4, 8, 3), [1, 8, 8, 8])  # 8*4*3*3 + 8 floats
    model = g.build()
    assert weight_bytes(model) == (8 * 4 * 9 + 8) * 4
    const = helper.make_node(
        "Constant", [], ["c"], value=numpy_helper.from_array(np.zeros(10, np.float32))
    )
    model.graph.node.insert(0, const)
    assert weight_bytes(model) == (8 * 4 * 9 + 8 + 10) * 4


def _chain() -> onnx.ModelProto:
    g = GraphBuilder("chain")
    x = g.input("x", [1, 64, 8, 8])
    for _ in range(3):
        x = g.relu(g.conv(x, 64, 64, 3))
    g.output(x, [1, 64, 8, 8])
    return g.build()


@pytest.mark.parametrize(("cache_mib", "kept"), [(0.0, None), (0.05, "some"), (1.0, "none")])
def test_a_pruned_network_whose_weights_fit_the_cache_loses_its_excess(cache_mib, kept):
    """The chain holds 0.42 MiB of weights; pruned at 0.5, 0.18 MiB. With no cache size the
    power rule applies; with a cache smaller than the pruned weights, part of the excess stays;
    with one larger than the original's, the excess is not weights: the power rule applies."""
    loaded = load_model(_chain())
    signatures = model_signatures(loaded)
    cal = calibrate_profiled(
        loaded.model,
        loaded.shapes,
        dict.fromkeys(signatures, 0.1),
        dict.fromkeys(signatures, 0.2),
        1.0,
    )
    cal.kernels = True
    cal.excess_cache_bytes = cache_mib * MIB
    pruned = load_model(prune(analyse(loaded), ratio=0.5).model, fold=False)
    entries = dict.fromkeys(signatures, 0.025)  # each entry a quarter of the original's
    parts = estimate_parts(cal, pruned.model, pruned.shapes, entries)
    unit = next(parts[name] for name in signatures if name in parts)
    power = 0.025 + 0.1 * 0.25**2
    if kept is None or kept == "none":
        assert unit == pytest.approx(power)
    else:  # the cold share's change (0.81) is above the floor (0.25)
        cold = cold_share(weight_bytes(pruned.model), cal.excess_cache_bytes) / cold_share(
            cal.weights, cal.excess_cache_bytes
        )
        assert 0.0 < cold < 1.0
        assert unit == pytest.approx(0.025 + 0.1 * 0.25 * cold)


def test_a_paired_estimator_shares_the_calibration_and_changes_only_its_rule():
    """``latency_fidelity``'s paired columns: the same profile and overhead as the estimator
    they pair with, so two columns differ by the rule alone."""
    from test_estimate_fidelity import FakeRunner, _calibrated

    from benchmarks.latency_fidelity import paired

    with FakeRunner() as runner:
        base = _calibrated(runner, _chain(), mode="profile")
        twin = paired(base, {"paired": "profile", "excess_cache_bytes": 0})
        ours, theirs = base.calibration.base.profile, twin.calibration.base.profile
        assert theirs.excess_cache_bytes == 0 and ours.excess_cache_bytes > 0
        assert theirs.overhead_ms == ours.overhead_ms and theirs.units == ours.units
        assert theirs is not ours
