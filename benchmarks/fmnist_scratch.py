"""From scratch: NetAdapt's final architectures trained from random weights with the width
multiplier's own recipe, to tell whether the architecture NetAdapt found or the weights it
inherits explain its gap to the multiplier (results/compare_fmnist/README.md).

    python -m benchmarks.compare_fmnist scratch --archs mobilenet_v1_lite --seeds 0 --targets ort

For every netadapt point of the comparison (``points.json``) of the given architectures, seeds
and targets: its final network's architecture, every weight re-initialised as the demo's
networks are (torch's defaults, seeded), trained for the base epochs with the base recipe
(``demo.build.fit``, as the multiplier's networks are), then long fine-tuned for the same extra
steps as the multiplier at that budget. So it has exactly the multiplier's training, on
NetAdapt's architecture. Training only: nothing is timed, and it may share the machine.

Each point is saved as ``OUT/scratch/<key>.json`` when it finishes (runs on other targets, in
parallel, write other files) and skipped on a rerun; every run then writes ``scratch.md`` and
``scratch.json`` from all of them.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from benchmarks.compare import static
from benchmarks.compare_report import _mean_sd
from benchmarks.fmnist_run import ArchSeedRun
from benchmarks.fmnist_setup import Setup, Store, commands_line, commands_so_far, point_key
from onnx_netadapt.data.builtin import load_builtin
from onnx_netadapt.demo.build import fit
from onnx_netadapt.evaluate import accuracy
from onnx_netadapt.finetune import to_torch
from onnx_netadapt.finetune.writeback import write_back
from onnx_netadapt.graph.save import save_json, save_model, save_text

logger = logging.getLogger("compare_fmnist")

METHOD = "netadapt-scratch"
COMPARED = ("netadapt", METHOD, "multiplier", "uniform")


def reinitialise(module: nn.Module, seed: int) -> int:
    """Every parameter and BatchNorm statistic of ``module`` reset to torch's default
    initialisation (seeded); the number of submodules reset.

    Raises:
        ValueError: a parameter whose submodule has no ``reset_parameters`` (it would keep its
            trained value, and the network would not start from scratch).
    """
    torch.manual_seed(seed)
    reset, covered = 0, set()
    for sub in module.modules():
        if hasattr(sub, "reset_parameters") and sub is not module:
            sub.reset_parameters()
            covered |= {id(p) for p in sub.parameters(recurse=False)}
            reset += 1
    left = [name for name, p in module.named_parameters() if id(p) not in covered]
    if left:
        raise ValueError(f"parameters without a default initialisation: {', '.join(left)}")
    return reset


def train_from_scratch(
    model: onnx.ModelProto, setup: Setup, seed: int
) -> tuple[onnx.ModelProto, float]:
    """``model``'s architecture trained from random weights with the base recipe (the
    multiplier's); (the trained model, training seconds)."""
    module = to_torch(model)
    reinitialise(module, seed)
    train, _ = load_builtin(setup.spec)
    if setup.limit is not None:
        train = train.subset(np.arange(min(setup.limit, len(train))))
    start = time.perf_counter()
    fit(module, train, setup.epochs, batch_size=64, lr=0.1, seed=seed)
    seconds = time.perf_counter() - start
    module.eval()
    return write_back(model, module), seconds


def scratch_point(run: ArchSeedRun, point: dict, folder: Path) -> dict:
    """The from-scratch twin of the netadapt ``point`` (stored in ``folder``, or read from
    there when it already ran)."""
    key = point_key(METHOD, point["target"], run.arch, point["budget"], run.seed)
    path = folder / f"{key}.json"
    if path.exists():
        return json.loads(path.read_text())
    final = run.folder / "final"
    model = static(final / f"{point['key']}.onnx", run.setup.shape)
    trained, seconds = train_from_scratch(model, run.setup, run.seed)
    extra = run.extra(point["iteration"])
    tuned = run.tune(trained, extra)
    save_model(tuned, final / f"{key}.onnx")
    record = {
        "key": key,
        "arch": run.arch,
        "seed": run.seed,
        "method": METHOD,
        "target": point["target"],
        "budget": point["budget"],
        "iteration": point["iteration"],
        "architecture_of": point["key"],
        "val_accuracy": accuracy(tuned, run.val),
        "steps": run.base_steps + extra,
        "train_seconds": round(seconds, 1),
    }
    save_json(record, path)
    logger.info("%s: val %.4f", key, record["val_accuracy"])
    return record


