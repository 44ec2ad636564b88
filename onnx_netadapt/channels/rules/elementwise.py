"""Ops that treat channels independently and keep each position's channel: unary activations,
and broadcasting combinations (Add, Mul, Where, PRelu, ...) of tensors and per-channel constants.
"""

from __future__ import annotations

import numpy as np

from onnx_netadapt.channels.context import RuleContext
from onnx_netadapt.channels.layout import Layout, align_to_output
from onnx_netadapt.channels.rules import rule

UNARY_OPS = [
    "Relu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "LeakyRelu",
    "Tanh",
    "Elu",
    "Selu",
    "Celu",
    "Gelu",
    "Softplus",
    "Softsign",
    "Erf",
    "Identity",
    "Cast",
    "CastLike",
    "Dropout",
    "Mish",
    "ThresholdedRelu",
    "Neg",
    "Abs",
    "Exp",
    "Log",
    "Sqrt",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Sin",
    "Cos",
    "Tan",
    "Asin",
    "Acos",
    "Atan",
    "Sinh",
    "Cosh",
    "Asinh",
    "Acosh",
    "Atanh",
    "Not",
    "IsNaN",
    "IsInf",
    "Shrink",
    "Clip",
    "BitwiseNot",
]

BROADCAST_OPS = [
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Max",
    "Min",
    "Sum",
    "Mean",
    "PRelu",
    "Where",
    "Equal",
    "Greater",
    "Less",
    "GreaterOrEqual",
    "LessOrEqual",
    "And",
    "Or",
    "Xor",
    "Mod",
    "BitShift",
    "BitwiseAnd",
    "BitwiseOr",
    "BitwiseXor",
]


@rule(*UNARY_OPS)
def unary(ctx: RuleContext) -> None:
    """Output position i depends only on input position i (extra inputs are scalars)."""
    lay = ctx.layout(0)
    if lay is None:
        return
    for index in range(1, len(ctx.node.input)):  # Clip min/max, Dropout ratio: scalars
        extra = ctx.node.input[index]
        if extra and ctx.layout(index) is not None:
            ctx.pin_inputs(f"{ctx.describe()} takes a channel-carrying tensor as a parameter")
            return
    ctx.set_output(lay)


@rule(*BROADCAST_OPS)
def broadcast(ctx: RuleContext) -> None:
    """Numpy-broadcasting combination: aligned channels are coupled, constants follow them."""
    combine_broadcast(ctx, range(len(ctx.node.input)))


def combine_broadcast(ctx: RuleContext, inputs: range | list[int]) -> None:
    """Couple the channels of broadcast inputs ``inputs`` and give the output their layout."""
    out_shape = ctx.out_shape()
    rank = len(out_shape)
    tracked: list[tuple[int, Layout]] = []
    for i in inputs:
        lay = ctx.layout(i)
        if lay is None:
            continue
        aligned = align_to_output(lay, len(ctx.in_shape(i)), rank)
        if any(out_shape[a] != s for a, s in zip(aligned.axes, aligned.atoms.shape, strict=False)):
            ctx.table.pin(
                lay.atoms,
                f"{ctx.describe()} broadcasts these channels over a wider tensor",
            )
            continue
        tracked.append((i, aligned))
    if not tracked:
        return
    widest = max((lay for _, lay in tracked), key=lambda lay: len(lay.axes))
    if any(not set(lay.axes) <= set(widest.axes) for _, lay in tracked):
        ctx.pin_inputs(f"{ctx.describe()} combines channels that sit on different axes")
        return
    # an operand whose channel axes are a subset of another's (SK-Net: stacked paths times
    # per-path attention) repeats its channels along the other axes
    tracked = [(i, _broadcast_layout(lay, widest)) for i, lay in tracked]
    first = tracked[0][1]
    for _, other in tracked[1:]:
        ctx.table.union(first.atoms, other.atoms)
    tracked_ids = {i for i, _ in tracked}
    for i in inputs:
        if i in tracked_ids or i >= len(ctx.node.input) or not ctx.node.input[i]:
            continue
        if not _follow_untracked(ctx, i, first, rank):
            return
    ctx.set_output(first)


def _broadcast_layout(lay: Layout, target: Layout) -> Layout:
    """``lay`` repeated over the axes of ``target`` it lacks."""
    if lay.axes == target.axes:
        return lay
    view = [lay.atoms.shape[lay.axes.index(a)] if a in lay.axes else 1 for a in target.axes]
    atoms = np.broadcast_to(lay.atoms.reshape(view), target.atoms.shape)
    return Layout(target.axes, np.ascontiguousarray(atoms))


def _follow_untracked(ctx: RuleContext, index: int, lay: Layout, out_rank: int) -> bool:
    """Handle an input without channels: slice it if constant, pin if it spans the channels."""
    shape = ctx.in_shape(index)
    shift = out_rank - len(shape)
    spanning = [
        (k, axis - shift)
        for k, axis in enumerate(lay.axes)
        if axis - shift >= 0
        and shape[axis - shift] == lay.atoms.shape[k]
        and shape[axis - shift] > 1
    ]
    if not spanning:
        return True
    if ctx.is_const(index):
        for atoms_axis, tensor_axis in spanning:
            ctx.slice_nd(index, tensor_axis, lay.atoms, atoms_axis, "follower")
        return True
    ctx.table.pin(
        lay.atoms,
        f"{ctx.describe()} combines them with {ctx.node.input[index]!r}, whose channels are "
        "not tracked",
    )
    return False


def keep_layout_if_same_shape(ctx: RuleContext) -> np.ndarray | None:
    """Helper for rules whose output has the input's shape: pass the layout through."""
    lay = ctx.layout(0)
    if lay is not None and ctx.in_shape(0) == ctx.out_shape():
        ctx.set_output(lay)
        return lay.atoms
    return None
