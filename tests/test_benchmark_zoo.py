"""The benchmark zoo's subprocess export (``benchmarks/zoo/``): the child is started as
``python -m benchmarks.zoo export`` and its outcome comes back as an ``ExportResult``."""

from __future__ import annotations

from pathlib import Path

from benchmarks import zoo


def test_export_reports_the_childs_error_and_writes_nothing(tmp_path: Path) -> None:
    model = zoo.ZooModel("torchvision", "no_such_net", "none", (3, 32, 32), 0.0)
    out = tmp_path / "models" / f"{model.key}.onnx"
    result = zoo.export(model, "legacy", out, timeout_s=120)
    assert not result.ok
    # The child's own exception summary (torchvision's unknown-model error, or the missing
    # torchvision itself), not a bare exit status: proves the child ran the zoo's CLI.
    assert result.error is not None and "exit status" not in result.error
    assert "no_such_net" in result.error or "torchvision" in result.error
    assert result.stderr_tail
    assert sorted(p.name for p in out.parent.iterdir()) == []


def test_export_timeout_leaves_no_temporaries(tmp_path: Path) -> None:
    model = zoo.ZooModel("torchvision", "squeezenet1_1", "squeezenet", (3, 32, 32), 0.0)
    out = tmp_path / f"{model.key}.onnx"
    result = zoo.export(model, "legacy", out, timeout_s=1)
    assert not result.ok and result.error == "timeout after 1 s"
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_reused(tmp_path: Path) -> None:
    model = zoo.ZooModel("timm", "cached_net", "none", (3, 32, 32), 0.0)
    out = tmp_path / f"{model.key}.onnx"
    out.write_bytes(b"12345")
    result = zoo.export(model, "dynamo", out)
    assert result.ok and result.cached and result.size_bytes == 5
