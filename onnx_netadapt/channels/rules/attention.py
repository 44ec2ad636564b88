"""MatMul of two computed tensors: attention (``q @ k^T``, ``attn @ v``) and attention pooling.

Every output position of ``A[..., M, K] @ B[..., K, N]`` depends on the atoms of one row of A
and one column of B. The rule couples exactly those: the atoms along the contracted axis K, and
the row's atoms with the column's atoms at the same batch position. On a multi-head attention
(``[B, H, N, D]`` operands) this makes one class per head spanning q, k, v and the output
projection's input rows, so whole heads are removed; the scores ``[B, H, N, N]`` carry the head
atoms and Softmax over the key axis leaves them alone. The head count in Reshape shapes is
rewritten like any other channel count (``ShapeInputEdit``).

Removing a head is exact under the masked-original oracle: the head's q, k and v reach the rest
of the graph only through its rows of the output projection, which the oracle zeroes.

Per-head dimensions (``analyse(..., attention_units="dims")``, and single-head attention, which
has no head to remove): the atoms of each operand are coupled along the batch (head) axes, so a
unit is the same dimension of every head (the Reshape to ``[B, N, H, D]`` needs one ``D``). The
contracted axis of ``q @ k^T`` couples q's and k's dimension ``d`` pairwise: dropping ``d`` from
both drops the term ``q_d k_d`` from every score, which is what masking ``d`` at the product
gives (the oracle multiplies the operand by a 0/1 mask there, a ``Contraction``); the scores then
carry no channels. The softmax scale is whatever the graph holds: static shapes are folded into
constants when a model is loaded, so a scale computed as ``1/sqrt(Shape(q)[-1])`` is a stored
constant and keeps its value. ``attn @ v`` passes v's dimensions on to the output projection's
rows. A block whose products do not have this form (linear attention, where ``k^T @ v`` carries
k's dimensions as rows and v's as columns) keeps whole heads.
"""

from __future__ import annotations

import numpy as np

from onnx_netadapt.channels.context import AnalysisState, Contraction, RuleContext
from onnx_netadapt.channels.layout import Layout, reduce_to_varying
from onnx_netadapt.channels.rules.reduction import couple_along


def activation_product(ctx: RuleContext) -> None:
    """Channel rule for a MatMul whose second operand is not a constant matrix."""
    a, b = ctx.layout(0), ctx.layout(1)
    if a is None and b is None:
        return
    rank_a, rank_b, rank_out = len(ctx.in_shape(0)), len(ctx.in_shape(1)), len(ctx.out_shape())
    if rank_a < 2 or rank_b < 2:
        ctx.pin_inputs(f"{ctx.describe()} multiplies vectors")
        return
    batch_a = a is not None and any(axis < rank_a - 2 for axis in a.axes)
    batch_b = b is not None and any(axis < rank_b - 2 for axis in b.axes)
    rows = a is not None and rank_a - 2 in a.axes
    cols = b is not None and rank_b - 1 in b.axes
    by_dims = ctx.state.attention_units == "dims" or not (batch_a or batch_b or rows or cols)
    if by_dims and _by_dimension(ctx, (a, b), (rank_a, rank_b), rank_out):
        return
    if rows and cols and not (batch_a or batch_b):
        ctx.pin_inputs(
            f"{ctx.describe()} multiplies computed tensors whose rows and columns both carry "
            "channels (every output depends on all of them)"
        )
        return
    row_atoms = _contract(ctx, a, rank_a, rank_out, contracted=-1)  # [*batch, M]
    col_atoms = _contract(ctx, b, rank_b, rank_out, contracted=-2)  # [*batch, N]
    if row_atoms is not None and col_atoms is not None:
        left, right = np.broadcast_arrays(row_atoms[..., :, None], col_atoms[..., None, :])
        ctx.table.union(left, right)
        out = left
    elif row_atoms is not None:
        out = row_atoms[..., :, None]
    else:
        out = col_atoms[..., None, :]
    ctx.state.head_products.append(out.reshape(-1))
    layout = reduce_to_varying(np.ascontiguousarray(out), 0)
    if layout is None:
        ctx.pin_inputs(
            f"{ctx.describe()} contracts all channels of its operands into one map "
            "(attention without a head axis: no head or channel to remove)"
        )
        return
    for index, lay in ((0, a), (1, b)):
        if lay is None and not _follow_batch(ctx, index, layout, rank_out):
            return
    ctx.set_output(layout)


