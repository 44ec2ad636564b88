"""What an adaptation may write, where, with which mode; bad options refused before any work."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import onnx
import pytest
from adapt_models import build_tiny_digits
from click.testing import CliRunner
from models import CASES

from onnx_netadapt.adapt import adapt
from onnx_netadapt.cli import main
from onnx_netadapt.graph.save import save_bytes, save_json, save_model
from onnx_netadapt.measure.stats import LatencyStats
from onnx_netadapt.measure.table import LatencyTable

# A run on MACs (deterministic, no device) that ends after a couple of quick iterations.
FAST = [
    "--target", "macs", "--data", "digits", "--input-shape", "image:1,1,8,8",
    "--step", "0.2", "--short-steps", "3", "--long-epochs", "0", "--holdout-per-class", "5",
    "-q",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_digits(tmp_path_factory.mktemp("tiny") / "tiny.onnx", epochs=3)


def cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


# --- file modes ------------------------------------------------------------------------------


def test_atomic_writes_follow_the_umask(tmp_path: Path, umask_022) -> None:
    model = CASES["residual_chain"].build()
    written = [
        save_json({"a": 1}, tmp_path / "a.json"),
        save_bytes(b"x", tmp_path / "b.bin"),
        save_model(model, tmp_path / "m.onnx"),
    ]
    table = LatencyTable({"runner": "macs"}, tmp_path / "table.json")
    table.entries["k"] = LatencyStats(1.0, 1.0, 1.0, 1)
    table.save()
    written.append(tmp_path / "table.json")
    assert [_mode(p) for p in written] == [0o644] * 4  # readable by others, as a plain write
    os.umask(0o077)
    assert _mode(save_json({}, tmp_path / "private.json")) == 0o600
    (tmp_path / "a.json").chmod(0o640)  # replacing a file keeps the mode it was given
    assert _mode(save_json({"a": 2}, tmp_path / "a.json")) == 0o640
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_run_writes_its_files_with_the_umask(tiny: Path, tmp_path: Path, umask_022) -> None:
    out = tmp_path / "run"
    result = cli(tiny, *FAST, "--budget", "0.8", "-o", out)
    assert result.exit_code == 0, result.output
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"adapted.onnx", "latency_table.json", "report.md", "state.json"} <= {
        p.name for p in files
    }
    assert {p.relative_to(out).as_posix(): _mode(p) for p in files} == {
        p.relative_to(out).as_posix(): 0o644 for p in files
    }


# --- the output folder -----------------------------------------------------------------------


def test_a_folder_holding_the_model_is_never_written(tiny: Path, tmp_path: Path) -> None:
    """The issue's case: the input model sits in -o as adapted.onnx beside the user's
    report.md. Refused (exit 2), also with --overwrite (which would not help, so the message
    does not offer it): the model is an output path. Nothing changes in the folder."""
    folder = tmp_path / "mine"
    folder.mkdir()
    model = folder / "adapted.onnx"
    shutil.copy(tiny, model)
    (folder / "report.md").write_text("my notes\n")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    refused = cli(model, *FAST, "--budget", "0.8", "-o", folder)
    assert refused.exit_code == 2, refused.output
    assert "would be overwritten" in refused.output and "--overwrite" not in refused.output
    forced = cli(model, *FAST, "--budget", "0.8", "-o", folder, "--overwrite")
    assert forced.exit_code == 2, forced.output
    assert f"the input model {model} is where the run writes" in forced.output
    relative = cli(
        Path(os.path.relpath(model)), *FAST, "--budget", "0.8", "-o", folder / ".." / "mine",
        "--overwrite",
    )  # fmt: skip
    assert relative.exit_code == 2 and "is where the run writes" in relative.output
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_symlink_to_the_model_as_an_output_is_refused(tiny: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "history.json").symlink_to(tiny)
    before = tiny.read_bytes()
    result = cli(tiny, *FAST, "--budget", "0.8", "-o", folder, "--overwrite")
    assert result.exit_code == 2 and "is where the run writes" in result.output
    table = cli(tiny, *FAST, "--budget", "0.8", "-o", tmp_path / "new", "--table", tiny)
    assert table.exit_code == 2 and "is where the run writes" in table.output
    assert tiny.read_bytes() == before and not (tmp_path / "new").exists()


def test_other_files_need_overwrite_which_replaces_only_the_runs_files(
    tiny: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "shared"
    (folder / "iterations").mkdir(parents=True)
    (folder / "notes.txt").write_text("keep me\n")
    (folder / "iterations" / "net_099.onnx").write_bytes(b"stale network of an older run")
    (folder / "iterations" / "mine.txt").write_text("keep me too\n")
    refused = cli(tiny, *FAST, "--budget", "0.8", "-o", folder)
    assert refused.exit_code == 2 and "notes.txt" in refused.output
    assert "--overwrite" in refused.output and not (folder / "state.json").exists()
    ok = cli(tiny, *FAST, "--budget", "0.8", "-o", folder, "--overwrite")
    assert ok.exit_code == 0, ok.output
    assert (folder / "notes.txt").read_text() == "keep me\n"
    assert (folder / "iterations" / "mine.txt").exists()
    assert not (folder / "iterations" / "net_099.onnx").exists()  # an output name: replaced
    assert (folder / "adapted.onnx").exists() and (folder / "state.json").exists()
    again = cli(tiny, *FAST, "--budget", "0.8", "-o", folder, "--json")
    assert again.exit_code == 2
    refusal = json.loads(again.stdout)  # the error alone, not the earlier run's summary
    assert set(refusal) == {"error", "exit_code"} and refusal["exit_code"] == 2
    assert "--resume" in refusal["error"] and "--overwrite" in refusal["error"]


@pytest.mark.parametrize("what", ["file", "model"])
def test_output_must_be_a_folder(tiny: Path, tmp_path: Path, what: str) -> None:
    target = tmp_path / "f.txt" if what == "file" else tiny
    if what == "file":
        target.write_text("x\n")
    before = target.read_bytes()
    result = cli(tiny, *FAST, "--budget", "0.8", "-o", target)
    assert result.exit_code == 2, result.output
    assert ("is the input model" if what == "model" else "is a file") in result.output
    assert "Traceback" not in result.output and target.read_bytes() == before


def test_a_failed_start_leaves_a_folder_the_next_run_may_use(tiny: Path, tmp_path: Path) -> None:
    """A run refused after it began writing (budget below the floor) marks its folder, so the
    corrected command can use it again without --overwrite."""
    out = tmp_path / "run"
    low = cli(tiny, *FAST, "--budget", "0.001", "-o", out)
    assert low.exit_code == 10 and "cannot be met" in low.output
    assert out.is_dir() and not (out / "state.json").exists()
    ok = cli(tiny, *FAST, "--budget", "0.8", "-o", out)
    assert ok.exit_code == 0, ok.output


def test_an_unwritable_output_folder_is_refused_before_any_work(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx_netadapt.paths as paths

    parent = tmp_path / "ro"
    parent.mkdir()
    real = paths.os.access
    monkeypatch.setattr(paths.os, "access", lambda p, mode: Path(p) != parent and real(p, mode))
    result = cli(tiny, *FAST, "--budget", "0.8", "-o", parent / "run")
    assert result.exit_code == 2 and "read-only file system" in result.output
    assert not (parent / "run").exists()


# --- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option",
    [
        ["--workers", "0"],
        ["--step", "0"],
        ["--round-to", "0"],
        ["--max-iterations", "0"],
        ["--distill", "2"],
        ["--lr", "-1"],
        ["--batch-size", "0"],
        ["--train-threads", "0"],
        ["--threads", "0"],
        ["--seed", "-1"],
        ["--holdout-per-class", "0"],
    ],
)
def test_option_ranges_exit_2_before_any_work(tiny: Path, tmp_path: Path, option) -> None:
    result = cli(tiny, *FAST, "--budget", "0.8", "-o", tmp_path / "run", *option)
    assert result.exit_code == 2, result.output
    assert option[0] in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_resume_validates_the_saved_settings_before_any_work(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    from onnx_netadapt.adapt import AdaptConfig, parse_budget

    config = AdaptConfig(
        target="macs",
        budgets=[parse_budget("0.8")],
        data="digits",
        input_shapes={"image": [1, 1, 8, 8]},
        short_steps=3,
        long_epochs=0,
        holdout_per_class=5,
    )
    next(adapt(tiny, config, out))  # iteration 0 checkpointed
    state = json.loads((out / "state.json").read_text())
    state["config"]["lr"] = -1.0  # as written by a version that did not check it
    (out / "state.json").write_text(json.dumps(state))
    before = sorted(p.name for p in out.rglob("*"))
    result = cli("--resume", out)
    assert result.exit_code == 2 and "--lr -1.0 must be > 0" in result.output
    assert sorted(p.name for p in out.rglob("*")) == before


def test_resume_refuses_the_options_it_would_ignore(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert cli(tiny, *FAST, "--budget", "0.8", "-o", out).exit_code == 0
    result = cli(tiny, "--resume", out, "--budget", "0.3", "--target", "ort", "-o", tmp_path / "x")
    assert result.exit_code == 2, result.output
    for name in ("MODEL", "--budget", "--target", "-o"):
        assert name in result.output
    assert "--resume" not in result.output.split("would be ignored")[1]
    resumed = cli("--resume", out, "-q")
    assert resumed.exit_code == 0, resumed.output


def test_resume_after_the_model_moved_says_where_it_was(tiny: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    shutil.copy(tiny, model)
    out = tmp_path / "run"
    assert cli(model, *FAST, "--budget", "0.8", "-o", out).exit_code == 0
    model.rename(tmp_path / "moved.onnx")
    result = cli("--resume", out)
    assert result.exit_code == 3, result.output
    assert f"adapts {model.resolve()}, which is no longer there" in result.output
    assert "Traceback" not in result.output


def test_a_truncated_checkpoint_says_how_to_recover(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert cli(tiny, *FAST, "--budget", "0.8", "-o", out).exit_code == 0
    state = out / "state.json"
    state.write_text(state.read_text()[:300])
    result = cli("--resume", out)
    assert result.exit_code == 2, result.output
    last = json.loads((out / "history.json").read_text())["history"][-1]
    assert "history.json is intact" in result.output
    assert str(out / last["network"]) in result.output and "--overwrite" in result.output


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--target", "nope"], 7, "no runner named 'nope'"),
        (["--budget", "nope=0.5"], 7, "no runner named 'nope'"),
        (["--runner-option", "onnx2tf=x"], 2, "--runner-option onnx2tf: no runner"),
        (["--budget", "12ms"], 10, "--target macs measures MMAC"),
    ],
)
def test_runner_and_budget_errors_have_their_exit_codes(
    tiny: Path, tmp_path: Path, args, code, needle
) -> None:
    budget = [] if "--budget" in args else ["--budget", "0.8"]
    result = cli(tiny, *FAST, *budget, *args, "-o", tmp_path / "run")
    assert result.exit_code == code, result.output
    assert needle in result.output and not (tmp_path / "run" / "state.json").exists()


def test_round_to_above_every_group_is_said_plainly(tiny: Path, tmp_path: Path) -> None:
    result = cli(tiny, *FAST, "--budget", "0.8", "--round-to", "1000", "-o", tmp_path / "run")
    assert result.exit_code == 2, result.output
    assert "--round-to 1000 is at least the size of every prunable group" in result.output
    assert "cut to 1000 channels" not in result.output


def test_a_budget_of_one_runs(tiny: Path, tmp_path: Path) -> None:
    result = cli(tiny, *FAST, "--budget", "1", "--json", "-o", tmp_path / "run")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["iterations"] == 0 and summary["budgets_met"]
    assert onnx.load(str(tmp_path / "run" / "adapted.onnx")).graph.node
