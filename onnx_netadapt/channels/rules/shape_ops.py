"""Ops that move, cut or join channel axes: Reshape/Flatten, Transpose, Squeeze/Unsqueeze,
Concat, Split, Slice, Pad, Resize, Expand, Tile, Gather, Shape.
"""

from __future__ import annotations

import math

import numpy as np

from onnx_netadapt.channels.context import RuleContext
from onnx_netadapt.channels.edits import (
    GatherIndicesEdit,
    ShapeInputEdit,
    SliceBoundsEdit,
    SplitEdit,
)
from onnx_netadapt.channels.layout import (
    MAX_RESHAPE_ELEMENTS,
    Layout,
    full_atom_tensor,
    reduce_to_varying,
)
from onnx_netadapt.channels.rules import rule
from onnx_netadapt.channels.rules.elementwise import combine_broadcast
from onnx_netadapt.channels.rules.reduction import couple_along
from onnx_netadapt.graph.ops import attr, axes_of, normalize_axis


# -- Reshape / Flatten -----------------------------------------------------------------------
def reshape_layout(ctx: RuleContext, lay: Layout) -> Layout | None:
    """Layout of a row-major reshape of the input into the output's shape (pins on failure)."""
    in_shape, out_shape = ctx.in_shape(0), ctx.out_shape()
    # the largest leading block of axes that the reshape leaves alone (prefix products match);
    # an empty prefix always matches, so channels merged with any axis are still followed
    start, k = 0, 0
    for k_in in range(min(lay.axes), -1, -1):
        prefix = math.prod(in_shape[:k_in])
        splits = [j for j in range(len(out_shape) + 1) if math.prod(out_shape[:j]) == prefix]
        if splits:
            start, k = k_in, max(splits)
            break
    if math.prod(in_shape[start:]) > MAX_RESHAPE_ELEMENTS:
        ctx.table.pin(lay.atoms, f"{ctx.describe()} is too large to follow channels through")
        return None
    full = full_atom_tensor(lay, in_shape, start).reshape(out_shape[k:])
    out = reduce_to_varying(full, k)
    if out is None:
        ctx.table.pin(lay.atoms, f"{ctx.describe()} reshapes a single channel away")
        return None
    if len(out.axes) > 1:
        ctx.table.require_block(out.atoms)  # which lines is decided once all unions are known
    return out


def _keep_product_structure(ctx: RuleContext, lay: Layout, free: int) -> None:
    """Couple atoms so that what remains after pruning is still a rectangular block: pruning
    removes whole lines along axis ``free`` (every atom of a line through the other axes is
    removed together).
    """
    lines = np.moveaxis(lay.atoms, free, 0).reshape(lay.atoms.shape[free], -1)
    if lines.shape[1] > 1:
        ctx.table.union(lines[:, :1], lines[:, 1:])


@rule("Reshape")
def reshape(ctx: RuleContext) -> None:
    """Reshape: follow channels through the element order; rewrite a constant target shape."""
    lay = ctx.layout(0)
    if lay is None:
        return
    if not ctx.is_const(1):
        ctx.table.pin(lay.atoms, f"{ctx.describe()} takes a target shape computed at run time")
        return
    out = reshape_layout(ctx, lay)
    if out is not None:
        ctx.edit(ShapeInputEdit(ctx.node.name, 1, ctx.node.output[0]))
        ctx.set_output(out)


@rule("Flatten")
def flatten(ctx: RuleContext) -> None:
    """Flatten: a reshape whose target is computed by the op itself."""
    lay = ctx.layout(0)
    if lay is not None:
        ctx.set_output(reshape_layout(ctx, lay))


# -- axis permutation and insertion --------------------------------------------------------
@rule("Transpose")
def transpose(ctx: RuleContext) -> None:
    """Transpose moves the channel axes (NHWC <-> NCHW)."""
    lay = ctx.layout(0)
    if lay is None:
        return
    rank = len(ctx.in_shape(0))
    perm = attr(ctx.node, "perm") or list(reversed(range(rank)))
    ctx.set_output(lay.moved(tuple(list(perm).index(a) for a in lay.axes)))


