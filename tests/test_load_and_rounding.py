"""Loading (external data, normalisation notes, input shapes) and ratio rounding."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from models import CASES

from onnx_netadapt import UnsupportedModelError, analyse, load_model, prune
from onnx_netadapt.graph.load import parse_input_shape
from onnx_netadapt.prune.ranking import units_for_ratio
from onnx_netadapt.verify import check_against_masked


def test_external_data_is_loaded(tmp_path):
    model = CASES["residual_chain"].build()
    path = tmp_path / "ext.onnx"
    onnx.save(
        model, str(path), save_as_external_data=True, location="ext.onnx.data", size_threshold=0
    )
    assert (tmp_path / "ext.onnx.data").exists()
    analysis = analyse(load_model(path))
    assert sum(g.prunable for g in analysis.groups) == CASES["residual_chain"].expect_prunable
    result = prune(analysis, ratio=0.5)
    assert check_against_masked(analysis, result).ok


def test_normalisation_notes_constant_nodes_and_shared_initializers():
    loaded = load_model(CASES["constant_node_weights"].build())
    assert any("Constant nodes" in n for n in loaded.notes)
    assert not any(n.op_type == "Constant" for n in loaded.model.graph.node)
    shared = load_model(CASES["shared_initializers"].build())
    assert any("shared initializers" in n for n in shared.notes)
    users: dict[str, int] = {}
    for node in shared.model.graph.node:
        for name in node.input:
            users[name] = users.get(name, 0) + 1
    inits = {i.name: i for i in shared.model.graph.initializer}
    assert all(users.get(n, 0) <= 1 for n, t in inits.items() if np.prod(t.dims) > 1)


def test_caller_proto_is_not_modified():
    model = CASES["constant_node_weights"].build()
    before = model.SerializeToString()
    load_model(model)
    assert model.SerializeToString() == before


@pytest.mark.parametrize("spec", ["x", "x:", ":1,2", "x:1,a", "x:0,3"])
def test_bad_input_shape_specs(spec):
    with pytest.raises(UnsupportedModelError, match="NAME:D1"):
        parse_input_shape(spec)


def test_input_shape_for_unknown_input():
    with pytest.raises(UnsupportedModelError, match="inputs are"):
        load_model(CASES["residual_chain"].build(), {"nope": (1, 3, 8, 8)})


@pytest.mark.parametrize(
    ("units", "width", "ratio", "round_to", "expected"),
    [
        (64, 1, 0.7, 8, 48),  # 44.8 -> nearest multiple of 8
        (64, 1, 0.01, 8, 8),  # never to zero: at least one step
        (64, 1, 1.0, 8, 64),
        (6, 1, 0.5, 8, 6),  # smaller than one step: kept whole
        (60, 1, 1.0, 8, 60),  # never more than the group has
        (32, 4, 0.5, 8, 16),  # units of 4 channels: step of 2 units
        (10, 1, 0.5, 1, 5),
    ],
)
def test_units_for_ratio(units, width, ratio, round_to, expected):
    group = SimpleNamespace(units=units, class_width=width)
    assert units_for_ratio(group, ratio, round_to) == expected


def test_ratio_prune_respects_the_grid():
    analysis = analyse(load_model(CASES["conv_bn_relu_chain"].build()))
    result = prune(analysis, ratio=0.5, round_to=4)
    for group in result.report["groups"]:
        assert (
            group["channels_after"] % 4 == 0 or group["channels_after"] == group["channels_before"]
        )
        assert group["channels_after"] >= 1


def test_large_model_helpers_on_a_model_over_the_limit(monkeypatch):
    """Models over 2 GiB: shape inference on a weightless skeleton, ORT through a file."""
    from onnx_netadapt.graph import large
    from onnx_netadapt.graph.probe import random_inputs
    from onnx_netadapt.verify import run_model

    model = CASES["residual_chain"].build()
    monkeypatch.setattr(large, "LARGE_MODEL_BYTES", 1000)  # pretend this small model is huge
    monkeypatch.setattr(large, "_SKELETON_MIN_BYTES", 100)
    assert large.is_large(model)
    stub = large.skeleton(model)
    assert any(i.data_location == onnx.TensorProto.EXTERNAL for i in stub.graph.initializer)
    onnx.shape_inference.infer_shapes(stub, strict_mode=True)
    analysis = analyse(load_model(model))
    result = prune(analysis, ratio=0.5)
    assert check_against_masked(analysis, result).ok
    (out,) = run_model(result.model, random_inputs(model))
    assert out.shape == (1, 10)
