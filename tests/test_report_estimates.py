"""The run report's one-step-ahead figures: each chosen pruning's latency as estimated when
it was proposed, against its measurement once chosen."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from onnx_netadapt.adapt.report import _iterations, estimate_errors
from onnx_netadapt.adapt.state import IterationRecord

GROUP = {"group": 3, "producers": ["conv3"], "channels_before": 64, "channels_after": 48}


def _record(i: int, measured: float, estimated: float | None) -> IterationRecord:
    return IterationRecord(
        iteration=i,
        network=f"iterations/net_{i:03d}.onnx",
        measured={"latency": measured},
        holdout_accuracy=0.9,
        seconds={"total": 1.0},
        table_measurements=0,
        group=None if i == 0 else GROUP,
        estimate={} if estimated is None else {"latency": estimated},
    )


def test_each_iteration_gets_its_estimate_error_and_the_report_its_mean_and_worst() -> None:
    history = [_record(0, 1.0, None), _record(1, 0.9, 0.918), _record(2, 0.8, 0.76)]
    errors = estimate_errors(history)
    assert set(errors) == {1, 2}  # the original has no estimate
    assert errors[1] == pytest.approx(0.02) and errors[2] == pytest.approx(-0.05)
    state = SimpleNamespace(task={"unit": "%", "score": "accuracy"}, history=history)
    text = "\n".join(_iterations(state))
    assert "| +2.0% |" in text and "| -5.0% |" in text
    assert "mean error 3.5%, worst -5.0% (iteration 2), over 2 iterations" in text


def test_an_iteration_without_a_latency_estimate_is_left_out() -> None:
    history = [_record(0, 1.0, None), _record(1, 0.9, None)]
    assert estimate_errors(history) == {}
    state = SimpleNamespace(task={"unit": "%", "score": "accuracy"}, history=history)
    text = "\n".join(_iterations(state))
    assert "One step ahead" not in text and "| nan |" in text
