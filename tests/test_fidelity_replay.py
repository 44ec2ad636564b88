"""The replay of fidelity runs: a calibration record and the run's kernel table give the run's
own estimate again, and the other rules change only how a unit's excess is read."""

from __future__ import annotations

from pathlib import Path

import pytest
from models import CASES
from test_excess_by_turns import EXCESS, SlowingRunner

from benchmarks import fidelity_replay
from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.measure.calibration import ProfileCalibration
from onnx_netadapt.measure.estimate import Estimator
from onnx_netadapt.measure.strategies import ProfileStrategy
from onnx_netadapt.measure.table import LatencyTable


def _calibrated(tmp_path: Path) -> tuple[Estimator, dict, Path]:
    """A profile estimator calibrated on a small conv chain, a run's case that holds its
    record and a keep-0.5 pruning measured 10 % slower than estimated, and its table file."""
    loaded = load_model(CASES["conv_bn_relu_chain"].build())
    strategy = ProfileStrategy(event_cost=False, model_overhead=False, rounds=3)
    path = tmp_path / "run_table.json"
    with SlowingRunner() as runner:
        estimator = Estimator(runner, LatencyTable(runner.fingerprint(), path), mode=strategy)
        estimator.calibrate(loaded)
        pruned = prune(analyse(loaded), ratio=0.5).model
        estimate = estimator.estimate(pruned)
    record = estimator.calibration.base.profile.to_dict()
    case = {
        "arch": "chain",
        "layout": "nchw",
        "calibrations": {"profile": {"record": record}},
        "variants": [
            {
                "variant": "keep 0.5",
                "measured_ms": estimate / 1.1,
                "errors_pct": {"profile": 10.0},
            }
        ],
    }
    return estimator, case, path


def test_the_record_keeps_each_units_rounds(tmp_path: Path) -> None:
    _, case, _ = _calibrated(tmp_path)
    record = ProfileCalibration.from_dict(case["calibrations"]["profile"]["record"])
    units = [u for u in record.units if u.filters]
    assert units
    for unit in units:
        assert len(unit.round_ms) == len(unit.round_kernel_ms) == 3
        assert unit.kernel_ms == pytest.approx(unit.ms / EXCESS)
        # the runner's conv is EXCESS times slower inside the network, round by round
        for n, k in zip(unit.round_ms, unit.round_kernel_ms, strict=True):
            assert n == pytest.approx(k * EXCESS)


def test_as_run_gives_the_runs_own_estimate_from_the_table_file(tmp_path: Path) -> None:
    _, case, path = _calibrated(tmp_path)
    entries = fidelity_replay.kernel_entries(path)
    assert entries  # the kernel section only: the plain table is empty
    loaded = load_model(CASES["conv_bn_relu_chain"].build())
    networks = {"keep 0.5": prune(analyse(loaded), ratio=0.5).model}
    replayed = fidelity_replay.replay_case(case, networks, entries, fidelity_replay.RULES)
    row = replayed["rows"][0]
    assert row["errors_pct"]["as_run"] == pytest.approx(10.0)
    # on a steady runner every round's share is the same: the fastest rounds' too
    assert row["errors_pct"]["fastest"] == pytest.approx(10.0)
    assert row["errors_pct"]["linear"] > 10.0  # the excess shrinks slower: a larger estimate


def test_the_records_excess_share_is_read_when_estimating(tmp_path: Path) -> None:
    _, case, path = _calibrated(tmp_path)
    record = ProfileCalibration.from_dict(case["calibrations"]["profile"]["record"])
    unit = next(u for u in record.units if u.filters)
    unit.round_kernel_ms[1] *= 3.0  # one round caught its kernel in a slow moment
    unit.round_kernel_ms[2] *= 3.0  # and another: the median share moves, the fastest not
    loaded = load_model(CASES["conv_bn_relu_chain"].build())
    pruned = prune(analyse(loaded), ratio=0.5).model
    entries = fidelity_replay.kernel_entries(path)
    median = fidelity_replay.estimate_with(record, pruned, entries)
    record.excess_share = "fastest"
    fastest = fidelity_replay.estimate_with(record, pruned, entries)
    unit.round_kernel_ms[1] /= 3.0
    unit.round_kernel_ms[2] /= 3.0
    steady = fidelity_replay.estimate_with(record, pruned, entries)
    assert fastest == pytest.approx(steady)
    # no excess left to shrink faster than the kernel: the median reads a larger estimate
    assert median > steady * 1.001


def test_a_rule_changes_only_its_fields_of_the_record() -> None:
    record = ProfileCalibration(10.0, 0.0, 0.0, [], 0.0, 0)
    fastest = fidelity_replay.with_rule(record, fidelity_replay.RULES["fastest"])
    assert fastest.excess_share == "fastest" and record.excess_share == "median"
    assert fastest.excess_power == record.excess_power
    with pytest.raises(ValueError, match="no field"):
        fidelity_replay.with_rule(record, {"excess_sharee": "fastest"})


def test_score_and_report_say_whether_the_goal_was_met() -> None:
    assert fidelity_replay.score([1.0, -4.0, 9.9])["met"]
    assert not fidelity_replay.score([1.0, 10.5])["met"]
    assert not fidelity_replay.score([6.0, -6.0])["met"]  # mean over 5 %
    runs = [
        {
            "run": "r1",
            "cases": [
                {
                    "case": "a:nchw",
                    "rows": [
                        {
                            "variant": "keep 0.3",
                            "run_error_pct": 12.0,
                            "errors_pct": {"as_run": 12.0, "fastest": 3.0},
                        }
                    ],
                }
            ],
        }
    ]
    text = fidelity_replay.report(runs, ["as_run", "fastest"], "cmd")
    assert "| as_run | 0/1, 0/1, 12.0 %, +12.0 % | 0/1, 0/1, 12.0 %, +12.0 % |" in text
    assert "| fastest | 1/1, 1/1, 3.0 %, +3.0 % |" in text
    assert "largest difference 0.000 points" in text
