"""Prunability of transformer and hybrid classifiers, before and after head pruning (issue 12 §4).

Exports (random weights, cached in ``ZOO_CACHE``) torchvision ViT/Swin and timm hybrids with
either exporter, analyses each in a subprocess with the ``onnx_netadapt`` found under ``--code``
(this checkout, or a checkout of the base commit for the "before" column), prunes every
exact group to 70% (grid 8) and checks the masked-original oracle. No latency is measured.

    ZOO_CACHE=/tmp/zoo python -m benchmarks.attention_heads run --exporter legacy \\
        --label after --code . --out benchmarks/results/prunability
    ZOO_CACHE=/tmp/zoo python -m benchmarks.attention_heads run --exporter legacy \\
        --label before --code /path/to/main --out benchmarks/results/prunability
    ZOO_CACHE=/tmp/zoo python -m benchmarks.attention_heads run --exporter legacy \\
        --label dims --units dims --code . --out benchmarks/results/prunability
    python -m benchmarks.attention_heads report --out benchmarks/results/prunability

Rows accumulate in attention.jsonl (started from the committed attention.json), the last row
per model, exporter and label wins; ``--units dims`` analyses attention by head dimension.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

KEEP_RATIO = 0.7
ROUND_TO = 8
MODELS = [
    ("torchvision", "vit_b_16", "vit"),
    ("torchvision", "swin_t", "swin"),
    ("timm", "mobilevit_xs", "mobilevit"),
    ("timm", "efficientformer_l1", "efficientformer"),
    ("timm", "efficientvit_b0", "efficientvit"),
    ("timm", "levit_128s", "levit"),
    ("timm", "tiny_vit_5m_224", "tiny_vit"),
    ("timm", "maxvit_tiny_tf_224", "maxvit"),
    ("timm", "coatnet_0_rw_224", "coatnet"),
    ("timm", "botnet26t_256", "botnet"),  # not in the issue: MHSA with relative logits
]
INPUT_SIZES = {"botnet26t_256": (3, 256, 256)}


def evaluate(path: str, units: str = "heads") -> dict[str, Any]:
    """Analyse one model (attention pruned by ``units``), prune its exact groups and check the
    oracle (in the subprocess)."""
    from onnx_netadapt import analyse, load_model, prune
    from onnx_netadapt.verify import check_against_masked

    loaded = load_model(path)
    analysis = analyse(loaded, attention_units=units) if units != "heads" else analyse(loaded)
    summary = analysis.summary()
    flag = "attention_dims" if units == "dims" else "attention_heads"
    heads = [g for g in analysis.groups if getattr(g, flag, False)]
    pinned: Counter[str] = Counter()
    for group in analysis.groups:
        if not group.prunable and group.reasons:
            reason = re.sub(r"'[^']*'", "'.'", group.reasons[0])
            pinned[reason] += sum(p.atoms.size for p in group.producers)
    row: dict[str, Any] = {
        "share": summary["prunable_share"],
        "share_with_approximate": summary["prunable_share_with_approximate"],
        "groups": summary["groups"],
        "prunable_groups": summary["prunable_groups"],
        "head_groups": len(heads),
        "head_groups_prunable": sum(g.prunable for g in heads),
        "heads_prunable": sum(g.units for g in heads if g.prunable),
        "pinned_channels_by_reason": dict(pinned.most_common(6)),
    }
    if any(g.prunable for g in analysis.groups):
        result = prune(analysis, ratio=KEEP_RATIO, round_to=ROUND_TO)
        oracle = check_against_masked(analysis, result)
        row.update(oracle_ok=oracle.ok, oracle_max_abs_diff=oracle.max_abs_diff)
    return row


def run(
    exporter: str, label: str, code: Path, out: Path, cache: Path, only: str | None, units: str
) -> None:
    """Export (cached) and evaluate each model; append one row per model to attention.jsonl."""
    from benchmarks import zoo

    out.mkdir(parents=True, exist_ok=True)
    for source, name, family in MODELS:
        if only and not re.search(only, name):
            continue
        size = INPUT_SIZES.get(name, zoo.DEFAULT_INPUT_SIZE)
        model = zoo.ZooModel(source, name, family, size, 0.0)
        path = cache / exporter / f"{model.key}.onnx"
        export = zoo.export(model, exporter, path, timeout_s=1800)
        row: dict[str, Any] = {"model": model.key, "exporter": exporter, "label": label}
        if not export.ok:
            row["error"] = f"export failed: {export.error}"
        else:
            env = dict(os.environ, PYTHONPATH=str(code.resolve()))
            cmd = [sys.executable, str(Path(__file__).resolve()), "one", str(path)]
            cmd += ["--units", units]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode or not lines:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                row["error"] = f"exit {proc.returncode}: {tail[:300]}"
            else:
                row.update(json.loads(lines[-1]))
        with _rows_file(out).open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    report(out)


def _rows_file(out: Path) -> Path:
    """attention.jsonl, started from the committed attention.json when absent (so a run adds
    rows to the committed table instead of replacing it)."""
    jsonl = out / "attention.jsonl"
    saved = out / "attention.json"
    if not jsonl.exists():
        rows = json.loads(saved.read_text()) if saved.exists() else []
        jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return jsonl


def report(out: Path) -> None:
    """Write attention.md and attention.json from attention.jsonl (the last row per key wins)."""
    rows: dict[tuple[str, str, str], dict] = {}
    for line in _rows_file(out).read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[(row["model"], row["exporter"], row["label"])] = row
    (out / "attention.json").write_text(json.dumps(list(rows.values()), indent=1) + "\n")
    lines = [
        "# Attention heads: prunable share of transformer and hybrid classifiers",
        "",
        "Generated by `python -m benchmarks.attention_heads` (commands in its docstring). "
        "Random weights. Share = Conv/Gemm/MatMul output channels in exact prunable groups, "
        "model outputs excluded (as in prunability.md); 'before' = commit 97b0c12 (no head "
        "pruning), 'after' = this tree. Oracle: every exact group kept at "
        f"{KEEP_RATIO} "
        f"(grid {ROUND_TO}), pruned model against the masked original. Head groups = groups "
        "reaching a product of two computed tensors (prunable / all); heads = units of the "
        "prunable ones. 'dims' = the same tree analysed with `attention_units='dims'` (a head "
        "loses the same dimensions as every other: q/k together, v with the output "
        "projection's rows); dim groups / dims = its per-dimension groups and their units "
        "(a block whose products keep whole heads, as linear attention, stays by heads).",
        "",
        "Commands (exports cached in ZOO_CACHE; `--code` is the tree whose onnx_netadapt is "
        "measured, the base commit of this branch for 'before'):",
        "",
        "    ZOO_CACHE=/tmp/zoo python -m benchmarks.attention_heads run --exporter legacy "
        "--label after --code .",
        "    ZOO_CACHE=/tmp/zoo python -m benchmarks.attention_heads run --exporter legacy "
        "--label before --code BASE_CHECKOUT",
        "    ZOO_CACHE=/tmp/zoo python -m benchmarks.attention_heads run --exporter legacy "
        "--label dims --units dims --code .",
        "    (the same with --exporter dynamo), then `python -m benchmarks.attention_heads report`",
        "",
        "| model | exporter | share before | share after | with approx. after "
        "| head groups | heads | oracle after | share dims | dim groups | dims | oracle dims "
        "| channels still pinned after, by first reason |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, exporter in sorted({(m, e) for m, e, _ in rows}):
        lines.append(_row(model, exporter, rows))
    (out / "attention.md").write_text("\n".join(lines) + "\n")


def _row(model: str, exporter: str, rows: dict[tuple[str, str, str], dict]) -> str:
    """The table row of ``model`` from ``exporter``: its before, after and dims runs."""
    before = rows.get((model, exporter, "before"), {})
    after = rows.get((model, exporter, "after"), {})
    dims = rows.get((model, exporter, "dims"), {})
    if "error" in after:
        return f"| {model} | {exporter} | | | | | | | | | | | {after['error'][:120]} |"

    def share(r: dict, key: str = "share") -> str:
        return f"{r[key]:.3f}" if key in r else ""

    def verdict(r: dict) -> str:
        return {True: "pass", False: "FAIL"}.get(r.get("oracle_ok"), r.get("error", "")[:60])

    reasons = "; ".join(
        f"{n}: {r.split(':')[0]}" for r, n in after.get("pinned_channels_by_reason", {}).items()
    )
    return (
        f"| {model} | {exporter} | {share(before)} | {share(after)} | "
        f"{share(after, 'share_with_approximate')} | "
        f"{after.get('head_groups_prunable', '')}/{after.get('head_groups', '')} | "
        f"{after.get('heads_prunable', '')} | {verdict(after)} | {share(dims)} | "
        f"{dims.get('head_groups_prunable', '')}/{dims.get('head_groups', '')} | "
        f"{dims.get('heads_prunable', '')} | {verdict(dims)} | "
        f"{reasons.replace('|', '/')[:400]} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Attention-head prunability of hybrids.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--exporter", choices=["legacy", "dynamo"], required=True)
    r.add_argument("--label", required=True, help="column: 'before' or 'after'")
    r.add_argument("--code", type=Path, default=Path("."), help="root holding onnx_netadapt")
    r.add_argument("--out", type=Path, default=Path("benchmarks/results/prunability"))
    r.add_argument("--cache", type=Path, default=Path(os.environ.get("ZOO_CACHE", "/tmp/zoo")))
    r.add_argument("--only", help="regex on the model name")
    r.add_argument("--units", choices=["heads", "dims"], default="heads", help="attention units")
    one = sub.add_parser("one")
    one.add_argument("path")
    one.add_argument("--units", choices=["heads", "dims"], default="heads")
    rep = sub.add_parser("report")
    rep.add_argument("--out", type=Path, default=Path("benchmarks/results/prunability"))
    args = parser.parse_args(argv)
    if args.cmd == "run":
        run(args.exporter, args.label, args.code, args.out, args.cache, args.only, args.units)
    elif args.cmd == "one":
        print(json.dumps(evaluate(args.path, args.units)))
    else:
        report(args.out)


if __name__ == "__main__":
    main()
