"""The fidelity benchmark's ground truth: more rounds where the first ones spread
(benchmarks/fidelity_layouts.Truth) and what its report says of them."""

from __future__ import annotations

import pytest

from benchmarks.fidelity_layouts import Truth, more_rounds_lines, report
from onnx_netadapt.measure.interleave import stats_ratios
from onnx_netadapt.measure.stats import LatencyStats


class _ByTurns:
    """A runner whose n-th run by turns gives the model ``ratios[n]`` of a 10 ms reference."""

    def __init__(self, ratios: list[float]) -> None:
        self.ratios = iter(ratios)
        self.turns = 0

    def measure_alternating(self, models):
        self.turns += 1
        ratio = next(self.ratios)
        return [LatencyStats.from_samples([10.0]), LatencyStats.from_samples([10.0 * ratio])]


def test_a_variant_whose_rounds_spread_is_measured_again_and_a_steady_one_is_not():
    truth = Truth(rounds=3, statistic="p10", alternate=True, more_rounds=4, spread=0.04)
    runner = _ByTurns([0.205, 0.207, 0.185, 0.186, 0.184, 0.186, 0.185])
    ratios, _ = stats_ratios(truth.stats(runner, "pruned", "original"), "p10")
    assert runner.turns == 7 and sorted(ratios)[3] == pytest.approx(0.186)

    runner = _ByTurns([0.120, 0.121, 0.119])
    assert len(stats_ratios(truth.stats(runner, "pruned", "original"))[0]) == 3


def _results(ratios: list[float], estimate_ratio: float) -> dict:
    measured = float(sorted(ratios)[len(ratios) // 2])
    error = 100 * (estimate_ratio / measured - 1)
    row = {
        "variant": "keep 0.3",
        "ratio": measured,
        "round_ratios": ratios,
        "estimates": {"profile": estimate_ratio * 10.0},
        "errors_pct": {"profile": error},
    }
    summary = {"mean_abs_pct": abs(error), "worst_abs_pct": abs(error), "bias_pct": error}
    return {
        "command": "test",
        "runner": "ort",
        "threads": 1,
        "cpu": "cpu",
        "seconds": 1.0,
        "rounds": 3,
        "more_rounds": 4,
        "truth_spread": 0.04,
        "cases": [
            {
                "arch": "net",
                "layout": "nchw",
                "original_ms": 10.0,
                "variants": [row],
                "summary": {"profile": summary | {"within_10pct": 1, "n": 1}},
            }
        ],
    }


def test_the_report_says_how_far_the_first_rounds_were_from_all_of_them():
    results = _results([0.205, 0.207, 0.185, 0.186, 0.184, 0.186, 0.185], 0.182)
    (line,) = more_rounds_lines(results)[1:]
    assert "1 variants got more rounds" in line
    assert "10.2 % from all" in line  # 0.205 against 0.186
    assert "11.2 %" in line and "2.2 %" in line  # 0.182 against 0.205, and against 0.186
    text = report(results)
    assert "4 more rounds for a variant whose first 3" in text and "(7 rounds)" in text
    assert more_rounds_lines(_results([0.12, 0.121, 0.119], 0.12)) == []
