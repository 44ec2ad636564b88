"""Networks in the layouts other converters produce, rewritten from an NCHW PyTorch export.

- ``to_nhwc``: the form TensorFlow converters (tf2onnx, keras2onnx) give: an NHWC graph input, a
  Transpose NHWC->NCHW before every Conv and pooling and NCHW->NHWC after it, elementwise ops in
  NHWC, batch norm folded into the Conv or (``bn="muladd"``) as a per-channel Mul and Add on the
  last axis, global pooling as ReduceMean over axes 1,2, Dense layers as MatMul + Add, and a
  Reshape at the head.
- ``to_paddle``: the form paddle2onnx gives: every weight in a Constant node, batch norm kept
  as BatchNormalization after a bias-free Conv, and the batch dimension declared -1.

Both compute what the input model computes (``tests/test_layouts.py`` checks it in ONNX Runtime):
feed ``to_nhwc``'s model the input transposed to NHWC. The input model is what
``torch.onnx.export`` gives for torchvision CNNs (Conv with folded BN, Relu/Clip/HardSwish/
Sigmoid, Add/Mul, MaxPool/AveragePool, GlobalAveragePool, Flatten, Gemm); other ops are refused.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from onnx_netadapt.graph.load import load_model

LAYOUTS = ("nchw", "nhwc", "nhwc_muladd", "paddle")
TO_NCHW, TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]
UNARY = {"Relu", "Clip", "HardSwish", "Sigmoid", "HardSigmoid", "LeakyRelu", "Tanh", "Identity"}
BINARY = {"Add", "Mul", "Sub", "Div"}
WRAPPED = {"Conv", "MaxPool", "AveragePool"}  # NCHW-only ONNX ops: Transpose-wrapped
BN_EPSILON = 1e-5


def _clean(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, tuple[int, ...]]]:
    """The model normalised (constants as initializers, identities folded) and its shapes."""
    loaded = load_model(model)
    return loaded.model, dict(loaded.shapes)


class _Graph:
    """The rewritten graph under construction."""

    def __init__(self, inits: dict[str, np.ndarray]) -> None:
        self.inits = inits
        self.nodes: list[onnx.NodeProto] = []
        self.count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits[name] = value
        return name

    def add(self, op: str, inputs: list[str], output: str, name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attrs))
        return output

    def transpose(self, tensor: str, perm: list[int], name: str) -> str:
        return self.add("Transpose", [tensor], f"{name}_out", name, perm=perm)


def _rewrite_node_nhwc(
    g: _Graph, node: onnx.NodeProto, shapes: dict, nhwc: set[str], bn: str, rng
) -> None:
    """Append ``node``'s NHWC form to ``g``; ``nhwc`` holds the tensors kept in NHWC."""
    rank4 = [len(shapes.get(t, ())) == 4 for t in node.input if t and t not in g.inits]
    if node.op_type in WRAPPED:
        _wrapped_nhwc(g, node, bn, rng)
        nhwc.add(node.output[0])
    elif node.op_type in UNARY | BINARY:
        g.nodes.append(node)
        if any(t in nhwc for t in node.input):
            if node.op_type in BINARY and not all(
                t in nhwc or g.inits.get(t, np.zeros(())).size == 1 for t in node.input
            ):
                raise ValueError(f"{node.name}: a per-channel constant in NCHW is not rewritten")
            nhwc.add(node.output[0])
    elif node.op_type == "ReduceMean" and node.input[0] in nhwc:
        _reduce_mean_nhwc(g, node, nhwc)
    elif node.op_type == "GlobalAveragePool":
        g.add("ReduceMean", [node.input[0]], node.output[0], node.name, axes=[1, 2], keepdims=1)
        nhwc.add(node.output[0])  # [N, 1, 1, C]
    elif node.op_type == "Flatten" and node.input[0] in nhwc:
        channels = shapes[node.output[0]][1]
        target = g.const(f"{node.name}/shape", np.array([-1, channels], np.int64))
        g.add("Reshape", [node.input[0], target], node.output[0], node.name)
    elif node.op_type == "Gemm" and not any(rank4):
        _gemm_as_matmul(g, node)
    else:
        raise ValueError(f"to_nhwc does not rewrite {node.op_type} ({node.name})")


