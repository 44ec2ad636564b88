"""benchmarks/overhead_replay.py: committed fidelity runs replayed with the predicted overhead."""

from __future__ import annotations

import json

import pytest

from benchmarks import overhead_replay


def _run(overhead_ms: float) -> dict:
    """A fidelity run of one case: a 10 ms original profiled at 10 - overhead_ms in 50 units,
    one pruning estimated at 2 ms of parts, measured at 2 ms."""
    calibration = {"overhead_ms": overhead_ms, "profiled_ms": 10.0 - overhead_ms}
    calibration |= {"internal_ms": 0.0, "units": 50}
    variant = {"variant": "keep 0.3", "measured_ms": 2.0, "estimates": {"profile": 2.0}}
    variant["estimates"]["profile"] = overhead_ms + 2.0
    case = {"arch": "net", "layout": "nchw", "calibrations": {"profile": calibration}}
    return {"cases": [case | {"variants": [variant]}]}


def test_a_noisy_measured_overhead_is_replaced_by_the_prediction(tmp_path):
    # predicted: 0.004 + 50 * (0.0005 - 0.002) = -0.071 ms
    (tmp_path / "fold_run4_ort.json").write_text(json.dumps(_run(0.5)))
    overhead_replay.main(["--folder", str(tmp_path), "--costs", "2", "0.5", "4"])
    rows = json.loads((tmp_path / "overhead_replay.json").read_text())["rows"]
    assert len(rows) == 1
    row = rows[0]
    assert row["model_overhead_ms"] == pytest.approx(-0.071)
    assert row["run"] == "fold_run4"
    assert row["errors_as_run"] == [pytest.approx(25.0)]  # 2.5 estimated for 2.0
    # parts 2.0 scaled by (10 + 0.071) / 9.5, plus -0.071
    expected = -0.071 + 2.0 * 10.071 / 9.5
    assert row["errors_replayed"] == [pytest.approx(100 * (expected / 2.0 - 1))]
    assert not row["as_run"]["met"] and row["as_replayed"]["met"]
    text = (tmp_path / "overhead_replay.md").read_text()
    assert "| fold_run4 | profile | net:nchw | +0.500 | -0.071 |" in text


def test_no_runs_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="no fidelity runs"):
        overhead_replay.main(["--folder", str(tmp_path)])
