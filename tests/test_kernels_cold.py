"""Cold in-context kernel entries: the caches evicted before the layer (kernels.py)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from onnx_netadapt.graph.probe import random_inputs
from onnx_netadapt.measure.estimate import Estimator
from onnx_netadapt.measure.kernels import EVICT_BYTES, EVICT_NAME, context_layer_model
from onnx_netadapt.measure.runner import Runner
from onnx_netadapt.measure.signature import LayerSignature
from onnx_netadapt.measure.table import LatencyTable
from onnx_netadapt.verify import run_model

SIG = LayerSignature("Conv", 16, 24, (8, 8), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))
HOT_MS, COLD_MS = 0.1, 0.14


class ProfilingRunner(Runner):
    """Profiles the layer of a context model slower when an eviction node runs before it."""

    name = "profiling"

    def _fingerprint_impl(self) -> dict[str, object]:
        return {"fake": 1}

    def _measure_impl(self, model: onnx.ModelProto) -> list[float]:
        return [1.0]

    def profile_layers(self, model: onnx.ModelProto) -> dict[str, float]:
        cold = any(n.name == EVICT_NAME for n in model.graph.node)
        return {"layer": COLD_MS if cold else HOT_MS}


def test_cold_context_model_evicts_first_and_computes_the_same_layer():
    hot = context_layer_model(SIG)
    cold = context_layer_model(SIG, evict_bytes=1 << 20)
    assert cold.graph.node[0].name == EVICT_NAME
    assert [n.name for n in cold.graph.node[1:]] == [n.name for n in hot.graph.node]
    onnx.checker.check_model(cold)
    feeds = random_inputs(cold)
    assert feeds["evict_in"].nbytes == 1 << 20
    want = run_model(hot, {"x": feeds["x"]})[0]
    got, evicted = run_model(cold, feeds)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(evicted, -feeds["evict_in"])


@pytest.mark.parametrize(("cold", "expected"), [(False, HOT_MS), (True, COLD_MS)])
def test_estimator_reads_cold_entries_from_a_table_of_their_own(tmp_path, cold, expected):
    with ProfilingRunner() as runner:
        table = LatencyTable(runner.fingerprint(), tmp_path / "table.json")
        estimator = Estimator(runner, table, mode="profile", cold_kernels=cold)
        assert estimator.kernel_entries({"conv": SIG}) == {"conv": pytest.approx(expected)}
        entry = estimator.kernels_table.fingerprint["entry"]
    assert (f"-cold-{EVICT_BYTES >> 20}MiB" in entry) == cold
