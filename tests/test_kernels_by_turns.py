"""A pruned layer's kernel entry timed by turns with its reference (the layer it was pruned
from): on a host whose speed moves between measurements, the entries' ratio, which a pruning's
estimate reads, stays the layers' own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx
import pytest

from onnx_netadapt.measure.kernels import (
    MAX_TURNS,
    TURNS,
    TURNS_TARGET_SE,
    context_layer_model,
    kernel_table,
    median_ratio_se,
)
from onnx_netadapt.measure.runner import Runner
from onnx_netadapt.measure.signature import LayerSignature
from onnx_netadapt.measure.strategies import Entries
from onnx_netadapt.measure.table import LatencyTable

ORIGINAL = LayerSignature("Conv", 32, 48, (8, 8), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))
PRUNED = LayerSignature("Conv", 32, 24, (8, 8), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))
OTHER = LayerSignature("Conv", 16, 16, (8, 8), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1))
TRUE_RATIO = 24 / 48


def weight_elements(model: onnx.ModelProto, node: onnx.NodeProto) -> int:
    """Elements of ``node``'s weight (its second input, an initializer)."""
    (weight,) = [i for i in model.graph.initializer if i.name == node.input[1]]
    size = 1
    for d in weight.dims:
        size *= d
    return size


def weights(model: onnx.ModelProto) -> int:
    """Elements of the profiled layer's weight."""
    (layer,) = [n for n in model.graph.node if n.name == "layer"]
    return weight_elements(model, layer)


def weights_of(sig: LayerSignature) -> int:
    """Elements of the weight of ``sig``'s layer in its context model."""
    return weights(context_layer_model(sig))


class ShiftingRunner(Runner):
    """Profiles a layer at a time proportional to its weights, times the host's slowness at
    that moment: ``slowness`` until the test changes it, or, with ``moments``, one value per
    profile in turn."""

    name = "shifting"

    def __init__(self) -> None:
        super().__init__()
        self.slowness = 1.0
        self.moments: list[float] = []
        self.profiles = 0
        self.on_profile: Callable[[int], object] = lambda weights: None

    def _fingerprint_impl(self) -> dict[str, object]:
        return {"fake": 1}

    def _measure_impl(self, model: onnx.ModelProto) -> list[float]:
        return [1.0]

    def profile_layers(self, model: onnx.ModelProto) -> dict[str, float]:
        slowness = (
            self.moments[self.profiles % len(self.moments)] if self.moments else self.slowness
        )
        self.profiles += 1
        self.on_profile(weights(model))
        return {"layer": 1e-4 * weights(model) * slowness}


@pytest.mark.parametrize("reference", [True, False])
def test_a_pruned_entry_keeps_its_ratio_to_the_reference_whatever_the_host_does(
    tmp_path: Path, reference: bool
) -> None:
    runner = ShiftingRunner()
    table, kernels = kernel_table(runner, tmp_path / "table.json", reference=reference)
    original = table.lookup([ORIGINAL], kernels)[ORIGINAL].median_ms  # alone: no reference
    runner.slowness = 1.8  # a slow minute for the host
    pruned = table.lookup([PRUNED], kernels.paired({PRUNED: ORIGINAL}))[PRUNED].median_ms
    if reference:
        assert pruned / original == pytest.approx(TRUE_RATIO)
        assert kernels.fingerprint()["pruned_entries"] == "by-turns"
    else:  # the entries alone: the slow minute lands in the ratio
        assert pruned / original == pytest.approx(TRUE_RATIO * 1.8)
        assert "pruned_entries" not in kernels.fingerprint()


