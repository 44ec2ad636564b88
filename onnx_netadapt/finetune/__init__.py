"""Fine-tuning bridge: the only part of onnx-netadapt that imports torch and onnx2torch.

ONNX -> ``torch.fx.GraphModule`` (onnx2torch plus the converters it lacks), train, write the
parameters and BatchNorm statistics back into the ONNX initializers by name, and check that ONNX
Runtime and torch then agree.

>>> from onnx_netadapt.finetune import TrainSettings, fine_tune
>>> result = fine_tune(model, data.train, TrainSettings(steps=50))       # doctest: +SKIP
>>> result.model, result.stats.final_loss, result.max_abs_diff          # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import onnx

from onnx_netadapt.data.dataset import ArrayDataset, count, take
from onnx_netadapt.finetune.agreement import check_agreement
from onnx_netadapt.finetune.convert import to_torch
from onnx_netadapt.finetune.train import TrainSettings, TrainStats, train
from onnx_netadapt.finetune.writeback import write_back
from onnx_netadapt.tasks.base import Task

CHECK_EXAMPLES = 16

__all__ = [
    "FineTuneResult",
    "TrainSettings",
    "TrainStats",
    "check_agreement",
    "fine_tune",
    "to_torch",
    "train",
    "write_back",
]


@dataclass
class FineTuneResult:
    """A fine-tuned model (a new proto), how training went, the ORT/torch difference, and
    where the time went (seconds of ``convert``, ``train``, ``write_back``, ``check``)."""

    model: onnx.ModelProto
    stats: TrainStats
    max_abs_diff: float
    seconds: dict[str, float] = field(default_factory=dict)


def fine_tune(
    model: onnx.ModelProto,
    data: ArrayDataset,
    settings: TrainSettings,
    teacher: onnx.ModelProto | None = None,
    check_batch: np.ndarray | dict[str, np.ndarray] | None = None,
    task: Task | None = None,
) -> FineTuneResult:
    """Convert ``model`` to torch, train it, write the weights back, check ORT agrees.

    Args:
        model: a normalised (``load_model``) and possibly pruned model; it is not modified.
        data: training data in the model's input layout.
        settings: how to train.
        teacher: the original model, for distillation (required when ``data`` has no targets).
        check_batch: inputs for the agreement check (default: the first 16 training inputs;
            a dict by input name for several inputs).
        task: gives the loss (default: classification, see ``onnx_netadapt.tasks``).

    Raises:
        FineTuneError: unsupported operator, failed conversion or training, or ORT and torch
            disagreeing after the write-back.
    """
    clock = [time.perf_counter()]

    def lap() -> float:
        clock.append(time.perf_counter())
        return clock[-1] - clock[-2]

    module = to_torch(model)
    seconds = {"convert": lap()}
    stats = train(module, data, settings, teacher=teacher, task=task)
    seconds["train"] = lap()
    tuned = write_back(model, module)
    seconds["write_back"] = lap()
    x = (
        take(data.x, np.arange(min(CHECK_EXAMPLES, len(data))))
        if check_batch is None
        else check_batch
    )
    diff = check_agreement(tuned, module, _float32(x)) if count(x) else 0.0
    seconds["check"] = lap()
    return FineTuneResult(model=tuned, stats=stats, max_abs_diff=diff, seconds=seconds)


def _float32(x: np.ndarray | dict[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
    """Floating-point inputs as float32 (integer inputs, e.g. token ids, unchanged)."""
    if isinstance(x, dict):
        return {k: _float32(v) for k, v in x.items()}  # type: ignore[misc]
    x = np.asarray(x)
    return x.astype(np.float32) if x.dtype.kind == "f" else x
