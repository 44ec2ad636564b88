"""``classification``: cross-entropy on class targets (label smoothing), optional distillation
of the first output's class distribution; scored by top-1 accuracy (or, without targets, by
argmax agreement with the original model)."""

from __future__ import annotations

import numpy as np

from onnx_netadapt.data.layout import to_targets
from onnx_netadapt.errors import DataError, FineTuneError
from onnx_netadapt.tasks.base import OutputInfo, Targets, Task, TaskScore, first


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy of ``logits`` (N, C) against class ``labels`` (N,)."""
    z = logits.reshape(len(logits), -1).astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(z)), labels].mean())


def kl_distill(student, teacher, temperature: float, dim: int = 1):
    """KL divergence of the softened ``teacher`` from the softened ``student`` (torch), times
    ``temperature**2`` (Hinton et al.); ``batchmean`` over the first axis."""
    import torch.nn.functional as F

    t = temperature
    kl = F.kl_div(
        F.log_softmax(student / t, dim=dim),
        F.log_softmax(teacher / t, dim=dim),
        reduction="batchmean",
        log_target=True,
    )
    return kl * t * t


class Classification(Task):
    """Class scores (N, C) on the first output; targets are class indices (N,)."""

    name = "classification"
    description = "cross-entropy on class indices (+ optional distillation); top-1 accuracy"
    score_name = "accuracy"
    score_unit = "%"

    def loss(self, outputs: list, targets: Targets, teacher_outputs: list | None):
        import torch.nn.functional as F

        logits = first(outputs)
        distill = self.options.distill if teacher_outputs is not None else 0.0
        if targets is None:
            distill = 1.0
        loss = logits.new_zeros(())
        if targets is not None and distill < 1.0:
            if logits.dim() != 2:
                raise FineTuneError(
                    f"class targets need (batch, classes) outputs; the model gives "
                    f"{tuple(logits.shape)}: use data without targets (distillation) or "
                    "--task distill / segmentation"
                )
            ce = F.cross_entropy(
                logits, targets.long(), label_smoothing=self.options.label_smoothing
            )
            loss = loss + (1.0 - distill) * ce
        if teacher_outputs is not None and distill > 0.0:
            kl = kl_distill(logits, first(teacher_outputs), self.options.temperature)
            loss = loss + distill * kl
        return loss

    def score(
        self, outputs: list[np.ndarray], targets: Targets, reference: list[np.ndarray] | None
    ) -> TaskScore:
        logits = outputs[0]
        if len(logits) == 0:
            raise DataError("cannot measure accuracy on empty data: give at least one example")
        truth = targets if targets is not None else _predictions(reference)
        if len(truth) != len(logits):
            raise DataError(f"{len(truth)} reference predictions for {len(logits)} examples")
        return TaskScore(
            float(np.mean(logits.argmax(axis=-1) == truth)), cross_entropy(logits, truth)
        )

    def prepare_targets(self, y: Targets, count: int, part: str) -> Targets:
        return to_targets(y, count, part)

    def check_targets(
        self, targets: Targets, outputs: list[OutputInfo], part: str, num_classes: int | None
    ) -> None:
        from onnx_netadapt.data.check import check_class_targets

        check_class_targets(targets, len(targets), part, num_classes)
        if outputs and len(outputs[0].shape) not in (0, 2):
            raise self.target_error(
                part,
                outputs[0].name,
                f"class indices need class scores (N, C), but the output is {outputs[0].shape}: "
                "use --task segmentation for (N, C, H, W) maps, or --task distill",
            )


def _predictions(reference: list[np.ndarray] | None) -> np.ndarray:
    if reference is None:
        raise DataError("the data has no targets: pass the original model's outputs as reference")
    return np.asarray(reference[0]).argmax(axis=-1)