@rule("Squeeze")
def squeeze(ctx: RuleContext) -> None:
    """Squeeze removes size-1 axes, which must not be channel axes."""
    lay = ctx.layout(0)
    if lay is None:
        return
    in_shape = ctx.in_shape(0)
    try:
        axes = axes_of(ctx.node, ctx.state.constants)
    except ValueError:
        ctx.table.pin(lay.atoms, f"{ctx.describe()} squeezes axes computed at run time")
        return
    if axes is None:
        axes = [a for a, d in enumerate(in_shape) if d == 1]
    removed = sorted(normalize_axis(a, len(in_shape)) for a in axes)
    if set(removed) & set(lay.axes):
        ctx.table.pin(lay.atoms, f"{ctx.describe()} squeezes a single-channel axis away")
        return
    ctx.set_output(Layout(tuple(a - sum(r < a for r in removed) for a in lay.axes), lay.atoms))


@rule("Unsqueeze")
def unsqueeze(ctx: RuleContext) -> None:
    """Unsqueeze inserts size-1 axes; channel axes are renumbered."""
    lay = ctx.layout(0)
    if lay is None:
        return
    out_rank = len(ctx.out_shape())
    try:
        axes = axes_of(ctx.node, ctx.state.constants)
    except ValueError:
        ctx.table.pin(lay.atoms, f"{ctx.describe()} inserts axes computed at run time")
        return
    inserted = {normalize_axis(a, out_rank) for a in axes or []}
    kept = [a for a in range(out_rank) if a not in inserted]
    ctx.set_output(Layout(tuple(kept[a] for a in lay.axes), lay.atoms))


# -- joining and cutting -------------------------------------------------------------------
@rule("Concat")
def concat(ctx: RuleContext) -> None:
    """Concat along a channel axis joins atom lists; along another axis it couples inputs."""
    rank = len(ctx.out_shape())
    axis = normalize_axis(int(attr(ctx.node, "axis")), rank)
    layouts = [ctx.layout(i) for i in range(len(ctx.node.input))]
    if not any(lay is not None and axis in lay.axes for lay in layouts):
        combine_broadcast(ctx, range(len(ctx.node.input)))
        return
    multi = [lay for lay in layouts if lay is not None and len(lay.axes) > 1]
    if multi:
        _concat_blocks(ctx, layouts, axis)
        return
    pieces = []
    for i, lay in enumerate(layouts):
        size = ctx.in_shape(i)[axis]
        if lay is None:
            pieces.append(
                ctx.table.fresh_pinned(
                    size,
                    f"{ctx.describe()} joins them with {ctx.node.input[i]!r}, whose channels "
                    "are not tracked",
                )
            )
        elif lay.axes != (axis,):
            ctx.pin_inputs(f"{ctx.describe()} joins tensors with different channel axes")
            return
        else:
            pieces.append(lay.atoms)
    ctx.set_output(Layout((axis,), np.concatenate(pieces)))


def _concat_blocks(ctx: RuleContext, layouts: list[Layout | None], axis: int) -> None:
    """Concat of tensors whose channels span several axes (e.g. detection heads' [boxes,
    classes]): join along ``axis`` and couple every line across the other axes, so what remains
    after pruning is still a rectangular block."""
    first = next(lay for lay in layouts if lay is not None)
    others = [a for a in first.axes if a != axis]
    if any(
        lay is None
        or lay.axes != first.axes
        or [lay.atoms.shape[lay.axes.index(a)] for a in others]
        != [first.atoms.shape[first.axes.index(a)] for a in others]
        for lay in layouts
    ):
        ctx.pin_inputs(f"{ctx.describe()} joins tensors with different channel axes")
        return
    position = first.axes.index(axis)
    joined = Layout(first.axes, np.concatenate([lay.atoms for lay in layouts], axis=position))
    _keep_product_structure(ctx, joined, free=position)
    ctx.set_output(joined)


