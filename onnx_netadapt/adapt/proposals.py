"""NetAdapt steps 3-4 for each proposal: short-term fine-tune, then the task's holdout score.

Proposals are independent: each is a pruned ONNX file plus a seed derived from the run seed,
the iteration and the group's producers, and torch uses a fixed thread count per proposal, so
the results are the same whichever engine runs them, in whatever order (``onnx_netadapt.engines``).
Fine-tuning happens in the bridge (``onnx_netadapt.finetune``), imported only here and lazily.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from onnx_netadapt.channels.context import DEFAULT_ATTENTION_UNITS
from onnx_netadapt.data.dataset import DataSplits
from onnx_netadapt.errors import NetAdaptError
from onnx_netadapt.evaluate import task_score
from onnx_netadapt.graph.save import save_model
from onnx_netadapt.tasks.base import Task
from onnx_netadapt.tasks.classification import Classification

if TYPE_CHECKING:
    from onnx_netadapt.adapt.search import Candidate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainPlan:
    """How every proposal is fine-tuned (the same for all of them)."""

    steps: int
    batch_size: int
    optimizer: str
    lr: float
    distill: float
    threads: int
    deterministic: bool = False


@dataclass(frozen=True)
class ProposalJob:
    """Fine-tune the pruned model at ``path`` in place and score it on the holdout set.

    ``units`` (the group's kept units), ``allow_approximate`` and ``attention_units`` let an
    engine whose workers cannot read ``path`` rebuild the same proposal from the current
    network.
    """

    group_id: int
    path: str
    seed: int
    units: int = 0
    allow_approximate: bool = False
    attention_units: str = DEFAULT_ATTENTION_UNITS


@dataclass
class ProposalScore:
    """What a proposal achieved (``error`` set when it could not be fine-tuned)."""

    group_id: int
    holdout_accuracy: float
    seconds: float
    train_loss: float | None = None
    error: str | None = None
    holdout_loss: float = float("nan")
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage (convert, ...)


def proposal_seed(seed: int, iteration: int, producers: list[str]) -> int:
    """A seed that identifies the proposal, independent of evaluation order."""
    text = f"{seed}:{iteration}:{','.join(producers)}"
    return zlib.crc32(text.encode()) & 0x7FFFFFFF


def write_proposals(
    folder: Path,
    candidates: list[Candidate],
    seed: int,
    iteration: int,
    allow_approximate: bool,
    attention_units: str = DEFAULT_ATTENTION_UNITS,
) -> list[ProposalJob]:
    """Save each candidate network in ``folder`` (emptied first) as a job for an engine; the
    candidates' models are dropped from memory once on disk."""
    shutil.rmtree(folder, ignore_errors=True)
    jobs = []
    for cand in candidates:
        path = save_model(cand.model, folder / f"group_{cand.group_id:04d}.onnx")
        job_seed = proposal_seed(seed, iteration, cand.producers)
        jobs.append(
            ProposalJob(
                cand.group_id,
                str(path),
                job_seed,
                cand.units,
                allow_approximate,
                attention_units,
            )
        )
        cand.model = None  # type: ignore[assignment]  # free memory: it is on disk now
    return jobs


def proposal_records(candidates: list[Candidate], scores: list[ProposalScore]) -> list[dict]:
    """Every proposal of an iteration as history.json lists it."""
    return [
        {
            **c.describe(),
            "holdout_accuracy": s.holdout_accuracy,
            "holdout_loss": s.holdout_loss,
            "seconds": s.seconds,
            "stages": s.stages,
            "error": s.error,
        }
        for c, s in zip(candidates, scores, strict=True)
    ]


@dataclass
class EvalContext:
    """What every proposal evaluation needs: data, plan, teacher, the original model's outputs
    on the holdout set (when the task scores against them), and the task."""

    data: DataSplits
    plan: TrainPlan
    teacher: onnx.ModelProto | None = None
    holdout_reference: list[np.ndarray] | None = None
    task: Task = field(default_factory=Classification)


# What a proposal imports (torch, onnx2torch and its converters come with ``finetune``).
WARM_MODULES = ("onnx_netadapt.finetune", "onnx_netadapt.prune.apply", "onnxruntime")


def warm_worker() -> int:
    """Import what a proposal needs (torch, onnx2torch and the converters, the pruning code)
    so that a fresh worker pays for it when the engine starts, not inside the first
    iteration's timing; returns the worker's process id."""
    for module in WARM_MODULES:
        importlib.import_module(module)
    return os.getpid()


def rebuild_proposal(current: bytes, job: ProposalJob) -> onnx.ModelProto:
    """The proposal of ``job`` made again from the current network's file content (the same
    normalisation, analysis and L2 pruning as the loop's search, so the same model)."""
    from onnx_netadapt.channels.analysis import analyse
    from onnx_netadapt.graph.load import load_model
    from onnx_netadapt.prune.apply import prune

    analysis = analyse(load_model(current, fold=False), job.attention_units)
    keep = {job.group_id: job.units}
    return prune(analysis, keep, allow_approximate=job.allow_approximate, check=False).model


def fine_tune_and_score(
    model: onnx.ModelProto, job: ProposalJob, ctx: EvalContext, device: str = "cpu"
) -> tuple[ProposalScore, onnx.ModelProto]:
    """Fine-tune ``model`` (the proposal of ``job``) on ``device`` and score it on the holdout.

    Returns the score and the fine-tuned model; a NetAdaptError (an operator without
    converter, ORT and torch disagreeing) is a failed proposal, anything else a bug that
    propagates, whichever engine runs it.
    """
    start = time.perf_counter()
    loss = None
    stages: dict[str, float] = {}
    try:
        if ctx.plan.steps > 0:
            from onnx_netadapt.finetune import TrainSettings, fine_tune

            settings = TrainSettings(
                steps=ctx.plan.steps,
                batch_size=ctx.plan.batch_size,
                optimizer=ctx.plan.optimizer,
                lr=ctx.plan.lr,
                distill=ctx.plan.distill if ctx.teacher is not None else 0.0,
                seed=job.seed,
                device=device,
                threads=ctx.plan.threads,
                deterministic=ctx.plan.deterministic,
            )
            result = fine_tune(model, ctx.data.train, settings, teacher=ctx.teacher, task=ctx.task)
            model, loss, stages = result.model, result.stats.final_loss, dict(result.seconds)
        scoring = time.perf_counter()
        acc, holdout_loss = task_score(model, ctx.data.holdout, ctx.task, ctx.holdout_reference)
        stages["score"] = time.perf_counter() - scoring
    except NetAdaptError as exc:
        failed = ProposalScore(
            job.group_id, float("nan"), time.perf_counter() - start, error=str(exc)
        )
        return failed, model
    seconds = time.perf_counter() - start
    score = ProposalScore(
        job.group_id, acc, seconds, loss, holdout_loss=holdout_loss, stages=stages
    )
    return score, model


def evaluate_proposal(job: ProposalJob, ctx: EvalContext, device: str = "cpu") -> ProposalScore:
    """Fine-tune the proposal at ``job.path`` in place (steps of ``ctx.plan``) and score it."""
    start = time.perf_counter()
    model = onnx.load(job.path)
    loaded = time.perf_counter() - start
    score, model = fine_tune_and_score(model, job, ctx, device)
    start = time.perf_counter()
    if score.error is None and ctx.plan.steps > 0:
        save_model(model, job.path)
    score.stages["file_io"] = loaded + time.perf_counter() - start
    score.seconds += score.stages["file_io"]
    return score
