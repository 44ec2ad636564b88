"""The run state: typed records of one adaptation, with a schema version.

One contract shared by the loop (which writes it), the run directory (which stores it as
``state.json`` and ``history.json``), the report, the CLI summary and ``--resume``:

- :class:`IterationRecord`: one finished iteration (iteration 0 is the original network);
- :class:`Confirmation`: a longer measurement taken before a budget is declared met;
- :class:`RunSummary`: how the run ended and the adapted network's figures;
- :class:`RunState`: everything a resumed run needs, plus the three above.

The JSON keys are those of history.json (README), so scripts that read it keep working.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from onnx_netadapt.adapt.status import RUNNING

# Version 2: typed records (iteration 0 records seconds as {"total": s}), goals, confirmations.
SCHEMA_VERSION = 2


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``data`` that are fields of the dataclass ``cls``."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass
class IterationRecord:
    """One finished iteration, as history.json lists it."""

    iteration: int
    network: str  # relative to the run directory
    measured: dict[str, float]
    holdout_accuracy: float
    seconds: dict[str, float]  # "total", and for iterations >= 1 search/proposals/measure
    table_measurements: int  # table entries measured by the run so far (across resumes)
    targets: dict[str, float] = field(default_factory=dict)
    group: dict[str, Any] | None = None  # the chosen group (None for the original)
    estimate: dict[str, float] = field(default_factory=dict)
    proposals: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total_seconds(self) -> float:
        """Wall time of the iteration."""
        return float(self.seconds.get("total", 0.0))

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IterationRecord:
        """Inverse of ``to_dict``; also reads schema 1 (iteration 0's seconds as a number)."""
        values = _known(cls, data)
        if not isinstance(values.get("seconds"), dict):
            values["seconds"] = {"total": float(values.get("seconds") or 0.0)}
        return cls(**values)


@dataclass
class Confirmation:
    """The longer measurement of the network of ``iteration`` (per resource: value, p10, p90,
    rounds), and whether it meets every goal."""

    iteration: int
    measured: dict[str, dict[str, float]]
    meets: bool

    def value(self, resource: str) -> float:
        """The confirmed (median) value of ``resource``."""
        return float(self.measured[resource]["value"])

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Confirmation:
        """Inverse of ``to_dict``."""
        return cls(**_known(cls, data))


@dataclass
class RunSummary:
    """How a finished run ended, and the adapted network's figures (``--json`` prints this)."""

    status: str
    meaning: str
    exit_code: int
    budgets_met: bool
    iterations: int
    original: dict[str, float]
    final: dict[str, float]
    final_spread: dict[str, dict[str, float]]
    limits: dict[str, float]
    goals: dict[str, float]
    margin: float
    units: dict[str, str]
    val_accuracy: dict[str, float]
    long_finetune_seconds: float
    seconds_total: float
    table_measurements: int
    table_seconds: float
    network_measurements: int
    table_entries: dict[str, int]
    adapted: str
    adapted_interface: str
    unreachable: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        """Inverse of ``to_dict``."""
        return cls(**_known(cls, data))


@dataclass
class RunState:
    """Where a run stands: its settings, its measurements so far and its history.

    ``status`` is ``running`` until the loop ends (``met``, ``unreachable``,
    ``max_iterations``), then ``finished`` once the adapted network and the report are written.
    """

    model: dict[str, str]  # path and sha256 of the input model
    config: dict[str, Any]  # AdaptConfig.to_dict()
    data: dict[str, Any]  # sizes of the splits, whether there are targets
    original: dict[str, float]
    limits: dict[str, float]
    goals: dict[str, float]  # the limits less --margin (what the loop aims at)
    floor: dict[str, float]
    units: dict[str, str]
    calibration: dict[str, dict[str, float]]
    current: str  # the current network, relative to the run directory
    holdout_accuracy: float
    history: list[IterationRecord]
    iteration: int = 0
    status: str = RUNNING
    table_measurements: int = 0
    confirmations: list[Confirmation] = field(default_factory=list)
    unreachable: list[dict[str, Any]] = field(default_factory=list)
    summary: RunSummary | None = None
    # the task that trains and scores ("holdout_accuracy" and "val_accuracy" are its score)
    task: dict[str, str] = field(
        default_factory=lambda: {"name": "classification", "score": "accuracy", "unit": "%"}
    )

    @property
    def latest(self) -> IterationRecord:
        """The record of the current network."""
        return self.history[-1]

    def meets(self, values: dict[str, float]) -> bool:
        """Whether ``values`` meet every goal (the budgets less ``--margin``)."""
        return all(values[r] <= goal for r, goal in self.goals.items())

    def targets(self, values: dict[str, float], step: float) -> dict[str, float]:
        """Resource targets ``step`` times the original value below ``values``, never below a
        goal (a budget already met keeps its goal as the target)."""
        targets = {}
        for resource, limit in self.goals.items():
            if values[resource] <= limit:
                targets[resource] = limit
            else:
                reduced = values[resource] - step * self.original[resource]
                targets[resource] = max(limit, reduced)
        return targets

    def confirmed(self) -> Confirmation | None:
        """The confirmation of the current network, if it was measured."""
        last = self.confirmations[-1] if self.confirmations else None
        return last if last is not None and last.iteration == self.iteration else None

    def to_dict(self) -> dict[str, Any]:
        """state.json's content (with the schema version)."""
        data = asdict(self)
        data["version"] = SCHEMA_VERSION
        return data

    def history_dict(self) -> dict[str, Any]:
        """history.json's content: what a reader of the run needs, without resume internals."""
        data = self.to_dict()
        for internal in ("calibration", "current", "holdout_accuracy", "iteration"):
            data.pop(internal)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        """Inverse of ``to_dict``; schema 1 (before goals and confirmations) is upgraded."""
        values = _known(cls, data)
        values.setdefault("goals", dict(values.get("limits", {})))
        values.setdefault("floor", {})
        values["history"] = [IterationRecord.from_dict(r) for r in values.get("history", [])]
        values["confirmations"] = [
            Confirmation.from_dict(c) for c in values.get("confirmations") or []
        ]
        values["unreachable"] = values.get("unreachable") or []
        if values.get("summary"):
            values["summary"] = RunSummary.from_dict(values["summary"])
        return cls(**values)
