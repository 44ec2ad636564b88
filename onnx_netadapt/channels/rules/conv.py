"""Conv and ConvTranspose: regular (producers and consumers), depthwise and grouped."""

from __future__ import annotations

import numpy as np

from onnx_netadapt.channels.context import RuleContext
from onnx_netadapt.channels.edits import GroupAttrEdit
from onnx_netadapt.channels.layout import Layout
from onnx_netadapt.channels.rules import rule
from onnx_netadapt.graph.ops import attr


def _input_channels(ctx: RuleContext) -> Layout | None:
    """Layout of the data input, which must carry channels on axis 1 only (else pinned)."""
    lay = ctx.layout(0)
    if lay is None:
        return None
    if lay.axes != (1,):
        ctx.table.pin(
            lay.atoms, f"{ctx.describe()} reads channels from axis {lay.axes}, not axis 1"
        )
        return None
    return lay


def _conv_along_channels(ctx: RuleContext, lay: Layout) -> bool:
    """ECA-style attention: a single-channel conv whose *spatial* axis is the channel axis.

    Each output position mixes neighbouring channels (like LRN): removing channels changes
    their neighbours' inputs, so the group is approximate. Handled when the conv has one input
    and one output channel and keeps the length of the channel axis.
    """
    in_shape, out_shape = ctx.in_shape(0), ctx.out_shape()
    if (
        len(lay.axes) != 1
        or lay.axes[0] < 2
        or in_shape[1] != 1
        or out_shape[1] != 1
        or in_shape[lay.axes[0]] != out_shape[lay.axes[0]]
    ):
        return False
    ctx.table.mark_approximate(
        lay.atoms,
        f"{ctx.describe()} convolves along the channel axis (ECA attention): removing channels "
        "changes their neighbours' attention (fine-tuning recovers)",
    )
    ctx.set_output(lay)
    return True


def _bias(ctx: RuleContext, atoms: np.ndarray) -> None:
    if len(ctx.node.input) > 2 and ctx.node.input[2]:
        if ctx.is_const(2):
            ctx.slice(2, 0, atoms, "follower")
        else:
            ctx.table.pin(atoms, f"{ctx.describe()} has a bias computed at run time")


@rule("Conv")
def conv(ctx: RuleContext) -> None:
    """Conv: regular (group 1), depthwise (1 input channel per group) or grouped."""
    along = ctx.layout(0)
    if along is not None and along.axes != (1,) and _conv_along_channels(ctx, along):
        return
    lay = _input_channels(ctx)
    if not ctx.is_const(1):
        ctx.pin_inputs(f"{ctx.describe()} has a weight computed at run time")
        return
    group = int(attr(ctx.node, "group", 1))
    c_out, c_in_per_group = ctx.in_shape(1)[:2]
    if group == 1:
        if lay is not None:
            ctx.slice(1, 1, lay.atoms, "consumer")
        out = ctx.produce(c_out, weight_index=1, weight_axis=0)
        _bias(ctx, out)
        ctx.set_output(Layout((1,), out))
        return
    out_per_group = c_out // group
    if lay is None:
        # Grouped conv on channels we cannot prune (e.g. the image): its filters can still
        # go, but only whole conv-groups at a time is wrong without the inputs. Keep it fixed.
        out = ctx.table.fresh_pinned(
            c_out, f"{ctx.describe()} is grouped over input channels that cannot be pruned"
        )
        ctx.set_output(Layout((1,), out))
        return
    if c_in_per_group == 1:
        # depthwise (with depth multiplier out_per_group): output channel j reads input j // m
        out = np.repeat(lay.atoms, out_per_group)
        ctx.slice(1, 0, out, "follower")
        _bias(ctx, out)
        ctx.edit(GroupAttrEdit(ctx.node.name, ctx.node.input[0], 1))
        ctx.set_output(Layout((1,), out))
        return
    _grouped(ctx, lay, group, int(c_in_per_group), int(c_out))


def _grouped(ctx: RuleContext, lay: Layout, group: int, c_in_per_group: int, c_out: int) -> None:
    """Grouped conv: whole conv-groups (inputs and outputs together: ResNeXt, RegNet) or the same
    index in every group (ResNeSt radix, grouped 1x1s; the number of groups does not change).

    Which one is decided once all unions are known: the structure that leaves more units of the
    input channels (EfficientViT's aggregation convs over attention heads need whole groups),
    on a tie whole groups when they are many and narrow, columns otherwise.
    """
    out = ctx.produce(c_out, weight_index=1, weight_axis=0)
    rows_in = lay.atoms.reshape(group, c_in_per_group)
    ctx.slice_nd(1, 1, rows_in, 1, "consumer")  # index j of every group: "any kept" keeps it
    rows = np.concatenate([rows_in, out.reshape(group, c_out // group)], axis=1)
    ctx.table.require_block(rows, 1 if c_in_per_group >= group else 0, counted=c_in_per_group)
    _bias(ctx, out)
    ctx.edit(GroupAttrEdit(ctx.node.name, ctx.node.input[0], c_in_per_group, groups=group))
    ctx.set_output(Layout((1,), out))


@rule("ConvTranspose")
def conv_transpose(ctx: RuleContext) -> None:
    """ConvTranspose: weight is [C_in, C_out/group, k...]."""
    lay = _input_channels(ctx)
    if not ctx.is_const(1):
        ctx.pin_inputs(f"{ctx.describe()} has a weight computed at run time")
        return
    group = int(attr(ctx.node, "group", 1))
    c_in, out_per_group = ctx.in_shape(1)[:2]
    if group == 1:
        if lay is not None:
            ctx.slice(1, 0, lay.atoms, "consumer")
        out = ctx.produce(out_per_group, weight_index=1, weight_axis=1)
        _bias(ctx, out)
        ctx.set_output(Layout((1,), out))
        return
    if lay is not None and group == c_in and out_per_group == 1:
        ctx.slice(1, 0, lay.atoms, "follower")
        _bias(ctx, lay.atoms)
        ctx.edit(GroupAttrEdit(ctx.node.name, ctx.node.input[0], 1))
        ctx.set_output(lay)
        return
    reason = f"{ctx.describe()} is a grouped ConvTranspose (only group 1 and depthwise supported)"
    ctx.pin_inputs(reason)
    ctx.set_output(Layout((1,), ctx.table.fresh_pinned(group * out_per_group, reason)))
