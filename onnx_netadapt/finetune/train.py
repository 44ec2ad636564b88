"""Train a converted module: cross-entropy on targets and/or distillation from a teacher.

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

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

from onnx_netadapt.data.dataset import ArrayDataset
from onnx_netadapt.errors import FineTuneError

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
) -> TrainStats:
    """Train ``module`` in place on ``data``; returns its :class:`TrainStats`.

    Empty data or zero steps return at once. Without targets, ``teacher`` is required and the
    loss is distillation only.
    """
    device = resolve_device(settings.device)
    total = settings.total_steps(len(data))
    if total <= 0 or len(data) == 0:
        return TrainStats(0, 0.0, float("nan"), str(device))
    if not data.has_targets and teacher is None:
        raise FineTuneError(
            "the training data has no targets: give the original model as teacher "
            "(distillation), or data with class targets"
        )
    distill = 1.0 if not data.has_targets else settings.distill if teacher is not None else 0.0
    start = time.perf_counter()
    with _threads(settings.threads), _deterministic(settings.deterministic):
        torch.manual_seed(settings.seed)
        module.to(device)
        teacher_module = _teacher_module(teacher, device) if distill > 0 else None
        optimizer = _optimizer(module, settings)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(total))
        module.train()
        losses: list[float] = []
        batches = _batches(data, settings, total)
        if device.type == "cuda":  # prepare the next batches while the GPU works
            batches = _prefetched(batches, pin=True)
        for step, (x, y) in enumerate(batches):
            x = x.to(device, non_blocking=True)
            logits = _logits(_forward(module, x))
            loss = _loss(logits, y, teacher_module, x, distill, settings, device)
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


@contextlib.contextmanager
def _threads(count: int | None) -> Iterator[None]:
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


def _prefetched(
    batches: Iterator[tuple[torch.Tensor, torch.Tensor | None]], pin: bool
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """``batches`` made ``PREFETCH_DEPTH`` ahead in a background thread (pinned memory when
    ``pin``), so slicing and copying data does not stall the GPU between steps."""
    ahead: queue.Queue = queue.Queue(maxsize=PREFETCH_DEPTH)
    done = object()

    def produce() -> None:
        try:
            for x, y in batches:
                ahead.put((x.pin_memory() if pin else x, y))
        except BaseException as exc:  # hand it to the training thread
            ahead.put(exc)
        ahead.put(done)

    threading.Thread(target=produce, name="batch-prefetch", daemon=True).start()
    while (item := ahead.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


def _batches(
    data: ArrayDataset, settings: TrainSettings, total: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """``total`` shuffled batches, epoch after epoch (seed + epoch); single leftovers skipped
    (BatchNorm cannot train on one example)."""
    done = 0
    epoch = 0
    while done < total:
        for x, y in data.batches(settings.batch_size, shuffle=True, seed=settings.seed + epoch):
            if len(x) < 2 <= len(data):
                continue
            yield (
                torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                None if y is None else torch.from_numpy(np.asarray(y, dtype=np.int64)),
            )
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


def _forward(module: nn.Module, x: torch.Tensor):
    """``module(x)``, with a failure of a converted op reported as a FineTuneError."""
    try:
        return module(x)
    except (RuntimeError, NotImplementedError, ValueError, IndexError, TypeError) as exc:
        raise FineTuneError(
            f"the converted model fails on a training batch of shape {tuple(x.shape)} "
            f"({type(exc).__name__}: {exc}). A constant of the model may pin its batch size: "
            "try batch_size equal to the model's static batch, or export it with a dynamic batch."
        ) from exc


def _logits(out) -> torch.Tensor:
    """The first output of the module (the class scores)."""
    while isinstance(out, (tuple, list)):
        out = out[0]
    return out


def _loss(
    logits: torch.Tensor,
    y: torch.Tensor | None,
    teacher: nn.Module | None,
    x: torch.Tensor,
    distill: float,
    settings: TrainSettings,
    device: torch.device,
) -> torch.Tensor:
    loss = logits.new_zeros(())
    if y is not None and distill < 1.0:
        y = y.to(device)
        if logits.dim() != 2:
            raise FineTuneError(
                f"class targets need (batch, classes) outputs; the model gives "
                f"{tuple(logits.shape)}: use data without targets (distillation)"
            )
        ce = F.cross_entropy(logits, y, label_smoothing=settings.label_smoothing)
        loss = loss + (1.0 - distill) * ce
    if teacher is not None and distill > 0.0:
        with torch.no_grad():
            target = _logits(teacher(x))
        t = settings.temperature
        kl = F.kl_div(
            F.log_softmax(logits / t, dim=1),
            F.log_softmax(target / t, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        loss = loss + distill * kl * t * t
    return loss


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
