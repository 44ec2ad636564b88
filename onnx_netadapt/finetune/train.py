"""Train a converted module with the loss of a task (``onnx_netadapt.tasks``): cross-entropy on
class targets and/or distillation from a teacher by default.

Reproducible: the same seed and settings give the same weights (torch seeded, batch order from
``ArrayDataset.batches(shuffle=True, seed=seed + epoch)``). BatchNorm layers run in train mode
and update their running statistics, which the write-back carries into the ONNX model.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from onnx_netadapt.data.dataset import ArrayDataset
from onnx_netadapt.errors import FineTuneError
from onnx_netadapt.finetune.agreement import flatten_outputs
from onnx_netadapt.tasks.base import LossOptions, Task

logger = logging.getLogger(__name__)

OPTIMIZERS = ("sgd", "adamw")
_LOSS_WINDOW = 10  # initial/final loss: mean over this many steps


@dataclass(frozen=True)
class TrainSettings:
    """How to fine-tune.

    Attributes:
        steps: optimiser steps (used when ``epochs`` is None).
        epochs: passes over the data (may be fractional); overrides ``steps``.
        batch_size: examples per step.
        optimizer: "sgd" (momentum 0.9, Nesterov) or "adamw".
        lr: peak learning rate (cosine schedule after a short linear warm-up).
        weight_decay: applied to weights with more than one dimension.
        label_smoothing: of the cross-entropy on targets.
        distill: weight in [0, 1] of the KL distillation loss from the teacher (the loss is
            distillation only when the data has no targets).
        temperature: of the distillation.
        seed: seeds torch and the batch order.
        device: "auto" (cuda when available), "cpu", "cuda", "cuda:1", ...
        threads: torch CPU threads while training (restored after); None keeps torch's.
        deterministic: deterministic kernels only (torch.use_deterministic_algorithms): on a
            GPU the same seed then gives the same weights, at some speed.
    """

    steps: int = 100
    epochs: float | None = None
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.01
    weight_decay: float = 5e-5
    label_smoothing: float = 0.1
    distill: float = 0.0
    temperature: float = 2.0
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    deterministic: bool = False

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise FineTuneError(
                f"unknown optimizer {self.optimizer!r}: use one of {', '.join(OPTIMIZERS)}"
            )
        if not 0.0 <= self.distill <= 1.0:
            raise FineTuneError(f"distill weight {self.distill} must be within [0, 1]")
        if self.batch_size < 1:
            raise FineTuneError(f"batch_size {self.batch_size} must be at least 1")
        if self.temperature <= 0:
            raise FineTuneError(f"temperature {self.temperature} must be positive")

    def total_steps(self, examples: int) -> int:
        """Optimiser steps for a dataset of ``examples``."""
        if self.epochs is None:
            return max(0, int(self.steps))
        per_epoch = math.ceil(examples / self.batch_size)
        return max(0, math.ceil(self.epochs * per_epoch))


@dataclass(frozen=True)
class TrainStats:
    """What a training run did: ``final_loss`` / ``initial_loss`` average the last / first
    few steps (NaN when nothing was trained)."""

    steps: int
    seconds: float
    final_loss: float
    device: str
    initial_loss: float = float("nan")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; anything else as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise FineTuneError(f"unknown device {name!r}: use auto, cpu or cuda[:N]") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FineTuneError(f"device {name!r} asked for, but torch sees no CUDA device")
    return device


def train(
    module: nn.Module,
    data: ArrayDataset,
    settings: TrainSettings,
    teacher: onnx.ModelProto | None = None,
    task: Task | None = None,
) -> TrainStats:
    """Train ``module`` in place on ``data`` with ``task``'s loss; returns its :class:`TrainStats`.

    Empty data or zero steps return at once. Without targets, ``teacher`` is required and the
    loss is distillation only. ``task`` defaults to classification.
    """
    device = resolve_device(settings.device)
    total = settings.total_steps(len(data))
    if total <= 0 or len(data) == 0:
        return TrainStats(0, 0.0, float("nan"), str(device))
    distill = 1.0 if not data.has_targets else settings.distill if teacher is not None else 0.0
    task = _task(task, distill, settings)
    if task.needs_teacher(data.has_targets) and teacher is None:
        raise FineTuneError(
            f"task {task.name!r} needs the original model as teacher here (the training data "
            "has no targets, or the task distils): give it, or data with targets"
        )
    start = time.perf_counter()
    with torch_threads(settings.threads), _deterministic(settings.deterministic):
        torch.manual_seed(settings.seed)
        module.to(device)
        teacher_module = (
            _teacher_module(teacher, device) if task.needs_teacher(data.has_targets) else None
        )
        losses = _steps(module, data, settings, total, task, teacher_module, device)
    seconds = time.perf_counter() - start
    window = max(1, min(_LOSS_WINDOW, len(losses) // 2))
    stats = TrainStats(
        steps=len(losses),
        seconds=seconds,
        final_loss=float(np.mean(losses[-window:])),
        device=str(device),
        initial_loss=float(np.mean(losses[:window])),
    )
    logger.debug("trained %d steps in %.2f s, loss %.4f", stats.steps, seconds, stats.final_loss)
    return stats


def _steps(
    module: nn.Module,
    data: ArrayDataset,
    settings: TrainSettings,
    total: int,
    task: Task,
    teacher_module: nn.Module | None,
    device: torch.device,
) -> list[float]:
    """``total`` optimizer steps (cosine schedule) on ``module``, left in eval mode; the loss of
    each step. A loss that is not finite is an error."""
    optimizer = _optimizer(module, settings)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(total))
    module.train()
    losses: list[float] = []
    batches = _batches(data, settings, total)
    if device.type == "cuda":  # prepare the next batches while the GPU works
        batches = _prefetched(batches, pin=True)
    for step, (x, y) in enumerate(batches):
        x, y = _to_device(x, device), _to_device(y, device)
        loss = _loss(task, _forward(module, x), y, teacher_module, x)
        if not torch.isfinite(loss):
            raise FineTuneError(
                f"the training loss became {loss.item()} at step {step + 1}: lower the "
                f"learning rate (now {settings.lr})"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.item()))
    module.eval()
    return losses


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Torch's intra-op threads set to ``count`` (at least 1) inside, restored after; None
    leaves them as they are."""
    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(count)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _deterministic(enabled: bool) -> Iterator[None]:
    """Deterministic kernels while training (restored after)."""
    if not enabled:
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it to comply
    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]


