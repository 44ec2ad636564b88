"""Fine-tune bridge: conversion, exact write-back, training, agreement with ONNX Runtime."""

from __future__ import annotations

import dataclasses
import io
import logging
import warnings
from functools import cache

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_compat import make_model

from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.data.dataset import ArrayDataset
from onnx_netadapt.errors import FineTuneError

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from onnx_netadapt.finetune import (  # noqa: E402
    TrainSettings,
    check_agreement,
    fine_tune,
    to_torch,
    train,
    write_back,
)
from onnx_netadapt.finetune.agreement import run_onnx, run_torch  # noqa: E402
from onnx_netadapt.finetune.writeback import MAPPING_ATTR  # noqa: E402

# -- models and data ---------------------------------------------------------------------------


class MobileNetLike(nn.Module):
    """Conv-BN-ReLU, depthwise and pointwise convs, global pooling, Linear."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()

        def cbr(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> list:
            conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
            return [conv, nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(
            *cbr(1, 16),
            *cbr(16, 16, groups=16),
            *cbr(16, 32, k=1),
            *cbr(32, 32, stride=2, groups=32),
            *cbr(32, 32, k=1),
        )
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        x = self.features(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class ResidualNet(nn.Module):
    """A stem and one residual block (Add), mean pooling, Linear."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.block = nn.Sequential(
            nn.Conv2d(16, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
        )
        self.head = nn.Linear(16, classes)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.block(x))
        return self.head(x.mean(dim=(2, 3)))


NETS = {"mobilenet": MobileNetLike, "residual": ResidualNet}


@cache
def exported(net: str, exporter: str) -> bytes:
    """``net`` (seeded random weights) exported for input (1, 1, 8, 8), as bytes."""
    torch.manual_seed(0)
    module = NETS[net]().eval()
    x = torch.randn(1, 1, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.CRITICAL)
        try:
            if exporter == "dynamo":  # opset 18; its optimiser folds BatchNorm into Conv
                program = torch.onnx.export(module, (x,), dynamo=True, opset_version=18)
                return program.model_proto.SerializeToString()
            buffer = io.BytesIO()  # legacy exporter, BatchNorm kept as a node
            torch.onnx.export(
                module,
                (x,),
                buffer,
                dynamo=False,
                opset_version=13,
                training=torch.onnx.TrainingMode.PRESERVE,
                do_constant_folding=False,
            )
            return buffer.getvalue()
        finally:
            logging.disable(logging.NOTSET)


def loaded(net: str, exporter: str) -> onnx.ModelProto:
    return load_model(exported(net, exporter)).model


@cache
def digits() -> ArrayDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data.reshape(-1, 1, 8, 8) / 16.0).astype(np.float32)
    return ArrayDataset(x, bunch.target.astype(np.int64))


def small_digits(n: int = 512) -> ArrayDataset:
    data = digits()
    return ArrayDataset(data.x[:n], data.y[:n])


def initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def accuracy(model: onnx.ModelProto, data: ArrayDataset) -> float:
    logits = run_onnx(model, data.x)[0]
    return float(np.mean(logits.argmax(axis=1) == data.y))


FAST = TrainSettings(steps=150, batch_size=64, optimizer="adamw", lr=0.01, seed=3, threads=1)
MODELS = [(n, e) for n in NETS for e in ("dynamo", "legacy")]

# -- conversion and exact write-back -----------------------------------------------------------


@pytest.mark.parametrize(("net", "exporter"), MODELS)
def test_write_back_without_training_is_bit_exact(net, exporter):
    model = loaded(net, exporter)
    before = model.SerializeToString()
    module = to_torch(model)
    out = write_back(model, module)
    assert model.SerializeToString() == before  # input untouched
    assert out is not model
    assert [i.name for i in out.graph.initializer] == [i.name for i in model.graph.initializer]
    for a, b in zip(model.graph.initializer, out.graph.initializer, strict=True):
        assert (a.data_type, list(a.dims)) == (b.data_type, list(b.dims)), a.name
        assert np.array_equal(numpy_helper.to_array(a), numpy_helper.to_array(b)), a.name
    # every float initializer is mapped, and the batch-1 export runs on batches of any size
    floats = {i.name for i in model.graph.initializer if i.data_type == TensorProto.FLOAT}
    assert floats <= set(getattr(module, MAPPING_ATTR))
    assert check_agreement(out, module, digits().x[:8]) < 1e-4


