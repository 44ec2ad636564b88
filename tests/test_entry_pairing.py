"""benchmarks/entry_pairing.py, fidelity_repeat.py and record.py: the replay of kernel-entry
ratios and the run-to-run comparison of fidelity results, on made-up records (no timing)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import entry_pairing, fidelity_repeat
from benchmarks.record import run_header, save_results


def _rows(slowness: np.ndarray) -> np.ndarray:
    """Rounds of (start s, 144, 72, 112 channels) at true times 0.24 / 0.12 / 0.18 ms, each
    round's three profiles slowed by that round's ``slowness``."""
    start = np.arange(len(slowness), dtype=float) * 0.2
    true = np.array([0.24, 0.12, 0.18])
    return np.column_stack([start, slowness[:, None] * true[None, :]])


def test_by_turns_is_exact_where_the_host_slows_whole_rounds_and_apart_is_not() -> None:
    rng = np.random.default_rng(1)
    slowness = np.where(rng.random(400) < 0.4, 1.8, 1.0)  # 40 % of the rounds slow
    errors = entry_pairing.ratio_errors(_rows(slowness), draws=300)
    for k in entry_pairing.ROUND_COUNTS:
        assert errors[f"by turns|{k}"]["mean_abs_pct"] == pytest.approx(0.0, abs=1e-9)
        assert errors[f"apart, median|{k}"]["over_10pct"] > 10


def test_the_windows_count_slow_profiles() -> None:
    slowness = np.array([1.8] * 25 + [1.0] * 25)  # 5 s slow, then 5 s quick
    windows = entry_pairing.slow_windows(_rows(slowness))
    assert [w["slow"]["144"] for w in windows] == [1.0, 0.0]
    assert windows[0]["ratio"]["72"] == pytest.approx(0.5)


@pytest.mark.parametrize("argv", [["--seconds", "5"], ["--draws", "0"]])
def test_entry_pairing_refuses_bad_arguments_before_measuring(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit):
        entry_pairing.main(argv)
    assert "must be at least" in capsys.readouterr().err


def _run(path: Path, errors: dict[str, list[float]]) -> Path:
    """A latency_fidelity result of one case whose variants have ``errors`` per estimator."""
    count = len(next(iter(errors.values())))
    variants = [
        {"variant": f"keep {i}", "errors_pct": {est: e[i] for est, e in errors.items()}}
        for i in range(count)
    ]
    path.write_text(
        json.dumps({"cases": [{"arch": "net", "layout": "nchw", "variants": variants}]})
    )
    return path


def test_fidelity_repeat_tells_a_steady_bias_from_noise(tmp_path: Path) -> None:
    one = _run(tmp_path / "1.json", {"steady": [12.0, 1.0, 2.0], "noisy": [2.0, 11.0, -3.0]})
    two = _run(tmp_path / "2.json", {"steady": [12.0, 1.0, 2.0], "noisy": [-9.0, 1.0, 4.0]})
    rows = fidelity_repeat.summary([fidelity_repeat.load_errors(p) for p in (one, two)])
    assert rows["steady"]["median_run_sd_pct"] == pytest.approx(0.0)
    assert rows["noisy"]["median_run_sd_pct"] > 4
    assert rows["steady"]["within_10"] == [2, 2]
    assert rows["steady"]["cases_met"] == [0, 0]  # 12 % on one variant in both runs
    assert rows["noisy"]["within_10"] == [2, 3]
    assert rows["noisy"]["cases_met"] == [0, 1]  # run 2: all within 10 %, mean 4.7 %


def test_fidelity_repeat_needs_two_runs(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        fidelity_repeat.main([str(_run(tmp_path / "1.json", {"a": [1.0]}))])
    assert "at least two runs" in capsys.readouterr().err


def test_fidelity_repeat_names_a_file_that_is_not_a_fidelity_result(tmp_path: Path, capsys) -> None:
    one = _run(tmp_path / "1.json", {"a": [1.0]})
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"repeats": []}))
    with pytest.raises(SystemExit):
        fidelity_repeat.main([str(one), str(other)])
    assert f"{other} is not a latency_fidelity result" in capsys.readouterr().err


def test_a_benchmark_run_records_its_command_and_saves_both_files(tmp_path: Path) -> None:
    header = run_header("entry_pairing", ["--seconds", "60"])
    assert header["command"] == "python -m benchmarks.entry_pairing --seconds 60"
    assert header["cpu"] and header["date"].endswith("UTC")
    text = save_results({**header, "x": 1}, lambda r: f"x is {r['x']}\n", tmp_path / "out", "run")
    assert text == "x is 1\n"
    assert (tmp_path / "out" / "run.md").read_text() == text
    assert json.loads((tmp_path / "out" / "run.json").read_text())["x"] == 1


def test_entry_order_splits_each_layers_ratio_by_the_profile_that_came_first() -> None:
    """A made-up record where the first profile of a pair pays 10 % for the switch: the
    pruned-first ratio is 10 % high, the original-first one 10 % low, and the quotient says
    so; without the switch cost both orders agree."""
    from benchmarks import entry_order

    switch = [[0.5 * 1.1, 0.5 / 1.1, 1.0]] * 5
    steady = [[0.4, 0.4, 2.0], [0.42, 0.42, 2.1], [0.38, 0.38, 1.9]]
    rows = {"switch": switch, "steady": steady}
    layers = {r["layer"]: r for r in entry_order.order_split(rows)}
    assert layers["switch"]["quotient"] == pytest.approx(1.21)
    assert layers["steady"]["quotient"] == pytest.approx(1.0)
    assert layers["steady"]["original_ms"] == pytest.approx(2.0)
    text = entry_order.report(
        {"command": "c", "cpu": "x", "date": "d", "rounds": 3, "layers": list(layers.values())}
    )
    assert "| switch | 1.000 | 0.550 | 0.455 | 1.210 |" in text


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--keep", "1.5"], "--keep must be in"),
        (["--rounds", "2"], "at least 3"),
        (["--case", "mobilenet_v1:paddle,resnet18:nhwc"], "takes one ARCH:LAYOUT"),
    ],
)
def test_entry_order_refuses_bad_arguments_before_measuring(
    argv: list[str], says: str, capsys, monkeypatch
) -> None:
    from benchmarks import entry_order

    monkeypatch.setattr(entry_order, "layer_pairs", lambda *a: pytest.fail("measured"))
    with pytest.raises(SystemExit):
        entry_order.main(argv)
    assert says in capsys.readouterr().err


def _calibrated_run(path: Path, model_overhead_ms: float, estimate_ms: float) -> Path:
    """One case, one variant measured at 1 ms, whose calibration had ``model_overhead_ms``."""
    calibration = {"model_overhead_ms": model_overhead_ms, "profiled_ms": 10.0, "overhead_ms": 0.0}
    variant = {
        "variant": "keep 0.3",
        "measured_ms": 1.0,
        "estimates": {"profile": estimate_ms},
        "errors_pct": {"profile": 100.0 * (estimate_ms - 1.0)},
    }
    case = {"arch": "net", "layout": "nchw", "calibrations": {"profile": calibration}}
    path.write_text(json.dumps({"cases": [{**case, "variants": [variant]}]}))
    return path


def test_fidelity_repeat_puts_each_case_s_median_model_overhead_back_into_its_estimates(
    tmp_path: Path,
) -> None:
    """Estimates are model + parts * (10 - model) / 10; parts of 1.2 ms in every run, with
    overheads of -0.1, -0.2 and -0.6 ms (median -0.2) around them."""

    def estimate(model: float) -> float:
        return model + 1.2 * (10.0 - model) / 10.0

    paths = [
        _calibrated_run(tmp_path / f"{i}.json", m, estimate(m))
        for i, m in enumerate((-0.1, -0.2, -0.6))
    ]
    runs = [fidelity_repeat.load_errors(p) for p in paths]
    fidelity_repeat.with_median_overhead([json.loads(p.read_text()) for p in paths], runs)
    swapped = [run[("net:nchw", "keep 0.3")][fidelity_repeat.MEDIAN_OVERHEAD] for run in runs]
    assert swapped == pytest.approx([100.0 * (estimate(-0.2) - 1.0)] * 3)
    own = [run[("net:nchw", "keep 0.3")]["profile"] for run in runs]
    assert own[1] == pytest.approx(swapped[1])  # the median run keeps its own
    assert own[2] < swapped[2]  # the most negative overhead had pulled its estimate down
    text = fidelity_repeat.report(paths, fidelity_repeat.summary(runs), "--median-overhead")
    assert "--median-overhead`" in text and fidelity_repeat.MEDIAN_OVERHEAD in text


def test_fidelity_repeat_median_overhead_names_runs_without_a_calibration(
    tmp_path: Path, capsys
) -> None:
    one = _run(tmp_path / "1.json", {"profile": [1.0]})
    two = _run(tmp_path / "2.json", {"profile": [2.0]})
    with pytest.raises(SystemExit):
        fidelity_repeat.main([str(one), str(two), "--median-overhead"])
    err = capsys.readouterr().err
    assert "--median-overhead needs each run's 'profile' estimates" in err
    assert "leave the option out" in err
    fidelity_repeat.main([str(one), str(two)])  # without the option, the same runs report
