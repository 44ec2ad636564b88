"""benchmarks/compare_fmnist.py (and its fmnist_* modules): the speed-up at equal accuracy, its
bootstrap, the per-target views, the selection statistics, and (slow) the whole pipeline in smoke
mode, resumed."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from benchmarks import compare_fmnist as cf
from benchmarks import fmnist_report as report
from benchmarks import fmnist_run
from benchmarks import fmnist_scratch as scratch
from benchmarks import fmnist_select as select
from benchmarks.compare import BUDGETS, CURVE
from benchmarks.fmnist_checks import run_proposals, selection_noise, selection_row
from benchmarks.fmnist_premise import summarise
from benchmarks.fmnist_setup import Setup, Store, point_key
from tests.fashion_files import make_fashion


def _data(seeds: list[int], jitter: float = 0.0) -> dict:
    """Points and side-by-side measurements of a made-up run: the multiplier's curve is
    (latency, accuracy) = (1, .90), (.7, .88), (.5, .86), (.33, .84), (.2, .80); netadapt at
    budget b sits at latency 0.7 * b with the multiplier's accuracy at b."""
    mult = {0.75: (0.7, 0.88), 0.5: (0.5, 0.86), 0.35: (0.33, 0.84)}
    points, measured = [], {}
    for seed in seeds:
        shift = jitter * (seed - np.mean(seeds))
        rows = [("base", None, 1.0, 1.0, 0.90)]
        for budget, (lat, acc) in mult.items():
            rows.append(("multiplier", "ort", budget, lat, acc))
            rows.append(("netadapt", "ort", budget, 0.7 * lat, acc + shift))
            rows.append(("netadapt", "tflite", budget, 0.9 * lat, acc))
        rows.append((CURVE, None, 0.25, 0.2, 0.80))
        ms = {}
        for method, target, where, lat, acc in rows:
            key = point_key(method, target, "net", where, seed)
            point = {"key": key, "arch": "net", "seed": seed, "method": method}
            point |= {"target": target, "val_accuracy": acc, "mmacs": 1.0, "steps": 10}
            point |= {"width": where, "budget": None} if method == CURVE else {"budget": where}
            points.append(point)
            ms[key] = 2.0 * lat  # base 2 ms
        measured[f"net_s{seed}"] = {"keys": sorted(ms), "ort": ms, "tflite": ms}
    return {"points": points, "measured": measured}


def test_target_view_ratios_and_chosen_only() -> None:
    data = _data([0])
    view = report.target_view(data, "ort")
    assert {p["target"] for p in view} == {None, "ort"}
    netadapt = [p for p in view if p["method"] == "netadapt" and p["budget"] == 0.5]
    assert netadapt[0]["latency_ratio"] == pytest.approx(0.35)
    everything = report.target_view(data, "ort", chosen_only=False)
    assert {p["target"] for p in everything} == {None, "ort", "tflite"}


def test_speedup_at_equal_accuracy_interpolates_the_multiplier_curve() -> None:
    view = report.target_view(_data([0, 1]), "ort")
    speed = report.speedups(view, "net")
    assert set(speed) == set(BUDGETS)
    for value, bound in speed.values():
        assert bound == "=" and value == pytest.approx(1 / 0.7)


def test_bootstrap_interval_covers_the_seed_spread() -> None:
    view = report.target_view(_data([0, 1, 2], jitter=0.01), "ort")
    interval = report.bootstrap(view, "net", np.random.default_rng(0))
    point = report.speedups(view, "net")
    for budget in BUDGETS:
        low, high = interval[budget]
        assert low < point[budget][0] < high and high - low > 0.05
    assert (
        report.bootstrap(report.target_view(_data([0]), "ort"), "net", np.random.default_rng(0))
        == {}
    )


def test_report_tables_cross_target_latency_and_summary(tmp_path: Path) -> None:
    data = _data([0, 1]) | {"setup": asdict(Setup())}
    (tmp_path / "points.json").write_text(json.dumps(data))
    summary = report.cmd_report(argparse.Namespace(out=tmp_path))
    assert set(summary["speedup_vs_multiplier"]) == {"ort", "tflite"}
    ort = summary["speedup_vs_multiplier"]["ort"]["net"]
    assert ort["0.5"]["speedup"] == pytest.approx(1 / 0.7) and ort["0.5"]["bound"] == "="
    md = (tmp_path / "compare.md").read_text()
    assert "## net, chosen for and measured on ort" in md
    # netadapt chosen for ort at 0.5: latency 0.35 on ort, and the same on tflite
    assert "| 0.5 | netadapt | 0.350 | 0.350 | 86.00 ± 0.00 | 1.00 | 10 |" in md
    assert "| below | multiplier-curve | 0.200 | 0.200 | 80.00 ± 0.00 |" in md
    assert "- budget 0.5: = x1.43 (bootstrap 95% over seeds: 1.43-1.43)" in md
    assert (tmp_path / "compare.png").stat().st_size > 0


