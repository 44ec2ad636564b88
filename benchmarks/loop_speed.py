"""Where a proposal's time goes, and proposals per minute against workers and engines.

    python -m benchmarks.loop_speed [--work /tmp/loop_speed] [--proposals 8] [--steps 50]

Run it on a quiet machine (nothing else measuring or training on the same cores).

1. Stages of one proposal (convert to torch, train, write back, ORT check, score, file I/O)
   for the embedded default (MobileNetV1-style, 28x28 MNIST-5k) and a 224x224
   MobileNetV2-style network (torchvision's, 10 classes, MNIST-5k digits upsampled to 224x224
   RGB); the share that is not training is the overhead the loop adds.
2. The same ``--proposals`` proposals of the default model (a group each, cut to 3/4) through
   the local engine with 1 and 2 workers and the Ray engine with 2 workers, two iterations
   on one started engine: wall time of ``evaluate`` (engine start reported apart),
   proposals per minute, and the scaling
   efficiency (rate with N workers / (N x rate with 1)). Every engine must give the same
   scores (checked).

Writes benchmarks/results/loop_speed/loop_speed.md and loop_speed.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from onnx_netadapt.adapt.proposals import EvalContext, ProposalJob, TrainPlan
from onnx_netadapt.channels.analysis import analyse
from onnx_netadapt.data import load_data
from onnx_netadapt.data.dataset import ArrayDataset, DataSplits
from onnx_netadapt.engines import make_engine, plan_devices
from onnx_netadapt.graph.load import load_model
from onnx_netadapt.graph.save import save_json, save_model, save_text
from onnx_netadapt.measure.host import cpu_model_name
from onnx_netadapt.prune.apply import prune

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "loop_speed"
STAGES = ("convert", "train", "write_back", "check", "score", "file_io")


def default_model(work: Path) -> Path:
    """The demo's MobileNetV1-style network, trained by the demo's own build script."""
    path = work / "demo" / "mobilenet_v1_w1.onnx"
    if not path.exists():
        build = REPO / "examples" / "adapt_demo" / "build.py"
        subprocess.run([sys.executable, str(build), "--out", str(path.parent)], check=True)
    return path


def mobilenet_v2_224(work: Path) -> Path:
    """torchvision's MobileNetV2 (10 classes, random init), exported at 1x3x224x224."""
    path = work / "mobilenet_v2_224.onnx"
    if path.exists():
        return path
    import torch

    from benchmarks.zoo import import_torchvision
    from onnx_netadapt.demo.build import export_dynamic_batch

    torch.manual_seed(0)
    net = import_torchvision().models.mobilenet_v2(num_classes=10).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(export_dynamic_batch(net, (1, 3, 224, 224)).SerializeToString())
    return path


def digits_224(count: int) -> DataSplits:
    """MNIST-5k digits upsampled to 224x224 and repeated over 3 channels (real images)."""
    import torch
    import torch.nn.functional as F

    small = load_data("mnist5k", (1, 1, 28, 28), holdout_per_class=5, num_classes=10)

    def grow(split: ArrayDataset, limit: int) -> ArrayDataset:
        x = torch.from_numpy(np.asarray(split.x[:limit], dtype=np.float32))
        big = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        return ArrayDataset(big.repeat(1, 3, 1, 1).numpy(), np.asarray(split.y[:limit]))

    return DataSplits(grow(small.train, count), grow(small.holdout, 50), grow(small.val, 50))


