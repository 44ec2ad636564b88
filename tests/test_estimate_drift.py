"""benchmarks/estimate_drift.py: the crossed estimate reproduces the estimator, and its spread
is split between the profile and the kernel entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from models import CASES
from test_estimate_fidelity import FakeRunner

from benchmarks import estimate_drift
from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.measure.estimate import Estimator
from onnx_netadapt.measure.table import LatencyTable


def test_the_same_calibration_twice_is_the_estimators_estimate() -> None:
    with FakeRunner() as runner:
        _the_same_calibration_twice(runner)


def _the_same_calibration_twice(runner: FakeRunner) -> None:
    original = load_model(CASES["residual_chain"].build())
    pruned = load_model(prune(analyse(original), ratio=0.5).model, fold=False)
    calibration = estimate_drift.one_calibration(runner, original, {"keep 0.5": pruned})
    measured = calibration["measured_ms"]
    estimator = Estimator(runner, LatencyTable(runner.fingerprint()), mode="profile")
    estimator.calibrate(original, measured_ms=measured)
    expected = estimator.estimate(pruned) / measured
    crossed = estimate_drift.crossed_ratio(original, pruned, calibration, calibration, "keep 0.5")
    assert crossed == pytest.approx(expected, rel=1e-9)
    assert calibration["truth"]["keep 0.5"] < 1.0  # the pruning measured faster


def test_another_calibrations_entries_move_the_estimate() -> None:
    original = load_model(CASES["residual_chain"].build())
    pruned = load_model(prune(analyse(original), ratio=0.5).model, fold=False)
    with FakeRunner() as runner:
        first = estimate_drift.one_calibration(runner, original, {"keep 0.5": pruned})
    slow = {
        **first,
        "pruned_entries": {
            "keep 0.5": {name: 2 * ms for name, ms in first["pruned_entries"]["keep 0.5"].items()}
        },
    }
    same = estimate_drift.crossed_ratio(original, pruned, first, first, "keep 0.5")
    assert estimate_drift.crossed_ratio(original, pruned, first, slow, "keep 0.5") > same


def test_the_spread_goes_to_the_part_that_moved() -> None:
    by_profile = [[1.0, 1.0, 1.0], [1.1, 1.1, 1.1], [0.9, 0.9, 0.9]]  # rows: whose profile
    parts = estimate_drift.decompose(by_profile)
    assert parts["profile_sd_pct"] == pytest.approx(10.0)
    assert parts["entries_sd_pct"] == pytest.approx(0.0)
    assert parts["diagonal_sd_pct"] == pytest.approx(10.0)
    by_entries = [list(row) for row in zip(*by_profile, strict=True)]  # columns: whose entries
    parts = estimate_drift.decompose(by_entries)
    assert parts["entries_sd_pct"] == pytest.approx(10.0)
    assert parts["profile_sd_pct"] == pytest.approx(0.0)


def test_one_repeat_is_refused() -> None:
    with pytest.raises(SystemExit):
        estimate_drift.main(["resnet50:nhwc", "--repeats", "1"])


def test_no_profile_round_is_refused_before_anything_is_measured(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        estimate_drift.main(["resnet50:nhwc", "--rounds", "0", "--out", str(tmp_path)])
    assert "--rounds must be at least 1" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def _run(truth: list[float], estimates: list[float]) -> dict:
    """A drift run's JSON with one case and one pruning (the crossed matrix's diagonal only
    matters here)."""
    n = len(truth)
    matrix = [[estimates[i] if i == j else 0.0 for j in range(n)] for i in range(n)]
    row = {"variant": "keep 0.5", "truth": truth, "estimates": matrix}
    return {"cases": [{"arch": "net", "layout": "nhwc", "variants": [row]}]}


def test_a_shift_between_runs_is_told_from_the_noise_inside_them() -> None:
    runs = {"a": _run([0.5, 0.5], [0.45, 0.45]), "b": _run([0.6, 0.6], [0.6, 0.6])}
    (row,) = estimate_drift.inside_and_between(runs)
    assert row["truth_inside_sd_pct"] == pytest.approx(0.0)
    assert row["truth_between_sd_pct"] > 10.0
    assert row["estimate_between_sd_pct"] > 10.0
    assert row["run_errors_pct"] == pytest.approx([-10.0, 0.0])


def test_the_summary_reads_the_named_runs_and_measures_nothing(tmp_path: Path) -> None:
    for name, shift in (("r1", 0.0), ("r2", 0.1)):
        data = _run([0.5 + shift, 0.52 + shift], [0.5, 0.5])
        (tmp_path / f"{name}_ort.json").write_text(json.dumps(data))
    estimate_drift.main(["--summarise", "r1", "r2", "--out", str(tmp_path)])
    text = (tmp_path / "drift_runs.md").read_text()
    assert "| net:nhwc | keep 0.5 | 2 |" in text


def test_a_missing_run_is_named_and_nothing_is_written(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        estimate_drift.main(["--summarise", "nowhere", "--out", str(tmp_path)])
    assert "no run nowhere" in capsys.readouterr().err
    assert not (tmp_path / "drift_runs.md").exists()
