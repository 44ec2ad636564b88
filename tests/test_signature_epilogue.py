"""Signatures describe the kernel a runtime runs: the nodes it folds into a filter layer (batch
norm, constant per-channel Mul/Add, layout Transposes) and the activation fused after them, and
nothing it cannot fold."""

from __future__ import annotations

import pytest
from models import GraphBuilder

from onnx_netadapt import load_model
from onnx_netadapt.measure.signature import model_signatures


def _signature(build) -> tuple[bool, str | None]:
    g = GraphBuilder("epilogue")
    x = g.input("x", [1, 8, 8, 8])
    y = build(g, g.conv(x, 8, 8, bias=False, hint="layer"))
    g.output(y, [1, 8, 8, 8])
    sig = model_signatures(load_model(g.build()))["layer_0"]
    return sig.bias, sig.activation


def _transposed(g: GraphBuilder, y: str) -> str:
    """NCHW -> NHWC, a per-channel Mul and Add on the last axis, Relu, back to NCHW."""
    t = g.op("Transpose", [y], perm=[0, 2, 3, 1])
    t = g.op("Add", [g.op("Mul", [t, g.param([8], "s", positive=True)]), g.param([8], "b")])
    return g.op("Transpose", [g.relu(t)], perm=[0, 3, 1, 2])


CASES = {
    "alone": (lambda g, y: y, (False, None)),
    "relu": (lambda g, y: g.relu(y), (False, "Relu")),
    "bn, relu": (lambda g, y: g.relu(g.bn(y, 8)), (True, "Relu")),
    "bn only": (lambda g, y: g.bn(y, 8), (True, None)),
    "scale, shift, relu": (
        lambda g, y: g.relu(g.add_param(g.op("Mul", [y, g.param([8, 1, 1], "s")]), [8, 1, 1])),
        (True, "Relu"),
    ),
    "NHWC scale, shift, relu": (_transposed, (True, "Relu")),
    # not folded: a Mul by another tensor (squeeze-excite), a residual Add, a second reader
    "gated": (lambda g, y: g.relu(g.op("Mul", [y, g.op("Sigmoid", [y])])), (False, None)),
    "residual": (lambda g, y: g.relu(g.op("Add", [y, y])), (False, None)),
    "read twice": (lambda g, y: g.op("Add", [g.relu(y), g.op("Neg", [y])]), (False, None)),
    # a constant that is not per-channel (a whole map) is not a bias
    "map added": (lambda g, y: g.relu(g.add_param(y, [8, 8, 8])), (False, None)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_signature_holds_what_the_runtime_folds(case):
    build, expected = CASES[case]
    assert _signature(build) == expected


def test_a_matmul_with_a_constant_add_is_a_gemm_with_bias():
    g = GraphBuilder("dense")
    x = g.input("x", [1, 16])
    y = g.relu(g.add_param(g.matmul(x, 16, 4), [4]))
    g.output(y, [1, 4])
    (sig,) = model_signatures(load_model(g.build())).values()
    assert (sig.op, sig.bias, sig.activation) == ("Gemm", True, "Relu")
