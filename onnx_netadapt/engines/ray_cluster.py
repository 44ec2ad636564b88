"""The Ray engine: every proposal is a Ray task, on a local Ray instance or a cluster.

- The run's data, plan and teacher go into the object store once per run, the current
  network once per iteration; each task rebuilds its proposal from the current network and
  its group's kept units (the loop's own pruning, so the same model) and returns the
  fine-tuned model, which the driver writes where the loop expects it.
- Resources: one GPU per task when the plan trains on GPUs, else ``threads`` CPUs.
- A task whose worker or node dies is retried by Ray up to ``retries`` times; past that the
  run stops with :class:`EngineError` and is resumable. A proposal is never scored as failed
  because its worker died.
- Latency is never measured by a proposal task: the runner stays with the driver (the
  loop's process), or lives in a Ray actor on the node that owns the device
  (``--measure-on``, :mod:`.ray_runner`).

``ray`` is an optional extra: ``pip install -c constraints.txt "onnx-netadapt[cluster]"``.
"""

from __future__ import annotations

import logging
from typing import Any

import onnx

from onnx_netadapt.adapt.proposals import (
    EvalContext,
    ProposalJob,
    ProposalScore,
    fine_tune_and_score,
    rebuild_proposal,
    warm_worker,
)
from onnx_netadapt.engines.base import EngineError, Progress
from onnx_netadapt.engines.devices import DevicePlan
from onnx_netadapt.graph.save import save_model

logger = logging.getLogger(__name__)

DEFAULT_RETRIES = 2
INSTALL_HINT = 'pip install -c constraints.txt "onnx-netadapt[cluster]" (or: pip install ray)'


def _evaluate_task(
    ctx: EvalContext, current: bytes, job: ProposalJob, device: str
) -> tuple[ProposalScore, bytes]:
    """One proposal on a Ray worker: rebuild, fine-tune, score; the model comes back as bytes."""
    model = rebuild_proposal(current, job)
    score, tuned = fine_tune_and_score(model, job, ctx, device)
    return score, tuned.SerializeToString()


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        message = f"--engine ray needs Ray, which is not installed: {INSTALL_HINT}"
        raise EngineError(message) from exc
    return ray


def connect_ray(address: str | None, **sizes: Any) -> tuple[Any, bool]:
    """Ray, connected to ``address`` (None: a new local instance of ``sizes``), and whether
    this call connected it (then the caller shuts it down); an existing connection is reused."""
    ray = _import_ray()
    if ray.is_initialized():
        return ray, False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address is None:
        options.update(sizes)
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise EngineError(
            f"cannot reach the Ray cluster at {address!r} ({exc}): start it with "
            "`ray start --head`, or leave out --ray-address for a local instance"
        ) from exc
    return ray, True


def lost_worker_errors(ray: Any) -> tuple[type[BaseException], ...]:
    """The exceptions that mean a worker, an actor or a node was lost (not a bug in the task)."""
    ex = ray.exceptions
    return (
        ex.WorkerCrashedError,
        ex.NodeDiedError,
        ex.ObjectLostError,
        ex.OwnerDiedError,
        ex.RayActorError,
        ex.ActorUnavailableError,
    )


class RayEngine:
    """Proposals as Ray tasks. ``address``: None starts a local Ray instance sized to the plan;
    ``auto`` joins the cluster this machine belongs to; ``ray://host:port`` a remote one."""

    name = "ray"

    def __init__(
        self, plan: DevicePlan, address: str | None = None, retries: int = DEFAULT_RETRIES
    ) -> None:
        self.plan = plan
        self.address = address
        self.retries = retries
        self._ray: Any = None
        self._started_ray = False
        self._ctx_ref: Any = None
        self._task: Any = None
        self._pending: list[Any] = []

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(interrupted=exc_type is not None)

    def start(self, ctx: EvalContext) -> None:
        """Connect to (or start) Ray, put ``ctx`` in the object store, and start one worker
        per slot of the plan (imports done)."""
        gpus = len({d for d in self.plan.devices if d.startswith("cuda")})
        cpus = self.plan.workers * self.plan.threads
        ray, self._started_ray = connect_ray(self.address, num_cpus=cpus, num_gpus=gpus)
        self._ray = ray
        self._ctx_ref = ray.put(ctx)
        resources = {"num_gpus": 1} if self.plan.gpu else {"num_cpus": self.plan.threads}
        self._task = ray.remote(max_retries=self.retries, **resources)(_evaluate_task)
        # one warm-up task per worker slot, with the proposals' resources: Ray keeps those
        # workers (torch imported) for the proposals that follow
        warm = ray.remote(**resources)(warm_worker)
        ray.get([warm.remote() for _ in range(self.plan.workers)])

    def evaluate(
        self, jobs: list[ProposalJob], current: bytes, progress: Progress | None = None
    ) -> list[ProposalScore]:
        """Scores of ``jobs`` in job order; fine-tuned proposals written to the jobs' paths."""
        ray = self._ray
        assert ray is not None and self._task is not None, "start() first"
        device = "cuda" if self.plan.gpu else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES per task
        current_ref = ray.put(current)
        refs = [self._task.remote(self._ctx_ref, current_ref, job, device) for job in jobs]
        self._pending = list(refs)
        done_count = 0
        results: dict[Any, tuple[ProposalScore, bytes]] = {}
        waiting = list(refs)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            for ref in ready:
                results[ref] = self._get(ref, jobs[refs.index(ref)])
                done_count += 1
                if progress:
                    progress(done_count, len(jobs))
        self._pending = []
        scores = []
        for ref, job in zip(refs, jobs, strict=True):
            score, tuned = results[ref]
            if score.error is None:
                save_model(onnx.load_model_from_string(tuned), job.path)
            scores.append(score)
        return scores

    def _get(self, ref: Any, job: ProposalJob) -> tuple[ProposalScore, bytes]:
        ray = self._ray
        try:
            return ray.get(ref)
        except lost_worker_errors(ray) as exc:
            raise EngineError(
                f"the proposal of group {job.group_id} lost its Ray worker "
                f"{self.retries + 1} times ({type(exc).__name__}): check the cluster's "
                "memory and nodes"
            ) from exc
        except ray.exceptions.RayTaskError as exc:  # a bug in the task: its own error
            raise exc.as_instanceof_cause() from None

    def close(self, interrupted: bool = False) -> None:
        """Cancel unfinished tasks when ``interrupted``; stop Ray if this engine started it."""
        ray = self._ray
        if ray is None:
            return
        if interrupted:
            for ref in self._pending:
                ray.cancel(ref, force=True)
        self._pending = []
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
        self._ray = None
