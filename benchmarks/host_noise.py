"""How steady is each latency statistic on this host? One network run back to back, in windows.

A measurement (``runner.measure``) is a window of back-to-back runs, up to 3 s for a whole
network in the fidelity benchmarks. On a host shared with other work, what the neighbours do
changes from one window to the next, and with it a window's median. This script runs each case
in one ONNX Runtime session for ``--seconds``, cuts the runs into windows of each length, and
reports, per statistic (median, 10th percentile, fastest run), how much it moves between
windows (sd in % of its mean, and its range). The statistic that moves least is the one to take
ratios by on this host (``latency_fidelity --truth``).

    python -m benchmarks.host_noise --cases mobilenet_v2:nchw,resnet50:nhwc --seconds 30
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.fidelity_layouts import load_case, parse_cases
from benchmarks.record import run_header, save_results
from onnx_netadapt.graph.large import ort_session
from onnx_netadapt.graph.probe import random_inputs
from onnx_netadapt_runners.ort import OrtRunner

WINDOWS = (0.5, 1.0, 2.0, 3.0)
STATISTICS = {
    "median": np.median,
    "p10": lambda v: np.percentile(v, 10),
    "min": np.min,
}


def timeline(model, seconds: float, threads: int) -> list[tuple[float, float]]:
    """(start s, ms) of every run of ``model`` in one session for ``seconds``, after warm-up."""
    runner = OrtRunner(threads=threads)
    session = ort_session(model, runner.session_options(), list(runner.providers))
    feeds = random_inputs(model)
    for _ in range(5):
        session.run(None, feeds)
    runs, start = [], time.perf_counter()
    while (now := time.perf_counter()) - start < seconds:
        session.run(None, feeds)
        runs.append((now - start, 1000 * (time.perf_counter() - now)))
    return runs


def window_statistics(runs: list[tuple[float, float]], window: float) -> dict[str, dict]:
    """Per statistic: its value in every full window of ``window`` seconds (at least 5 runs),
    and their sd (% of their mean) and range."""
    times = np.array(runs)
    values: dict[str, list[float]] = {name: [] for name in STATISTICS}
    for start in np.arange(0.0, times[-1, 0] - window + 1e-9, window):
        inside = times[(times[:, 0] >= start) & (times[:, 0] < start + window), 1]
        if inside.size < 5:
            continue
        for name, statistic in STATISTICS.items():
            values[name].append(float(statistic(inside)))
    out = {}
    for name, vals in values.items():
        if len(vals) < 2:
            continue
        arr = np.array(vals)
        out[name] = {
            "windows": len(vals),
            "sd_pct": float(100 * arr.std(ddof=1) / arr.mean()),
            "low_ms": float(arr.min()),
            "high_ms": float(arr.max()),
        }
    return out


def run_case(arch: str, layout: str, seconds: float, threads: int) -> dict:
    """One case: its timeline's statistics for every window length."""
    loaded = load_case(arch, layout)
    runs = timeline(loaded.model, seconds, threads)
    return {
        "case": f"{arch}:{layout}",
        "runs": len(runs),
        "median_ms": float(np.median([ms for _, ms in runs])),
        "windows": {str(w): window_statistics(runs, w) for w in WINDOWS},
    }


def report(results: dict) -> str:
    """Markdown: per case and window length, each statistic's sd and range between windows."""
    lines = [
        "# How much each latency statistic moves between measurement windows on this host",
        "",
        f"`{results['command']}` (ORT, {results['threads']} thread(s), {results['cpu']}, "
        f"{results['date']}). One session per case, run back to back for {results['seconds']} s "
        "and cut into windows; a statistic's sd is between windows, in % of its mean.",
        "",
        "| case | window s | windows | median: sd % (range ms) | p10: sd % (range ms) "
        "| fastest run: sd % (range ms) |",
        "|---|---|---|---|---|---|",
    ]
    for case in results["cases"]:
        for window, stats in case["windows"].items():
            if not stats:
                continue
            cells = [
                f"{s['sd_pct']:.1f} ({s['low_ms']:.2f}-{s['high_ms']:.2f})"
                for s in (stats[n] for n in STATISTICS)
            ]
            count = stats["median"]["windows"]
            lines.append(f"| {case['case']} | {window} | {count} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="mobilenet_v2:nchw,resnet50:nhwc")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/host_noise"))
    parser.add_argument("--name", default="host_noise")
    args = parser.parse_args(argv)
    if args.seconds < 2 * max(WINDOWS):
        parser.error(f"--seconds must be at least {2 * max(WINDOWS):g} (two of each window)")
    cases = parse_cases(args.cases)
    results = {
        **run_header("host_noise", argv),
        "threads": args.threads,
        "seconds": args.seconds,
        "cases": [run_case(arch, layout, args.seconds, args.threads) for arch, layout in cases],
    }
    print(save_results(results, report, args.out, args.name))


if __name__ == "__main__":
    main()
