"""Every tiny model in ``tests/models.py`` is valid ONNX and runs in onnxruntime as declared."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from models import CASES, TinyCase, register
from onnx import helper

REQUIRED = {
    "conv_bn_relu_chain",
    "conv_activations_a",
    "conv_activations_gelu",
    "binary_ops_per_channel_const",
    "pooling",
    "reduce_spatial",
    "reduce_spatial_opset18",
    "resize_pad",
    "residual_chain",
    "residual_projection",
    "concat_residual_streams",
    "split_channels",
    "split_channels_opset18",
    "slice_channels",
    "depthwise_after_pointwise",
    "depthwise_multiplier",
    "grouped_conv",
    "squeeze_excite",
    "flatten_into_gemm",
    "reshape_into_matmul",
    "channel_shuffle",
    "nhwc_transposes",
    "constant_node_weights",
    "shared_initializers",
    "conv_transpose",
    "instance_norm",
    "matmul_const_weight",
    "squeeze_unsqueeze",
    "layernorm_channels",
    "layernorm_decomposed",
    "softmax_channels",
    "reduce_over_channels",
    "unknown_op",
    "quantized",
    "graph_output_reach",
    "opset_11",
    "opset_21",
}

EXPECTED_OPSET = {
    "opset_11": 11,
    "opset_21": 21,
    "conv_activations_gelu": 20,
    "reduce_spatial_opset18": 18,
    "split_channels_opset18": 18,
    "split_channels_opset11": 11,
    "squeeze_unsqueeze_opset11": 11,
    "paddle_declared_dims": 11,
    "ws_scaled_std_conv_bn_opset13": 13,
}

# Cases that declare dims the PaddlePaddle way (-1 or 0 for dynamic): strict shape inference
# rejects them next to a static input, as it does for the exported model with --input-shape.
NONPOSITIVE_DIMS = {"paddle_declared_dims"}

# Cases built from the same weights that must compute the same function (other opset, constant
# style or op spelling); a handy oracle for pruning tests too.
EQUIVALENT = [
    ("conv_bn_relu_chain", "constant_node_weights"),
    ("conv_bn_relu_chain", "opset_11"),
    ("conv_bn_relu_chain", "opset_21"),
    ("reduce_spatial", "reduce_spatial_opset18"),
    ("split_channels", "split_channels_opset11"),
    ("squeeze_unsqueeze", "squeeze_unsqueeze_opset11"),
    ("layernorm_channels", "layernorm_decomposed"),
]

ALL_CASES = pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))


def _static_shape(value: onnx.ValueInfoProto) -> list[int]:
    dims = value.type.tensor_type.shape.dim
    assert all(d.HasField("dim_value") for d in dims), f"{value.name} has a non-static shape"
    return [d.dim_value for d in dims]


def _default_opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def test_required_cases_registered() -> None:
    missing = sorted(REQUIRED - set(CASES))
    assert not missing, missing


def test_register_rejects_duplicate_names() -> None:
    before = dict(CASES)
    with pytest.raises(ValueError, match="duplicate"):
        register("conv_bn_relu_chain", expect_prunable=None, note="dup")(lambda: onnx.ModelProto())
    assert before == CASES


@ALL_CASES
def test_case_is_valid_onnx(case: TinyCase) -> None:
    model = case.build()
    onnx.checker.check_model(model, full_check=case.name not in NONPOSITIVE_DIMS)
    assert case.note and "\n" not in case.note
    assert case.expect_prunable is None or case.expect_prunable >= 0
    names = [n.name for n in model.graph.node]
    assert all(names), "every node needs a name"
    assert len(names) == len(set(names)), "node names must be unique"
    for value in [*model.graph.input, *model.graph.output]:
        if case.name not in NONPOSITIVE_DIMS or value in model.graph.input:
            _static_shape(value)
    assert _default_opset(model) == EXPECTED_OPSET.get(case.name, 17)
    assert case.build().SerializeToString() == model.SerializeToString(), "not deterministic"


def _run(model: onnx.ModelProto) -> list[np.ndarray]:
    """Run ``model`` on CPU with one thread and seeded standard-normal inputs."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(0)
    feeds = {}
    for value in model.graph.input:
        dtype = helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
        feeds[value.name] = rng.standard_normal(_static_shape(value)).astype(dtype)
    return session.run(None, feeds)


@ALL_CASES
def test_case_runs_in_ort(case: TinyCase) -> None:
    if not case.runs_in_ort:
        pytest.skip("custom-domain op without an onnxruntime kernel")
    model = case.build()
    results = _run(model)
    assert len(results) == len(model.graph.output)
    for value, result in zip(model.graph.output, results, strict=True):
        if case.name not in NONPOSITIVE_DIMS:
            assert list(result.shape) == _static_shape(value), value.name
        assert np.isfinite(result).all(), value.name


@pytest.mark.parametrize(("left", "right"), EQUIVALENT, ids=[f"{a}={b}" for a, b in EQUIVALENT])
def test_equivalent_cases_agree(left: str, right: str) -> None:
    for a, b in zip(_run(CASES[left].build()), _run(CASES[right].build()), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
