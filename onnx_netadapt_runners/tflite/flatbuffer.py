"""Single-layer ``.tflite`` models for one ``LayerSignature``, written with LiteRT's schema.

The model holds what a TF converter would emit for the layer of an NCHW ONNX model run in NHWC:
an optional explicit ``PAD`` (when the ONNX pads are neither VALID nor TF's SAME pads), the
layer (``CONV_2D``, ``DEPTHWISE_CONV_2D``, ``TRANSPOSE_CONV`` or ``FULLY_CONNECTED``) with
Relu/Relu6 fused into its options, and a separate op for the other activations (``HARD_SWISH``,
``LOGISTIC``, ``TANH``, ``LEAKY_RELU``). Weights are float32 (seeded random unless given), bias
zeros unless given. Every model is loaded, allocated and run once in the LiteRT interpreter
before it is returned, and its output shape is checked.

>>> sig = LayerSignature("Conv", 8, 16, (8, 8), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))
>>> model = tflite_layer_model(sig)                                   # doctest: +SKIP
>>> model[4:8]                                                        # doctest: +SKIP
b'TFL3'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from onnx_netadapt.measure.runner import RunnerError
from onnx_netadapt.measure.signature import LayerSignature

logger = logging.getLogger(__name__)

FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
LEAKY_RELU_ALPHA = 0.01  # ONNX's default alpha, as in the ONNX micro-model


class UnsupportedLayer(RunnerError):
    """The layer has no faithful single-layer TFLite form (or the interpreter rejects it)."""


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def tflite_layer_model(
    sig: LayerSignature,
    weights: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    seed: int = 0,
    validate: bool = True,
) -> bytes:
    """A ``.tflite`` model (bytes) with the layer of ``sig`` and its activation.

    Args:
        sig: the layer.
        weights: in the ONNX layout of ``onnx_layer_model(sig)``: Conv ``[O, I/groups, kH, kW]``,
            ConvTranspose ``[I, O/groups, kH, kW]``, Gemm ``[in, out]``; seeded random if None.
        bias: ``[out_channels]``; zeros if None (Conv and ConvTranspose always get a bias, as
            TF converters emit it; Gemm only when ``sig.bias``).
        seed: seed of the random weights.
        validate: load and run the model in the LiteRT interpreter and check its output shape.

    Returns:
        The flatbuffer (file identifier ``TFL3``, schema version 3).

    Raises:
        UnsupportedLayer: the signature has no faithful TFLite form, or LiteRT rejects it.
    """
    if weights is None:
        rng = np.random.default_rng(seed)
        weights = rng.standard_normal(onnx_weight_shape(sig)).astype(np.float32) * 0.1
    weights = np.asarray(weights, dtype=np.float32)
    if tuple(weights.shape) != onnx_weight_shape(sig):
        raise ValueError(
            f"weights of shape {weights.shape} do not fit layer {sig.key()}: expected "
            f"{onnx_weight_shape(sig)} (ONNX layout)"
        )
    if bias is not None:
        bias = np.asarray(bias, dtype=np.float32).reshape(sig.out_channels)
    graph = _Graph()
    if sig.op == "Gemm":
        out = _fully_connected(graph, sig, weights, bias)
    elif sig.op == "Conv" and len(sig.input_hw) == 2:
        out = _conv(graph, sig, weights, bias)
    elif sig.op == "ConvTranspose" and len(sig.input_hw) == 2:
        out = _transpose_conv(graph, sig, weights, bias)
    else:
        raise UnsupportedLayer(
            f"layer {sig.key()} has no single-layer TFLite form: only 2-D Conv, 2-D "
            "ConvTranspose and Gemm are supported"
        )
    _separate_activation(graph, sig, out)
    model = graph.finish()
    if validate:
        validate_model(model, expected_output_shape(sig), what=f"layer {sig.key()}")
    return model


def onnx_weight_shape(sig: LayerSignature) -> tuple[int, ...]:
    """Shape of the weights of ``sig`` in the ONNX layout (as in ``onnx_layer_model``)."""
    if sig.op == "Gemm":
        return (sig.in_channels, sig.out_channels)
    if sig.op == "ConvTranspose":
        return (sig.in_channels, sig.out_channels // sig.groups, *sig.kernel)
    return (sig.out_channels, sig.in_channels // sig.groups, *sig.kernel)


def expected_output_shape(sig: LayerSignature) -> tuple[int, ...]:
    """Output shape of the TFLite model of ``sig`` (NHWC, or ``[rows, out]`` for Gemm)."""
    if sig.op == "Gemm":
        return (sig.rows, sig.out_channels)
    return (1, *sig.output_hw(), sig.out_channels)


def input_shape(sig: LayerSignature) -> tuple[int, ...]:
    """Input shape of the TFLite model of ``sig`` (NHWC, or ``[rows, in]`` for Gemm)."""
    if sig.op == "Gemm":
        return (sig.rows, sig.in_channels)
    return (1, *sig.input_hw, sig.in_channels)


def validate_model(model: bytes, output_shape: tuple[int, ...] | None, what: str) -> None:
    """Load, allocate and run ``model`` once in LiteRT; check its output shape.

    Raises:
        UnsupportedLayer: LiteRT rejects the model or computes another output shape.
    """
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_content=model, num_threads=1)
        interpreter.allocate_tensors()
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        interpreter.invoke()
        got = tuple(int(d) for d in interpreter.get_output_details()[0]["shape"])
    except (RuntimeError, ValueError) as exc:
        raise UnsupportedLayer(f"LiteRT rejects the TFLite model of {what}: {exc}") from exc
    if output_shape is not None and got != tuple(output_shape):
        raise UnsupportedLayer(
            f"the TFLite model of {what} computes output shape {got}, expected {output_shape}"
        )


# -- layers ---------------------------------------------------------------------------------
def _conv(graph: _Graph, sig: LayerSignature, w: np.ndarray, bias: np.ndarray | None) -> int:
    schema = _schema()
    x = graph.add_tensor("x", input_shape(sig))
    graph.inputs.append(x)
    padding, x = _padding(graph, sig, x)
    b = graph.add_tensor("bias", (sig.out_channels,), _bias(sig, bias))
    y = graph.add_tensor("conv", expected_output_shape(sig))
    fused = _fused_activation(sig)
    (sh, sw), (dh, dw) = sig.stride, sig.dilation
    if sig.depthwise:
        # ONNX [C*m, 1, kH, kW] -> TFLite [1, kH, kW, C*m]; output channel c*m + j reads input c.
        shape = (1, *sig.kernel, sig.out_channels)
        wt = graph.add_tensor("weights", shape, w.transpose(1, 2, 3, 0))
        options = schema.DepthwiseConv2DOptionsT()
        options.depthMultiplier = sig.out_channels // sig.in_channels
        options_type = schema.BuiltinOptions.DepthwiseConv2DOptions
        opcode, version = schema.BuiltinOperator.DEPTHWISE_CONV_2D, 2 if (dh, dw) != (1, 1) else 1
    else:
        # ONNX OIHW -> TFLite OHWI; grouped convs keep in_channels / groups in the weights.
        shape = (sig.out_channels, *sig.kernel, sig.in_channels // sig.groups)
        wt = graph.add_tensor("weights", shape, w.transpose(0, 2, 3, 1))
        options = schema.Conv2DOptionsT()
        options_type = schema.BuiltinOptions.Conv2DOptions
        opcode, version = schema.BuiltinOperator.CONV_2D, 6 if sig.groups > 1 else 1
    options.padding = padding
    options.strideH, options.strideW = sh, sw
    options.dilationHFactor, options.dilationWFactor = dh, dw
    options.fusedActivationFunction = fused
    graph.add_op(opcode, [x, wt, b], [y], options_type, options, version)
    return y


def _transpose_conv(
    graph: _Graph, sig: LayerSignature, w: np.ndarray, bias: np.ndarray | None
) -> int:
    schema = _schema()
    if sig.groups != 1 or tuple(sig.dilation) != (1, 1):
        raise UnsupportedLayer(
            f"layer {sig.key()}: TFLite TRANSPOSE_CONV has no groups or dilation"
        )
    padding = _transpose_padding(sig)
    out_shape = expected_output_shape(sig)
    shape_t = graph.add_tensor("output_shape", (4,), np.asarray(out_shape, np.int32), np.int32)
    # ONNX [I, O, kH, kW] -> TFLite [O, kH, kW, I]; both scatter the same way (no kernel flip).
    shape = (sig.out_channels, *sig.kernel, sig.in_channels)
    wt = graph.add_tensor("weights", shape, w.transpose(1, 2, 3, 0))
    x = graph.add_tensor("x", input_shape(sig))
    graph.inputs.append(x)
    b = graph.add_tensor("bias", (sig.out_channels,), _bias(sig, bias))
    y = graph.add_tensor("transpose_conv", out_shape)
    options = schema.TransposeConvOptionsT()
    options.padding = padding
    options.strideH, options.strideW = sig.stride
    options.fusedActivationFunction = _fused_activation(sig)
    version = 4 if options.fusedActivationFunction else 3
    graph.add_op(
        schema.BuiltinOperator.TRANSPOSE_CONV,
        [shape_t, wt, x, b],
        [y],
        schema.BuiltinOptions.TransposeConvOptions,
        options,
        version,
    )
    return y


def _fully_connected(
    graph: _Graph, sig: LayerSignature, w: np.ndarray, bias: np.ndarray | None
) -> int:
    schema = _schema()
    x = graph.add_tensor("x", input_shape(sig))
    graph.inputs.append(x)
    # ONNX Gemm B [in, out] -> TFLite weights [out, in].
    wt = graph.add_tensor("weights", (sig.out_channels, sig.in_channels), w.T)
    b = -1  # an omitted optional input
    if sig.bias or bias is not None:
        b = graph.add_tensor("bias", (sig.out_channels,), _bias(sig, bias))
    y = graph.add_tensor("fully_connected", expected_output_shape(sig))
    options = schema.FullyConnectedOptionsT()
    options.fusedActivationFunction = _fused_activation(sig)
    graph.add_op(
        schema.BuiltinOperator.FULLY_CONNECTED,
        [x, wt, b],
        [y],
        schema.BuiltinOptions.FullyConnectedOptions,
        options,
    )
    return y


def _bias(sig: LayerSignature, bias: np.ndarray | None) -> np.ndarray:
    return bias if bias is not None else np.zeros(sig.out_channels, np.float32)


# -- padding and activations ----------------------------------------------------------------
def tf_same_pads(
    in_hw: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[int, ...]:
    """TF's SAME pads (ONNX order: begins..., ends...) of a conv on ``in_hw``."""
    begins, ends = [], []
    for size, k, s, d in zip(in_hw, kernel, stride, dilation, strict=True):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
    return (*begins, *ends)