def test_select_report_pairs_both_picks_per_seed(tmp_path: Path) -> None:
    data = _data([0, 1])
    (tmp_path / "points.json").write_text(json.dumps(data))
    folder = tmp_path / "select"
    folder.mkdir()
    for seed, acc in ((0, 0.89), (1, 0.85), (2, 0.99)):  # seed 2: not in the comparison
        key = point_key(select.METHOD, "ort", "net", 0.75, seed)
        point = {"key": key, "arch": "net", "seed": seed, "method": select.METHOD}
        point |= {"target": "ort", "budget": 0.75, "iteration": 3, "val_accuracy": acc}
        (folder / f"{key}.json").write_text(json.dumps(point))
    ratios = {k: v / 2.0 for k, v in data["measured"]["net_s0"]["ort"].items()}
    ratios[point_key(select.METHOD, "ort", "net", 0.75, 0)] = 0.5
    (folder / "measured_net_s0.json").write_text(json.dumps({"ort": ratios}))
    (row,) = select.select_report(tmp_path, "cmd")["rows"]
    assert row["seeds"] == [0, 1]
    assert row["gain"] == [1.0, -3.0]  # against netadapt's 0.88 in both seeds
    assert row["netadapt-ratio"]["accuracy"][0] == pytest.approx(0.87)
    assert row["multiplier"]["latency_ratio"] is None  # seed 1 was not measured
    assert "| net | ort | 0.75 | [0, 1] |" in (tmp_path / "select.md").read_text()


def test_studies_default_to_the_architectures_the_comparison_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "points.json", Setup())
    for method, target in (("base", None), ("netadapt", "ort")):
        key = point_key(method, target, "net", 1.0, 0)
        store.add({"key": key, "arch": "net", "seed": 0, "method": method, "target": target})
    assert store.archs() == ["net"]
    studied: list[str] = []

    class FakeRun:  # records the architecture instead of training anything
        def __init__(self, arch: str, *args) -> None:
            studied.append(arch)

    for module in (scratch, select):
        monkeypatch.setattr(module, "ArchSeedRun", FakeRun)
    monkeypatch.setattr(scratch, "scratch_point", lambda run, point, folder: point)
    monkeypatch.setattr(select, "ratio_points", lambda run, target, folder: [])
    monkeypatch.setattr(select, "measure_with_comparison", lambda run, mine, folder: {})
    scratch.run_scratch(None, [0], ["ort"], Setup(), tmp_path, tmp_path)
    select.run_select(None, [0], ["ort"], Setup(), tmp_path, tmp_path)
    assert studied == ["net", "net"]  # not resnet_lite, of which there are no points


def test_largest_under_picks_the_widest_that_fits() -> None:
    table = {"1": 1.0, "0.75": 0.6, "0.5": 0.3, "0.25": 0.1}
    assert fmnist_run._largest_under(table, 0.5) == 0.5
    assert fmnist_run._largest_under(table, 0.6) == 0.75
    assert fmnist_run._largest_under(table, 0.05) == 0.25  # none fits: the narrowest


def test_selection_row_statistics() -> None:
    row = selection_row(10, 40, [0.5, 0.7, 0.6, 0.9], [0.80, 0.82, 0.81, 0.84], 100)
    assert row["spearman"] == pytest.approx(1.0)
    assert row["pick_gain"] == pytest.approx(0.84 - np.mean([0.80, 0.82, 0.81, 0.84]))
    assert row["pick_gain"] == row["best_gain"]
    assert row["holdout_se"] == pytest.approx(np.sqrt(0.675 * 0.325 / 100))