def test_conv_with_asymmetric_pads_maps_inside_its_sequential():
    model = _conv_model()
    model.graph.node[0].attribute[0].ints[:] = [0, 0, 1, 1]  # onnx2torch: Sequential(pad, conv)
    model.graph.output[0].type.tensor_type.shape.dim[2].dim_value = 5
    model.graph.output[0].type.tensor_type.shape.dim[3].dim_value = 5
    model = load_model(model).model
    module = to_torch(model)
    assert getattr(module, MAPPING_ATTR)["w1"].path == "conv1.1.weight"
    out = write_back(model, module)
    assert initializers(out)["w1"].tobytes() == initializers(model)["w1"].tobytes()
    check_agreement(out, module, np.random.default_rng(0).random((3, 4, 8, 8), np.float32))


def test_gemm_becomes_a_transposed_linear():
    model = loaded("mobilenet", "legacy")
    module = to_torch(model)
    ref = getattr(module, MAPPING_ATTR)["fc.weight"]
    # ONNX Gemm B is (out, in) with transB=1 here: nn.Linear holds it as is
    assert ref.transform == "identity"
    assert tuple(module.get_parameter(ref.path).shape) == (10, 32)


# -- training ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("net", "exporter"), MODELS)
def test_training_changes_weights_and_learns(net, exporter):
    model = loaded(net, exporter)
    data = small_digits()
    result = fine_tune(model, data, FAST)
    assert result.stats.steps == FAST.steps
    assert result.stats.device == "cpu"
    assert result.max_abs_diff < 1e-3
    changed = [
        name
        for name, value in initializers(result.model).items()
        if not np.array_equal(value, initializers(model)[name])
    ]
    assert len(changed) >= 6
    assert result.stats.final_loss < result.stats.initial_loss
    assert accuracy(result.model, data) > accuracy(model, data) + 0.4
    onnx.checker.check_model(result.model)


def test_same_seed_gives_identical_weights():
    model = loaded("residual", "legacy")
    settings = TrainSettings(steps=12, batch_size=32, lr=0.05, seed=7, threads=1)
    first = fine_tune(model, small_digits(256), settings).model
    second = fine_tune(model, small_digits(256), settings).model
    assert first.SerializeToString() == second.SerializeToString()
    other = fine_tune(model, small_digits(256), dataclasses.replace(settings, seed=8))
    assert other.model.SerializeToString() != first.SerializeToString()


def test_batchnorm_running_stats_are_written_back():
    model = loaded("mobilenet", "legacy")
    module = to_torch(model)
    train(module, small_digits(256), TrainSettings(steps=5, batch_size=64, seed=0, threads=1))
    out = write_back(model, module)
    before, after = initializers(model), initializers(out)
    for stat in ("running_mean", "running_var"):
        name = f"features.1.{stat}"
        assert not np.array_equal(before[name], after[name])
        path = getattr(module, MAPPING_ATTR)[name].path
        assert np.array_equal(after[name], module.get_buffer(path).numpy())
    check_agreement(out, module, digits().x[:16])


def test_pruned_model_fine_tunes():
    loaded_model = load_model(exported("mobilenet", "dynamo"))
    pruned = prune(analyse(loaded_model), ratio=0.5).model
    before = pruned.SerializeToString()
    assert sum(numpy_helper.to_array(i).size for i in pruned.graph.initializer) < sum(
        numpy_helper.to_array(i).size for i in loaded_model.model.graph.initializer
    )
    result = fine_tune(pruned, small_digits(), FAST)
    assert pruned.SerializeToString() == before
    assert result.max_abs_diff < 1e-3
    assert accuracy(result.model, small_digits()) > accuracy(pruned, small_digits())
    for a, b in zip(pruned.graph.initializer, result.model.graph.initializer, strict=True):
        assert (a.name, list(a.dims), a.data_type) == (b.name, list(b.dims), b.data_type)


