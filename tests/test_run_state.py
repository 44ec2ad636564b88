"""The typed run state: round trip through JSON, older run directories, clear refusals."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from onnx_netadapt.adapt.rundir import RunDir, RunDirError
from onnx_netadapt.adapt.state import SCHEMA_VERSION, IterationRecord, RunState

V1_STATE = {
    "version": 1,
    "model": {"path": "/m.onnx", "sha256": "ab"},
    "config": {"target": "macs"},
    "data": {"train": 10, "holdout": 5, "val": 5, "targets": True},
    "iteration": 1,
    "current": "iterations/net_001.onnx",
    "calibration": {"latency": {"measured": 1.0, "layers_total": 0.5}},
    "original": {"latency": 2.0},
    "limits": {"latency": 1.2},
    "floor": {"latency": 0.5},
    "units": {"latency": "MMAC"},
    "holdout_accuracy": 0.9,
    "history": [
        {
            "iteration": 0,
            "network": "iterations/net_000.onnx",
            "measured": {"latency": 2.0},
            "holdout_accuracy": 0.95,
            "seconds": 1.5,
            "table_measurements": 3,
        },
        {
            "iteration": 1,
            "network": "iterations/net_001.onnx",
            "targets": {"latency": 1.6},
            "group": {"group": 0, "producers": ["conv"], "channels_before": 8},
            "estimate": {"latency": 1.5},
            "measured": {"latency": 1.0},
            "holdout_accuracy": 0.9,
            "proposals": [],
            "skipped": [],
            "seconds": {"total": 2.0, "search": 0.1},
            "table_measurements": 7,
        },
    ],
    "status": "running",
}


def test_schema_1_running_state_is_upgraded_and_round_trips(tmp_path: Path) -> None:
    rundir = RunDir(tmp_path)
    rundir.state_path.write_text(json.dumps(V1_STATE))
    state = rundir.load_state()
    assert state.goals == state.limits  # before --margin, the goal was the budget
    assert state.history[0].seconds == {"total": 1.5} and state.latest.total_seconds == 2.0
    assert state.confirmations == [] and state.summary is None
    rundir.save(state)
    again = rundir.load_state()
    assert again == state
    on_disk = json.loads(rundir.state_path.read_text())
    assert on_disk["version"] == SCHEMA_VERSION
    history = json.loads(rundir.history_path.read_text())
    assert history["history"][1]["group"]["producers"] == ["conv"]
    assert "calibration" not in history  # resume internals stay in state.json


def test_a_finished_schema_1_run_gets_a_clear_message(tmp_path: Path) -> None:
    rundir = RunDir(tmp_path)
    rundir.state_path.write_text(json.dumps({**V1_STATE, "status": "finished"}))
    with pytest.raises(RunDirError, match=r"older version.*nothing to resume"):
        rundir.load_state()


def test_an_unknown_version_or_shape_is_refused_by_name(tmp_path: Path) -> None:
    rundir = RunDir(tmp_path)
    rundir.state_path.write_text(json.dumps({**V1_STATE, "version": 99}))
    with pytest.raises(RunDirError, match="state version 99"):
        rundir.load_state()
    broken = {**copy.deepcopy(V1_STATE), "version": SCHEMA_VERSION}
    del broken["history"][0]["measured"]
    rundir.state_path.write_text(json.dumps(broken))
    with pytest.raises(RunDirError, match="not a run state"):
        rundir.load_state()


def test_iteration_records_keep_their_json_keys() -> None:
    record = IterationRecord.from_dict(V1_STATE["history"][1])
    data = record.to_dict()
    assert set(V1_STATE["history"][1]) <= set(data)
    assert RunState.from_dict({**V1_STATE, "version": 2}).history[1] == record