def test_premise_summary_compares_each_fall_with_the_seed_spread() -> None:
    accs = {1.0: (0.90, 0.91), 0.5: (0.88, 0.89), 0.25: (0.875, 0.885), 0.125: (0.80,)}
    points = [
        {"width": w, "seed": i, "val_accuracy": a}
        for w, values in accs.items()
        for i, a in enumerate(values)
    ]
    ranges = summarise(points)["ranges"]
    assert set(ranges) == {"1->0.5", "0.5->0.25", "0.25->0.125"}
    assert ranges["1->0.5"]["fall"] == pytest.approx(0.02)
    assert ranges["1->0.5"]["clearly_falls"]  # 2 points against an sd of 0.71
    assert not ranges["0.5->0.25"]["clearly_falls"]  # 0.5 points: within the spread
    assert ranges["0.25->0.125"]["seed_sd"] is None  # one seed: no spread, no verdict
    assert not ranges["0.25->0.125"]["clearly_falls"]


def test_store_refuses_points_of_another_setup(tmp_path: Path) -> None:
    path = tmp_path / "points.json"
    Store(path, Setup()).add({"key": "k"})
    other_machine = replace(Setup(), options={"tflite": {"onnx2tf": "/elsewhere"}})
    assert Store(path, other_machine).has("k")
    with pytest.raises(SystemExit, match="differs in epochs"):
        Store(path, replace(Setup(), epochs=2))


def test_store_reads_points_saved_before_the_long_recipe_fields(tmp_path: Path) -> None:
    path = tmp_path / "points.json"
    Store(path, Setup()).add({"key": "k"})
    data = json.loads(path.read_text())
    for name in ("long_lr", "long_distill"):
        del data["setup"][name]  # as written before these fields existed
    path.write_text(json.dumps(data))
    assert Store(path, Setup()).has("k")  # their defaults are what those runs used
    with pytest.raises(SystemExit, match="differs in long_lr"):
        Store(path, replace(Setup(), long_lr=0.05))


def test_run_proposals_reads_one_iteration_of_a_run(tmp_path: Path) -> None:
    proposals = [{"group": 1, "channels_after": 8}, {"group": 2, "error": "no converter"}]
    history = [{"iteration": 0, "proposals": []}, {"iteration": 1}, {"iteration": 2}]
    history[2]["proposals"] = proposals
    (tmp_path / "history.json").write_text(json.dumps({"history": history}))
    current, chosen = run_proposals(tmp_path, 2)
    assert current == tmp_path / "iterations" / "net_001.onnx"
    assert chosen == proposals[:1]  # the failed proposal is left out
    with pytest.raises(SystemExit, match="iterations 1 to 2"):
        run_proposals(tmp_path, 3)
    # a later iteration needs a run to take it from (else the study would be mislabelled)
    with pytest.raises(SystemExit, match="--iteration 2 needs --run"):
        selection_noise(
            tmp_path / "base.onnx",
            "fashion-mnist",
            {},
            {},
            [1],
            [1],
            "macs",
            0,
            tmp_path,
            iteration=2,
        )


