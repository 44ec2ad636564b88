"""Layer signatures: the key of the latency table (layers with equal signatures cost the same).

A signature holds what determines a filter layer's cost on a target: op, kernel, stride, pads,
dilation, groups, input spatial size, input and output channels, and a fused activation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

import onnx

from onnx_netadapt.graph.load import LoadedModel, load_model
from onnx_netadapt.graph.ops import attr, consumers_of


@dataclass(frozen=True)
class LayerSignature:
    """What determines the cost of one filter layer.

    Attributes:
        op: "Conv" (2-D, NCHW), "ConvTranspose" or "Gemm" (fully connected: MatMul/Gemm).
        in_channels: input channels (features for Gemm).
        out_channels: output channels (features for Gemm).
        input_hw: input spatial size, () for Gemm.
        kernel, stride, pads, dilation: as in ONNX (pads: begin..., end...).
        groups: conv groups (in_channels for depthwise).
        activation: fused activation that follows the layer, if any.
        bias: whether the layer adds a bias.
        rows: for Gemm: rows of the input (tokens x batch), else 1.
    """

    op: str
    in_channels: int
    out_channels: int
    input_hw: tuple[int, ...] = ()
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    pads: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    groups: int = 1
    activation: str | None = None
    bias: bool = True
    rows: int = 1

    @property
    def depthwise(self) -> bool:
        """True for a depthwise conv (one input channel per group)."""
        return self.op == "Conv" and self.groups > 1 and self.groups == self.in_channels

    def with_channels(self, in_channels: int, out_channels: int) -> LayerSignature:
        """The same layer with other channel counts (groups follow for depthwise convs)."""
        groups = self.groups
        if self.depthwise:
            groups = in_channels
        elif self.groups > 1:
            groups = max(1, self.groups * in_channels // self.in_channels)
        return replace(self, in_channels=in_channels, out_channels=out_channels, groups=groups)

    def key(self) -> str:
        """Stable text key (JSON of the fields)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    def macs(self) -> int:
        """Multiply-accumulates of the layer (a device-free proxy)."""
        if self.op == "Gemm":
            return self.rows * self.in_channels * self.out_channels
        out_hw = self.output_hw()
        per_output = (self.in_channels // self.groups) * _prod(self.kernel)
        if self.op == "ConvTranspose":
            return (
                self.in_channels
                * (self.out_channels // self.groups)
                * _prod(self.kernel)
                * _prod(self.input_hw)
            )
        return per_output * self.out_channels * _prod(out_hw)

    def output_hw(self) -> tuple[int, ...]:
        """Output spatial size."""
        if self.op == "Gemm":
            return ()
        n = len(self.input_hw)
        out = []
        for i in range(n):
            k = (self.kernel[i] - 1) * self.dilation[i] + 1
            if self.op == "ConvTranspose":
                size = (self.input_hw[i] - 1) * self.stride[i] + k - self.pads[i] - self.pads[i + n]
            else:
                size = (self.input_hw[i] + self.pads[i] + self.pads[i + n] - k) // self.stride[
                    i
                ] + 1
            out.append(size)
        return tuple(out)


def _prod(values: tuple[int, ...]) -> int:
    n = 1
    for v in values:
        n *= int(v)
    return n


# Nodes a runtime folds into the filter layer before them, so that the layer runs as one kernel
# with a bias and the activation after them fused (ONNX Runtime's Conv+BatchNormalization,
# Conv+Mul and Conv+Add fusions after its transpose optimiser cancels the layout Transposes of
# TensorFlow-style graphs; TFLite's converter alike): a batch norm, a constant per-channel Mul
# or Add, and a layout Transpose. How far after the layer they are followed.
MAX_FOLDED = 6
ACTIVATIONS = ("Relu", "HardSwish", "Sigmoid", "Tanh", "LeakyRelu")


def _activation(node: onnx.NodeProto, constants: dict) -> str | None:
    """The fusable activation ``node`` computes, if it is one."""
    if node.op_type in ACTIVATIONS:
        return node.op_type
    if node.op_type == "Clip":
        from onnx import numpy_helper

        bounds = [
            float(numpy_helper.to_array(constants[name])) if name in constants else None
            for name in list(node.input[1:3])
        ]
        if bounds == [0.0, 6.0] or (attr(node, "min") == 0.0 and attr(node, "max") == 6.0):
            return "Relu6"
    return None


def _folded(node: onnx.NodeProto, channels: int, constants: dict) -> str | None:
    """How ``node`` folds into the filter layer before it ("bias": it adds one, "scale": it
    scales the weights, "layout": a Transpose), or None when it does not."""
    if node.op_type == "Transpose":
        return "layout"
    if node.op_type == "BatchNormalization":
        return "bias" if all(name in constants for name in node.input[1:5]) else None
    if node.op_type in ("Mul", "Add"):
        others = [name for name in node.input if name in constants]
        if len(others) != 1 or len(node.input) != 2:
            return None
        size = _prod(tuple(constants[others[0]].dims))
        if size not in (1, channels):
            return None
        return "bias" if node.op_type == "Add" else "scale"
    return None


def fused_epilogue(
    node: onnx.NodeProto, channels: int, consumers: dict[str, list[onnx.NodeProto]], constants: dict
) -> tuple[bool, str | None]:
    """What a runtime folds into ``node`` (``channels`` outputs): whether a folded node adds a
    bias (a batch norm, a constant Add), and the activation fused after them, if any.

    Followed through single consumers only: a layer whose output is read twice runs alone.
    """
    bias, current = False, node
    for _ in range(MAX_FOLDED + 1):
        users = consumers.get(current.output[0], []) if current.output else []
        if len(users) != 1:
            return bias, None
        current = users[0]
        activation = _activation(current, constants)
        if activation is not None:
            return bias, activation
        folded = _folded(current, channels, constants)
        if folded is None:
            return bias, None
        bias = bias or folded == "bias"
    return bias, None


def layer_signature(
    node: onnx.NodeProto,
    shapes: dict[str, tuple[int, ...]],
    consumers: dict[str, list[onnx.NodeProto]],
    constants: dict,
) -> LayerSignature | None:
    """Signature of a Conv/ConvTranspose/Gemm/MatMul-with-constant node (None otherwise): the
    kernel a runtime runs, with the nodes it folds into it (``fused_epilogue``)."""
    if node.op_type in ("Conv", "ConvTranspose"):
        x_shape = shapes.get(node.input[0])
        w_shape = shapes.get(node.input[1])
        if x_shape is None or w_shape is None or len(x_shape) != 4:
            return None
        spatial = len(x_shape) - 2
        kernel = tuple(w_shape[2:])
        pads = tuple(attr(node, "pads", [0] * 2 * spatial))
        auto_pad = attr(node, "auto_pad", b"NOTSET")
        if auto_pad not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
            out_hw = shapes.get(node.output[0], ())[2:]
            pads = _same_pads(
                x_shape[2:],
                out_hw,
                kernel,
                tuple(attr(node, "strides", [1] * spatial)),
                tuple(attr(node, "dilations", [1] * spatial)),
            )
        groups = int(attr(node, "group", 1))
        out_channels = w_shape[0] if node.op_type == "Conv" else w_shape[1] * groups
        folded_bias, activation = fused_epilogue(node, out_channels, consumers, constants)
        return LayerSignature(
            op=node.op_type,
            in_channels=x_shape[1],
            out_channels=out_channels,
            input_hw=tuple(x_shape[2:]),
            kernel=kernel,
            stride=tuple(attr(node, "strides", [1] * spatial)),
            pads=pads,
            dilation=tuple(attr(node, "dilations", [1] * spatial)),
            groups=groups,
            activation=activation,
            bias=folded_bias or (len(node.input) > 2 and bool(node.input[2])),
        )
    if node.op_type in ("Gemm", "MatMul"):
        if node.input[1] not in constants:
            return None
        a_shape, w_shape = shapes.get(node.input[0]), shapes.get(node.input[1])
        if a_shape is None or w_shape is None or len(w_shape) != 2:
            return None
        trans_b = node.op_type == "Gemm" and int(attr(node, "transB", 0))
        k, n = (w_shape[1], w_shape[0]) if trans_b else (w_shape[0], w_shape[1])
        rows = _prod(tuple(a_shape[:-1])) if node.op_type == "MatMul" else a_shape[0]
        folded_bias, activation = fused_epilogue(node, n, consumers, constants)
        own_bias = node.op_type == "Gemm" and len(node.input) > 2 and bool(node.input[2])
        bias = folded_bias or own_bias
        return LayerSignature(
            op="Gemm", in_channels=k, out_channels=n, activation=activation, bias=bias, rows=rows
        )
    return None


def _same_pads(in_hw, out_hw, kernel, stride, dilation) -> tuple[int, ...]:
    begins, ends = [], []
    for i, size in enumerate(in_hw):
        k = (kernel[i] - 1) * dilation[i] + 1
        total = max(0, (out_hw[i] - 1) * stride[i] + k - size)
        begins.append(total // 2)
        ends.append(total - total // 2)
    return tuple(begins + ends)


def model_signatures(loaded: LoadedModel) -> dict[str, LayerSignature]:
    """Signature of every filter layer of ``loaded``, by node name."""
    consumers = consumers_of(loaded.model.graph)
    constants = loaded.initializers
    out = {}
    for node in loaded.model.graph.node:
        sig = layer_signature(node, loaded.shapes, consumers, constants)
        if sig is not None:
            out[node.name] = sig
    return out


def pruned_signatures(
    signatures: Mapping[str, LayerSignature], pruned: onnx.ModelProto
) -> dict[str, LayerSignature]:
    """Signatures of ``pruned``'s filter layers, read off its weight shapes.

    Pruning changes only channel counts (and conv groups), so each layer's signature is the
    original one with the counts of its pruned weight; a MatMul's rows follow its input's pruned
    shape (a matrix shared by attention heads loses the rows of removed heads). Falls back to
    shape inference when a weight is not an initializer.
    """
    shapes = {i.name: tuple(int(d) for d in i.dims) for i in pruned.graph.initializer}
    declared = {
        vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
        for vi in pruned.graph.value_info
    }
    nodes = {n.name: n for n in pruned.graph.node}
    out = {}
    for name, sig in signatures.items():
        node = nodes[name]
        w = shapes.get(node.input[1]) if len(node.input) > 1 else None
        if w is None:
            return model_signatures(load_model(pruned, fold=False))
        group = int(attr(node, "group", 1))
        if node.op_type == "Conv":
            cin, cout = w[1] * group, w[0]
        elif node.op_type == "ConvTranspose":
            cin, cout = w[0], w[1] * group
        elif node.op_type == "Gemm" and int(attr(node, "transB", 0)):
            cin, cout = w[1], w[0]
        else:  # Gemm without transB, MatMul with a constant
            cin, cout = w[0], w[1]
        if sig.op == "Gemm":
            group = 1
        rows = sig.rows
        a_shape = declared.get(node.input[0])
        if node.op_type == "MatMul" and a_shape and all(d > 0 for d in a_shape):
            rows = math.prod(a_shape[:-1])
        out[name] = replace(sig, in_channels=cin, out_channels=cout, groups=group, rows=rows)
    return out
