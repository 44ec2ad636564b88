"""What a measuring benchmark records about its run, and how it saves its results."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from onnx_netadapt.graph.save import save_json, save_text
from onnx_netadapt.measure.host import cpu_identity


def run_header(module: str, argv: list[str] | None) -> dict[str, str]:
    """The command that repeats the run (``python -m benchmarks.<module> <arguments>``; the
    process's own arguments when ``argv`` is None), the CPU it ran on and the UTC time."""
    arguments = sys.argv[1:] if argv is None else argv
    return {
        "command": f"python -m benchmarks.{module} " + " ".join(arguments),
        "cpu": cpu_identity(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def save_results(results: dict, report: Callable[[dict], str], out: Path, name: str) -> str:
    """``results`` as ``out/name.json`` and their markdown ``report`` as ``out/name.md`` (each
    written atomically); returns the report."""
    out.mkdir(parents=True, exist_ok=True)
    text = report(results)
    save_json(results, out / f"{name}.json")
    save_text(text, out / f"{name}.md")
    return text