def _by_dimension(
    ctx: RuleContext,
    lays: tuple[Layout | None, Layout | None],
    ranks: tuple[int, int],
    rank_out: int,
) -> bool:
    """Couple the operands per head dimension (see the module docstring); False (nothing
    recorded) when the product does not have that form."""
    inner: list[tuple[int, np.ndarray] | None] = []  # (tensor axis, atoms along it) per operand
    for lay, rank in zip(lays, ranks, strict=True):
        matrix = [axis for axis in lay.axes if axis >= rank - 2] if lay is not None else []
        if lay is not None and len(matrix) != 1:
            return False  # channels on both matrix axes, or on the batch axes only
        if lay is not None and _per_head(ctx.state, lay):
            return False  # made by a product that keeps whole heads (k^T @ v)
        vector = lay.atoms.reshape(-1, lay.atoms.shape[-1])[0] if lay is not None else None
        inner.append((matrix[0], vector) if lay is not None else None)
    contracted = (ranks[0] - 1, ranks[1] - 2)
    summed = [i for i in (0, 1) if inner[i] is not None and inner[i][0] == contracted[i]]
    free = [i for i in (0, 1) if inner[i] is not None and inner[i][0] != contracted[i]]
    if summed and (free or (len(summed) == 1 and not ctx.is_const(1 - summed[0]))):
        return False  # a summed dimension would need a computed operand's entries removed
    if len(free) > 1:
        return False
    for lay, rank in zip(lays, ranks, strict=True):
        if lay is not None:
            couple_along(ctx, lay, [axis for axis in lay.axes if axis < rank - 2])
            ctx.state.head_dims.append(lay.flat_atoms())
    for i in summed:
        ctx.state.contractions.append(Contraction(ctx.node.name, i, contracted[i], inner[i][1]))
    if len(summed) == 2:
        ctx.table.union(inner[0][1], inner[1][1])
    elif summed:  # a constant matrix shared by every head (BotNet's relative logits)
        other = 1 - summed[0]
        ctx.slice(other, contracted[other], inner[summed[0]][1], "consumer")
    if free:
        axis = rank_out - 2 if free[0] == 0 else rank_out - 1
        ctx.set_output(Layout((axis,), inner[free[0]][1]))
    return True


def _per_head(state: AnalysisState, lay: Layout) -> bool:
    """True when ``lay`` carries atoms that a whole-head product coupled."""
    return any(np.isin(lay.atoms, atoms).any() for atoms in state.head_products)


def _follow_batch(ctx: RuleContext, index: int, out: Layout, rank_out: int) -> bool:
    """An operand without channels whose batch axes span the output's channel-carrying batch
    axes (a constant per-head matrix): slice it along them if constant, else pin."""
    shape = ctx.in_shape(index)
    shift = rank_out - len(shape)
    for k, axis in enumerate(out.axes):
        own = axis - shift
        size = out.atoms.shape[k]
        if axis >= rank_out - 2 or own < 0 or shape[own] != size or size <= 1:
            continue
        if not ctx.is_const(index):
            ctx.pin_inputs(
                f"{ctx.describe()} multiplies them with {ctx.node.input[index]!r}, whose "
                "channels are not tracked"
            )
            return False
        ctx.slice_nd(index, own, out.atoms, k, "follower")
    return True


def _contract(
    ctx: RuleContext, lay: Layout | None, rank: int, rank_out: int, contracted: int
) -> np.ndarray | None:
    """Atoms of one operand with the contracted axis coupled and dropped.

    Returns an array over the output's batch axes plus the operand's free matrix axis (size 1
    where no channel varies), or None when the operand carries no channels.
    """
    if lay is None:
        return None
    view = [1] * rank
    for axis, size in zip(lay.axes, lay.atoms.shape, strict=True):
        view[axis] = size
    atoms = np.moveaxis(lay.atoms.reshape(view), contracted, -1)  # [..., free, K]
    if atoms.shape[-1] > 1:
        ctx.table.union(atoms[..., :1], atoms[..., 1:])
    reduced = atoms[..., 0]
    return reduced.reshape((1,) * (rank_out - rank) + reduced.shape)


def attention_products(state: AnalysisState) -> set[str]:
    """Outputs of MatMuls whose two operands both carry channels (``q @ k^T``, ``attn @ v``)."""
    return {
        node.output[0]
        for node in state.model.graph.node
        if node.op_type == "MatMul"
        and node.input[1] not in state.constants
        and all(name in state.layouts for name in node.input[:2])
        and node.output[0] in state.layouts
    }