def _padding(graph: _Graph, sig: LayerSignature, x: int) -> tuple[int, int]:
    """The conv's padding mode, after inserting an explicit PAD op in front if needed."""
    schema = _schema()
    pads = tuple(sig.pads) or (0, 0, 0, 0)
    if not any(pads):
        return schema.Padding.VALID, x
    if pads == tf_same_pads(sig.input_hw, sig.kernel, sig.stride, sig.dilation):
        return schema.Padding.SAME, x
    (h, w), (pt, pl, pb, pr) = sig.input_hw, pads
    paddings = np.array([[0, 0], [pt, pb], [pl, pr], [0, 0]], np.int32)
    p = graph.add_tensor("paddings", (4, 2), paddings, np.int32)
    padded = graph.add_tensor("padded", (1, h + pt + pb, w + pl + pr, sig.in_channels))
    pad_options = schema.PadOptionsT()
    graph.add_op(
        schema.BuiltinOperator.PAD, [x, p], [padded], schema.BuiltinOptions.PadOptions, pad_options
    )
    return schema.Padding.VALID, padded


def _transpose_padding(sig: LayerSignature) -> int:
    """VALID (no pads) or SAME when TFLite's transpose conv crops like the ONNX pads, else raise.

    TFLite derives the pads of TRANSPOSE_CONV from the output shape and the padding mode and
    uses the leading pad (the output shape fixes the trailing one); the ONNX layer matches when
    that leading pad equals ONNX's. (VALID with a cropped end is computed differently by the
    XNNPACK delegate, so it is not used.)
    """
    schema = _schema()
    n = len(sig.input_hw)
    begins = tuple(sig.pads[:n]) if sig.pads else (0,) * n
    out_hw = sig.output_hw()
    if not any(sig.pads):
        return schema.Padding.VALID
    same = tf_same_pads(out_hw, sig.kernel, sig.stride, (1,) * n)[:n]
    if same == begins:
        return schema.Padding.SAME
    raise UnsupportedLayer(
        f"layer {sig.key()}: TFLite TRANSPOSE_CONV pads only as VALID or SAME; ONNX pads "
        f"{tuple(sig.pads)} give leading pads {begins}, SAME would give {same}"
    )


