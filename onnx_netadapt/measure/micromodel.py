"""Single-layer ONNX models for measuring one latency-table entry."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnx_netadapt.measure.signature import LayerSignature

MICRO_OPSET = 17


def onnx_layer_model(sig: LayerSignature, seed: int = 0) -> onnx.ModelProto:
    """A model with one input, the layer of ``sig`` (random weights) and its fused activation.

    >>> sig = LayerSignature("Conv", 8, 16, (8, 8), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))
    >>> [n.op_type for n in onnx_layer_model(sig).graph.node]
    ['Conv']
    """
    rng = np.random.default_rng(seed)
    inits, nodes = [], []
    if sig.op == "Gemm":
        x_shape = [sig.rows, sig.in_channels]
        w = rng.standard_normal((sig.in_channels, sig.out_channels)).astype(np.float32) * 0.1
        inits.append(numpy_helper.from_array(w, "w"))
        inputs = ["x", "w"]
        if sig.bias:
            inits.append(numpy_helper.from_array(np.zeros(sig.out_channels, np.float32), "b"))
            inputs.append("b")
        nodes.append(helper.make_node("Gemm", inputs, ["y"], name="layer"))
        y_shape = [sig.rows, sig.out_channels]
    else:
        x_shape = [1, sig.in_channels, *sig.input_hw]
        if sig.op == "Conv":
            w_shape = (sig.out_channels, sig.in_channels // sig.groups, *sig.kernel)
            y_shape = [1, sig.out_channels, *sig.output_hw()]
        else:
            w_shape = (sig.in_channels, sig.out_channels // sig.groups, *sig.kernel)
            y_shape = [1, sig.out_channels, *sig.output_hw()]
        w = rng.standard_normal(w_shape).astype(np.float32) * 0.1
        inits.append(numpy_helper.from_array(w, "w"))
        inputs = ["x", "w"]
        if sig.bias:
            inits.append(numpy_helper.from_array(np.zeros(sig.out_channels, np.float32), "b"))
            inputs.append("b")
        nodes.append(
            helper.make_node(
                sig.op,
                inputs,
                ["y"],
                name="layer",
                kernel_shape=list(sig.kernel),
                strides=list(sig.stride),
                pads=list(sig.pads),
                dilations=list(sig.dilation),
                group=sig.groups,
            )
        )
    if sig.activation:
        nodes[-1].output[0] = "pre"
        nodes.append(_activation(sig.activation, inits))
    graph = helper.make_graph(
        nodes,
        "layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", MICRO_OPSET)])
    model.ir_version = 8
    return model


def _activation(name: str, inits: list) -> onnx.NodeProto:
    if name == "Relu6":
        inits += [
            numpy_helper.from_array(np.array(0, np.float32), "lo"),
            numpy_helper.from_array(np.array(6, np.float32), "hi"),
        ]
        return helper.make_node("Clip", ["pre", "lo", "hi"], ["y"], name="act")
    return helper.make_node(name, ["pre"], ["y"], name="act")
