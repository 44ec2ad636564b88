"""Fashion-MNIST as builtin data: IDX files, the fashion-mnist:DIR form, @HxW resizing, errors.

Every test writes its own tiny IDX files: none needs the Debian package.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from onnx_netadapt.cli import main
from onnx_netadapt.data import idx as idx_module
from onnx_netadapt.data import load_data
from onnx_netadapt.data.builtin import load_builtin, parse_builtin
from onnx_netadapt.data.resize import resize_bilinear
from onnx_netadapt.errors import DataError
from tests.adapt_models import build_tiny_digits
from tests.fashion_files import SIDE, TEST_N, TRAIN_N, make_fashion, write_idx


@pytest.fixture
def fashion(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    folder = tmp_path / "fashion"
    return folder, make_fashion(folder)


def test_folder_form_reads_train_and_test_files(fashion) -> None:
    folder, arrays = fashion
    train, val = load_builtin(f"fashion-mnist:{folder}")
    assert train.x.shape == (TRAIN_N, 1, SIDE, SIDE) and train.x.dtype == np.float32
    assert val.x.shape == (TEST_N, 1, SIDE, SIDE)
    np.testing.assert_allclose(train.x[:, 0], arrays["train-images-idx3-ubyte"] / 255.0)
    np.testing.assert_array_equal(val.y, arrays["t10k-labels-idx1-ubyte"])
    assert val.y.dtype == np.int64
    train.x[:] = 0  # fresh arrays per call: the cache is not changed
    assert load_builtin(f"fashion-mnist:{folder}")[0].x.max() > 0


def test_uncompressed_files_are_read_too(tmp_path: Path) -> None:
    arrays = make_fashion(tmp_path / "plain", compress=False)
    _, val = load_builtin(f"fashion-mnist:{tmp_path / 'plain'}")
    np.testing.assert_allclose(val.x[:, 0], arrays["t10k-images-idx3-ubyte"] / 255.0)


def test_default_folder_is_the_debian_package(fashion, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, arrays = fashion
    monkeypatch.setattr(idx_module, "FASHION_DIR", folder)
    train, _ = load_builtin("fashion-mnist")
    np.testing.assert_array_equal(train.y, arrays["train-labels-idx1-ubyte"])


def test_load_data_validates_on_test_and_carves_holdout_from_train(fashion) -> None:
    folder, arrays = fashion
    splits = load_data(f"fashion-mnist:{folder}", (1, 1, SIDE, SIDE), holdout_per_class=2)
    assert len(splits.val) == TEST_N  # the whole test file, nothing carved from it
    np.testing.assert_array_equal(splits.val.y, arrays["t10k-labels-idx1-ubyte"])
    assert len(splits.holdout) == 20 and len(splits.train) == TRAIN_N - 20
    rows = [{r.tobytes() for r in part.x} for part in (splits.train, splits.holdout, splits.val)]
    assert not rows[0] & rows[1] and not rows[0] & rows[2] and not rows[1] & rows[2]
    assert splits.num_classes == 10 and splits.source == f"builtin:fashion-mnist:{folder}"


def test_resize_suffix_gives_bilinear_images_of_that_size(fashion) -> None:
    folder, _ = fashion
    train, val = load_builtin(f"fashion-mnist:{folder}")
    big_train, big_val = load_builtin(f"fashion-mnist:{folder}@56x40")
    assert big_train.x.shape == (TRAIN_N, 1, 56, 40) and big_val.x.shape == (TEST_N, 1, 56, 40)
    want = torch.nn.functional.interpolate(
        torch.from_numpy(val.x), size=(56, 40), mode="bilinear", align_corners=False
    ).numpy()
    np.testing.assert_allclose(big_val.x, want, atol=1e-5)
    np.testing.assert_array_equal(big_train.y, train.y)
    splits = load_data(f"fashion-mnist:{folder}@56x40", (1, 1, 56, 40), holdout_per_class=1)
    assert splits.val.x.shape[1:] == (1, 56, 40)


@pytest.mark.parametrize("size", [(56, 56), (14, 14), (9, 31), (28, 28)])
def test_resize_matches_torch_bilinear(size: tuple[int, int]) -> None:
    x = np.random.default_rng(1).random((3, 2, 28, 28), dtype=np.float32)
    want = torch.nn.functional.interpolate(
        torch.from_numpy(x), size=size, mode="bilinear", align_corners=False
    ).numpy()
    np.testing.assert_allclose(resize_bilinear(x, size), want, atol=1e-5)


def test_resize_applies_to_every_builtin() -> None:
    train, val = load_builtin("digits@16x12")
    assert train.x.shape[1:] == (1, 16, 12) and val.x.shape[1:] == (1, 16, 12)


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("fashion-mnist", ("fashion-mnist", None, None)),
        ("fashion-mnist@56x56", ("fashion-mnist", None, (56, 56))),
        ("fashion-mnist:/d/x@32x48", ("fashion-mnist", Path("/d/x"), (32, 48))),
        ("mnist5k@56x56", ("mnist5k", None, (56, 56))),
        ("mnist5k:/d", None),  # only fashion-mnist reads a folder
        ("fashion-mnist:", None),
        ("pkg.mod:fn", None),
        ("data.npz", None),
    ],
)
def test_parse_builtin(spec: str, parsed) -> None:
    got = parse_builtin(spec)
    assert (None if got is None else (got.name, got.folder, got.size)) == parsed


@pytest.mark.parametrize("size", ["56", "0x56", "56x", "axb", "5000x5000"])
def test_malformed_size_is_a_clear_error(size: str) -> None:
    with pytest.raises(DataError, match="HxW"):
        parse_builtin(f"fashion-mnist@{size}")


def test_missing_files_name_the_apt_command_and_the_folder_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idx_module, "FASHION_DIR", tmp_path / "absent")
    with pytest.raises(DataError) as info:
        load_builtin("fashion-mnist")
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "fashion-mnist:DIR" in message and "is not a folder" in message
    partial = tmp_path / "partial"
    make_fashion(partial)
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"lacks t10k-labels-idx1-ubyte\.gz"):
        load_builtin(f"fashion-mnist:{partial}")


@pytest.mark.parametrize("damage", ["magic", "truncated", "count", "gzip"])
def test_damaged_files_are_data_errors(fashion, damage: str) -> None:
    folder, _ = fashion
    path = folder / "train-labels-idx1-ubyte.gz"
    if damage == "magic":
        path.write_bytes(gzip.compress(b"\x00\x00\x0d\x01" + bytes(8)))
    elif damage == "truncated":
        path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-5]))
    elif damage == "count":
        write_idx(path, np.zeros(TRAIN_N - 1, dtype=np.uint8))
    else:
        path.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="train-labels-idx1-ubyte"):
        load_builtin(f"fashion-mnist:{folder}")


def test_cli_exit_code_8_for_missing_fashion_mnist(tmp_path: Path) -> None:
    model = build_tiny_digits(tmp_path / "tiny.onnx", epochs=1)
    out = tmp_path / "run"
    args = [str(model), "--target", "macs", "--budget", "0.75", "-o", str(out)]
    args += ["--data", f"fashion-mnist:{tmp_path / 'nowhere'}", "--input-shape", "image:1,1,8,8"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == DataError.exit_code == 8, result.output
    assert "apt-get install dataset-fashion-mnist" in result.output
    assert not (out / "state.json").exists()


def test_adapt_runs_on_resized_fashion_folder(fashion, tmp_path: Path) -> None:
    """End to end: a tiny 8x8 model adapted on 28x28 IDX images resized with @8x8."""
    folder, _ = fashion
    model = build_tiny_digits(tmp_path / "tiny.onnx", epochs=1)
    out = tmp_path / "run"
    args = [str(model), "--target", "macs", "--budget", "0.75", "-o", str(out), "--json", "-q"]
    args += ["--data", f"fashion-mnist:{folder}@8x8", "--input-shape", "image:1,1,8,8"]
    args += ["--step", "0.3", "--short-steps", "2", "--long-epochs", "0"]
    args += ["--holdout-per-class", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["budgets_met"]
