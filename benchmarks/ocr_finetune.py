"""How far a longer fine-tune brings an adapted OCR recogniser back: rounds of distillation on
freshly rendered lines, scored after each round on the validation lines.

    python -m benchmarks.ocr_finetune --model RUN/iterations/net_010.onnx \
        --teacher RUN/iterations/net_000.onnx --rounds 6 --lines 4000

Each round renders ``--lines`` new lines (seed 100 + round: never the run's train, holdout or
validation lines), fine-tunes for ``--epochs`` over them with the run's recipe (AdamW, cosine
schedule restarted every round, KL distillation from the original through
``benchmarks.ocr_lines:CtcDistill``), then reads the 256 validation lines (greedy CTC decoding)
and records line and character accuracy against the rendered texts. Each round's network is
saved in ``--work``; a rerun continues after the last saved round. No timing is measured here.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import onnx

from benchmarks import ocr_lines
from onnx_netadapt.data import ArrayDataset
from onnx_netadapt.evaluate import run_outputs
from onnx_netadapt.finetune import TrainSettings, fine_tune
from onnx_netadapt.graph.save import save_json, save_model, save_text

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "adapt_task" / "long_finetune"
logger = logging.getLogger("ocr_finetune")


def read(model: onnx.ModelProto, x, texts: list[str]) -> dict[str, float]:
    """Line and character accuracy of ``model``'s greedy decoding of the lines ``x``."""
    return ocr_lines.ocr_scores(ocr_lines.decode(run_outputs(model, ArrayDataset(x))[0]), texts)


def run(args: argparse.Namespace) -> list[dict]:
    """Every round not yet saved; the rows of all rounds."""
    args.work.mkdir(parents=True, exist_ok=True)
    val_x, val_texts = ocr_lines.lines(ocr_lines.SIZES["val"], ocr_lines.SEEDS["val"])
    teacher = onnx.load(str(args.teacher))
    log_path = args.work / "rounds.json"
    rounds = json.loads(log_path.read_text()) if log_path.exists() else []
    if not rounds:
        rounds.append(
            {
                "round": 0,
                "steps": 0,
                "seconds": 0.0,
                **read(onnx.load(str(args.model)), val_x, val_texts),
            }
        )
        rounds[0]["original"] = read(teacher, val_x, val_texts)
        save_json(rounds, log_path)
    model = (
        onnx.load(str(args.work / f"round_{len(rounds) - 1}.onnx"))
        if len(rounds) > 1
        else onnx.load(str(args.model))
    )
    for index in range(len(rounds), args.rounds + 1):
        x, _ = ocr_lines.lines(args.lines, 100 + index)
        settings = TrainSettings(
            epochs=args.epochs,
            batch_size=args.batch_size,
            optimizer="adamw",
            lr=args.lr,
            seed=index,
            threads=args.threads,
        )
        start = time.perf_counter()
        result = fine_tune(
            model, ArrayDataset(x), settings, teacher=teacher, task=ocr_lines.CtcDistill()
        )
        model = result.model
        save_model(model, args.work / f"round_{index}.onnx")
        row = {
            "round": index,
            "steps": rounds[-1]["steps"] + result.stats.steps,
            "seconds": rounds[-1]["seconds"] + time.perf_counter() - start,
            "final_loss": result.stats.final_loss,
            **read(model, val_x, val_texts),
        }
        rounds.append(row)
        save_json(rounds, log_path)
        logger.info("round %d: %s", index, row)
    return rounds


def markdown(args: argparse.Namespace, rounds: list[dict]) -> str:
    """The table of rounds."""
    original = rounds[0]["original"]
    lines = [
        "# A longer fine-tune of the adapted PP-OCRv4 recogniser",
        "",
        f"Command: `python -m benchmarks.ocr_finetune --model {args.model_label} "
        f"--rounds {args.rounds} --lines {args.lines} --epochs {args.epochs} --lr {args.lr} "
        f"--batch-size {args.batch_size}`.",
        "",
        f"Each round: {args.lines} freshly rendered lines, {args.epochs} epoch(s), AdamW lr "
        f"{args.lr} (cosine, restarted each round), KL distillation from the original. "
        "Validation: the run's 256 rendered lines. The original reads them at "
        f"{100 * original['line_accuracy']:.1f}% line "
        f"and {100 * original['char_accuracy']:.1f}% character accuracy.",
        "",
        "| round | optimiser steps | training s (shared CPU) | line accuracy | char accuracy |",
        "|---|---|---|---|---|",
    ]
    for row in rounds:
        lines.append(
            f"| {row['round']} | {row['steps']} | {row['seconds']:.0f} | "
            f"{100 * row['line_accuracy']:.1f}% | {100 * row['char_accuracy']:.1f}% |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="the adapted network")
    parser.add_argument("--teacher", type=Path, default=None, help="default: the wheel's model")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--lines", type=int, default=4000)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ocr_finetune"))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--model-label", default=None, help="how the command names --model")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        parser.error(f"--model {args.model} is not a file: give the adapted network's .onnx")
    args.teacher = args.teacher or ocr_lines.model_path()
    args.model_label = args.model_label or str(args.model)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    rounds = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    save_json({"settings": settings, "rounds": rounds}, args.out / "rounds.json")
    text = markdown(args, rounds)
    save_text(text, args.out / "README.md")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
