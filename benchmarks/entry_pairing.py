"""Kernel entries of a pruned layer and its original: timed apart, or by turns?

A pruning's estimate reads, per layer, the ratio of the pruned layer's in-context kernel entry
(``kernels.KernelRunner``) to its original's. This script profiles MobileNetV2's 56x56
depthwise conv at 144 channels (the original) and at 72 and 112 (its keep-0.5 and keep-0.75
prunings) in rounds, one profile of each per round, for ``--seconds``, and keeps every
profile's time. It then replays, from that record, how far each way of taking entries puts the
ratio, over ``--draws`` random moments:

- **apart, median** (the entries before 30 Nov 2026): each entry the median of 3 consecutive
  rounds, the original's and the pruned layer's from two unrelated moments;
- **apart, fastest**: the same with each entry the fastest of its rounds;
- **by turns** (``kernels.TURNS``, the default since): both from the same rounds, the entry
  the median of the rounds' ratios.

The reference ratio is that of the layers' 10th percentiles over the whole record. The record
also says how often the host was slow (a profile over 1.3x its layer's 10th percentile), in
5-second windows.

    python -m benchmarks.entry_pairing --seconds 120
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.entry_repeat import depthwise
from benchmarks.latency_fidelity import LAYER
from benchmarks.record import run_header, save_results
from onnx_netadapt.measure.kernels import KernelRunner, context_layer_model
from onnx_netadapt.measure.registry import make_runner

ORIGINAL = 144
PRUNED = (72, 112)
SLOW = 1.3  # a profile over this many times its layer's 10th percentile: a slow moment
WINDOW_S = 5.0
ROUND_COUNTS = (3, 5, 7)


def record(seconds: float) -> list[list[float]]:
    """Rows of (start s, ms of each of ``ORIGINAL``, ``*PRUNED``) for ``seconds``."""
    channels = (ORIGINAL, *PRUNED)
    with make_runner("ort", threads=1) as runner:
        runner.settings = LAYER
        kernels = KernelRunner(runner)
        models = {c: context_layer_model(depthwise(c)) for c in channels}
        rows, start = [], time.perf_counter()
        while (now := time.perf_counter()) - start < seconds:
            rows.append([now - start, *(kernels.profile_kernel(models[c]) for c in channels)])
    return rows


def ratio_errors(rows: np.ndarray, draws: int, seed: int = 0) -> dict[str, dict]:
    """Per way of taking entries and round count: the errors (ratio / reference - 1) of the
    pruned layers' entry ratios over ``draws`` random moments."""
    rng = np.random.default_rng(seed)
    original = rows[:, 1]
    reference = {
        c: np.percentile(rows[:, 2 + i], 10) / np.percentile(original, 10)
        for i, c in enumerate(PRUNED)
    }
    ways = {
        "apart, median": (False, lambda p, o: np.median(p) / np.median(o)),
        "apart, fastest": (False, lambda p, o: p.min() / o.min()),
        "by turns": (True, lambda p, o: np.median(p / o)),
    }
    out = {}
    for k in ROUND_COUNTS:
        for way, (together, ratio) in ways.items():
            errors = []
            for _ in range(draws):
                i = rng.integers(0, len(rows) - k)
                j = i if together else rng.integers(0, len(rows) - k)
                for n, c in enumerate(PRUNED):
                    pruned = rows[j : j + k, 2 + n]
                    errors.append(ratio(pruned, original[i : i + k]) / reference[c] - 1)
            e = np.abs(errors)
            out[f"{way}|{k}"] = {
                "way": way,
                "rounds": k,
                "mean_abs_pct": 100 * float(e.mean()),
                "p90_abs_pct": 100 * float(np.percentile(e, 90)),
                "over_10pct": 100 * float(np.mean(e > 0.10)),
            }
    return out