def proposals(
    model: Path, shape: tuple[int, ...], folder: Path, count: int
) -> tuple[list[ProposalJob], bytes]:
    """``count`` proposals of one iteration: the first groups, each cut to 3/4 of its units."""
    current = load_model(model, {"image": shape}).model.SerializeToString()
    analysis = analyse(load_model(current, fold=False))
    jobs = []
    for group in [g for g in analysis.groups if g.prunable][:count]:
        units = max(1, group.units * 3 // 4)
        pruned = prune(analysis, {group.id: units}, check=False).model
        path = save_model(pruned, folder / f"group_{group.id:04d}.onnx")
        jobs.append(ProposalJob(group.id, str(path), 1000 + group.id, units))
    return jobs, current


def fresh_copies(jobs: list[ProposalJob], folder: Path) -> list[ProposalJob]:
    """The jobs on copies of their files (each engine fine-tunes its own copy in place)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for job in jobs:
        target = folder / Path(job.path).name
        target.write_bytes(Path(job.path).read_bytes())
        out.append(ProposalJob(job.group_id, str(target), job.seed, job.units))
    return out


def stage_breakdown(
    model: Path, shape: tuple[int, ...], data: DataSplits, plan: TrainPlan, work: Path, count: int
) -> dict:
    """Stages of ``count`` proposals evaluated in this process."""
    jobs, current = proposals(model, shape, work, count)
    with make_engine("local", plan_devices("cpu", workers=1, threads=plan.threads)) as engine:
        engine.start(EvalContext(data, plan))
        start = time.perf_counter()
        scores = engine.evaluate(jobs, current)
        wall = time.perf_counter() - start
    per_stage = {s: statistics.median(x.stages.get(s, 0.0) for x in scores) for s in STAGES}
    total = statistics.median(x.seconds for x in scores)
    return {
        "proposals": len(scores),
        "steps": plan.steps,
        "batch_size": plan.batch_size,
        "median_seconds": total,
        "median_stage_seconds": per_stage,
        "not_training_share": 1.0 - per_stage["train"] / total,
        "wall_seconds": wall,
        "errors": [x.error for x in scores if x.error],
    }


def engine_rates(model: Path, data: DataSplits, plan: TrainPlan, work: Path, count: int) -> dict:
    """Proposals per minute of the same proposals on each engine and worker count, over two
    iterations on one started engine (as in a run: the engine starts once)."""
    jobs, current = proposals(model, (1, 1, 28, 28), work / "jobs", count)
    results: dict[str, dict] = {}
    reference = None
    for label, engine_name, workers in (
        ("local-1", "local", 1),
        ("local-2", "local", 2),
        ("ray-2", "ray", 2),
    ):
        devices = plan_devices("cpu", workers=workers, threads=plan.threads)
        started = time.perf_counter()
        walls, same = [], True
        with make_engine(engine_name, devices) as engine:
            engine.start(EvalContext(data, plan))
            ready = time.perf_counter()
            for iteration in (1, 2):
                own = fresh_copies(jobs, work / label / f"iteration_{iteration}")
                begin = time.perf_counter()
                scores = engine.evaluate(own, current)
                walls.append(time.perf_counter() - begin)
                accuracies = [s.holdout_accuracy for s in scores]
                reference = reference or accuracies
                same = same and accuracies == reference
        results[label] = {
            "workers": workers,
            "start_seconds": ready - started,
            "evaluate_seconds": walls,
            "proposals_per_minute": [60.0 * len(jobs) / wall for wall in walls],
            "same_scores_as_local_1": same,
        }
    base = results["local-1"]["proposals_per_minute"]
    for entry in results.values():
        entry["scaling_efficiency"] = [
            rate / (entry["workers"] * one)
            for rate, one in zip(entry["proposals_per_minute"], base, strict=True)
        ]
    return results


def render(report: dict) -> str:
    """loop_speed.md."""
    lines = [
        "# Loop speed",
        "",
        f"Machine: {report['cpu']}; command: `{report['command']}`.",
        "",
        "## Where one proposal's time goes (median over proposals, seconds)",
        "",
        "| network | steps x batch | " + " | ".join(STAGES) + " | total | not training |",
        "|---|---|" + "---|" * len(STAGES) + "---|---|",
    ]
    for name, row in report["stages"].items():
        cells = " | ".join(f"{row['median_stage_seconds'][s]:.3f}" for s in STAGES)
        lines.append(
            f"| {name} | {row['steps']} x {row['batch_size']} | {cells} | "
            f"{row['median_seconds']:.2f} | {100 * row['not_training_share']:.1f}% |"
        )
    lines += [
        "",
        f"## Proposals per minute ({report['engine_proposals']} proposals of the default model)",
        "",
        "Two iterations on one started engine; the engine's start is timed apart, as a run pays "
        "it once (Ray: connecting, and a warm-up task per worker; the local pool spawns its "
        "workers in iteration 1).",
        "",
        "| engine | workers | start (s) | evaluate (s), iterations 1 / 2 | proposals/min | "
        "scaling efficiency | same scores |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, row in report["engines"].items():
        lines.append(
            f"| {label} | {row['workers']} | {row['start_seconds']:.1f} | "
            f"{_pair(row['evaluate_seconds'], '.1f')} | "
            f"{_pair(row['proposals_per_minute'], '.1f')} | "
            f"{_pair(row['scaling_efficiency'], '.2f')} | {row['same_scores_as_local_1']} |"
        )
    return "\n".join(lines) + "\n"


def _pair(values: list[float], spec: str) -> str:
    return " / ".join(format(v, spec) for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/loop_speed"))
    parser.add_argument("--proposals", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--big-proposals", type=int, default=2)
    parser.add_argument("--big-batch", type=int, default=16)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    small = default_model(args.work)
    mnist = load_data("mnist5k", (1, 1, 28, 28), holdout_per_class=10, num_classes=10)
    plan = TrainPlan(
        steps=args.steps, batch_size=64, optimizer="sgd", lr=0.01, distill=0.0, threads=1
    )
    big_plan = TrainPlan(
        steps=args.steps,
        batch_size=args.big_batch,
        optimizer="sgd",
        lr=0.01,
        distill=0.0,
        threads=2,
    )
    report = {
        "cpu": cpu_model_name(),
        "command": "python -m benchmarks.loop_speed " + " ".join(sys.argv[1:]),
        "stages": {
            "default (MobileNetV1, 28x28)": stage_breakdown(
                small, (1, 1, 28, 28), mnist, plan, args.work / "small", args.proposals
            ),
            "MobileNetV2 224x224": stage_breakdown(
                mobilenet_v2_224(args.work),
                (1, 3, 224, 224),
                digits_224(256),
                big_plan,
                args.work / "big",
                args.big_proposals,
            ),
        },
        "engine_proposals": args.proposals,
        "engines": engine_rates(small, mnist, plan, args.work / "engines", args.proposals),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    save_json(report, RESULTS / "loop_speed.json")
    save_text(render(report), RESULTS / "loop_speed.md")
    print(render(report))
    print(json.dumps(report["engines"], indent=1))


if __name__ == "__main__":
    main()
