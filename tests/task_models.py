"""Tiny non-classifier ONNX models for the task tests (built with onnx.helper, dynamic batch)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx_compat import make_model

FLOAT = TensorProto.FLOAT


def _init(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> onnx.TensorProto:
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    value = rng.normal(0, 1 / np.sqrt(fan_in), shape).astype(np.float32)
    return numpy_helper.from_array(value, name)


def _model(nodes, inputs, outputs, inits) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, inits)
    model = make_model(graph, [helper.make_opsetid("", 17)], producer_name="onnx-netadapt-tests")
    onnx.checker.check_model(model)
    return model


def segmenter(classes: int = 3, width: int = 16, seed: int = 0) -> onnx.ModelProto:
    """x (N, 1, 8, 8) -> Conv 3x3 -> Relu -> Conv 3x3 -> Relu -> Conv 1x1 -> (N, classes, 8, 8)."""
    rng = np.random.default_rng(seed)
    inits = [
        _init("w1", (width, 1, 3, 3), rng),
        numpy_helper.from_array(np.zeros(width, np.float32), "b1"),
        _init("w2", (width, width, 3, 3), rng),
        numpy_helper.from_array(np.zeros(width, np.float32), "b2"),
        _init("w3", (classes, width, 1, 1), rng),
        numpy_helper.from_array(np.zeros(classes, np.float32), "b3"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["scores"], name="head"),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("scores", FLOAT, ["N", classes, 8, 8])],
        inits,
    )


def two_in_two_out(width: int = 16, seed: int = 0) -> onnx.ModelProto:
    """image (N, 1, 8, 8) and side (N, 4) -> heat (N, 2, 8, 8) and logits (N, 3).

    The image's conv features (a prunable group, coupled with the side branch's Gemm by an Add)
    feed a 1x1 conv head (``heat``) and, pooled and added to the side features, a Gemm head.
    """
    rng = np.random.default_rng(seed)
    inits = [
        _init("w1", (width, 1, 3, 3), rng),
        numpy_helper.from_array(np.zeros(width, np.float32), "b1"),
        _init("wh", (2, width, 1, 1), rng),
        numpy_helper.from_array(np.zeros(2, np.float32), "bh"),
        _init("ws", (4, width), rng),
        numpy_helper.from_array(np.zeros(width, np.float32), "bs"),
        _init("wf", (width, width), rng),
        numpy_helper.from_array(np.zeros(width, np.float32), "bf"),
        _init("wo", (width, 3), rng),
        numpy_helper.from_array(np.zeros(3, np.float32), "bo"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["f"], name="relu1"),
        helper.make_node("Conv", ["f", "wh", "bh"], ["heat"], name="heat_head"),
        helper.make_node("GlobalAveragePool", ["f"], ["g"], name="pool"),
        helper.make_node("Flatten", ["g"], ["gf"], name="flatten"),
        helper.make_node("Gemm", ["side", "ws", "bs"], ["s"], name="side_fc"),
        helper.make_node("Relu", ["s"], ["sr"], name="relu_side"),
        helper.make_node("Add", ["gf", "sr"], ["h"], name="add"),
        helper.make_node("Gemm", ["h", "wf", "bf"], ["h2"], name="fc"),
        helper.make_node("Relu", ["h2"], ["h3"], name="relu_fc"),
        helper.make_node("Gemm", ["h3", "wo", "bo"], ["logits"], name="out_fc"),
    ]
    return _model(
        nodes,
        [
            helper.make_tensor_value_info("image", FLOAT, ["N", 1, 8, 8]),
            helper.make_tensor_value_info("side", FLOAT, ["N", 4]),
        ],
        [
            helper.make_tensor_value_info("heat", FLOAT, ["N", 2, 8, 8]),
            helper.make_tensor_value_info("logits", FLOAT, ["N", 3]),
        ],
        inits,
    )
