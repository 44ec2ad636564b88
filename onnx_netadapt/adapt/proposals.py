"""NetAdapt steps 3-4 for each proposal: short-term fine-tune, then the task's holdout score.

Proposals are independent: each is a pruned ONNX file plus a seed derived from the run seed,
the iteration and the group's producers, and torch uses a fixed thread count per proposal, so
the results are the same whether they run one after another or in ``workers`` processes.
Fine-tuning happens in the bridge (``onnx_netadapt.finetune``), imported only here and lazily.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import onnx

from onnx_netadapt.data.dataset import DataSplits
from onnx_netadapt.errors import NetAdaptError
from onnx_netadapt.evaluate import task_score
from onnx_netadapt.graph.save import save_model
from onnx_netadapt.tasks.base import Task
from onnx_netadapt.tasks.classification import Classification

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


@dataclass(frozen=True)
class ProposalJob:
    """Fine-tune the pruned model at ``path`` in place and score it on the holdout set."""

    group_id: int
    path: str
    seed: int


@dataclass
class ProposalScore:
    """What a proposal achieved (``error`` set when it could not be fine-tuned)."""

    group_id: int
    holdout_accuracy: float
    seconds: float
    train_loss: float | None = None
    error: str | None = None
    holdout_loss: float = float("nan")


def proposal_seed(seed: int, iteration: int, producers: list[str]) -> int:
    """A seed that identifies the proposal, independent of evaluation order."""
    text = f"{seed}:{iteration}:{','.join(producers)}"
    return zlib.crc32(text.encode()) & 0x7FFFFFFF


@dataclass
class EvalContext:
    """What every proposal evaluation needs: data, plan, teacher, the original model's outputs
    on the holdout set (when the task scores against them), and the task."""

    data: DataSplits
    plan: TrainPlan
    teacher: onnx.ModelProto | None = None
    holdout_reference: list[np.ndarray] | None = None
    task: Task = field(default_factory=Classification)


def evaluate_proposal(job: ProposalJob, ctx: EvalContext) -> ProposalScore:
    """Fine-tune the proposal (steps of ``ctx.plan``), write it back, score on the holdout."""
    start = time.perf_counter()
    model = onnx.load(job.path)
    loss = None
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
                threads=ctx.plan.threads,
            )
            result = fine_tune(model, ctx.data.train, settings, teacher=ctx.teacher, task=ctx.task)
            model, loss = result.model, result.stats.final_loss
            save_model(model, job.path)
        acc, holdout_loss = task_score(model, ctx.data.holdout, ctx.task, ctx.holdout_reference)
    except NetAdaptError as exc:
        return ProposalScore(
            job.group_id, float("nan"), time.perf_counter() - start, error=str(exc)
        )
    seconds = time.perf_counter() - start
    return ProposalScore(job.group_id, acc, seconds, loss, holdout_loss=holdout_loss)


# -- worker processes ----------------------------------------------------------------------
_WORKER_CONTEXT: EvalContext | None = None

# How often a worker checks that the process that started it is still alive (seconds).
PARENT_CHECK_SECONDS = 1.0


def exit_with_parent(parent_pid: int, interval: float = PARENT_CHECK_SECONDS) -> threading.Thread:
    """End this process when ``parent_pid`` is gone (killed with -9, crashed).

    A worker blocked on its task queue never notices a dead parent by itself (its queue's
    pipes stay open in the other workers), so a daemon thread polls the parent and leaves.
    """

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:
                os._exit(3)

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread


def _init_worker(ctx: EvalContext, parent_pid: int) -> None:
    global _WORKER_CONTEXT
    _WORKER_CONTEXT = ctx
    exit_with_parent(parent_pid)


def _run_in_worker(job: ProposalJob) -> ProposalScore:
    """``evaluate_proposal`` in a worker: the same policy as in-process (a NetAdaptError is a
    failed proposal; anything else is a bug and reaches the parent with its traceback)."""
    assert _WORKER_CONTEXT is not None
    return evaluate_proposal(job, _WORKER_CONTEXT)


class ProposalEvaluator:
    """Evaluates batches of proposals in this process or in a pool of ``workers`` processes.

    The pool (spawned once per run: torch is imported once per worker) is the seam where a
    cluster engine can plug in: anything with ``evaluate(jobs, progress)`` returning scores in
    job order works.
    """

    def __init__(self, ctx: EvalContext, workers: int = 1) -> None:
        self.ctx = ctx
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> ProposalEvaluator:
        if self.workers > 1:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.ctx, os.getpid()),
            )
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if self._pool is None:
            return
        if exc_type is None:
            self._pool.shutdown(cancel_futures=True)
        else:  # Ctrl-C or an error: do not wait for proposals nobody will read
            workers = list(getattr(self._pool, "_processes", {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for process in workers:
                process.terminate()
            for process in workers:
                process.join(timeout=5)
        self._pool = None

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the pool's workers (empty in-process)."""
        return sorted(getattr(self._pool, "_processes", {}) or {})

    def evaluate(
        self, jobs: list[ProposalJob], progress: Callable[[int, int], None] | None = None
    ) -> list[ProposalScore]:
        """Scores of ``jobs``, in job order."""
        results: list[ProposalScore] = []
        for done, score in enumerate(self._iterate(jobs), start=1):
            results.append(score)
            if progress:
                progress(done, len(jobs))
        return results

    def _iterate(self, jobs: list[ProposalJob]) -> Iterator[ProposalScore]:
        if self._pool is None:
            for job in jobs:
                yield evaluate_proposal(job, self.ctx)
            return
        yield from self._pool.map(_run_in_worker, jobs)
