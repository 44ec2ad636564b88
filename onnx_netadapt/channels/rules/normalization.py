"""Normalisation ops: per-channel (BatchNorm, InstanceNorm) and across channels (LayerNorm)."""

from __future__ import annotations

from onnx_netadapt.channels.context import RuleContext
from onnx_netadapt.channels.rules import rule
from onnx_netadapt.graph.ops import attr, normalize_axis


@rule("BatchNormalization", "InstanceNormalization")
def per_channel_norm(ctx: RuleContext) -> None:
    """Statistics and parameters are per channel of axis 1: parameters follow the channels."""
    lay = ctx.layout(0)
    if lay is None:
        return
    if 1 not in lay.axes:
        if ctx.node.op_type == "InstanceNormalization":
            ctx.table.mark_approximate(
                lay.atoms, f"{ctx.describe()} normalises over channel-carrying axes"
            )
        ctx.set_output(lay)
        return
    if lay.axes != (1,):
        ctx.table.pin(
            lay.atoms,
            f"{ctx.describe()} mixes channel groups (e.g. a GroupNorm written as Reshape)",
        )
        return
    for index in range(1, len(ctx.node.input)):
        if ctx.node.input[index]:
            if ctx.is_const(index):
                ctx.slice(index, 0, lay.atoms, "follower")
            else:
                ctx.pin_inputs(f"{ctx.describe()} has parameters computed at run time")
                return
    ctx.set_output(lay)


@rule("LayerNormalization")
def layer_norm(ctx: RuleContext) -> None:
    """LayerNorm over the channel axis: pruning changes its statistics (approximate group)."""
    lay = ctx.layout(0)
    if lay is None:
        return
    rank = len(ctx.in_shape(0))
    first = normalize_axis(int(attr(ctx.node, "axis", -1)), rank)
    normalised = [a for a in lay.axes if a >= first]
    if normalised:
        ctx.table.mark_approximate(
            lay.atoms,
            f"{ctx.describe()} normalises over these channels: removing some changes the "
            "statistics of the others (fine-tuning recovers)",
        )
    for index in (1, 2):
        if index < len(ctx.node.input) and ctx.node.input[index]:
            if not ctx.is_const(index):
                ctx.pin_inputs(f"{ctx.describe()} has parameters computed at run time")
                return
            shape = ctx.in_shape(index)
            shift = rank - len(shape)
            for k, axis in enumerate(lay.axes):
                if axis - shift >= 0 and shape[axis - shift] == lay.atoms.shape[k] > 1:
                    ctx.slice_nd(index, axis - shift, lay.atoms, k, "follower")
    ctx.set_output(lay)


@rule("LRN")
def lrn(ctx: RuleContext) -> None:
    """Local response normalisation sums squares of neighbouring channels: approximate."""
    lay = ctx.layout(0)
    if lay is None:
        return
    if 1 in lay.axes:
        ctx.table.mark_approximate(
            lay.atoms, f"{ctx.describe()} normalises across neighbouring channels"
        )
    ctx.set_output(lay)


@rule("GroupNormalization")
def group_norm(ctx: RuleContext) -> None:
    """GroupNormalization ties channels into groups of fixed count: not supported."""
    ctx.pin_inputs(f"{ctx.describe()}: GroupNormalization channel groups are not supported")
