"""onnx2torch converters for operators (or operator versions) that onnx2torch 1.5.15 lacks.

Found missing with onnx2torch's registry, for the opsets this tool loads (11..21):

- new implementations: Reduce{L1,L2,LogSum,LogSumExp,Max,Mean,Min,Prod,SumSquare}-18 (axes as an
  input) and ReduceMax/ReduceMin-20, Split-18 (``num_outputs``), Pad-18/19/21 (``axes`` input,
  ``wrap`` mode), Resize-18/19, Reshape-19/21 and Reshape with ``allowzero=1`` (onnx2torch's own
  Reshape converter refuses it: ours delegates to it otherwise), CastLike, Gelu-20, Mish-18;
- replaced: Resize-11/13, whose onnx2torch converter maps every nearest mode to torch's
  asymmetric/floor one (it only warns) and refuses ``sizes`` that pin a static batch of 1;
- versions that only widened the accepted types, served by onnx2torch's converter of the previous
  version: Cast-19/21, Constant-19/21, ConstantOfShape-20/21, Equal-19, Flatten-21,
  GreaterOrEqual-16, LessOrEqual-16, Identity-19/21, IsInf-20, IsNaN-20, ScatterND-18,
  Shape-19/21, Transpose-21, Unsqueeze-21, and AveragePool-19 (without dilations).

:func:`register` adds them through onnx2torch's ``add_converter`` hook; it runs on import and is
idempotent. Constant operands (axes, pads, sizes, split) are read at conversion time when they
are initializers, so they become module attributes rather than graph buffers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from onnx_netadapt.finetune._imports import import_onnx2torch

import_onnx2torch()

from onnx2torch.node_converters import registry  # noqa: E402
from onnx2torch.node_converters.registry import add_converter, get_converter  # noqa: E402
from onnx2torch.onnx_graph import OnnxGraph  # noqa: E402
from onnx2torch.onnx_node import OnnxNode  # noqa: E402
from onnx2torch.utils.common import (  # noqa: E402
    OnnxMapping,
    OnnxToTorchModule,
    OperationConverterResult,
    onnx_mapping_from_node,
)

logger = logging.getLogger(__name__)

Converter = Callable[[OnnxNode, OnnxGraph], OperationConverterResult]

_MARK = "_onnx_netadapt_converter"

REDUCE_OPS = (
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSumSquare",
)

# (op type, new version, onnx2torch version whose converter serves it): type-only changes
ALIASES = (
    ("Cast", 19, 13),
    ("Cast", 21, 13),
    ("Constant", 19, 13),
    ("Constant", 21, 13),
    ("ConstantOfShape", 20, 9),
    ("ConstantOfShape", 21, 9),
    ("Equal", 19, 13),
    ("Flatten", 21, 13),
    ("GreaterOrEqual", 16, 12),
    ("LessOrEqual", 16, 12),
    ("Identity", 19, 16),
    ("Identity", 21, 16),
    ("IsInf", 20, 10),
    ("IsNaN", 20, 13),
    ("ScatterND", 18, 16),
    ("Shape", 19, 15),
    ("Shape", 21, 15),
    ("Transpose", 21, 13),
    ("Unsqueeze", 21, 13),
)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _const_ints(node: OnnxNode, graph: OnnxGraph, index: int) -> list[int] | None:
    """The values of input ``index`` when it is an initializer, else None (absent or dynamic)."""
    name = _input(node, index)
    if name is None or name not in graph.initializers:
        return None
    return [int(v) for v in graph.initializers[name].to_numpy().reshape(-1).tolist()]


def _const_floats(node: OnnxNode, graph: OnnxGraph, index: int) -> list[float] | None:
    name = _input(node, index)
    if name is None or name not in graph.initializers:
        return None
    return [float(v) for v in graph.initializers[name].to_numpy().reshape(-1).tolist()]


def _input(node: OnnxNode, index: int) -> str | None:
    """Name of input ``index``, None when absent or empty."""
    if index < len(node.input_values) and node.input_values[index]:
        return node.input_values[index]
    return None


def _all_static(node: OnnxNode, graph: OnnxGraph, indices: Sequence[int]) -> bool:
    return all(_input(node, i) is None or _input(node, i) in graph.initializers for i in indices)


def _data_only(node: OnnxNode) -> OnnxMapping:
    """Mapping that feeds only the first input (the others were read as constants)."""
    return OnnxMapping(inputs=(node.input_values[0],), outputs=node.output_values)


def _normal(axes: Sequence[int], rank: int) -> list[int]:
    """Axes in [0, rank), in the order given."""
    return [a + rank if a < 0 else a for a in axes]


def _positive(axes: Sequence[int], rank: int) -> list[int]:
    """Axes in [0, rank), sorted."""
    return sorted(_normal(axes, rank))


def _tensor_ints(value: torch.Tensor | None) -> list[int] | None:
    if value is None or value.numel() == 0:
        return None
    return [int(v) for v in value.reshape(-1).tolist()]


# ---------------------------------------------------------------------------------------------
# Reduce*-18 (axes as an input)
# ---------------------------------------------------------------------------------------------


def _reduce(op: str, x: torch.Tensor, dims: list[int], keepdim: bool) -> torch.Tensor:
    """ONNX reduction ``op`` over ``dims``; no dims reduces nothing (elementwise part only)."""
    if op in ("ReduceL1", "ReduceL2", "ReduceSumSquare"):
        x = torch.abs(x) if op == "ReduceL1" else x * x
        out = torch.sum(x, dim=dims, keepdim=keepdim) if dims else x
        return torch.sqrt(out) if op == "ReduceL2" else out
    if op == "ReduceLogSum":
        return torch.log(torch.sum(x, dim=dims, keepdim=keepdim) if dims else x)
    if not dims:
        return x
    if op == "ReduceMean":
        return torch.mean(x, dim=dims, keepdim=keepdim)
    if op == "ReduceMax":
        return torch.amax(x, dim=dims, keepdim=keepdim)
    if op == "ReduceMin":
        return torch.amin(x, dim=dims, keepdim=keepdim)
    if op == "ReduceLogSumExp":
        return torch.logsumexp(x, dim=dims, keepdim=keepdim)
    if op == "ReduceProd":
        for d in sorted(dims, reverse=True):  # from the last axis, so indices stay valid
            x = torch.prod(x, dim=d, keepdim=keepdim)
        return x
    raise NotImplementedError(f"{op} is not implemented")


class OnnxReduce18(nn.Module, OnnxToTorchModule):
    """Reduce*-18: axes from the ``axes`` input (static when it was an initializer)."""

    def __init__(
        self, op: str, axes: list[int] | None, keepdims: bool, noop_with_empty_axes: bool
    ) -> None:
        super().__init__()
        self.op = op
        self.axes = axes
        self.keepdims = keepdims
        self.noop_with_empty_axes = noop_with_empty_axes

    def forward(self, x: torch.Tensor, axes: torch.Tensor | None = None) -> torch.Tensor:
        chosen = self.axes if axes is None else _tensor_ints(axes)
        if not chosen:  # no axes: all of them, or none with noop_with_empty_axes
            chosen = [] if self.noop_with_empty_axes else list(range(x.dim()))
        return _reduce(self.op, x, _positive(chosen, x.dim()), self.keepdims)


def _convert_reduce(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    keepdims = bool(node.attributes.get("keepdims", 1))
    noop = bool(node.attributes.get("noop_with_empty_axes", 0))
    if _all_static(node, graph, [1]):
        module = OnnxReduce18(node.operation_type, _const_ints(node, graph, 1), keepdims, noop)
        return OperationConverterResult(module, _data_only(node))
    module = OnnxReduce18(node.operation_type, None, keepdims, noop)
    return OperationConverterResult(module, onnx_mapping_from_node(node))


# ---------------------------------------------------------------------------------------------
# Split-18 (num_outputs)
# ---------------------------------------------------------------------------------------------


class OnnxSplit18(nn.Module, OnnxToTorchModule):
    """Split-18: explicit sizes, or ``num_outputs`` chunks of ceil(len / n) (last smaller)."""

    def __init__(self, axis: int, num_outputs: int, split: list[int] | None) -> None:
        super().__init__()
        self.axis = axis
        self.num_outputs = num_outputs
        self.split = split

    def forward(self, x: torch.Tensor, split: torch.Tensor | None = None) -> tuple:
        sizes = self.split if split is None else _tensor_ints(split)
        if sizes is None:
            length = x.shape[self.axis]
            sizes = math.ceil(length / self.num_outputs)
        return tuple(torch.split(x, sizes, dim=self.axis))


def _convert_split(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    axis = int(node.attributes.get("axis", 0))
    count = int(node.attributes.get("num_outputs", len(node.output_values)))
    if _all_static(node, graph, [1]):
        module = OnnxSplit18(axis, count, _const_ints(node, graph, 1))
        return OperationConverterResult(module, _data_only(node))
    return OperationConverterResult(OnnxSplit18(axis, count, None), onnx_mapping_from_node(node))


# ---------------------------------------------------------------------------------------------
# Pad-18/19/21 (axes input, wrap mode)
# ---------------------------------------------------------------------------------------------

_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def _torch_pads(pads: list[int], axes: list[int] | None, rank: int) -> list[int]:
    """ONNX pads (all begins, then all ends, over ``axes``) -> F.pad order (last axis first)."""
    axes = list(range(rank)) if axes is None else [a + rank if a < 0 else a for a in axes]
    if len(pads) != 2 * len(axes):
        raise ValueError(f"Pad has {len(pads)} pads for {len(axes)} axes")
    begin, end = [0] * rank, [0] * rank
    for i, axis in enumerate(axes):
        begin[axis], end[axis] = pads[i], pads[i + len(axes)]
    out: list[int] = []
    for axis in reversed(range(rank)):
        out += [begin[axis], end[axis]]
    while len(out) > 2 and out[-2:] == [0, 0]:  # leading (batch, channel) axes without padding
        out = out[:-2]
    return out


class OnnxPad18(nn.Module, OnnxToTorchModule):
    """Pad-18+: pads, constant value and axes static (initializers) or given at run time."""

    def __init__(
        self, mode: str, pads: list[int] | None, value: float, axes: list[int] | None
    ) -> None:
        super().__init__()
        self.mode = mode
        self.pads = pads
        self.value = value
        self.axes = axes

    def forward(
        self,
        x: torch.Tensor,
        pads: torch.Tensor | None = None,
        constant_value: torch.Tensor | None = None,
        axes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        onnx_pads = self.pads if pads is None else _tensor_ints(pads) or []
        onnx_axes = self.axes if axes is None else _tensor_ints(axes)
        value = self.value if constant_value is None else float(constant_value.reshape(-1)[0])
        torch_pads = _torch_pads(onnx_pads or [], onnx_axes, x.dim())
        if self.mode == "constant":
            return F.pad(x, torch_pads, mode="constant", value=value)
        if len(torch_pads) // 2 > max(1, x.dim() - 2):
            raise NotImplementedError(
                f"Pad mode {self.mode!r} on the batch or channel axis is not supported by torch"
            )
        return F.pad(x, torch_pads, mode=self.mode)


def _convert_pad(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    onnx_mode = node.attributes.get("mode", "constant")
    if onnx_mode not in _PAD_MODES:
        raise NotImplementedError(f"Pad mode {onnx_mode!r} is not implemented")
    mode = _PAD_MODES[onnx_mode]
    if _all_static(node, graph, [1, 2, 3]):
        value = _const_floats(node, graph, 2)
        module = OnnxPad18(
            mode,
            _const_ints(node, graph, 1),
            value[0] if value else 0.0,
            _const_ints(node, graph, 3),
        )
        return OperationConverterResult(module, _data_only(node))
    return OperationConverterResult(OnnxPad18(mode, None, 0.0, None), onnx_mapping_from_node(node))


# ---------------------------------------------------------------------------------------------
# Resize-11..19
# ---------------------------------------------------------------------------------------------

_INTERPOLATE_MODES = {
    ("linear", 1): "linear",
    ("linear", 2): "bilinear",
    ("linear", 3): "trilinear",
    ("cubic", 2): "bicubic",
}


def _source_coords(
    mode: str, out_len: int, in_len: int, scale: float, device: torch.device
) -> torch.Tensor:
    """ONNX coordinate transformation: input coordinate of every output index along one axis."""
    x = torch.arange(out_len, dtype=torch.float64, device=device)
    if mode == "asymmetric":
        return x / scale
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if out_len > 1 else torch.zeros_like(x)
    if mode == "align_corners":
        return x * (in_len - 1) / (out_len - 1) if out_len > 1 else torch.zeros_like(x)
    if mode == "half_pixel_symmetric":
        adjustment = out_len / (scale * in_len)
        center = in_len / 2 * (1 - adjustment)
        return center + ((x + 0.5) / scale - 0.5)
    if mode == "tf_half_pixel_for_nn":
        return (x + 0.5) / scale
    raise NotImplementedError(f"Resize coordinate_transformation_mode {mode!r} is not implemented")


def _nearest_index(coords: torch.Tensor, nearest_mode: str, in_len: int) -> torch.Tensor:
    if nearest_mode == "floor":
        index = torch.floor(coords)
    elif nearest_mode == "ceil":
        index = torch.ceil(coords)
    elif nearest_mode == "round_prefer_floor":
        index = torch.ceil(coords - 0.5)
    elif nearest_mode == "round_prefer_ceil":
        index = torch.floor(coords + 0.5)
    else:
        raise NotImplementedError(f"Resize nearest_mode {nearest_mode!r} is not implemented")
    return index.clamp(0, in_len - 1).long()


class OnnxResize18(nn.Module, OnnxToTorchModule):
    """Resize-11..19 of the spatial axes: nearest (exact index arithmetic), linear, cubic.

    ``batch`` is the model's static batch size: a ``sizes`` entry pinning it follows the batch
    actually given (training runs a batch-1 model on larger batches).
    """

    def __init__(
        self,
        mode: str,
        coordinate_mode: str,
        nearest_mode: str,
        antialias: bool,
        axes: list[int] | None,
        policy: str,
        scales: list[float] | None,
        sizes: list[int] | None,
        batch: int | None = None,
    ) -> None:
        super().__init__()
        self.mode = mode
        self.coordinate_mode = coordinate_mode
        self.nearest_mode = nearest_mode
        self.antialias = antialias
        self.axes = axes
        self.policy = policy
        self.scales = scales
        self.sizes = sizes
        self.batch = batch

    def forward(
        self,
        x: torch.Tensor,
        roi: torch.Tensor | None = None,
        scales: torch.Tensor | None = None,
        sizes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        del roi  # only used by tf_crop_and_resize, which the converter refuses
        scale_list = self.scales if scales is None else _tensor_floats(scales)
        size_list = self.sizes if sizes is None else _tensor_ints(sizes)
        axes = list(range(x.dim())) if self.axes is None else _normal(self.axes, x.dim())
        if size_list and self.batch is not None and 0 in axes:
            at = axes.index(0)
            if size_list[at] == self.batch:
                size_list = [*size_list[:at], x.shape[0], *size_list[at + 1 :]]
        out_sizes, out_scales = self._targets(list(x.shape), axes, scale_list, size_list)
        if out_sizes[:2] != list(x.shape[:2]):
            raise NotImplementedError("Resize of the batch or channel axis is not supported")
        if self.mode == "nearest":
            return self._nearest(x, out_sizes, out_scales)
        return self._interpolate(x, out_sizes, out_scales, size_list is not None)

    def _targets(
        self,
        shape: list[int],
        axes: list[int],
        scales: list[float] | None,
        sizes: list[int] | None,
    ) -> tuple[list[int], list[float]]:
        rank = len(shape)
        if sizes:
            if self.policy != "stretch":
                ratios = [sizes[i] / shape[a] for i, a in enumerate(axes)]
                ratio = min(ratios) if self.policy == "not_larger" else max(ratios)
                sizes = [math.floor(ratio * shape[a] + 0.5) for a in axes]
                full_scales = [1.0] * rank
                for a in axes:
                    full_scales[a] = ratio
            full_sizes = list(shape)
            for i, a in enumerate(axes):
                full_sizes[a] = sizes[i]
            if self.policy == "stretch":
                full_scales = [full_sizes[a] / shape[a] for a in range(rank)]
            return full_sizes, full_scales
        if not scales:
            raise NotImplementedError("Resize without scales or sizes")
        full_scales = [1.0] * rank
        for i, a in enumerate(axes):
            full_scales[a] = scales[i]
        return [math.floor(shape[a] * full_scales[a]) for a in range(rank)], full_scales

    def _nearest(self, x: torch.Tensor, sizes: list[int], scales: list[float]) -> torch.Tensor:
        for axis in range(2, x.dim()):
            if sizes[axis] == x.shape[axis] and scales[axis] == 1.0:
                continue
            coords = _source_coords(
                self.coordinate_mode, sizes[axis], x.shape[axis], scales[axis], x.device
            )
            index = _nearest_index(coords, self.nearest_mode, x.shape[axis])
            x = torch.index_select(x, axis, index)
        return x

    def _interpolate(
        self, x: torch.Tensor, sizes: list[int], scales: list[float], by_size: bool
    ) -> torch.Tensor:
        torch_mode = _INTERPOLATE_MODES.get((self.mode, x.dim() - 2))
        if torch_mode is None:
            raise NotImplementedError(f"Resize {self.mode!r} of a rank-{x.dim()} tensor")
        align = self.coordinate_mode == "align_corners"
        if not align and self.coordinate_mode not in ("half_pixel", "pytorch_half_pixel"):
            raise NotImplementedError(
                f"Resize {self.mode!r} with {self.coordinate_mode!r} coordinates"
            )
        kwargs: dict = {"mode": torch_mode, "align_corners": align}
        if self.antialias:
            kwargs["antialias"] = True
        if by_size or align:
            return F.interpolate(x, size=sizes[2:], **kwargs)
        return F.interpolate(x, scale_factor=scales[2:], recompute_scale_factor=False, **kwargs)


def _tensor_floats(value: torch.Tensor | None) -> list[float] | None:
    if value is None or value.numel() == 0:
        return None
    return [float(v) for v in value.reshape(-1).tolist()]


def _convert_resize(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    attrs = node.attributes
    mode = attrs.get("mode", "nearest")
    coordinate_mode = attrs.get("coordinate_transformation_mode", "half_pixel")
    if coordinate_mode == "tf_crop_and_resize":
        raise NotImplementedError("Resize with tf_crop_and_resize is not implemented")
    if mode != "nearest" and attrs.get("exclude_outside", 0):
        raise NotImplementedError("Resize with exclude_outside=1 is not implemented")
    if mode == "cubic" and abs(attrs.get("cubic_coeff_a", -0.75) + 0.75) > 1e-6:
        raise NotImplementedError("Resize cubic with cubic_coeff_a other than -0.75")
    args = {
        "mode": mode,
        "coordinate_mode": coordinate_mode,
        "nearest_mode": attrs.get("nearest_mode", "round_prefer_floor"),
        "antialias": bool(attrs.get("antialias", 0)),
        "axes": list(attrs["axes"]) if "axes" in attrs else None,
        "policy": attrs.get("keep_aspect_ratio_policy", "stretch"),
    }
    args["batch"] = _static_batch(node, graph)
    if _all_static(node, graph, [1, 2, 3]):
        module = OnnxResize18(
            **args, scales=_const_floats(node, graph, 2), sizes=_const_ints(node, graph, 3)
        )
        return OperationConverterResult(module, _data_only(node))
    return OperationConverterResult(
        OnnxResize18(**args, scales=None, sizes=None), onnx_mapping_from_node(node)
    )


def _static_batch(node: OnnxNode, graph: OnnxGraph) -> int | None:
    """The static size of axis 0 of the node's first input, when known."""
    info = graph.value_info.get(node.input_values[0])
    if info is None or not info.type.tensor_type.shape.dim:
        return None
    first = info.type.tensor_type.shape.dim[0]
    return int(first.dim_value) if first.HasField("dim_value") and first.dim_value > 0 else None