def test_distillation_without_targets():
    teacher = loaded("residual", "legacy")
    student = prune(analyse(load_model(teacher)), ratio=0.5).model
    data = ArrayDataset(small_digits(256).x)
    settings = TrainSettings(steps=15, batch_size=32, lr=0.02, seed=1, threads=1)
    result = fine_tune(student, data, settings, teacher=teacher)
    assert result.stats.steps == 15
    assert result.stats.final_loss < result.stats.initial_loss
    with pytest.raises(FineTuneError, match="no targets"):
        fine_tune(student, data, settings)


def test_distillation_mixed_with_targets_and_adamw():
    teacher = loaded("mobilenet", "legacy")
    settings = TrainSettings(steps=10, optimizer="adamw", lr=1e-3, distill=0.5, threads=1)
    result = fine_tune(teacher, small_digits(256), settings, teacher=teacher)
    assert result.stats.steps == 10 and np.isfinite(result.stats.final_loss)


def test_nothing_to_train_returns_the_same_weights():
    model = loaded("residual", "dynamo")
    for data, settings in [
        (small_digits(), TrainSettings(steps=0)),
        (ArrayDataset(np.zeros((0, 1, 8, 8), np.float32), np.zeros(0, np.int64)), FAST),
    ]:
        result = fine_tune(model, data, settings, check_batch=digits().x[:4])
        assert result.stats.steps == 0
        assert initializers(result.model).keys() == initializers(model).keys()
        for name, value in initializers(result.model).items():
            assert np.array_equal(value, initializers(model)[name])


def test_epochs_and_threads_are_honoured():
    model = loaded("residual", "dynamo")
    threads = torch.get_num_threads()
    settings = TrainSettings(epochs=0.5, batch_size=64, threads=1)
    stats = fine_tune(model, small_digits(256), settings).stats
    assert stats.steps == 2
    assert torch.get_num_threads() == threads


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_on_cuda():
    model = loaded("residual", "legacy")
    settings = TrainSettings(steps=20, optimizer="adamw", lr=0.01, device="cuda")
    result = fine_tune(model, small_digits(), settings)
    assert result.stats.device.startswith("cuda")
    assert result.max_abs_diff < 1e-3


def test_bad_settings_are_refused():
    with pytest.raises(FineTuneError, match="optimizer"):
        TrainSettings(optimizer="lbfgs")
    with pytest.raises(FineTuneError, match="distill"):
        TrainSettings(distill=1.5)


# -- errors ----------------------------------------------------------------------------------------


def _conv_model(custom: bool = False, shared: bool = False) -> onnx.ModelProto:
    """Two convs on (1, 4, 8, 8); ``shared``: one weight for both; ``custom``: a custom op."""
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((4, 4, 3, 3)).astype(np.float32) for _ in range(2)]
    inits = [numpy_helper.from_array(weights[0], "w1")]
    if not shared:
        inits.append(numpy_helper.from_array(weights[1], "w2"))
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "w1" if shared else "w2"], ["y"], name="conv2"),
    ]
    opsets = [helper.make_opsetid("", 18)]
    if custom:
        nodes.insert(1, helper.make_node("Swizzle", ["a"], ["b"], name="swz", domain="my.ops"))
        nodes[2].input[0] = "b"
        opsets.append(helper.make_opsetid("my.ops", 1))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
        inits,
    )
    return make_model(graph, opset_imports=opsets)


def test_unsupported_op_is_named():
    with pytest.raises(FineTuneError, match=r"'swz' \(my\.ops:Swizzle"):
        to_torch(_conv_model(custom=True))