@pytest.mark.slow
def test_smoke_run_end_to_end_then_resumes_without_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "fashion"
    make_fashion(folder, train_n=400, test_n=100)
    out, work = tmp_path / "out", tmp_path / "work"
    args = ["run", "--smoke", "--data", f"fashion-mnist:{folder}", "--out", str(out)]
    args += ["--work", str(work), "--long-lr", "0.02", "--long-distill", "0.5"]
    cf.main(args)
    data = json.loads((out / "points.json").read_text())
    keys = {p["key"] for p in data["points"]}
    # base + 4 methods x 3 budgets x 2 targets + 1 curve width
    assert len(keys) == len(data["points"]) == 1 + 4 * 3 * 2 + 1
    measured = data["measured"]["mobilenet_v1_lite_s0"]
    assert set(measured["macs"]) == set(measured["params"]) == keys
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["speedup_vs_multiplier"]) == {"macs", "params"}
    assert (out / "compare.png").stat().st_size > 0 and "netadapt" in (
        out / "compare.md"
    ).read_text()

    def refuse(*args, **kwargs):
        raise AssertionError("a finished point was computed again")

    monkeypatch.setattr(fmnist_run, "build_model", refuse)
    monkeypatch.setattr(fmnist_run, "long_finetune", refuse)
    monkeypatch.setattr(fmnist_run, "runner_ms", refuse)
    cf.main(args)
    assert json.loads((out / "points.json").read_text())["points"] == data["points"]

    monkeypatch.undo()
    scratch = ["scratch", *args[1:], "--targets", "macs"]
    cf.main(scratch)
    rows = json.loads((out / "scratch.json").read_text())["rows"]
    assert [(r["target"], r["budget"]) for r in rows] == [("macs", b) for b in BUDGETS]
    netadapt_steps = {
        p["budget"]: p["steps"] for p in data["points"] if p["key"].startswith("netadapt_macs")
    }
    twins = json.loads((out / "scratch.json").read_text())["points"]
    assert {t["budget"]: t["steps"] for t in twins} == netadapt_steps  # the same training budget
    assert all(r["netadapt-scratch"] is not None and r["multiplier"] is not None for r in rows)

    cf.main(["select", *args[1:], "--targets", "macs"])
    rows = json.loads((out / "select.json").read_text())["rows"]
    assert [(r["target"], r["budget"]) for r in rows] == [("macs", b) for b in BUDGETS]
    for row in rows:  # both picks and the multiplier, scored and measured side by side
        for method in ("netadapt", "netadapt-ratio", "multiplier"):
            assert row[method]["accuracy"] is not None and row[method]["latency_ratio"] > 0
    ratio_run = work / "mobilenet_v1_lite_s0" / "na_macs_ratio" / "state.json"
    assert json.loads(ratio_run.read_text())["config"]["select"] == "ratio"
    measured = json.loads((out / "select" / "measured_mobilenet_v1_lite_s0.json").read_text())
    assert set(measured["params"]) == set(measured["keys"])  # every network, on every target

    recipe = ["recipe", *args[1:], "--targets", "macs", "--budgets", "0.5"]
    cf.main([*recipe, "--lrs", "0.02", "0.1", "--distills", "0.5", "0"])
    cells = json.loads((out / "recipe.json").read_text())["cells"]
    assert sorted((c["method"], c["lr"], c["distill"]) for c in cells) == [
        (m, lr, d)
        for m in ("multiplier", "netadapt", "uniform")
        for lr in (0.02, 0.1)
        for d in (0.0, 0.5)
    ]
    for cell in cells:  # the run's own recipe (lr 0.02, distill 0.5) rebuilds each point
        if (cell["lr"], cell["distill"]) == (0.02, 0.5):
            assert cell["val_accuracy"] == cell["in_run"], cell["key"]
    assert "| lr 0.1, distill 0.5 |" in (out / "recipe.md").read_text()

    cf.main(["channels", "--out", str(out), "--work", str(work)])
    table = [x for x in (out / "channels.md").read_text().splitlines() if x.startswith("| ")]
    assert len(table) == 1 + 1 + 4 * 3 * 2  # header, base, every method's point
    widths = [int(c) for c in table[1].split("|")[-2].split()]
    assert widths and all(c > 0 for c in widths)


@pytest.mark.slow
def test_smoke_overhead_and_selection_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "fashion"
    make_fashion(folder, train_n=300, test_n=60)
    common = ["--smoke", "--data", f"fashion-mnist:{folder}", "--out", str(tmp_path / "out")]
    common += ["--work", str(tmp_path / "work")]
    cf.main(
        [
            "overhead",
            "--sizes",
            "16",
            "28",
            "--base-widths",
            "0.5",
            "--archs",
            "mobilenet_v1",
            *common,
        ]
    )
    rows = json.loads((tmp_path / "out" / "overhead.json").read_text())["rows"]
    assert [(r["size"], r["target"]) for r in rows] == [
        (16, "macs"),
        (16, "params"),
        (28, "macs"),
        (28, "params"),
    ]
    assert all(0 < r["floor_ratio"] < 1 for r in rows)
    cf.main(["selection", "--holdouts", "2", "3", "--short-steps", "1", *common])
    result = json.loads((tmp_path / "out" / "selection.json").read_text())["rows"]
    assert [(r["holdout_per_class"], r["short_steps"]) for r in result] == [(2, 1), (3, 1)]
    assert all(r["proposals"] >= 3 and len(r["val"]) == r["proposals"] for r in result)
    run = tmp_path / "work" / "selection" / "macs_s0"  # the one-iteration run made above

    def refuse(*args, **kwargs):
        raise AssertionError("a base network was trained for a study of a run's own networks")

    monkeypatch.setattr(cf, "build_model", refuse)
    elsewhere = [*common[:-1], str(tmp_path / "empty_work")]  # no base network there
    cf.main(["selection", "--holdouts", "2", "--short-steps", "1", "--run", str(run), *elsewhere])
    again = json.loads((tmp_path / "out" / "selection.json").read_text())["rows"]
    assert again[0]["iteration"] == 1 and again[0]["proposals"] == result[0]["proposals"]
