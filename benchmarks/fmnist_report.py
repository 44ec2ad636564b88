"""The Fashion-MNIST comparison's report: markdown, JSON and a plot from ``points.json``.

    python -m benchmarks.compare_fmnist report

The speed-up of netadapt over the width multiplier at equal accuracy per budget and target, with
a bootstrap interval over seeds (benchmarks/compare_fmnist.py describes the method).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.compare import BUDGETS, CURVE
from benchmarks.compare_report import _latency_reaching, _mean_sd
from benchmarks.fmnist_setup import METHODS, Setup, point_key
from onnx_netadapt.graph.save import save_json, save_text

BOOTSTRAP = 2000


def target_view(data: dict, target: str, chosen_only: bool = True) -> list[dict]:
    """Points with ``latency_ratio`` on ``target`` (to the base in the same pass); with
    ``chosen_only``, the per-target methods only where they were chosen for ``target``."""
    out = []
    for p in data["points"]:
        measured = data["measured"].get(f"{p['arch']}_s{p['seed']}", {}).get(target)
        if measured is None or p["key"] not in measured:
            continue
        if chosen_only and p["target"] not in (None, target):
            continue
        base = measured[point_key("base", None, p["arch"], 1.0, p["seed"])]
        out.append({**p, "latency_ratio": measured[p["key"]] / base})
    return out


def speedups(view: list[dict], arch: str, method: str = "netadapt") -> dict[float, tuple]:
    """{budget: (speed-up, bound)}: the multiplier's latency at ``method``'s accuracy (its
    piecewise-linear curve over budgets, curve widths and the base) / ``method``'s latency."""

    def mean_at(sel: list[dict]) -> tuple[float, float]:
        return float(np.mean([p["latency_ratio"] for p in sel])), float(
            np.mean([p["val_accuracy"] for p in sel])
        )

    mine = [p for p in view if p["arch"] == arch]
    groups: dict[tuple, list[dict]] = {}
    for p in mine:
        if p["method"] in ("multiplier", CURVE, "base"):
            where = p["width"] if p["method"] == CURVE else p["budget"]
            groups.setdefault((p["method"], where), []).append(p)
    curve = sorted(mean_at(sel) for sel in groups.values())
    out = {}
    for budget in BUDGETS:
        sel = [p for p in mine if p["method"] == method and p["budget"] == budget]
        if sel and curve:
            lat, acc = mean_at(sel)
            reach, bound = _latency_reaching(curve, acc)
            out[budget] = (reach / lat, bound)
    return out


def bootstrap(view: list[dict], arch: str, rng: np.random.Generator) -> dict[float, list[float]]:
    """{budget: [2.5%, 97.5%]} of the speed-up, resampling seeds with replacement."""
    seeds = sorted({p["seed"] for p in view if p["arch"] == arch})
    samples: dict[float, list[float]] = {b: [] for b in BUDGETS}
    for _ in range(BOOTSTRAP if len(seeds) > 1 else 0):
        pick = rng.choice(seeds, size=len(seeds), replace=True)
        resampled = [p for s in pick for p in view if p["arch"] == arch and p["seed"] == s]
        for budget, (value, _) in speedups(resampled, arch).items():
            samples[budget].append(value)
    return {
        b: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]
        for b, v in samples.items()
        if v
    }


def cmd_report(args: argparse.Namespace) -> dict:
    """compare.md, summary.json and compare.png under ``args.out`` from its points.json."""
    out = args.out
    data = json.loads((out / "points.json").read_text())
    targets = tuple(data["setup"]["targets"])
    archs = sorted({p["arch"] for p in data["points"]})
    lines = _intro(data)
    summary: dict = {"setup": data["setup"], "speedup_vs_multiplier": {}}
    rng = np.random.default_rng(0)
    for target in targets:
        view = target_view(data, target)
        others = {t: target_view(data, t, chosen_only=False) for t in targets if t != target}
        for arch in archs:
            base = [p for p in view if p["arch"] == arch and p["method"] == "base"]
            if not base:
                continue
            lines += _table(view, others, arch, target, data["setup"])
            speed, speed_lines = _speedup(view, arch, rng)
            summary["speedup_vs_multiplier"].setdefault(target, {})[arch] = speed
            lines += speed_lines
    lines += ["![accuracy vs latency](compare.png)", ""]
    save_text("\n".join(lines), out / "compare.md")
    save_json(summary, out / "summary.json")
    _plot(data, targets, archs, out / "compare.png")
    print("\n".join(lines))
    return summary


