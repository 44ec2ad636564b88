"""The code base stays ruff clean (lint and format), as CI checks through this test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args", [["check"], ["format", "--check"]])
def test_ruff(args):
    ruff = shutil.which("ruff")
    assert ruff, "ruff is part of the dev extra: pip install -c constraints.txt -e '.[dev]'"
    proc = subprocess.run([ruff, *args, "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
