"""Side-by-side timing in interleaved rounds (measure/interleave.py)."""

from __future__ import annotations

import time

import pytest

from onnx_netadapt.measure.interleave import interleaved


def test_every_item_once_per_round_in_order():
    calls: list[str] = []

    def measure(item: str) -> float:
        calls.append(item)
        return float(len(calls))

    samples = interleaved(measure, {"a": "A", "b": "B"}, rounds=3)
    assert calls == ["A", "B"] * 3
    assert samples == {"a": [1.0, 3.0, 5.0], "b": [2.0, 4.0, 6.0]}


def test_a_drift_that_hits_both_cancels_in_the_ratio():
    speed = iter([1.0, 1.0, 1.6, 1.6, 0.7, 0.7])  # the machine slows, then speeds up

    def measure(ms: float) -> float:
        return ms * next(speed)

    samples = interleaved(measure, {"ref": 2.0, "net": 1.0}, rounds=3)
    ratios = [n / r for r, n in zip(samples["ref"], samples["net"], strict=True)]
    assert ratios == pytest.approx([0.5, 0.5, 0.5])


def test_stops_early_after_the_minimum_once_time_is_up():
    def slow(_: object) -> float:
        time.sleep(0.01)
        return 1.0

    samples = interleaved(slow, {"x": None}, rounds=50, min_rounds=3, max_seconds=0.0)
    assert len(samples["x"]) == 3
    assert len(interleaved(slow, {"x": None}, rounds=4)["x"]) == 4