def test_failing_conversion_names_the_node():
    model = _conv_model()
    model.graph.node.insert(0, helper.make_node("Identity", ["w2"], ["w2_copy"], name="copy"))
    model.graph.node[2].input[1] = "w2_copy"  # a weight computed by a node: not an initializer
    with pytest.raises(FineTuneError, match="at node 'conv2'"):
        to_torch(model)


def test_converters_register_once():
    import importlib

    from onnx_netadapt.finetune import converters

    assert converters.register() == []
    importlib.reload(converters)  # a second import registers nothing twice
    assert converters.register() == []


def test_shared_weight_cannot_be_written_back():
    model = _conv_model(shared=True)
    with pytest.raises(FineTuneError, match="shared"):
        to_torch(model)
    to_torch(load_model(model).model)  # the loader unshares it


def test_disagreement_is_reported():
    model = loaded("residual", "legacy")
    module = to_torch(model)
    with torch.no_grad():
        module.get_parameter(getattr(module, MAPPING_ATTR)["head.bias"].path).add_(1.0)
    with pytest.raises(FineTuneError, match="disagree"):
        check_agreement(model, module, digits().x[:4])


# -- weights fed as graph inputs (MatMul, Add, Mul, PRelu, Gemm transB=0) ---------------------


def _fed_weights_model() -> onnx.ModelProto:
    rng = np.random.default_rng(1)

    def const(name: str, shape: tuple[int, ...]) -> TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.3, name)

    inits = [
        const("mm_w", (64, 32)),
        const("mm_b", (32,)),
        const("scale", (32,)),
        const("slope", (32,)),
        const("gemm_w", (32, 10)),
        const("gemm_c", (10,)),
        numpy_helper.from_array(np.array([1, 64], np.int64), "shape"),
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
    ]
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["flat"], name="flatten"),
        helper.make_node("MatMul", ["flat", "mm_w"], ["mm"], name="matmul"),
        helper.make_node("Add", ["mm", "mm_b"], ["biased"], name="bias_add"),
        helper.make_node("Mul", ["biased", "scale"], ["scaled"], name="scale_mul"),
        helper.make_node("Mul", ["scaled", "half"], ["halved"], name="half_mul"),
        helper.make_node("PRelu", ["halved", "slope"], ["act"], name="prelu"),
        helper.make_node("Gemm", ["act", "gemm_w", "gemm_c"], ["y"], name="gemm"),
    ]
    graph = helper.make_graph(
        nodes,
        "fed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        inits,
    )
    model = make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return load_model(model).model


def test_weights_fed_as_inputs_train_and_write_back():
    model = _fed_weights_model()
    module = to_torch(model)
    mapping = getattr(module, MAPPING_ATTR)
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    for name in ("mm_w", "mm_b", "scale", "slope", "gemm_w", "gemm_c"):
        assert mapping[name].path in trainable, name
    assert "half" not in mapping or mapping["half"].path not in trainable  # a scalar constant
    assert mapping["gemm_w"].transform == "transpose"  # Gemm transB=0 -> Linear weight = B.T
    assert np.array_equal(
        initializers(write_back(model, module))["gemm_w"], initializers(model)["gemm_w"]
    )
    result = fine_tune(model, small_digits(), FAST)
    after = initializers(result.model)
    for name in ("mm_w", "mm_b", "scale", "slope", "gemm_w", "gemm_c"):
        assert not np.array_equal(after[name], initializers(model)[name]), name
    assert np.array_equal(after["half"], initializers(model)["half"])
    assert accuracy(result.model, small_digits()) > accuracy(model, small_digits()) + 0.2


