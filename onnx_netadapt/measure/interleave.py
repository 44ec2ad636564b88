"""Side-by-side timing: several models measured in interleaved rounds.

A machine's speed drifts (a CPU busy a moment ago, frequency changes, another process): two
models timed one after the other for a while each see different machines, and a lone
measurement can be off by tens of percent. Timed in rounds, every model once per round, a
transient hits all of them alike; their ratio in one round cancels it. The loop anchors its
latency to the original network this way (``adapt/resources.py``), and so do the benchmarks.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable, Mapping
from typing import TypeVar

import onnx

from onnx_netadapt.measure.runner import Runner

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def interleaved(
    measure: Callable[[T], float],
    items: Mapping[K, T],
    rounds: int,
    min_rounds: int | None = None,
    max_seconds: float | None = None,
) -> dict[K, list[float]]:
    """``measure(item)`` of every item in rounds, every item once per round in order.

    Stops after ``rounds`` rounds, or earlier once ``min_rounds`` are done and ``max_seconds``
    have passed (when both are given). Returns the samples of each item, one per round.
    """
    samples: dict[K, list[float]] = {key: [] for key in items}
    early = min_rounds is not None and max_seconds is not None
    start = time.perf_counter()
    for done in range(1, rounds + 1):
        for key, item in items.items():
            samples[key].append(measure(item))
        if early and done >= min_rounds and time.perf_counter() - start > max_seconds:  # type: ignore[operator]
            break
    return samples


def interleaved_medians(
    runner: Runner, models: Mapping[K, onnx.ModelProto], rounds: int
) -> dict[K, list[float]]:
    """Whole-network medians (``runner.measure``) of each model, one per interleaved round."""
    return interleaved(lambda model: runner.measure(model).median_ms, models, rounds)


def round_ratios(
    runner: Runner, model: onnx.ModelProto, reference: onnx.ModelProto, rounds: int
) -> tuple[list[float], list[float]]:
    """Per round, the ratio of ``model``'s time to ``reference``'s, timed back to back in
    ``rounds`` rounds (the reference first in each), and ``model``'s times (ms)."""
    samples = interleaved_medians(runner, {"reference": reference, "model": model}, rounds)
    ratios = [m / r for r, m in zip(samples["reference"], samples["model"], strict=True)]
    return ratios, samples["model"]


def ratio_to_reference(
    runner: Runner, model: onnx.ModelProto, reference: onnx.ModelProto, rounds: int
) -> tuple[float, float]:
    """Median ratio of ``model``'s time to ``reference``'s, timed back to back in ``rounds``
    rounds (the reference first in each), and ``model``'s median time (ms)."""
    ratios, times = round_ratios(runner, model, reference, rounds)
    return statistics.median(ratios), statistics.median(times)
