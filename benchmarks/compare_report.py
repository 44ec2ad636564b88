"""The report of ``python -m benchmarks.compare``: table, summary and plot from the saved points.

    python -m benchmarks.compare report

The latency at which the width multiplier reaches NetAdapt's accuracy is interpolated on the
multiplier's curve (benchmarks/compare.py describes the method).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import onnx

from benchmarks.compare import BUDGETS, CURVE, METHODS, RESULTS
from onnx_netadapt.graph.save import save_json, save_text
from onnx_netadapt.measure.metrics import model_macs


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _curve_groups(points: list[dict], arch: str) -> list[tuple[float, list[dict]]]:
    """(width, points) of ``arch``'s multiplier-curve networks, widest first."""
    widths = sorted({p["width"] for p in points if p["method"] == CURVE}, reverse=True)
    groups = [
        (w, [p for p in points if p["arch"] == arch and p["method"] == CURVE and p["width"] == w])
        for w in widths
    ]
    return [(w, sel) for w, sel in groups if sel]


def speedup_at_equal_accuracy(points: list[dict], arch: str, method: str) -> list[dict]:
    """Latency of the multiplier at ``method``'s accuracy (interpolated) / ``method``'s latency."""

    def mean_point(sel: list[dict]) -> tuple[float, float]:
        return (
            float(np.mean([p["latency_ratio"] for p in sel])),
            float(np.mean([p["val_accuracy"] for p in sel])),
        )

    def curve(m: str) -> list[tuple[float, float]]:
        rows = []
        for b in (*BUDGETS, 1.0):
            sel = [
                p
                for p in points
                if p["arch"] == arch
                and (p["method"] == m or (b == 1.0 and p["method"] == "base"))
                and p["budget"] == b
            ]
            if sel:
                rows.append(mean_point(sel))
        if m == "multiplier":
            rows += [mean_point(sel) for _, sel in _curve_groups(points, arch)]
        return sorted(rows)

    mult = curve("multiplier")  # (latency ratio, accuracy), ascending latency, incl. the base
    out = []
    for lat, acc in curve(method):
        if lat >= 1.0:
            continue
        reach, bound = _latency_reaching(mult, acc)
        out.append(
            {
                "latency_ratio": lat,
                "accuracy": acc,
                "multiplier_latency_at_same_accuracy": reach,
                "bound": bound,
                "speedup": reach / lat,
            }
        )
    return out


def _latency_reaching(curve: list[tuple[float, float]], acc: float) -> tuple[float, str]:
    """The lowest latency at which the (piecewise linear) accuracy curve reaches ``acc``.

    Returns (latency, bound): ``=`` when reached between two measured points; ``<=`` when the
    fastest measured point is already at least as accurate (the true value is lower still);
    ``>=`` when no measured point reaches ``acc``.
    """
    if curve[0][1] >= acc:
        return curve[0][0], "<="
    for (l0, a0), (l1, a1) in itertools.pairwise(curve):
        if a0 < acc <= a1:
            return l0 + (acc - a0) * (l1 - l0) / (a1 - a0), "="
    return curve[-1][0], ">="


def backfill_macs(points: list[dict], work: Path) -> bool:
    """Add ``mmacs`` to points recorded without it, from the networks saved under ``work``
    (``<arch>_s<seed>/final/<method>@<budget>.onnx``); True if any was added."""
    added = False
    for p in points:
        if "mmacs" in p:
            continue
        if p["method"] == "base":
            key = "base"
        else:
            key = f"{p['method']}@{p['width'] if p['method'] == CURVE else p['budget']}"
        path = work / f"{p['arch']}_s{p['seed']}" / "final" / f"{key}.onnx"
        if path.exists():
            p["mmacs"] = model_macs(onnx.load(path)) / 1e6
            added = True
    return added


def _table_row(budget: str, method: str, sel: list[dict], detail: str) -> str:
    """One row of the report's table: means (and the accuracy's sd) over ``sel``'s seeds."""
    a, s = _mean_sd([p["val_accuracy"] for p in sel])
    macs = [p["mmacs"] for p in sel if "mmacs" in p]
    return (
        f"| {budget} | {method} | {np.mean([p['latency_ratio'] for p in sel]):.3f} | "
        f"{100 * a:.2f} ± {100 * s:.2f} | {f'{np.mean(macs):.2f}' if macs else '?'} | "
        f"{int(np.mean([p['steps'] for p in sel]))} | {detail} |"
    )


