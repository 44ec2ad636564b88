"""Filter weights computed at run time from stored tensors (issue 12): exact only when it is.

Loading folds such computations into plain weights, so the masked-original oracle of
``test_oracle_cases`` (which masks the folded weight) cannot tell a re-standardised weight from
a fixed one. This test checks the stronger property on the original graph: a side (input or
output channels of the computed weight) is exact only when changing the stored parameters of
some channels leaves the computed weights of every other channel unchanged. Which stored slices
belong to a channel is declared here per case, independently of the code under test.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from models import CASES

from onnx_netadapt import analyse, load_model
from onnx_netadapt.verify import random_inputs, run_model

# case -> (filter node, {side: [(stored tensor, view shape or None, channel axis of the view)]},
#          expected status of each side)
IN, OUT = "in", "out"
DECLARED: dict[str, tuple[str, dict[str, list[tuple[str, tuple | None, int]]], dict[str, str]]] = {
    "ws_scaled_std_conv_bn": (
        "wconv_0",
        {
            IN: [("ws_v", (1, 8, 8, 9), 2), ("ws_vt", (1, 8, 9, 8), 1)],
            OUT: [("ws_v", None, 1), ("ws_vt", None, 2), ("ws_g", None, 0)],
        },
        {IN: "approximate", OUT: "prunable"},
    ),
    "ws_scaled_std_conv_bn_opset13": (
        "wconv_0",
        {
            IN: [("ws_v", (1, 8, 8, 9), 2), ("ws_vt", (1, 8, 9, 8), 1)],
            OUT: [("ws_v", None, 1), ("ws_vt", None, 2), ("ws_g", None, 0)],
        },
        {IN: "approximate", OUT: "prunable"},
    ),
    "ws_reduce": (
        "wconv_0",
        {IN: [("ws_v", None, 1)], OUT: [("ws_v", None, 0)]},
        {IN: "approximate", OUT: "prunable"},
    ),
    "ws_reduce_gain": (
        "wconv_0",
        {IN: [("ws_v", None, 1)], OUT: [("ws_v", None, 0), ("ws_g", None, 0)]},
        {IN: "approximate", OUT: "prunable"},
    ),
    "weight_norm_filters": (
        "wconv_0",
        {IN: [("wn_v", None, 1)], OUT: [("wn_v", None, 0), ("wn_g", None, 0)]},
        {IN: "approximate", OUT: "prunable"},
    ),
    "weight_norm_inputs": (
        "wconv_0",
        {IN: [("wn_v", None, 1), ("wn_g", None, 1)], OUT: [("wn_v", None, 0)]},
        {IN: "prunable", OUT: "approximate"},
    ),
    "reparam_branches_runtime": (
        "wconv_0",
        {
            IN: [("rep_w3", None, 1), ("rep_w1", None, 1), ("rep_id", None, 1)],
            OUT: [("rep_w3", None, 0), ("rep_w1", None, 0), ("rep_id", None, 0)],
        },
        {IN: "prunable", OUT: "prunable"},
    ),
    "scaled_weight_runtime": (
        "wconv_0",
        {IN: [("sc_v", None, 1)], OUT: [("sc_v", None, 0), ("sc_s", None, 0)]},
        {IN: "prunable", OUT: "prunable"},
    ),
    "low_rank_weight_runtime": (
        "wconv_0",
        {IN: [("lr_b", (4, 8, 9), 1)], OUT: [("lr_a", None, 0)]},
        {IN: "prunable", OUT: "prunable"},
    ),
}
WEIGHT_AXIS = {IN: 1, OUT: 0}  # of a Conv weight


def _side_status(analysis, node: str, side: str) -> str:
    for group in analysis.groups:
        if side == OUT and any(p.node == node for p in group.producers):
            return group.status
        if side == IN and node in group.consumers:
            return group.status
    raise AssertionError(f"no group on the {side} side of {node}")


def _computed_weight(model: onnx.ModelProto, node_name: str, stored: dict[str, np.ndarray]):
    """The weight ``node_name`` computes when the stored tensors hold ``stored``."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    node = next(n for n in probe.graph.node if n.name == node_name)
    for init in probe.graph.initializer:
        if init.name in stored:
            init.CopyFrom(onnx.numpy_helper.from_array(stored[init.name], init.name))
    probe.graph.output.append(onnx.ValueInfoProto(name=node.input[1]))
    return run_model(probe, random_inputs(model))[-1]


def _perturbed(slices, model, channels: int, seed: int) -> tuple[dict, np.ndarray]:
    """Stored tensors with the declared slices of half the channels (returned) changed."""
    rng = np.random.default_rng(seed)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    changed = rng.choice(channels, size=channels // 2, replace=False)
    stored = {}
    for name, view, axis in slices:
        array = inits[name].copy()
        viewed = array.reshape(view) if view else array
        index = [slice(None)] * viewed.ndim
        index[axis] = changed
        viewed[tuple(index)] += rng.standard_normal(viewed[tuple(index)].shape).astype(np.float32)
        stored[name] = viewed.reshape(array.shape)
    return stored, changed


@pytest.mark.parametrize("name", sorted(DECLARED))
@pytest.mark.parametrize("side", [IN, OUT])
def test_exact_only_where_parameters_of_other_channels_do_not_matter(name, side):
    node, slices, expected = DECLARED[name]
    model = CASES[name].build()
    analysis = analyse(load_model(model))
    status = _side_status(analysis, node, side)
    assert status == expected[side]
    before = _computed_weight(model, node, {})
    channels = before.shape[WEIGHT_AXIS[side]]
    stored, changed = _perturbed(slices[side], model, channels, seed=3)
    after = _computed_weight(model, node, stored)
    others = np.setdiff1d(np.arange(channels), changed)
    moved = np.abs(
        np.take(after, others, WEIGHT_AXIS[side]) - np.take(before, others, WEIGHT_AXIS[side])
    )
    independent = float(moved.max()) <= 1e-5 * float(np.abs(before).max())
    assert independent == (status == "prunable"), (status, float(moved.max()))
    # the changed channels' own weights did change: the declared slices are the real parameters
    assert not np.allclose(
        np.take(after, changed, WEIGHT_AXIS[side]), np.take(before, changed, WEIGHT_AXIS[side])
    )


def test_unfollowable_weight_computation_pins_with_a_reason():
    analysis = analyse(load_model(CASES["gathered_weight_runtime"].build()))
    for side in (IN, OUT):
        assert _side_status(analysis, "wconv_0", side) == "unprunable"
    reasons = [r for g in analysis.groups for r in g.reasons]
    assert any("Gather 'gather_0'" in r and "cannot follow" in r for r in reasons), reasons


def test_weight_from_the_input_stays_pinned():
    analysis = analyse(load_model(CASES["condconv_runtime"].build()))
    (conv0,) = [g for g in analysis.groups if g.producers[0].node == "conv_0"]
    assert conv0.status == "unprunable"
    assert "weight computed at run time" in conv0.reasons[0]
    assert not analysis.loaded.computed_weights  # depends on the input: nothing folded


def test_approximate_group_reason_names_the_normalisation():
    analysis = analyse(load_model(CASES["ws_scaled_std_conv_bn"].build()))
    (group,) = [g for g in analysis.groups if g.status == "approximate"]
    assert "BatchNormalization" in group.reasons[0] and "input channels" in group.reasons[0]
    assert any("computed at run time" in note for note in analysis.loaded.notes)
