"""Runs' kernel tables side by side: the ratio of each pruned layer's entry to its original's.

A pruning's 'profile' estimate reads, layer by layer, the ratio of the pruned layer's in-context
kernel entry to the original layer's. Entries by turns (``kernels.py``) make that ratio hold
while the host changes speed; this reads two saved kernel tables (``latency_fidelity``'s
``layouts_table_ort.json``, or a loop's ``latency_table.json``) and, for every group of a
network kept at ``--keep`` of its channels, lists the ratio in each, the sum over the network,
and the layers whose ratio differs most between the two (weighted by the original's entry).
It measures nothing.

    python -m benchmarks.entry_tables RUN1_TABLE.json RUN2_TABLE.json --case mobilenet_v2:nchw \
        --keep 0.3 0.5 --out benchmarks/results/latency_fidelity/noisy_host --name tables
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

from benchmarks.fidelity_layouts import load_case, parse_cases
from benchmarks.record import save_results
from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.measure.signature import LayerSignature, model_signatures

KERNEL_ENTRY = "kernel-in-context"


def read_kernel_entries(path: Path) -> dict[str, float]:
    """The median (ms) of each in-context kernel entry of a table file (``.json`` or
    ``.json.gz``), by signature key: the table of plain kernel entries (not cold or canary),
    the one of entries by turns where the file also holds entries timed apart."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        tables = json.load(handle).get("tables", {})
    kernel = [t for t in tables.values() if t["fingerprint"].get("entry") == KERNEL_ENTRY]
    by_turns = [t for t in kernel if t["fingerprint"].get("pruned_entries") == "by-turns"]
    found = [t["entries"] for t in (by_turns if len(kernel) > 1 else kernel)]
    if len(found) != 1:
        raise SystemExit(f"{path}: {len(found)} tables of {KERNEL_ENTRY!r} entries, need one")
    return {key: stats["median_ms"] for key, stats in found[0].items()}


def layer_ratios(
    tables: list[dict[str, float]],
    original: dict[str, LayerSignature],
    pruned: dict[str, LayerSignature],
) -> list[dict]:
    """Per pruned filter layer found in every table: its channels and, per table, its entry
    over its original's."""
    rows = []
    for name, sig in pruned.items():
        ref = original.get(name)
        if ref is None or sig == ref:
            continue
        if not all(sig.key() in t and ref.key() in t for t in tables):
            continue
        rows.append(
            {
                "layer": name,
                "channels": [ref.out_channels, sig.out_channels],
                "original_ms": [t[ref.key()] for t in tables],
                "pruned_ms": [t[sig.key()] for t in tables],
            }
        )
    for row in rows:
        row["ratio"] = [p / o for p, o in zip(row["pruned_ms"], row["original_ms"], strict=True)]
    return rows


def case_signatures(
    arch: str, layout: str, keeps: list[float]
) -> tuple[dict[str, LayerSignature], dict[float, dict[str, LayerSignature]]]:
    """The layer signatures of one case's original, and of its pruning at each of ``keeps``
    (every group keeping that share), by layer name."""
    loaded = load_case(arch, layout)
    analysis = analyse(loaded)
    pruned = {k: model_signatures(load_model(prune(analysis, ratio=k).model)) for k in keeps}
    return model_signatures(loaded), pruned


def compare(tables: list[dict[str, float]], arch: str, layout: str, keeps: list[float]) -> dict:
    """``layer_ratios`` and their sums for every ``keeps`` pruning of one case."""
    original, prunings = case_signatures(arch, layout, keeps)
    out = {}
    for keep, pruned in prunings.items():
        rows = layer_ratios(tables, original, pruned)
        sums = (
            [
                sum(r["pruned_ms"][i] for r in rows) / sum(r["original_ms"][i] for r in rows)
                for i in range(len(tables))
            ]
            if rows
            else []
        )
        out[str(keep)] = {"layers": rows, "sum_ratio": sums}
    return out


def report(results: dict) -> str:
    """Markdown: per keep, the summed ratio in each table and the layers that differ most."""
    names = results["tables"]
    lines = [
        f"# {len(names)} runs' kernel tables: each pruned layer's entry over its original's",
        "",
        f"Command: `{results['command']}` (reads the tables, measures nothing). Tables: "
        + ", ".join(f"{i + 1}: `{n}`" for i, n in enumerate(names))
        + ".",
        "",
    ]
    for case, keeps in results["cases"].items():
        for keep, data in keeps.items():
            sums = ", ".join(f"{s:.3f}" for s in data["sum_ratio"])
            lines += [
                f"## {case}, keep {keep}: summed entries over the original's: {sums}",
                "",
                "| layer | channels | ratio per table | original entry (ms) per table |",
                "|---|---|---|---|",
            ]
            rows = sorted(
                data["layers"],
                key=lambda r: -(max(r["ratio"]) - min(r["ratio"])) * max(r["original_ms"]),
            )
            for r in rows[: results["top"]]:
                ratios = ", ".join(f"{x:.3f}" for x in r["ratio"])
                ms = ", ".join(f"{x:.3f}" for x in r["original_ms"])
                lines.append(
                    f"| {r['layer']} | {r['channels'][0]} -> {r['channels'][1]} | {ratios} | {ms} |"
                )
            lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", type=Path, nargs="+", help="kernel table files (.json[.gz])")
    parser.add_argument("--case", default="mobilenet_v2:nchw", help="arch:layout,...")
    parser.add_argument("--keep", type=float, nargs="+", default=[0.3, 0.5])
    parser.add_argument("--top", type=int, default=8, help="layers listed per keep")
    parser.add_argument("--out", type=Path, default=None, help="write NAME.json/.md here")
    parser.add_argument("--name", default="entry_tables")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if missing := [str(p) for p in args.tables if not p.exists()]:
        parser.error(f"no table file {', '.join(missing)}")
    if bad := [k for k in args.keep if not 0.0 < k < 1.0]:
        parser.error(f"--keep {bad[0]} is outside (0, 1): the share of each group's channels kept")
    tables = [read_kernel_entries(p) for p in args.tables]
    results = {
        "command": "python -m benchmarks.entry_tables " + " ".join(argv),
        "tables": [str(p) for p in args.tables],
        "top": args.top,
        "cases": {
            f"{arch}:{layout}": compare(tables, arch, layout, args.keep)
            for arch, layout in parse_cases(args.case)
        },
    }
    if args.out is not None:
        print(save_results(results, report, args.out, args.name))
    else:
        print(report(results))


if __name__ == "__main__":
    main()
