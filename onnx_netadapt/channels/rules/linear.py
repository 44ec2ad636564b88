"""Gemm and MatMul with a constant weight: consumers of input features, producers of outputs."""

from __future__ import annotations

from onnx_netadapt.channels.context import RuleContext
from onnx_netadapt.channels.layout import Layout
from onnx_netadapt.channels.rules import rule
from onnx_netadapt.channels.rules.attention import activation_product
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
        activation_product(ctx)
        return
    lay = ctx.layout(0)
    rank = len(ctx.in_shape(0))
    last = rank - 1
    if lay is not None and last not in lay.axes:
        ctx.set_output(lay)  # channels ride along an axis the product does not touch
        return
    if lay is not None and lay.axes != (last,):
        # per-head product with a shared matrix (BotNet's relative logits q @ W_rel): every
        # output row depends on one head's channels, which the output carries instead
        activation_product(ctx)
        return
    if lay is not None:
        ctx.slice(1, 0, lay.atoms, "consumer")
    n = ctx.in_shape(1)[1]
    out = ctx.produce(n, weight_index=1, weight_axis=1)
    ctx.set_output(Layout((len(ctx.out_shape()) - 1,), out))
