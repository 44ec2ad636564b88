"""Robust latency statistics and the repeat-until-stable sampling loop."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

STATISTICS = ("median", "p10", "min")


@dataclass(frozen=True)
class LatencyStats:
    """Summary of repeated timings in milliseconds (median, the 10th/90th percentiles and the
    fastest run; ``min_ms`` is None where a tool reported statistics without it).

    On a machine shared with other work, the median of a few seconds' runs moves with what
    the neighbours do, while the fastest runs, those without interference, move far less: on
    this project's noisy 2-core host, between 3-second windows of MobileNetV2 runs, the median
    moved by 9.5 % (sd), the 10th percentile and the fastest run by 2.4 %
    (``benchmarks/host_noise.py``, ``benchmarks/results/latency_fidelity/noisy_host/``)."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    n: int
    min_ms: float | None = None

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> LatencyStats:
        """Statistics of ``samples_ms`` (at least one sample, all finite and >= 0)."""
        values = np.asarray(samples_ms, dtype=np.float64)
        if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError(f"latency samples must be finite and non-negative, got {samples_ms}")
        p10, median, p90 = np.percentile(values, [10, 50, 90])
        return cls(float(median), float(p10), float(p90), int(values.size), float(values.min()))

    def statistic(self, name: str) -> float:
        """The median (``"median"``), the 10th percentile (``"p10"``) or the fastest run
        (``"min"``; the 10th percentile where the tool did not report it) in ms."""
        if name == "median":
            return self.median_ms
        if name == "p10":
            return self.p10_ms
        if name == "min":
            return self.p10_ms if self.min_ms is None else self.min_ms
        raise ValueError(f"unknown latency statistic {name!r}: use one of {', '.join(STATISTICS)}")

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: how noisy the measurement was."""
        return (self.p90_ms - self.p10_ms) / self.median_ms if self.median_ms > 0 else 0.0

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LatencyStats:
        """Inverse of ``to_dict``."""
        fastest = data.get("min_ms")
        return cls(
            float(data["median_ms"]),
            float(data["p10_ms"]),
            float(data["p90_ms"]),
            int(data["n"]),
            None if fastest is None else float(fastest),
        )


@dataclass(frozen=True)
class MeasureSettings:
    """How long to measure: warm-up, then repeat until the spread is tight or a cap is hit.

    Attributes:
        warmup: untimed runs first.
        min_runs: at least this many timed runs.
        max_runs: at most this many timed runs.
        max_seconds: stop after this much timed wall time (once ``min_runs`` are done).
        target_spread: stop early when (p90 - p10) / median falls below this.
    """

    warmup: int = 3
    min_runs: int = 10
    max_runs: int = 200
    max_seconds: float = 2.0
    target_spread: float = 0.05


def sample_until_stable(run_once: Callable[[], float], settings: MeasureSettings) -> list[float]:
    """Call ``run_once`` (returns one run's milliseconds) following ``settings``."""
    for _ in range(settings.warmup):
        run_once()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < settings.max_runs:
        samples.append(float(run_once()))
        if len(samples) < settings.min_runs:
            continue
        if time.perf_counter() - start > settings.max_seconds:
            break
        if LatencyStats.from_samples(samples).spread <= settings.target_spread:
            break
    return samples


def sample_alternating(
    run_once: Sequence[Callable[[], float]], settings: MeasureSettings, burst: int = 3
) -> list[list[float]]:
    """Run every function of ``run_once`` (each returns one run's milliseconds) in turn,
    ``burst`` timed runs each per turn after one untimed run (the first run after another
    model's finds the caches full of that model's data), after ``settings.warmup`` runs each:
    at least ``min_runs`` timed runs each, at most ``max_runs``, stopping once
    ``max_seconds`` per function have passed. Interference that lasts longer than a turn hits
    every function alike."""
    for run in run_once:
        for _ in range(settings.warmup):
            run()
    samples: list[list[float]] = [[] for _ in run_once]
    start = time.perf_counter()
    while len(samples[0]) < settings.max_runs:
        for out, run in zip(samples, run_once, strict=True):
            run()
            out.extend(float(run()) for _ in range(burst))
        if len(samples[0]) < settings.min_runs:
            continue
        if time.perf_counter() - start > settings.max_seconds * len(run_once):
            break
    return samples


def time_ms(fn: Callable[[], object]) -> float:
    """Wall time of one call of ``fn`` in milliseconds."""
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0
