"""The per-group count search: the answer of a full scan, with few probes."""

from __future__ import annotations

import random

import pytest

from onnx_netadapt.adapt.search import excess, largest_meeting


def scan(counts: list[int], cost) -> int | None:
    """The reference: the first count from the top that meets."""
    return next((i for i, c in enumerate(counts) if cost(c) <= 0), None)


def run(counts: list[int], top: int, cost) -> tuple[int | None, list[int]]:
    probed: list[int] = []

    def probe(index: int) -> float:
        probed.append(index)
        return cost(counts[index])

    return largest_meeting(counts, top, cost(top), probe), probed


COUNTS = list(range(120, 0, -8))  # a group of 128 channels on a grid of 8


@pytest.mark.parametrize("target", [127.0, 100.0, 61.0, 33.0, 9.0, 8.0])
def test_linear_cost_needs_few_probes(target: float) -> None:
    def cost(c: int) -> float:
        return (c - target) / target

    found, probed = run(COUNTS, 128, cost)
    assert found == scan(COUNTS, cost)
    assert len(probed) <= 3
    assert len(set(probed)) == len(probed)


def test_none_meets_after_every_count_is_probed_once() -> None:
    found, probed = run(COUNTS, 128, lambda c: 1.0)
    assert found is None
    assert sorted(probed) == list(range(len(COUNTS)))


def test_slower_lowest_count_does_not_hide_the_meeting_ones() -> None:
    """Measured near the floor (ORT, MobileNetV1 at 0.35 of its latency): a group at 8
    channels was slower than at 16, which met the target."""
    measured = {32: 0.03151, 24: 0.03497, 16: 0.02971, 8: 0.03170}
    counts = [24, 16, 8]

    def cost(c: int) -> float:
        return (measured[c] - 0.03175) / 0.03175

    found, probed = run(counts, 32, cost)
    assert found == scan(counts, cost) == 1
    assert probed == [2, 0, 1]


def test_monotone_costs_give_the_scan_answer() -> None:
    rng = random.Random(0)
    total = 0
    for _ in range(300):
        steps = sorted(rng.random() ** 3 for _ in COUNTS)  # uneven, monotone in the count
        values = dict(zip(sorted(COUNTS), steps, strict=True))
        values[128] = 1.0 + rng.random()
        threshold = rng.uniform(0.0, 1.2)

        def cost(c: int, values=values, threshold=threshold) -> float:
            return values[c] - threshold

        found, probed = run(COUNTS, 128, cost)
        assert found == scan(COUNTS, cost)
        assert len(probed) <= len(COUNTS)
        total += len(probed)
    assert total / 300 < 6  # a scan probes up to 15


def test_excess_is_the_worst_relative_overshoot() -> None:
    assert excess({"latency": 1.1, "macs": 5.0}, {"latency": 1.0, "macs": 10.0}) == pytest.approx(
        0.1
    )
    assert excess({"latency": 0.9}, {"latency": 1.0}) == pytest.approx(-0.1)
