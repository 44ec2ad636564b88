"""Latency-table fidelity: estimated against measured latency of randomly pruned networks.

For MobileNetV1, MobileNetV2, ResNet-18 and EfficientNet-B0 (random weights, 224x224) and 20
random prunings of each (every prunable group keeps a random 25-100% of its channels, grid 8),
on each runner: calibrate the estimator on the original (whole-network measurement), then
compare estimate(variant) = sum of layer table entries + residual with measure(variant).
Also: the noise floor (the original measured repeatedly), table entries measured, and the time
it took.

    python -m benchmarks.latency_fidelity --runner ort --out benchmarks/results/latency_fidelity
    python -m benchmarks.latency_fidelity --runner tflite --onnx2tf /work/venvs/onnx2tf/bin/onnx2tf
    python -m benchmarks.latency_fidelity --report-only
"""

from __future__ import annotations

import argparse
import io
import json
import time
import warnings
from pathlib import Path

import numpy as np
import onnx

from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.measure.estimate import Estimator
from onnx_netadapt.measure.profile import make_runner
from onnx_netadapt.measure.stats import MeasureSettings
from onnx_netadapt.measure.table import LatencyTable

ARCHS = ("mobilenet_v1", "mobilenet_v2", "resnet18", "efficientnet_b0")
WHOLE = MeasureSettings(warmup=5, min_runs=20, max_runs=200, max_seconds=3.0, target_spread=0.03)
LAYER = MeasureSettings(warmup=3, min_runs=10, max_runs=100, max_seconds=0.5, target_spread=0.05)


def export(arch: str) -> onnx.ModelProto:
    """The architecture with random weights as ONNX (legacy exporter, opset 17)."""
    import torch

    from benchmarks.nets import MobileNetV1
    from benchmarks.zoo import import_torchvision

    torch.manual_seed(0)
    if arch == "mobilenet_v1":
        model = MobileNetV1()
    else:
        model = getattr(import_torchvision().models, arch)()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            torch.randn(1, 3, 224, 224),
            buffer,
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["logits"],
        )
    return onnx.load_from_string(buffer.getvalue())


def variants(model: onnx.ModelProto, count: int, seed: int) -> list[onnx.ModelProto]:
    """``count`` random prunings of ``model``."""
    analysis = analyse(load_model(model))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        keep = {}
        for g in analysis.groups:
            if g.prunable:
                step = max(1, 8 // g.class_width)
                n = round(rng.uniform(0.25, 1.0) * g.units / step) * step
                keep[g.id] = int(min(g.units, max(step, n)))
        out.append(prune(analysis, keep).model)
    return out


def run(runner_name: str, out: Path, count: int, options: dict) -> dict:
    """Fidelity of one runner over every architecture."""
    results = {"runner": runner_name, "architectures": {}}
    with make_runner(runner_name, threads=1, **options) as runner:
        runner.settings = LAYER
        table = LatencyTable(runner.fingerprint(), out / f"table_{runner_name}.json")
        results["fingerprint"] = runner.fingerprint()
        for arch in ARCHS:
            original = export(arch)
            loaded = load_model(original)
            estimator = Estimator(runner, table)
            start_measurements, start_time = table.measurements, table.measure_seconds
            runner.settings = WHOLE
            noise = [runner.measure(loaded.model).median_ms for _ in range(10)]
            calibration = estimator.calibrate(loaded)
            rows = []
            for i, variant in enumerate(variants(original, count, seed=1)):
                runner.settings = LAYER
                estimated = estimator.estimate(variant)
                runner.settings = WHOLE
                measured = runner.measure(variant).median_ms
                rows.append({"variant": i, "estimated_ms": estimated, "measured_ms": measured})
            results["architectures"][arch] = {
                "original_ms": calibration.measured_ms,
                "layers_sum_ms": calibration.layers_ms,
                "noise_ms": noise,
                "variants": rows,
                "table_measurements": table.measurements - start_measurements,
                "table_fill_seconds": table.measure_seconds - start_time,
            }
    (out / f"fidelity_{runner_name}.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


def metrics(rows: list[dict], noise: list[float]) -> dict:
    """Pearson r, mean and worst absolute percentage error, and the noise floor."""
    est = np.array([r["estimated_ms"] for r in rows])
    mea = np.array([r["measured_ms"] for r in rows])
    err = np.abs(est - mea) / mea
    noise = np.asarray(noise)
    return {
        "n": len(rows),
        "pearson_r": float(np.corrcoef(est, mea)[0, 1]) if len(rows) > 1 else float("nan"),
        "mape_pct": float(100 * err.mean()),
        "worst_pct": float(100 * err.max()),
        "noise_floor_pct": float(
            100 * np.mean(np.abs(noise - np.median(noise)) / np.median(noise))
        ),
        "noise_worst_pct": float(100 * np.max(np.abs(noise - np.median(noise)) / np.median(noise))),
    }


def report(out: Path) -> None:
    """Markdown table and scatter plot from every fidelity_*.json in ``out``."""
    lines = [
        "# Latency-table fidelity",
        "",
        "Generated by `python -m benchmarks.latency_fidelity` (commands in its docstring).",
        "Estimate = sum of single-layer table entries + residual calibrated on the original.",
        "",
        "| runner | architecture | variants | r | MAPE % | worst % | noise floor % "
        "| table entries measured | fill s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    points = {}
    for path in sorted(out.glob("fidelity_*.json")):
        data = json.loads(path.read_text())
        for arch, res in data["architectures"].items():
            m = metrics(res["variants"], res["noise_ms"])
            lines.append(
                f"| {data['runner']} | {arch} | {m['n']} | {m['pearson_r']:.4f} | "
                f"{m['mape_pct']:.2f} | {m['worst_pct']:.2f} | {m['noise_floor_pct']:.2f} | "
                f"{res['table_measurements']} | {res['table_fill_seconds']:.0f} |"
            )
            points[(data["runner"], arch)] = res["variants"]
    (out / "latency_fidelity.md").write_text("\n".join(lines) + "\n")
    _plot(points, out / "latency_fidelity.png")


def _plot(points: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runners = sorted({r for r, _ in points})
    fig, axes = plt.subplots(1, len(runners), figsize=(5.5 * len(runners), 5), squeeze=False)
    for ax, runner in zip(axes[0], runners, strict=True):
        top = 0.0
        for (r, arch), rows in sorted(points.items()):
            if r != runner:
                continue
            m = [x["measured_ms"] for x in rows]
            e = [x["estimated_ms"] for x in rows]
            top = max(top, *m, *e)
            ax.scatter(m, e, s=14, label=arch)
        ax.plot([0, top * 1.05], [0, top * 1.05], "k--", lw=0.8)
        ax.set(
            xlabel="measured latency (ms)",
            ylabel="estimated latency (ms)",
            title=f"{runner}: estimate vs measurement",
        )
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runner", default="ort")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/latency_fidelity"))
    parser.add_argument("--variants", type=int, default=20)
    parser.add_argument("--onnx2tf", help="onnx2tf executable (tflite runner)")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        options = {"onnx2tf": args.onnx2tf} if args.onnx2tf else {}
        start = time.perf_counter()
        run(args.runner, args.out, args.variants, options)
        print(f"{args.runner}: done in {time.perf_counter() - start:.0f} s")
    report(args.out)


if __name__ == "__main__":
    main()
