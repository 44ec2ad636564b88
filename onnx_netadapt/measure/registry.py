"""Runner discovery through the ``onnx_netadapt.runners`` entry points (built-ins included).

A plugin that fails to import is reported with its name and the error; the others still work.

>>> from onnx_netadapt.measure.registry import list_runners
>>> sorted(list_runners())                                   # doctest: +SKIP
['macs', 'memory', 'ort', 'params', 'snpe', 'tflite']
"""

from __future__ import annotations

import fnmatch
import inspect
import logging
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points

from onnx_netadapt.errors import NetAdaptError
from onnx_netadapt.measure.runner import Availability, Runner

logger = logging.getLogger(__name__)

GROUP = "onnx_netadapt.runners"


@dataclass(frozen=True)
class RunnerInfo:
    """One discovered runner: its class, or why it could not be loaded."""

    name: str
    target: str
    runner: type[Runner] | None
    error: str = ""

    def availability(self) -> Availability:
        """Whether the runner can run here (a broken plugin is unavailable, with its error)."""
        if self.runner is None:
            return Availability(
                False,
                f"plugin {self.target!r} failed to load: {self.error}",
                "reinstall the package that provides it",
            )
        try:
            return self.runner.availability()
        except Exception as exc:  # a plugin's check must not break listing
            return Availability(False, f"availability check crashed: {exc}", "")


def discover() -> dict[str, RunnerInfo]:
    """Load every registered runner; broken plugins are kept with their error and warned about."""
    found: dict[str, RunnerInfo] = {}
    for ep in entry_points(group=GROUP):
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Runner)):
                raise TypeError(f"{ep.value} is not a Runner subclass")
            found[ep.name] = RunnerInfo(ep.name, ep.value, cls)
        except Exception as exc:
            message = (
                f"runner plugin {ep.name!r} ({ep.value}) failed to load: "
                f"{type(exc).__name__}: {exc}"
            )
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            logger.warning(message)
            found[ep.name] = RunnerInfo(ep.name, ep.value, None, f"{type(exc).__name__}: {exc}")
    return found


def list_runners(pattern: str = "*") -> dict[str, RunnerInfo]:
    """Registered runners whose name matches the glob ``pattern``."""
    return {n: info for n, info in sorted(discover().items()) if fnmatch.fnmatch(n, pattern)}


def get_runner(name: str) -> type[Runner]:
    """The runner class registered as ``name``."""
    runners = discover()
    if name not in runners:
        raise NetAdaptError(
            f"no runner named {name!r}; registered runners: {', '.join(sorted(runners)) or 'none'}"
            " (see `onnx-netadapt runners`)"
        )
    info = runners[name]
    if info.runner is None:
        raise NetAdaptError(f"runner {name!r} failed to load: {info.error}")
    return info.runner


def make_runner(target: str, threads: int = 1, **options: object) -> Runner:
    """Instantiate runner ``target``, passing ``threads`` and options only where it takes them."""
    cls = get_runner(target)
    params = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in {"threads": threads, **options}.items() if k in params}
    return cls(**kwargs)