def test_slow_moments_in_a_minority_of_rounds_leave_the_ratio_alone(tmp_path: Path) -> None:
    """The ratio is the median over ``TURNS`` rounds: two rounds whose pruned profile landed in
    a slow moment (x1.8) do not move it."""
    runner = ShiftingRunner()
    table, kernels = kernel_table(runner, tmp_path / "table.json")
    original = table.lookup([ORIGINAL], kernels)[ORIGINAL].median_ms
    runner.profiles = 0
    # each round profiles the pruned layer, then its reference (the other way every other round)
    runner.moments = [1.8, 1.0, 1.8, 1.0] + [1.0, 1.0] * (TURNS - 2)
    pruned = table.lookup([PRUNED], kernels.paired({PRUNED: ORIGINAL}))[PRUNED].median_ms
    assert runner.profiles == 2 * TURNS
    assert pruned / original == pytest.approx(TRUE_RATIO)


def test_a_reference_missing_from_the_table_is_measured_first_and_kept(tmp_path: Path) -> None:
    runner = ShiftingRunner()
    table, kernels = kernel_table(runner, tmp_path / "table.json")
    found = table.lookup([PRUNED], kernels.paired({PRUNED: ORIGINAL}))
    assert table.get(ORIGINAL) is not None  # measured alone, stored, and the pruned scaled to it
    assert found[PRUNED].median_ms / table.get(ORIGINAL).median_ms == pytest.approx(TRUE_RATIO)


def test_the_estimator_entries_pair_pruned_layers_with_the_calibrated_network_by_name(
    tmp_path: Path,
) -> None:
    runner = ShiftingRunner()
    entries = Entries(runner, LatencyTable(runner.fingerprint(), tmp_path / "t.json"))
    assert entries.reference  # the default
    calibrated = {"conv1": ORIGINAL, "conv2": OTHER}
    before = entries.kernel_ms(calibrated)
    entries.calibrated_on(calibrated)
    runner.slowness = 1.5
    after = entries.kernel_ms({"conv1": PRUNED, "conv2": OTHER})
    assert after["conv1"] / before["conv1"] == pytest.approx(TRUE_RATIO)
    assert after["conv2"] == before["conv2"]  # unchanged layers are read, not measured again


def test_each_pruned_layer_is_profiled_beside_its_reference(tmp_path: Path) -> None:
    """The host slows down halfway through every round (a round over a network's layers takes
    seconds): each layer's ratio still comes from two profiles at the same speed."""
    other_pruned = LayerSignature("Conv", 16, 8, (8, 8), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1))
    runner = ShiftingRunner()
    table, kernels = kernel_table(runner, tmp_path / "table.json")
    before = table.lookup([ORIGINAL, OTHER], kernels)
    runner.profiles = 0
    runner.moments = [1.0, 1.0, 1.8, 1.8]  # four profiles a round: the last two slow
    references = {PRUNED: ORIGINAL, other_pruned: OTHER}
    found = table.lookup([PRUNED, other_pruned], kernels.paired(references))
    assert runner.profiles == 4 * TURNS
    assert found[PRUNED].median_ms / before[ORIGINAL].median_ms == pytest.approx(TRUE_RATIO)
    assert found[other_pruned].median_ms / before[OTHER].median_ms == pytest.approx(0.5)


