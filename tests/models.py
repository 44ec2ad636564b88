"""Registry of tiny ONNX models, one per channel-propagation rule or hard case.

Every model is built in code with :mod:`onnx.helper` (no torch) from a :class:`GraphBuilder`, uses
deterministic float32 weights (``np.random.default_rng(seed)``), small static shapes (batch 1,
8-32 channels, 8x8 maps) and the default opset 17 unless the case is about another opset.

``CASES`` maps a case name to a :class:`TinyCase`. ``expect_prunable`` is the number of prunable
channel groups: a group is the output channels of one or more Conv / Gemm / MatMul-with-constant-
weight / ConvTranspose producers that must be pruned with the same indices (residual adds,
depthwise and grouped convs, channel shuffles couple producers), and it is prunable when none of
its channels reaches a graph output, a Softmax or reduction over the channel axis, or an op without
a rule. ``None`` means the count is not pinned down (approximate or debatable rules).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx_compat import make_model

DEFAULT_OPSET = 17
FLOAT = TensorProto.FLOAT


@dataclass(frozen=True)
class TinyCase:
    """One registered model: how to build it and what the channel analysis should find."""

    name: str
    build: Callable[[], onnx.ModelProto]
    expect_prunable: int | None  # number of prunable channel groups (None = don't check)
    note: str  # one line: what the case exercises
    runs_in_ort: bool = True


CASES: dict[str, TinyCase] = {}


def register(
    name: str,
    *,
    expect_prunable: int | None,
    note: str,
    runs_in_ort: bool = True,
    **build_kwargs: Any,
) -> Callable[[Callable[..., onnx.ModelProto]], Callable[..., onnx.ModelProto]]:
    """Register a builder under ``name``; ``build_kwargs`` (e.g. opset) are bound to it.

    Stacked decorators register bottom-up, so the primary case goes next to the ``def``.
    """

    def decorate(fn: Callable[..., onnx.ModelProto]) -> Callable[..., onnx.ModelProto]:
        if name in CASES:
            raise ValueError(f"duplicate tiny case name: {name!r}")
        build = partial(fn, **build_kwargs) if build_kwargs else fn
        CASES[name] = TinyCase(name, build, expect_prunable, note, runs_in_ort)
        return fn

    return decorate


class GraphBuilder:
    """Accumulates nodes, initializers and graph inputs/outputs with unique names."""

    def __init__(
        self,
        name: str,
        opset: int = DEFAULT_OPSET,
        seed: int = 0,
        *,
        constant_nodes: bool = False,
    ) -> None:
        self.name = name
        self.opset = opset
        self.rng = np.random.default_rng(seed)
        self.constant_nodes = constant_nodes  # constants become Constant nodes, not initializers
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self.domains: dict[str, int] = {}
        self._used: set[str] = set()
        self._consts: dict[str, np.ndarray] = {}

    # -- names and constants -------------------------------------------------------------------

    def fresh(self, prefix: str) -> str:
        """Return a name starting with ``prefix`` that is not used yet anywhere in the graph."""
        i = 0
        while f"{prefix}_{i}" in self._used:
            i += 1
        name = f"{prefix}_{i}"
        self._used.add(name)
        return name

    def const(self, value: np.ndarray, hint: str = "const", name: str | None = None) -> str:
        """Add a constant (initializer or Constant node); an explicit ``name`` may be shared."""
        if name is not None and name in self._consts:
            if not np.array_equal(self._consts[name], value):
                raise ValueError(f"shared constant {name!r} redefined with other values")
            return name
        if name is None:
            name = self.fresh(hint)
        else:
            self._used.add(name)
        self._consts[name] = value
        tensor = numpy_helper.from_array(value, name)
        if self.constant_nodes:
            node_name = self.fresh(f"{name}_constant")
            self.nodes.append(helper.make_node("Constant", [], [name], node_name, value=tensor))
        else:
            self.initializers.append(tensor)
        return name

    def param(
        self, shape: Sequence[int], hint: str, scale: float = 1.0, positive: bool = False
    ) -> str:
        """Add a random float32 constant: normal * scale, or uniform in [0.5, 1.5) if positive."""
        if positive:
            value = self.rng.uniform(0.5, 1.5, size=tuple(shape))
        else:
            value = self.rng.standard_normal(tuple(shape)) * scale
        return self.const(value.astype(np.float32), hint)

    def ints(self, values: Sequence[int], hint: str = "shape") -> str:
        """Add an int64 1-D constant (shapes, axes, pads, split sizes, slice bounds)."""
        return self.const(np.asarray(values, dtype=np.int64), hint)

    def scalar(self, value: float, hint: str = "scalar") -> str:
        """Add a float32 0-d constant."""
        return self.const(np.asarray(value, dtype=np.float32), hint)

    # -- nodes ---------------------------------------------------------------------------------

    def ops(
        self,
        op_type: str,
        inputs: Sequence[str],
        n_outputs: int,
        *,
        hint: str | None = None,
        domain: str = "",
        **attrs: Any,
    ) -> list[str]:
        """Add a node with ``n_outputs`` outputs; return the output names."""
        node_name = self.fresh(hint or op_type.lower())
        outputs = [self.fresh(f"{node_name}_out") for _ in range(n_outputs)]
        node = helper.make_node(op_type, list(inputs), outputs, node_name, domain=domain, **attrs)
        self.nodes.append(node)
        return outputs

    def op(
        self, op_type: str, inputs: Sequence[str], *, hint: str | None = None, **attrs: Any
    ) -> str:
        """Add a single-output node; return its output name."""
        return self.ops(op_type, inputs, 1, hint=hint, **attrs)[0]

    # -- graph boundary ------------------------------------------------------------------------

    def input(self, name: str, shape: Sequence[int], elem_type: int = FLOAT) -> str:
        """Declare a graph input with a static shape."""
        self._used.add(name)
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
        return name

    def output(self, value: str, shape: Sequence[int], elem_type: int = FLOAT) -> None:
        """Declare an existing value as graph output with its expected static shape."""
        self.outputs.append(helper.make_tensor_value_info(value, elem_type, list(shape)))

    def build(self) -> onnx.ModelProto:
        """Assemble the model, with the lowest IR version that supports its opsets."""
        opsets = [helper.make_opsetid("", self.opset)]
        opsets += [helper.make_opsetid(d, v) for d, v in self.domains.items()]
        graph = helper.make_graph(
            self.nodes, self.name, self.inputs, self.outputs, self.initializers
        )
        model = make_model(graph, opset_imports=opsets, producer_name="onnx-netadapt-tests")
        return model

    # -- layers --------------------------------------------------------------------------------

    def conv(
        self,
        x: str,
        cin: int,
        cout: int,
        k: int = 3,
        *,
        stride: int = 1,
        group: int = 1,
        bias: bool = True,
        pad: int | None = None,
        hint: str = "conv",
    ) -> str:
        """Square-kernel Conv with random weights ([cout, cin/group, k, k]); 'same' pad."""
        pad = k // 2 if pad is None else pad
        fan_in = cin // group * k * k
        inputs = [x, self.param([cout, cin // group, k, k], f"{hint}_w", fan_in**-0.5)]
        if bias:
            inputs.append(self.param([cout], f"{hint}_b", 0.1))
        return self.op(
            "Conv",
            inputs,
            hint=hint,
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[pad] * 4,
            group=group,
        )

    def bn(self, x: str, c: int) -> str:
        """Inference BatchNormalization with random positive scale/var."""
        scale = self.param([c], "bn_scale", positive=True)
        bias = self.param([c], "bn_bias", 0.1)
        mean = self.param([c], "bn_mean", 0.1)
        var = self.param([c], "bn_var", positive=True)
        return self.op("BatchNormalization", [x, scale, bias, mean, var], epsilon=1e-5)

    def relu(self, x: str) -> str:
        return self.op("Relu", [x])

    def conv_bn_relu(self, x: str, cin: int, cout: int, k: int = 3, **kw: Any) -> str:
        return self.relu(self.bn(self.conv(x, cin, cout, k, bias=False, **kw), cout))

    def gemm(self, x: str, cin: int, cout: int, *, trans_b: bool = True) -> str:
        """Gemm with a constant weight and bias."""
        shape = [cout, cin] if trans_b else [cin, cout]
        w = self.param(shape, "gemm_w", cin**-0.5)
        b = self.param([cout], "gemm_b", 0.1)
        return self.op("Gemm", [x, w, b], transB=int(trans_b))

    def matmul(self, x: str, cin: int, cout: int) -> str:
        """MatMul with a constant [cin, cout] weight."""
        return self.op("MatMul", [x, self.param([cin, cout], "matmul_w", cin**-0.5)])

    def add_param(self, x: str, shape: Sequence[int]) -> str:
        """Add a random constant of ``shape`` (bias, broadcast by ONNX rules)."""
        return self.op("Add", [x, self.param(shape, "bias", 0.1)])

    def head(self, x: str, c: int, classes: int = 10) -> str:
        """GlobalAveragePool - Flatten - Gemm classifier; returns a [1, classes] tensor."""
        return self.gemm(self.op("Flatten", [self.op("GlobalAveragePool", [x])]), c, classes)

    # -- ops whose signature changed across opsets ---------------------------------------------

    def reduce(self, op_type: str, x: str, axes: Sequence[int], keepdims: bool = True) -> str:
        """Reduce* with axes as attribute or input, whichever the opset wants."""
        axes_as_input = self.opset >= 18 or (op_type == "ReduceSum" and self.opset >= 13)
        if axes_as_input:
            return self.op(op_type, [x, self.ints(axes, "axes")], keepdims=int(keepdims))
        return self.op(op_type, [x], axes=list(axes), keepdims=int(keepdims))

    def squeeze(self, x: str, axes: Sequence[int]) -> str:
        if self.opset >= 13:
            return self.op("Squeeze", [x, self.ints(axes, "axes")])
        return self.op("Squeeze", [x], axes=list(axes))

    def unsqueeze(self, x: str, axes: Sequence[int]) -> str:
        if self.opset >= 13:
            return self.op("Unsqueeze", [x, self.ints(axes, "axes")])
        return self.op("Unsqueeze", [x], axes=list(axes))

    def split(
        self, x: str, sizes: Sequence[int], axis: int = 1, *, num_outputs: bool = False
    ) -> list[str]:
        """Split; ``num_outputs=True`` uses the opset-18 attribute (equal chunks) instead."""
        n = len(sizes)
        if num_outputs:
            if self.opset < 18 or len(set(sizes)) != 1:
                raise ValueError("num_outputs needs opset >= 18 and equal chunks")
            return self.ops("Split", [x], n, axis=axis, num_outputs=n)
        if self.opset >= 13:
            return self.ops("Split", [x, self.ints(sizes, "split")], n, axis=axis)
        return self.ops("Split", [x], n, axis=axis, split=list(sizes))


# ---------------------------------------------------------------------------------------------
# Plain chains and element-wise ops
# ---------------------------------------------------------------------------------------------


@register("opset_21", expect_prunable=3, note="conv_bn_relu_chain at opset 21", opset=21)
@register("opset_11", expect_prunable=3, note="conv_bn_relu_chain at opset 11", opset=11)
@register(
    "conv_bn_relu_chain",
    expect_prunable=3,
    note="Conv-BN-Relu x3 then GAP-Flatten-Gemm classifier (the Gemm reaches the output)",
)
def conv_bn_relu_chain(opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    b = GraphBuilder(f"conv_bn_relu_chain_opset{opset}", opset)
    x = b.input("input", [1, 3, 8, 8])
    x = b.conv_bn_relu(x, 3, 16)
    x = b.conv_bn_relu(x, 16, 16)
    x = b.conv_bn_relu(x, 16, 32)
    b.output(b.head(x, 32), [1, 10])
    return b.build()


@register(
    "constant_node_weights",
    expect_prunable=3,
    note="conv_bn_relu_chain with every weight/bias/BN param coming from Constant nodes",
)
def constant_node_weights() -> onnx.ModelProto:
    b = GraphBuilder("constant_node_weights", constant_nodes=True)
    x = b.input("input", [1, 3, 8, 8])
    x = b.conv_bn_relu(x, 3, 16)
    x = b.conv_bn_relu(x, 16, 16)
    x = b.conv_bn_relu(x, 16, 32)
    b.output(b.head(x, 32), [1, 10])
    return b.build()


@register(
    "conv_activations_a",
    expect_prunable=14,
    note="14 convs each followed by a different unary activation; last conv feeds the output",
)
def conv_activations_a() -> onnx.ModelProto:
    b = GraphBuilder("conv_activations_a")
    c = 8
    activations: list[Callable[[str], str]] = [
        b.relu,
        lambda x: b.op("Clip", [x, b.scalar(0.0, "clip_min"), b.scalar(6.0, "clip_max")]),
        lambda x: b.op("Sigmoid", [x]),
        lambda x: b.op("HardSigmoid", [x], alpha=0.2, beta=0.5),
        lambda x: b.op("HardSwish", [x]),
        lambda x: b.op("LeakyRelu", [x], alpha=0.1),
        lambda x: b.op("PRelu", [x, b.param([c, 1, 1], "prelu_slope", 0.1)]),
        lambda x: b.op("Tanh", [x]),
        lambda x: b.op("Elu", [x], alpha=1.0),
        lambda x: b.op("Softplus", [x]),
        lambda x: b.op("Erf", [x]),
        lambda x: b.op("Identity", [x]),
        lambda x: b.op("Cast", [x], to=FLOAT),
        lambda x: b.op("Dropout", [x]),
    ]
    x = b.input("input", [1, 3, 8, 8])
    cin = 3
    for act in activations:
        x = act(b.conv(x, cin, c))
        cin = c
    b.output(b.conv(x, c, 4), [1, 4, 8, 8])
    return b.build()


@register(
    "conv_activations_gelu",
    expect_prunable=2,
    note="Gelu (exact and tanh approximation) after convs, opset 20",
)
def conv_activations_gelu(opset: int = 20) -> onnx.ModelProto:
    b = GraphBuilder("conv_activations_gelu", opset)
    x = b.input("input", [1, 3, 8, 8])
    x = b.op("Gelu", [b.conv(x, 3, 8)])
    x = b.op("Gelu", [b.conv(x, 8, 8)], approximate="tanh")
    b.output(b.conv(x, 8, 4), [1, 4, 8, 8])
    return b.build()


@register(
    "binary_ops_per_channel_const",
    expect_prunable=3,
    note="Add/Sub/Mul/Div/Pow/Max/Min with [C,1,1], [1,C,1,1] and scalar constants, both sides",
)
def binary_ops_per_channel_const() -> onnx.ModelProto:
    b = GraphBuilder("binary_ops_per_channel_const")
    c = 16
    x = b.input("input", [1, 3, 8, 8])
    x = b.conv(x, 3, c)
    x = b.op("Add", [x, b.param([c, 1, 1], "add_c11", 0.1)])
    x = b.op("Mul", [b.param([1, c, 1, 1], "mul_1c11", positive=True), x])  # constant first
    x = b.relu(x)
    x = b.conv(x, c, c)
    x = b.op("Sub", [x, b.scalar(0.25, "sub_scalar")])
    x = b.op("Sub", [b.param([1, c, 1, 1], "rsub_1c11", 0.1), x])  # constant minus tensor
    x = b.op("Div", [x, b.param([c, 1, 1], "div_c11", positive=True)])
    x = b.op("Max", [x, b.param([1, c, 1, 1], "max_1c11", 0.1)])
    x = b.op("Min", [x, b.scalar(3.0, "min_scalar")])
    x = b.conv(x, c, c)
    x = b.op("Pow", [x, b.scalar(2.0, "pow_exponent")])
    x = b.op("Mul", [x, b.const(np.asarray([0.5], dtype=np.float32), "mul_scalar_1d")])
    b.output(b.conv(x, c, 4), [1, 4, 8, 8])
    return b.build()


# ---------------------------------------------------------------------------------------------
# Spatial ops: pooling, reductions over H/W, resize, pad
# ---------------------------------------------------------------------------------------------


@register(
    "pooling",
    expect_prunable=3,
    note="MaxPool/AveragePool between convs; GlobalMax/GlobalAverage branches added into output",
)
def pooling() -> onnx.ModelProto:
    b = GraphBuilder("pooling")
    x = b.input("input", [1, 3, 8, 8])
    x = b.relu(b.conv(x, 3, 8))
    x = b.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])  # -> 4x4
    x = b.relu(b.conv(x, 8, 16))
    x = b.op("AveragePool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    x = b.relu(b.conv(x, 16, 16))
    gmax = b.conv(b.op("GlobalMaxPool", [x]), 16, 10, 1)
    gavg = b.conv(b.op("GlobalAveragePool", [x]), 16, 10, 1)
    b.output(b.op("Flatten", [b.op("Add", [gmax, gavg])]), [1, 10])
    return b.build()


@register(
    "reduce_spatial_opset18",
    expect_prunable=2,
    note="reduce_spatial at opset 18 (axes as an input)",
    opset=18,
)
@register(
    "reduce_spatial",
    expect_prunable=2,
    note="ReduceMean/ReduceMax over H,W (axes attribute), keepdims=1 into conv, =0 into Gemm",
)
def reduce_spatial(opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    b = GraphBuilder(f"reduce_spatial_opset{opset}", opset)
    x = b.input("input", [1, 3, 8, 8])
    x = b.relu(b.conv(x, 3, 16))
    x = b.reduce("ReduceMean", x, [2, 3], keepdims=True)  # [1, 16, 1, 1]
    x = b.relu(b.conv(x, 16, 16, 1))
    x = b.reduce("ReduceMax", x, [2, 3], keepdims=False)  # [1, 16]
    b.output(b.gemm(x, 16, 10), [1, 10])
    return b.build()


@register(
    "resize_pad",
    expect_prunable=2,
    note="Resize (nearest, scales input) and Pad (pads input, 0 on the channel axis) between convs",
)
def resize_pad() -> onnx.ModelProto:
    b = GraphBuilder("resize_pad")
    x = b.input("input", [1, 3, 8, 8])
    x = b.relu(b.conv(x, 3, 8, stride=2))  # 4x4
    scales = b.const(np.asarray([1, 1, 2, 2], dtype=np.float32), "resize_scales")
    x = b.op("Resize", [x, "", scales], mode="nearest")  # 8x8
    x = b.relu(b.conv(x, 8, 16))
    x = b.op("Pad", [x, b.ints([0, 0, 1, 1, 0, 0, 1, 1], "pads")], mode="constant")  # 10x10
    b.output(b.conv(x, 16, 4, pad=0), [1, 4, 8, 8])
    return b.build()


# ---------------------------------------------------------------------------------------------
# Residual coupling, concat, split, slice
# ---------------------------------------------------------------------------------------------


@register(
    "residual_chain",
    expect_prunable=4,
    note="stem + 3 residual blocks: stem and every block's last conv are one group, +3 inner",
)
def residual_chain() -> onnx.ModelProto:
    b = GraphBuilder("residual_chain")
    c = 16
    x = b.conv_bn_relu(b.input("input", [1, 3, 8, 8]), 3, c)
    for _ in range(3):
        y = b.conv_bn_relu(x, c, c)
        y = b.bn(b.conv(y, c, c, bias=False), c)
        x = b.relu(b.op("Add", [y, x]))
    b.output(b.head(x, c), [1, 10])
    return b.build()


@register(
    "residual_projection",
    expect_prunable=3,
    note="residual block with a strided 1x1 projection conv on the shortcut (couples with it)",
)
def residual_projection() -> onnx.ModelProto:
    b = GraphBuilder("residual_projection")
    x = b.conv_bn_relu(b.input("input", [1, 3, 8, 8]), 3, 16)
    y = b.conv_bn_relu(x, 16, 32, stride=2)
    y = b.bn(b.conv(y, 32, 32, bias=False), 32)
    shortcut = b.bn(b.conv(x, 16, 32, 1, stride=2, bias=False), 32)
    x = b.relu(b.op("Add", [shortcut, y]))
    b.output(b.conv(x, 32, 8), [1, 8, 4, 4])
    return b.build()


@register(
    "concat_residual_streams",
    expect_prunable=5,
    note="two residual streams concatenated on channels then a conv: stem, 2 streams, 2 inner",
)
def concat_residual_streams() -> onnx.ModelProto:
    b = GraphBuilder("concat_residual_streams")
    stem = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 16))
    streams = []
    for cs in (8, 12):
        s = b.relu(b.conv(stem, 16, cs, 1))
        y = b.conv(b.relu(b.conv(s, cs, cs)), cs, cs)
        streams.append(b.relu(b.op("Add", [s, y])))
    x = b.op("Concat", streams, axis=1)
    b.output(b.conv(x, 20, 10), [1, 10, 8, 8])
    return b.build()


@register(
    "split_channels_opset11",
    expect_prunable=3,
    note="split_channels at opset 11 (split sizes as attribute)",
    opset=11,
)
@register(
    "split_channels",
    expect_prunable=3,
    note="uneven Split [6,10] on channels (split sizes as input) into two convs, then Concat",
)
def split_channels(opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    b = GraphBuilder(f"split_channels_opset{opset}", opset)
    x = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 16))
    lo, hi = b.split(x, [6, 10])
    x = b.op("Concat", [b.relu(b.conv(lo, 6, 8)), b.relu(b.conv(hi, 10, 8))], axis=1)
    b.output(b.conv(x, 16, 4), [1, 4, 8, 8])
    return b.build()


@register(
    "split_channels_opset18",
    expect_prunable=3,
    note="Split with the opset-18 num_outputs attribute (equal chunks) into two convs",
)
def split_channels_opset18(opset: int = 18) -> onnx.ModelProto:
    b = GraphBuilder("split_channels_opset18", opset)
    x = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 16))
    lo, hi = b.split(x, [8, 8], num_outputs=True)
    x = b.op("Concat", [b.relu(b.conv(lo, 8, 8)), b.relu(b.conv(hi, 8, 8))], axis=1)
    b.output(b.conv(x, 16, 4), [1, 4, 8, 8])
    return b.build()


@register(
    "slice_channels",
    expect_prunable=3,
    note="Slice [0:8] and [8:INT64_MAX] on the channel axis feeding two convs",
)
def slice_channels() -> onnx.ModelProto:
    b = GraphBuilder("slice_channels")
    x = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 16))
    axes = b.ints([1], "slice_axes")
    lo = b.op("Slice", [x, b.ints([0], "starts"), b.ints([8], "ends"), axes])
    hi = b.op("Slice", [x, b.ints([8], "starts"), b.ints([np.iinfo(np.int64).max], "ends"), axes])
    x = b.op("Concat", [b.relu(b.conv(lo, 8, 8)), b.relu(b.conv(hi, 8, 8))], axis=1)
    b.output(b.conv(x, 16, 4), [1, 4, 8, 8])
    return b.build()


# ---------------------------------------------------------------------------------------------
# Depthwise, grouped, shuffled and attention-like convs
# ---------------------------------------------------------------------------------------------


@register(
    "depthwise_after_pointwise",
    expect_prunable=2,
    note="MobileNet block: pointwise conv and depthwise 3x3 (group=C) share a group, + pw2",
)
def depthwise_after_pointwise() -> onnx.ModelProto:
    b = GraphBuilder("depthwise_after_pointwise")
    x = b.input("input", [1, 8, 8, 8])
    x = b.conv_bn_relu(x, 8, 32, 1)
    x = b.conv_bn_relu(x, 32, 32, 3, group=32)
    x = b.bn(b.conv(x, 32, 16, 1, bias=False), 16)
    b.output(b.head(x, 16), [1, 10])
    return b.build()


@register(
    "depthwise_multiplier",
    expect_prunable=1,
    note="depthwise conv with depth multiplier 2: input channel c owns outputs 2c and 2c+1",
)
def depthwise_multiplier() -> onnx.ModelProto:
    b = GraphBuilder("depthwise_multiplier")
    x = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 8))
    x = b.relu(b.conv(x, 8, 16, group=8))
    b.output(b.conv(x, 16, 8, 1), [1, 8, 8, 8])
    return b.build()


@register(
    "grouped_conv_narrow",
    expect_prunable=2,
    note="ResNeXt-style: 1x1 (32) -> 3x3 in 16 groups of 2: whole conv-groups go, with the 1x1",
    groups=16,
)
@register(
    "grouped_conv",
    expect_prunable=3,
    note="4 wide groups of 8: the same index goes from every group; the grouped conv's own "
    "filters form a group of their own",
)
def grouped_conv(groups: int = 4) -> onnx.ModelProto:
    b = GraphBuilder(f"grouped_conv_{groups}")
    stem = b.conv_bn_relu(b.input("input", [1, 3, 8, 8]), 3, 16)
    x = b.conv_bn_relu(stem, 16, 32, 1)
    x = b.conv_bn_relu(x, 32, 32, 3, group=groups)
    x = b.bn(b.conv(x, 32, 16, 1, bias=False), 16)
    x = b.relu(b.op("Add", [x, stem]))
    b.output(b.head(x, 16), [1, 10])
    return b.build()


@register(
    "squeeze_excite",
    expect_prunable=2,
    note="SE block: Mul(conv, sigmoid(expand conv)) couples conv and expand; reduce conv alone",
)
def squeeze_excite() -> onnx.ModelProto:
    b = GraphBuilder("squeeze_excite")
    x = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 16))
    s = b.op("GlobalAveragePool", [x])
    s = b.relu(b.conv(s, 16, 4, 1))
    s = b.op("Sigmoid", [b.conv(s, 4, 16, 1)])
    x = b.op("Mul", [x, s])
    b.output(b.conv(x, 16, 10), [1, 10, 8, 8])
    return b.build()


def _channel_shuffle(b: GraphBuilder, x: str, c: int, hw: int, first: bool) -> str:
    """Reshape [N,2,C/2,H,W] - Transpose [0,2,1,3,4] - Reshape [N,C,H,W] (two shape styles)."""
    if first:
        to5d, to4d = [1, 2, c // 2, hw, hw], [1, c, hw, hw]
    else:
        to5d, to4d = [1, 2, -1, hw, hw], [1, -1, hw, hw]  # torch-like -1 dims
    x = b.op("Reshape", [x, b.ints(to5d, "shuffle_shape")])
    x = b.op("Transpose", [x], perm=[0, 2, 1, 3, 4])
    return b.op("Reshape", [x, b.ints(to4d, "shuffle_shape")])


@register(
    "channel_shuffle",
    expect_prunable=2,
    note="ShuffleNetV2 unit: shuffle couples both branches and the post-split conv; + stem",
)
def channel_shuffle() -> onnx.ModelProto:
    b = GraphBuilder("channel_shuffle")
    stem = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 16))
    left = b.conv_bn_relu(stem, 16, 8, 1)
    right = b.conv_bn_relu(stem, 16, 8, 1)
    x = _channel_shuffle(b, b.op("Concat", [left, right], axis=1), 16, 8, first=True)
    keep, through = b.split(x, [8, 8])
    through = b.conv_bn_relu(through, 8, 8, 1)
    x = _channel_shuffle(b, b.op("Concat", [keep, through], axis=1), 16, 8, first=False)
    b.output(b.conv(x, 16, 10, 1), [1, 10, 8, 8])
    return b.build()


# ---------------------------------------------------------------------------------------------
# Flatten / reshape into dense layers, MatMul weights, layouts
# ---------------------------------------------------------------------------------------------


@register(
    "flatten_into_gemm",
    expect_prunable=2,
    note="conv (16 ch, 4x4) -> Flatten -> Gemm(transB=1): each channel owns 16 Gemm columns",
)
def flatten_into_gemm() -> onnx.ModelProto:
    b = GraphBuilder("flatten_into_gemm")
    x = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 16, stride=2))  # [1, 16, 4, 4]
    x = b.op("Flatten", [x], axis=1)
    x = b.relu(b.gemm(x, 16 * 4 * 4, 64))
    b.output(b.gemm(x, 64, 10), [1, 10])
    return b.build()


@register(
    "reshape_into_matmul",
    expect_prunable=2,
    note="conv -> Reshape [1, C*H*W] (constant shape) -> MatMul + Add bias -> MatMul classifier",
)
def reshape_into_matmul() -> onnx.ModelProto:
    b = GraphBuilder("reshape_into_matmul")
    x = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 8, stride=2))  # [1, 8, 4, 4]
    x = b.op("Reshape", [x, b.ints([1, 8 * 4 * 4], "flat_shape")])
    x = b.relu(b.add_param(b.matmul(x, 8 * 4 * 4, 16), [16]))
    b.output(b.matmul(x, 16, 10), [1, 10])
    return b.build()


@register(
    "nhwc_transposes",
    expect_prunable=2,
    note="TF-style NHWC graph: Transposes around convs, [C] bias and Relu in NHWC, ReduceMean H,W",
)
def nhwc_transposes() -> onnx.ModelProto:
    b = GraphBuilder("nhwc_transposes")
    x = b.input("input", [1, 8, 8, 3])
    cin = 3
    for cout in (16, 16):
        x = b.op("Transpose", [x], perm=[0, 3, 1, 2])
        x = b.conv(x, cin, cout, bias=False)
        x = b.op("Transpose", [x], perm=[0, 2, 3, 1])
        x = b.relu(b.add_param(x, [cout]))
        cin = cout
    x = b.reduce("ReduceMean", x, [1, 2], keepdims=False)  # [1, 16]
    b.output(b.matmul(x, 16, 10), [1, 10])
    return b.build()


@register(
    "matmul_const_weight",
    expect_prunable=2,
    note="token MLP on [1,16,C]: embed MatMul + residual couple with fc2; fc1 hidden alone",
)
def matmul_const_weight() -> onnx.ModelProto:
    b = GraphBuilder("matmul_const_weight")
    c = 16
    h = b.add_param(b.matmul(b.input("input", [1, 16, 8]), 8, c), [c])  # embedding
    y = b.relu(b.add_param(b.matmul(h, c, 4 * c), [4 * c]))
    y = b.add_param(b.matmul(y, 4 * c, c), [c])
    x = b.op("Add", [h, y])
    b.output(b.matmul(x, c, 8), [1, 16, 8])
    return b.build()


@register(
    "squeeze_unsqueeze_opset11",
    expect_prunable=1,
    note="squeeze_unsqueeze at opset 11 (axes as attributes)",
    opset=11,
)
@register(
    "squeeze_unsqueeze",
    expect_prunable=1,
    note="conv -> GAP -> Squeeze [2,3] -> Unsqueeze [2,3] -> conv (axes as inputs)",
)
def squeeze_unsqueeze(opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    b = GraphBuilder(f"squeeze_unsqueeze_opset{opset}", opset)
    x = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 16))
    x = b.squeeze(b.op("GlobalAveragePool", [x]), [2, 3])  # [1, 16]
    x = b.unsqueeze(x, [2, 3])  # [1, 16, 1, 1]
    b.output(b.conv(x, 16, 10, 1), [1, 10, 1, 1])
    return b.build()


@register(
    "shared_initializers",
    expect_prunable=3,
    note="two chained convs share one weight and one bias initializer name (must be un-shared)",
)
def shared_initializers() -> onnx.ModelProto:
    b = GraphBuilder("shared_initializers")
    x = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 8))
    w = (b.rng.standard_normal((8, 8, 3, 3)) / np.sqrt(72)).astype(np.float32)
    bias = (b.rng.standard_normal(8) * 0.1).astype(np.float32)
    for _ in range(2):
        inputs = [x, b.const(w, name="shared_conv_w"), b.const(bias, name="shared_conv_b")]
        x = b.relu(b.op("Conv", inputs, hint="shared_conv", kernel_shape=[3, 3], pads=[1] * 4))
    b.output(b.head(x, 8), [1, 10])
    return b.build()


@register(
    "conv_transpose",
    expect_prunable=2,
    note="conv -> ConvTranspose (stride 2, output channels on weight dim 1) -> conv",
)
def conv_transpose() -> onnx.ModelProto:
    b = GraphBuilder("conv_transpose")
    x = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 16, stride=2))  # 4x4
    w = b.param([16, 8, 3, 3], "deconv_w", 16**-0.5)  # [C_in, C_out / group, kH, kW]
    bias = b.param([8], "deconv_b", 0.1)
    x = b.op(
        "ConvTranspose",
        [x, w, bias],
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
        output_padding=[1, 1],
    )  # 8x8
    x = b.relu(x)
    b.output(b.conv(x, 8, 10), [1, 10, 8, 8])
    return b.build()


@register(
    "instance_norm",
    expect_prunable=1,
    note="conv -> InstanceNormalization (per-channel scale/bias) -> conv",
)
def instance_norm() -> onnx.ModelProto:
    b = GraphBuilder("instance_norm")
    x = b.conv(b.input("input", [1, 3, 8, 8]), 3, 16)
    scale = b.param([16], "in_scale", positive=True)
    x = b.op("InstanceNormalization", [x, scale, b.param([16], "in_bias", 0.1)], epsilon=1e-5)
    b.output(b.conv(b.relu(x), 16, 10), [1, 10, 8, 8])
    return b.build()


def _convnext_block(decomposed_ln: bool) -> onnx.ModelProto:
    """Stem, then depthwise conv - NHWC LayerNorm - MatMul MLP - NCHW + residual, then a head."""
    b = GraphBuilder("layernorm_decomposed" if decomposed_ln else "layernorm_channels")
    c = 16
    stem = b.conv(b.input("input", [1, 3, 8, 8]), 3, c)
    x = b.conv(stem, c, c, group=c)
    x = b.op("Transpose", [x], perm=[0, 2, 3, 1])
    if decomposed_ln:
        mean = b.reduce("ReduceMean", x, [-1])
        d = b.op("Sub", [x, mean])
        var = b.reduce("ReduceMean", b.op("Pow", [d, b.scalar(2.0, "ln_two")]), [-1])
        std = b.op("Sqrt", [b.op("Add", [var, b.scalar(1e-6, "ln_eps")])])
        x = b.op("Div", [d, std])
        x = b.op("Mul", [x, b.param([c], "ln_gamma", positive=True)])
        x = b.add_param(x, [c])
    else:
        gamma, beta = b.param([c], "ln_gamma", positive=True), b.param([c], "ln_beta", 0.1)
        x = b.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=1e-6)
    x = b.relu(b.add_param(b.matmul(x, c, 4 * c), [4 * c]))
    x = b.add_param(b.matmul(x, 4 * c, c), [c])
    x = b.op("Transpose", [x], perm=[0, 3, 1, 2])
    x = b.op("Add", [stem, x])
    b.output(b.head(x, c), [1, 10])
    return b.build()


@register(
    "layernorm_channels",
    expect_prunable=None,
    note="ConvNeXt block: NHWC LayerNormalization(axis=-1) normalizes over channels (approx.)",
)
def layernorm_channels() -> onnx.ModelProto:
    return _convnext_block(decomposed_ln=False)


@register(
    "layernorm_decomposed",
    expect_prunable=None,
    note="ConvNeXt block with LayerNorm spelled as ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add",
)
def layernorm_decomposed() -> onnx.ModelProto:
    return _convnext_block(decomposed_ln=True)


# ---------------------------------------------------------------------------------------------
# Blockers: channel-axis softmax/reduction, unknown ops, graph outputs; quantized ops
# ---------------------------------------------------------------------------------------------


@register(
    "softmax_channels",
    expect_prunable=1,
    note="conv0 -> conv1 -> Softmax(axis=1) -> conv2: only conv0 stays prunable",
)
def softmax_channels() -> onnx.ModelProto:
    b = GraphBuilder("softmax_channels")
    x = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 8))
    x = b.op("Softmax", [b.conv(x, 8, 16)], axis=1)
    b.output(b.conv(x, 16, 10), [1, 10, 8, 8])
    return b.build()


@register(
    "reduce_over_channels",
    expect_prunable=1,
    note="spatial attention: ReduceMean over channels then Mul back blocks conv1; conv0 prunable",
)
def reduce_over_channels() -> onnx.ModelProto:
    b = GraphBuilder("reduce_over_channels")
    x = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 8))
    x = b.conv(x, 8, 16)
    att = b.op("Sigmoid", [b.reduce("ReduceMean", x, [1], keepdims=True)])  # [1, 1, 8, 8]
    x = b.op("Mul", [x, att])
    b.output(b.conv(x, 16, 10), [1, 10, 8, 8])
    return b.build()


@register(
    "unknown_op",
    expect_prunable=1,
    note="conv1 feeds a custom-domain op com.example::Mystery (no rule); conv0 prunable",
    runs_in_ort=False,
)
def unknown_op() -> onnx.ModelProto:
    b = GraphBuilder("unknown_op")
    b.domains["com.example"] = 1
    x = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 8))
    x = b.ops("Mystery", [b.conv(x, 8, 16)], 1, domain="com.example")[0]
    b.output(b.conv(x, 16, 10), [1, 10, 8, 8])
    return b.build()


@register(
    "graph_output_reach",
    expect_prunable=1,
    note="conv1 -> Relu is a graph output and feeds conv2: conv1 unprunable, conv0 prunable",
)
def graph_output_reach() -> onnx.ModelProto:
    b = GraphBuilder("graph_output_reach")
    x = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 8))
    features = b.relu(b.conv(x, 8, 16))
    b.output(features, [1, 16, 8, 8])
    b.output(b.conv(features, 16, 10), [1, 10, 8, 8])
    return b.build()


@register(
    "quantized",
    expect_prunable=None,
    note="QuantizeLinear -> QLinearConv x2 (u8 activations, s8 per-channel weights) -> Dequantize",
)
def quantized() -> onnx.ModelProto:
    b = GraphBuilder("quantized")

    def u8(v: int) -> np.ndarray:
        return np.asarray(v, dtype=np.uint8)

    def f32(v: float | np.ndarray) -> np.ndarray:
        return np.asarray(v, dtype=np.float32)

    def qconv(
        xq: str, x_scale: str, x_zp: str, cin: int, cout: int, y_scale: float
    ) -> tuple[str, str, str]:
        """QLinearConv 3x3; returns (output, its scale name, its zero-point name)."""
        w = b.rng.integers(-127, 128, size=(cout, cin, 3, 3), dtype=np.int8)
        w_scale = b.rng.uniform(0.002, 0.004, size=cout)
        bias = b.rng.integers(-500, 500, size=cout, dtype=np.int32)
        ys, yz = b.const(f32(y_scale), "qconv_y_scale"), b.const(u8(128), "qconv_y_zp")
        inputs = [
            xq,
            x_scale,
            x_zp,
            b.const(w, "qconv_w"),
            b.const(f32(w_scale), "qconv_w_scale"),
            b.const(np.zeros(cout, dtype=np.int8), "qconv_w_zp"),
            ys,
            yz,
            b.const(bias, "qconv_b"),
        ]
        return b.op("QLinearConv", inputs, kernel_shape=[3, 3], pads=[1] * 4), ys, yz

    x = b.input("input", [1, 3, 8, 8])
    s0, z0 = b.const(f32(0.02), "x_scale"), b.const(u8(128), "x_zp")
    xq = b.op("QuantizeLinear", [x, s0, z0])
    y1, s1, z1 = qconv(xq, s0, z0, 3, 16, 0.05)
    y2, s2, z2 = qconv(y1, s1, z1, 16, 8, 0.1)
    b.output(b.op("DequantizeLinear", [y2, s2, z2]), [1, 8, 8, 8])
    return b.build()


# ---------------------------------------------------------------------------------------------
# Declared shapes and weights computed at run time (issue 12)
# ---------------------------------------------------------------------------------------------


def paddle_declared_dims(batch: int = 1) -> onnx.ModelProto:
    """Paddle-style declarations: IR 7, opset 11, output batch ``dim_value: -1``, a value_info
    with ``dim_value: 0``; the input batch is ``batch`` (-1 for the CLI test)."""
    b = GraphBuilder("paddle_declared_dims", 11)
    x = b.relu(b.conv(b.input("x", [batch, 3, 12, 24]), 3, 16, stride=2))
    hidden = b.relu(b.conv(x, 16, 16))
    b.output(b.op("Identity", [b.head(hidden, 16, 2)]), [-1, 2])
    model = b.build()
    model.graph.value_info.append(helper.make_tensor_value_info(hidden, FLOAT, [0, 16, 6, 12]))
    model.ir_version = 7
    return model


register(
    "paddle_declared_dims",
    expect_prunable=2,
    note="IR 7 / opset 11, output declared with dim_value -1, a value_info with 0 (Paddle)",
)(paddle_declared_dims)


def _run_time_weight_net(
    name: str, make_weight: Callable[[GraphBuilder], str], opset: int = DEFAULT_OPSET
) -> onnx.ModelProto:
    """conv0 (3->8) -> Conv 'wconv_0' (8->8, weight computed by ``make_weight``) -> conv2
    (8->16) -> classifier. Groups: conv0 (read by wconv), wconv, conv2; the Gemm is an output."""
    b = GraphBuilder(name, opset)
    h = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 8))
    w = make_weight(b)
    bias = b.param([8], "wconv_b", 0.1)
    y = b.op("Conv", [h, w, bias], hint="wconv", kernel_shape=[3, 3], pads=[1] * 4)
    y = b.relu(b.conv(b.relu(y), 8, 16))
    b.output(b.head(y, 16), [1, 10])
    return b.build()


def _stored(b: GraphBuilder, name: str, shape: Sequence[int], scale: float = 0.3) -> str:
    return b.const((b.rng.standard_normal(tuple(shape)) * scale).astype(np.float32), name=name)


def _standardised(b: GraphBuilder, v: str, axes: Sequence[int]) -> str:
    """(v - mean) / sqrt(var + eps) over ``axes`` (BiT-style weight standardisation)."""
    centred = b.op("Sub", [v, b.reduce("ReduceMean", v, axes)])
    var = b.reduce("ReduceMean", b.op("Mul", [centred, centred]), axes)
    return b.op("Div", [centred, b.op("Sqrt", [b.op("Add", [var, b.scalar(1e-6)])])])


@register(
    "ws_scaled_std_conv_bn_opset13",
    expect_prunable=2,
    note="ws_scaled_std_conv_bn as exported at opset 11-13: inference-mode BatchNormalization "
    "whose mean/var come from the exporter's transposed copy of the weight",
    opset=13,
)
@register(
    "ws_scaled_std_conv_bn",
    expect_prunable=2,
    note="timm ScaledStdConv2d, legacy export: BatchNormalization(training_mode=1) over the "
    "weight reshaped to [1,O,I*k*k], times a gain: conv0 (its input channels) approximate",
)
def ws_scaled_std_conv_bn(opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    def weight(b: GraphBuilder) -> str:
        v = b.rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
        flat = b.const(v.reshape(1, 8, 72), name="ws_v")  # the exporter folds the first reshape
        copy = b.const(v.reshape(1, 8, 72).transpose(0, 2, 1).copy(), name="ws_vt")
        mean = b.reduce("ReduceMean", copy, [0, 1], keepdims=False)
        centred = b.op("Sub", [copy, b.reduce("ReduceMean", copy, [0, 1])])
        var = b.reduce("ReduceMean", b.op("Mul", [centred, centred]), [0, 1], keepdims=False)
        gain = b.const((b.rng.uniform(0.5, 1.5, 8) / np.sqrt(72)).astype(np.float32), name="ws_g")
        zero = b.const(np.zeros(8, np.float32), name="ws_zero")
        inputs = [flat, gain, zero, mean, var]
        if opset >= 14:  # batch statistics of the weight itself; mean/var only feed outputs 1, 2
            y = b.ops("BatchNormalization", inputs, 3, epsilon=1e-6, momentum=1.0, training_mode=1)
        else:
            y = b.ops("BatchNormalization", inputs, 1, epsilon=1e-6, momentum=1.0)
        return b.op("Reshape", [y[0], b.ints([8, 8, 3, 3])])

    return _run_time_weight_net(f"ws_scaled_std_conv_bn_opset{opset}", weight, opset=opset)


@register(
    "ws_reduce_gain",
    expect_prunable=2,
    note="weight standardisation as ReduceMean/Sub/Div over [1,2,3] times a per-filter gain",
    gain=True,
)
@register(
    "ws_reduce",
    expect_prunable=2,
    note="BiT weight standardisation as ReduceMean/Sub/Div over [1,2,3]: conv0 approximate",
)
def ws_reduce(gain: bool = False) -> onnx.ModelProto:
    def weight(b: GraphBuilder) -> str:
        w = _standardised(b, _stored(b, "ws_v", [8, 8, 3, 3]), [1, 2, 3])
        if gain:
            w = b.op("Mul", [w, b.const(np.full((8, 1, 1, 1), 0.1, np.float32), name="ws_g")])
        return w

    return _run_time_weight_net(f"ws_reduce_gain{int(gain)}", weight)


@register(
    "weight_norm_inputs",
    expect_prunable=2,
    note="weight norm g[1,I] * v / ||v|| over [0,2,3] (per input channel): conv0 exact, "
    "wconv's own filters approximate",
    axes=(0, 2, 3),
)
@register(
    "weight_norm_filters",
    expect_prunable=2,
    note="weight norm g[O] * v / ||v|| over [1,2,3] (torch dim=0): conv0 approximate, "
    "wconv's filters exact",
)
def weight_norm(axes: tuple[int, ...] = (1, 2, 3)) -> onnx.ModelProto:
    def weight(b: GraphBuilder) -> str:
        v = _stored(b, "wn_v", [8, 8, 3, 3])
        g_shape = [1, 1, 1, 1]
        g_shape[({0, 1, 2, 3} - set(axes)).pop()] = 8
        g = b.const(b.rng.uniform(0.5, 1.5, g_shape).astype(np.float32), name="wn_g")
        return b.op("Mul", [g, b.op("Div", [v, b.reduce("ReduceL2", v, axes)])])

    return _run_time_weight_net(f"weight_norm_{''.join(map(str, axes))}", weight)


@register(
    "reparam_branches_runtime",
    expect_prunable=3,
    note="RepVGG branches summed at run time: w3x3 + Pad(w1x1) + identity kernel (exact)",
)
def reparam_branches_runtime() -> onnx.ModelProto:
    def weight(b: GraphBuilder) -> str:
        identity = np.zeros((8, 8, 3, 3), np.float32)
        identity[np.arange(8), np.arange(8), 1, 1] = 1.0
        w1 = b.op("Pad", [_stored(b, "rep_w1", [8, 8, 1, 1]), b.ints([0, 0, 1, 1, 0, 0, 1, 1])])
        w = b.op("Add", [_stored(b, "rep_w3", [8, 8, 3, 3]), w1])
        return b.op("Add", [w, b.const(identity, name="rep_id")])

    return _run_time_weight_net("reparam_branches_runtime", weight)


@register(
    "scaled_weight_runtime",
    expect_prunable=3,
    note="weight * scale[O,1,1,1] computed at run time (per-filter constant arithmetic, exact)",
)
def scaled_weight_runtime() -> onnx.ModelProto:
    def weight(b: GraphBuilder) -> str:
        scale = b.const(b.rng.uniform(0.5, 1.5, (8, 1, 1, 1)).astype(np.float32), name="sc_s")
        return b.op("Mul", [_stored(b, "sc_v", [8, 8, 3, 3]), scale])

    return _run_time_weight_net("scaled_weight_runtime", weight)


@register(
    "low_rank_weight_runtime",
    expect_prunable=3,
    note="weight = Reshape(A[O,4] @ B[4,I*9]) at run time: rows follow A, columns B (exact)",
)
def low_rank_weight_runtime() -> onnx.ModelProto:
    def weight(b: GraphBuilder) -> str:
        product = b.op("MatMul", [_stored(b, "lr_a", [8, 4]), _stored(b, "lr_b", [4, 72])])
        return b.op("Reshape", [product, b.ints([8, 8, 3, 3])])

    return _run_time_weight_net("low_rank_weight_runtime", weight)


@register(
    "gathered_weight_runtime",
    expect_prunable=1,
    note="weight = Gather(v, permutation, axis=1) at run time: not followed, wconv pinned",
)
def gathered_weight_runtime() -> onnx.ModelProto:
    def weight(b: GraphBuilder) -> str:
        order = b.const(np.asarray([3, 1, 0, 2, 7, 5, 4, 6], np.int64), name="ga_order")
        return b.op("Gather", [_stored(b, "ga_v", [8, 8, 3, 3]), order], axis=1)

    return _run_time_weight_net("gathered_weight_runtime", weight)


@register(
    "condconv_runtime",
    expect_prunable=2,
    note="CondConv: weight = routing(x) @ experts, computed from the input: conv0 pinned "
    "(weight computed at run time); the routing Gemm's experts and conv2 exact",
)
def condconv_runtime() -> onnx.ModelProto:
    b = GraphBuilder("condconv_runtime")
    h = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 8))
    pooled = b.op("Flatten", [b.op("GlobalAveragePool", [h])])
    routing = b.op("Sigmoid", [b.gemm(pooled, 8, 4)])  # [1, 4 experts]
    mixed = b.op("MatMul", [routing, _stored(b, "cc_experts", [4, 8 * 8 * 9])])
    w = b.op("Reshape", [mixed, b.ints([8, 8, 3, 3])])
    y = b.op("Conv", [h, w], hint="wconv", kernel_shape=[3, 3], pads=[1] * 4)
    y = b.relu(b.conv(b.relu(y), 8, 16))
    b.output(b.head(y, 16), [1, 10])
    return b.build()


@register(
    "weight_norm_linear",
    expect_prunable=1,
    note="weight norm on Gemm (transB=1, norm over axis 1) and MatMul ([I,O], norm over axis 0): "
    "the conv and the Gemm's features approximate, the MatMul's features exact",
)
def weight_norm_linear() -> onnx.ModelProto:
    b = GraphBuilder("weight_norm_linear")
    x = b.relu(b.conv(b.input("input", [1, 3, 8, 8]), 3, 8))
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])])
    v = _stored(b, "wn_gemm_v", [16, 8])
    w = b.op("Div", [v, b.reduce("ReduceL2", v, [1])])
    x = b.relu(b.op("Gemm", [x, w, b.param([16], "wn_gemm_b", 0.1)], transB=1))
    v = _stored(b, "wn_matmul_v", [16, 12])
    x = b.relu(b.op("MatMul", [x, b.op("Div", [v, b.reduce("ReduceL2", v, [0])])]))
    b.output(b.gemm(x, 12, 10), [1, 10])
    return b.build()


# -- attention heads (issue 12, section 4) ---------------------------------------------------
def _heads(b: GraphBuilder, x: str, n: int, heads: int, dim: int, perm: Sequence[int]) -> str:
    """[1, N, H*D] -> Reshape [1, N, H, D] -> Transpose ``perm``."""
    return b.op("Transpose", [b.op("Reshape", [x, b.ints([1, n, heads, dim])])], perm=list(perm))


def _attention_core(
    b: GraphBuilder, q: str, kt: str, v: str, n: int, heads: int, dim: int, bias: bool, rel: bool
) -> str:
    """softmax(q k^T / sqrt(D) [+ per-head bias]) v, back to [1, N, H*D]."""
    scores = b.op("Mul", [b.op("MatMul", [q, kt]), b.scalar(dim**-0.5)])
    if bias:  # Swin's relative position bias: a constant [1, H, N, N]
        scores = b.add_param(scores, [1, heads, n, n])
    if rel:  # BotNet's relative logits: q times one matrix shared by every head
        scores = b.op("Add", [scores, b.op("MatMul", [q, b.param([dim, n], "rel_w")])])
    out = b.op("MatMul", [b.op("Softmax", [scores], axis=-1), v])
    out = b.op("Transpose", [out], perm=[0, 2, 1, 3])
    return b.op("Reshape", [out, b.ints([1, n, heads * dim])])


def _attention_block(
    name: str, heads: int, dim: int, fused: str | None = None, bias: bool = False, rel: bool = False
) -> onnx.ModelProto:
    """Token embedding, one multi-head self-attention with a residual, token-mean classifier."""
    b = GraphBuilder(name)
    n, c = 6, heads * dim
    x = b.add_param(b.matmul(b.input("input", [1, n, 8]), 8, c), [c])
    if fused is None:
        q, k, v = (b.add_param(b.matmul(x, c, c), [c]) for _ in range(3))
        q = _heads(b, q, n, heads, dim, [0, 2, 1, 3])
        kt = _heads(b, k, n, heads, dim, [0, 2, 3, 1])
        v = _heads(b, v, n, heads, dim, [0, 2, 1, 3])
    else:  # one projection to [3, H, D] per token, taken apart like the exporters do
        qkv = b.add_param(b.matmul(x, c, 3 * c), [3 * c])
        qkv = b.op("Reshape", [qkv, b.ints([1, n, 3, heads, dim])])
        qkv = b.op("Transpose", [qkv], perm=[2, 0, 3, 1, 4])  # [3, 1, H, N, D]
        if fused == "split":
            parts = b.ops("Split", [qkv, b.ints([1, 1, 1])], 3, axis=0)
            q, k, v = (b.squeeze(p, [0]) for p in parts)
        else:  # Gather with a scalar index (torchvision's Swin: qkv[0], qkv[1], qkv[2])
            q, k, v = (b.op("Gather", [qkv, b.const(np.asarray(i, np.int64))]) for i in range(3))
        kt = b.op("Transpose", [k], perm=[0, 1, 3, 2])
    out = _attention_core(b, q, kt, v, n, heads, dim, bias, rel)
    x = b.op("Add", [x, b.add_param(b.matmul(out, c, c), [c])])
    b.output(b.reduce("ReduceMean", b.matmul(x, c, 10), [1], keepdims=False), [1, 10])
    return b.build()


@register(
    "attention_heads",
    expect_prunable=2,
    note="MHA, 2 heads of 8: q/k/v/out-projection heads as one group of 2 units; residual",
)
def attention_heads() -> onnx.ModelProto:
    return _attention_block("attention_heads", heads=2, dim=8)


@register(
    "attention_heads_bias",
    expect_prunable=2,
    note="MHA, 4 heads of 4 with a constant per-head [1,H,N,N] score bias (Swin): bias sliced",
)
def attention_heads_bias() -> onnx.ModelProto:
    return _attention_block("attention_heads_bias", heads=4, dim=4, bias=True)


@register(
    "attention_relative_logits",
    expect_prunable=2,
    note="MHA, 4 heads of 4, scores + q @ W_rel (one constant matrix for every head, BotNet)",
)
def attention_relative_logits() -> onnx.ModelProto:
    return _attention_block("attention_relative_logits", heads=4, dim=4, rel=True)


@register(
    "attention_fused_qkv_split",
    expect_prunable=2,
    note="fused qkv MatMul -> [1,N,3,H,D] -> Transpose -> Split on the 3 -> Squeeze (legacy)",
)
def attention_fused_qkv_split() -> onnx.ModelProto:
    return _attention_block("attention_fused_qkv_split", heads=3, dim=4, fused="split")


@register(
    "attention_fused_qkv_gather",
    expect_prunable=2,
    note="fused qkv MatMul -> [1,N,3,H,D] -> Transpose -> Gather scalar 0/1/2 (Swin)",
)
def attention_fused_qkv_gather() -> onnx.ModelProto:
    return _attention_block("attention_fused_qkv_gather", heads=4, dim=4, fused="gather")


@register(
    "attention_single_head",
    expect_prunable=3,
    note="single-head attention: q/k prune by dimension together (no head to remove); v and "
    "the output projection's rows prune together (the scores do not depend on v)",
)
def attention_single_head() -> onnx.ModelProto:
    return _attention_block("attention_single_head", heads=1, dim=8)