def _wrapped_nhwc(g: _Graph, node: onnx.NodeProto, bn: str, rng) -> None:
    """An NCHW-only op between Transposes; with ``bn="muladd"`` a Conv's batch norm becomes a
    per-channel Mul and Add on the last axis (a random scale taken out of the weight)."""
    x = g.transpose(node.input[0], TO_NCHW, f"{node.name}/to_nchw")
    inputs = [x, *node.input[1:]]
    bias = None
    if node.op_type == "Conv" and bn == "muladd":
        w = g.inits[node.input[1]]
        scale = rng.uniform(0.5, 1.5, w.shape[0]).astype(np.float32)
        g.inits[node.input[1]] = (w / scale[:, None, None, None]).astype(np.float32)
        if len(node.input) > 2 and node.input[2]:
            bias = g.inits.pop(node.input[2])
        else:
            bias = np.zeros(w.shape[0], np.float32)
        inputs = inputs[:2]
    y = f"{node.name}_nchw"
    g.nodes.append(helper.make_node(node.op_type, inputs, [y], name=node.name, **_attrs(node)))
    out = node.output[0]
    if bias is None:
        g.add("Transpose", [y], out, f"{node.name}/to_nhwc", perm=TO_NHWC)
    else:
        t = g.transpose(y, TO_NHWC, f"{node.name}/to_nhwc")
        m = g.add(
            "Mul",
            [t, g.const(f"{node.name}/bn_scale", scale)],
            f"{out}_scaled",
            f"{node.name}/bn_mul",
        )
        g.add("Add", [m, g.const(f"{node.name}/bn_bias", bias)], out, f"{node.name}/bn_add")


def _reduce_mean_nhwc(g: _Graph, node: onnx.NodeProto, nhwc: set[str]) -> None:
    """A ReduceMean of an NHWC tensor, its axes moved to NHWC."""
    attrs = _attrs(node)
    axes = attrs.pop("axes", None)
    if axes is None and len(node.input) > 1:
        axes = [int(a) for a in g.inits[node.input[1]]]
    if axes is None:
        raise ValueError(f"{node.name}: a ReduceMean over every axis is not rewritten")
    moved = sorted(TO_NHWC.index(a % 4) for a in axes)
    inputs = [node.input[0]]
    if len(node.input) > 1:
        inputs.append(g.const(f"{node.name}/axes", np.array(moved, np.int64)))
    else:
        attrs["axes"] = moved
    g.add("ReduceMean", inputs, node.output[0], node.name, **attrs)
    if attrs.get("keepdims", 1):
        nhwc.add(node.output[0])
    elif moved != [1, 2]:
        raise ValueError(f"{node.name}: only a spatial mean drops the layout")


def _gemm_as_matmul(g: _Graph, node: onnx.NodeProto) -> None:
    """A Dense layer as MatMul + Add (the weight stored as [in, out])."""
    attrs = _attrs(node)
    if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
        raise ValueError(f"{node.name}: only Gemm(transA=0, alpha=beta=1) is rewritten")
    w = g.inits.pop(node.input[1])
    w = np.ascontiguousarray(w.T if attrs.get("transB", 0) else w)
    has_bias = len(node.input) > 2 and bool(node.input[2])
    y = f"{node.name}_matmul" if has_bias else node.output[0]
    g.add("MatMul", [node.input[0], g.const(node.input[1], w)], y, node.name)
    if has_bias:
        g.add("Add", [y, node.input[2]], node.output[0], f"{node.name}/bias")


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def to_nhwc(model: onnx.ModelProto, bn: str = "folded", seed: int = 0) -> onnx.ModelProto:
    """``model`` (NCHW, one 4-D input) in the TensorFlow-converted NHWC form (module docstring).

    Args:
        bn: "folded" (batch norm folded into the Conv, its bias kept) or "muladd" (the Conv
            bias-free, followed by a per-channel Mul and Add in NHWC, as tf2onnx writes an
            unfused FusedBatchNorm).
    """
    if bn not in ("folded", "muladd"):
        raise ValueError(f"bn must be 'folded' or 'muladd', got {bn!r}")
    clean, shapes = _clean(model)
    graph = clean.graph
    (x,) = graph.input
    n, c, h, w = shapes[x.name]
    inits = {i.name: numpy_helper.to_array(i).copy() for i in graph.initializer}
    g = _Graph(inits)
    nhwc = {x.name}
    rng = np.random.default_rng(seed)
    for node in graph.node:
        _rewrite_node_nhwc(g, node, shapes, nhwc, bn, rng)
    outputs = []
    for out in graph.output:
        if out.name in nhwc:
            raise ValueError(f"graph output {out.name} is 4-D: not rewritten")
        outputs.append(out)
    new_input = helper.make_tensor_value_info(x.name, x.type.tensor_type.elem_type, [n, h, w, c])
    initializers = [numpy_helper.from_array(v, k) for k, v in g.inits.items()]
    new = helper.make_graph(g.nodes, f"{graph.name}_nhwc", [new_input], outputs, initializers)
    result = helper.make_model(new, opset_imports=list(clean.opset_import))
    result.ir_version = clean.ir_version
    onnx.checker.check_model(result)
    return result


