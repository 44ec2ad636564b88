"""Two checks behind the Fashion-MNIST comparison (``python -m benchmarks.compare_fmnist``):

- ``overhead``: for each candidate input size, the latency of the smallest network pruning can
  reach (every group at 8 channels: the floor) over the base network's, per target. Where the
  floor is a large share of the base, per-operator overhead dominates and latency budgets of
  0.35 are out of reach or meaningless: pick a size where it is small.
- ``selection``: is the holdout accuracy that picks a proposal more than noise? One iteration's
  proposals are fine-tuned for each short fine-tune length and scored on holdout sets of each
  size, and on the 10,000 validation images; reports the rank correlation between holdout and
  validation accuracy, and the validation gain of the holdout's pick over a random pick against
  the holdout's standard error.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import tempfile
from pathlib import Path

import numpy as np
import onnx
from scipy.stats import spearmanr

from benchmarks.compare import export, make_net, runner_ms, static
from onnx_netadapt.adapt import AdaptConfig, adapt_model, parse_budget
from onnx_netadapt.adapt.proposals import (
    EvalContext,
    ProposalJob,
    TrainPlan,
    evaluate_proposal,
    proposal_seed,
)
from onnx_netadapt.adapt.search import minimal_network
from onnx_netadapt.adapt.status import IterationLimitError
from onnx_netadapt.channels.analysis import analyse
from onnx_netadapt.data import load_data
from onnx_netadapt.data.builtin import load_builtin
from onnx_netadapt.evaluate import accuracy
from onnx_netadapt.graph.load import load_model
from onnx_netadapt.graph.save import save_json, save_model, save_text
from onnx_netadapt.measure.host import cpu_model_name
from onnx_netadapt.measure.metrics import model_macs
from onnx_netadapt.prune.apply import prune

logger = logging.getLogger("fmnist_checks")


# -- overhead -------------------------------------------------------------------------------
def overhead(
    archs: list[str],
    sizes: list[int],
    targets: list[str],
    base_widths: list[float],
    options: dict,
    rounds: int,
    out: Path,
) -> list[dict]:
    """floor/base latency per (arch, base width, size, target); overhead.json and overhead.md
    in ``out``."""
    rows = []
    for arch, width, size in itertools.product(archs, base_widths, sizes):
        shape = {"image": [1, 1, size, size]}
        base = static(export(make_net(arch, width).eval(), (size, size)), shape)
        floor = minimal_network(analyse(load_model(base, fold=False)), 8, False)
        for target in targets:
            ms = runner_ms(target, {"base": base, "floor": floor}, options.get(target), rounds)
            rows.append(
                {
                    "arch": arch,
                    "base_width": width,
                    "size": size,
                    "target": target,
                    "base_ms": ms["base"],
                    "floor_ms": ms["floor"],
                    "floor_ratio": ms["floor"] / ms["base"],
                    "base_mmacs": model_macs(base) / 1e6,
                    "floor_mmacs": model_macs(floor) / 1e6,
                    "nodes": len(base.graph.node),
                }
            )
            logger.info("%s", rows[-1])
    lines = [
        "# Per-operator overhead: the floor's latency over the base's, per input size",
        "",
        f"Command: `python -m benchmarks.compare_fmnist overhead` (CPU: {cpu_model_name()}); "
        "floor = every prunable group at 8 channels; medians of "
        f"{rounds} interleaved rounds, 1 thread. Budgets down to 0.35 need a floor ratio well "
        "below 0.35; a compute-bound size has the floor's latency close to its MACs' share.",
        "",
        "| arch | base width | size | target | base MMACs | base ms | floor ms | floor / base "
        "| floor / base MACs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['arch']} | {r['base_width']:g} | {r['size']} | {r['target']} | "
            f"{r['base_mmacs']:.1f} | {r['base_ms']:.4f} | "
            f"{r['floor_ms']:.4f} | {r['floor_ratio']:.3f} | "
            f"{r['floor_mmacs'] / r['base_mmacs']:.3f} |"
        )
    save_json({"cpu": cpu_model_name(), "rows": rows}, out / "overhead.json")
    save_text("\n".join(lines) + "\n", out / "overhead.md")
    print("\n".join(lines))
    return rows


# -- selection noise ------------------------------------------------------------------------
def first_proposals(base: Path, spec: str, settings: dict, target: str, seed: int, out: Path):
    """Iteration 1's proposals of a one-iteration NetAdapt run on ``target`` (cached in out)."""
    if not (out / "history.json").exists():
        config = AdaptConfig(
            target=target,
            budgets=[parse_budget("0.35")],
            data=spec,
            seed=seed,
            max_iterations=1,
            **{**settings, "short_steps": 1, "holdout_per_class": 5},
        )
        with contextlib.suppress(IterationLimitError):  # one iteration is all it is asked for
            adapt_model(base, config, out)
    history = json.loads((out / "history.json").read_text())["history"]
    return [p for p in history[1]["proposals"] if not p.get("error")]


