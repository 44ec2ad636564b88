"""Plugins through entry points (runners, tasks): load each lazily, keep a broken one with its
error and warn about it once, so that the others still work.

>>> from onnx_netadapt.plugins import load_class
>>> load_class("onnx_netadapt.tasks.distill:Distill", object).__name__
'Distill'
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

T = TypeVar("T")
P = TypeVar("P", bound="Plugin")


@dataclass(frozen=True)
class Plugin(Generic[T]):
    """One entry point: the class it names, or why it could not be loaded."""

    name: str
    target: str  # ``package.module:Name``
    cls: type[T] | None
    error: str = ""


def load_class(target: str, base: type[T]) -> type[T]:
    """The class ``package.module:Name`` names; TypeError unless it subclasses ``base``."""
    module_name, _, attr = target.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        value = getattr(value, part)
    if not (isinstance(value, type) and issubclass(value, base)):
        raise TypeError(
            f"{target} is not a {base.__name__} subclass ({base.__module__}.{base.__name__})"
        )
    return value


def registered_class(
    found: Mapping[str, Plugin[T]], name: str, kind: str, error: type[Exception], hint: str
) -> type[T]:
    """The class of plugin ``name`` among ``found``; ``error`` when there is none of that name
    (the registered names and ``hint`` say what to do) or it failed to load."""
    if name not in found:
        names = ", ".join(sorted(found)) or "none"
        raise error(f"no {kind} named {name!r}; registered {kind}s: {names} ({hint})")
    plugin = found[name]
    if plugin.cls is None:
        raise error(f"{kind} {name!r} failed to load: {plugin.error}")
    return plugin.cls


def load_plugins(group: str, base: type, kind: str, info: type[P]) -> dict[str, P]:
    """Every entry point of ``group`` as an ``info`` record (a ``Plugin``); one that fails to
    load is kept with its error, and a RuntimeWarning names it (``kind``: 'runner', 'task').

    The warning is issued once per process and plugin (the warnings registry drops repeats),
    however often the plugins are discovered; it is not logged as well."""
    found: dict[str, P] = {}
    for ep in entry_points(group=group):
        try:
            found[ep.name] = info(ep.name, ep.value, load_class(ep.value, base))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            message = f"{kind} plugin {ep.name!r} ({ep.value}) failed to load: {error}"
            # stacklevel 1: one location, so the warnings registry shows it once per process
            warnings.warn(message, RuntimeWarning, stacklevel=1)
            found[ep.name] = info(ep.name, ep.value, None, error)
    return found
