"""Side-by-side timing in interleaved rounds (measure/interleave.py)."""

from __future__ import annotations

import time

import pytest

from onnx_netadapt.measure.interleave import (
    interleaved,
    ratio_spread,
    stats_ratios,
    with_more_rounds,
)
from onnx_netadapt.measure.stats import LatencyStats


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


class _DriftingRunner:
    """A runner whose machine speed changes between rounds: ``measure(model)`` is the model's
    cost times the speed of the moment (one speed per round, both models alike)."""

    def __init__(self, speeds: list[float]) -> None:
        self.speeds = iter(s for s in speeds for _ in range(2))

    def measure(self, model: float) -> LatencyStats:
        return LatencyStats.from_samples([model * next(self.speeds)])


class _SharedHostRunner:
    """A runner on a host shared with other work: each measurement's runs are the model's cost,
    most of them slowed by whatever the neighbours do in that measurement's second."""

    def __init__(self, slowdowns: list[float]) -> None:
        self.slowdowns = iter(slowdowns)

    def measure(self, model: float) -> LatencyStats:
        slow = next(self.slowdowns)
        return LatencyStats.from_samples([model] * 3 + [model * slow] * 7)


def test_round_ratios_keep_every_round_and_their_median_is_the_ratio() -> None:
    from onnx_netadapt.measure.interleave import ratio_to_reference, round_ratios

    runner = _DriftingRunner([1.0, 1.5, 0.8])
    ratios, times = round_ratios(runner, 1.0, 4.0, rounds=3)  # type: ignore[arg-type]
    assert ratios == pytest.approx([0.25, 0.25, 0.25])
    assert times == pytest.approx([1.0, 1.5, 0.8])
    runner = _DriftingRunner([1.0, 1.5, 0.8])
    assert ratio_to_reference(runner, 1.0, 4.0, 3) == pytest.approx((0.25, 1.0))  # type: ignore[arg-type]


def test_ratios_by_the_fastest_run_ignore_the_neighbours_medians_do_not() -> None:
    from onnx_netadapt.measure.interleave import round_ratios

    slowdowns = [1.0, 1.3, 1.2, 1.0]  # reference, model; reference, model
    ratios, times = round_ratios(_SharedHostRunner(slowdowns), 1.0, 4.0, 2, "median")  # type: ignore[arg-type]
    assert ratios == pytest.approx([0.325, 0.2083333])
    ratios, times = round_ratios(_SharedHostRunner(slowdowns), 1.0, 4.0, 2, "min")  # type: ignore[arg-type]
    assert ratios == pytest.approx([0.25, 0.25])
    assert times == pytest.approx([1.0, 1.0])


def test_an_unknown_statistic_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown latency statistic 'mean'"):
        LatencyStats.from_samples([1.0]).statistic("mean")


def test_the_fastest_run_falls_back_to_the_10th_percentile_where_a_tool_gave_no_minimum() -> None:
    stats = LatencyStats.from_dict({"median_ms": 2.0, "p10_ms": 1.5, "p90_ms": 3.0, "n": 5})
    assert stats.min_ms is None
    assert stats.statistic("min") == 1.5
    assert LatencyStats.from_dict(LatencyStats.from_samples([1.0, 2.0]).to_dict()).min_ms == 1.0


def test_a_fidelity_row_reports_its_rounds_spread() -> None:
    from benchmarks.fidelity_layouts import _round_spread

    assert _round_spread({"round_ratios": [0.9, 1.0, 1.1]}) == "10.0"
    assert _round_spread({"ratio": 0.5}) == "-"  # runs before the rounds were kept


@pytest.mark.parametrize("rounds", ["0", "-2"])
def test_the_fidelity_benchmark_refuses_fewer_than_one_round(
    rounds: str, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import latency_fidelity

    argv = ["--calibration", "original", "--rounds", rounds, "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as stop:
        latency_fidelity.main(argv)
    assert stop.value.code == 2
    assert "--rounds must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--more-rounds", "-1", "--more-rounds must be 0 or more"),
        ("--truth-spread", "-0.1", "--truth-spread must be 0 or more"),
    ],
)
def test_the_fidelity_benchmark_refuses_negative_more_rounds_or_spread(
    flag: str, value: str, message: str, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import latency_fidelity

    argv = ["--calibration", "original", flag, value, "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as stop:
        latency_fidelity.main(argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written


def _rounds_of(ratios: list[float]):
    """A measure_rounds whose n rounds give the next n of ``ratios`` (reference 10 ms)."""
    given = iter(ratios)
    asked: list[int] = []

    def measure_rounds(n: int) -> dict[str, list[LatencyStats]]:
        asked.append(n)
        model = [LatencyStats.from_samples([10.0 * next(given)]) for _ in range(n)]
        return {"reference": [LatencyStats.from_samples([10.0])] * n, "model": model}

    return measure_rounds, asked


def test_ratio_spread_is_the_range_over_the_median():
    assert ratio_spread([0.2, 0.21, 0.19]) == pytest.approx(0.1)
    assert ratio_spread([0.3]) == 0.0


def test_rounds_that_spread_get_more_and_steady_ones_do_not():
    spread, asked = _rounds_of([0.205, 0.207, 0.185, 0.185, 0.186, 0.184, 0.186])
    stats = with_more_rounds(spread, rounds=3, more_rounds=4, spread=0.04)
    ratios, _ = stats_ratios(stats)
    assert asked == [3, 4] and len(ratios) == len(stats["reference"]) == 7
    assert sorted(ratios)[3] == pytest.approx(0.186)  # the median of 7, not of the first 3

    steady, asked = _rounds_of([0.120, 0.121, 0.119])
    assert len(stats_ratios(with_more_rounds(steady, 3, 4, 0.04))[0]) == 3 and asked == [3]

    never, asked = _rounds_of([0.205, 0.207, 0.185])
    assert len(stats_ratios(with_more_rounds(never, 3, 0, 0.04))[0]) == 3 and asked == [3]