def _intro(data: dict) -> list[str]:
    """The report's title and how its figures were made."""
    setup = data["setup"]
    seeds = sorted({p["seed"] for p in data["points"]})
    return [
        "# NetAdapt against the width multiplier and uniform pruning on Fashion-MNIST",
        "",
        f"Command: `python -m benchmarks.compare_fmnist run` (CPU: {data.get('cpu', '?')}); "
        f"seeds {seeds}; input {setup['size']}x{setup['size']}, base width "
        f"{setup['base_width']:g}, {setup['epochs']} base epochs, short fine-tunes of "
        f"{setup['short_steps']} steps, long fine-tunes of {setup['long_steps']} steps (peak lr "
        f"{setup.get('long_lr', Setup.long_lr):g}, distillation weight "
        f"{setup.get('long_distill', Setup.long_distill):g}), "
        "holdout "
        f"{setup['holdout_per_class']} per class, NetAdapt's --select "
        f"{setup.get('select', 'accuracy')}. Accuracy on the 10,000 test images (mean ± sd "
        "over seeds). Latency: medians of interleaved side-by-side rounds, 1 thread, as a ratio "
        "to the base network in the same pass (mean over seeds), on each target. Method details: "
        "the docstring of benchmarks/compare_fmnist.py.",
        "",
    ]


def _selected(view: list[dict], arch: str, method: str, where: float) -> list[dict]:
    """``view``'s points of ``arch`` and ``method`` at ``where`` (a budget, or a curve width)."""
    return [
        p
        for p in view
        if p["arch"] == arch
        and p["method"] == method
        and (p.get("width") if method == CURVE else p["budget"]) == where
    ]


def _table(
    view: list[dict], others: dict[str, list[dict]], arch: str, target: str, setup: dict
) -> list[str]:
    """The section of ``arch`` chosen for ``target``: its base and a row per budget and method
    (latency also on the ``others`` targets)."""
    base = [p for p in view if p["arch"] == arch and p["method"] == "base"]
    acc, sd = _mean_sd([p["val_accuracy"] for p in base])
    lines = [
        f"## {arch}, chosen for and measured on {target}",
        "",
        f"Base network: {100 * acc:.2f} ± {100 * sd:.2f}%.",
        "",
        "| budget | method | latency ratio | "
        + "".join(f"on {t} | " for t in others)
        + "val accuracy (%) | MMACs | steps | detail |",
        "|---|---|---|" + "---|" * len(others) + "---|---|---|---|",
    ]
    rows = [(str(b), m, b) for b in BUDGETS for m in METHODS]
    rows += [("below", CURVE, w) for w in setup["curve_widths"]]
    for label, method, where in rows:
        sel = _selected(view, arch, method, where)
        if sel:
            lines.append(_row(label, method, sel, others))
    return lines


def _row(label: str, method: str, sel: list[dict], others: dict[str, list[dict]]) -> str:
    """One table row: means (and the accuracy's sd) over ``sel``'s seeds."""
    keys = {p["key"] for p in sel}
    cross = "".join(
        f"{np.mean([p['latency_ratio'] for p in v if p['key'] in keys]):.3f} | "
        for v in others.values()
    )
    a, s = _mean_sd([p["val_accuracy"] for p in sel])
    detail = ", ".join(
        f"{k} {sorted({p[k] for p in sel})}" for k in ("iteration", "width", "ratio") if k in sel[0]
    )
    return (
        f"| {label} | {method} | {np.mean([p['latency_ratio'] for p in sel]):.3f} | "
        f"{cross}{100 * a:.2f} ± {100 * s:.2f} | "
        f"{np.mean([p['mmacs'] for p in sel]):.2f} | "
        f"{int(np.mean([p['steps'] for p in sel]))} | {detail} |"
    )


