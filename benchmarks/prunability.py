"""Prunability sweep over torchvision and timm classifiers (issue: foundation, section 7).

For every model of ``benchmarks.zoo`` and each exporter (dynamo opset 18, legacy opset 17):
export with random weights, load, analyse, keep 70% of every prunable group (L2, grid 8),
check the exact prune against the masked-original oracle, and time the original and the pruned
model side by side in ONNX Runtime (CPU, one thread, interleaved runs, medians).

Each model runs in a subprocess, so a crash or a hang is recorded and the sweep goes on. Results
are appended to ``OUT/rows.jsonl`` as they come (the sweep resumes where it stopped) and
summarised into ``OUT/prunability.md`` and ``OUT/prunability.json``.

    python -m benchmarks.prunability run --exporter legacy --out benchmarks/results/prunability
    python -m benchmarks.prunability run --exporter dynamo --out benchmarks/results/prunability
    python -m benchmarks.prunability timing --out benchmarks/results/prunability
    python -m benchmarks.prunability report --out benchmarks/results/prunability
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import zoo

KEEP_RATIO = 0.7
ROUND_TO = 8
TRANSFORMER_FAMILIES = {"vit", "swin", "swinv2", "maxvit"}


# -- one model ------------------------------------------------------------------------------
def _latency_side_by_side(paths: list[str], budget_s: float = 8.0) -> list[float]:
    """Median ms of each model, run interleaved at one thread (ORT_ENABLE_ALL)."""
    import numpy as np
    import onnxruntime as ort

    from onnx_netadapt.graph.probe import random_inputs
    from onnx_netadapt.measure.interleave import interleaved
    from onnx_netadapt.measure.stats import time_ms

    sessions, feeds = [], None
    for path in paths:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        sessions.append(ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]))
    import onnx

    feeds = random_inputs(onnx.load(paths[0], load_external_data=False))
    for session in sessions:
        session.run(None, feeds)  # warm-up
    times = interleaved(
        lambda session: time_ms(lambda: session.run(None, feeds)),
        dict(enumerate(sessions)),
        rounds=30,
        min_rounds=5,
        max_seconds=budget_s,
    )
    return [float(np.median(b)) for b in times.values()]


def evaluate(path: str) -> dict[str, Any]:
    """Analyse, prune and check one exported model (runs inside the per-model subprocess)."""
    from onnx_netadapt import analyse, load_model, prune
    from onnx_netadapt.graph.save import save_model
    from onnx_netadapt.measure.metrics import parameter_count
    from onnx_netadapt.verify import check_against_masked

    row: dict[str, Any] = {}
    t0 = time.perf_counter()
    loaded = load_model(path)
    t1 = time.perf_counter()
    analysis = analyse(loaded)
    t2 = time.perf_counter()
    summary = analysis.summary()
    row.update(
        load_s=t1 - t0,
        analysis_s=t2 - t1,
        groups=summary["groups"],
        prunable_groups=summary["prunable_groups"],
        approximate_groups=summary["approximate_groups"],
        share=summary["prunable_share"],
        share_with_approximate=summary["prunable_share_with_approximate"],
        unsupported_nodes=summary["unsupported_nodes"],
        head_groups=sum(g.prunable and g.attention_heads for g in analysis.groups),
        unprunable_reasons=sorted(
            {g.reasons[0] for g in analysis.groups if g.status == "unprunable"}
        )[:8],
    )
    if not any(g.prunable_with(True) for g in analysis.groups):
        row["pruned"] = False
        return row
    t3 = time.perf_counter()
    exact = prune(analysis, ratio=KEEP_RATIO, round_to=ROUND_TO)
    row["prune_s"] = time.perf_counter() - t3
    oracle = check_against_masked(analysis, exact)
    row.update(pruned=True, oracle_ok=oracle.ok, oracle_max_abs_diff=oracle.max_abs_diff)
    final = exact
    if summary["approximate_groups"]:
        final = prune(analysis, ratio=KEEP_RATIO, round_to=ROUND_TO, allow_approximate=True)
    row["approximate_pruned"] = final is not exact
    with tempfile.TemporaryDirectory() as tmp:
        original_path = os.path.join(tmp, "original.onnx")
        pruned_path = os.path.join(tmp, "pruned.onnx")
        save_model(loaded.model, original_path)
        save_model(final.model, pruned_path)
        original_ms, pruned_ms = _latency_side_by_side([original_path, pruned_path])
    params_before = parameter_count(loaded.model)
    params_after = parameter_count(final.model)
    row.update(
        runs_in_ort=True,
        params_before=params_before,
        params_after=params_after,
        param_ratio=params_after / params_before,
        latency_ms_original=original_ms,
        latency_ms_pruned=pruned_ms,
        latency_ratio=pruned_ms / original_ms,
    )
    return row


# -- the sweep ------------------------------------------------------------------------------
def _done_keys(rows_path: Path) -> set[tuple[str, str]]:
    if not rows_path.exists():
        return set()
    keys = set()
    for line in rows_path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            keys.add((row["key"], row["exporter"]))
    return keys


def run_sweep(
    exporter: str,
    out: Path,
    cache: Path,
    only: str | None,
    limit: int | None,
    timeout_s: int,
) -> None:
    """Export (cached) and evaluate every selected model; append one row per model."""
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.jsonl"
    done = _done_keys(rows_path)
    models = zoo.select(zoo.all_models(), only, limit)
    models.sort(key=lambda m: m.params_m)  # small first: most results soonest
    for model in models:
        if (model.key, exporter) in done:
            continue
        row: dict[str, Any] = {
            "key": model.key,
            "source": model.source,
            "name": model.name,
            "family": model.family,
            "exporter": exporter,
            "input_size": list(model.input_size),
            "params_m": model.params_m,
        }
        onnx_path = cache / exporter / f"{model.key}.onnx"
        export = zoo.export(model, exporter, onnx_path, timeout_s=timeout_s)
        row.update(export_ok=export.ok, export_s=export.seconds, export_error=export.error)
        if export.ok:
            row.update(_evaluate_in_subprocess(onnx_path, timeout_s))
        with rows_path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(_one_line(row), flush=True)
    write_report(out)


def _evaluate_in_subprocess(path: Path, timeout_s: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.prunability", "one", str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"analysed": False, "error": f"timeout after {timeout_s}s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"analysed": False, "error": f"exit {proc.returncode}: {tail[:300]}"}
    return {"analysed": True, **json.loads(lines[-1])}


def _one_line(row: dict[str, Any]) -> str:
    if not row.get("export_ok"):
        return f"{row['key']:<45} {row['exporter']:<7} export failed: {row['export_error']}"
    if not row.get("analysed"):
        return f"{row['key']:<45} {row['exporter']:<7} ANALYSIS FAILED: {row.get('error')}"
    return (
        f"{row['key']:<45} {row['exporter']:<7} share {row['share']:.3f}/"
        f"{row['share_with_approximate']:.3f} oracle {row.get('oracle_ok')} "
        f"lat x{row.get('latency_ratio', float('nan')):.2f} an {row['analysis_s']:.2f}s"
    )


# -- timing of the core operations ------------------------------------------------------------
def timing(out: Path, cache: Path, repeats: int = 7) -> dict[str, Any]:
    """Median time to analyse ResNet-50 and to prune one of its groups (this machine)."""
    from onnx_netadapt import analyse, load_model, prune

    results: dict[str, Any] = {}
    model = zoo.find_model("torchvision", "resnet50")
    for exporter in ("legacy", "dynamo"):
        path = cache / exporter / f"{model.key}.onnx"
        zoo.export(model, exporter, path)
        t = time.perf_counter()
        loaded = load_model(path)
        load_s = time.perf_counter() - t
        analysis_times = []
        for _ in range(repeats):
            t = time.perf_counter()
            analysis = analyse(loaded)
            analysis_times.append(time.perf_counter() - t)
        prune_times, checked_times = [], []
        for group in [g for g in analysis.groups if g.prunable]:
            t = time.perf_counter()
            prune(analysis, {group.id: max(1, group.units // 2)}, check=False)
            prune_times.append(time.perf_counter() - t)
        for group in [g for g in analysis.groups if g.prunable][:repeats]:
            t = time.perf_counter()
            prune(analysis, {group.id: max(1, group.units // 2)}, check=True)
            checked_times.append(time.perf_counter() - t)
        results[exporter] = {
            "load_and_normalise_s": load_s,
            "analysis_median_s": statistics.median(analysis_times),
            "prune_one_group_median_ms": 1000 * statistics.median(prune_times),
            "prune_one_group_max_ms": 1000 * max(prune_times),
            "prune_one_group_with_checks_median_ms": 1000 * statistics.median(checked_times),
            "groups_timed": len(prune_times),
        }
    out.mkdir(parents=True, exist_ok=True)
    (out / "timing.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


# -- report ---------------------------------------------------------------------------------
def _is_cnn(row: dict[str, Any]) -> bool:
    return row["family"] not in TRANSFORMER_FAMILIES


def _best_share(row: dict[str, Any]) -> float:
    return max(row.get("share", 0.0), row.get("share_with_approximate", 0.0))


def write_report(out: Path) -> None:
    """Summarise rows.jsonl into prunability.md and prunability.json."""
    rows = [json.loads(ln) for ln in (out / "rows.jsonl").read_text().splitlines() if ln.strip()]
    summary = {}
    for exporter in sorted({r["exporter"] for r in rows}):
        for source in ("torchvision", "timm"):
            sel = [r for r in rows if r["exporter"] == exporter and r["source"] == source]
            if not sel:
                continue
            exported = [r for r in sel if r["export_ok"]]
            analysed = [r for r in exported if r.get("analysed")]
            pruned = [r for r in analysed if r.get("pruned")]
            cnn = [r for r in analysed if _is_cnn(r)]
            summary[f"{exporter}/{source}"] = {
                "models": len(sel),
                "exported": len(exported),
                "analysed_without_crash": len(analysed),
                "pruned": len(pruned),
                "oracle_passed": sum(bool(r.get("oracle_ok")) for r in pruned),
                "cnn_analysed": len(cnn),
                "cnn_share_at_least_90pct": sum(_best_share(r) >= 0.9 for r in cnn),
                "median_latency_ratio": statistics.median(
                    [r["latency_ratio"] for r in pruned if "latency_ratio" in r] or [float("nan")]
                ),
                "median_param_ratio": statistics.median(
                    [r["param_ratio"] for r in pruned if "param_ratio" in r] or [float("nan")]
                ),
            }
    timing_path = out / "timing.json"
    timing_data = json.loads(timing_path.read_text()) if timing_path.exists() else None
    (out / "prunability.json").write_text(
        json.dumps({"summary": summary, "timing": timing_data, "rows": rows}, indent=1) + "\n"
    )
    (out / "prunability.md").write_text(_markdown(summary, timing_data, rows))


def _markdown(summary: dict, timing_data: dict | None, rows: list[dict]) -> str:
    """prunability.md: how it was made, the summary, the core timings and a row per model."""
    lines = [
        "# Prunability of torchvision and timm classifiers",
        "",
        "Generated by `python -m benchmarks.prunability` (see the module docstring for the "
        f"commands). Random weights; keep ratio {KEEP_RATIO} in every prunable group (grid "
        f"{ROUND_TO}); oracle = exact groups only, checked against the masked original; latency "
        "= ONNX Runtime CPU, 1 thread, ORT_ENABLE_ALL, original and pruned interleaved in one "
        "process, medians (the pruned model includes approximate groups where the network has "
        "them). Share = Conv/Gemm output channels in prunable groups, model outputs (the "
        "classifier) excluded; 'best' counts approximate groups (LayerNorm over channels).",
        "",
        "## Summary",
        "",
        "| exporter/source | models | exported | analysed | pruned | oracle passed "
        "| CNNs | CNNs with best share >= 90% | median latency ratio | median param ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, s in summary.items():
        lines.append(
            f"| {key} | {s['models']} | {s['exported']} | {s['analysed_without_crash']} | "
            f"{s['pruned']} | {s['oracle_passed']} | {s['cnn_analysed']} | "
            f"{s['cnn_share_at_least_90pct']} | {s['median_latency_ratio']:.2f} | "
            f"{s['median_param_ratio']:.2f} |"
        )
    if timing_data:
        lines += [
            "",
            "## Core timings (ResNet-50, this machine, medians)",
            "",
            "| exporter | load+normalise s | analysis s | prune one group ms "
            "| prune one group + checker ms |",
            "|---|---|---|---|---|",
        ]
        for exporter, t in timing_data.items():
            lines.append(
                f"| {exporter} | {t['load_and_normalise_s']:.2f} | {t['analysis_median_s']:.3f} "
                f"| {t['prune_one_group_median_ms']:.1f} | "
                f"{t['prune_one_group_with_checks_median_ms']:.0f} |"
            )
    lines += [
        "",
        "## Per model",
        "",
        "| model | exporter | groups | prunable | approx | head groups | share | best share "
        "| oracle | latency ratio | param ratio | analysis s | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["source"], r["family"], r["name"], r["exporter"])):
        lines.append(_model_row(r))
    return "\n".join(lines) + "\n"


def _model_row(r: dict) -> str:
    """One model's row of the per-model table (what failed, if anything did)."""
    if not r["export_ok"]:
        note = f"export failed: {(r['export_error'] or '')[:80]}"
        return f"| {r['key']} | {r['exporter']} | | | | | | | | | | | {note} |"
    if not r.get("analysed"):
        return (
            f"| {r['key']} | {r['exporter']} | | | | | | | | | | | "
            f"analysis failed: {r.get('error', '')[:80]} |"
        )
    note = "; ".join(r.get("unprunable_reasons", [])[:2]).replace("|", "/")[:160]
    oracle = "" if not r.get("pruned") else ("pass" if r.get("oracle_ok") else "FAIL")
    return (
        f"| {r['key']} | {r['exporter']} | {r['groups']} | {r['prunable_groups']} | "
        f"{r['approximate_groups']} | {r.get('head_groups', '')} | {r['share']:.3f} | "
        f"{_best_share(r):.3f} | {oracle} | "
        f"{r.get('latency_ratio', float('nan')):.2f} | {r.get('param_ratio', float('nan')):.2f}"
        f" | {r['analysis_s']:.2f} | {note} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Prunability sweep over the model zoo.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="export and evaluate models (resumable)")
    run.add_argument("--exporter", choices=["legacy", "dynamo"], required=True)
    run.add_argument("--out", type=Path, default=Path("benchmarks/results/prunability"))
    run.add_argument("--cache", type=Path, default=Path(os.environ.get("ZOO_CACHE", "/tmp/zoo")))
    run.add_argument("--only", help="regex on <source>__<name>")
    run.add_argument("--limit", type=int)
    run.add_argument("--timeout", type=int, default=900)
    one = sub.add_parser("one", help="evaluate one exported model (prints a JSON line)")
    one.add_argument("path")
    tim = sub.add_parser("timing", help="time analysis and pruning on ResNet-50")
    tim.add_argument("--out", type=Path, default=Path("benchmarks/results/prunability"))
    tim.add_argument("--cache", type=Path, default=Path(os.environ.get("ZOO_CACHE", "/tmp/zoo")))
    rep = sub.add_parser("report", help="rewrite the markdown/JSON summary from rows.jsonl")
    rep.add_argument("--out", type=Path, default=Path("benchmarks/results/prunability"))
    args = parser.parse_args(argv)
    if args.cmd == "run":
        run_sweep(args.exporter, args.out, args.cache, args.only, args.limit, args.timeout)
    elif args.cmd == "one":
        print(json.dumps(evaluate(args.path)))
    elif args.cmd == "timing":
        print(json.dumps(timing(args.out, args.cache), indent=1))
        if (args.out / "rows.jsonl").exists():
            write_report(args.out)
    else:
        write_report(args.out)


if __name__ == "__main__":
    main()
