"""The local engine: proposals in this process, or in a pool of spawned worker processes.

Each worker is pinned to one device of the plan (one GPU each when there are GPUs) and gets
the run's data, plan and teacher once, when it starts. Workers end by themselves when this
process dies (even by ``kill -9``). A worker that dies mid-iteration breaks the pool: the
proposals it left unfinished run again in a new pool, up to ``retries`` times.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from onnx_netadapt.adapt.proposals import (
    EvalContext,
    ProposalJob,
    ProposalScore,
    evaluate_proposal,
)
from onnx_netadapt.engines.base import EngineError, Progress
from onnx_netadapt.engines.devices import DevicePlan

logger = logging.getLogger(__name__)

# How often a worker checks that the process that started it is still alive (seconds).
PARENT_CHECK_SECONDS = 1.0
# New pools started for proposals whose worker died, before the run stops.
DEFAULT_RETRIES = 2

_WORKER_CONTEXT: EvalContext | None = None
_WORKER_DEVICE = "cpu"


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


def _init_worker(ctx: EvalContext, devices: multiprocessing.Queue, parent_pid: int) -> None:
    global _WORKER_CONTEXT, _WORKER_DEVICE
    _WORKER_CONTEXT = ctx
    _WORKER_DEVICE = devices.get()
    exit_with_parent(parent_pid)


def _run_in_worker(job: ProposalJob) -> ProposalScore:
    """``evaluate_proposal`` in a worker on its pinned device (the same failure policy as
    in-process: a NetAdaptError is a failed proposal, anything else reaches the parent)."""
    assert _WORKER_CONTEXT is not None
    return evaluate_proposal(job, _WORKER_CONTEXT, _WORKER_DEVICE)


class LocalEngine:
    """Proposals on this machine: in-process for one worker, else a spawned pool."""

    name = "local"

    def __init__(self, plan: DevicePlan, retries: int = DEFAULT_RETRIES) -> None:
        self.plan = plan
        self.retries = retries
        self.ctx: EvalContext | None = None
        self._pool: ProcessPoolExecutor | None = None

    # the loop uses engines as context managers around start/close
    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(interrupted=exc_type is not None)

    def start(self, ctx: EvalContext) -> None:
        """Keep ``ctx``; start the pool when the plan has several workers."""
        self.ctx = ctx
        if self.plan.workers > 1:
            self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        spawn = multiprocessing.get_context("spawn")
        devices = spawn.Queue()
        for device in self.plan.devices:
            devices.put(device)
        return ProcessPoolExecutor(
            max_workers=self.plan.workers,
            mp_context=spawn,
            initializer=_init_worker,
            initargs=(self.ctx, devices, os.getpid()),
        )

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the pool's workers (empty in-process)."""
        return sorted(getattr(self._pool, "_processes", None) or {})

    def evaluate(
        self, jobs: list[ProposalJob], current: bytes, progress: Progress | None = None
    ) -> list[ProposalScore]:
        """Scores of ``jobs`` in job order (``current`` is not needed: workers read files)."""
        assert self.ctx is not None, "start() first"
        if self._pool is None:
            scores = []
            for done, job in enumerate(jobs, start=1):
                scores.append(evaluate_proposal(job, self.ctx, self.plan.devices[0]))
                if progress:
                    progress(done, len(jobs))
            return scores
        return self._evaluate_in_pool(jobs, progress)

    def _evaluate_in_pool(
        self, jobs: list[ProposalJob], progress: Progress | None
    ) -> list[ProposalScore]:
        results: dict[int, ProposalScore] = {}
        for attempt in range(self.retries + 1):
            assert self._pool is not None
            try:
                pending: dict[Future, int] = {
                    self._pool.submit(_run_in_worker, job): index
                    for index, job in enumerate(jobs)
                    if index not in results
                }
                for future in as_completed(pending):
                    results[pending[future]] = future.result()
                    if progress:
                        progress(len(results), len(jobs))
                return [results[i] for i in range(len(jobs))]
            except BrokenProcessPool:
                lost = len(jobs) - len(results)
                logger.warning(
                    "a worker died; %d proposals run again (attempt %d)", lost, attempt + 2
                )
                _terminate(self._pool)
                self._pool = self._new_pool()
        raise EngineError(
            f"workers died {self.retries + 1} times while fine-tuning this iteration's "
            f"proposals ({len(jobs) - len(results)} unfinished): check memory (each worker "
            "holds the data and the teacher) or use fewer --workers"
        )

    def close(self, interrupted: bool = False) -> None:
        """Stop the pool (without waiting for running proposals when ``interrupted``)."""
        if self._pool is None:
            return
        if interrupted:
            _terminate(self._pool)
        else:
            self._pool.shutdown(cancel_futures=True)
        self._pool = None


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop ``pool`` without waiting for its tasks, and end every worker it started.

    A broken pool ends the workers it knew of when it broke, but a worker spawned on demand
    just then can survive it, blocked on a queue nobody writes; the interpreter would then wait
    for it at exit.
    """
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        if process.is_alive():
            process.terminate()
    for process in workers:
        process.join(timeout=5)
