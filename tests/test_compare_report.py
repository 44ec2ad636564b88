"""benchmarks/compare_report.py: the MNIST-5k comparison's table, speed-ups and plot from saved
points (made up here: no training)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from benchmarks import compare_report
from benchmarks.compare import BUDGETS, CURVE

# the multiplier's (latency ratio, accuracy) per budget; netadapt-ort sits at 0.7x its latency
MULTIPLIER = {0.75: (0.7, 0.88), 0.5: (0.5, 0.86), 0.35: (0.33, 0.84)}


def _points(seeds: list[int]) -> list[dict]:
    rows = [("base", 1.0, 1.0, 0.90, {})]
    for budget, (lat, acc) in MULTIPLIER.items():
        rows.append(("multiplier", budget, lat, acc, {"width": 0.5}))
        rows.append(("netadapt-ort", budget, 0.7 * lat, acc, {"iteration": 3}))
        rows.append(("netadapt-macs", budget, 0.8 * lat, acc - 0.005, {"iteration": 2}))
        rows.append(("uniform", budget, lat, acc - 0.01, {"ratio": 0.6}))
    rows.append((CURVE, None, 0.2, 0.80, {"width": 0.25}))
    return [
        {
            "arch": "net",
            "seed": seed,
            "method": method,
            "budget": budget,
            "latency_ms": 2.0 * lat,
            "latency_ratio": lat,
            "val_accuracy": acc,
            "mmacs": 1.0,
            "steps": 10,
            **extra,
        }
        for seed in seeds
        for method, budget, lat, acc, extra in rows
    ]


def test_report_tables_and_speedup_over_the_multiplier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compare_report, "RESULTS", tmp_path)
    (tmp_path / "points.json").write_text(json.dumps({"points": _points([0, 1]), "cpu": "x"}))
    compare_report.cmd_report(argparse.Namespace(work=tmp_path / "work"))
    md = (tmp_path / "compare.md").read_text()
    assert "Base network: 90.00 ± 0.00% at 2.0000 ms." in md
    assert "| 0.5 | netadapt-ort | 0.350 | 86.00 ± 0.00 | 1.00 | 10 | iteration [3] |" in md
    assert "| 0.35 | uniform | 0.330 | 83.00 ± 0.00 | 1.00 | 10 | ratio [0.6] |" in md
    assert "| below | multiplier-curve | 0.200 | 80.00 ± 0.00 | 1.00 | 10 | width 0.25 |" in md
    assert "| 0.75 | netadapt-macs | 0.560 | 87.50 ± 0.00 | 1.00 | 10 | iteration [2] |" in md
    speed = json.loads((tmp_path / "summary.json").read_text())["speedup_vs_multiplier"]["net"]
    assert len(speed) == len(BUDGETS)
    for row in speed:
        assert row["bound"] == "=" and row["speedup"] == pytest.approx(1 / 0.7)
    assert "speed-up = x1.43" in md
    assert (tmp_path / "compare.png").stat().st_size > 0
