"""The CLI through click's test runner, and bad inputs: clear errors, exit codes, no output."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from models import CASES
from onnx import TensorProto, helper, numpy_helper
from onnx_compat import make_model

from onnx_netadapt import (
    ModelLoadError,
    PruneError,
    UnsupportedModelError,
    analyse,
    load_model,
    prune,
)
from onnx_netadapt.cli import main
from onnx_netadapt.verify import check_against_masked


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.onnx"
    onnx.save(CASES["residual_chain"].build(), str(path))
    return path


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_inspect_lists_groups_and_summary(model_file):
    result = run("inspect", model_file)
    assert result.exit_code == 0, result.output
    assert "prunable" in result.output and "summary:" in result.output
    assert "reaches graph output" in result.output


def test_inspect_json_is_machine_readable(model_file):
    result = run("inspect", model_file, "--json")
    data = json.loads(result.output)
    assert data["summary"]["prunable_groups"] == CASES["residual_chain"].expect_prunable
    assert {"id", "status", "producers", "consumers", "reasons"} <= set(data["groups"][0])


def test_prune_ratio_writes_model_and_report(model_file, tmp_path):
    out, report = tmp_path / "out.onnx", tmp_path / "report.json"
    original = model_file.read_bytes()
    result = run("prune", model_file, "-o", out, "--ratio", "0.5", "--report", report, "--verify")
    assert result.exit_code == 0, result.output
    assert model_file.read_bytes() == original
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    data = json.loads(report.read_text())
    assert data["oracle"]["ok"] is True
    assert data["params_after"] < data["params_before"]
    group = data["groups"][0]
    assert group["channels_after"] < group["channels_before"]
    for entry in group["slices"]:
        assert set(entry) == {"tensor", "axis", "kept", "role"}
        assert entry["role"] in {"producer", "consumer", "follower"}


def test_prune_keep_count(model_file, tmp_path):
    analysis = analyse(load_model(model_file))
    gid = next(g.id for g in analysis.groups if g.prunable)
    out = tmp_path / "out.onnx"
    result = run("prune", model_file, "-o", out, "--keep", f"{gid}=3")
    assert result.exit_code == 0, result.output
    pruned = analyse(load_model(out))
    assert any(g.channels == 3 for g in pruned.groups)


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--ratio", "0"], 5, "outside (0, 1]"),
        (["--ratio", "1.5"], 5, "outside (0, 1]"),
        (["--keep", "999=4"], 5, "no channel group 999"),
        (["--keep", "abc"], 5, "GROUP=N"),
        ([], 5, "exactly one of"),
    ],
)
def test_bad_prune_requests(model_file, tmp_path, args, code, needle):
    out = tmp_path / "out.onnx"
    result = CliRunner().invoke(main, ["prune", str(model_file), "-o", str(out), *args])
    assert result.exit_code == code, result.output
    assert needle in result.output
    assert not out.exists()


def test_unprunable_group_is_refused_with_its_reason(model_file, tmp_path):
    analysis = analyse(load_model(model_file))
    gid = next(g.id for g in analysis.groups if not g.prunable)
    out = tmp_path / "out.onnx"
    result = CliRunner().invoke(
        main, ["prune", str(model_file), "-o", str(out), "--keep", f"{gid}=1"]
    )
    assert result.exit_code == 5
    assert "reaches graph output" in result.output
    assert not out.exists()


def test_output_over_input_is_refused(model_file):
    before = model_file.read_bytes()
    result = CliRunner().invoke(
        main, ["prune", str(model_file), "-o", str(model_file), "--ratio", "0.5"]
    )
    assert result.exit_code == 5
    assert model_file.read_bytes() == before


def test_truncated_file(model_file, tmp_path):
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match=r"truncated|not a readable"):
        load_model(bad)
    result = CliRunner().invoke(main, ["inspect", str(bad)])
    assert result.exit_code == 3 and "error:" in result.output


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is not a model\n" * 10)
    result = CliRunner().invoke(
        main, ["prune", str(bad), "-o", str(tmp_path / "o.onnx"), "--ratio", "0.5"]
    )
    assert result.exit_code == 3
    assert not (tmp_path / "o.onnx").exists()


def test_missing_file(tmp_path):
    result = CliRunner().invoke(main, ["inspect", str(tmp_path / "nope.onnx")])
    assert result.exit_code == 3 and "not found" in result.output


@pytest.mark.parametrize("opset", [9, 22])
def test_opset_out_of_range(opset):
    model = CASES["conv_bn_relu_chain"].build()
    model.opset_import[0].version = opset
    with pytest.raises((UnsupportedModelError, ModelLoadError)):
        load_model(model)


def test_opset_out_of_range_message(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    model = make_model(
        helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
        opset_imports=[helper.make_opsetid("", 9)],
    )
    path = tmp_path / "old.onnx"
    onnx.save(model, str(path))
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 4
    assert "opset 9" in result.output and "11 to 21" in result.output


def _dynamic_batch_model() -> onnx.ModelProto:
    model = CASES["conv_bn_relu_chain"].build()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    return model


def test_dynamic_shape_needs_input_shape(tmp_path):
    path = tmp_path / "dyn.onnx"
    onnx.save(_dynamic_batch_model(), str(path))
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 4
    name = _dynamic_batch_model().graph.input[0].name
    assert f"--input-shape {name}:" in result.output
    dims = ",".join(
        str(d.dim_value or 1)
        for d in _dynamic_batch_model().graph.input[0].type.tensor_type.shape.dim
    )
    ok = CliRunner().invoke(main, ["inspect", str(path), "--input-shape", f"{name}:{dims}"])
    assert ok.exit_code == 0, ok.output


def test_unknown_op_is_reported_not_crashing():
    analysis = analyse(load_model(CASES["unknown_op"].build()))
    assert any("no channel rule" in r for r in analysis.unsupported.values())
    blocked = [g for g in analysis.groups if not g.prunable]
    assert any("Mystery" in " ".join(g.reasons) for g in blocked)


def test_quantized_graph_is_reported():
    analysis = analyse(load_model(CASES["quantized"].build()))
    assert any("quantized" in r for r in analysis.unsupported.values())


def test_keep_indices_out_of_range_and_empty():
    analysis = analyse(load_model(CASES["residual_chain"].build()))
    group = next(g for g in analysis.groups if g.prunable)
    with pytest.raises(PruneError, match="keep indices"):
        prune(analysis, {group.id: [group.units]})
    with pytest.raises(PruneError, match="keeping no channel"):
        prune(analysis, {group.id: []})


def test_approximate_group_needs_permission():
    for name in ("layernorm_channels", "layernorm_decomposed"):
        analysis = analyse(load_model(CASES[name].build()))
        approx = [g for g in analysis.groups if g.status == "approximate"]
        assert approx, name
        with pytest.raises(PruneError, match="approximate"):
            prune(analysis, {approx[0].id: 4})
        result = prune(analysis, {approx[0].id: 4}, allow_approximate=True)
        onnx.checker.check_model(result.model, full_check=True)
        assert check_against_masked(analysis, result).max_abs_diff < np.inf  # it runs


def test_gather_with_constant_permutation_on_channels():
    """Dynamo writes as_strided as Reshape + Gather(indices): channels follow the permutation."""
    rng = np.random.default_rng(0)
    perm = rng.permutation(8).reshape(1, 8, 1, 1).astype(np.int64)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(np.array([8], dtype=np.int64), "flat"),
        numpy_helper.from_array(perm, "perm"),
        numpy_helper.from_array(rng.standard_normal((4, 8, 1, 1)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1"),
        helper.make_node("GlobalAveragePool", ["c1"], ["p"], name="pool"),
        helper.make_node("Reshape", ["p", "flat"], ["v"], name="reshape"),
        helper.make_node("Gather", ["v", "perm"], ["g"], name="gather", axis=0),
        helper.make_node("Conv", ["g", "w2"], ["y"], name="conv2"),
    ]
    graph = helper.make_graph(
        nodes,
        "gather",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 1, 1])],
        inits,
    )
    model = make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    analysis = analyse(load_model(model))
    group = next(g for g in analysis.groups if g.producers[0].node == "conv1")
    assert group.prunable
    result = prune(analysis, {group.id: [0, 2, 3, 7]})
    assert check_against_masked(analysis, result).ok
