"""Normalisation ops: per-channel (BatchNorm, InstanceNorm) and across channels (LayerNorm)."""

from __future__ import annotations

from onnx_netadapt.channels.context import RuleContext
from onnx_netadapt.channels.layout import Layout
from onnx_netadapt.channels.rules import rule
from onnx_netadapt.channels.rules.reduction import couple_along
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
        if ctx.node.op_type == "InstanceNormalization" and lay.axes[0] == 1:
            _group_norm_as_instance_norm(ctx, lay)
        else:
            ctx.table.pin(lay.atoms, f"{ctx.describe()} normalises across channel-carrying axes")
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


def _group_norm_as_instance_norm(ctx: RuleContext, lay: Layout) -> None:
    """GroupNorm exported as Reshape [N, G, C/G*H*W] -> InstanceNormalization -> Reshape.

    The G axis (axis 1) must keep its size: every line along it is removed together, i.e. the
    same index goes from every group, and the per-group scale and bias stay as they are. The
    statistics of each group change: approximate.
    """
    couple_along(ctx, lay, [1])
    ctx.table.mark_approximate(lay.atoms, _GROUP_NORM_REASON.format(ctx.describe()))
    ctx.set_output(lay)


_GROUP_NORM_REASON = (
    "{} normalises over groups of these channels: removing some changes the statistics of the "
    "others (fine-tuning recovers)"
)


@rule("GroupNormalization")
def group_norm(ctx: RuleContext) -> None:
    """GroupNormalization: the same index is removed from every group (approximate)."""
    lay = ctx.layout(0)
    if lay is None:
        return
    if lay.axes != (1,):
        ctx.table.pin(lay.atoms, f"{ctx.describe()} normalises channels spread over several axes")
        return
    groups = int(attr(ctx.node, "num_groups"))
    columns = lay.atoms.reshape(groups, -1)
    ctx.table.union(columns[:1], columns[1:])
    ctx.table.mark_approximate(lay.atoms, _GROUP_NORM_REASON.format(ctx.describe()))
    channels = lay.atoms.size
    for index in (1, 2):  # per-channel from opset 21, per-group before
        if index < len(ctx.node.input) and ctx.node.input[index]:
            if not ctx.is_const(index):
                ctx.pin_inputs(f"{ctx.describe()} has parameters computed at run time")
                return
            if ctx.in_shape(index) == (channels,) and channels != groups:
                ctx.slice(index, 0, lay.atoms, "follower")
    ctx.set_output(lay)
