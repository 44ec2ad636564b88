"""Gemm and MatMul with a constant weight: consumers of input features, producers of outputs."""

from __future__ import annotations

from onnx_netadapt.channels.context import RuleContext
from onnx_netadapt.channels.layout import Layout
from onnx_netadapt.channels.rules import rule
from onnx_netadapt.graph.ops import attr


@rule("Gemm")
def gemm(ctx: RuleContext) -> None:
    """Y = alpha * A' B' + beta * C, with B constant."""
    if not ctx.is_const(1):
        ctx.pin_inputs(f"{ctx.describe()} multiplies two computed tensors (no constant weight)")
        return
    trans_a = int(attr(ctx.node, "transA", 0))
    trans_b = int(attr(ctx.node, "transB", 0))
    lay = ctx.layout(0)
    if lay is not None:
        k_axis = 0 if trans_a else 1
        if lay.axes != (k_axis,):
            ctx.table.pin(lay.atoms, f"{ctx.describe()} reads channels on its batch axis")
        else:
            ctx.slice(1, 1 if trans_b else 0, lay.atoms, "consumer")
    n = ctx.out_shape()[1]
    out = ctx.produce(n, weight_index=1, weight_axis=0 if trans_b else 1)
    if len(ctx.node.input) > 2 and ctx.node.input[2]:
        c_shape = ctx.in_shape(2)
        if ctx.is_const(2):
            if c_shape and c_shape[-1] == n and n > 1:
                ctx.slice(2, len(c_shape) - 1, out, "follower")
        elif c_shape and c_shape[-1] == n:
            ctx.table.pin(out, f"{ctx.describe()} adds a bias computed at run time")
    ctx.set_output(Layout((1,), out))


@rule("MatMul")
def matmul(ctx: RuleContext) -> None:
    """X @ W with W a constant matrix: W's rows follow X's last axis, its columns are filters."""
    if not ctx.is_const(1) or len(ctx.in_shape(1)) != 2:
        _activation_product(ctx)
        return
    lay = ctx.layout(0)
    rank = len(ctx.in_shape(0))
    last = rank - 1
    if lay is not None and last not in lay.axes:
        ctx.set_output(lay)  # channels ride along an axis the product does not touch
        return
    if lay is not None:
        if lay.axes != (last,):
            ctx.table.pin(
                lay.atoms, f"{ctx.describe()} contracts channels spread over several axes"
            )
        else:
            ctx.slice(1, 0, lay.atoms, "consumer")
    n = ctx.in_shape(1)[1]
    out = ctx.produce(n, weight_index=1, weight_axis=1)
    ctx.set_output(Layout((len(ctx.out_shape()) - 1,), out))


def _activation_product(ctx: RuleContext) -> None:
    """MatMul of two computed tensors (attention pooling in GC blocks: x[N,C,HW] @ a[N,HW,1]).

    Channels on A's rows (or B's columns) pass to the output when the product does not contract
    over them; anything that carries channels along the contracted axis is pinned.
    """
    a, b = ctx.layout(0), ctx.layout(1)
    rank_a, rank_b, rank_out = len(ctx.in_shape(0)), len(ctx.in_shape(1)), len(ctx.out_shape())
    if rank_a < 2 or rank_b < 2:
        ctx.pin_inputs(f"{ctx.describe()} multiplies vectors")
        return
    reason = f"{ctx.describe()} contracts two computed tensors over channels (e.g. attention)"
    out = None
    if a is not None:
        if rank_a - 1 in a.axes or len(a.axes) != 1 or a.axes[0] != rank_a - 2:
            ctx.table.pin(a.atoms, reason)
        else:
            out = Layout((rank_out - 2,), a.atoms)
    if b is not None:
        if rank_b - 2 in b.axes or len(b.axes) != 1 or b.axes[0] != rank_b - 1 or out is not None:
            ctx.table.pin(b.atoms, reason)
        else:
            out = Layout((rank_out - 1,), b.atoms)
    ctx.set_output(out)
