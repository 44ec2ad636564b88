"""An onnx-netadapt task plugin: regression of the first output onto float targets.

Training minimises the mean squared error; a proposal is scored by R² (1 - MSE / variance of
the targets; 1 is perfect). Installed, it is ``--task regression``; without installing,
``--task netadapt_regression:Regression``.
"""

from __future__ import annotations

import numpy as np

from onnx_netadapt.errors import DataError
from onnx_netadapt.tasks import OutputInfo, Task, TaskScore


class Regression(Task):
    """MSE on the first output; R² score. Targets: floats shaped like the output."""

    name = "regression"
    description = "MSE on float targets shaped like the first output; R2"
    score_name = "R2"
    score_unit = ""

    def loss(self, outputs, targets, teacher_outputs):
        import torch.nn.functional as F

        if targets is None:
            raise DataError("task 'regression' needs targets")
        out = outputs[0]
        return F.mse_loss(out, targets.to(out.dtype).reshape(out.shape))

    def score(self, outputs, targets, reference):
        out = np.asarray(outputs[0], dtype=np.float64)
        truth = np.asarray(targets, dtype=np.float64).reshape(out.shape)
        mse = float(np.mean((out - truth) ** 2))
        return TaskScore(1.0 - mse / (float(np.var(truth)) + 1e-12), mse)

    def prepare_targets(self, y, count, part):
        if y is None:
            raise DataError(f"task 'regression': the {part} data has no targets")
        return np.asarray(y, dtype=np.float32)

    def check_targets(self, targets, outputs: list[OutputInfo], part, num_classes):
        out = outputs[0]
        per = out.shape[1:]
        if len(targets.shape[1:]) != len(per) or any(
            d is not None and d != t for d, t in zip(per, targets.shape[1:], strict=True)
        ):
            raise self.target_error(
                part, out.name, f"shape {targets.shape}, the output is {out.shape}"
            )
