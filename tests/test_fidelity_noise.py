"""benchmarks/fidelity_noise.py: the spread of the same variant's measured ratio over runs, and
the default estimate's error against its own run and against the consensus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import fidelity_noise


def _run(
    folder: Path, name: str, ratio: float, estimate_ratio: float | None, canary: float | None = None
) -> None:
    variants = [{"variant": "keep 0.5", "ratio": ratio, "estimates": {}}]
    variants.append({"variant": "random 0", "ratio": 0.9, "estimates": {}})  # not a fixed one
    if estimate_ratio is not None:
        variants[0]["estimates"]["profile"] = estimate_ratio * 2.0
    if canary is not None:
        variants[0]["estimates"]["profile_canary"] = canary * 2.0
    case = {"arch": "net", "layout": "nhwc", "original_ms": 2.0, "variants": variants}
    (folder / f"{name}_ort.json").write_text(json.dumps({"cases": [case]}))


def test_spread_and_errors_against_own_run_and_consensus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fidelity_noise, "DEFAULT_COLUMN", {"a": "profile", "b": "profile"})
    _run(tmp_path, "a", 0.30, 0.32)  # +6.7 % against its run, -3.0 % against the consensus
    monkeypatch.setattr(fidelity_noise, "CANARY_COLUMN", {"b": "profile_canary"})
    _run(tmp_path, "b", 0.36, 0.34, canary=0.378)  # -5.6 % against its run, +3.0 %; canary +5 %
    _run(tmp_path, "old", 0.33, None)  # measured only (an older estimator's run)
    (row,) = fidelity_noise.summarise(fidelity_noise.fixed_variants(tmp_path))
    assert row["runs"] == 3 and row["estimated_runs"] == 2
    assert row["measured_mean"] == pytest.approx(0.33)
    assert row["measured_range_pct"] == pytest.approx(100 * 0.06 / 0.33)
    assert row["error_own_pct"] == pytest.approx([100 * 0.02 / 0.30, -100 * 0.02 / 0.36])
    assert row["error_consensus_pct"] == pytest.approx([-100 / 33, 100 / 33])
    assert row["bias_consensus_pct"] == pytest.approx(0.0, abs=1e-9)
    text = fidelity_noise.report([row], "cmd", tmp_path)
    assert "| net:nhwc | keep 0.5 | 3 | 0.330 |" in text
    assert "within 10 % of its own run's measurement in 2/2" in text
    assert json.loads((tmp_path / "noise.json").read_text())["rows"][0]["runs"] == 3
    (canary,) = fidelity_noise.summarise(
        fidelity_noise.fixed_variants(tmp_path, {"b": "profile_canary"})
    )
    assert canary["error_own_pct"] == pytest.approx([5.0])
    text = fidelity_noise.report([row], "cmd", tmp_path, [canary])
    assert "in the 1 runs that had it: within 10 % of its own run's measurement in 1/1 " in text
    assert "(plain: 5.6 %)" in text  # the plain estimate in the same run only


def test_within_run_noise_from_the_runs_that_kept_every_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fidelity_noise, "DEFAULT_COLUMN", {"a": "profile", "b": "profile"})
    _run(tmp_path, "a", 0.30, 0.31)  # no rounds kept
    _run(tmp_path, "b", 0.36, 0.35)
    data = json.loads((tmp_path / "b_ort.json").read_text())
    data["cases"][0]["variants"][0]["round_ratios"] = [0.34, 0.35, 0.36, 0.37, 0.38]
    (tmp_path / "b_ort.json").write_text(json.dumps(data))
    (row,) = fidelity_noise.summarise(fidelity_noise.fixed_variants(tmp_path))
    w = row["within_run"]
    assert w["runs"] == 1
    assert w["round_sd_pct"] == pytest.approx(100 * 0.0158114 / 0.36, rel=1e-4)
    # the medians of the 10 subsets of 3: 0.35 x3, 0.36 x4, 0.37 x3
    assert w["median_of_3_sd_pct"] == pytest.approx(100 * (0.6e-4**0.5) / 0.36, rel=1e-3)
    text = fidelity_noise.report([row], "cmd", tmp_path)
    assert "| net:nhwc | keep 0.5 | 1 | 4.4 | 2.2 |" in text
    assert fidelity_noise.within_run([{"round_ratios": [1.0, 1.1, 1.2]}]) is None  # too few


def test_other_benchmarks_results_in_the_folder_are_left_out(tmp_path: Path) -> None:
    _run(tmp_path, "a", 0.5, 0.5)
    drift = {
        "cases": [
            {
                "arch": "net",
                "layout": "nhwc",
                "measured_ms": [2.0],
                "variants": [{"variant": "keep 0.5", "truth": [0.5], "estimates": [[0.5]]}],
            }
        ]
    }
    (tmp_path / "drift_run1_ort.json").write_text(json.dumps(drift))  # estimate_drift's
    variants = fidelity_noise.fixed_variants(tmp_path, {"a": "profile"})
    assert [r["run"] for r in variants[("net:nhwc", "keep 0.5")]] == ["a"]
