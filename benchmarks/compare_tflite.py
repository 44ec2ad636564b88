"""``python -m benchmarks.compare tflite``: NetAdapt guided by latency on tflite (host), and the
networks adapted for ort and for tflite measured on both runners (after ``run``, whose ort runs
it reuses; benchmarks/compare.py describes the method).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import onnx

from benchmarks.compare import (
    BASE_EPOCHS,
    LONG_STEPS,
    RESULTS,
    ROUNDS,
    SHORT_STEPS,
    long_finetune,
    netadapt_family,
    ort_ms,
    runner_ms,
    static,
)
from onnx_netadapt.data import load_data
from onnx_netadapt.data.builtin import load_builtin
from onnx_netadapt.demo.build import build_model
from onnx_netadapt.evaluate import accuracy
from onnx_netadapt.graph.save import save_json, save_text
from onnx_netadapt.measure.host import cpu_model_name
from onnx_netadapt.measure.metrics import parameter_count


def cmd_tflite(args: argparse.Namespace) -> None:
    """NetAdapt on tflite (host) for each architecture at one budget; measure both adapted
    networks on both runners (a network adapted for one target need not be best on the other)."""
    options = {"onnx2tf": str(args.onnx2tf)}
    results = []
    for arch in args.archs:
        folder = args.work / f"{arch}_s{args.seed}"
        results.append(tflite_cross(arch, args.seed, args.budget, folder, options))
        RESULTS.mkdir(parents=True, exist_ok=True)
        save_json({"cpu": cpu_model_name(), "runs": results}, RESULTS / "tflite_cross.json")
    lines = [
        f"# Adapted for ort vs adapted for tflite (host): seed {args.seed}, budget {args.budget}",
        "",
        "Command: `python -m benchmarks.compare tflite` (after `run`, whose ort runs it reuses). "
        "Each network gets the same training steps as in `run`. Latency: medians of "
        f"{ROUNDS} interleaved rounds, as ratios to the base network on the same runner "
        "(1 thread each; tflite = LiteRT with XNNPACK on this host, whole networks through "
        "onnx2tf). Validation accuracy on the 1,000 MNIST-5k validation images.",
        "",
        "| architecture | network | iterations | ort latency ratio | tflite latency ratio "
        "| val accuracy (%) |",
        "|---|---|---|---|---|---|",
    ]
    for run in results:
        for key, row in run["rows"].items():
            iterations = run["iterations"].get(key.removeprefix("adapted-for-"), "")
            lines.append(
                f"| {run['arch']} | {key} | {iterations} | {row['ort_ratio']:.3f} | "
                f"{row['tflite_ratio']:.3f} | {100 * row['val_accuracy']:.2f} |"
            )
    save_text("\n".join(lines) + "\n", RESULTS / "tflite_cross.md")
    print("\n".join(lines))


def tflite_cross(arch: str, seed: int, budget: float, folder: Path, options: dict) -> dict:
    """One architecture: NetAdapt for tflite, then both adapted networks on both runners."""
    base_path = folder / f"{arch}_w1.onnx"
    if not base_path.exists():
        base_path = Path(build_model(arch, 1.0, folder, epochs=BASE_EPOCHS, seed=seed)["path"])
    start = time.perf_counter()
    family = netadapt_family(base_path, "tflite", str(budget), seed, folder / "na_tflite", options)
    seconds = time.perf_counter() - start
    k_tfl = family[-1]["iteration"]
    ort_hist = json.loads((folder / "na_ort" / "history.json").read_text())["history"]
    k_ort = next(
        r["iteration"]
        for r in ort_hist
        if r["measured"]["latency"] <= budget * ort_hist[0]["measured"]["latency"]
    )
    data = load_data("mnist5k", (1, 1, 28, 28), holdout_per_class=30, seed=seed)
    _, val = load_builtin("mnist5k")
    extra = SHORT_STEPS * k_ort + LONG_STEPS
    models = {
        "base": static(base_path),
        "adapted-for-ort": long_finetune(
            onnx.load(folder / "na_ort" / ort_hist[k_ort]["network"]), LONG_STEPS, seed, data
        ),
        "adapted-for-tflite": long_finetune(
            onnx.load(family[-1]["path"]), max(0, extra - SHORT_STEPS * k_tfl), seed, data
        ),
    }
    ort = ort_ms(models)
    tfl = runner_ms("tflite", models, options)
    rows = {
        key: {
            "ort_ratio": ort[key] / ort["base"],
            "tflite_ratio": tfl[key] / tfl["base"],
            "ort_ms": ort[key],
            "tflite_ms": tfl[key],
            "val_accuracy": accuracy(model, val),
            "params": parameter_count(model),
        }
        for key, model in models.items()
    }
    return {
        "arch": arch,
        "seed": seed,
        "budget": budget,
        "iterations": {"ort": k_ort, "tflite": k_tfl},
        "tflite_adaptation_seconds": seconds,
        "rows": rows,
    }