@rule("Split")
def split(ctx: RuleContext) -> None:
    """Split along a channel axis gives each output a sub-range; sizes are rewritten."""
    lay = ctx.layout(0)
    if lay is None:
        return
    rank = len(ctx.in_shape(0))
    axis = normalize_axis(int(attr(ctx.node, "axis", 0)), rank)
    if axis not in lay.axes:
        for index in range(len(ctx.node.output)):
            ctx.set_output(lay, index)
        return
    by_dims = ctx.state.attention_units == "dims" and axis == lay.axes[-1]
    if lay.axes != (axis,):
        # fused q/k/v: [3, H, D] split along the 3 (never pruned); or, by head dimension,
        # q|k|v side by side in every head ([H, 2 kd + vd], LeViT): whole heads or the same
        # sub-ranges of every head, whichever the products decide; sizes rewritten
        if by_dims:
            ctx.table.require_block(lay.atoms)
        else:
            couple_along(ctx, lay, [axis])
        offset, dim = 0, lay.axes.index(axis)
        for index, name in enumerate(ctx.node.output):
            size = ctx.shape(name)[axis]
            part = np.take(lay.atoms, list(range(offset, offset + size)), axis=dim)
            ctx.set_output(_without_single_axes(Layout(lay.axes, part)), index)
            offset += size
        if by_dims:
            ctx.edit(SplitEdit(ctx.node.name, axis))
        return
    offset = 0
    for index, name in enumerate(ctx.node.output):
        size = ctx.shape(name)[axis]
        ctx.set_output(Layout((axis,), lay.atoms[offset : offset + size]), index)
        offset += size
    ctx.edit(SplitEdit(ctx.node.name, axis))


@rule("Slice")
def slice_(ctx: RuleContext) -> None:
    """Slice with step 1 on a channel axis keeps a sub-range; bounds are rewritten."""
    lay = ctx.layout(0)
    if lay is None:
        return
    in_shape = ctx.in_shape(0)
    starts, ends = ctx.const(1), ctx.const(2)
    axes = ctx.const(3) if len(ctx.node.input) > 3 and ctx.node.input[3] else None
    steps = ctx.const(4) if len(ctx.node.input) > 4 and ctx.node.input[4] else None
    if (
        starts is None
        or ends is None
        or (len(ctx.node.input) > 3 and ctx.node.input[3] and axes is None)
    ):
        ctx.table.pin(lay.atoms, f"{ctx.describe()} slices with bounds computed at run time")
        return
    starts, ends = starts.reshape(-1), ends.reshape(-1)
    axes = range(len(starts)) if axes is None else axes.reshape(-1)
    if len(lay.axes) > 1:
        _slice_block(ctx, lay, starts, ends, axes, steps)
        return
    atoms = lay.atoms
    for entry, raw_axis in enumerate(axes):
        axis = normalize_axis(int(raw_axis), len(in_shape))
        if axis not in lay.axes:
            continue
        step = 1 if steps is None else int(steps.reshape(-1)[entry])
        if step != 1 or lay.axes != (axis,):
            ctx.table.pin(lay.atoms, f"{ctx.describe()} slices channels with a step or in blocks")
            return
        start, end, _ = slice(int(starts[entry]), int(ends[entry])).indices(in_shape[axis])
        atoms = atoms[start:end]
        ctx.edit(SliceBoundsEdit(ctx.node.name, ctx.node.input[0], axis, start, end, entry))
    ctx.set_output(Layout(lay.axes, atoms))


def _slice_block(
    ctx: RuleContext,
    lay: Layout,
    starts: np.ndarray,
    ends: np.ndarray,
    axes: range | np.ndarray,
    steps: np.ndarray | None,
) -> None:
    """Slice of a channel axis split into several axes (one of q/k/v out of a fused
    ``[3, H, D]`` projection): the sliced axis is coupled so that it is never pruned, and the
    output keeps the selected part (bounds stay valid)."""
    in_shape = ctx.in_shape(0)
    atoms = lay.atoms
    for entry, raw_axis in enumerate(axes):
        axis = normalize_axis(int(raw_axis), len(in_shape))
        if axis not in lay.axes:
            continue
        step = 1 if steps is None else int(steps.reshape(-1)[entry])
        picked = range(*slice(int(starts[entry]), int(ends[entry]), step).indices(in_shape[axis]))
        if ctx.state.attention_units == "dims" and axis == lay.axes[-1] and step == 1:
            # one of q|k|v side by side in every head (timm's chunk, legacy export): as Split
            ctx.table.require_block(lay.atoms)
            start, end = picked.start, picked.stop
            ctx.edit(SliceBoundsEdit(ctx.node.name, ctx.node.input[0], axis, start, end, entry))
        else:
            couple_along(ctx, lay, [axis])
        atoms = np.take(atoms, list(picked), axis=lay.axes.index(axis))
    ctx.set_output(_without_single_axes(Layout(lay.axes, atoms)))


