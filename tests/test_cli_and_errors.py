"""The CLI through click's test runner, and bad inputs: clear errors, exit codes, no output."""

from __future__ import annotations

import json
from pathlib import Path

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
        (["--keep", "abc"], 2, "GROUP=N"),
        ([], 2, "exactly one of"),
        (["--ratio", "0.5", "--keep", "1=4"], 2, "exactly one of"),
        (["--keep", "1=8", "--keep", "1=4"], 2, "group 1 twice"),
        (["--ratio", "0.5", "--round-to", "0"], 2, "--round-to 0"),
        (["--ratio", "0.5", "--round-to", "1000"], 5, "nothing to prune"),
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


def test_output_over_input_is_refused(model_file, tmp_path, monkeypatch):
    before = model_file.read_bytes()
    link = tmp_path / "link.onnx"
    link.symlink_to(model_file)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    for model, output in [
        (model_file, model_file),  # the same path
        (link, model_file),  # through a symlink
        (model_file, "sub/../model.onnx"),  # relative, with ..
    ]:
        result = CliRunner().invoke(
            main, ["prune", str(model), "-o", str(output), "--ratio", "0.5"]
        )
        assert result.exit_code == 2, result.output
        assert "is the input model" in result.output
    result = CliRunner().invoke(
        main, ["prune", "model.onnx", "-o", "o.onnx", "--ratio", "0.5", "--report", "model.onnx"]
    )
    assert result.exit_code == 2 and "--report model.onnx is the input model" in result.output
    assert model_file.read_bytes() == before
    assert not (tmp_path / "o.onnx").exists()


@pytest.mark.parametrize("which", ["-o", "--report"])
def test_prune_outputs_checked_before_anything_is_written(model_file, tmp_path, which):
    """A directory as -o or --report is refused before the model is written (exit 2)."""
    folder = tmp_path / "folder"
    folder.mkdir()
    out, report = tmp_path / "out.onnx", tmp_path / "report.json"
    paths = {"-o": out, "--report": report, which: folder}
    args = ["prune", str(model_file), "--ratio", "0.5"]
    result = CliRunner().invoke(
        main, [*args, "-o", str(paths["-o"]), "--report", str(paths["--report"])]
    )
    assert result.exit_code == 2, result.output
    assert f"{which} {folder} is a directory" in result.output
    assert not out.exists() and not report.exists() and not any(folder.iterdir())
    same = CliRunner().invoke(main, [*args, "-o", str(out), "--report", str(out)])
    assert same.exit_code == 2 and "name the same file" in same.output and not out.exists()


def test_prune_into_an_unwritable_folder_is_a_clear_error(model_file, tmp_path, monkeypatch):
    """A read-only file system (access says no): refused before any work, exit 2."""
    import onnx_netadapt.paths as paths

    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = paths.os.access
    monkeypatch.setattr(paths.os, "access", lambda p, mode: Path(p) != ro and real_access(p, mode))
    result = CliRunner().invoke(
        main, ["prune", str(model_file), "-o", str(ro / "out.onnx"), "--ratio", "0.5"]
    )
    assert result.exit_code == 2 and "read-only file system or no permission" in result.output


def test_a_failing_write_is_an_error_not_a_traceback(model_file, tmp_path, monkeypatch):
    """When the OS refuses the write itself (EROFS, disk full), the error names the file."""
    import errno

    import onnx_netadapt.graph.save as save

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(save.tempfile, "mkstemp", refuse)
    out = tmp_path / "out.onnx"
    result = CliRunner().invoke(main, ["prune", str(model_file), "-o", str(out), "--ratio", "0.5"])
    assert result.exit_code == 1, result.output
    assert f"cannot write {out}: Read-only file system" in result.output
    assert not out.exists()


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
    assert "is not an ONNX model: it looks like a text file" in result.output
    assert "truncated" not in result.output
    assert not (tmp_path / "o.onnx").exists()


def test_an_image_named_onnx_is_not_called_truncated(tmp_path):
    png = tmp_path / "picture.onnx"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    result = CliRunner().invoke(main, ["inspect", str(png)])
    assert result.exit_code == 3
    assert "not an ONNX model: it looks like a PNG image" in result.output
    assert "truncated" not in result.output


def test_missing_file(tmp_path):
    result = CliRunner().invoke(main, ["inspect", str(tmp_path / "nope.onnx")])
    assert result.exit_code == 3 and "not found" in result.output


def test_a_directory_as_the_model_is_called_a_directory(tmp_path):
    result = CliRunner().invoke(main, ["inspect", str(tmp_path)])
    assert result.exit_code == 3
    assert "is a directory, not an ONNX model file" in result.output
    assert "not found" not in result.output


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


@pytest.mark.parametrize("command", ["inspect", "prune", "profile"])
def test_input_shape_cannot_change_a_fixed_dimension(model_file, tmp_path, command):
    """Channels fixed at 3 cannot become 5: refused naming the dimension (exit 4), nothing
    written, and profile gives this error instead of ONNX Runtime's traceback."""
    graph_input = onnx.load(str(model_file)).graph.input[0]
    dims = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    bad = [dims[0], dims[1] + 2, *dims[2:]]
    args = {
        "inspect": [],
        "prune": ["-o", str(tmp_path / "o.onnx"), "--ratio", "0.5"],
        "profile": ["--target", "macs"],
    }[command]
    spec = f"{graph_input.name}:{','.join(map(str, bad))}"
    result = CliRunner().invoke(main, [command, str(model_file), "--input-shape", spec, *args])
    assert result.exit_code == 4, result.output
    assert f"sets dimension 1 of {graph_input.name!r} to {dims[1] + 2}" in result.output
    assert f"fixes it at {dims[1]}" in result.output
    assert not (tmp_path / "o.onnx").exists()


def test_input_shape_sets_dynamic_dimensions_only(tmp_path):
    path = tmp_path / "dyn.onnx"
    onnx.save(_dynamic_batch_model(), str(path))
    vi = _dynamic_batch_model().graph.input[0]
    dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    good = f"{vi.name}:4,{','.join(map(str, dims[1:]))}"
    ok = CliRunner().invoke(main, ["inspect", str(path), "--input-shape", good])
    assert ok.exit_code == 0, ok.output  # batch is dynamic: any value
    wrong = f"{vi.name}:{','.join(map(str, [4, dims[1], dims[2] + 1, *dims[3:]]))}"
    bad = CliRunner().invoke(main, ["inspect", str(path), "--input-shape", wrong])
    assert bad.exit_code == 4 and "dimension 2" in bad.output


def test_unknown_runner_option_is_refused_with_the_accepted_ones(model_file):
    result = CliRunner().invoke(
        main, ["profile", str(model_file), "--target", "ort", "--runner-option", "thread=2"]
    )
    assert result.exit_code == 2, result.output
    assert "--runner-option thread: no runner of this run takes it" in result.output
    assert "ort takes threads, providers, optimization" in result.output


def test_profile_table_is_never_the_model(model_file, tmp_path):
    """A table path that is the model used to move the model aside as a 'corrupt table'."""
    before = model_file.read_bytes()
    for table in (model_file, tmp_path):
        result = CliRunner().invoke(
            main, ["profile", str(model_file), "--target", "macs", "--table", str(table)]
        )
        assert result.exit_code == 2, result.output
    assert model_file.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_unknown_target_exits_7(model_file):
    result = CliRunner().invoke(main, ["profile", str(model_file), "--target", "nope"])
    assert result.exit_code == 7 and "no runner named 'nope'" in result.output


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
