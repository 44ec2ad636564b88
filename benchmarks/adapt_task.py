"""A real pretrained non-classifier adapted with ``--task distill``: the PP-OCRv4 text
recogniser (CTC, 6625 classes) shipped inside the ``rapidocr_onnxruntime`` wheel, to 0.6 of its
ONNX Runtime latency (1 thread, batch 1, 48x320 lines), on rendered text lines
(benchmarks/ocr_lines.py). Proposals are trained by distillation (``distill``: KL to the
original's output probabilities) and scored by the character agreement of their greedy CTC
decoding with the original's (``benchmarks.ocr_lines:CtcDistill``, a task given by path: no
labels); this script then reads the validation lines with the original and the
adapted model (greedy CTC decoding) and reports line and character accuracy against the
rendered texts.

    pip install -c constraints.txt --no-deps rapidocr_onnxruntime==1.4.4
    python -m benchmarks.adapt_task run            # resumable: run it again to continue
    python -m benchmarks.adapt_task score          # OCR accuracy before/after -> results.md
    python -m benchmarks.adapt_task run --small --out /tmp/ocr_check   # does it go through?

Latency figures need a quiet CPU (no other jobs): the run measures on this machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import ocr_lines  # noqa: E402
from onnx_netadapt.adapt import AdaptConfig, adapt_model, parse_budget  # noqa: E402
from onnx_netadapt.data import ArrayDataset  # noqa: E402
from onnx_netadapt.errors import NetAdaptError  # noqa: E402
from onnx_netadapt.evaluate import run_outputs, task_score  # noqa: E402
from onnx_netadapt.tasks.distill import Distill  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "adapt_task"
SHAPE = [1, 3, ocr_lines.HEIGHT, ocr_lines.WIDTH]


def config(args: argparse.Namespace) -> AdaptConfig:
    """The run's settings (saved in the run directory; a resume keeps them)."""
    return AdaptConfig(
        target=args.target,
        budgets=[parse_budget(str(args.budget))],
        data="benchmarks.ocr_lines:" + ("splits_small" if args.small else "splits"),
        task="benchmarks.ocr_lines:CtcDistill",
        input_shapes={"x": SHAPE},
        step=args.step,
        decay=0.98,
        short_steps=args.short_steps,
        long_epochs=args.long_epochs,
        batch_size=args.batch_size,
        optimizer="adamw",
        lr=args.lr,
        workers=args.workers,
        train_threads=args.train_threads,
        max_iterations=args.max_iterations,
        margin=0.03,
    )


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    resume = (out / "state.json").exists()
    model = None if resume else ocr_lines.model_path()
    try:
        summary = adapt_model(model, None if resume else config(args), out, resume=resume)
    except NetAdaptError as exc:
        print(f"run stopped: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps({k: summary[k] for k in ("status", "original", "final", "val_accuracy")}))
    return 0


def score(args: argparse.Namespace) -> int:
    """OCR accuracy of the original and the adapted recogniser on the validation lines."""
    out = Path(args.out)
    history = json.loads((out / "history.json").read_text())
    summary = history.get("summary")
    if not summary:
        print(f"{out} holds no finished run: run it (again) first", file=sys.stderr)
        return 1
    sizes = ocr_lines.SMALL if "small" in history["config"]["data"] else ocr_lines.SIZES
    x, texts = ocr_lines.lines(sizes["val"], ocr_lines.SEEDS["val"])
    data = ArrayDataset(x)
    import onnx

    original = onnx.load(str(ocr_lines.model_path()))
    adapted = onnx.load(str(out / "adapted.onnx"))
    reference = run_outputs(original, data)
    unit = history["units"]["latency"]
    rows = {}
    for name, model in (("original", original), ("adapted", adapted)):
        probs = reference if model is original else run_outputs(model, data)
        rows[name] = {
            **ocr_lines.ocr_scores(ocr_lines.decode(probs[0]), texts),
            "fidelity": task_score(model, data, Distill(), reference).value,
            "latency": summary["original" if model is original else "final"]["latency"],
        }
    result = {
        "command": "python -m benchmarks.adapt_task run && python -m benchmarks.adapt_task score",
        "config": history["config"],
        "status": summary["status"],
        "iterations": summary["iterations"],
        "seconds_total": summary["seconds_total"],
        "val_lines": len(texts),
        "latency_unit": unit,
        "rows": rows,
    }
    (out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "results.md").write_text(_markdown(result))
    print(_markdown(result))
    return 0


def _markdown(result: dict) -> str:
    cfg = result["config"]
    lines = [
        "# PP-OCRv4 recogniser adapted by distillation (--task benchmarks.ocr_lines:CtcDistill)",
        "",
        f"Command: `{result['command']}` (budget {cfg['budgets'][0]['value']} of the ORT "
        f"latency, data `{cfg['data']}`, short steps {cfg['short_steps']}, long epochs "
        f"{cfg['long_epochs']}); status **{result['status']}** after {result['iterations']} "
        f"iterations, {result['seconds_total']:.0f} s.",
        "",
        f"Validation: {result['val_lines']} rendered lines never used for training or picking.",
        "",
        f"| model | {cfg['target']} latency ({result['latency_unit']}) | line accuracy | "
        "char accuracy | fidelity (1 - NMSE) |",
        "|---|---|---|---|---|",
    ]
    for name, row in result["rows"].items():
        lines.append(
            f"| {name} | {row['latency']:.4g} | {100 * row['line_accuracy']:.1f}% | "
            f"{100 * row['char_accuracy']:.1f}% | {row['fidelity']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "score"])
    parser.add_argument("--out", default=str(OUT / "run"))
    parser.add_argument("--budget", type=float, default=0.6)
    parser.add_argument("--target", default="ort", help="ort for the benchmark; macs to check")
    parser.add_argument("--small", action="store_true", help="a few lines: a quick check")
    parser.add_argument("--step", type=float, default=0.05)
    parser.add_argument("--short-steps", type=int, default=30)
    parser.add_argument("--long-epochs", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--train-threads", type=int, default=1)
    parser.add_argument("--max-iterations", type=int, default=60)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return run(args) if args.command == "run" else score(args)


if __name__ == "__main__":
    raise SystemExit(main())
