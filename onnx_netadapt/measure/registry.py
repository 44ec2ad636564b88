"""Runner discovery through the ``onnx_netadapt.runners`` entry points (built-ins included).

A plugin that fails to import is reported with its name and the error; the others still work.

>>> from onnx_netadapt.measure.registry import list_runners
>>> sorted(list_runners())                                   # doctest: +SKIP
['macs', 'memory', 'ort', 'params', 'snpe', 'tflite']
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Mapping
from dataclasses import dataclass

from onnx_netadapt.errors import UsageError
from onnx_netadapt.measure.runner import Availability, Runner, RunnerUnavailable
from onnx_netadapt.plugins import Plugin, load_plugins, registered_class

GROUP = "onnx_netadapt.runners"


@dataclass(frozen=True)
class RunnerInfo(Plugin[Runner]):
    """One discovered runner: its class, or why it could not be loaded."""

    @property
    def runner(self) -> type[Runner] | None:
        """The runner class (None for a broken plugin)."""
        return self.cls

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
    return load_plugins(GROUP, Runner, "runner", RunnerInfo)


def list_runners(pattern: str = "*") -> dict[str, RunnerInfo]:
    """Registered runners whose name matches the glob ``pattern``."""
    return {n: info for n, info in sorted(discover().items()) if fnmatch.fnmatch(n, pattern)}


def get_runner(name: str) -> type[Runner]:
    """The runner class registered as ``name`` (RunnerUnavailable: none here, or it is broken)."""
    hint = "see `onnx-netadapt runners`; a plugin must be installed to be listed"
    return registered_class(discover(), name, "runner", RunnerUnavailable, hint)


def runner_options(cls: type[Runner]) -> list[str]:
    """The options a runner takes (its constructor's keywords; ``--runner-option KEY=VALUE``)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = inspect.signature(cls.__init__).parameters
    return [n for n, p in params.items() if p.kind in kinds and n not in ("self", "settings")]


def check_runner_options(names: list[str], options: Mapping[str, object]) -> None:
    """Refuse an option that none of the runners ``names`` takes (it would be ignored)."""
    if not options:
        return
    accepted = {name: runner_options(get_runner(name)) for name in names}
    for key in options:
        if not any(key in keys for keys in accepted.values()):
            takes = "; ".join(f"{n} takes {', '.join(k) or 'none'}" for n, k in accepted.items())
            raise UsageError(f"--runner-option {key}: no runner of this run takes it ({takes})")


def make_runner(target: str, threads: int = 1, **options: object) -> Runner:
    """Instantiate runner ``target``, passing ``threads`` and options only where it takes them."""
    cls = get_runner(target)
    params = runner_options(cls)
    kwargs = {k: v for k, v in {"threads": threads, **options}.items() if k in params}
    return cls(**kwargs)
