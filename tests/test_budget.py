"""Budget parsing: relative, absolute with units, per resource, and clear errors."""

from __future__ import annotations

import pytest

from onnx_netadapt.adapt.budget import Budget, check_unit, parse_budget, parse_budgets
from onnx_netadapt.errors import BudgetError


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0.5", Budget("latency", 0.5, True)),
        ("latency=0.35", Budget("latency", 0.35, True)),
        ("12ms", Budget("latency", 12.0, False, "ms")),
        ("500us", Budget("latency", 0.5, False, "ms")),
        ("params=0.7", Budget("params", 0.7, True)),
        ("macs=150MMAC", Budget("macs", 150.0, False, "MMAC")),
        ("memory=512kB", Budget("memory", 0.512, False, "MB")),
        ("tflite=8ms", Budget("tflite", 8.0, False, "ms")),
    ],
)
def test_parse_budget(text: str, expected: Budget) -> None:
    got = parse_budget(text)
    assert got.resource == expected.resource and got.relative == expected.relative
    assert got.value == pytest.approx(expected.value) and got.unit == expected.unit


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("5", "add a unit"),
        ("0", "(0, 1]"),
        ("-1", "must be positive"),
        ("12parsecs", "unknown unit"),
        ("half", "cannot read"),
        ("-3ms", "positive"),
    ],
)
def test_bad_budgets_say_how_to_fix(text: str, fragment: str) -> None:
    with pytest.raises(BudgetError, match=fragment.replace("(", r"\(").replace("]", r"\]")):
        parse_budget(text)


def test_a_negative_bare_budget_suggests_no_negative_value() -> None:
    with pytest.raises(BudgetError) as info:
        parse_budget("-1")
    assert "-1ms" not in str(info.value) and "12ms" in str(info.value)


def test_a_budget_of_one_is_accepted() -> None:
    """(0, 1] as documented: 1 means the resource must not grow (beside another budget)."""
    assert parse_budget("1") == Budget("latency", 1.0, True)
    assert [b.value for b in parse_budgets(["1", "params=0.5"])] == [1.0, 0.5]


def test_one_budget_per_resource_and_at_least_one() -> None:
    with pytest.raises(BudgetError, match="two budgets"):
        parse_budgets(["0.5", "latency=3ms"])
    with pytest.raises(BudgetError, match="at least one"):
        parse_budgets([])
    assert [b.resource for b in parse_budgets(["0.5", "params=0.7"])] == ["latency", "params"]


def test_limits_and_units() -> None:
    assert parse_budget("0.5").limit(10.0) == 5.0
    assert parse_budget("3ms").limit(10.0) == 3.0
    check_unit(parse_budget("3ms"), "ms")
    with pytest.raises(BudgetError, match=r"'macs' runner measures MMAC.*macs=150MMAC"):
        check_unit(parse_budget("macs=3ms"), "MMAC")


def test_a_latency_budget_on_a_macs_target_names_the_target() -> None:
    with pytest.raises(BudgetError) as info:
        check_unit(parse_budget("12ms"), "MMAC", "macs")
    message = str(info.value)
    assert "--budget 12ms is in ms, but --target macs measures MMAC" in message
    assert "'latency' runner" not in message and "--budget 150MMAC" in message
