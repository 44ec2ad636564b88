"""Task discovery: the built-ins, the ``onnx_netadapt.tasks`` entry points, and
``package.module:Name`` given directly to ``--task``.

A plugin that fails to import is reported with its name and the error; the others still work.

>>> from onnx_netadapt.tasks.registry import get_task
>>> get_task("distill").score_name
'fidelity (1 - NMSE)'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from onnx_netadapt.errors import UsageError
from onnx_netadapt.plugins import Plugin, load_class, load_plugins, registered_class
from onnx_netadapt.tasks.base import Task

GROUP = "onnx_netadapt.tasks"
BUILTINS = {
    "classification": "onnx_netadapt.tasks.classification:Classification",
    "distill": "onnx_netadapt.tasks.distill:Distill",
    "segmentation": "onnx_netadapt.tasks.segmentation:Segmentation",
}
_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


class TaskError(UsageError):
    """An unknown, broken or misconfigured task (a usage error, exit code 2)."""


@dataclass(frozen=True)
class TaskInfo(Plugin[Task]):
    """One discovered task: its class, or why it could not be loaded."""

    @property
    def task(self) -> type[Task] | None:
        """The task class (None for a broken plugin)."""
        return self.cls


def discover() -> dict[str, TaskInfo]:
    """The built-in tasks and every registered plugin; broken plugins are kept with their
    error and warned about."""
    found = {name: TaskInfo(name, t, load_class(t, Task)) for name, t in BUILTINS.items()}
    return found | load_plugins(GROUP, Task, "task", TaskInfo)


def get_task(spec: str, options: dict[str, Any] | None = None) -> Task:
    """The task called ``spec`` (a registered name or ``package.module:Name``), created with
    ``options`` as keyword arguments."""
    if _PATH.fullmatch(spec):
        try:
            cls = load_class(spec, Task)
        except Exception as exc:
            raise TaskError(
                f"--task {spec}: cannot load it ({type(exc).__name__}: {exc}); check the module "
                "is importable (PYTHONPATH) and the name after ':' is a Task subclass"
            ) from exc
    else:
        hint = "see `onnx-netadapt tasks`, or give package.module:Name"
        cls = registered_class(discover(), spec, "task", TaskError, hint)
    try:
        return cls(**(options or {}))
    except TypeError as exc:
        raise TaskError(f"task {spec!r} does not take the options {options}: {exc}") from exc
