"""Resize-11..19: onnx2torch lacks 18/19, and its Resize-11/13 maps every nearest mode to
torch's asymmetric/floor one (it only warns) and refuses ``sizes`` that pin a static batch of 1:
those nodes are rerouted to this converter."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from onnx_netadapt.finetune.converters._common import (
    OnnxGraph,
    OnnxNode,
    OnnxToTorchModule,
    OperationConverterResult,
    _const_floats,
    _const_ints,
    _normal,
    _tensor_ints,
    static_or_runtime,
)
from onnx_netadapt.finetune.converters._registry import converts, replaces

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


@converts("Resize", 18, 19)
@replaces("Resize", lambda node, opset: 11 <= opset < 18)  # inexact nearest modes, static batch
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

    def module(static: bool) -> OnnxResize18:
        if not static:
            return OnnxResize18(**args, scales=None, sizes=None)
        scales, sizes = _const_floats(node, graph, 2), _const_ints(node, graph, 3)
        return OnnxResize18(**args, scales=scales, sizes=sizes)

    return static_or_runtime(node, graph, [1, 2, 3], module)


def _static_batch(node: OnnxNode, graph: OnnxGraph) -> int | None:
    """The static size of axis 0 of the node's first input, when known."""
    info = graph.value_info.get(node.input_values[0])
    if info is None or not info.type.tensor_type.shape.dim:
        return None
    first = info.type.tensor_type.shape.dim[0]
    return int(first.dim_value) if first.HasField("dim_value") and first.dim_value > 0 else None
