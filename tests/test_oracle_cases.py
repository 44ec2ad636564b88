"""Every tiny case: analysis finds the expected groups and every prune passes the oracle.

The oracle (onnx_netadapt.verify): the pruned model must compute exactly what the original
computes after zeroing the removed channels' weights in their terminal consumers.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from models import CASES

from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.graph.probe import random_inputs
from onnx_netadapt.verify import check_against_masked, run_model

RUNNABLE = [name for name, case in CASES.items() if case.runs_in_ort]


@pytest.fixture(scope="module", params=sorted(CASES))
def case_analysis(request):
    case = CASES[request.param]
    return case, analyse(load_model(case.build()))


def test_expected_prunable_groups(case_analysis):
    case, analysis = case_analysis
    if case.expect_prunable is None:
        pytest.skip(f"{case.name}: no fixed expectation")
    got = [g.to_dict() for g in analysis.groups if g.prunable]
    assert len(got) == case.expect_prunable, got


def test_unprunable_groups_have_reasons(case_analysis):
    _, analysis = case_analysis
    for group in analysis.groups:
        assert group.prunable == (not group.reasons) or group.status == "approximate"
        if group.status != "prunable":
            assert group.reasons and all(isinstance(r, str) and r for r in group.reasons)


@pytest.mark.parametrize("name", RUNNABLE)
@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.75])
def test_ratio_prune_matches_masked_original(name, ratio):
    analysis = analyse(load_model(CASES[name].build()))
    if not any(g.prunable for g in analysis.groups):
        pytest.skip("no prunable group")
    result = prune(analysis, ratio=ratio, round_to=1)
    assert any(g["channels_after"] < g["channels_before"] for g in result.report["groups"]), (
        "nothing was pruned"
    )
    outcome = check_against_masked(analysis, result)
    assert outcome.ok, outcome


@pytest.mark.parametrize("name", RUNNABLE)
def test_each_group_alone_with_random_indices(name):
    analysis = analyse(load_model(CASES[name].build()))
    rng = np.random.default_rng(1)
    for group in analysis.groups:
        if not group.prunable:
            continue
        keep = np.sort(rng.choice(group.units, size=max(1, group.units // 2), replace=False))
        result = prune(analysis, {group.id: keep})
        assert check_against_masked(analysis, result, seed=2).ok, (name, group.to_dict())


@pytest.mark.parametrize("name", RUNNABLE)
def test_keep_everything_is_bit_identical_to_the_original(name):
    original = CASES[name].build()
    analysis = analyse(load_model(original))
    keep = {g.id: np.arange(g.units) for g in analysis.groups if g.prunable}
    result = prune(analysis, keep)
    feeds = random_inputs(original)
    for a, b in zip(run_model(original, feeds), run_model(result.model, feeds), strict=False):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", RUNNABLE)
def test_pruned_model_is_valid_and_keeps_output_shapes(name):
    original = CASES[name].build()
    analysis = analyse(load_model(original))
    if not any(g.prunable for g in analysis.groups):
        pytest.skip("no prunable group")
    result = prune(analysis, ratio=0.5, round_to=1)
    onnx.checker.check_model(result.model, full_check=True)
    feeds = random_inputs(original)
    ref = run_model(original, feeds)
    out = run_model(result.model, feeds)
    assert [r.shape for r in ref] == [o.shape for o in out]
    assert {n.name for n in result.model.graph.node} == {
        n.name for n in analysis.loaded.model.graph.node
    }


def test_input_model_is_never_modified():
    original = CASES["residual_chain"].build()
    before = original.SerializeToString()
    analysis = analyse(load_model(original))
    prune(analysis, ratio=0.5)
    assert original.SerializeToString() == before