# Batches prepared ahead of the training step (GPU only).
PREFETCH_DEPTH = 2


def _prefetched(batches: Iterator[tuple[Any, Any]], pin: bool) -> Iterator[tuple[Any, Any]]:
    """``batches`` made ``PREFETCH_DEPTH`` ahead in a background thread (pinned memory when
    ``pin``), so slicing and copying data does not stall the GPU between steps."""
    ahead: queue.Queue = queue.Queue(maxsize=PREFETCH_DEPTH)
    done = object()

    def produce() -> None:
        try:
            for x, y in batches:
                ahead.put((_pinned(x) if pin else x, y))
        except BaseException as exc:  # hand it to the training thread
            ahead.put(exc)
        ahead.put(done)

    threading.Thread(target=produce, name="batch-prefetch", daemon=True).start()
    while (item := ahead.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


def _batches(data: ArrayDataset, settings: TrainSettings, total: int) -> Iterator[tuple[Any, Any]]:
    """``total`` shuffled batches, epoch after epoch (seed + epoch); single leftovers skipped
    (BatchNorm cannot train on one example)."""
    done = 0
    epoch = 0
    while done < total:
        for x, y in data.batches(settings.batch_size, shuffle=True, seed=settings.seed + epoch):
            if len(x) < 2 <= len(data):
                continue
            yield _tensors(x), _tensors(y)
            done += 1
            if done >= total:
                return
        epoch += 1


def _optimizer(module: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise FineTuneError("the converted model has no trainable weights")
    groups = [
        {"params": [p for p in params if p.dim() > 1], "weight_decay": settings.weight_decay},
        {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=settings.lr)
    return torch.optim.SGD(groups, lr=settings.lr, momentum=0.9, nesterov=True)


def _cosine(total: int):
    """LR factor per step: linear warm-up over ~5% of the steps, then cosine to zero."""
    warmup = min(50, max(1, total // 20)) if total > 10 else 0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _tensors(value: Any) -> Any:
    """Batch arrays as torch tensors (floats as float32, integers as int64), through dicts and
    lists (several inputs, per-example targets); None stays None."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: _tensors(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tensors(v) for v in value]
    array = np.asarray(value)
    if array.dtype.kind == "f":
        array = array.astype(np.float32, copy=False)
    elif array.dtype.kind in "iu":
        array = array.astype(np.int64, copy=False)
    return torch.from_numpy(np.ascontiguousarray(array))


def _to_device(value: Any, device: torch.device) -> Any:
    """Tensors (in dicts and lists too) moved to ``device`` (without blocking)."""
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_device(v, device) for v in value]
    return value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value


def _pinned(value: Any) -> Any:
    """Tensors (in dicts and lists too) in pinned memory."""
    if isinstance(value, dict):
        return {k: _pinned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pinned(v) for v in value]
    return value.pin_memory()


def _forward(module: nn.Module, x: Any):
    """``module(x)`` (one positional input per model input for a dict), with a failure of a
    converted op reported as a FineTuneError."""
    try:
        return module(*x.values()) if isinstance(x, dict) else module(x)
    except (RuntimeError, NotImplementedError, ValueError, IndexError, TypeError) as exc:
        shapes = (
            {k: tuple(v.shape) for k, v in x.items()} if isinstance(x, dict) else tuple(x.shape)
        )
        raise FineTuneError(
            f"the converted model fails on a training batch of shape {shapes} "
            f"({type(exc).__name__}: {exc}). A constant of the model may pin its batch size: "
            "try batch_size equal to the model's static batch, or export it with a dynamic batch."
        ) from exc


def _task(task: Task | None, distill: float, settings: TrainSettings) -> Task:
    """``task`` (classification by default) with this fine-tune's loss options."""
    if task is None:
        from onnx_netadapt.tasks.classification import Classification

        task = Classification()
    options = LossOptions(distill, settings.temperature, settings.label_smoothing)
    return task.with_options(options)


def _loss(task: Task, out: Any, y: Any, teacher: nn.Module | None, x: Any) -> torch.Tensor:
    """The task's loss on the module's outputs (and the teacher's on the same batch)."""
    teacher_outputs = None
    if teacher is not None:
        with torch.no_grad():
            teacher_outputs = flatten_outputs(_forward(teacher, x))
    return task.loss(flatten_outputs(out), y, teacher_outputs)


_TEACHERS: dict[str, nn.Module] = {}


def _teacher_module(teacher: onnx.ModelProto, device: torch.device) -> nn.Module:
    """The teacher converted to torch, in eval mode, frozen; the last one is cached."""
    from onnx_netadapt.finetune.convert import to_torch

    try:
        key = hashlib.sha1(teacher.SerializeToString(deterministic=True)).hexdigest()
    except Exception:  # over protobuf's 2 GiB: fall back on the object's identity
        key = f"id-{id(teacher)}"
    module = _TEACHERS.get(key)
    if module is None:
        module = to_torch(teacher)
        for p in module.parameters():
            p.requires_grad_(False)
        _TEACHERS.clear()
        _TEACHERS[key] = module
    return module.to(device).eval()