def run_proposals(run: Path, iteration: int) -> tuple[Path, list[dict]]:
    """The network that iteration ``iteration`` of the adaptation in ``run`` started from, and
    that iteration's proposals (those that did not fail)."""
    history = json.loads((run / "history.json").read_text())["history"]
    records = {r["iteration"]: r for r in history}
    if iteration < 1 or iteration not in records:
        done = max(records)
        raise SystemExit(f"{run} has iterations 1 to {done}: choose --iteration among them")
    current = run / "iterations" / f"net_{iteration - 1:03d}.onnx"
    return current, [p for p in records[iteration]["proposals"] if not p.get("error")]


def selection_noise(
    base: Path | None,
    spec: str,
    shape: dict[str, list[int]],
    settings: dict,
    holdouts: list[int],
    short_steps: list[int],
    target: str,
    seed: int,
    work: Path,
    run: Path | None = None,
    iteration: int = 1,
) -> list[dict]:
    """One row per (holdout per class, short steps): rank correlation between holdout and
    validation accuracy over one iteration's proposals, and the pick's validation gain.

    Without ``run``: iteration 1 of a one-iteration run on ``target`` from ``base``. With
    ``run`` (the folder of an adaptation): its iteration ``iteration``, from the network that
    iteration started from (deeper iterations cut into a network already pruned).
    """
    if run is None and iteration != 1:
        raise SystemExit(f"--iteration {iteration} needs --run DIR (an adaptation's folder)")
    if run is None:
        current = base
        proposals = first_proposals(base, spec, settings, target, seed, work / f"{target}_s{seed}")
    else:
        current, proposals = run_proposals(run, iteration)
    model = static(current, shape)
    analysis = analyse(load_model(model, fold=False))
    width = {g.id: max(1, g.class_width) for g in analysis.groups}
    _, val = load_builtin(spec)
    rows = []
    for per_class in holdouts:
        data = load_data(spec, tuple(shape["image"]), holdout_per_class=per_class, seed=seed)
        for steps in short_steps:
            plan = TrainPlan(steps, 64, "sgd", settings["lr"], 0.0, 1)
            ctx = EvalContext(data, plan)
            hold, valid = [], []
            with tempfile.TemporaryDirectory() as tmp:
                for prop in proposals:
                    keep = {prop["group"]: prop["channels_after"] // width[prop["group"]]}
                    pruned = prune(analysis, keep, check=False).model
                    path = save_model(pruned, Path(tmp) / f"group_{prop['group']}.onnx")
                    job_seed = proposal_seed(seed, iteration, prop["producers"])
                    score = evaluate_proposal(ProposalJob(prop["group"], str(path), job_seed), ctx)
                    hold.append(score.holdout_accuracy)
                    valid.append(accuracy(onnx.load(path), val))
            rows.append(selection_row(per_class, steps, hold, valid, len(data.holdout)))
            rows[-1]["iteration"] = iteration
            logger.info("%s", rows[-1])
    return rows


def selection_row(
    per_class: int, steps: int, hold: list[float], valid: list[float], holdout_size: int
) -> dict:
    """The statistics of one (holdout size, short steps) setting."""
    hold_a, valid_a = np.asarray(hold), np.asarray(valid)
    pick = int(np.argmax(hold_a))
    p = float(hold_a.mean())
    rho = spearmanr(hold_a, valid_a).statistic if len(hold_a) > 2 else float("nan")
    return {
        "holdout_per_class": per_class,
        "short_steps": steps,
        "proposals": len(hold),
        "spearman": float(rho),
        "pick_gain": float(valid_a[pick] - valid_a.mean()),  # over a random pick
        "best_gain": float(valid_a.max() - valid_a.mean()),  # the oracle's
        "holdout_se": math.sqrt(max(p * (1 - p), 1e-12) / holdout_size),
        "holdout": hold,
        "val": valid,
    }


def selection_report(rows: list[dict], command: str, out: Path) -> str:
    """selection.json and selection.md in ``out``; the markdown."""
    iteration = rows[0].get("iteration", 1) if rows else 1
    lines = [
        "# Selection noise: holdout vs validation accuracy over one iteration's proposals",
        "",
        f"Command: `{command}` (CPU: {cpu_model_name()}). Each proposal of NetAdapt's "
        f"iteration {iteration} is fine-tuned for the given steps, scored on the holdout set "
        "and on the 10,000 validation images. pick gain = validation accuracy of the holdout's "
        "pick minus the mean over proposals (a random pick); best gain = the same for the "
        "validation's own best. Selection beats noise where the pick gain exceeds the "
        "holdout's SE.",
        "",
        "| holdout / class | short steps | proposals | Spearman | pick gain (pts) | "
        "best gain (pts) | holdout SE (pts) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['holdout_per_class']} | {r['short_steps']} | {r['proposals']} | "
            f"{r['spearman']:.2f} | {100 * r['pick_gain']:.2f} | {100 * r['best_gain']:.2f} | "
            f"{100 * r['holdout_se']:.2f} |"
        )
    save_json({"cpu": cpu_model_name(), "command": command, "rows": rows}, out / "selection.json")
    text = "\n".join(lines) + "\n"
    save_text(text, out / "selection.md")
    return text
