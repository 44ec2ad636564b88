"""Resource tracking in the loop: anchored latency, pruned signatures without shape inference."""

from __future__ import annotations

import itertools

import onnx
import pytest
from models import CASES

from onnx_netadapt.adapt import parse_budget
from onnx_netadapt.adapt import resources as resources_module
from onnx_netadapt.adapt.resources import ResourceSet
from onnx_netadapt.channels.analysis import analyse
from onnx_netadapt.graph.load import load_model
from onnx_netadapt.measure.metrics import parameter_count
from onnx_netadapt.measure.signature import model_signatures, pruned_signatures
from onnx_netadapt.prune.apply import prune
from onnx_netadapt_runners.resources import MacsRunner


class TransientRunner(MacsRunner):
    """'Latency' = parameters / 1e6 ms, times a slowdown that changes every two measurements
    (a machine that is sometimes busy): a lone measurement is off, a back-to-back ratio is not."""

    unit = "ms"
    factors = itertools.cycle([1.0, 1.0, 1.6, 1.6, 0.7, 0.7])

    def _measure_impl(self, model: onnx.ModelProto) -> list[float]:
        return [parameter_count(model) / 1e6 * next(TransientRunner.factors)]


def _model() -> onnx.ModelProto:
    return CASES["residual_chain"].build()


def _original_and_half() -> tuple:
    """The residual chain, its pruning at half of every group, and their exact parameter ratio
    (what a latency in parameters / 1e6 ms must come out at)."""
    original = load_model(_model())
    pruned = prune(analyse(original), ratio=0.5, round_to=1).model
    return original, pruned, parameter_count(pruned) / parameter_count(original.model)


def test_latency_is_anchored_to_the_original(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources_module, "make_runner", lambda *a, **k: TransientRunner())
    original, pruned, exact = _original_and_half()
    with ResourceSet("fake", [parse_budget("0.5")]) as resources:
        values = {"latency": parameter_count(original.model) / 1e6}
        item = resources.tracked["latency"]
        lone = [resources.measure(item, pruned) / values["latency"] for _ in range(3)]
        assert max(abs(r - exact) for r in lone) > 0.2 * exact  # the transient shows
        resources.set_reference(original.model, values)
        TransientRunner.factors = itertools.cycle([1.0, 1.0, 1.6, 1.6, 0.7, 0.7])  # new rounds
        anchored = resources.measure(item, pruned) / values["latency"]
        assert anchored == pytest.approx(exact, rel=1e-9)


def test_pruned_signatures_match_shape_inference() -> None:
    for case in CASES.values():
        loaded = load_model(case.build())
        analysis = analyse(loaded)
        groups = [g for g in analysis.groups if g.prunable and g.units > 1]
        if not groups:
            continue
        keep = {g.id: max(1, g.units // 2) for g in groups}
        pruned = prune(analysis, keep).model
        fast = pruned_signatures(model_signatures(loaded), pruned)
        slow = model_signatures(load_model(pruned, fold=False))
        assert fast == slow, case.name


class NeighbourRunner(MacsRunner):
    """'Latency' = parameters / 1e6 ms on a host shared with other work: alone, each
    measurement's runs are slowed by a neighbour whose load changes from one measurement to
    the next; run by turns with another model, both share the neighbour of the moment, and
    a few runs of each are free of it."""

    unit = "ms"
    loads = itertools.cycle([1.0, 1.8, 1.3, 1.0, 1.6, 1.1])
    alternated = 0

    def _measure_impl(self, model: onnx.ModelProto) -> list[float]:
        ms, load = parameter_count(model) / 1e6, next(NeighbourRunner.loads)
        return [ms * load] * 10

    def _alternate_impl(self, models: list[onnx.ModelProto]) -> list[list[float]]:
        NeighbourRunner.alternated += 1
        load = next(NeighbourRunner.loads)
        return [
            [parameter_count(m) / 1e6] * 2 + [parameter_count(m) / 1e6 * load] * 8 for m in models
        ]


def test_the_loop_times_a_network_and_its_reference_by_turns_where_the_runner_can(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(resources_module, "make_runner", lambda *a, **k: NeighbourRunner())
    original, pruned, exact = _original_and_half()
    with ResourceSet("fake", [parse_budget("0.5")]) as resources:
        values = {"latency": parameter_count(original.model) / 1e6}
        item = resources.tracked["latency"]
        resources.set_reference(original.model, values)
        measured = resources.measure_rounds(item, pruned, 3)
    assert NeighbourRunner.alternated == 3  # one alternation per round, no lone measurements
    assert measured.value / values["latency"] == pytest.approx(exact, rel=1e-9)
    assert measured.p10 == pytest.approx(measured.p90)  # the neighbour cancels in every round
