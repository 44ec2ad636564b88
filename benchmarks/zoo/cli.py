"""Command line of ``python -m benchmarks.zoo`` (see the package docstring)."""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from benchmarks.zoo.catalogue import DEFAULT_INPUT_SIZE, all_models, select
from benchmarks.zoo.export import EXPORTERS, RESULT_MARKER, export_all, export_in_process
from benchmarks.zoo.verify import verify_export


def _cmd_list(args: argparse.Namespace) -> None:
    models = select(all_models(), args.only, args.limit)
    for m in models:
        size = "x".join(map(str, m.input_size))
        print(f"{m.source:12s} {m.family:18s} {m.name:34s} {size:12s} {m.params_m:9.2f}M")
    print()
    for source, count in collections.Counter(m.source for m in models).items():
        families = collections.Counter(m.family for m in models if m.source == source)
        print(f"{source}: {count} models, {len(families)} families")
        print("  " + ", ".join(f"{fam} {n}" for fam, n in sorted(families.items())))
    print(f"total: {len(models)}")


def _cmd_export(args: argparse.Namespace) -> None:
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(args.threads)
    try:
        seconds = export_in_process(
            args.source, args.name, args.exporter, Path(args.out), args.input_size, args.opset
        )
    except Exception as exc:
        # Exporter messages can span many lines (TorchScript graph dumps): report the first.
        message = (str(exc).strip().splitlines() or [""])[0][:500]
        summary = f"{type(exc).__module__}.{type(exc).__qualname__}: {message}"
        print(RESULT_MARKER + json.dumps({"error": summary}), flush=True)
        raise
    print(RESULT_MARKER + json.dumps({"seconds": seconds}), flush=True)


def _cmd_export_all(args: argparse.Namespace) -> None:
    models = select(all_models(), args.only, args.limit)
    print(f"exporting {len(models)} models with the {args.exporter} exporter", flush=True)
    start = time.perf_counter()
    entries = export_all(
        models, args.exporter, Path(args.out), args.opset, args.timeout, args.skip_failed
    )
    done = [entries[m.key] for m in models if m.key in entries]
    ok = [e for e in done if e["ok"]]
    print(
        f"done in {time.perf_counter() - start:.0f} s: {len(ok)} ok, {len(done) - len(ok)} failed",
        flush=True,
    )


def _cmd_verify(args: argparse.Namespace) -> None:
    warnings.filterwarnings("ignore")
    target = Path(args.out).resolve() / args.exporter
    failures = 0
    for model in select(all_models(), args.only, args.limit):
        path = target / f"{model.key}.onnx"
        if not path.exists():
            continue
        try:
            diff, scale = verify_export(model, path)
            good = diff < args.atol + args.rtol * scale and scale > 1e-6
            message = f"max abs diff {diff:.2e} (logits up to {scale:.3g})"
            if scale <= 1e-6:
                message += ": degenerate logits, the comparison proves nothing"
        except Exception as exc:
            good, message = False, f"{type(exc).__name__}: {exc}".splitlines()[0]
        failures += not good
        print(f"{model.key}: {'ok' if good else 'MISMATCH'} {message}", flush=True)
    sys.exit(1 if failures else 0)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks.zoo``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.zoo",
        description=sys.modules["benchmarks.zoo"].__doc__.split("\n")[0],
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add_selection(p: argparse.ArgumentParser) -> None:
        p.add_argument("--only", help="regular expression on '<source>__<name>'")
        p.add_argument("--limit", type=int, help="at most N models (after --only)")

    p = sub.add_parser("list", help="print the model list with counts per source and family")
    add_selection(p)
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("export", help="export one model in this process (used by export-all)")
    p.add_argument("--source", required=True, choices=("torchvision", "timm"))
    p.add_argument("--name", required=True)
    p.add_argument("--exporter", required=True, choices=EXPORTERS)
    p.add_argument("--out", required=True, help="output .onnx path")
    p.add_argument("--input-size", type=int, nargs=3, default=list(DEFAULT_INPUT_SIZE))
    p.add_argument("--opset", type=int)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("export-all", help="export the zoo sequentially, one subprocess per model")
    p.add_argument("--exporter", required=True, choices=EXPORTERS)
    p.add_argument("--out", required=True, help="cache directory; files go to OUT/<exporter>/")
    p.add_argument("--opset", type=int)
    p.add_argument("--timeout", type=int, default=600, help="seconds per model")
    p.add_argument("--skip-failed", action="store_true", help="do not retry logged failures")
    add_selection(p)
    p.set_defaults(func=_cmd_export_all)

    p = sub.add_parser("verify", help="check exported files against PyTorch with onnxruntime")
    p.add_argument("--exporter", required=True, choices=EXPORTERS)
    p.add_argument("--out", required=True)
    p.add_argument("--atol", type=float, default=1e-3)
    p.add_argument("--rtol", type=float, default=0.0, help="tolerance relative to the logit scale")
    add_selection(p)
    p.set_defaults(func=_cmd_verify)

    args = parser.parse_args(argv)
    args.func(args)