def to_paddle(model: onnx.ModelProto, dynamic_outputs: bool = False) -> onnx.ModelProto:
    """``model`` in paddle2onnx's form: weights in Constant nodes, batch norm as
    BatchNormalization after a bias-free Conv, the batch dimension of every graph input declared
    -1 (give ``load_model`` the input shape), and with ``dynamic_outputs`` of every output too
    (``prune`` refuses that declaration until issue 12 section 2 is fixed)."""
    clean, _ = _clean(model)
    graph = clean.graph
    inits = {i.name: numpy_helper.to_array(i).copy() for i in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type == "Conv" and len(node.input) > 2 and node.input[2]:
            bias = inits.pop(node.input[2])
            channels = bias.shape[0]
            y = f"{node.name}_conv"
            nodes.append(
                helper.make_node("Conv", list(node.input[:2]), [y], name=node.name, **_attrs(node))
            )
            stats = {
                "scale": np.ones(channels, np.float32),
                "bias": bias,
                "mean": np.zeros(channels, np.float32),
                "var": np.full(channels, 1 - BN_EPSILON, np.float32),
            }
            names = []
            for key, value in stats.items():
                inits[f"{node.name}/bn_{key}"] = value
                names.append(f"{node.name}/bn_{key}")
            nodes.append(
                helper.make_node(
                    "BatchNormalization",
                    [y, *names],
                    list(node.output),
                    name=f"{node.name}/bn",
                    epsilon=BN_EPSILON,
                )
            )
        else:
            nodes.append(node)
    constants = [
        helper.make_node("Constant", [], [k], name=f"const_{i}", value=numpy_helper.from_array(v))
        for i, (k, v) in enumerate(inits.items())
    ]
    inputs = [_batch_dynamic(v) for v in graph.input]
    outputs = [_batch_dynamic(v) if dynamic_outputs else v for v in graph.output]
    new = helper.make_graph(constants + nodes, f"{graph.name}_paddle", inputs, outputs)
    result = helper.make_model(new, opset_imports=list(clean.opset_import))
    result.ir_version = clean.ir_version
    onnx.checker.check_model(result)
    return result


def _batch_dynamic(value: onnx.ValueInfoProto) -> onnx.ValueInfoProto:
    """``value`` with its first dimension declared -1 (Paddle's way of saying dynamic)."""
    out = onnx.ValueInfoProto()
    out.CopyFrom(value)
    dims = out.type.tensor_type.shape.dim
    if len(dims):
        dims[0].Clear()
        dims[0].dim_value = -1
    return out


def in_layout(model: onnx.ModelProto, layout: str) -> onnx.ModelProto:
    """``model`` (NCHW export) in ``layout`` (one of ``LAYOUTS``)."""
    if layout == "nchw":
        return model
    if layout == "nhwc":
        return to_nhwc(model)
    if layout == "nhwc_muladd":
        return to_nhwc(model, bn="muladd")
    if layout == "paddle":
        return to_paddle(model)
    raise ValueError(f"unknown layout {layout!r}; layouts: {', '.join(LAYOUTS)}")


def input_shape(model: onnx.ModelProto, nchw: tuple[int, ...], layout: str) -> dict:
    """The static input shape to load ``model`` (in ``layout``) with, from the NCHW one."""
    n, c, h, w = nchw
    shape = (n, h, w, c) if layout.startswith("nhwc") else (n, c, h, w)
    return {model.graph.input[0].name: shape}
