"""benchmarks/fmnist_scratch.py: NetAdapt's architectures re-initialised for training from
scratch, and the report that sets them beside the comparison's methods; fmnist_recipe.py's
report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from benchmarks.fmnist_scratch import METHOD, reinitialise, scratch_report
from benchmarks.fmnist_setup import point_key
from onnx_netadapt.demo.build import export
from onnx_netadapt.demo.nets import make_net
from onnx_netadapt.finetune import to_torch
from onnx_netadapt.graph.load import load_model


@pytest.fixture(scope="module")
def converted() -> nn.Module:
    net = make_net("mobilenet_v1_lite", 0.25).eval()
    with torch.no_grad():  # as trained: untrained BatchNorms are all alike, and the exporter
        for bn in net.modules():  # would share their tensors through Identity nodes
            if isinstance(bn, nn.BatchNorm2d):
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.normal_()
                bn.running_mean.normal_()
                bn.running_var.uniform_(0.5, 2.0)
    model = load_model(export(net), {"image": (1, 1, 28, 28)}, fold=False).model
    return to_torch(model)


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}


def test_reinitialise_resets_every_weight_and_statistic(converted: nn.Module) -> None:
    with torch.no_grad():
        for value in converted.state_dict().values():
            if value.is_floating_point():
                value.fill_(7.0)  # "trained" values that must all go
    assert reinitialise(converted, seed=3) >= 5
    first = _state(converted)
    assert all(not torch.all(v == 7.0) for v in first.values()), "a tensor kept its value"
    stats = [k for k in first if k.endswith("running_var")]
    assert stats and all(torch.all(first[k] == 1.0) for k in stats)
    reinitialise(converted, seed=3)
    assert all(torch.equal(first[k], v) for k, v in _state(converted).items())
    reinitialise(converted, seed=4)
    weights = [k for k in first if k.endswith("weight") and first[k].dim() > 1]
    assert any(not torch.equal(first[k], _state(converted)[k]) for k in weights)


def test_reinitialise_refuses_a_parameter_it_cannot_reset() -> None:
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.gain = nn.Parameter(torch.ones(2))

    with pytest.raises(ValueError, match="gain"):
        reinitialise(Scaled(), seed=0)


def _point(method: str, target: str | None, budget: float, seed: int) -> dict:
    key = point_key(method, target, "net", budget, seed)
    return {"key": key, "arch": "net", "seed": seed, "method": method, "target": target}


def test_scratch_report_sets_each_budget_beside_the_methods(tmp_path: Path) -> None:
    points = []
    for seed, shift in ((0, 0.0), (1, 0.02)):
        for method, acc in (("netadapt", 0.90), ("multiplier", 0.92), ("uniform", 0.89)):
            point = _point(method, "ort", 0.5, seed)
            points.append({**point, "budget": 0.5, "val_accuracy": acc + shift})
        points.append({**_point("netadapt", "ort", 0.35, seed), "budget": 0.35})
        points[-1]["val_accuracy"] = 0.88
    (tmp_path / "points.json").write_text(json.dumps({"points": points}))
    (tmp_path / "scratch").mkdir()
    for seed, acc in ((0, 0.93), (1, 0.95)):
        twin = {**_point(METHOD, "ort", 0.5, seed), "budget": 0.5, "val_accuracy": acc}
        (tmp_path / "scratch" / f"{twin['key']}.json").write_text(json.dumps(twin))
    summary = scratch_report(tmp_path, "cmd")
    (row,) = summary["rows"]  # only the budget that has from-scratch points
    assert row["seeds"] == [0, 1] and row["budget"] == 0.5
    assert row[METHOD][0] == pytest.approx(0.94) and row["netadapt"][0] == pytest.approx(0.91)
    assert row["multiplier"][0] == pytest.approx(0.93) and row["uniform"][0] == pytest.approx(0.9)
    text = (tmp_path / "scratch.md").read_text()
    assert "| net | ort | 0.5 | [0, 1] | 91.00 ± 1.41 | 94.00 ± 1.41 | 93.00 ± 1.41 |" in text
    # a later run (another target, network or seed) adds its rows: both commands are named
    assert scratch_report(tmp_path, "cmd2")["commands"] == ["cmd", "cmd2"]
    assert "Commands: `cmd`; `cmd2`." in (tmp_path / "scratch.md").read_text()
    assert scratch_report(tmp_path, "cmd")["commands"] == ["cmd", "cmd2"]  # a rerun: no repeat


def test_a_report_written_before_the_commands_list_keeps_its_command(tmp_path: Path) -> None:
    from benchmarks.fmnist_setup import commands_so_far

    (tmp_path / "select.json").write_text(json.dumps({"command": "old"}))
    assert commands_so_far(tmp_path / "select.json", "new") == ["old", "new"]
    assert commands_so_far(tmp_path / "none.json", "new") == ["new"]


def test_scratch_report_leaves_a_method_out_when_a_seed_misses_it(tmp_path: Path) -> None:
    points = [{**_point("netadapt", "ort", 0.5, 0), "budget": 0.5, "val_accuracy": 0.9}]
    (tmp_path / "points.json").write_text(json.dumps({"points": points}))
    (tmp_path / "scratch").mkdir()
    twin = {**_point(METHOD, "ort", 0.5, 0), "budget": 0.5, "val_accuracy": 0.91}
    (tmp_path / "scratch" / "a.json").write_text(json.dumps(twin))
    (row,) = scratch_report(tmp_path, "cmd")["rows"]
    assert row["multiplier"] is None and row["netadapt"] == (0.9, 0.0)
    assert "| - |" in (tmp_path / "scratch.md").read_text()


def test_recipe_report_one_column_per_recipe(tmp_path: Path) -> None:
    from benchmarks.fmnist_recipe import recipe_report

    (tmp_path / "recipe").mkdir()
    cells = [
        ("multiplier", 0.03, 0.0, 0.925),
        ("netadapt", 0.03, 0.0, 0.921),
        ("netadapt", 0.01, 0.5, 0.924),
    ]
    for i, (method, lr, distill, acc) in enumerate(cells):
        cell = {"key": f"{method}_ort_net_0.5_s0", "method": method, "target": "ort"}
        cell |= {"budget": 0.5, "seed": 0, "lr": lr, "distill": distill, "steps": 1000}
        cell |= {"val_accuracy": acc, "in_run": 0.92}
        (tmp_path / "recipe" / f"{i}.json").write_text(json.dumps(cell))
    recipe_report(tmp_path, "cmd")
    lines = (tmp_path / "recipe.md").read_text().splitlines()
    assert any(x.endswith("| in the run | lr 0.01, distill 0.5 | lr 0.03 |") for x in lines)
    assert "| 0 | ort | 0.5 | netadapt | 1000 | 92.00 | 92.40 | 92.10 |" in lines
    assert "| 0 | ort | 0.5 | multiplier | 1000 | 92.00 | - | 92.50 |" in lines
