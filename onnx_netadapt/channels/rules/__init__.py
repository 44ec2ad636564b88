"""Channel rules, one per op type, registered with ``@rule("OpType", ...)``.

A rule reads the layouts of a node's inputs and records the layouts of its outputs, the unions
of atoms it implies, the initializer slices and node edits pruning must perform, or pins with a
reason when it cannot follow the channels. Importing this package registers every rule.
"""

from __future__ import annotations

from collections.abc import Callable

from onnx_netadapt.channels.context import RuleContext

RuleFn = Callable[[RuleContext], None]
_RULES: dict[str, RuleFn] = {}


def rule(*op_types: str) -> Callable[[RuleFn], RuleFn]:
    """Register ``fn`` as the channel rule of ``op_types`` (default ONNX domain)."""

    def register(fn: RuleFn) -> RuleFn:
        for op in op_types:
            if op in _RULES:
                raise ValueError(f"a channel rule for {op} is already registered")
            _RULES[op] = fn
        return fn

    return register


def get_rule(op_type: str) -> RuleFn | None:
    """The rule for ``op_type``, or None."""
    return _RULES.get(op_type)


def supported_ops() -> list[str]:
    """Op types that have a rule."""
    return sorted(_RULES)


# Import the rule modules so that they register themselves.
from onnx_netadapt.channels.rules import (  # noqa: E402
    conv,
    elementwise,
    linear,
    normalization,
    reduction,
    shape_ops,
)

__all__ = [
    "conv",
    "elementwise",
    "get_rule",
    "linear",
    "normalization",
    "reduction",
    "rule",
    "shape_ops",
    "supported_ops",
]
