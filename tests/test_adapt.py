"""The NetAdapt loop end to end on a tiny trained CNN with real short fine-tuning."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from adapt_models import build_tiny_digits, digits_arrays, read_history, tiny_digits_config
from click.testing import CliRunner

from onnx_netadapt.adapt import AdaptConfig, adapt, adapt_model, parse_budget
from onnx_netadapt.adapt import resources as resources_module
from onnx_netadapt.adapt.rundir import RunDirError
from onnx_netadapt.cli import main
from onnx_netadapt.errors import BudgetError, DataError, UsageError
from onnx_netadapt.measure.runner import RunnerError
from onnx_netadapt.measure.stats import LatencyStats
from onnx_netadapt_runners.resources import MacsRunner


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_digits(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


def _config(**overrides: object) -> AdaptConfig:
    return tiny_digits_config(**overrides)


def test_loop_meets_a_macs_budget_and_writes_everything(tiny: Path, tmp_path: Path) -> None:
    before = tiny.read_bytes()
    out = tmp_path / "run"
    results = list(adapt(tiny, _config(), out))
    assert results[0].iteration == 0 and len(results) >= 3
    history = read_history(out)
    summary = history["summary"]
    assert summary["status"] == "met" and summary["budgets_met"]
    assert summary["final"]["latency"] <= summary["limits"]["latency"] + 1e-9
    assert summary["limits"]["latency"] == pytest.approx(0.6 * summary["original"]["latency"])
    # every iteration shrinks the chosen group on the grid and lowers the resource
    steps = history["history"][1:]
    for rec in steps:
        g = rec["group"]
        assert g["channels_after"] < g["channels_before"] and g["channels_after"] % 8 == 0
        assert rec["measured"]["latency"] <= rec["targets"]["latency"] + 1e-9
        assert rec["estimate"]["latency"] == pytest.approx(rec["measured"]["latency"], rel=1e-6)
    macs = [r["measured"]["latency"] for r in history["history"]]
    assert macs == sorted(macs, reverse=True)
    for name in ("adapted.onnx", "report.md", "accuracy_vs_latency.png", "channels.png"):
        assert (out / name).stat().st_size > 0
    for rec in history["history"]:
        onnx.checker.check_model(onnx.load(out / rec["network"]))
    assert 0.0 <= summary["val_accuracy"]["adapted"] <= 1.0
    assert summary["val_accuracy"]["original"] > 0.8  # the tiny net is trained
    assert tiny.read_bytes() == before  # the input model is never modified


def test_resume_after_interruption_gives_the_same_result(tiny: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    adapt_model(tiny, _config(), full)
    part = tmp_path / "part"
    run = adapt(tiny, _config(), part)
    next(run), next(run)  # iteration 0 and 1 finished, then the process "dies"
    run.close()
    assert json.loads((part / "state.json").read_text())["iteration"] == 1
    adapt_model(None, None, part, resume=True)
    a, b = read_history(full), read_history(part)
    assert [r["group"] for r in a["history"][1:]] == [r["group"] for r in b["history"][1:]]
    assert [r["holdout_accuracy"] for r in a["history"]] == [
        r["holdout_accuracy"] for r in b["history"]
    ]
    assert (full / "adapted.onnx").read_bytes() == (part / "adapted.onnx").read_bytes()


def test_a_new_run_refuses_a_used_directory(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = adapt(tiny, _config(), out)
    next(run)
    run.close()
    with pytest.raises(RunDirError, match="--resume"):
        next(adapt(tiny, _config(), out))
    with pytest.raises(RunDirError, match="nothing to resume"):
        next(adapt(None, None, tmp_path / "empty", resume=True))


def test_unreachable_budget_is_refused_before_training(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(BudgetError, match=r"cannot be met.*even with every prunable group"):
        next(adapt(tiny, _config(budgets=[parse_budget("0.01")]), tmp_path / "run"))


def test_unreachable_mid_run_keeps_the_best_network(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from onnx_netadapt.adapt import loop

    monkeypatch.setattr(loop, "check_reachable", lambda *a: None)
    out = tmp_path / "run"
    config = _config(budgets=[parse_budget("0.01")], step=0.5, short_steps=2, long_epochs=0)
    with pytest.raises(BudgetError, match=r"could not be met.*no channel group can shrink"):
        adapt_model(tiny, config, out)
    summary = read_history(out)["summary"]
    assert summary["status"] == "unreachable" and not summary["budgets_met"]
    assert summary["unreachable"] and (out / "adapted.onnx").exists()
    assert summary["final"]["latency"] < summary["original"]["latency"]


class FlakyMacs(MacsRunner):
    """MACs that 'lose the device' after a number of whole-network measurements."""

    fail_after = 3
    calls = 0

    def _measure_impl(self, model: onnx.ModelProto) -> list[float] | LatencyStats:
        FlakyMacs.calls += 1
        if FlakyMacs.calls > FlakyMacs.fail_after:
            raise RunnerError("device disconnected (adb: device 'abc' not found)")
        return super()._measure_impl(model)


def test_runner_failing_mid_run_then_resume(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = resources_module.make_runner
    monkeypatch.setattr(
        resources_module,
        "make_runner",
        lambda name, *a, **k: FlakyMacs() if name == "macs" else original(name, *a, **k),
    )
    FlakyMacs.calls = 0
    out = tmp_path / "run"
    with pytest.raises(RunnerError, match="disconnected"):
        adapt_model(tiny, _config(), out)
    state = json.loads((out / "state.json").read_text())
    assert state["status"] == "running" and state["iteration"] >= 1
    finished = state["iteration"]
    FlakyMacs.calls = -1000  # the device is back
    adapt_model(None, None, out, resume=True)
    history = read_history(out)
    assert history["summary"]["status"] == "met"
    assert history["history"][finished]["iteration"] == finished


def test_data_of_the_wrong_shape_is_refused_before_any_work(tiny: Path, tmp_path: Path) -> None:
    x, y = digits_arrays()
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=x.reshape(len(x), 64)[:, :60], y_train=y)
    with pytest.raises(DataError, match="shape"):
        next(adapt(tiny, _config(data=str(bad)), tmp_path / "run"))
    assert not (tmp_path / "run" / "state.json").exists()


def test_cli_adapts_with_json_summary_and_exit_codes(tiny: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    args = [str(tiny), "--target", "macs", "--budget", "0.75", "--data", "digits", "-o", str(out)]
    args += ["--input-shape", "image:1,1,8,8"]
    fast = ["--step", "0.2", "--short-steps", "5", "--long-epochs", "0", "--holdout-per-class", "5"]
    result = runner.invoke(main, [*args, *fast, "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["budgets_met"] and summary["final"]["latency"] <= summary["limits"]["latency"]
    bad = runner.invoke(main, [str(tiny), "--budget", "7", "-o", str(tmp_path / "x")])
    assert bad.exit_code == BudgetError.exit_code and "add a unit" in bad.output
    again = runner.invoke(main, [*args, *fast])
    assert again.exit_code == RunDirError.exit_code and "--resume" in again.output
    missing = runner.invoke(main, [str(tmp_path / "nope.onnx"), "--budget", "0.5"])
    assert missing.exit_code == 3


def test_results_do_not_depend_on_workers(tiny: Path, tmp_path: Path) -> None:
    adapt_model(tiny, _config(workers=1, long_epochs=0), tmp_path / "w1")
    adapt_model(tiny, _config(workers=2, long_epochs=0), tmp_path / "w2")
    one, two = read_history(tmp_path / "w1")["history"], read_history(tmp_path / "w2")["history"]
    assert len(one) == len(two) >= 3
    for a, b in zip(one[1:], two[1:], strict=True):
        assert a["group"] == b["group"]
        assert [p["holdout_accuracy"] for p in a["proposals"]] == [
            p["holdout_accuracy"] for p in b["proposals"]
        ]
    assert (tmp_path / "w1" / "adapted.onnx").read_bytes() == (
        tmp_path / "w2" / "adapted.onnx"
    ).read_bytes()


@pytest.mark.parametrize("estimator", ["constant", "profile"])
def test_loop_tracks_ort_latency_under_a_params_budget(
    tiny: Path, tmp_path: Path, estimator: str
) -> None:
    """Measured ORT latency (this tiny net is all overhead, so the budget is on params)."""
    out = tmp_path / "ort"
    config = _config(
        target="ort", budgets=[parse_budget("params=0.7")], step=0.1, estimator=estimator
    )
    summary = adapt_model(tiny, config, out)
    history = read_history(out)["history"]
    assert summary["status"] == "met" and summary["final"]["params"] <= summary["limits"]["params"]
    assert set(summary["final"]) == {"latency", "params"} and "latency" not in summary["limits"]
    for rec in history[1:]:
        assert rec["estimate"]["latency"] > 0 and rec["measured"]["latency"] > 0
        assert rec["measured"]["params"] <= rec["targets"]["params"] + 1e-9
    table = json.loads((out / "latency_table.json").read_text())
    on_disk = sum(len(t["entries"]) for t in table["tables"].values())
    assert on_disk == summary["table_measurements"]  # every measured entry was saved
    kernels = [t for t in table["tables"].values() if t["fingerprint"].get("entry")]
    assert len(kernels) == (1 if estimator == "profile" else 0)  # in-context kernel entries


def test_unknown_estimator_is_refused() -> None:
    with pytest.raises(UsageError, match="--estimator"):
        _config(estimator="guess").validate()


def test_without_targets_distils_and_scores_agreement(tiny: Path, tmp_path: Path) -> None:
    x, _ = digits_arrays()
    unlabeled = tmp_path / "unlabeled.npz"
    np.savez(unlabeled, x_train=x)
    out = tmp_path / "run"
    summary = adapt_model(tiny, _config(data=str(unlabeled), select="ratio"), out)
    history = read_history(out)
    assert summary["status"] == "met" and not history["data"]["targets"]
    assert history["history"][0]["holdout_accuracy"] == 1.0  # the original agrees with itself
    # agreement with the original, on examples the original never labelled for training
    assert 0.5 < summary["val_accuracy"]["adapted"] <= 1.0
    for rec in history["history"][1:]:
        assert all(p["error"] is None for p in rec["proposals"])
