"""examples/pipeline: an unattended pipeline step driven by --json and the exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from adapt_models import build_tiny_digits

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "pipeline" / "run.py"
FAST = ["--input-shape", "image:1,1,8,8", "--step", "0.2", "--short-steps", "5"]
FAST += ["--long-epochs", "0.5", "--batch-size", "32"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_digits(tmp_path_factory.mktemp("pipe") / "tiny.onnx")


def _run(tiny: Path, budget: str, out: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), str(tiny), "--budget", budget, "--out", str(out)]
    command += ["--target", "macs", "--min-accuracy", "0.5", *FAST]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)


def test_pipeline_ships_an_adapted_model(tiny: Path, tmp_path: Path) -> None:
    done = _run(tiny, "0.75", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    decision = json.loads(done.stdout.strip().splitlines()[-1])
    assert decision["decision"] == "ship" and decision["latency_ratio"] <= 0.75
    assert Path(decision["model"]).exists()
    again = _run(tiny, "0.75", tmp_path / "run")  # re-run: resumes the finished run
    assert again.returncode == 0 and json.loads(again.stdout.strip().splitlines()[-1]) == decision


def test_pipeline_keeps_the_original_when_the_budget_is_unreachable(
    tiny: Path, tmp_path: Path
) -> None:
    done = _run(tiny, "0.02", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("keep the original: the budget cannot be met")
