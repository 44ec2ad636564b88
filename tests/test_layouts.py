"""benchmarks/layouts.py: the NHWC (TensorFlow-converted) and Paddle forms of an NCHW export
compute what it computes in ONNX Runtime, and channel analysis prunes them as it prunes it."""

from __future__ import annotations

import io
import itertools
import warnings

import numpy as np
import onnx
import pytest

from benchmarks.layouts import in_layout, input_shape
from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.verify import run_model

torch = pytest.importorskip("torch")
nn = torch.nn

SHAPE = (1, 3, 16, 16)


class TinyNet(nn.Module):
    """Stem with BN, max pooling, a residual pair, a depthwise conv with ReLU6, mean, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU())
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.res = nn.Sequential(nn.Conv2d(16, 24, 1), nn.ReLU(), nn.Conv2d(24, 16, 3, 1, 1))
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, 1, 1, groups=16), nn.ReLU6())
        self.pw = nn.Conv2d(16, 32, 1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.pool(self.stem(x))
        x = torch.relu(x + self.res(x))
        return self.fc(self.pw(self.dw(x)).mean((2, 3)))


@pytest.fixture(scope="module")
def exported() -> onnx.ModelProto:
    torch.manual_seed(0)
    net = TinyNet().eval()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics to fold
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            torch.randn(*SHAPE),
            buffer,
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["logits"],
        )
    return onnx.load_from_string(buffer.getvalue())


def _feed(x: np.ndarray, layout: str) -> np.ndarray:
    return x.transpose(0, 2, 3, 1).copy() if layout.startswith("nhwc") else x


@pytest.mark.parametrize("layout", ["nhwc", "nhwc_muladd", "paddle"])
def test_rewritten_equals_original_and_prunes_alike(exported, layout) -> None:
    rewritten = in_layout(exported, layout)
    ops = {n.op_type for n in rewritten.graph.node}
    if layout.startswith("nhwc"):
        convs = [n for n in rewritten.graph.node if n.op_type == "Conv"]
        producer = {o: n for n in rewritten.graph.node for o in n.output}
        assert all(producer[c.input[0]].op_type == "Transpose" for c in convs)
        assert rewritten.graph.input[0].type.tensor_type.shape.dim[3].dim_value == 3
        assert ("Mul" in ops) == (layout == "nhwc_muladd")
    else:
        assert {"Constant", "BatchNormalization"} <= ops and not rewritten.graph.initializer
        assert rewritten.graph.input[0].type.tensor_type.shape.dim[0].dim_value == -1
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    (want,) = run_model(exported, {"input": x})
    shapes = input_shape(rewritten, SHAPE, layout)
    loaded = load_model(rewritten, shapes)
    (got,) = run_model(loaded.model, {"input": _feed(x, layout)})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)

    reference = analyse(load_model(exported))
    analysis = analyse(loaded)
    assert sum(g.prunable for g in analysis.groups) == sum(g.prunable for g in reference.groups)
    assert sum(g.prunable for g in analysis.groups) >= 3
    pruned = prune(analysis, ratio=0.5).model
    (out,) = run_model(pruned, {"input": _feed(x, layout)})
    assert out.shape == want.shape


def test_loop_chain_prunes_one_group_a_quarter_per_step(exported) -> None:
    from benchmarks.loop_estimates import chain

    model = load_model(in_layout(exported, "nhwc")).model
    networks = chain(model, steps=3, seed=0)
    assert len(networks) == 4 and networks[0] is model
    for before, after in itertools.pairwise(networks):
        a = {i.name: tuple(i.dims) for i in before.graph.initializer}
        b = {i.name: tuple(i.dims) for i in after.graph.initializer}
        assert [n.name for n in before.graph.node] == [n.name for n in after.graph.node]
        changed = {k for k in a if a[k] != b[k]}
        assert changed  # one group: its producers' outputs and its consumers' inputs
        smaller = [b[k][0] / a[k][0] for k in changed if b[k][0] < a[k][0] and len(a[k]) == 4]
        assert smaller and all(0.5 <= r < 1 for r in smaller)


def test_loop_estimates_replays_a_run_with_the_steady_ground_truth(exported, tmp_path) -> None:
    """``replay`` (``--truth p10 --alternate``): one row per step, the estimate of the next
    network from a calibration on the one before, against its measurement by turns."""
    from benchmarks.loop_estimates import chain, replay
    from onnx_netadapt.graph.save import save_json
    from onnx_netadapt.measure.registry import make_runner
    from onnx_netadapt.measure.table import LatencyTable

    networks = chain(load_model(in_layout(exported, "nhwc")).model, steps=2, seed=0)
    (tmp_path / "iterations").mkdir()
    history = []
    for step, network in enumerate(networks):
        onnx.save(network, tmp_path / f"iterations/net_{step:03d}.onnx")
        history.append({"iteration": step, "network": f"iterations/net_{step:03d}.onnx"})
    save_json({"config": {"input_shapes": {}}, "history": history}, tmp_path / "history.json")
    with make_runner("ort", threads=1) as runner:
        table = LatencyTable(runner.fingerprint(), tmp_path / "table.json")
        rows = replay(tmp_path, runner, table, ("profile",), truth="p10", alternate=True)
    assert [r["step"] for r in rows] == [1, 2]
    for row, before in zip(rows, [None, *rows], strict=False):
        if before is not None:  # each step starts from the network measured the step before
            assert row["before_ms"] == before["measured_ms"]
        assert row["measured_ms"] > 0
        assert 0.5 < row["estimates"]["profile"] / row["measured_ms"] < 2.0


@pytest.mark.parametrize("layout", ["nhwc", "nhwc_muladd", "paddle"])
def test_every_form_has_the_signatures_of_the_kernels_onnx_runtime_runs(exported, layout) -> None:
    """A batch norm (Paddle), a per-channel Mul/Add (TensorFlow) and layout Transposes between a
    conv and its activation are folded by the runtime: the signature holds the fused kernel
    (a bias, the activation), as it does for the NCHW export whose batch norm is folded."""
    from onnx_netadapt.measure.signature import model_signatures

    def kernels(model: onnx.ModelProto, form: str) -> list:
        loaded = load_model(model, input_shape(model, SHAPE, form))
        sigs = model_signatures(loaded).values()
        return sorted((s.op, s.out_channels, s.kernel, s.bias, s.activation or "") for s in sigs)

    assert kernels(in_layout(exported, layout), layout) == kernels(exported, "nchw")
    assert ("Conv", 16, (3, 3), True, "Relu6") in kernels(exported, "nchw")  # dw + ReLU6
