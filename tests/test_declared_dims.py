"""Declared dims of -1 or 0 (PaddlePaddle's dynamic batch) are dynamic: load, prune, verify."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from click.testing import CliRunner
from models import paddle_declared_dims

from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.cli import main
from onnx_netadapt.graph.probe import random_inputs
from onnx_netadapt.graph.shapes import static_dims
from onnx_netadapt.verify import check_against_masked


def test_prune_cli_on_a_paddle_style_model(tmp_path):
    source = tmp_path / "paddle.onnx"
    onnx.save(paddle_declared_dims(batch=-1), str(source))
    before = source.read_bytes()
    out = tmp_path / "pruned.onnx"
    args = ["prune", str(source), "--input-shape", "x:1,3,12,24", "--ratio", "0.5", "-o", str(out)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "pruned 2 groups" in result.output
    assert source.read_bytes() == before
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"x": np.zeros((1, 3, 12, 24), np.float32)})
    assert logits.shape == (1, 2)


def test_minus_one_input_dim_needs_an_input_shape(tmp_path):
    source = tmp_path / "paddle.onnx"
    onnx.save(paddle_declared_dims(batch=-1), str(source))
    result = CliRunner().invoke(main, ["inspect", str(source)], catch_exceptions=False)
    assert result.exit_code == 4, result.output
    assert "--input-shape x:N,3,12,24" in result.output


def test_declared_nonpositive_dims_are_dynamic_after_load():
    loaded = load_model(paddle_declared_dims(batch=0), {"x": (1, 3, 12, 24)})
    assert static_dims(loaded.model.graph.input[0].type) == (1, 3, 12, 24)
    declared = [d for vi in loaded.model.graph.output for d in vi.type.tensor_type.shape.dim]
    assert all(d.dim_value >= 0 for d in declared)
    assert any("-1 or 0" in note for note in loaded.notes)
    analysis = analyse(loaded)
    result = prune(analysis, ratio=0.5, round_to=1)
    assert check_against_masked(analysis, result).ok


def test_random_inputs_feed_dynamic_dims_as_one():
    feeds = random_inputs(paddle_declared_dims(batch=-1))
    assert feeds["x"].shape == (1, 3, 12, 24)
