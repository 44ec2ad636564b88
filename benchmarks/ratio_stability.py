"""How steady is a pruning's measured ratio to its original, by each way of measuring it?

The fidelity benchmarks score an estimate against a pruning's time measured side by side with
its original: the median, over interleaved rounds, of the ratio of their times. This script
repeats that measurement ``--repeats`` times per case, in two designs and by three statistics
of the runs, all from the same rounds:

- ``rounds``: each round measures the original, then the pruning (``interleave.round_stats``,
  today's design; a measurement is up to 3 s of back-to-back runs);
- ``alternating``: each round keeps both loaded and runs them by turns, a few runs each
  (``Runner.measure_alternating``, ``interleave.alternating_stats``);

and reports, per design and statistic, the mean of the repeats' ratios and their spread (sd in
% of the mean, and range). Where two designs differ in their mean, at most one of them is
unbiased: the alternating design's pruning finds part of the original's data in the caches
after each turn.

    python -m benchmarks.ratio_stability --cases mobilenet_v2:nchw,resnet50:nhwc --keep 0.5
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.fidelity_layouts import load_case, parse_cases
from benchmarks.latency_fidelity import WHOLE
from benchmarks.record import run_header, save_results
from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.measure.interleave import alternating_stats, round_stats, stats_ratios
from onnx_netadapt.measure.registry import make_runner
from onnx_netadapt.measure.stats import STATISTICS

DESIGNS = {"rounds": round_stats, "alternating": alternating_stats}
ROUNDS = 3


def repeat_ratios(runner, case: str, keep: float, repeats: int) -> dict:
    """Per design and statistic, the median ratio over ``ROUNDS`` rounds, ``repeats`` times
    (the designs take turns within each repeat)."""
    arch, layout = parse_cases(case)[0]
    original = load_case(arch, layout).model
    pruned = prune(analyse(load_model(original)), ratio=keep).model
    ratios: dict[str, dict[str, list[float]]] = {d: {s: [] for s in STATISTICS} for d in DESIGNS}
    for i in range(repeats):
        for design, measure in DESIGNS.items():
            stats = measure(runner, pruned, original, ROUNDS)
            for statistic in STATISTICS:
                value = statistics.median(stats_ratios(stats, statistic)[0])
                ratios[design][statistic].append(value)
        print(
            f"{case} keep {keep} repeat {i + 1}: "
            + ", ".join(
                f"{d} {s} {ratios[d][s][-1]:.4f}" for d in DESIGNS for s in ("median", "p10")
            ),
            flush=True,
        )
    return {"case": case, "keep": keep, "ratios": ratios}


def spread(values: list[float]) -> dict[str, float]:
    """Mean, sd (% of the mean) and range of ``values``."""
    arr = np.array(values)
    return {
        "mean": float(arr.mean()),
        "sd_pct": float(100 * arr.std(ddof=1) / arr.mean()) if arr.size > 1 else 0.0,
        "low": float(arr.min()),
        "high": float(arr.max()),
    }


def report(results: dict) -> str:
    """Markdown: per case, design and statistic, the repeats' mean ratio and spread."""
    lines = [
        "# How steady is a pruning's measured ratio to its original?",
        "",
        f"`{results['command']}` (ORT, 1 thread, {results['cpu']}, {results['date']}, "
        f"{results['seconds']:.0f} s). Each repeat: the median ratio over {ROUNDS} rounds, "
        "for each design (`rounds`: a whole measurement of each in turn, today's; "
        "`alternating`: both loaded, a few runs each by turns) and each statistic of the runs.",
        "",
        "| case | keep | design | statistic | repeats | mean ratio | sd % | range |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in results["cases"]:
        for design, by in case["ratios"].items():
            for statistic, values in by.items():
                s = spread(values)
                lines.append(
                    f"| {case['case']} | {case['keep']} | {design} | {statistic} | "
                    f"{len(values)} | {s['mean']:.4f} | {s['sd_pct']:.1f} | "
                    f"{s['low']:.4f}-{s['high']:.4f} |"
                )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="mobilenet_v2:nchw,resnet50:nhwc")
    parser.add_argument("--keep", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("/tmp/ratio_stability"))
    parser.add_argument("--name", default="ratio_stability")
    args = parser.parse_args(argv)
    if not 0 < args.keep < 1:
        parser.error(f"--keep must be in (0, 1), got {args.keep}")
    if args.repeats < 2:
        parser.error(f"--repeats must be at least 2 (got {args.repeats}): a spread needs two")
    cases = [f"{a}:{lay}" for a, lay in parse_cases(args.cases)]
    start = time.perf_counter()
    results = {**run_header("ratio_stability", argv), "cases": []}
    with make_runner("ort", threads=1) as runner:
        runner.settings = WHOLE
        for case in cases:
            results["cases"].append(repeat_ratios(runner, case, args.keep, args.repeats))
            results["seconds"] = time.perf_counter() - start
            save_results(results, report, args.out, args.name)
    print(report(results))


if __name__ == "__main__":
    main()
