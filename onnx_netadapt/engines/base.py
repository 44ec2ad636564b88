"""The engine interface: evaluate the proposals of one iteration, results in job order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from onnx_netadapt.adapt.proposals import EvalContext, ProposalJob, ProposalScore
from onnx_netadapt.errors import NetAdaptError

Progress = Callable[[int, int], None]


class EngineError(NetAdaptError):
    """The engine could not evaluate the proposals (workers lost past their retries, the
    cluster unreachable, the engine not installed)."""

    exit_code = 12


class Engine(Protocol):
    """Runs proposal evaluations somewhere; a context manager that owns its workers.

    ``start(ctx)`` is called once per run with what every proposal needs (data, training
    plan, teacher); ``evaluate`` once per iteration. A proposal whose worker dies is retried
    (a bounded number of times) and never scored as failed for that; past the retries the
    engine raises :class:`EngineError` and the run is resumable from its last iteration.
    """

    name: str

    def start(self, ctx: EvalContext) -> None:
        """Prepare workers for a run with ``ctx``."""

    def __enter__(self) -> Engine: ...

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        """``close``, at once when leaving on an exception (Ctrl-C included)."""

    def evaluate(
        self, jobs: list[ProposalJob], current: bytes, progress: Progress | None = None
    ) -> list[ProposalScore]:
        """Fine-tune and score ``jobs`` (prunings of the network whose file content is
        ``current``); scores in job order, each fine-tuned proposal written to its job's path."""
        ...

    def close(self, interrupted: bool = False) -> None:
        """Stop the workers (at once when ``interrupted``)."""
