"""benchmarks/entry_tables.py: two saved kernel tables read side by side (made-up tables)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from benchmarks import entry_tables
from onnx_netadapt.measure.signature import LayerSignature

ORIGINAL = LayerSignature("Conv", 32, 48, (8, 8), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))
PRUNED = LayerSignature("Conv", 32, 24, (8, 8), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))


def _table(path: Path, entries: dict[LayerSignature, float], entry: str = "kernel-in-context"):
    data = {
        "tables": {
            "a": {"fingerprint": {"runner": "ort"}, "entries": {}},
            "b": {
                "fingerprint": {"runner": "ort", "entry": entry},
                "entries": {s.key(): {"median_ms": ms} for s, ms in entries.items()},
            },
        }
    }
    text = json.dumps(data)
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def test_each_tables_ratio_of_a_pruned_layer_to_its_original(tmp_path: Path) -> None:
    first = entry_tables.read_kernel_entries(
        _table(tmp_path / "1.json", {ORIGINAL: 0.4, PRUNED: 0.2})
    )
    second = entry_tables.read_kernel_entries(
        _table(tmp_path / "2.json.gz", {ORIGINAL: 0.5, PRUNED: 0.3})
    )
    rows = entry_tables.layer_ratios(
        [first, second], {"conv": ORIGINAL, "same": ORIGINAL}, {"conv": PRUNED, "same": ORIGINAL}
    )
    assert [r["layer"] for r in rows] == ["conv"]  # an unpruned layer is left out
    assert rows[0]["ratio"] == pytest.approx([0.5, 0.6])
    assert rows[0]["channels"] == [48, 24]


def test_a_file_without_one_kernel_table_is_refused(tmp_path: Path) -> None:
    cold = _table(tmp_path / "cold.json", {ORIGINAL: 0.4}, entry="kernel-in-context-cold-16MiB")
    with pytest.raises(SystemExit, match="0 tables"):
        entry_tables.read_kernel_entries(cold)


def test_arguments_are_checked_before_anything_is_read(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        entry_tables.main([str(tmp_path / "missing.json")])
    table = _table(tmp_path / "t.json", {ORIGINAL: 0.4})
    with pytest.raises(SystemExit):
        entry_tables.main([str(table), "--keep", "1.5"])
