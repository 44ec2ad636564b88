"""Models timed run by run in turn (stats.sample_alternating, Runner.measure_alternating,
interleave.alternating_stats), and the CPU identity in host runners' fingerprints."""

from __future__ import annotations

import pytest

from onnx_netadapt.measure.event_cost import event_chain_model
from onnx_netadapt.measure.host import cpu_identity
from onnx_netadapt.measure.interleave import alternating_stats, stats_ratios
from onnx_netadapt.measure.registry import get_runner
from onnx_netadapt.measure.stats import LatencyStats, MeasureSettings, sample_alternating

TINY = MeasureSettings(warmup=2, min_runs=6, max_runs=9, max_seconds=0.0)


def test_each_turn_runs_one_untimed_then_a_burst_of_timed_runs_of_each_model() -> None:
    calls: list[str] = []

    def run(name: str, ms: float):
        def once() -> float:
            calls.append(name)
            return ms

        return once

    samples = sample_alternating([run("a", 1.0), run("b", 2.0)], TINY, burst=3)
    warmup = ["a", "a", "b", "b"]
    turn = ["a"] * 4 + ["b"] * 4  # one untimed run, then three timed, of each
    assert calls == warmup + turn * 2  # min_runs 6: two turns of three
    assert samples == [[1.0] * 6, [2.0] * 6]


def test_alternating_stops_at_max_runs_however_long_time_allows() -> None:
    settings = MeasureSettings(warmup=0, min_runs=1, max_runs=7, max_seconds=60.0)
    samples = sample_alternating([lambda: 1.0, lambda: 1.0], settings, burst=3)
    assert [len(s) for s in samples] == [9, 9]  # three turns: the third passes 7


class _RoundsOnly:
    """A runner that cannot keep two models loaded: measure_alternating gives None."""

    def __init__(self) -> None:
        self.measured: list[float] = []

    def measure_alternating(self, models):
        return None

    def measure(self, model: float) -> LatencyStats:
        self.measured.append(model)
        return LatencyStats.from_samples([model])


def test_a_runner_that_cannot_alternate_is_measured_in_rounds() -> None:
    runner = _RoundsOnly()
    stats = alternating_stats(runner, 1.0, 4.0, rounds=2)  # type: ignore[arg-type]
    assert runner.measured == [4.0, 1.0, 4.0, 1.0]
    assert stats_ratios(stats)[0] == pytest.approx([0.25, 0.25])


def test_ort_times_two_loaded_models_by_turns() -> None:
    short, long = event_chain_model(3), event_chain_model(33)
    with get_runner("ort")(settings=TINY) as runner:
        stats = runner.measure_alternating([short, long])
        assert stats is not None and len(stats) == 2
        assert all(s.n >= TINY.min_runs and s.min_ms is not None for s in stats)
        ratios, _ = stats_ratios(alternating_stats(runner, long, short, rounds=2), "p10")
    assert len(ratios) == 2 and all(r > 1.0 for r in ratios)  # 33 nodes take longer than 3


ZEN4 = "model name : AMD EPYC\ncpu family : 25\nmodel : 17\nflags : fpu avx2 fma avx512f"
ZEN3 = "model name : AMD EPYC\ncpu family : 25\nmodel : 1\nflags : fpu avx2 fma"
ARM = "processor : 0\nFeatures : fp asimd asimddp i8mm\nCPU implementer : 0x41\nCPU part : 0xd0c"


def test_two_generations_of_one_brand_have_different_identities() -> None:
    assert cpu_identity(ZEN4) == "AMD EPYC (cpu family 25, model 17, avx2, fma, avx512f)"
    assert cpu_identity(ZEN3) == "AMD EPYC (cpu family 25, model 1, avx2, fma)"


def test_an_arm_cpu_is_told_by_its_part_and_features() -> None:
    identity = cpu_identity(ARM)
    assert "CPU part 0xd0c" in identity and "asimddp" in identity and "i8mm" in identity


def test_the_ort_fingerprint_carries_the_cpu_identity() -> None:
    with get_runner("ort")() as runner:
        assert cpu_identity() in runner.fingerprint()["device"]
