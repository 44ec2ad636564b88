"""Parsing the text output of TFLite's ``benchmark_model`` (timings and the op profile).

The format (TFLite ``tools/benchmark``, statistics from ``Stat::OutputToStream`` of
``stats_calculator.h``; lines may carry a log prefix such as ``INFO: `` or logcat's
``I tflite  : ``)::

    Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if ...
    count=29 first=22148 curr=17011 min=16871 max=22148 avg=17312.8 std=946
    Running benchmark for at least 50 iterations and at least 1 seconds but terminate if ...
    count=50 first=2990275 curr=2913402 min=2727568 max=3189954 avg=2.95034e+06 std=109798
    Inference timings in us: Init: 17187, First inference: 3512391, Warmup (avg): 3.51239e+06, ...

The first bare ``count=`` line is the warm-up, the last one before ``Inference timings in us``
the regular runs (microseconds). Newer builds append ``p5= median= p95=``; a run whose timings
were all equal prints ``count=N curr=X(all same)``. With ``--enable_op_profiling=true`` a
section ``Operator-wise Profiling Info for Regular Benchmark Runs:`` follows, whose
``Run Order`` table has tab-separated columns ``[node type] [start] [first] [avg ms] [%]
[cdf%] [mem KB] [times called] [Name]`` (older builds: no ``[start]``, space-separated); its
``Timings (microseconds): count=...`` line sums the op times per run and is not used here.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from itertools import pairwise
from statistics import NormalDist

from onnx_netadapt.measure.runner import RunnerError

logger = logging.getLogger(__name__)

_PREFIX = re.compile(r"^(?:[A-Z]+:\s+|[VDIWEF]\s+\S+\s*:\s+)")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PAIR = re.compile(rf"(\w+)=({_NUMBER})")
_SUMMARY = re.compile(
    rf"Inference timings in us: Init: ({_NUMBER}), First inference: ({_NUMBER}), "
    rf"Warmup \(avg\): ({_NUMBER}|nan|-?inf), Inference \(avg\): ({_NUMBER})"
)
_PROFILE_HEADER = "Operator-wise Profiling Info for Regular Benchmark Runs"


@dataclass(frozen=True)
class BenchmarkTimings:
    """One ``count=... first=... curr=... min=... max=... avg=... std=...`` line (microseconds).

    ``p5``/``median``/``p95`` are None where the build does not print them.
    """

    count: int
    avg: float
    std: float
    min: float
    max: float
    first: float | None = None
    curr: float | None = None
    p5: float | None = None
    median: float | None = None
    p95: float | None = None


@dataclass(frozen=True)
class OpTiming:
    """One row of the ``Run Order`` op-profiling table."""

    node_type: str
    avg_ms: float
    percent: float
    first_ms: float | None = None
    times_called: int = 1


@dataclass
class BenchmarkResult:
    """What one ``benchmark_model`` run reported."""

    timings: BenchmarkTimings
    warmup: BenchmarkTimings | None = None
    init_us: float | None = None
    ops: dict[str, OpTiming] = field(default_factory=dict)


def strip_prefix(line: str) -> str:
    """``line`` without a log prefix (``INFO: ``, ``I tflite  : ``) and surrounding blanks."""
    return _PREFIX.sub("", line.strip("\r\n ")).strip()


def parse_timings(line: str) -> BenchmarkTimings | None:
    """The statistics of a ``count=...`` line, or None if ``line`` is not one."""
    text = strip_prefix(line)
    if not text.startswith("count="):
        return None
    values = {k: float(v) for k, v in _PAIR.findall(text)}
    count = int(values["count"])
    if count == 0:
        return None
    if "avg" not in values:  # "count=N curr=X" or "count=N curr=X(all same)": all equal
        curr = values["curr"]
        return BenchmarkTimings(count, curr, 0.0, curr, curr, curr, curr, curr, curr, curr)
    return BenchmarkTimings(
        count=count,
        avg=values["avg"],
        std=values.get("std", 0.0),
        min=values.get("min", values["avg"]),
        max=values.get("max", values["avg"]),
        first=values.get("first"),
        curr=values.get("curr"),
        p5=values.get("p5"),
        median=values.get("median"),
        p95=values.get("p95"),
    )


def parse_benchmark_output(text: str) -> BenchmarkResult:
    """Timings of the regular (non warm-up) runs, warm-up, init time and op profile.

    Raises:
        RunnerError: the output holds no timings (the tail of the output is quoted).
    """
    runs: list[BenchmarkTimings] = []
    init_us = summary_avg = None
    for raw in text.splitlines():
        line = strip_prefix(raw)
        if line.startswith(_PROFILE_HEADER) or line.startswith("Profiling Info for Benchmark"):
            break  # the profile sections come last; their Timings lines are op sums
        timings = parse_timings(line)
        if timings is not None:
            runs.append(timings)
            continue
        match = _SUMMARY.search(line)
        if match:
            init_us, summary_avg = float(match.group(1)), float(match.group(4))
            break
    if not runs:
        tail = "\n".join(text.strip().splitlines()[-15:])
        raise RunnerError(f"benchmark_model printed no timings; its output ends with:\n{tail}")
    regular = runs[-1]
    if summary_avg is not None and abs(summary_avg - regular.avg) > 1e-3 * max(summary_avg, 1):
        logger.warning(
            "benchmark_model: Inference (avg) %s differs from the last count line's avg %s",
            summary_avg,
            regular.avg,
        )
    warmup = runs[-2] if len(runs) > 1 else None
    return BenchmarkResult(regular, warmup, init_us, parse_op_profile(text))


def parse_op_profile(text: str) -> dict[str, OpTiming]:
    """The ``Run Order`` table of the regular runs' op profile, keyed by the ``[Name]`` column.

    Returns an empty dict when the output has no op profile.
    """
    lines = text.splitlines()
    start = next((i for i, raw in enumerate(lines) if _PROFILE_HEADER in raw), None)
    if start is None:
        return {}
    ops: dict[str, OpTiming] = {}
    columns: list[str] | None = None
    in_run_order = False
    for raw in lines[start + 1 :]:
        line = strip_prefix(raw)
        if line.startswith("====="):
            if in_run_order:
                break
            in_run_order = "Run Order" in line
            continue
        if not in_run_order or not line:
            if in_run_order and columns is not None and not line:
                break
            continue
        if line.startswith("["):
            columns = re.findall(r"\[([^\]]*)\]", line)
            continue
        if columns is not None:
            row = _op_row(raw, columns)
            if row is not None:
                name, timing = row
                ops[name or f"{timing.node_type}#{len(ops)}"] = timing
    return ops


def _op_row(raw: str, columns: list[str]) -> tuple[str, OpTiming] | None:
    text = strip_prefix(raw)
    if "\t" in text:
        cells = [c.strip() for c in text.split("\t") if c.strip()]
    else:  # older builds pad with spaces; only the last column ([Name]) may hold blanks
        cells = text.split(None, len(columns) - 1)
    if len(cells) != len(columns):
        return None
    row = dict(zip(columns, cells, strict=True))
    try:
        timing = OpTiming(
            node_type=row["node type"],
            avg_ms=float(row["avg ms"]),
            percent=float(row["%"].rstrip("%")),
            first_ms=float(row["first"]) if "first" in row else None,
            times_called=int(float(row.get("times called", "1"))),
        )
    except (KeyError, ValueError):
        return None
    return row.get("Name", ""), timing


def samples_from_timings(timings: BenchmarkTimings) -> list[float]:
    """``count`` samples (ms) that reproduce the reported statistics of ``timings``.

    ``benchmark_model`` prints aggregate statistics only, never the single timings, so these
    samples are synthetic: they are the quantiles ``(i + 0.5) / count`` of a distribution
    fitted to the report, which is what makes ``LatencyStats.from_samples`` of them honest:

    - all runs equal (``(all same)``): ``count`` copies of that value;
    - with ``p5``/``median``/``p95`` (newer builds): the piecewise-linear quantile function
      through min, p5, median, p95 and max, so the median is the reported one and p10/p90
      are interpolated between the reported percentiles;
    - otherwise (``min max avg std`` only): a normal distribution of the reported mean and
      standard deviation clipped to [min, max]; the median is then the mean.
    """
    count = max(int(timings.count), 1)
    qs = [(i + 0.5) / count for i in range(count)]
    if timings.std == 0 or timings.min == timings.max:
        values = [timings.avg] * count
    elif None not in (timings.p5, timings.median, timings.p95):
        knots = [
            (0.0, timings.min),
            (0.05, timings.p5),
            (0.5, timings.median),
            (0.95, timings.p95),
            (1.0, timings.max),
        ]
        values = [_interpolate(knots, q) for q in qs]
    else:
        normal = NormalDist(timings.avg, timings.std)
        values = [min(max(normal.inv_cdf(q), timings.min), timings.max) for q in qs]
    return [v / 1000.0 for v in values]


def _interpolate(knots: list[tuple[float, float]], q: float) -> float:
    for (q0, v0), (q1, v1) in pairwise(knots):
        if q <= q1:
            return v0 + (v1 - v0) * (q - q0) / (q1 - q0)
    return knots[-1][1]
