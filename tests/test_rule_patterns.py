"""Normalisation patterns found in real networks (beyond the per-rule tiny cases)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from onnx_netadapt import analyse, load_model, prune


def _grn_model():
    """ConvNeXt-V2 Global Response Norm: x * (g / (mean_c(g) + eps)), g = L2 over space."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(np.array([2, 3], np.int64), "spatial"),
        numpy_helper.from_array(np.array([1], np.int64), "channel"),
        numpy_helper.from_array(np.array(1e-6, np.float32), "eps"),
        numpy_helper.from_array(rng.standard_normal((4, 8, 1, 1)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("ReduceL2", ["c", "spatial"], ["g"], name="l2", keepdims=1),
        helper.make_node("ReduceMean", ["g", "channel"], ["m"], name="mean", keepdims=1),
        helper.make_node("Add", ["m", "eps"], ["me"], name="add_eps"),
        helper.make_node("Div", ["g", "me"], ["n"], name="div"),
        helper.make_node("Mul", ["c", "n"], ["y0"], name="mul"),
        helper.make_node("Conv", ["y0", "w2"], ["y"], name="conv2"),
    ]
    graph = helper.make_graph(
        nodes,
        "grn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_global_response_norm_is_approximate_not_blocked():
    analysis = analyse(load_model(_grn_model()))
    group = next(g for g in analysis.groups if g.producers[0].node == "conv1")
    assert group.status == "approximate", group.reasons
    assert "LayerNorm statistic" in group.reasons[0]
    result = prune(analysis, {group.id: 4}, allow_approximate=True)
    conv2 = next(i for i in result.model.graph.initializer if i.name == "w2")
    assert list(conv2.dims) == [4, 4, 1, 1]


def test_mean_over_channels_used_elsewhere_still_blocks():
    model = _grn_model()
    div = next(n for n in model.graph.node if n.name == "div")
    div.input[0] = "me"  # mean / mean: no longer a normalisation of g
    div.input[1] = "g"
    analysis = analyse(load_model(model))
    group = next(g for g in analysis.groups if g.producers[0].node == "conv1")
    assert group.status == "unprunable"
    assert "reduces over the channel axis" in group.reasons[0]
