"""benchmarks/estimate_units.py: bad arguments are refused before anything is measured."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import estimate_units


@pytest.mark.parametrize("keep", ["0", "1.5", "-0.3"])
def test_a_keep_outside_zero_one_is_refused_before_anything_is_measured(
    keep: str, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "units.json"
    with pytest.raises(SystemExit):
        estimate_units.main(["resnet50:nhwc", "--keep", "0.5", keep, "--json", str(out)])
    assert "is outside (0, 1]" in capsys.readouterr().err
    assert not out.exists()


def test_activation_elements_of_a_conv_and_a_gemm() -> None:
    from onnx_netadapt.measure.signature import LayerSignature

    conv = LayerSignature("Conv", 8, 16, (10, 10), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1))
    assert estimate_units.activation_elements(conv) == (8 * 100, 16 * 25)
    gemm = LayerSignature("Gemm", 32, 10, rows=4)
    assert estimate_units.activation_elements(gemm) == (128, 40)
