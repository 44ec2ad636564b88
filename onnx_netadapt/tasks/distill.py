"""``distill``: any model, no labels. Train every output to match the original model's (MSE
normalised by the original's variance, or KL where the output is a probability distribution);
score the fidelity ``1 - normalised MSE`` (R², 1 = identical outputs), averaged over outputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from onnx_netadapt.errors import DataError
from onnx_netadapt.tasks.base import Targets, Task, TaskScore

_EPS = 1e-8


def is_distribution(t) -> bool:
    """Whether the torch/numpy array ``t`` holds probabilities along its last axis."""
    if t.ndim < 1 or t.shape[-1] < 2 or not _floating(t):
        return False
    total = t.sum(-1)
    return bool((t >= 0).all()) and bool((abs(total - 1) < 1e-3).all())


def _floating(t) -> bool:
    return t.is_floating_point() if hasattr(t, "is_floating_point") else t.dtype.kind == "f"


class Distill(Task):
    """Match the original model's outputs.

    Args:
        weights: per-output weights, in the graph's output order (default 1 each; 0 ignores an
            output). Outputs that are not floating point (indices, masks) are ignored.
    """

    name = "distill"
    description = "match the original's outputs (normalised MSE / KL); fidelity 1 - NMSE"
    score_name = "fidelity (1 - NMSE)"
    score_unit = ""

    def __init__(self, weights: Sequence[float] | None = None) -> None:
        self.weights = None if weights is None else [float(w) for w in weights]

    def needs_teacher(self, has_targets: bool) -> bool:
        return True

    def needs_reference(self, has_targets: bool) -> bool:
        return True

    def _weight(self, index: int) -> float:
        if self.weights is None:
            return 1.0
        return self.weights[index] if index < len(self.weights) else 0.0

    def loss(self, outputs: list, targets: Targets, teacher_outputs: list | None):
        import torch
        import torch.nn.functional as F

        if teacher_outputs is None:
            raise DataError("task 'distill' needs the original model's outputs (the teacher)")
        total = outputs[0].new_zeros(())
        for i, (out, ref) in enumerate(zip(outputs, teacher_outputs, strict=True)):
            weight = self._weight(i)
            if weight == 0 or not out.is_floating_point():
                continue
            ref = ref.detach().to(out.dtype)
            if is_distribution(ref):
                log_p = torch.log(out.clamp_min(_EPS))
                term = F.kl_div(
                    log_p.reshape(-1, out.shape[-1]),
                    torch.log(ref.clamp_min(_EPS)).reshape(-1, out.shape[-1]),
                    reduction="batchmean",
                    log_target=True,
                )
            else:
                term = F.mse_loss(out, ref) / (ref.var(unbiased=False) + _EPS)
            total = total + weight * term
        return total

    def score(
        self, outputs: list[np.ndarray], targets: Targets, reference: list[np.ndarray] | None
    ) -> TaskScore:
        if reference is None:
            raise DataError("task 'distill' scores against the original model's outputs")
        values, losses, weights = [], [], []
        for i, (out, ref) in enumerate(zip(outputs, reference, strict=True)):
            weight = self._weight(i)
            if weight == 0 or np.asarray(ref).dtype.kind != "f":
                continue
            nmse = normalised_mse(out, ref)
            values.append(1.0 - nmse)
            losses.append(nmse)
            weights.append(weight)
        if not weights:
            raise DataError("task 'distill': no floating-point output with a weight to compare")
        return TaskScore(
            float(np.average(values, weights=weights)), float(np.average(losses, weights=weights))
        )


def normalised_mse(out: np.ndarray, ref: np.ndarray) -> float:
    """Mean squared difference divided by the variance of ``ref`` (0 = identical)."""
    out64 = np.asarray(out, dtype=np.float64).reshape(np.shape(ref))
    ref64 = np.asarray(ref, dtype=np.float64)
    return float(np.mean((out64 - ref64) ** 2) / (np.var(ref64) + _EPS))
