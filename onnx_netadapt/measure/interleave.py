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
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TypeVar

import onnx

from onnx_netadapt.measure.runner import Runner
from onnx_netadapt.measure.stats import LatencyStats

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


def interleaved_stats(
    runner: Runner, models: Mapping[K, onnx.ModelProto], rounds: int
) -> dict[K, list[LatencyStats]]:
    """Whole-network statistics (``runner.measure``) of each model, one per interleaved round."""
    return interleaved(runner.measure, models, rounds)


def interleaved_medians(
    runner: Runner, models: Mapping[K, onnx.ModelProto], rounds: int
) -> dict[K, list[float]]:
    """Whole-network medians (``runner.measure``) of each model, one per interleaved round."""
    return interleaved(lambda model: runner.measure(model).median_ms, models, rounds)


def stats_ratios(
    stats: Mapping[str, list[LatencyStats]], statistic: str = "median"
) -> tuple[list[float], list[float]]:
    """Per round, the ratio of ``stats["model"]`` to ``stats["reference"]`` by ``statistic``
    (``LatencyStats.statistic``), and the model's times (ms) by it."""
    model = [s.statistic(statistic) for s in stats["model"]]
    reference = [s.statistic(statistic) for s in stats["reference"]]
    return [m / r for r, m in zip(reference, model, strict=True)], model


def round_stats(
    runner: Runner, model: onnx.ModelProto, reference: onnx.ModelProto, rounds: int
) -> dict[str, list[LatencyStats]]:
    """``model`` and ``reference`` timed back to back in ``rounds`` rounds (the reference
    first in each): their statistics under "model" and "reference", one per round."""
    return interleaved_stats(runner, {"reference": reference, "model": model}, rounds)


def alternating_stats(
    runner: Runner, model: onnx.ModelProto, reference: onnx.ModelProto, rounds: int
) -> dict[str, list[LatencyStats]]:
    """``round_stats``, each round timed run by run in turn (``Runner.measure_alternating``)
    where the runner can: on a host shared with other work, ratios then move far less. Over
    five repeats on this project's noisy host (``benchmarks/ratio_stability.py``), keep-0.5
    MobileNetV2 to its original: 0.343-0.355 run by turns, by the 10th percentile, against
    0.315-0.446 by the median of whole measurements in turn (``round_stats``)
    (``benchmarks/results/latency_fidelity/noisy_host/``). Falls back to ``round_stats``
    where the runner cannot alternate."""
    stats: dict[str, list[LatencyStats]] = {"reference": [], "model": []}
    for _ in range(rounds):
        pair = runner.measure_alternating([reference, model])
        if pair is None:
            return round_stats(runner, model, reference, rounds)
        stats["reference"].append(pair[0])
        stats["model"].append(pair[1])
    return stats


def ratio_spread(ratios: Sequence[float]) -> float:
    """(largest - smallest) / median of per-round ratios; 0 for fewer than two.

    >>> round(ratio_spread([0.205, 0.207, 0.185]), 3)
    0.107
    """
    if len(ratios) < 2:
        return 0.0
    return (max(ratios) - min(ratios)) / statistics.median(ratios)


def with_more_rounds(
    measure_rounds: Callable[[int], dict[str, list[LatencyStats]]],
    rounds: int,
    more_rounds: int,
    spread: float,
    statistic: str = "median",
) -> dict[str, list[LatencyStats]]:
    """``measure_rounds(rounds)`` (e.g. ``alternating_stats`` of a model and its reference),
    then, where its per-round ratios by ``statistic`` spread by more than ``spread``
    (``ratio_spread``), ``more_rounds`` more: a median of three where two rounds caught the
    machine slow is off by as much as they were; with more rounds, their median is not.
    The steady pairs, most of them, stay at ``rounds``."""
    stats = measure_rounds(rounds)
    if more_rounds > 0 and ratio_spread(stats_ratios(stats, statistic)[0]) > spread:
        for key, more in measure_rounds(more_rounds).items():
            stats[key] = stats[key] + more
    return stats


def round_ratios(
    runner: Runner,
    model: onnx.ModelProto,
    reference: onnx.ModelProto,
    rounds: int,
    statistic: str = "median",
) -> tuple[list[float], list[float]]:
    """Per round, the ratio of ``model``'s time to ``reference``'s, timed back to back in
    ``rounds`` rounds (the reference first in each), and ``model``'s times (ms); the times
    are each round's ``statistic`` (``LatencyStats.statistic``)."""
    return stats_ratios(round_stats(runner, model, reference, rounds), statistic)


def ratio_to_reference(
    runner: Runner, model: onnx.ModelProto, reference: onnx.ModelProto, rounds: int
) -> tuple[float, float]:
    """Median ratio of ``model``'s time to ``reference``'s, timed back to back in ``rounds``
    rounds (the reference first in each), and ``model``'s median time (ms)."""
    ratios, times = round_ratios(runner, model, reference, rounds)
    return statistics.median(ratios), statistics.median(times)
