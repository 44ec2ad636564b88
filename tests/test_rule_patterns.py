"""Normalisation patterns found in real networks (beyond the per-rule tiny cases)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from onnx_compat import make_model

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
    return make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


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


def _model(nodes, inits, x_shape, y_shape, opset=17):
    graph = helper.make_graph(
        nodes,
        "pattern",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        inits,
    )
    return make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def test_eca_conv_along_channels_is_approximate():
    """ECA: GAP -> [N,1,C] -> Conv1d(k=3) along channels -> sigmoid -> [N,C,1,1] -> Mul."""
    rng = np.random.default_rng(0)
    inits = [
        _const("w1", rng.standard_normal((8, 3, 3, 3)).astype(np.float32)),
        _const("to_ncl", np.array([1, 1, 8], np.int64)),
        _const("weca", rng.standard_normal((1, 1, 3)).astype(np.float32)),
        _const("to_nc11", np.array([1, 8, 1, 1], np.int64)),
        _const("w2", rng.standard_normal((4, 8, 1, 1)).astype(np.float32)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["p"], name="gap"),
        helper.make_node("Reshape", ["p", "to_ncl"], ["l"], name="to_seq"),
        helper.make_node("Conv", ["l", "weca"], ["e"], name="eca", pads=[1, 1]),
        helper.make_node("Sigmoid", ["e"], ["s"], name="sig"),
        helper.make_node("Reshape", ["s", "to_nc11"], ["a"], name="to_gate"),
        helper.make_node("Mul", ["c", "a"], ["g"], name="gate"),
        helper.make_node("Conv", ["g", "w2"], ["y"], name="conv2"),
    ]
    analysis = analyse(load_model(_model(nodes, inits, [1, 3, 6, 6], [1, 4, 6, 6])))
    group = next(g for g in analysis.groups if g.producers[0].node == "conv1")
    assert group.status == "approximate" and "ECA" in group.reasons[0]
    result = prune(analysis, {group.id: 4}, allow_approximate=True)
    reshape = next(n for n in result.model.graph.node if n.name == "to_gate")
    shape = next(i for i in result.model.graph.initializer if i.name == reshape.input[1])
    assert numpy_helper.to_array(shape).tolist() == [1, 4, 1, 1]


def test_selective_kernel_paths_times_attention_is_exact():
    """SK-Net: stack two paths [N,2,C,H,W] times attention [N,2,C,1,1], sum over paths."""
    from onnx_netadapt.verify import check_against_masked

    rng = np.random.default_rng(0)
    c = 8
    inits = [
        _const("wa", rng.standard_normal((c, 3, 3, 3)).astype(np.float32)),
        _const("wb", rng.standard_normal((c, 3, 1, 1)).astype(np.float32)),
        _const("ax1", np.array([1], np.int64)),
        _const("wfc", rng.standard_normal((2 * c, c, 1, 1)).astype(np.float32)),
        _const("to5", np.array([1, 2, c, 1, 1], np.int64)),
        _const("w2", rng.standard_normal((4, c, 1, 1)).astype(np.float32)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["pa"], name="path_a", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "wb"], ["pb"], name="path_b"),
        helper.make_node("Unsqueeze", ["pa", "ax1"], ["ua"], name="ua"),
        helper.make_node("Unsqueeze", ["pb", "ax1"], ["ub"], name="ub"),
        helper.make_node("Concat", ["ua", "ub"], ["stack"], name="stack", axis=1),
        helper.make_node("ReduceSum", ["stack", "ax1"], ["sum"], name="sum", keepdims=0),
        helper.make_node("GlobalAveragePool", ["sum"], ["gap"], name="gap"),
        helper.make_node("Conv", ["gap", "wfc"], ["fc"], name="fc"),
        helper.make_node("Reshape", ["fc", "to5"], ["att5"], name="att5"),
        helper.make_node("Softmax", ["att5"], ["att"], name="softmax", axis=1),
        helper.make_node("Mul", ["stack", "att"], ["weighted"], name="weigh"),
        helper.make_node("ReduceSum", ["weighted", "ax1"], ["mixed"], name="mix", keepdims=0),
        helper.make_node("Conv", ["mixed", "w2"], ["y"], name="conv2"),
    ]
    analysis = analyse(load_model(_model(nodes, inits, [1, 3, 6, 6], [1, 4, 6, 6], 13)))
    group = next(g for g in analysis.groups if "path_a" in [p.node for p in g.producers])
    assert group.prunable, group.reasons
    assert {"path_a", "path_b", "fc"} <= {p.node for p in group.producers}
    result = prune(analysis, {group.id: [0, 3, 5]})
    assert check_against_masked(analysis, result).ok


def test_global_context_attention_pooling_passes_channels():
    """GC block: x[N,C,HW] @ softmax(conv(x))[N,HW,1] pools over space; channels pass."""
    from onnx_netadapt.verify import check_against_masked

    rng = np.random.default_rng(0)
    c = 8
    inits = [
        _const("w1", rng.standard_normal((c, 3, 3, 3)).astype(np.float32)),
        _const("wk", rng.standard_normal((1, c, 1, 1)).astype(np.float32)),
        _const("to_nchw", np.array([1, c, 36], np.int64)),
        _const("to_n_hw_1", np.array([1, 36, 1], np.int64)),
        _const("to_nc11", np.array([1, c, 1, 1], np.int64)),
        _const("w2", rng.standard_normal((4, c, 1, 1)).astype(np.float32)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["f"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["f", "wk"], ["k"], name="key"),
        helper.make_node("Reshape", ["k", "to_n_hw_1"], ["k2"], name="k2"),
        helper.make_node("Softmax", ["k2"], ["att"], name="softmax", axis=1),
        helper.make_node("Reshape", ["f", "to_nchw"], ["f2"], name="f2"),
        helper.make_node("MatMul", ["f2", "att"], ["ctx"], name="pool"),
        helper.make_node("Reshape", ["ctx", "to_nc11"], ["ctx4"], name="ctx4"),
        helper.make_node("Add", ["f", "ctx4"], ["fused"], name="fuse"),
        helper.make_node("Conv", ["fused", "w2"], ["y"], name="conv2"),
    ]
    analysis = analyse(load_model(_model(nodes, inits, [1, 3, 6, 6], [1, 4, 6, 6])))
    group = next(g for g in analysis.groups if g.producers[0].node == "conv1")
    assert group.prunable, group.reasons
    result = prune(analysis, {group.id: [1, 2, 6]})
    assert check_against_masked(analysis, result).ok


def test_group_norm_from_both_exporters_is_approximate():
    """GroupNorm: legacy writes Reshape-InstanceNorm-Reshape, dynamo GroupNormalization."""
    import io
    import warnings

    import onnx
    import pytest

    from onnx_netadapt.graph.probe import random_inputs
    from onnx_netadapt.verify import run_model

    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.GroupNorm(4, 16),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 8, 1),
    ).eval()
    x = torch.randn(1, 3, 8, 8)
    for dynamo in (False, True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if dynamo:
                model = torch.onnx.export(net, (x,), dynamo=True, verbose=False).model_proto
            else:
                buffer = io.BytesIO()
                torch.onnx.export(net, x, buffer, dynamo=False, opset_version=17)
                model = onnx.load_from_string(buffer.getvalue())
        analysis = analyse(load_model(model))
        group = next(g for g in analysis.groups if g.channels == 16)
        assert group.status == "approximate", (dynamo, group.reasons)
        assert group.units == 4  # the same index goes from every one of the 4 groups
        result = prune(analysis, {group.id: 2}, allow_approximate=True)
        (out,) = run_model(result.model, random_inputs(model))
        assert out.shape == (1, 8, 8, 8)
        weights = {i.name: list(i.dims) for i in result.model.graph.initializer}
        assert any(dims[:2] == [8, 8] for dims in weights.values())  # 16 -> 8 channels