def run_scratch(
    archs: list[str] | None,
    seeds: list[int],
    targets: list[str],
    setup: Setup,
    work: Path,
    out: Path,
) -> list[dict]:
    """Every missing from-scratch point of ``archs`` (None: those the comparison has points
    of) x ``seeds`` x ``targets`` (the comparison in ``out`` and ``work`` was run with
    ``setup``)."""
    store = Store(out / "points.json", setup)
    records = []
    for arch in archs or store.archs():
        for seed in seeds:
            mine = [
                p
                for p in store.data["points"]
                if p["method"] == "netadapt"
                and p["arch"] == arch
                and p["seed"] == seed
                and p["target"] in targets
            ]
            if not mine:
                raise SystemExit(
                    f"no netadapt points of {arch} seed {seed} on {', '.join(targets)} in "
                    f"{out / 'points.json'}: run `compare_fmnist run` for them first"
                )
            run = ArchSeedRun(arch, seed, setup, work, store)
            records += [scratch_point(run, p, out / "scratch") for p in mine]
    return records


def scratch_report(out: Path, command: str) -> dict:
    """scratch.md and scratch.json under ``out``: per target and budget, the accuracy (mean and
    sd over seeds) of netadapt, its architecture from scratch, the multiplier and uniform."""
    commands = commands_so_far(out / "scratch.json", command)
    data = json.loads((out / "points.json").read_text())
    scratch = [json.loads(p.read_text()) for p in sorted((out / "scratch").glob("*.json"))]
    points = data["points"] + scratch
    rows = []
    for arch in sorted({p["arch"] for p in scratch}):
        for target in sorted({p["target"] for p in scratch if p["arch"] == arch}):
            for budget in sorted({p["budget"] for p in scratch}, reverse=True):
                seeds = sorted(
                    p["seed"]
                    for p in scratch
                    if (p["arch"], p["target"], p["budget"]) == (arch, target, budget)
                )
                row = {"arch": arch, "target": target, "budget": budget, "seeds": seeds}
                for method in COMPARED:
                    accs = [
                        p["val_accuracy"]
                        for p in points
                        if (p["arch"], p["method"], p.get("target"), p.get("budget"))
                        == (arch, method, target, budget)
                        and p["seed"] in seeds
                    ]
                    row[method] = _mean_sd(accs) if len(accs) == len(seeds) else None
                rows.append(row)
    lines = [
        "# NetAdapt's architectures trained from scratch",
        "",
        commands_line(commands)
        + "Each netadapt network's architecture, re-initialised and trained "
        "with the multiplier's recipe (base epochs from scratch, then the same extra steps): "
        "same steps and latency as netadapt's point (same architecture), same training as the "
        "multiplier's. Accuracy (%) on the 10,000 test images, mean ± sd over the seeds listed.",
        "",
        "| network | target | budget | seeds | netadapt (inherited weights) | netadapt's "
        "architecture, from scratch | multiplier | uniform |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [
            "-" if row[m] is None else f"{100 * row[m][0]:.2f} ± {100 * row[m][1]:.2f}"
            for m in COMPARED
        ]
        lines.append(
            f"| {row['arch']} | {row['target']} | {row['budget']:g} | {row['seeds']} | "
            + " | ".join(cells)
            + " |"
        )
    save_text("\n".join(lines) + "\n", out / "scratch.md")
    summary = {"commands": commands, "rows": rows, "points": scratch}
    save_json(summary, out / "scratch.json")
    print("\n".join(lines))
    return summary