def _without_single_axes(lay: Layout) -> Layout:
    """Drop layout axes of size 1 (a part taken along them), keeping at least one axis."""
    keep = [k for k, n in enumerate(lay.atoms.shape) if n > 1] or [0]
    atoms = lay.atoms.reshape([lay.atoms.shape[k] for k in keep])
    return Layout(tuple(lay.axes[k] for k in keep), atoms)


@rule("Pad")
def pad(ctx: RuleContext) -> None:
    """Pad along spatial axes keeps channels; constant padding of channels adds fixed ones."""
    lay = ctx.layout(0)
    if lay is None:
        return
    rank = len(ctx.in_shape(0))
    pads = attr(ctx.node, "pads")
    pads = np.asarray(pads) if pads is not None else ctx.const(1)
    if pads is None:
        ctx.table.pin(lay.atoms, f"{ctx.describe()} pads by amounts computed at run time")
        return
    pads = pads.reshape(-1)
    axes = ctx.const(3) if len(ctx.node.input) > 3 and ctx.node.input[3] else None
    axes = list(range(rank)) if axes is None else [normalize_axis(int(a), rank) for a in axes]
    n = len(axes)
    atoms = lay.atoms
    for k, axis in enumerate(axes):
        before, after = int(pads[k]), int(pads[k + n])
        if axis not in lay.axes or (before == 0 and after == 0):
            continue
        mode = attr(ctx.node, "mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if len(lay.axes) > 1 and mode == "constant" and before >= 0 and after >= 0:
            # one axis of a block (EfficientViT pads each head's v with a column of ones): the
            # axis is coupled so that it is never cut, and the padding goes with its line
            couple_along(ctx, lay, [axis])
            widths = [(0, 0)] * atoms.ndim
            widths[lay.axes.index(axis)] = (before, after)
            atoms = np.pad(atoms, widths, mode="edge")
            continue
        if mode != "constant" or lay.axes != (axis,) or before < 0 or after < 0:
            ctx.table.pin(lay.atoms, f"{ctx.describe()} pads or crops the channel axis")
            return
        reason = f"{ctx.describe()} adds constant channels"
        atoms = np.concatenate(
            [ctx.table.fresh_pinned(before, reason), atoms, ctx.table.fresh_pinned(after, reason)]
        )
    ctx.set_output(Layout(lay.axes, atoms))


@rule("Resize", "Upsample")
def resize(ctx: RuleContext) -> None:
    """Resize scales spatial axes; a constant ``sizes`` holding the channel count is rewritten."""
    lay = ctx.layout(0)
    if lay is None:
        return
    if any(ctx.in_shape(0)[a] != ctx.out_shape()[a] for a in lay.axes):
        ctx.table.pin(lay.atoms, f"{ctx.describe()} resizes the channel axis")
        return
    sizes_index = 3 if ctx.node.op_type == "Resize" else -1
    if sizes_index > 0 and len(ctx.node.input) > sizes_index and ctx.node.input[sizes_index]:
        if not ctx.is_const(sizes_index):
            ctx.table.pin(lay.atoms, f"{ctx.describe()} takes sizes computed at run time")
            return
        if attr(ctx.node, "axes") is not None:
            ctx.table.pin(lay.atoms, f"{ctx.describe()} uses sizes with an axes attribute")
            return
        ctx.edit(ShapeInputEdit(ctx.node.name, sizes_index, ctx.node.output[0]))
    ctx.set_output(lay)


@rule("Expand")
def expand(ctx: RuleContext) -> None:
    """Expand broadcasts to a shape; a constant shape holding the channel count is rewritten."""
    lay = ctx.layout(0)
    if lay is None:
        return
    if not ctx.is_const(1):
        ctx.table.pin(lay.atoms, f"{ctx.describe()} expands to a shape computed at run time")
        return
    combine_broadcast(ctx, [0])
    if ctx.node.output[0] in ctx.state.layouts:
        ctx.edit(ShapeInputEdit(ctx.node.name, 1, ctx.node.output[0], right_aligned=True))


@rule("Tile")
def tile(ctx: RuleContext) -> None:
    """Tile is fine when it does not repeat a channel axis."""
    lay = ctx.layout(0)
    if lay is None:
        return
    repeats = ctx.const(1)
    if repeats is None or any(int(repeats.reshape(-1)[a]) != 1 for a in lay.axes):
        ctx.table.pin(lay.atoms, f"{ctx.describe()} repeats the channel axis")
        return
    ctx.set_output(lay)


@rule("Gather")
def gather(ctx: RuleContext) -> None:
    """Gather along a non-channel axis keeps channels (renumbered); along channels: pinned."""
    lay = ctx.layout(0)
    if ctx.layout(1) is not None:
        ctx.pin_inputs(f"{ctx.describe()} uses channel-carrying values as indices")
        return
    if lay is None:
        return
    rank = len(ctx.in_shape(0))
    axis = normalize_axis(int(attr(ctx.node, "axis", 0)), rank)
    if axis in lay.axes and len(lay.axes) > 1 and ctx.const(1) is not None:
        _gather_block(ctx, lay, axis)
        return
    if axis in lay.axes:
        _gather_channels(ctx, lay, axis)
        return
    shift = len(ctx.in_shape(1)) - 1
    ctx.set_output(Layout(tuple(a if a < axis else a + shift for a in lay.axes), lay.atoms))


@rule("Shape", "Size")
def shape_of(ctx: RuleContext) -> None:
    """Reading a shape does not consume channel values (it adapts at run time)."""


def _gather_block(ctx: RuleContext, lay: Layout, axis: int) -> None:
    """Gather with constant indices along one axis of a split channel axis (``qkv[0]`` out of
    a fused ``[3, H, D]`` projection): that axis is coupled so that it is never pruned, and the
    output carries the picked atoms (the indices stay valid)."""
    indices = ctx.const(1)
    dim = lay.axes.index(axis)
    size = lay.atoms.shape[dim]
    couple_along(ctx, lay, [axis])
    picked = np.take(lay.atoms, np.where(indices < 0, indices + size, indices), axis=dim)
    shift = indices.ndim - 1
    axes = [a if a < axis else a + shift for a in lay.axes if a != axis]
    inserted = list(range(axis, axis + indices.ndim))
    order = sorted(axes + inserted)
    # picked has the index dims at ``dim``; put the layout dims in ascending axis order
    labels = axes[:dim] + inserted + axes[dim:]
    atoms = np.moveaxis(picked, range(picked.ndim), [order.index(a) for a in labels])
    ctx.set_output(_without_single_axes(Layout(tuple(order), atoms)))


def _gather_channels(ctx: RuleContext, lay: Layout, axis: int) -> None:
    """Gather with a constant index vector along the channel axis (a permutation or selection,
    as dynamo writes ``as_strided``): output atoms are the gathered atoms."""
    indices = ctx.const(1)
    vector_dims = [] if indices is None else [d for d, n in enumerate(indices.shape) if n > 1]
    if indices is None or lay.axes != (axis,) or len(vector_dims) != 1:
        ctx.table.pin(lay.atoms, f"{ctx.describe()} picks individual channels")
        return
    size = lay.atoms.shape[0]
    vector = np.where(indices < 0, indices + size, indices).reshape(-1)
    ctx.edit(GatherIndicesEdit(ctx.node.name, ctx.node.input[0], vector_dims[0]))
    ctx.set_output(Layout((axis + vector_dims[0],), lay.atoms[vector]))
