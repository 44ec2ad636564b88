"""Benchmark of the embedded default (the README's first command), with side-by-side figures.

    python -m benchmarks.adapt_default [--work /tmp/adapt_default] [--rounds 7]

1. Runs ``python examples/adapt_demo/run.py --out WORK --fresh`` exactly as the README does
   (trains the MobileNetV1-style network on MNIST-5k if needed, adapts it to half its ORT
   latency) and times it.
2. Re-measures the original and the adapted network side by side on ``ort`` (1 thread),
   interleaved over ``--rounds`` rounds, and reports medians and their ratio: a lone absolute
   time on a shared machine means little.
3. Writes benchmarks/results/adapt_default/: summary.md, summary.json, and the run's
   history.json, report.md and plots.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from onnx_netadapt.graph.load import load_model
from onnx_netadapt.graph.save import save_json, save_text
from onnx_netadapt.measure.host import cpu_model_name
from onnx_netadapt.measure.interleave import interleaved_medians
from onnx_netadapt.measure.registry import make_runner

RESULTS = Path(__file__).parent / "results" / "adapt_default"
REPO = Path(__file__).resolve().parents[1]


def side_by_side(paths: dict[str, Path], rounds: int) -> dict[str, list[float]]:
    """Interleaved whole-network medians (ms) of each model, one list per model."""
    # adapted.onnx keeps the original's dynamic batch: measure both at batch 1
    shape = {"image": (1, 1, 28, 28)}
    models = {k: load_model(p, shape, fold=False).model for k, p in paths.items()}
    with make_runner("ort", 1) as runner:
        return interleaved_medians(runner, models, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/adapt_default"))
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    start = time.perf_counter()
    demo = [sys.executable, str(REPO / "examples/adapt_demo/run.py"), "--out", str(args.work)]
    exit_code = subprocess.run([*demo, "--fresh"], check=False).returncode
    wall = time.perf_counter() - start
    run = args.work / "run"
    state = json.loads((run / "state.json").read_text())
    summary = state["summary"]
    original = run / state["history"][0]["network"]
    samples = side_by_side({"original": original, "adapted": run / "adapted.onnx"}, args.rounds)
    build = json.loads(next(args.work.glob("*.json")).read_text())
    result = {
        "command": "python examples/adapt_demo/run.py --out WORK --fresh",
        "cpu": cpu_model_name(),
        "wall_seconds_including_training": wall,
        "model_training_seconds": build.get("train_seconds"),
        "status": summary["status"],
        "exit_code": exit_code,
        "budgets_met": summary["budgets_met"],
        "confirmations": state.get("confirmations", []),
        "final_spread": summary["final_spread"]["latency"],
        "iterations": summary["iterations"],
        "budget_ratio": 0.5,
        **run_figures(state, samples, args.rounds),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    save_json(result, RESULTS / "summary.json")
    for name in ("history.json", "report.md", "accuracy_vs_latency.png", "channels.png"):
        shutil.copy(run / name, RESULTS / name)
    save_text(render(result), RESULTS / "summary.md")
    print(render(result))


def run_figures(state: dict, samples: dict[str, list[float]], rounds: int) -> dict:
    """The run's latencies (in the run and side by side), accuracy, time and measurements."""
    summary = state["summary"]
    med = {k: statistics.median(v) for k, v in samples.items()}
    per_iteration = [r["seconds"]["total"] for r in state["history"][1:]]
    return {
        "in_run": {
            "original_ms": summary["original"]["latency"],
            "final_ms": summary["final"]["latency"],
            "limit_ms": summary["limits"]["latency"],
        },
        "side_by_side": {
            "rounds": rounds,
            "original_ms_median": med["original"],
            "adapted_ms_median": med["adapted"],
            "ratio": med["adapted"] / med["original"],
            "samples": samples,
        },
        "val_accuracy": summary["val_accuracy"],
        "seconds": {
            "adaptation_total": summary["seconds_total"],
            "per_iteration_median": statistics.median(per_iteration),
            "per_iteration_max": max(per_iteration),
            "long_finetune": summary["long_finetune_seconds"],
        },
        "measurements": {
            "table_entries_measured": summary["table_measurements"],
            "table_seconds": summary.get("table_seconds"),
            "floor_ratio": {
                k: v / summary["original"][k] for k, v in (state.get("floor") or {}).items()
            },
            "whole_network": summary["network_measurements"],
        },
    }


def render(r: dict) -> str:
    """summary.md."""
    s, va, sec = r["side_by_side"], r["val_accuracy"], r["seconds"]
    return "\n".join(
        [
            "# Embedded default: MobileNetV1-style on MNIST-5k, adapted to 0.5x ORT latency",
            "",
            f"Command: `{r['command']}` (CPU: {r['cpu']}; ORT 1 thread).",
            "",
            f"- Status: {r['status']} after {r['iterations']} iterations (exit code "
            f"{r['exit_code']}; budgets met: {r['budgets_met']}).",
            f"- Confirmation before stopping ({r['final_spread']['rounds']} interleaved rounds "
            f"against the original): {r['final_spread']['value']:.4f} ms, p10-p90 "
            f"{r['final_spread']['p10']:.4f}-{r['final_spread']['p90']:.4f} ms; "
            f"{sum(not c['meets'] for c in r['confirmations'])} earlier confirmation(s) missed "
            "and the loop went on.",
            f"- Latency measured in the run: {r['in_run']['original_ms']:.4f} ms -> "
            f"{r['in_run']['final_ms']:.4f} ms (budget {r['in_run']['limit_ms']:.4f} ms).",
            f"- Side by side afterwards ({s['rounds']} interleaved rounds, medians): original "
            f"{s['original_ms_median']:.4f} ms, adapted {s['adapted_ms_median']:.4f} ms, "
            f"ratio **{s['ratio']:.3f}**.",
            f"- Validation accuracy (1000 MNIST-5k images never used for training or picking): "
            f"{100 * va['original']:.2f}% -> {100 * va['adapted']:.2f}% "
            f"({100 * va['before_long_finetune']:.2f}% before the long-term fine-tune).",
            f"- Time: adaptation {sec['adaptation_total']:.0f} s in total; per iteration median "
            f"{sec['per_iteration_median']:.1f} s, max {sec['per_iteration_max']:.1f} s; long "
            f"fine-tune {sec['long_finetune']:.1f} s; whole command including training the "
            f"model {r['wall_seconds_including_training']:.0f} s.",
            f"- Latency measurements: {r['measurements']['table_entries_measured']} layer "
            f"entries of the latency table (in-context kernel entries: the default estimator "
            f"on ort) in {r['measurements']['table_seconds'] or 0:.1f} s, "
            f"{r['measurements']['whole_network']} whole-network measurements (each the median "
            "of 3 rounds). The smallest network pruning can reach measured "
            f"{r['measurements']['floor_ratio'].get('latency', float('nan')):.3f} of the original.",
            "",
            "Per-iteration details: [report.md](report.md), [history.json](history.json).",
            "",
            "![accuracy vs latency](accuracy_vs_latency.png)",
            "",
        ]
    )


if __name__ == "__main__":
    main()
