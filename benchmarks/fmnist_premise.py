"""The premise of the Fashion-MNIST comparison: does the width multiplier's accuracy fall?

    python -m benchmarks.fmnist_premise [--size 56] [--widths 1 0.5 ...] [--seeds 0 1] [--epochs 2]

The demo's MobileNetV1-style network (onnx_netadapt/demo/nets.py) at each width multiplier is
trained from scratch on Fashion-MNIST's 60,000 training images (resized to SIZE x SIZE; the demo's
recipe, onnx_netadapt/demo/build.py) and scored on the 10,000 test images. Each (width, seed)
point is saved as it finishes (a rerun skips it). The comparison can only separate the methods if
the curve falls by clearly more than the seed spread over the budgets' range of widths.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from onnx_netadapt.demo.build import build_model
from onnx_netadapt.demo.nets import ARCHS
from onnx_netadapt.graph.save import save_json, save_text
from onnx_netadapt.measure.host import cpu_model_name

REPO = Path(__file__).resolve().parents[1]

logger = logging.getLogger("fmnist_premise")

RESULTS = REPO / "benchmarks" / "results" / "compare_fmnist"
WIDTHS = (1.0, 0.5, 0.25, 0.125, 0.75, 0.35)  # the ARCHITECTURE.md quick check's first


def data_spec(size: int) -> str:
    """The builtin --data spec of Fashion-MNIST at ``size`` x ``size``."""
    return "fashion-mnist" if size == 28 else f"fashion-mnist@{size}x{size}"


def run_points(
    arch: str,
    size: int,
    widths: list[float],
    seeds: list[int],
    epochs: int,
    work: Path,
    path: Path,
    limit: int | None = None,
    threads: int | None = None,
) -> dict:
    """Train every missing (width, seed) point; each is saved to ``path`` as it finishes."""
    command = "python -m benchmarks.fmnist_premise " + " ".join(sys.argv[1:])
    saved = _load_points(path, command)
    done = {(p["arch"], p["size"], p["width"], p["seed"], p["epochs"]) for p in saved["points"]}
    for width in widths:
        for seed in seeds:
            if (arch, size, width, seed, epochs) in done:
                continue
            start = time.perf_counter()
            record = build_model(
                arch,
                width,
                work / f"{arch}_{size}_s{seed}",
                epochs=epochs,
                seed=seed,
                data=data_spec(size),
                limit=limit,
                threads=threads,
            )
            saved = _load_points(path, command)  # another process may have saved meanwhile
            saved["points"].append(
                {
                    "arch": arch,
                    "size": size,
                    "width": width,
                    "seed": seed,
                    "epochs": epochs,
                    "train_examples": record["train_examples"],
                    "val_accuracy": record["val_accuracy"],
                    "params": record["params"],
                    "seconds": round(time.perf_counter() - start, 1),
                }
            )
            saved["cpu"] = cpu_model_name()
            save_json(saved, path)
            logger.info("width %g seed %d: %.4f", width, seed, record["val_accuracy"])
    return saved


def _load_points(path: Path, command: str) -> dict:
    """The points saved in ``path`` (none yet: empty), with ``command`` among its commands."""
    saved = json.loads(path.read_text()) if path.exists() else {"points": []}
    saved["commands"] = sorted({*saved.get("commands", []), command})
    return saved


def summarise(points: list[dict]) -> dict:
    """Per width: mean, sd and count over seeds; for each base width w whose half was trained
    (the smallest budget, 0.35 of the latency, needs about half the width where the network is
    compute-bound), the fall from w to w/2, the seed spread (largest sd of the two) and whether
    the fall exceeds 2 spreads."""
    rows = {}
    for width in sorted({p["width"] for p in points}, reverse=True):
        accs = [p["val_accuracy"] for p in points if p["width"] == width]
        rows[width] = {
            "mean": float(np.mean(accs)),
            "sd": float(np.std(accs, ddof=1)) if len(accs) > 1 else None,
            "seeds": len(accs),
        }
    out: dict = {"widths": {f"{w:g}": r for w, r in rows.items()}, "ranges": {}}
    for width in rows:
        half = width / 2
        if half not in rows:
            continue
        sds = [rows[w]["sd"] for w in (width, half) if rows[w]["sd"] is not None]
        fall = rows[width]["mean"] - rows[half]["mean"]
        spread = max(sds) if len(sds) == 2 else None
        out["ranges"][f"{width:g}->{half:g}"] = {
            "fall": fall,
            "seed_sd": spread,
            "fall_over_sd": fall / spread if spread else None,
            "clearly_falls": bool(spread is not None and fall > 2 * spread),
        }
    return out


def report(saved: dict, out: Path) -> str:
    """premise.md and premise.json under ``out``; the markdown text."""
    lines = [
        "# Premise: the width multiplier's accuracy on Fashion-MNIST",
        "",
        f"Commands: {', '.join(f'`{c}`' for c in saved.get('commands', []))} (CPU: "
        f"{saved.get('cpu', '?')}). Networks of onnx_netadapt/demo/nets.py trained from "
        "scratch with the demo's recipe "
        "(onnx_netadapt/demo/build.py) on the first N of the 60,000 training images (1 torch "
        "thread), scored on the 10,000 test images (ONNX Runtime). Mean ± sd over seeds.",
        "",
    ]
    summary = {}
    for (arch, size, epochs), sel in _groups(saved["points"]).items():
        s = summary[f"{arch}@{size}x{size},{epochs:g}ep"] = summarise(sel)
        lines += [
            f"## {arch}, input {size}x{size}, {epochs:g} epochs on N = "
            f"{sel[0]['train_examples']:,} images",
            "",
            "| width | val accuracy (%) | seeds | params | wall s (shared, loaded CPU) |",
            "|---|---|---|---|---|",
        ]
        for width, row in s["widths"].items():
            ws = [p for p in sel if f"{p['width']:g}" == width]
            sd = "" if row["sd"] is None else f" ± {100 * row['sd']:.2f}"
            lines.append(
                f"| {width} | {100 * row['mean']:.2f}{sd} | {row['seeds']} | "
                f"{ws[0]['params']:,} | {np.mean([p['seconds'] for p in ws]):.0f} |"
            )
        lines += ["", "| base width -> half | fall (pts) | seed sd (pts) | fall / sd | clear |"]
        lines.append("|---|---|---|---|---|")
        for name, r in s["ranges"].items():
            sd = "?" if r["seed_sd"] is None else f"{100 * r['seed_sd']:.2f}"
            ratio = "?" if r["fall_over_sd"] is None else f"{r['fall_over_sd']:.1f}"
            lines.append(
                f"| {name} | {100 * r['fall']:.2f} | {sd} | {ratio} | "
                f"{'yes' if r['clearly_falls'] else 'no'} |"
            )
        lines.append("")
    save_json(
        {"summary": summary, **saved},
        out / "premise.json",
    )
    text = "\n".join(lines)
    save_text(text, out / "premise.md")
    return text


def _groups(points: list[dict]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for p in points:
        groups.setdefault((p["arch"], p["size"], p["epochs"]), []).append(p)
    return groups


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mobilenet_v1", choices=sorted(ARCHS))
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--widths", nargs="+", type=float, default=list(WIDTHS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="train on this many images")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default all)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/compare_fmnist"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    path = args.out / "premise_points.json"
    if args.report_only:
        saved = json.loads(path.read_text())
    else:
        saved = run_points(
            args.arch,
            args.size,
            args.widths,
            args.seeds,
            args.epochs,
            args.work / "premise",
            path,
            args.limit,
            args.threads,
        )
    print(report(saved, args.out))


if __name__ == "__main__":
    main()