def _fused_activation(sig: LayerSignature) -> int:
    fused = _schema().ActivationFunctionType
    return {"Relu": fused.RELU, "Relu6": fused.RELU6}.get(sig.activation or "", fused.NONE)


def _separate_activation(graph: _Graph, sig: LayerSignature, x: int) -> None:
    """Append the activation op TFLite cannot fuse (if any) and mark the graph output."""
    schema = _schema()
    ops = {
        "HardSwish": (schema.BuiltinOperator.HARD_SWISH, schema.BuiltinOptions.HardSwishOptions),
        "Sigmoid": (schema.BuiltinOperator.LOGISTIC, schema.BuiltinOptions.NONE),
        "Tanh": (schema.BuiltinOperator.TANH, schema.BuiltinOptions.NONE),
        "LeakyRelu": (schema.BuiltinOperator.LEAKY_RELU, schema.BuiltinOptions.LeakyReluOptions),
    }
    act = sig.activation
    if act in (None, "Relu", "Relu6"):
        graph.outputs.append(x)
        return
    if act not in ops:
        raise UnsupportedLayer(f"layer {sig.key()}: activation {act!r} has no TFLite op here")
    opcode, options_type = ops[act]
    options = None
    if act == "HardSwish":
        options = schema.HardSwishOptionsT()
    elif act == "LeakyRelu":
        options = schema.LeakyReluOptionsT()
        options.alpha = LEAKY_RELU_ALPHA
    y = graph.add_tensor(act.lower(), tuple(graph.tensors[x].shape))
    graph.add_op(opcode, [x], [y], options_type, options)
    graph.outputs.append(y)