# ---------------------------------------------------------------------------------------------
# Reshape (allowzero=1, versions 19/21), CastLike, Gelu, Mish
# ---------------------------------------------------------------------------------------------


class OnnxReshapeAllowZero(nn.Module, OnnxToTorchModule):
    """Reshape with ``allowzero=1``: a 0 in the shape is a zero-sized axis (plain torch)."""

    def forward(self, x: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        return torch.reshape(x, [int(v) for v in shape.tolist()])


def _reshape_converter(fallback: Converter) -> Converter:
    """Reshape converter: ``allowzero=1`` handled here, anything else by onnx2torch's own."""

    def convert(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
        if node.attributes.get("allowzero", 0) != 1:
            return fallback(node, graph)
        return OperationConverterResult(OnnxReshapeAllowZero(), onnx_mapping_from_node(node))

    return convert


class OnnxCastLike(nn.Module, OnnxToTorchModule):
    """CastLike: ``x`` in the dtype of ``like``."""

    def forward(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return x.to(like.dtype)


def _convert_cast_like(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    return OperationConverterResult(OnnxCastLike(), onnx_mapping_from_node(node))


def _convert_gelu(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    approximate = node.attributes.get("approximate", "none")
    return OperationConverterResult(nn.GELU(approximate=approximate), onnx_mapping_from_node(node))


def _convert_mish(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    return OperationConverterResult(nn.Mish(), onnx_mapping_from_node(node))


def _average_pool_converter(fallback: Converter) -> Converter:
    """AveragePool-19 without dilations is AveragePool-11."""

    def convert(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
        if any(d != 1 for d in node.attributes.get("dilations", [])):
            raise NotImplementedError("AveragePool with dilations is not implemented")
        return fallback(node, graph)

    return convert


# ---------------------------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------------------------


def _has(op: str, version: int) -> bool:
    key = registry.OperationDescription(domain="", operation_type=op, version=version)
    return key in registry._CONVERTER_REGISTRY


def _add(op: str, version: int, converter: Converter, replace: bool = False) -> bool:
    """Register ``converter`` for (op, version) unless one of ours is there; True if added."""
    key = registry.OperationDescription(domain="", operation_type=op, version=version)
    existing = registry._CONVERTER_REGISTRY.get(key)
    if existing is not None:
        if getattr(existing, _MARK, False) or not replace:
            return False
        del registry._CONVERTER_REGISTRY[key]  # onnx2torch's own: ours wraps it
    setattr(converter, _MARK, True)
    add_converter(operation_type=op, version=version)(converter)
    return True


def _versioned(op: str, version: int) -> Converter:
    """A converter delegating to the one registered exactly under (op, version)."""
    target = get_converter(operation_type=op, version=version)

    def convert(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
        return target(node, graph)

    return convert


def register() -> list[str]:
    """Register every converter of this module (idempotent); returns the ``Op-version`` added."""
    added: list[str] = []

    def add(op: str, version: int, converter: Converter, replace: bool = False) -> None:
        if _add(op, version, converter, replace):
            added.append(f"{op}-{version}")

    for op in REDUCE_OPS:
        add(op, 18, _convert_reduce)
    for op in ("ReduceMax", "ReduceMin"):
        add(op, 20, _convert_reduce)
    add("Split", 18, _convert_split)
    for version in (18, 19, 21):
        add("Pad", version, _convert_pad)
    for version in (18, 19):
        add("Resize", version, _convert_resize)
    for version in (11, 13):  # onnx2torch's own: inexact nearest modes, static batch in sizes
        add("Resize", version, _convert_resize, replace=True)
    reshape_14 = _versioned("Reshape", 14)  # onnx2torch's own (or ours, if already registered)
    for version in (5, 13, 14):
        if _has("Reshape", version):
            add("Reshape", version, _reshape_converter(_versioned("Reshape", version)), True)
    for version in (19, 21):
        add("Reshape", version, _reshape_converter(reshape_14))
    for version in (15, 19, 21):
        add("CastLike", version, _convert_cast_like)
    add("Gelu", 20, _convert_gelu)
    add("Mish", 18, _convert_mish)
    add("AveragePool", 19, _average_pool_converter(_versioned("AveragePool", 11)))
    for op, version, served_by in ALIASES:
        if _has(op, served_by):
            add(op, version, _versioned(op, served_by))
    if added:
        logger.debug("registered onnx2torch converters: %s", ", ".join(added))
    return added


register()
