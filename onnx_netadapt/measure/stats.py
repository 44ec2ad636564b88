"""Robust latency statistics and the repeat-until-stable sampling loop."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Summary of repeated timings in milliseconds (median and the 10th/90th percentiles)."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    n: int

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> LatencyStats:
        """Statistics of ``samples_ms`` (at least one sample, all finite and >= 0)."""
        values = np.asarray(samples_ms, dtype=np.float64)
        if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError(f"latency samples must be finite and non-negative, got {samples_ms}")
        p10, median, p90 = np.percentile(values, [10, 50, 90])
        return cls(float(median), float(p10), float(p90), int(values.size))

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
        return cls(
            float(data["median_ms"]), float(data["p10_ms"]), float(data["p90_ms"]), int(data["n"])
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


def time_ms(fn: Callable[[], object]) -> float:
    """Wall time of one call of ``fn`` in milliseconds."""
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0
