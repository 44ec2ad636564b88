"""The task protocol: how a model is trained (its loss) and how a proposal is scored.

A :class:`Task` is what makes the loop work for more than classifiers. The fine-tune bridge asks
it for the loss of a batch (torch tensors); the loop asks it for the score of a whole split
(numpy arrays from ONNX Runtime). Higher scores are better; ``score_name`` and ``score_unit`` are
shown in the progress, history.json and report.md.

Outputs are always a list, one entry per model output in the graph's order. Targets are what
the data gives per example, batched: an array (N, ...), a dict of such arrays (one per output or
head), or a list of N variable-length arrays (e.g. boxes per image); ``None`` when the data has
no targets. ``teacher_outputs`` / ``reference`` are the original model's outputs on the same
examples (``None`` when the run does not need them: see :meth:`Task.needs_teacher`).

>>> class MyTask(Task):                                         # doctest: +SKIP
...     name, score_name, score_unit = "my", "my metric", ""
...     def loss(self, outputs, targets, teacher_outputs):
...         return ((outputs[0] - targets) ** 2).mean()
...     def score(self, outputs, targets, reference):
...         return TaskScore(-float(((outputs[0] - targets) ** 2).mean()))
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from onnx_netadapt.errors import DataError

# Targets of a batch or a split: an array, a dict of arrays, a list of per-example arrays.
Targets = Any


@dataclass(frozen=True)
class LossOptions:
    """Training settings a task's loss may use (from ``TrainSettings``).

    Attributes:
        distill: weight in [0, 1] of matching the teacher's outputs (1 without targets).
        temperature: of a distillation between distributions.
        label_smoothing: of a cross-entropy on class targets.
    """

    distill: float = 0.0
    temperature: float = 2.0
    label_smoothing: float = 0.1


@dataclass(frozen=True)
class TaskScore:
    """A score over a split (higher is better) and, when the task has one, a loss that breaks
    ties between proposals with equal scores (lower is better; NaN when none)."""

    value: float
    loss: float = float("nan")

    def __iter__(self):
        """``value, loss = score``."""
        return iter((self.value, self.loss))


@dataclass(frozen=True)
class OutputInfo:
    """Name and static shape (None for unknown dims, batch first) of one model output."""

    name: str
    shape: tuple[int | None, ...]


class Task:
    """Base class of tasks; subclasses set the class attributes and implement ``loss`` and
    ``score`` (the rest has working defaults).

    Attributes:
        name: how ``--task`` and ``onnx-netadapt tasks`` call it.
        description: one line for ``onnx-netadapt tasks``.
        score_name: e.g. "accuracy", "mean IoU", "cosine similarity".
        score_unit: "%" (the score is a fraction shown as a percentage) or "" (shown as is).
        options: the training settings of the current fine-tune (:meth:`with_options`).
    """

    name: str = "task"
    description: str = ""
    score_name: str = "score"
    score_unit: str = ""
    options: LossOptions = LossOptions()

    # -- training (torch) ------------------------------------------------------------------
    def loss(self, outputs: list, targets: Targets, teacher_outputs: list | None):
        """The loss of one batch (a scalar torch tensor) from the module's ``outputs``."""
        raise NotImplementedError

    def needs_teacher(self, has_targets: bool) -> bool:
        """Whether the loss and score need the original model's outputs (default: when the
        data has no targets, or a distillation weight is set)."""
        return not has_targets or self.options.distill > 0

    def with_options(self, options: LossOptions) -> Task:
        """A copy of the task that trains with ``options``."""
        task = copy.copy(self)
        task.options = options
        return task

    # -- scoring (numpy) -------------------------------------------------------------------
    def score(
        self, outputs: list[np.ndarray], targets: Targets, reference: list[np.ndarray] | None
    ) -> TaskScore:
        """The score of a whole split: ``outputs`` of the model on every example."""
        raise NotImplementedError

    def needs_reference(self, has_targets: bool) -> bool:
        """Whether ``score`` needs the original model's outputs (default: without targets)."""
        return not has_targets

    def format_score(self, value: float) -> str:
        """``value`` for people: a percentage when the unit is "%"."""
        return format_score(value, self.score_unit)

    # -- data ------------------------------------------------------------------------------
    def prepare_targets(self, y: Targets, count: int, part: str) -> Targets:
        """Targets as the data source gave them, made ready for this task (or a DataError)."""
        return y

    def check_targets(
        self, targets: Targets, outputs: list[OutputInfo], part: str, num_classes: int | None
    ) -> None:
        """Raise a DataError when ``targets`` cannot go with the model's ``outputs``."""

    def describe(self) -> dict[str, str]:
        """Name, score name and unit, for the run state and the report."""
        return {"name": self.name, "score": self.score_name, "unit": self.score_unit}

    def target_error(self, part: str, output: str, message: str) -> DataError:
        """A DataError that names the task, the split and the model output."""
        return DataError(f"task {self.name!r}, {part} targets for output {output!r}: {message}")


def format_score(value: float, unit: str, digits: int = 2) -> str:
    """A score for people: a fraction as a percentage when ``unit`` is "%", else as is."""
    if unit == "%":
        return f"{100 * value:.{digits}f}%"
    return f"{value:.{digits + 2}f}{(' ' + unit) if unit else ''}"


def first(outputs: Any) -> Any:
    """The first of a list of outputs (or the value itself)."""
    while isinstance(outputs, (tuple, list)):
        outputs = outputs[0]
    return outputs
