"""A deployment pipeline step: adapt a model without a human watching, decide from the JSON.

    python examples/pipeline/run.py MODEL.onnx --budget 0.7 --out DIR [--target ort]

It runs ``onnx-netadapt`` with ``--json --quiet`` and the data function in ``data.py``, then:
exit code 0 -> ship DIR/adapted.onnx if it kept at least ``--min-accuracy`` of the original's
validation accuracy; exit code 10 (budget unreachable) -> keep the original and report why;
any other code -> fail the pipeline with the tool's message. An interrupted step is re-run with
the same command: an existing run directory is resumed, not started over.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUDGET_UNREACHABLE = 10


def adapt(model: Path, budget: str, out: Path, target: str, extra: list[str]) -> tuple[int, dict]:
    """Run the CLI (resuming ``out`` if it holds a run); return (exit code, JSON summary)."""
    cli = [sys.executable, "-m", "onnx_netadapt.cli"]
    if (out / "state.json").exists():
        command = [*cli, "--resume", str(out), "--json", "--quiet"]
    else:
        command = [*cli, str(model), "--target", target, "--budget", budget]
        command += ["--data", "data:splits", "-o", str(out), "--json", "--quiet", *extra]
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.stderr:
        print(done.stderr, file=sys.stderr, end="")
    summary = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--budget", default="0.7")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--target", default="ort")
    parser.add_argument("--min-accuracy", type=float, default=0.98, help="fraction of original")
    args, extra = parser.parse_known_args()
    code, summary = adapt(args.model, args.budget, args.out, args.target, extra)
    if code == BUDGET_UNREACHABLE:
        print(f"keep the original: {summary.get('error', 'budget unreachable')}")
        sys.exit(0)
    if code != 0:
        sys.exit(f"adaptation failed (exit {code}): {summary.get('error', 'see stderr')}")
    acc = summary["val_accuracy"]
    kept = acc["adapted"] / max(acc["original"], 1e-9)
    decision = "ship" if kept >= args.min_accuracy else "keep the original"
    print(
        json.dumps(
            {
                "decision": decision,
                "model": summary["adapted"] if decision == "ship" else str(args.model),
                "latency_ratio": summary["final"]["latency"] / summary["original"]["latency"],
                "accuracy_kept": kept,
            }
        )
    )


if __name__ == "__main__":
    main()
