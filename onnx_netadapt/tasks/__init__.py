"""Tasks: how a model is trained and scored (classification, distill, segmentation, plugins).

See :mod:`onnx_netadapt.tasks.base` for the protocol and :mod:`onnx_netadapt.tasks.registry`
for discovery.
"""

from __future__ import annotations

from onnx_netadapt.tasks.base import LossOptions, OutputInfo, Task, TaskScore
from onnx_netadapt.tasks.registry import TaskError, discover, get_task

__all__ = ["LossOptions", "OutputInfo", "Task", "TaskError", "TaskScore", "discover", "get_task"]