def slow_windows(rows: np.ndarray) -> list[dict]:
    """Per ``WINDOW_S`` window: the share of each layer's profiles in a slow moment and the
    median ratios of the rounds in it."""
    floor = {c: np.percentile(rows[:, 1 + i], 10) for i, c in enumerate((ORIGINAL, *PRUNED))}
    out = []
    for start in np.arange(0.0, rows[-1, 0], WINDOW_S):
        part = rows[(rows[:, 0] >= start) & (rows[:, 0] < start + WINDOW_S)]
        if len(part) < 3:
            continue
        out.append(
            {
                "start_s": float(start),
                "rounds": len(part),
                "slow": {
                    str(c): float(np.mean(part[:, 1 + i] > SLOW * floor[c]))
                    for i, c in enumerate((ORIGINAL, *PRUNED))
                },
                "ratio": {
                    str(c): float(np.median(part[:, 2 + i] / part[:, 1]))
                    for i, c in enumerate(PRUNED)
                },
            }
        )
    return out


def report(results: dict) -> str:
    """Markdown: the host's slow share, the errors of each way, the windows."""
    rows = np.array(results["rows"])
    floor = {c: np.percentile(rows[:, 1 + i], 10) for i, c in enumerate((ORIGINAL, *PRUNED))}
    lines = [
        "# A pruned layer's kernel entry: timed apart from its original's, or by turns",
        "",
        f"`{results['command']}` (ORT, 1 thread, {results['cpu']}, {results['date']}): "
        f"{len(rows)} rounds in {rows[-1, 0]:.0f} s, each one profile of MobileNetV2's 56x56 "
        f"depthwise conv at {ORIGINAL}, {' and '.join(map(str, PRUNED))} channels.",
        "",
        "| channels | 10th percentile (ms) | median (ms) | slow profiles (> "
        f"{SLOW}x the 10th percentile) |",
        "|---|---|---|---|",
    ]
    for i, c in enumerate((ORIGINAL, *PRUNED)):
        values = rows[:, 1 + i]
        lines.append(
            f"| {c} | {floor[c]:.3f} | {np.median(values):.3f} | "
            f"{100 * np.mean(values > SLOW * floor[c]):.0f} % |"
        )
    lines += [
        "",
        f"The ratio's error against the 10th percentiles' ratio, over {results['draws']} random "
        "moments and both pruned layers:",
        "",
        "| way | rounds | mean abs. error | 90th percentile | draws off by > 10 % |",
        "|---|---|---|---|---|",
    ]
    for row in results["errors"].values():
        lines.append(
            f"| {row['way']} | {row['rounds']} | {row['mean_abs_pct']:.1f} % | "
            f"{row['p90_abs_pct']:.1f} % | {row['over_10pct']:.0f} % |"
        )
    lines += [
        "",
        f"In {WINDOW_S:g}-second windows: the share of slow profiles and the median ratio "
        "of the rounds by turns.",
        "",
        "| from (s) | rounds | slow "
        + " | slow ".join(map(str, (ORIGINAL, *PRUNED)))
        + " | "
        + " | ".join(f"{c} / {ORIGINAL}" for c in PRUNED)
        + " |",
        "|---|---|" + "---|" * (1 + 2 * len(PRUNED)),
    ]
    for w in results["windows"]:
        slow = [f"{100 * w['slow'][str(c)]:.0f} %" for c in (ORIGINAL, *PRUNED)]
        ratio = [f"{w['ratio'][str(c)]:.3f}" for c in PRUNED]
        lines.append(f"| {w['start_s']:.0f} | {w['rounds']} | " + " | ".join(slow + ratio) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--draws", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/entry_pairing"))
    parser.add_argument("--name", default="entry_pairing")
    args = parser.parse_args(argv)
    if args.seconds < 10:
        parser.error(f"--seconds must be at least 10 (got {args.seconds:g})")
    if args.draws < 1:
        parser.error(f"--draws must be at least 1 (got {args.draws})")
    results = {
        **run_header("entry_pairing", argv),
        "draws": args.draws,
        "rows": record(args.seconds),
    }
    rows = np.array(results["rows"])
    results["errors"] = ratio_errors(rows, args.draws)
    results["windows"] = slow_windows(rows)
    print(save_results(results, report, args.out, args.name))


if __name__ == "__main__":
    main()
