"""Test models stay readable by older ONNX Runtimes (IR version 10 at most)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from models import CASES
from onnx_compat import MAX_TEST_IR_VERSION

TESTS = Path(__file__).parent


def test_every_test_builds_models_through_onnx_compat() -> None:
    direct = [
        f"{path.name}:{number}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.name != "onnx_compat.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"\bhelper\.make_model\(", line)
    ]
    assert not direct, (
        "build test models with onnx_compat.make_model (helper.make_model stamps an IR version "
        f"ONNX Runtime 1.30 refuses): {direct}"
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_tiny_cases_use_an_old_ir_version(name: str) -> None:
    assert CASES[name].build().ir_version <= MAX_TEST_IR_VERSION
