"""Does a pruned layer's kernel entry depend on which of the pair is profiled first?

The estimator times a pruned layer by turns with its original (``kernels.KernelRunner``), the
pair's order reversed every other round, and keeps the median ratio of five rounds (three in
one order, two in the other). If the first profile of a pair paid for the switch between the
two context models, the two orders would give two clusters of ratios, and the median would
land in one of them. This script profiles every (pruned, original) pair of one pruning of one
case in both orders in each round (pruned, original, original, pruned) and reports, per
layer, the median ratio in each order and how far apart they are.

    python -m benchmarks.entry_order --case mobilenet_v1:paddle --keep 0.3 --rounds 15
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.entry_tables import case_signatures
from benchmarks.fidelity_layouts import parse_cases
from benchmarks.latency_fidelity import LAYER
from benchmarks.record import run_header, save_results
from onnx_netadapt.measure.kernels import KernelRunner, context_layer_model
from onnx_netadapt.measure.registry import make_runner
from onnx_netadapt.measure.signature import LayerSignature


def layer_pairs(arch: str, layout: str, keep: float) -> dict[str, tuple[LayerSignature, ...]]:
    """Distinct (pruned, original) signature pairs of the ``keep`` pruning, by the first layer
    name that has each."""
    original, prunings = case_signatures(arch, layout, [keep])
    pairs: dict[tuple[LayerSignature, ...], str] = {}
    for name, sig in prunings[keep].items():
        ref = original.get(name)
        if ref is not None and sig != ref:
            pairs.setdefault((sig, ref), name)
    return {name: pair for pair, name in pairs.items()}


def record(pairs: dict[str, tuple[LayerSignature, ...]], rounds: int) -> dict[str, list]:
    """Per layer, per round: [pruned-first ratio, original-first ratio, original ms]."""
    out: dict[str, list] = {name: [] for name in pairs}
    with make_runner("ort", threads=1) as runner:
        runner.settings = LAYER
        kernels = KernelRunner(runner)
        models = {n: [context_layer_model(s) for s in pair] for n, pair in pairs.items()}
        for _ in range(rounds):
            for name, (pruned, original) in models.items():
                p1 = kernels.profile_kernel(pruned)
                o1 = kernels.profile_kernel(original)
                o2 = kernels.profile_kernel(original)
                p2 = kernels.profile_kernel(pruned)
                out[name].append([p1 / o1, p2 / o2, (o1 + o2) / 2])
    return out


def order_split(rows: dict[str, list]) -> list[dict]:
    """Per layer: the median ratio with the pruned layer first and with the original first,
    their quotient, and the rounds' spread (sd % of each order's ratios)."""
    out = []
    for name, samples in rows.items():
        a = np.array(samples, dtype=float)
        first, second = np.median(a[:, 0]), np.median(a[:, 1])
        out.append(
            {
                "layer": name,
                "pruned_first": float(first),
                "original_first": float(second),
                "quotient": float(first / second),
                "sd_pct": [float(100 * np.std(a[:, i]) / np.mean(a[:, i])) for i in (0, 1)],
                "original_ms": float(np.median(a[:, 2])),
            }
        )
    return out


def report(results: dict) -> str:
    """Markdown: one row per layer."""
    lines = [
        "# A pruned layer's kernel ratio to its original, by which is profiled first",
        "",
        f"`{results['command']}` ({results['cpu']}, {results['date']}): "
        f"{results['rounds']} rounds, each profiling every pair pruned-original-original-pruned.",
        "",
        "| layer | original ms | ratio, pruned first | ratio, original first | quotient "
        "| sd % (each order) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results["layers"]:
        lines.append(
            f"| {r['layer']} | {r['original_ms']:.3f} | {r['pruned_first']:.3f} | "
            f"{r['original_first']:.3f} | {r['quotient']:.3f} | "
            f"{r['sd_pct'][0]:.1f}, {r['sd_pct'][1]:.1f} |"
        )
    quotients = [r["quotient"] for r in results["layers"]]
    if quotients:
        lines += [
            "",
            f"Quotients over the layers: median {np.median(quotients):.3f}, "
            f"range {min(quotients):.3f}-{max(quotients):.3f}.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="mobilenet_v1:paddle", help="ARCH:LAYOUT")
    parser.add_argument("--keep", type=float, default=0.3)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("/tmp/entry_order"))
    parser.add_argument("--name", default="entry_order")
    args = parser.parse_args(argv)
    if not 0 < args.keep < 1:
        parser.error(f"--keep must be in (0, 1) (got {args.keep:g})")
    if args.rounds < 3:
        parser.error(f"--rounds must be at least 3 (got {args.rounds})")
    cases = parse_cases(args.case)
    if len(cases) != 1:
        parser.error(f"--case takes one ARCH:LAYOUT (got {args.case!r})")
    pairs = layer_pairs(*cases[0], args.keep)
    results = {
        **run_header("entry_order", argv),
        "rounds": args.rounds,
        "rows": record(pairs, args.rounds),
    }
    results["layers"] = order_split(results["rows"])
    print(save_results(results, report, args.out, args.name))


if __name__ == "__main__":
    main()