# -- the flatbuffer -------------------------------------------------------------------------
@dataclass
class _Graph:
    """One subgraph under construction (tensors, buffers, operators, operator codes)."""

    tensors: list = field(default_factory=list)
    buffers: list = field(default_factory=list)
    operators: list = field(default_factory=list)
    opcodes: list = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.buffers.append(_AlignedBuffer())  # buffer 0: the empty sentinel

    def add_tensor(
        self,
        name: str,
        shape: tuple[int, ...],
        data: np.ndarray | None = None,
        dtype: type = np.float32,
    ) -> int:
        """A tensor (constant when ``data`` is given); returns its index."""
        schema = _schema()
        tensor = schema.TensorT()
        tensor.name = name
        tensor.shape = np.asarray(shape, dtype=np.int32)
        tensor.type = schema.TensorType.INT32 if dtype == np.int32 else schema.TensorType.FLOAT32
        tensor.buffer = 0
        if data is not None:
            array = np.ascontiguousarray(np.asarray(data, dtype=dtype).reshape(shape))
            buffer = _AlignedBuffer()
            buffer.data = np.frombuffer(array.tobytes(), dtype=np.uint8)
            self.buffers.append(buffer)
            tensor.buffer = len(self.buffers) - 1
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def add_op(
        self,
        builtin: int,
        inputs: list[int],
        outputs: list[int],
        options_type: int,
        options: object | None,
        version: int = 1,
    ) -> None:
        """An operator of builtin code ``builtin`` (its operator code added once)."""
        schema = _schema()
        key = (builtin, version)
        if key not in self.opcodes:
            self.opcodes.append(key)
        op = schema.OperatorT()
        op.opcodeIndex = self.opcodes.index(key)
        op.inputs = np.asarray(inputs, dtype=np.int32)
        op.outputs = np.asarray(outputs, dtype=np.int32)
        op.builtinOptionsType = options_type if options is not None else 0
        op.builtinOptions = options
        self.operators.append(op)

    def finish(self) -> bytes:
        """The serialized model."""
        import flatbuffers

        schema = _schema()
        subgraph = schema.SubGraphT()
        subgraph.tensors = self.tensors
        subgraph.inputs = np.asarray(self.inputs, dtype=np.int32)
        subgraph.outputs = np.asarray(self.outputs, dtype=np.int32)
        subgraph.operators = self.operators
        subgraph.name = "main"
        model = schema.ModelT()
        model.version = SCHEMA_VERSION
        model.description = "onnx-netadapt single-layer model"
        model.subgraphs = [subgraph]
        model.buffers = self.buffers
        model.operatorCodes = []
        for builtin, version in self.opcodes:
            code = schema.OperatorCodeT()
            code.builtinCode = builtin
            code.deprecatedBuiltinCode = min(builtin, 127)  # PLACEHOLDER_FOR_GREATER_OP_CODES
            code.version = version
            model.operatorCodes.append(code)
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
        return bytes(builder.Output())


class _AlignedBuffer:
    """A ``BufferT`` whose data starts 16-byte aligned (the schema's ``force_align: 16``)."""

    def __init__(self) -> None:
        self.data: np.ndarray | None = None

    def Pack(self, builder) -> int:  # the flatbuffers Object API name
        """Serialize into ``builder``, aligning the data vector to 16 bytes."""
        buffer = _schema().BufferT()
        buffer.data = self.data
        if self.data is not None and self.data.size:
            builder.Prep(16, int(self.data.size))  # pads so the data that follows is aligned
        return buffer.Pack(builder)
