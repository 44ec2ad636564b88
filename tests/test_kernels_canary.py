"""Kernel entries scaled to a canary layer's speed (kernels.CANARY): entries measured while the
machine runs at another speed come out as if measured at the reference speed; the estimator's
default."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from onnx_netadapt.measure.estimate import Estimator
from onnx_netadapt.measure.kernels import CANARY, kernel_table
from onnx_netadapt.measure.runner import Runner
from onnx_netadapt.measure.signature import LayerSignature
from onnx_netadapt.measure.table import LatencyTable

SMALL = LayerSignature("Conv", 16, 24, (8, 8), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))
LARGE = LayerSignature("Conv", 32, 48, (8, 8), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))


class DriftingRunner(Runner):
    """Profiles a layer at a time proportional to its weights, times the machine's ``slowness``
    (which the test changes between measurements)."""

    name = "drifting"
    slowness = 1.0

    def _fingerprint_impl(self) -> dict[str, object]:
        return {"fake": 1}

    def _measure_impl(self, model: onnx.ModelProto) -> list[float]:
        return [1.0]

    def profile_layers(self, model: onnx.ModelProto) -> dict[str, float]:
        (layer,) = [n for n in model.graph.node if n.name == "layer"]
        (weight,) = [i for i in model.graph.initializer if i.name == layer.input[1]]
        size = 1
        for d in weight.dims:
            size *= d
        return {"layer": 1e-4 * size * self.slowness}


@pytest.mark.parametrize("canary", [False, True])
def test_entries_measured_at_another_speed(tmp_path: Path, canary: bool) -> None:
    runner = DriftingRunner()
    table, kernels = kernel_table(runner, tmp_path / "table.json", canary=canary)
    first = table.lookup([SMALL], kernels)[SMALL].median_ms
    runner.slowness = 1.3  # minutes later, the machine runs 30 % slower
    second = table.lookup([LARGE], kernels)[LARGE].median_ms
    true_ratio = (48 * 32) / (24 * 16)
    if canary:
        assert second / first == pytest.approx(true_ratio)  # the drift is scaled away
        assert table.get(CANARY) is not None  # the reference speed, kept with the entries
        assert "canary" in kernels.fingerprint()["entry"]
    else:
        assert second / first == pytest.approx(true_ratio * 1.3)
        assert table.get(CANARY) is None


def test_the_reference_outlives_the_process(tmp_path: Path) -> None:
    runner = DriftingRunner()
    table, kernels = kernel_table(runner, tmp_path / "table.json", canary=True)
    small = table.lookup([SMALL], kernels)[SMALL].median_ms
    runner.slowness = 0.8  # another day, a faster machine: a new run reads the same file
    again, kernels_again = kernel_table(runner, tmp_path / "table.json", canary=True)
    large = again.lookup([LARGE, SMALL], kernels_again)
    assert large[SMALL].median_ms == small  # read, not measured again
    assert large[LARGE].median_ms / small == pytest.approx((48 * 32) / (24 * 16))


def test_the_estimator_takes_plain_entries_unless_asked(tmp_path: Path) -> None:
    """Five quiet fidelity runs: the canary no closer on average, a heavier tail
    (layouts/README.md); it is there for whoever asks."""
    runner = DriftingRunner()
    estimator = Estimator(runner, LatencyTable(runner.fingerprint(), tmp_path / "t.json"))
    assert not estimator.source.canary
    canary = Estimator(runner, LatencyTable(runner.fingerprint()), canary_kernels=True)
    assert canary.source.canary