def test_pruned_layers_sharing_a_reference_each_sit_beside_a_profile_of_it(
    tmp_path: Path,
) -> None:
    """Three pruned forms of one layer (a pruning that keeps different counts of identical
    layers) and one of another: in every round each is profiled right beside its own
    reference, and its ratio is read off that neighbour (a host that changes speed between any
    two pairs leaves every ratio exact)."""
    in_pruned = LayerSignature("Conv", 24, 48, (8, 8), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))
    out_pruned = LayerSignature("Conv", 32, 12, (8, 8), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))
    other_pruned = LayerSignature("Conv", 16, 8, (8, 8), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1))
    runner = ShiftingRunner()
    table, kernels = kernel_table(runner, tmp_path / "table.json")
    before = table.lookup([ORIGINAL, OTHER], kernels)
    references = {PRUNED: ORIGINAL, other_pruned: OTHER, in_pruned: ORIGINAL}
    references[out_pruned] = ORIGINAL
    reference_of = {weights_of(s): weights_of(r) for s, r in references.items()}
    profiled: list[int] = []
    runner.on_profile = profiled.append
    runner.profiles = 0
    # seven profiles a round, in three runs of a reference and its pruned layers (3, 2, 2;
    # every other round reversed: 2, 2, 3); the host's speed changes between the runs
    runner.moments = [1.0, 1.0, 1.0, 1.8, 1.8, 1.3, 1.3, 0.9, 0.9, 1.2, 1.2, 1.5, 1.5, 1.5]
    found = table.lookup(list(references), kernels.paired(references))
    rounds = [profiled[i : i + 7] for i in range(0, len(profiled), 7)]
    assert len(rounds) == TURNS
    for profiles in rounds:
        for i, layer in enumerate(profiles):
            if layer in reference_of:
                neighbours = profiles[max(0, i - 1) : i + 2]
                assert reference_of[layer] in neighbours, (layer, profiles)
    ratio = {PRUNED: 0.5, in_pruned: 0.75, out_pruned: 0.25, other_pruned: 0.5}
    for sig, expected in ratio.items():
        reference = before[references[sig]].median_ms
        assert found[sig].median_ms / reference == pytest.approx(expected), sig


def test_the_median_ratio_s_standard_error_follows_the_spread_and_the_count() -> None:
    assert median_ratio_se([0.5] * 5) == 0.0
    assert median_ratio_se([0.5]) == float("inf")  # one round says nothing of its spread
    spread = [0.5 * k for k in (0.8, 0.9, 1.0, 1.1, 1.25)]
    assert median_ratio_se(spread) > TURNS_TARGET_SE
    assert median_ratio_se(spread * 4) == pytest.approx(median_ratio_se(spread) / 2)
    # one wild round does not make a settled ratio unsettled
    assert median_ratio_se([0.5, 0.5, 0.5, 0.501, 5.0]) < TURNS_TARGET_SE


@pytest.mark.parametrize("max_turns", [MAX_TURNS, TURNS])
def test_a_pair_whose_ratios_spread_gets_more_rounds_and_a_steady_one_does_not(
    tmp_path: Path, max_turns: int
) -> None:
    """The pruned layer of one pair lands at a different speed in every round (a small layer
    on a busy host): its pair goes on to ``max_turns`` rounds, while the other pair, whose
    ratio is the same in every round, stops at ``TURNS``."""
    other_pruned = LayerSignature("Conv", 16, 8, (8, 8), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1))
    noisy = weights_of(PRUNED)
    speeds = [1.0, 1.3, 0.8, 1.15, 0.9, 1.2, 0.85]
    runner = ShiftingRunner()
    table, kernels = kernel_table(runner, tmp_path / "table.json", max_turns=max_turns)
    before = table.lookup([ORIGINAL, OTHER], kernels)
    profiled: list[int] = []
    runner.on_profile = profiled.append

    def profile_layers(model: onnx.ModelProto) -> dict[str, float]:
        found = ShiftingRunner.profile_layers(runner, model)
        if weights(model) == noisy:
            return {"layer": found["layer"] * speeds[profiled.count(noisy) % len(speeds)]}
        return found

    runner.profile_layers = profile_layers  # type: ignore[method-assign]
    references = {PRUNED: ORIGINAL, other_pruned: OTHER}
    found = table.lookup(list(references), kernels.paired(references))
    assert profiled.count(noisy) == max_turns
    assert profiled.count(weights_of(ORIGINAL)) == max_turns
    assert profiled.count(weights_of(other_pruned)) == TURNS
    ratio = found[PRUNED].median_ms / before[ORIGINAL].median_ms
    applied = [speeds[(k + 1) % len(speeds)] for k in range(max_turns)]
    assert ratio == pytest.approx(TRUE_RATIO * sorted(applied)[max_turns // 2])
    assert found[other_pruned].median_ms / before[OTHER].median_ms == pytest.approx(0.5)
