"""Our onnx2torch converters go through its public API: registration and rerouting."""

from __future__ import annotations

from pathlib import Path

import pytest
from onnx import TensorProto, helper
from onnx_compat import make_model

from onnx_netadapt.finetune import converters
from onnx_netadapt.finetune.converters import _registry

PACKAGE = Path(converters.__file__).parent


def test_no_private_onnx2torch_registry_is_touched():
    for path in PACKAGE.glob("*.py"):
        assert "_CONVERTER_REGISTRY" not in path.read_text(), path.name


def test_a_converter_onnx2torch_has_is_not_registered_again():
    before = list(_registry.ADDED)
    _registry.add("Relu", 14, lambda node, graph: None)  # onnx2torch converts Relu-14 itself
    assert before == _registry.ADDED
    assert _registry.has_converter("Split", 18)  # ours
    assert not _registry.has_converter("NoSuchOp", 18)


def test_a_second_replacement_of_an_op_raises():
    with pytest.raises(ValueError, match="Resize"):
        _registry.replaces("Resize", lambda node, opset: True)(lambda node, graph: None)


def _model(opset: int, allowzero: int):
    nodes = [
        helper.make_node("Resize", ["x", "", "scales"], ["r"], name="up", mode="nearest"),
        helper.make_node("Reshape", ["r", "shape"], ["y"], name="flat", allowzero=allowzero),
        helper.make_node("Relu", ["y"], ["z"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
        [
            helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2]),
            helper.make_tensor("shape", TensorProto.INT64, [2], [1, -1]),
        ],
    )
    return make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize(
    ("opset", "allowzero", "moved"),
    [(13, 1, {"up", "flat"}), (13, 0, {"up"}), (19, 1, set()), (18, 0, set())],
)
def test_reroute_moves_only_the_nodes_our_replacements_take(opset, allowzero, moved):
    model = _model(opset, allowzero)
    assert converters.reroute(model) == len(moved)
    assert {n.name for n in model.graph.node if n.domain == _registry.OWN_DOMAIN} == moved
    own = [o for o in model.opset_import if o.domain == _registry.OWN_DOMAIN]
    assert len(own) == (1 if moved else 0)
