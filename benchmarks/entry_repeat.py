"""How steady are in-context kernel entries on this host? The same layers measured again and again.

Measures MobileNetV2's 56x56 depthwise conv at three channel counts (its original 144 and the
72 and 112 its keep-0.5 and keep-0.75 prunings leave) as kernel entries
(``kernels.KernelRunner``, the profile estimator's entries: the median of three profiled rounds
over the layers), ``--repeats`` times, and prints each repeat's entries. On a host whose speed
moves, an entry measured in a slow moment scales every pruning of its layer by a wrong ratio.

    python -m benchmarks.entry_repeat --repeats 6
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.latency_fidelity import LAYER
from benchmarks.record import run_header, save_results
from onnx_netadapt.measure.kernels import KernelRunner
from onnx_netadapt.measure.registry import make_runner
from onnx_netadapt.measure.signature import LayerSignature

CHANNELS = (144, 72, 112)


def depthwise(channels: int) -> LayerSignature:
    """MobileNetV2's features.3 depthwise conv (56x56, 3x3, ReLU6) at ``channels``."""
    return LayerSignature(
        "Conv", channels, channels, (56, 56), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), channels,
        "Relu6",
    )  # fmt: skip


def report(results: dict) -> str:
    """Markdown: each repeat's entries (median of its rounds) and their spread."""
    lines = [
        "# In-context kernel entries of one layer, measured again and again",
        "",
        f"`{results['command']}` (ORT, 1 thread, {results['cpu']}, {results['date']}). "
        "MobileNetV2's 56x56 depthwise conv at each channel count; each repeat is one "
        "`KernelRunner.measure_layers` of the three (entries in ms).",
        "",
        "| repeat | " + " | ".join(f"{c} channels" for c in CHANNELS) + " | 72 / 144 | 112 / 144 |",
        "|---|" + "---|" * (len(CHANNELS) + 2),
    ]
    for i, row in enumerate(results["repeats"], 1):
        cells = [f"{row[str(c)]:.3f}" for c in CHANNELS]
        ratios = [f"{row[str(c)] / row['144']:.2f}" for c in (72, 112)]
        lines.append(f"| {i} | " + " | ".join(cells + ratios) + " |")
    for c in CHANNELS:
        values = np.array([row[str(c)] for row in results["repeats"]])
        lines.append("")
        lines.append(
            f"{c} channels: {values.min():.3f}-{values.max():.3f} ms, "
            f"highest / lowest {values.max() / values.min():.2f}."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("/tmp/entry_repeat"))
    parser.add_argument("--name", default="entry_repeat")
    args = parser.parse_args(argv)
    if args.repeats < 2:
        parser.error(f"--repeats must be at least 2 (got {args.repeats})")
    sigs = {c: depthwise(c) for c in CHANNELS}
    results = {**run_header("entry_repeat", argv), "repeats": []}
    with make_runner("ort", threads=1) as runner:
        runner.settings = LAYER
        kernels = KernelRunner(runner)
        for _ in range(args.repeats):
            entries = kernels.measure_layers(list(sigs.values()))
            results["repeats"].append({str(c): entries[s].median_ms for c, s in sigs.items()})
            print(results["repeats"][-1], flush=True)
    print(save_results(results, report, args.out, args.name))


if __name__ == "__main__":
    main()