def test_constants_pinning_a_static_batch_follow_the_batch():
    """Resize sizes and Reshape shapes of a batch-1 model hold the 1: torch runs any batch."""
    rng = np.random.default_rng(2)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(_i64(1, 4, 12, 12), "sizes"),
        numpy_helper.from_array(_i64(1, -1), "flat_shape"),
        numpy_helper.from_array(rng.standard_normal((10, 576)).astype(np.float32), "fc_w"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Resize", ["c", "", "", "sizes"], ["r"], name="up", mode="linear"),
        helper.make_node("Reshape", ["r", "flat_shape"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fc_w"], ["y"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "pinned",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        inits,
    )
    model = load_model(make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    x = digits().x[:6]
    expected = run_onnx(model.model, x)[0]  # one example at a time
    got = run_torch(to_torch(model.model), x)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    result = fine_tune(model.model, small_digits(256), FAST)
    assert result.max_abs_diff < 1e-3


# -- the converters onnx2torch lacks, against ONNX Runtime -------------------------------------


def _single_op_model(
    op: str,
    inputs: list,
    attrs: dict,
    x_shape: tuple[int, ...],
    outputs: int = 1,
    opset: int = 18,
) -> onnx.ModelProto:
    """One node: input ``x`` then initializers given as (name, array) or None (empty input)."""
    names, inits = ["x"], []
    for item in inputs:
        if item is None:
            names.append("")
        else:
            names.append(item[0])
            inits.append(numpy_helper.from_array(item[1], item[0]))
    outs = [f"y{i}" for i in range(outputs)]
    node = helper.make_node(op, names, outs, name="the_op", **attrs)
    graph = helper.make_graph(
        [node],
        "one",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
        inits,
    )
    return make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _f32(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


SHAPE = (2, 3, 6, 8)
CONVERTER_CASES = {
    "ReduceMean-18": ("ReduceMean", [("axes", _i64(2, 3))], {"keepdims": 1}, SHAPE, 1, 18),
    "ReduceMax-18-drop": ("ReduceMax", [("axes", _i64(-1, 1))], {"keepdims": 0}, SHAPE, 1, 18),
    "ReduceMin-20": ("ReduceMin", [("axes", _i64(1))], {}, SHAPE, 1, 20),
    "ReduceProd-18": ("ReduceProd", [("axes", _i64(-2, -1))], {"keepdims": 0}, SHAPE, 1, 18),
    "ReduceL2-18-all": ("ReduceL2", [], {"keepdims": 0}, SHAPE, 1, 18),
    "ReduceLogSumExp-18": ("ReduceLogSumExp", [("axes", _i64(1))], {}, SHAPE, 1, 18),
    "ReduceSumSquare-noop": (
        "ReduceSumSquare",
        [("axes", _i64())],
        {"noop_with_empty_axes": 1},
        SHAPE,
        1,
        18,
    ),
    "Split-18-uneven": ("Split", [], {"axis": 3, "num_outputs": 3}, SHAPE, 3, 18),
    "Split-18-sizes": ("Split", [("split", _i64(1, 2))], {"axis": 1}, SHAPE, 2, 18),
    "Pad-18-axes": (
        "Pad",
        [("pads", _i64(1, 2, 0, 3)), ("value", _f32(0.5)), ("axes", _i64(2, 3))],
        {},
        SHAPE,
        1,
        18,
    ),
    "Pad-18-reflect": (
        "Pad",
        [("pads", _i64(0, 0, 1, 2, 0, 0, 2, 1))],
        {"mode": "reflect"},
        SHAPE,
        1,
        18,
    ),
    "Pad-18-edge": (
        "Pad",
        [("pads", _i64(0, 0, 1, 0, 0, 0, 0, 3))],
        {"mode": "edge"},
        SHAPE,
        1,
        18,
    ),
    "Pad-19-wrap": (
        "Pad",
        [("pads", _i64(0, 0, 1, 2, 0, 0, 2, 1))],
        {"mode": "wrap"},
        SHAPE,
        1,
        19,
    ),
    "Resize-18-nearest-asym": (
        "Resize",
        [None, ("scales", _f32(1, 1, 2, 2))],
        {
            "mode": "nearest",
            "coordinate_transformation_mode": "asymmetric",
            "nearest_mode": "floor",
        },
        SHAPE,
        1,
        18,
    ),
    "Resize-18-nearest-half-pixel": (
        "Resize",
        [None, None, ("sizes", _i64(2, 3, 9, 5))],
        {"mode": "nearest"},
        SHAPE,
        1,
        18,
    ),
    "Resize-18-linear-axes": (
        "Resize",
        [None, ("scales", _f32(2.0, 1.5))],
        {"mode": "linear", "axes": [2, 3]},
        SHAPE,
        1,
        18,
    ),
    "Resize-19-linear-align": (
        "Resize",
        [None, None, ("sizes", _i64(2, 3, 11, 13))],
        {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
        SHAPE,
        1,
        19,
    ),
    "Resize-13-nearest-half-pixel": (
        "Resize",
        [("roi", _f32()), ("scales", _f32(1, 1, 1.5, 0.5))],
        {"mode": "nearest", "nearest_mode": "round_prefer_ceil"},
        SHAPE,
        1,
        13,
    ),
    "Resize-11-cubic": (
        "Resize",
        [("roi", _f32()), ("scales", _f32()), ("sizes", _i64(2, 3, 9, 12))],
        {"mode": "cubic"},
        SHAPE,
        1,
        11,
    ),
    "Reshape-allowzero": ("Reshape", [("shape", _i64(2, -1, 8))], {"allowzero": 1}, SHAPE, 1, 18),
    "Reshape-21": ("Reshape", [("shape", _i64(0, 18, -1))], {}, SHAPE, 1, 21),
    "Gelu-20": ("Gelu", [], {"approximate": "tanh"}, SHAPE, 1, 20),
    "Mish-18": ("Mish", [], {}, SHAPE, 1, 18),
    "CastLike": ("CastLike", [("like", _f32(1.0))], {}, SHAPE, 1, 18),
    "Flatten-21": ("Flatten", [], {"axis": 2}, SHAPE, 1, 21),
    "AveragePool-19": (
        "AveragePool",
        [],
        {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1},
        SHAPE,
        1,
        19,
    ),
}


def _assert_torch_matches_onnxruntime(model: onnx.ModelProto, shape: tuple[int, ...]) -> None:
    """The converted model's outputs equal ONNX Runtime's on one random input ``x``."""
    import onnxruntime as ort

    x = np.random.default_rng(0).uniform(0.1, 1.0, shape).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})
    got = run_torch(to_torch(model), x)
    assert len(got) == len(expected)
    for e, g in zip(expected, got, strict=True):
        assert e.shape == g.shape
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", sorted(CONVERTER_CASES))
def test_added_converter_matches_onnxruntime(case):
    op, inputs, attrs, shape, outputs, opset = CONVERTER_CASES[case]
    _assert_torch_matches_onnxruntime(
        _single_op_model(op, inputs, attrs, shape, outputs, opset), shape
    )


RUNTIME_OPERAND_CASES = {
    "Pad-18": ("Pad", ["pads"], _i64(0, 0, 1, 2, 0, 0, 2, 1), {}, 1),
    "Split-18": ("Split", ["split"], _i64(3, 5), {"axis": 3}, 2),
    "ReduceMean-18": ("ReduceMean", ["axes"], _i64(2, 3), {"keepdims": 1}, 1),
    "Resize-18": ("Resize", ["", "scales"], _f32(1, 1, 2, 1.5), {"mode": "nearest"}, 1),
}


@pytest.mark.parametrize("case", sorted(RUNTIME_OPERAND_CASES))
def test_added_converter_with_an_operand_computed_at_run_time(case):
    """The operand comes out of an Identity node, not an initializer: the converted module is
    fed it at run time (the other branch of ``static_or_runtime``)."""
    op, names, value, attrs, outputs = RUNTIME_OPERAND_CASES[case]
    outs = [f"y{i}" for i in range(outputs)]
    graph = helper.make_graph(
        [
            helper.make_node("Identity", ["const"], [names[-1]], name="computed"),
            helper.make_node(op, ["x", *names], outs, name="the_op", **attrs),
        ],
        "runtime_operand",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
        [numpy_helper.from_array(value, "const")],
    )
    model = make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    _assert_torch_matches_onnxruntime(model, SHAPE)
