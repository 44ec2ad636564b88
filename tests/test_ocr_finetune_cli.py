"""benchmarks/ocr_finetune.py refuses a --model that is not a file before doing any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import ocr_finetune


def test_missing_model_exits_2_and_writes_nothing(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        ocr_finetune.main(["--model", str(tmp_path / "absent.onnx"), "--out", str(out)])
    assert exit_info.value.code == 2
    assert "is not a file" in capsys.readouterr().err
    assert not out.exists()
