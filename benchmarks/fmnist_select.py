"""NetAdapt's proposal pick on the final accuracy: ``--select ratio`` (the least holdout accuracy
lost per unit of latency saved; MobileNetV3's and the official code's rule) against
``--select accuracy`` (the paper's, this project's default), on a finished comparison.

    python -m benchmarks.compare_fmnist select --seeds 0 [--targets ort tflite]

For every architecture, seed and target asked for: a NetAdapt run guided by the target's
measured latency from the comparison's own base network, with every setting of the comparison's
run but ``select="ratio"`` (folder ``WORK/<arch>_s<seed>/na_<target>_ratio``, resumable). At each
budget its first network measured under the budget gets the same long fine-tune as the
comparison's netadapt point (so ``short_steps x k + long_steps`` extra steps, k its own
iteration), is scored on the 10,000 test images and saved as ``OUT/select/<key>.json``
(skipped on a rerun). Then, per (arch, seed), the ratio runs' networks are measured side by side
on every target with that seed's base, netadapt and multiplier networks (interleaved rounds,
medians, ratios to the base of the same pass). Times latency: run it on a quiet machine.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import onnx

from benchmarks.compare import BUDGETS, netadapt_family, runner_ms
from benchmarks.compare_report import _mean_sd
from benchmarks.fmnist_run import ArchSeedRun, first_under
from benchmarks.fmnist_setup import Setup, Store, commands_line, commands_so_far, point_key
from onnx_netadapt.evaluate import accuracy
from onnx_netadapt.graph.save import save_json, save_model, save_text

logger = logging.getLogger("compare_fmnist")

METHOD = "netadapt-ratio"
COMPARED = ("netadapt", METHOD, "multiplier")  # measured side by side, in this order


def ratio_points(run: ArchSeedRun, target: str, folder: Path) -> list[dict]:
    """The ``--select ratio`` NetAdapt run on ``target`` and its point at every budget (stored
    in ``folder``, or read from there when done)."""
    setup = run.setup
    adaptation = run.folder / f"na_{target}_ratio"
    family = netadapt_family(
        run.base_path,
        target,
        str(min(BUDGETS)),
        run.seed,
        adaptation,
        setup.options.get(target),
        data=setup.spec,
        settings={**setup.adapt_settings(), "select": "ratio"},
    )
    records = []
    for budget, k in first_under(adaptation).items():
        key = point_key(METHOD, target, run.arch, budget, run.seed)
        path = folder / f"{key}.json"
        if not path.exists():
            tuned = run.tune(onnx.load(family[k]["path"]), setup.long_steps)
            save_model(tuned, run.folder / "final" / f"{key}.onnx")
            record = {
                "key": key,
                "arch": run.arch,
                "seed": run.seed,
                "method": METHOD,
                "target": target,
                "budget": budget,
                "iteration": k,
                "val_accuracy": accuracy(tuned, run.val),
                "steps": run.base_steps + run.extra(k),
            }
            save_json(record, path)
            logger.info("%s: val %.4f", key, record["val_accuracy"])
        records.append(json.loads(path.read_text()))
    return records


def measure_with_comparison(run: ArchSeedRun, mine: list[dict], folder: Path) -> dict:
    """``mine`` measured side by side on every target with the base and the comparison's
    netadapt and multiplier networks of the same arch and seed (``folder/measured_*.json``;
    measured again only when the set of networks changed)."""
    arch, seed = run.arch, run.seed
    base = point_key("base", None, arch, 1.0, seed)
    theirs = [
        p["key"]
        for p in run.store.data["points"]
        if (p["arch"], p["seed"]) == (arch, seed) and p["method"] in COMPARED
    ]
    keys = sorted({base, *theirs, *(p["key"] for p in mine)})
    path = folder / f"measured_{arch}_s{seed}.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    targets = list(run.setup.targets)
    if record.get("keys") != keys or not all(t in record for t in targets):
        final = run.folder / "final"
        models = {key: onnx.load(final / f"{key}.onnx") for key in keys}
        record = {"keys": keys, "base": base}
        for target in targets:
            ms = runner_ms(target, models, run.setup.options.get(target), run.setup.rounds)
            record[target] = {k: v / ms[base] for k, v in ms.items()}
        save_json(record, path)
    return record


def run_select(
    archs: list[str] | None,
    seeds: list[int],
    targets: list[str],
    setup: Setup,
    work: Path,
    out: Path,
) -> None:
    """Every missing ratio point of ``archs`` (None: those the comparison has points of) x
    ``seeds`` x ``targets`` and its side-by-side measurement (the comparison in ``out`` and
    ``work`` was run with ``setup``)."""
    store = Store(out / "points.json", setup)
    folder = out / "select"
    for arch in archs or store.archs():
        for seed in seeds:
            if not store.has(point_key("base", None, arch, 1.0, seed)):
                raise SystemExit(
                    f"no comparison points of {arch} seed {seed} in {out / 'points.json'}: "
                    "run `compare_fmnist run` for them first"
                )
            run = ArchSeedRun(arch, seed, setup, work, store)
            mine = [p for target in targets for p in ratio_points(run, target, folder)]
            measure_with_comparison(run, mine, folder)


def select_report(out: Path, command: str) -> dict:
    """select.md and select.json under ``out``: per target and budget, accuracy and measured
    latency ratio of both picks and the multiplier (mean over the seeds that have all three),
    and the ratio pick's accuracy gain over the accuracy pick per seed."""
    commands = commands_so_far(out / "select.json", command)
    folder = out / "select"
    comparison = json.loads((out / "points.json").read_text())["points"]
    mine = [json.loads(p.read_text()) for p in sorted(folder.glob(f"{METHOD}_*.json"))]
    points = {p["key"]: p for p in comparison + mine}
    rows = []
    for arch, target, budget in sorted(
        {(p["arch"], p["target"], p["budget"]) for p in mine}, key=lambda c: (c[0], c[1], -c[2])
    ):
        seeds = sorted(
            p["seed"]
            for p in mine
            if (p["arch"], p["target"], p["budget"]) == (arch, target, budget)
        )
        row: dict = {"arch": arch, "target": target, "budget": budget, "seeds": []}
        cells: dict[str, list[tuple[float, float | None]]] = {m: [] for m in COMPARED}
        for seed in seeds:
            keys = {m: point_key(m, target, arch, budget, seed) for m in COMPARED}
            if not all(k in points for k in keys.values()):
                continue
            ratios = _measured(out, arch, seed, target)
            row["seeds"].append(seed)
            for method, key in keys.items():
                cells[method].append((points[key]["val_accuracy"], ratios.get(key)))
        for method, values in cells.items():
            accs = [a for a, _ in values]
            lat = [r for _, r in values if r is not None]
            row[method] = {
                "accuracy": _mean_sd(accs) if accs else None,
                "latency_ratio": float(np.mean(lat)) if lat and len(lat) == len(values) else None,
                "iterations": [
                    points[point_key(method, target, arch, budget, s)].get("iteration")
                    for s in row["seeds"]
                ],
            }
        row["gain"] = [
            round(100 * (r[0] - a[0]), 2)
            for r, a in zip(cells[METHOD], cells["netadapt"], strict=True)
        ]
        rows.append(row)
    lines = [
        "# NetAdapt's pick: holdout accuracy against accuracy lost per latency saved",
        "",
        commands_line(commands) + "`netadapt` picks the proposal with the highest holdout accuracy "
        "(`--select accuracy`, the paper and this project's default); `netadapt-ratio` the least "
        "holdout accuracy lost per unit of estimated latency saved (`--select ratio`, the "
        "official code's default); everything else equal (same base, data, steps). Accuracy (%) "
        "on the 10,000 test images after the long fine-tune, mean ± sd over the seeds listed; "
        "latency: measured side by side in one pass per seed on the row's target, ratio to the "
        "base; it: the iteration each run stopped at for that budget (per seed).",
        "",
        "| network | target | budget | seeds | netadapt (accuracy pick) | it | netadapt-ratio | it "
        "| multiplier | ratio pick's gain per seed (points) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells_md = []
        for method in COMPARED:
            cell = row[method]
            acc = cell["accuracy"]
            text = "-" if acc is None else f"{100 * acc[0]:.2f} ± {100 * acc[1]:.2f}"
            if cell["latency_ratio"] is not None:
                text += f" ({cell['latency_ratio']:.3f})"
            cells_md.append(text)
            if method != "multiplier":
                cells_md.append(", ".join(str(i) for i in cell["iterations"]))
        lines.append(
            f"| {row['arch']} | {row['target']} | {row['budget']:g} | {row['seeds']} | "
            + " | ".join(cells_md)
            + f" | {', '.join(f'{g:+.2f}' for g in row['gain'])} |"
        )
    save_text("\n".join(lines) + "\n", out / "select.md")
    summary = {"commands": commands, "rows": rows, "points": mine}
    save_json(summary, out / "select.json")
    print("\n".join(lines))
    return summary


def _measured(out: Path, arch: str, seed: int, target: str) -> dict[str, float]:
    """The latency ratios of one (arch, seed)'s side-by-side pass on ``target`` ({} if none)."""
    path = out / "select" / f"measured_{arch}_s{seed}.json"
    return json.loads(path.read_text()).get(target, {}) if path.exists() else {}