def _speedup(view: list[dict], arch: str, rng: np.random.Generator) -> tuple[dict, list[str]]:
    """The speed-up of netadapt over the multiplier per budget, with its bootstrap interval:
    the summary's entry and the report's lines."""
    speed = speedups(view, arch)
    interval = bootstrap(view, arch, rng)
    entry = {
        str(b): {"speedup": v, "bound": bound, "bootstrap_95": interval.get(b)}
        for b, (v, bound) in speed.items()
    }
    lines = ["", "Speed-up of netadapt over the multiplier at equal accuracy:", ""]
    for b, (v, bound) in speed.items():
        ci = interval.get(b)
        ci_text = f" (bootstrap 95% over seeds: {ci[0]:.2f}-{ci[1]:.2f})" if ci else ""
        lines.append(f"- budget {b}: {bound} x{v:.2f}{ci_text}")
    lines.append("")
    return entry, lines


def channels_report(out: Path, work: Path, seeds: list[int], command: str) -> list[str]:
    """channels.md under ``out``: the output channels of every Conv of each final network (in
    graph order; depthwise convs repeat their input's) of ``seeds``, read from ``work``."""
    import onnx

    from onnx_netadapt.adapt.report import layer_channels

    data = json.loads((out / "points.json").read_text())
    lines = [
        "# What each method kept: output channels per Conv",
        "",
        f"Command: `{command}`. Output channels of every Conv of each final network, in graph "
        "order (a depthwise conv repeats its input's count); accuracy on the 10,000 test "
        "images; MMACs per image.",
        "",
    ]
    order = {"base": 0, **{m: i + 1 for i, m in enumerate(METHODS)}}
    for seed in seeds:
        points = [p for p in data["points"] if p["seed"] == seed and p["method"] in order]
        for arch in sorted({p["arch"] for p in points}):
            lines += [
                f"## {arch}, seed {seed}",
                "",
                "| target | budget | method | accuracy (%) | MMACs | channels |",
                "|---|---|---|---|---|---|",
            ]
            mine = [p for p in points if p["arch"] == arch]
            mine.sort(key=lambda p: (p["target"] or "", -(p["budget"] or 1), order[p["method"]]))
            for p in mine:
                model = onnx.load(work / f"{arch}_s{seed}" / "final" / f"{p['key']}.onnx")
                convs = {n.name for n in model.graph.node if n.op_type == "Conv"}
                channels = [c for name, c in layer_channels(model).items() if name in convs]
                lines.append(
                    f"| {p['target'] or '-'} | {p['budget']:g} | {p['method']} | "
                    f"{100 * p['val_accuracy']:.2f} | {p['mmacs']:.2f} | "
                    f"{' '.join(map(str, channels))} |"
                )
            lines.append("")
    save_text("\n".join(lines), out / "channels.md")
    return lines


def _plot(data: dict, targets: tuple[str, ...], archs: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(targets), len(archs), figsize=(6 * len(archs), 4 * len(targets)), squeeze=False
    )
    for row, target in enumerate(targets):
        view = target_view(data, target)
        for col, arch in enumerate(archs):
            ax = axes[row][col]
            for method, marker in zip((*METHODS, CURVE), "os^vx", strict=True):
                wheres = sorted(
                    {
                        p.get("width") if method == CURVE else p["budget"]
                        for p in view
                        if p["arch"] == arch and p["method"] == method
                    }
                )
                xs, ys, es = [], [], []
                for where in wheres:
                    sel = _selected(view, arch, method, where)
                    xs.append(np.mean([p["latency_ratio"] for p in sel]))
                    a, s = _mean_sd([100 * p["val_accuracy"] for p in sel])
                    ys.append(a)
                    es.append(s)
                if xs:
                    order = np.argsort(xs)
                    ax.errorbar(
                        np.asarray(xs)[order],
                        np.asarray(ys)[order],
                        yerr=np.asarray(es)[order],
                        marker=marker,
                        label=method,
                        capsize=3,
                    )
            base = [
                100 * p["val_accuracy"] for p in view if p["arch"] == arch and p["method"] == "base"
            ]
            if base:
                ax.axhline(np.mean(base), color="gray", ls=":", label="base (latency 1.0)")
            ax.set_title(f"{arch} on {target}")
            ax.set_xlabel(f"measured {target} latency / base")
            ax.set_ylabel("validation accuracy (%)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()  # keeps each axis label clear of the title below it
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