def cmd_report(args: argparse.Namespace) -> None:
    """compare.md, summary.json and compare.png from the saved points."""
    data = json.loads((RESULTS / "points.json").read_text())
    points = data["points"]
    if backfill_macs(points, args.work):
        save_json(data, RESULTS / "points.json")
    archs = sorted({p["arch"] for p in points})
    seeds = sorted({p["seed"] for p in points})
    lines = [
        "# NetAdapt against width multipliers and uniform pruning (MNIST-5k, ORT CPU 1 thread)",
        "",
        f"Command: `python -m benchmarks.compare run` (CPU: {data.get('cpu', '?')}); seeds "
        f"{seeds}. Accuracy: 1,000 validation images (mean ± sd over seeds). Latency: median "
        "of interleaved side-by-side measurements, as a ratio to the base network measured in "
        "the same pass (mean over seeds). Method details: the docstring of benchmarks/compare.py.",
        "",
    ]
    summary: dict = {"speedup_vs_multiplier": {}}
    for arch in archs:
        lines += _arch_table(points, arch)
        speed = speedup_at_equal_accuracy(points, arch, "netadapt-ort")
        summary["speedup_vs_multiplier"][arch] = speed
        lines += _speedup_lines(speed)
    lines += ["![accuracy vs latency](compare.png)", ""]
    save_text("\n".join(lines), RESULTS / "compare.md")
    save_json(summary, RESULTS / "summary.json")
    _plot(points, archs)
    print("\n".join(lines))


def _arch_table(points: list[dict], arch: str) -> list[str]:
    """The section of ``arch``: its base network and a row per budget and method."""
    base = [p for p in points if p["arch"] == arch and p["method"] == "base"]
    acc, sd = _mean_sd([p["val_accuracy"] for p in base])
    lines = [
        f"## {arch}",
        "",
        f"Base network: {100 * acc:.2f} ± {100 * sd:.2f}% at "
        f"{np.mean([p['latency_ms'] for p in base]):.4f} ms.",
        "",
        "| budget | method | latency ratio | val accuracy (%) | MMACs | training steps | detail |",
        "|---|---|---|---|---|---|---|",
    ]
    for budget in BUDGETS:
        for method in METHODS:
            sel = _selected(points, arch, method, budget)
            if sel:
                detail = ", ".join(
                    f"{k} {sorted({p[k] for p in sel})}"
                    for k in ("iteration", "width", "ratio")
                    if k in sel[0]
                )
                lines.append(_table_row(str(budget), method, sel, detail))
    for width, sel in _curve_groups(points, arch):
        lines.append(_table_row("below", CURVE, sel, f"width {width}"))
    return lines


def _selected(points: list[dict], arch: str, method: str, budget: float) -> list[dict]:
    """The points of ``arch`` and ``method`` at ``budget`` (one per seed)."""
    return [
        p for p in points if p["arch"] == arch and p["method"] == method and p["budget"] == budget
    ]


def _speedup_lines(speed: list[dict]) -> list[str]:
    """The report's lines of netadapt-ort's speed-ups over the multiplier."""
    lines = ["", "Latency speed-up of netadapt-ort over the multiplier at equal accuracy:", ""]
    for row in speed:
        lines.append(
            f"- netadapt-ort at latency {row['latency_ratio']:.3f} with "
            f"{100 * row['accuracy']:.2f}%: the multiplier reaches that accuracy at latency "
            f"{row['bound']} {row['multiplier_latency_at_same_accuracy']:.3f}, speed-up "
            f"{row['bound']} x{row['speedup']:.2f}"
        )
    lines.append("")
    return lines


def _plot(points: list[dict], archs: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(archs), figsize=(6 * len(archs), 4), squeeze=False)
    for ax, arch in zip(axes[0], archs, strict=True):
        for method, marker in zip(METHODS, "os^v", strict=True):
            xs, ys, es = [], [], []
            for budget in BUDGETS:
                sel = _selected(points, arch, method, budget)
                if sel:
                    xs.append(np.mean([p["latency_ratio"] for p in sel]))
                    a, s = _mean_sd([100 * p["val_accuracy"] for p in sel])
                    ys.append(a)
                    es.append(s)
            for _, sel in _curve_groups(points, arch) if method == "multiplier" else []:
                xs.append(np.mean([p["latency_ratio"] for p in sel]))
                a, s = _mean_sd([100 * p["val_accuracy"] for p in sel])
                ys.append(a)
                es.append(s)
            order = np.argsort(xs)
            xs, ys, es = (list(np.asarray(v)[order]) for v in (xs, ys, es))
            ax.errorbar(xs, ys, yerr=es, marker=marker, label=method, capsize=3)
        base = [
            100 * p["val_accuracy"] for p in points if p["arch"] == arch and p["method"] == "base"
        ]
        ax.axhline(np.mean(base), color="gray", ls=":", label="base (latency 1.0)")
        ax.set_title(arch)
        ax.set_xlabel("measured ORT latency / base")
        ax.set_ylabel("validation accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(RESULTS / "compare.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
