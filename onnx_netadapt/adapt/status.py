"""How a run ends: one status vocabulary, one exit code per status.

The text summary, ``--json``, report.md, history.json and the exit code all read the status
from here, so a pipeline can never see a missed budget reported as success.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from onnx_netadapt.errors import BudgetError, NetAdaptError

if TYPE_CHECKING:
    from onnx_netadapt.adapt.state import RunSummary

RUNNING = "running"
FINISHED = "finished"  # the loop ended and the adapted network and report are written
MET = "met"
UNREACHABLE = "unreachable"
MAX_ITERATIONS = "max_iterations"

# What each final status means, in the words of the summary and the report.
MEANING = {
    MET: "every budget is met (confirmed by a longer interleaved measurement)",
    UNREACHABLE: "budget NOT met: no channel group can shrink further",
    MAX_ITERATIONS: "budget NOT met: stopped at --max-iterations",
}


class IterationLimitError(NetAdaptError):
    """The run stopped at ``--max-iterations`` before every budget was met."""

    exit_code = 11


# The exit code of each final status (README "Exit codes").
EXIT_CODES = {
    MET: 0,
    UNREACHABLE: BudgetError.exit_code,
    MAX_ITERATIONS: IterationLimitError.exit_code,
}


def outcome_error(summary: RunSummary) -> NetAdaptError | None:
    """The error a finished run with ``summary`` ends in, or ``None`` when every budget holds."""
    if summary.status == MET:
        return None
    missed = ", ".join(
        f"{r} {summary.final[r]:.4g} > {goal:.4g} {summary.units[r]}"
        for r, goal in summary.goals.items()
        if summary.final[r] > goal
    )
    best = f"The best network reached is {summary.adapted}"
    if summary.status == MAX_ITERATIONS:
        return IterationLimitError(
            f"the budget was not met within --max-iterations {summary.iterations} "
            f"({missed}). {best}; raise --max-iterations and start a new run, or adapt "
            f"from it"
        )
    reasons = "; ".join(
        f"group {s['group']} ({', '.join(s['producers'][:2])}): {s['reason']}"
        for s in summary.unreachable[:5]
    )
    return BudgetError(
        f"the budget could not be met: after {summary.iterations} iterations no channel "
        f"group can shrink enough ({missed}; {reasons}). {best}"
    )
