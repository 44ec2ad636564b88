"""How many table entries the full grid of the official NetAdapt code holds, against a lazy table.

The official NetAdapt code measures its look-up table up front: for every filter layer, every
multiple of ``step`` output channels up to the original times every multiple of ``step`` input
channels. A channel count that pruning cannot change (the image's channels, the classifier's
classes) stays fixed, and a depthwise conv has one count (its input and output channels are the
same channels). Equal layers share entries: the grid's size is its number of distinct
signatures. onnx-netadapt measures only the signatures an adaptation asks for.

    python -m benchmarks.table_grid [--history H] [--model M] [--fill]

``--fill`` also measures the full grid on ``ort`` (1 thread, the loop's settings) into a fresh
table and times it, against the time the adaptation spent filling its table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from onnx_netadapt import analyse, load_model
from onnx_netadapt.graph.load import LoadedModel
from onnx_netadapt.measure.kernels import kernel_table
from onnx_netadapt.measure.registry import make_runner
from onnx_netadapt.measure.signature import LayerSignature, model_signatures
from onnx_netadapt.measure.table import LatencyTable

REPO = Path(__file__).resolve().parents[1]
HISTORY = REPO / "benchmarks" / "results" / "adapt_default" / "history.json"
MODEL = Path("/tmp/adapt_default/mobilenet_v1_w1.onnx")


def _counts(channels: int, varies: bool, step: int) -> list[int]:
    if not varies:
        return [channels]
    return sorted({*range(step, channels + 1, step), channels})


def full_grid(loaded: LoadedModel, step: int = 8) -> set[LayerSignature]:
    """Distinct signatures of the full grid of ``loaded``'s filter layers."""
    analysis = analyse(loaded)
    varying = set().union(*(g.tensors for g in analysis.groups if g.prunable))
    nodes = {n.name: n for n in loaded.model.graph.node}
    grid: set[LayerSignature] = set()
    for name, sig in model_signatures(loaded).items():
        node = nodes[name]
        ins = _counts(sig.in_channels, node.input[0] in varying, step)
        outs = _counts(sig.out_channels, node.output[0] in varying, step)
        if sig.depthwise:
            grid.update(sig.with_channels(c, c) for c in ins)
        else:
            grid.update(sig.with_channels(i, o) for i in ins for o in outs)
    return grid


def fill_seconds(grid: set[LayerSignature], kernels: bool, target: str = "ort") -> float:
    """Seconds to measure every signature of ``grid`` into a fresh table on ``target``: as
    in-context kernel entries (what the "profile" estimator uses) or single-layer models."""
    with make_runner(target, 1) as runner, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "grid.json"
        if kernels:
            table, measurer = kernel_table(runner, path)
        else:
            table, measurer = LatencyTable(runner.fingerprint(), path), runner
        start = time.perf_counter()
        table.lookup(sorted(grid, key=lambda s: s.key()), measurer)  # type: ignore[arg-type]
        return time.perf_counter() - start


def adaptation_vs_grid(
    history: Path = HISTORY, model: Path = MODEL, step: int = 8, fill: bool = False
) -> dict:
    """Entries an adaptation measured (its history.json) against the full grid of its model;
    with ``fill``, also the time to measure the full grid against the adaptation's."""
    data = json.loads(history.read_text())
    measured = data.get("summary", {}).get("table_measurements")
    if measured is None:
        measured = data["history"][-1]["table_measurements"]
    if not model.exists():
        build = [sys.executable, "examples/adapt_demo/build.py", "--out", str(model.parent)]
        subprocess.run(build, cwd=REPO, check=True)
    shapes = data.get("config", {}).get("input_shapes") or {}
    loaded = load_model(model, {k: tuple(v) for k, v in shapes.items()})
    signatures = full_grid(loaded, step)
    grid = len(signatures)
    seconds = data.get("summary", {}).get("table_seconds")
    timing = {"adaptation_fill_seconds": seconds} if seconds is not None else {}
    if fill:  # the kind of entries the adaptation measured
        kernels = data.get("config", {}).get("estimator", "constant") in ("auto", "profile")
        timing["full_grid_entry_kind"] = "kernel-in-context" if kernels else "single-layer"
        timing["full_grid_fill_seconds"] = fill_seconds(signatures, kernels)
    return {
        "model": str(model),
        "history": str(history.relative_to(REPO) if history.is_relative_to(REPO) else history),
        "input_shapes": shapes,
        "round_to": step,
        "filter_layers": len(model_signatures(loaded)),
        "full_grid_entries": grid,
        "adaptation_entries": int(measured),
        "ratio": grid / int(measured) if measured else float("nan"),
        **timing,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=Path, default=HISTORY)
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--step", type=int, default=8)
    parser.add_argument("--fill", action="store_true", help="measure and time the full grid")
    parser.add_argument("--out", type=Path, help="also write the result here (JSON)")
    args = parser.parse_args()
    result = adaptation_vs_grid(args.history, args.model, args.step, args.fill)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
