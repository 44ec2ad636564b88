"""Every setting of one adaptation, saved with the run so ``--resume`` continues it unchanged."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from onnx_netadapt.adapt.budget import Budget
from onnx_netadapt.channels.context import ATTENTION_UNITS, DEFAULT_ATTENTION_UNITS
from onnx_netadapt.engines import ENGINES, RAY_BUILTIN_RESOURCES
from onnx_netadapt.errors import BudgetError, UsageError
from onnx_netadapt.measure.estimate import MODES as ESTIMATE_MODES

SELECT_MODES = ("accuracy", "ratio")
OPTIMIZERS = ("sgd", "adamw")


@dataclass
class AdaptConfig:
    """Settings of the NetAdapt loop (METHOD.md); defaults follow the official code.

    Attributes:
        target: runner that measures latency (``ort``, ``tflite``, ``snpe``, a plugin...).
        budgets: limits to reach; the first one drives ``--select ratio``.
        data: the ``--data`` spec (builtin name, module:function, .npz, image folder).
        step: initial reduction per iteration, as a fraction of the original resource.
        decay: the reduction shrinks by this factor every iteration.
        round_to: channel grid of the proposals (multiples of 8 by default).
        allow_approximate: also prune groups whose removal changes the kept channels' values
            (LayerNorm over channels, weight standardisation); fine-tuning must recover them.
        attention_units: how multi-head attention blocks lose channels: ``heads`` (whole
            heads) or ``dims`` (the same dimensions of every head).
        short_steps: optimiser steps of the short-term fine-tune of each proposal.
        long_epochs: epochs of the long-term fine-tune of the final network.
        select: ``accuracy`` (highest holdout accuracy) or ``ratio`` (least accuracy lost per
            resource saved).
        workers: proposals evaluated in parallel (results do not depend on it); None: one per
            GPU, or fill the CPU cores with ``train_threads`` each.
        train_threads: torch threads per proposal (fixed, so results do not depend on workers).
        device: where proposals train: ``auto`` (every GPU torch sees, else the CPU), ``cpu``,
            ``cuda`` or ``cuda:N``.
        engine: where proposals run: ``local`` (this machine) or ``ray`` (a Ray instance or
            cluster, ``ray_address``: None starts a local one, ``auto`` joins a cluster).
        measure_on: with the ray engine, a custom Ray resource (``device:SERIAL``) whose node
            measures latency: the target runner lives in a Ray actor there; ``auto`` is
            ``device:`` + the ``device`` runner option. None: measured in the run's process.
        deterministic: deterministic training kernels (GPU results then repeat exactly).
        max_iterations: stop after this many iterations even if the budget is not met.
        estimator: how a pruned network's latency is estimated from the table and the current
            network (``onnx_netadapt.measure.estimate.MODES``; see benchmarks/loop_estimates).
        margin: a measured (latency) budget counts as met only when the confirmation
            measurement is at most ``budget * (1 - margin)``: room for the measurement noise
            of whoever measures the adapted network next.
        task: how proposals are trained and scored (``onnx_netadapt.tasks``): a registered
            name (``onnx-netadapt tasks``), ``package.module:Name``, or ``auto``
            (classification for a model whose first output is (N, C) class scores, else
            distill); a run saves the task it resolved to.
        task_options: keyword arguments of the task (e.g. ``{"weights": [1, 0.5]}``).
    """

    target: str = "ort"
    budgets: list[Budget] = field(default_factory=list)
    data: str = "mnist5k"
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    threads: int = 1
    step: float = 0.025
    decay: float = 0.96
    round_to: int = 8
    allow_approximate: bool = False
    attention_units: str = DEFAULT_ATTENTION_UNITS
    short_steps: int = 50
    long_epochs: float = 5.0
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.01
    long_lr: float | None = None
    distill: float = 0.0
    select: str = "accuracy"
    holdout_per_class: int = 10
    seed: int = 0
    workers: int | None = 1
    train_threads: int = 1
    device: str = "auto"
    engine: str = "local"
    ray_address: str | None = None
    measure_on: str | None = None
    deterministic: bool = False
    max_iterations: int = 200
    table: str | None = None
    estimator: str = "auto"
    margin: float = 0.0
    task: str = "auto"
    task_options: dict = field(default_factory=dict)

    def validate(self) -> None:
        """Reject settings that cannot work, before any work starts (also on resume)."""
        if not self.budgets:
            raise BudgetError("no budget given: use --budget (e.g. --budget 0.5)")
        checks = [
            (0.0 < self.step < 1.0, f"--step {self.step} must be in (0, 1)"),
            (0.0 < self.decay <= 1.0, f"--decay {self.decay} must be in (0, 1]"),
            (self.round_to >= 1, f"--round-to {self.round_to} must be >= 1"),
            (
                self.attention_units in ATTENTION_UNITS,
                f"--attention-units must be one of {ATTENTION_UNITS}",
            ),
            (self.short_steps >= 0, f"--short-steps {self.short_steps} must be >= 0"),
            (self.long_epochs >= 0, f"--long-epochs {self.long_epochs} must be >= 0"),
            (self.batch_size >= 1, f"--batch-size {self.batch_size} must be >= 1"),
            (self.optimizer in OPTIMIZERS, f"--optimizer must be one of {OPTIMIZERS}"),
            (self.lr > 0, f"--lr {self.lr} must be > 0"),
            (self.long_lr is None or self.long_lr > 0, f"long_lr {self.long_lr} must be > 0"),
            (self.holdout_per_class >= 1, "--holdout-per-class must be >= 1"),
            (self.seed >= 0, f"--seed {self.seed} must be >= 0"),
            (self.workers is None or self.workers >= 1, f"--workers {self.workers} must be >= 1"),
            (self.engine in ENGINES, f"--engine must be one of {ENGINES}"),
            (
                self.measure_on is None or self.engine == "ray",
                f"--measure-on {self.measure_on} places the runner with Ray: add --engine ray "
                "(and --ray-address of the cluster whose node declares it)",
            ),
            (
                self.measure_on not in ("", *RAY_BUILTIN_RESOURCES),
                f"--measure-on {self.measure_on!r} must name a custom Ray resource that the "
                "device's node declares (e.g. device:SERIAL)",
            ),
            (self.train_threads >= 1, f"--train-threads {self.train_threads} must be >= 1"),
            (self.threads >= 1, f"--threads {self.threads} must be >= 1"),
            (self.select in SELECT_MODES, f"--select must be one of {SELECT_MODES}"),
            (0.0 <= self.distill <= 1.0, f"--distill {self.distill} must be in [0, 1]"),
            (self.max_iterations >= 1, "--max-iterations must be >= 1"),
            (self.estimator in ESTIMATE_MODES, f"--estimator must be one of {ESTIMATE_MODES}"),
            (0.0 <= self.margin < 0.5, f"--margin {self.margin} must be in [0, 0.5)"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        if self.task != "auto":
            from onnx_netadapt.tasks.registry import get_task

            get_task(self.task, self.task_options)  # an unknown or broken task fails here

    def to_dict(self) -> dict:
        """JSON-ready form (stored in the run directory)."""
        data = asdict(self)
        data["budgets"] = [b.to_dict() for b in self.budgets]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> AdaptConfig:
        """Inverse of ``to_dict`` (unknown keys from newer versions are ignored)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["budgets"] = [Budget.from_dict(b) for b in values.get("budgets", [])]
        return cls(**values)
