"""The long fine-tune's recipe: does a higher peak learning rate, or distillation from the base
network, recover inherited weights?

    python -m benchmarks.compare_fmnist recipe --targets ort --lrs 0.03 0.1 [--distills 0 0.5]

For one seed of the comparison (its ``points.json`` and work folder), each method's network of a
budget *before* its long fine-tune, rebuilt exactly as the run built it (netadapt: its family's
iteration; multiplier: its network trained from scratch; uniform: the base pruned by its keep
ratio), is long fine-tuned for the run's steps at each peak lr and distillation weight, and
scored on the 10,000 test images. The comparison fine-tunes every method at 0.01; uniform
pruning (the multiplier's architecture with inherited weights) trailing the multiplier at every
point says the inherited weights are not recovered at that rate. Training only: nothing is
timed.

Each cell is saved as ``OUT/recipe/<key>_lr<lr>_d<distill>.json`` when done and skipped on a
rerun; every run writes ``recipe.md`` and ``recipe.json`` from all of them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import onnx

from benchmarks.compare import family_networks
from benchmarks.fmnist_run import ArchSeedRun
from benchmarks.fmnist_setup import Setup, Store, commands_line, commands_so_far
from onnx_netadapt.evaluate import accuracy
from onnx_netadapt.graph.save import save_json, save_text

logger = logging.getLogger("compare_fmnist")

STUDIED = ("netadapt", "multiplier", "uniform")


def starting_network(run: ArchSeedRun, point: dict) -> tuple[onnx.ModelProto, int]:
    """``point``'s network before its long fine-tune, and that fine-tune's steps."""
    if point["method"] == "netadapt":
        family = family_networks(run.folder / f"na_{point['target']}")
        (record,) = [r for r in family if r["iteration"] == point["iteration"]]
        return onnx.load(record["path"]), run.setup.long_steps
    extra = point["steps"] - run.base_steps
    if point["method"] == "multiplier":
        return run.multiplier_network(point["width"]), extra
    return run.uniform_network(point["ratio"]), extra


def recipe_cell(run: ArchSeedRun, point: dict, lr: float, distill: float, folder: Path) -> dict:
    """``point``'s network long fine-tuned at peak ``lr`` with a ``distill`` weight of
    distillation from the base (read from ``folder`` when done)."""
    path = folder / f"{point['key']}_lr{lr:g}_d{distill:g}.json"
    if path.exists():
        return json.loads(path.read_text())
    model, steps = starting_network(run, point)
    tuned = run.tune(model, steps, lr, distill)
    record = {
        "key": point["key"],
        "method": point["method"],
        "target": point["target"],
        "budget": point["budget"],
        "seed": run.seed,
        "lr": lr,
        "distill": distill,
        "steps": steps,
        "val_accuracy": accuracy(tuned, run.val),
        "in_run": point["val_accuracy"],
    }
    save_json(record, path)
    logger.info(
        "%s, lr %g, distill %g: val %.4f", point["key"], lr, distill, record["val_accuracy"]
    )
    return record


def run_recipe(
    arch: str,
    seed: int,
    targets: list[str],
    budgets: list[float],
    lrs: list[float],
    distills: list[float],
    setup: Setup,
    work: Path,
    out: Path,
) -> list[dict]:
    """Every missing cell of ``arch``/``seed`` for ``targets`` x ``budgets`` x methods x ``lrs``
    x ``distills``."""
    store = Store(out / "points.json", setup)
    points = [
        p
        for p in store.data["points"]
        if (p["arch"], p["seed"]) == (arch, seed)
        and p["method"] in STUDIED
        and p["target"] in targets
        and p["budget"] in budgets
    ]
    if not points:
        raise SystemExit(f"no points of {arch} seed {seed} for {targets} x {budgets} in {out}")
    run = ArchSeedRun(arch, seed, setup, work, store)
    folder = out / "recipe"
    return [recipe_cell(run, p, lr, d, folder) for p in points for lr in lrs for d in distills]


def _label(lr: float, distill: float) -> str:
    return f"lr {lr:g}" + (f", distill {distill:g}" if distill else "")


def recipe_report(out: Path, command: str) -> dict:
    """recipe.md and recipe.json under ``out`` from every cell saved there."""
    commands = commands_so_far(out / "recipe.json", command)
    cells = [json.loads(p.read_text()) for p in sorted((out / "recipe").glob("*.json"))]
    recipes = sorted({(c["lr"], c.get("distill", 0.0)) for c in cells})
    lines = [
        "# The long fine-tune's peak learning rate",
        "",
        commands_line(commands) + "Each method's network of a budget before its long fine-tune "
        "(as the comparison built it), fine-tuned for the comparison's steps at each peak lr "
        "(cosine schedule), some with a weight of distillation from the base network (the rest "
        "of the recipe unchanged); accuracy (%) on the 10,000 test "
        "images. 'in the run': the point's accuracy in the comparison, with its own recipe "
        "(peak lr 0.01 unless `--long-lr` was given; the same lr here gives the same weights).",
        "",
        "| seed | target | budget | method | steps | in the run | "
        + " | ".join(_label(*r) for r in recipes)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(recipes),
    ]
    rows = sorted(
        {(c["seed"], c["target"], c["budget"], c["method"], c["steps"]) for c in cells},
        key=lambda r: (r[0], r[1], -r[2], STUDIED.index(r[3])),
    )
    for seed, target, budget, method, steps in rows:
        mine = [
            c
            for c in cells
            if (c["seed"], c["target"], c["budget"], c["method"]) == (seed, target, budget, method)
        ]
        by_recipe = {(c["lr"], c.get("distill", 0.0)): c["val_accuracy"] for c in mine}
        accs = " | ".join(f"{100 * by_recipe[r]:.2f}" if r in by_recipe else "-" for r in recipes)
        run = f"{100 * mine[0]['in_run']:.2f}"
        lines.append(f"| {seed} | {target} | {budget:g} | {method} | {steps} | {run} | {accs} |")
    save_text("\n".join(lines) + "\n", out / "recipe.md")
    summary = {"commands": commands, "cells": cells}
    save_json(summary, out / "recipe.json")
    print("\n".join(lines))
    return summary
