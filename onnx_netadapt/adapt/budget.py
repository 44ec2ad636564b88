"""Budgets: how much of a resource the adapted network may use.

``--budget 0.5`` means half of the original's measured latency; ``--budget 12ms`` is absolute;
``--budget params=0.7`` puts a budget on another resource (any registered runner: ``macs``,
``params``, ``memory``, or a second latency target such as ``tflite``). A bare number must be a
fraction in (0, 1] (``1``: the resource must not grow, useful beside another budget); an
absolute value needs a unit, so ``0.5`` and ``5`` cannot be confused.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from onnx_netadapt.errors import BudgetError

LATENCY = "latency"

# Unit suffix -> (resource unit it converts to, factor).
_UNITS = {
    "ms": ("ms", 1.0),
    "us": ("ms", 1e-3),
    "s": ("ms", 1e3),
    "mmac": ("MMAC", 1.0),
    "gmac": ("MMAC", 1e3),
    "mparam": ("Mparam", 1.0),
    "kparam": ("Mparam", 1e-3),
    "mb": ("MB", 1.0),
    "kb": ("MB", 1e-3),
}

_PATTERN = re.compile(
    r"^\s*(?:(?P<res>[A-Za-z_][\w.-]*)\s*=\s*)?(?P<num>[0-9.eE+-]+)\s*(?P<unit>[A-Za-z]*)\s*$"
)


@dataclass(frozen=True)
class Budget:
    """A limit on one resource.

    Attributes:
        resource: ``latency`` (the ``--target`` runner) or a runner name.
        value: a fraction of the original (``relative``) or an absolute value in ``unit``.
        relative: whether ``value`` is a fraction of the original network's resource.
        unit: the unit of an absolute value (ms, MMAC, Mparam, MB).
    """

    resource: str
    value: float
    relative: bool
    unit: str = ""

    def limit(self, original: float) -> float:
        """The absolute limit given the original network's resource."""
        return self.value * original if self.relative else self.value

    def describe(self) -> str:
        """Human form, e.g. ``latency <= 0.5 x original`` or ``latency <= 12 ms``."""
        if self.relative:
            return f"{self.resource} <= {self.value:g} x original"
        return f"{self.resource} <= {self.value:g} {self.unit}"

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Budget:
        """Inverse of ``to_dict``."""
        return cls(**data)


def parse_budget(text: str) -> Budget:
    """Parse one ``--budget`` value (see the module docstring)."""
    match = _PATTERN.match(text)
    if not match:
        raise BudgetError(
            f"cannot read budget {text!r}: use a fraction of the original (0.5), an absolute "
            "value with a unit (12ms), or RESOURCE=VALUE (params=0.7, latency=8ms)"
        )
    resource = match["res"] or LATENCY
    try:
        number = float(match["num"])
    except ValueError:
        raise BudgetError(f"cannot read the number in budget {text!r}") from None
    unit = match["unit"].lower()
    if not unit:
        if number <= 0:
            raise BudgetError(
                f"budget {text!r} must be positive: a fraction of the original in (0, 1] "
                "(0.5 = half) or an absolute value with a unit (12ms)"
            )
        if number > 1.0:
            raise BudgetError(
                f"budget {text!r}: a bare number is a fraction of the original and must be in "
                f"(0, 1]; for an absolute budget add a unit (e.g. {number:g}ms)"
            )
        return Budget(resource, number, relative=True)  # 1: must not grow (with other budgets)
    if unit not in _UNITS:
        raise BudgetError(
            f"budget {text!r}: unknown unit {match['unit']!r} (known: {', '.join(_UNITS)})"
        )
    if number <= 0:
        raise BudgetError(f"budget {text!r} must be positive")
    base_unit, factor = _UNITS[unit]
    return Budget(resource, number * factor, relative=False, unit=base_unit)


def parse_budgets(texts: tuple[str, ...] | list[str]) -> list[Budget]:
    """Parse every ``--budget``; one per resource."""
    if not texts:
        raise BudgetError("give at least one --budget (e.g. --budget 0.5 for half the latency)")
    budgets = [parse_budget(t) for t in texts]
    seen: set[str] = set()
    for b in budgets:
        if b.resource in seen:
            raise BudgetError(f"two budgets for {b.resource!r}: give one per resource")
        seen.add(b.resource)
    return budgets


# An example value per resource unit, for messages.
_EXAMPLES = {"ms": "12ms", "MMAC": "150MMAC", "Mparam": "1.5Mparam", "MB": "2MB"}


def check_unit(budget: Budget, runner_unit: str, runner_name: str = "") -> None:
    """An absolute budget's unit must match what its runner measures."""
    if budget.relative or budget.unit == runner_unit:
        return
    prefix = "" if budget.resource == LATENCY else f"{budget.resource}="
    who = (
        f"--target {runner_name}"
        if budget.resource == LATENCY and runner_name
        else f"the {budget.resource!r} runner"
    )
    example = _EXAMPLES.get(runner_unit)
    absolute = f" or a value in {runner_unit} (--budget {prefix}{example})" if example else ""
    raise BudgetError(
        f"--budget {prefix}{budget.value:g}{budget.unit} is in {budget.unit}, but {who} measures "
        f"{runner_unit}: give a fraction of the original (--budget {prefix}0.5){absolute}"
    )
