"""What the tool hands back keeps the original's dynamic dimensions and runs at other batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from adapt_models import build_tiny_digits, export_dynamic_batch
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper
from onnx_compat import make_model
from torch import nn

from onnx_netadapt.adapt import AdaptConfig, adapt_model, parse_budget
from onnx_netadapt.cli import main
from onnx_netadapt.graph.deliverable import with_original_interface


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_digits(tmp_path_factory.mktemp("tiny") / "tiny.onnx", epochs=1)


class FlattenByView(nn.Module):
    """A head that flattens with ``x.view(x.size(0), -1)``: a shape computation the loader
    folds at the working batch."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, stride=2)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv(x))))
        return self.fc(x.view(x.size(0), -1))


def _export_view_model(path: Path) -> Path:
    torch.manual_seed(0)
    return export_dynamic_batch(FlattenByView().eval(), path)


def _run(path: Path, batch: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": batch})[0]


def _assert_runs_at_batch(path: Path, batch: int = 4) -> None:
    model = onnx.load(path)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    x = np.random.default_rng(0).standard_normal((batch, 1, 8, 8)).astype(np.float32)
    whole = _run(path, x)
    assert whole.shape == (batch, 10)
    for i in range(batch):  # every sample as if run alone
        np.testing.assert_allclose(whole[i : i + 1], _run(path, x[i : i + 1]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("build", [build_tiny_digits, _export_view_model])
def test_pruned_model_keeps_the_dynamic_batch(build, tmp_path: Path) -> None:
    model = build(tmp_path / "m.onnx")
    out = tmp_path / "p.onnx"
    result = CliRunner().invoke(
        main,
        [
            "prune",
            str(model),
            "-o",
            str(out),
            "--ratio",
            "0.5",
            "--input-shape",
            "image:1,1,8,8",
            "--report",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r.json").read_text())["interface"].startswith("dynamic")
    _assert_runs_at_batch(out)


def test_adapted_model_keeps_the_dynamic_batch(tiny: Path, tmp_path: Path) -> None:
    config = AdaptConfig(
        target="macs",
        budgets=[parse_budget("0.7")],
        data="digits",
        step=0.2,
        decay=1.0,
        short_steps=2,
        long_epochs=0.1,
        holdout_per_class=5,
        input_shapes={"image": [1, 1, 8, 8]},
    )
    summary = adapt_model(tiny, config, tmp_path / "run")
    assert summary["adapted_interface"].startswith("dynamic as the original")
    _assert_runs_at_batch(tmp_path / "run" / "adapted.onnx")


def test_paddle_style_minus_one_batch_is_restored_as_a_named_dim() -> None:
    original = _flatten_graph(batch=-1)
    working = _flatten_graph(batch=1)
    restored = with_original_interface(working, original)
    dim = restored.model.graph.input[0].type.tensor_type.shape.dim[0]
    assert restored.note.startswith("dynamic") and dim.dim_param and not dim.HasField("dim_value")


def test_a_network_that_bakes_its_batch_is_handed_back_static_with_the_reason() -> None:
    """The working form reshapes to a constant without the batch: restoring a dynamic batch
    would give a model that fails at batch 2, so the static form is kept and the note says so."""
    original = _flatten_graph(batch=None)
    working = _flatten_graph(batch=1, baked=True)
    restored = with_original_interface(working, original)
    assert restored.model is working
    assert restored.note.startswith("static working shapes kept") and "batch" in restored.note


def _flatten_graph(batch: int | None, baked: bool = False) -> onnx.ModelProto:
    """x (N,4,2,2) -> flatten -> Gemm(16->3); ``baked``: flatten as Reshape([16]) + Unsqueeze."""
    dims: list = ["batch" if batch is None else batch, 4, 2, 2]
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [dims[0], 3])
    weight = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32), "w"
    )
    inits = [weight]
    if baked:
        inits += [
            numpy_helper.from_array(np.array([16], np.int64), "shape16"),
            numpy_helper.from_array(np.array([0], np.int64), "axes0"),
        ]
        nodes = [
            helper.make_node("Reshape", ["image", "shape16"], ["flat1"], name="r"),
            helper.make_node("Unsqueeze", ["flat1", "axes0"], ["flat"], name="u"),
        ]
    else:
        nodes = [helper.make_node("Flatten", ["image"], ["flat"], name="f", axis=1)]
    nodes.append(helper.make_node("MatMul", ["flat", "w"], ["out"], name="mm"))
    graph = helper.make_graph(nodes, "g", [x], [y], inits)
    return make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
