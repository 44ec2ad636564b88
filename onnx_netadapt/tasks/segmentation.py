"""``segmentation``: per-pixel cross-entropy on class maps, scored by mean IoU.

The first output is the class scores (N, C, H, W); targets are class maps (N, H, W) of integers
in [0, C) (``ignore_index``, 255 by default, marks pixels that count for nothing). Without
targets, the original model's per-pixel argmax is the truth (agreement mIoU).
"""

from __future__ import annotations

import numpy as np

from onnx_netadapt.errors import DataError
from onnx_netadapt.tasks.base import OutputInfo, Targets, Task, TaskScore, first
from onnx_netadapt.tasks.classification import kl_distill


class Segmentation(Task):
    """Per-pixel classification on the first output."""

    name = "segmentation"
    description = "per-pixel cross-entropy on class maps (N, H, W); mean IoU"
    score_name = "mean IoU"
    score_unit = "%"

    def __init__(self, ignore_index: int = 255) -> None:
        self.ignore_index = int(ignore_index)

    def loss(self, outputs: list, targets: Targets, teacher_outputs: list | None):
        import torch.nn.functional as F

        logits = first(outputs)
        distill = 1.0 if targets is None else self.options.distill
        loss = logits.new_zeros(())
        if targets is not None and distill < 1.0:
            ce = F.cross_entropy(logits, targets.long(), ignore_index=self.ignore_index)
            loss = loss + (1.0 - distill) * ce
        if teacher_outputs is not None and distill > 0.0:
            n, c = logits.shape[:2]
            flat = logits.movedim(1, -1).reshape(-1, c)
            ref = first(teacher_outputs).movedim(1, -1).reshape(-1, c)
            loss = loss + distill * kl_distill(flat, ref, self.options.temperature) * len(flat) / n
        return loss

    def score(
        self, outputs: list[np.ndarray], targets: Targets, reference: list[np.ndarray] | None
    ) -> TaskScore:
        logits = np.asarray(outputs[0])
        if targets is None:
            if reference is None:
                raise DataError("task 'segmentation' without targets needs the original's outputs")
            targets = np.asarray(reference[0]).argmax(axis=1)
        truth = np.asarray(targets).astype(np.int64)
        predicted = logits.argmax(axis=1)
        valid = truth != self.ignore_index
        classes = logits.shape[1]
        pairs = truth[valid] * classes + predicted[valid]
        confusion = np.bincount(pairs, minlength=classes * classes).reshape(classes, classes)
        hits = np.diag(confusion).astype(np.float64)
        union = confusion.sum(0) + confusion.sum(1) - hits
        present = union > 0
        miou = float(np.mean(hits[present] / union[present])) if present.any() else 0.0
        return TaskScore(miou, _pixel_cross_entropy(logits, truth, valid))

    def prepare_targets(self, y: Targets, count: int, part: str) -> Targets:
        if y is None:
            return None
        y = np.asarray(y)
        if y.dtype.kind not in "iu":
            raise DataError(
                f"task 'segmentation', {part} targets have dtype {y.dtype}: give integer class "
                "maps (N, H, W)"
            )
        if y.ndim == 4 and y.shape[1] == 1:
            y = y[:, 0]
        return y.astype(np.int64)

    def check_targets(
        self, targets: Targets, outputs: list[OutputInfo], part: str, num_classes: int | None
    ) -> None:
        out = outputs[0] if outputs else OutputInfo("output 0", ())
        if not isinstance(targets, np.ndarray) or targets.ndim != 3:
            shape = getattr(targets, "shape", type(targets).__name__)
            raise self.target_error(
                part, out.name, f"shape {shape}: give class maps (N, H, W) of integers"
            )
        if len(out.shape) != 4:
            raise self.target_error(
                part, out.name, f"the output is {out.shape}, not class scores (N, C, H, W)"
            )
        spatial = out.shape[2:]
        if any(s is not None and s != t for s, t in zip(spatial, targets.shape[1:], strict=True)):
            raise self.target_error(
                part,
                out.name,
                f"maps of {targets.shape[1:]} but the output is {out.shape} "
                f"(maps of {spatial}): resize the targets to the output's size",
            )
        classes = out.shape[1]
        valid = targets[targets != self.ignore_index]
        if valid.size and (valid.min() < 0 or (classes is not None and valid.max() >= classes)):
            raise self.target_error(
                part,
                out.name,
                f"classes {int(valid.min())}..{int(valid.max())} but the output has {classes} "
                f"classes: use [0, {classes}) or {self.ignore_index} to ignore a pixel",
            )


def _pixel_cross_entropy(logits: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    z = np.moveaxis(logits, 1, -1).astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_probs, np.where(valid, truth, 0)[..., None], axis=-1)[..., 0]
    return float(-picked[valid].mean()) if valid.any() else float("nan")
