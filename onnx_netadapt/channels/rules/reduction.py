"""Pooling, reductions, Softmax and ArgMax: fine over spatial axes, not over channels."""

from __future__ import annotations

import numpy as np
import onnx

from onnx_netadapt.channels.context import RuleContext
from onnx_netadapt.channels.layout import Layout
from onnx_netadapt.channels.rules import rule
from onnx_netadapt.graph.ops import attr, axes_of, normalize_axis

POOL_OPS = [
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "LpPool",
    "GlobalLpPool",
    "MaxUnpool",
]

REDUCE_OPS = [
    "ReduceMean",
    "ReduceSum",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceSumSquare",
]


@rule(*POOL_OPS)
def pooling(ctx: RuleContext) -> None:
    """Pooling works per channel (axis 1) over the spatial axes."""
    lay = ctx.layout(0)
    if lay is None:
        return
    if any(a >= 2 for a in lay.axes):
        ctx.table.pin(lay.atoms, f"{ctx.describe()} pools over a channel-carrying axis")
        return
    for index in range(len(ctx.node.output)):
        ctx.set_output(lay, index)


def couple_along(ctx: RuleContext, lay: Layout, axes: list[int]) -> None:
    """Every line of atoms along ``axes`` (tensor axes in ``lay.axes``) is removed together."""
    dims = [lay.axes.index(a) for a in axes]
    rest = [d for d in range(lay.atoms.ndim) if d not in dims]
    lines = np.transpose(lay.atoms, rest + dims).reshape(
        int(np.prod([lay.atoms.shape[d] for d in rest])), -1
    )
    if lines.shape[1] > 1:
        ctx.table.union(lines[:, :1], lines[:, 1:])


def _drop_axes(lay: Layout, reduced: list[int]) -> Layout:
    """Renumber layout axes after removing ``reduced`` axes (keepdims=0)."""
    return Layout(tuple(a - sum(r < a for r in reduced) for a in lay.axes), lay.atoms)


@rule(*REDUCE_OPS)
def reduce(ctx: RuleContext) -> None:
    """Reduce over non-channel axes keeps channels; over channels it is pinned or approximate."""
    lay = ctx.layout(0)
    if lay is None:
        return
    rank = len(ctx.in_shape(0))
    axes_input = 1
    try:
        axes = axes_of(ctx.node, ctx.state.constants, axes_input)
    except ValueError:
        ctx.table.pin(lay.atoms, f"{ctx.describe()} reduces over axes computed at run time")
        return
    if axes is None or not axes:
        if int(attr(ctx.node, "noop_with_empty_axes", 0)):
            ctx.set_output(lay)
            return
        axes = list(range(rank))
    reduced = sorted(normalize_axis(a, rank) for a in axes)
    keepdims = int(attr(ctx.node, "keepdims", 1))
    if not set(reduced) & set(lay.axes):
        ctx.set_output(lay if keepdims else _drop_axes(lay, reduced))
        return
    mixed = [a for a in reduced if a in lay.axes]
    if len(mixed) < len(lay.axes):
        # the channel axis was split (e.g. ResNeSt radix groups) and the reduction runs over
        # one of its parts: exact when every removable unit spans whole lines along that part
        kept_axes = [a for a in lay.axes if a not in mixed]
        couple_along(ctx, lay, mixed)
        atoms = lay.atoms
        for a in sorted((lay.axes.index(m) for m in mixed), reverse=True):
            atoms = np.take(atoms, 0, axis=a)
        out = Layout(tuple(kept_axes), atoms)
        ctx.set_output(out if keepdims else _drop_axes(out, reduced))
        return
    if ctx.node.op_type == "ReduceMean" and keepdims and _is_normalisation_statistic(ctx):
        ctx.table.mark_approximate(
            lay.atoms,
            f"{ctx.describe()} computes a LayerNorm statistic over these channels: removing "
            "some changes the others (fine-tuning recovers)",
        )
        return
    ctx.table.pin(lay.atoms, f"{ctx.describe()} reduces over the channel axis")


def _is_normalisation_statistic(ctx: RuleContext) -> bool:
    """ReduceMean over channels used as a LayerNorm/RMSNorm mean or variance."""
    x = ctx.node.input[0]
    for mean in _through_epsilon(ctx, ctx.node.output[0]):
        for consumer in ctx.state.consumers.get(mean, []):
            if consumer.op_type in ("Sub", "Div") and list(consumer.input) == [x, mean]:
                return True  # x - mean(x) (LayerNorm), x / (mean(x) + eps) (GRN)
    square = ctx.state.producer_of.get(x)
    if square is None:
        return False
    if square.op_type == "Mul" and square.input[0] == square.input[1]:
        return True  # mean(s * s)
    if square.op_type == "Pow":
        exponent = ctx.state.constants.get(square.input[1])
        if exponent is not None:
            value = onnx.numpy_helper.to_array(exponent).reshape(-1)
            return value.size == 1 and float(value[0]) == 2.0  # mean(s ** 2)
    return False


def _through_epsilon(ctx: RuleContext, name: str) -> list[str]:
    """``name`` and, if it only feeds ``Add(name, constant)``, that sum too (``mean + eps``)."""
    names = [name]
    users = ctx.state.consumers.get(name, [])
    if (
        len(users) == 1
        and users[0].op_type == "Add"
        and any(i in ctx.state.constants for i in users[0].input if i != name)
    ):
        names.append(users[0].output[0])
    return names


@rule("Softmax", "LogSoftmax", "Hardmax")
def softmax(ctx: RuleContext) -> None:
    """Softmax couples every position along its axis (from ``axis`` on, before opset 13)."""
    lay = ctx.layout(0)
    if lay is None:
        return
    rank = len(ctx.in_shape(0))
    if ctx.opset >= 13:
        covered = {normalize_axis(int(attr(ctx.node, "axis", -1)), rank)}
    else:
        covered = set(range(normalize_axis(int(attr(ctx.node, "axis", 1)), rank), rank))
    mixed = sorted(covered & set(lay.axes))
    if mixed and len(mixed) == len(lay.axes):
        ctx.table.pin(lay.atoms, f"{ctx.node.op_type} over the channel axis ({ctx.describe()})")
        return
    if mixed:  # over one part of a split channel axis (ResNeSt's radix softmax)
        couple_along(ctx, lay, mixed)
    ctx.set_output(lay)


@rule("ArgMax", "ArgMin")
def arg_reduce(ctx: RuleContext) -> None:
    """ArgMax over channels depends on every channel; over other axes it keeps them."""
    lay = ctx.layout(0)
    if lay is None:
        return
    rank = len(ctx.in_shape(0))
    axis = normalize_axis(int(attr(ctx.node, "axis", 0)), rank)
    if axis in lay.axes:
        ctx.table.pin(lay.atoms, f"{ctx.node.op_type} over the channel axis ({ctx.describe()})")
        return
    ctx.set_output(lay if int(attr(ctx.node, "keepdims", 1)) else _drop_axes(lay, [axis]))
