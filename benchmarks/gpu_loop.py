"""A 224x224 adaptation with CUDA fine-tunes, several workers sharing the GPU (a device check).

    python -m benchmarks.gpu_loop [--workers 1 2 4] [--iterations 2] [--out DIR]

For a machine with an NVIDIA GPU (this project's CPU machines have none). For each worker
count it adapts torchvision's MobileNetV2 (10 classes, random init, MNIST-5k digits upsampled
to 224x224 RGB, see ``benchmarks.loop_speed``) for ``--iterations`` iterations on the ``macs``
target (the GPU check is about fine-tuning, not latency), with ``--device cuda``, and reports
time per iteration, proposals per minute and the GPU's utilisation sampled by nvidia-smi every
0.5 s during the run. Writes gpu_loop.md / gpu_loop.json under ``--out``.

On the device machine (its image lacks onnx2torch and onnx-graphsurgeon, and reads ONNX IR 10
at most through its older ONNX Runtime; carry the wheels as the device README says):

    python -m benchmarks.gpu_loop --out $OUT
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import threading
import time
from pathlib import Path

from benchmarks.loop_speed import digits_224, mobilenet_v2_224
from onnx_netadapt.adapt import AdaptConfig, adapt, parse_budget
from onnx_netadapt.graph.save import save_json, save_text


def sample_gpu(stop: threading.Event, samples: list[float]) -> None:
    """GPU utilisation (%) every 0.5 s until ``stop`` is set (nothing without nvidia-smi)."""
    while not stop.is_set():
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout
            samples.extend(float(v) for v in out.split())
        except (OSError, ValueError, subprocess.TimeoutExpired):
            return
        stop.wait(0.5)


def run(workers: int, iterations: int, work: Path, model: Path) -> dict:
    """One adaptation with ``workers`` CUDA workers; timings and GPU utilisation."""
    data = digits_224(1024)
    config = AdaptConfig(
        target="macs",
        budgets=[parse_budget("0.5")],
        data="given",
        step=0.05,
        short_steps=50,
        long_epochs=0,
        batch_size=64,
        holdout_per_class=10,
        input_shapes={"image": [1, 3, 224, 224]},
        device="cuda",
        workers=workers,
        max_iterations=iterations,
    )
    samples: list[float] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_gpu, args=(stop, samples), daemon=True)
    sampler.start()
    start = time.perf_counter()
    seconds, proposals = [], 0
    try:
        for result in adapt(model, config, work / f"w{workers}", data=data):
            if result.record and result.record.group is not None:
                seconds.append(result.record.total_seconds)
                proposals += len(result.record.proposals)
    except Exception as exc:  # the limit of iterations ends the run with its own error
        if "max-iterations" not in str(exc):
            raise
    wall = time.perf_counter() - start
    stop.set()
    sampler.join(timeout=2)
    return {
        "workers": workers,
        "iterations": len(seconds),
        "seconds_per_iteration": statistics.median(seconds) if seconds else None,
        "proposals_per_minute": 60.0 * proposals / sum(seconds) if seconds else None,
        "wall_seconds": wall,
        "gpu_utilisation_median": statistics.median(samples) if samples else None,
        "gpu_utilisation_samples": len(samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/gpu_loop"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model = mobilenet_v2_224(args.out)
    rows = [run(w, args.iterations, args.out, model) for w in args.workers]
    save_json(rows, args.out / "gpu_loop.json")
    lines = [
        "| workers | s / iteration | proposals / min | GPU util (median %) |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workers']} | {r['seconds_per_iteration']} | {r['proposals_per_minute']} | "
            f"{r['gpu_utilisation_median']} |"
        )
    save_text("\n".join(lines) + "\n", args.out / "gpu_loop.md")
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
