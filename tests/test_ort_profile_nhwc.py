"""ORT profiles of NHWC (TensorFlow-converted) networks map to ONNX nodes.

ORT's transpose optimiser moves each activation across the Transposes around the Convs and names
its new output after the node; the NCHWc transformer then names the fused Conv+activation kernel
after that tensor (``<activation node>_nchwc``). Before, such names counted as runtime-internal
nodes and scaled with all activation elements instead of the Conv's entry: two thirds of an NHWC
ResNet-50's conv time, and pruned variants were estimated 22 % too slow (issue 12.3).
"""

from __future__ import annotations

import onnx
import pytest
from models import GraphBuilder
from onnx import helper
from onnx_compat import make_model

from benchmarks.layouts import to_nhwc
from onnx_netadapt import load_model
from onnx_netadapt.measure.calibration import (
    INTERNAL,
    UNPLACED,
    calibrate_profiled,
    estimate_parts,
    estimate_profiled,
    scale_kernel_unit,
)
from onnx_netadapt.measure.registry import get_runner
from onnx_netadapt.measure.signature import model_signatures
from onnx_netadapt.measure.stats import MeasureSettings
from onnx_netadapt_runners.ort import _map_profile

FAST = MeasureSettings(warmup=1, min_runs=3, max_runs=10, max_seconds=0.2)


def _nhwc_model() -> onnx.ModelProto:
    """A residual block of Transpose-wrapped Convs with Relus in NHWC, then a Dense head."""
    b = GraphBuilder("nhwc_block")
    x = b.input("input", [1, 16, 16, 16])
    y = b.relu(b.conv(x, 16, 32, 1))
    y = b.relu(b.conv(y, 32, 32))
    y = b.relu(b.op("Add", [b.conv(y, 32, 32, 1), b.conv(x, 16, 32, 1)]))
    b.output(b.head(y, 32), [1, 10])
    return to_nhwc(b.build())


def test_fused_kernels_named_after_moved_activations_map_to_them():
    """A fake ORT trace: the kernel named ``<Relu node>_nchwc`` (no tensor of that name in the
    original graph) is the Relu, not a runtime-internal node."""
    g = GraphBuilder("fake")
    x = g.input("x", [1, 8, 8, 16])
    t = g.op("Transpose", [x], hint="to_nchw", perm=[0, 3, 1, 2])
    c = g.conv(t, 16, 16, 1)
    r = g.relu(g.op("Transpose", [c], hint="to_nhwc", perm=[0, 2, 3, 1]))
    g.output(r, [1, 8, 8, 16])
    original = g.build()
    relu = original.graph.node[-1].name
    fused = helper.make_node("Conv", ["a", "w"], ["reorder_token_0"], name=f"{relu}_nchwc")
    reorder = helper.make_node("ReorderOutput", ["reorder_token_0"], ["y"], name="ReorderOutput")
    optimized = make_model(
        helper.make_graph([fused, reorder], "opt", [], []), [helper.make_opsetid("", 17)]
    )
    events = [
        {"cat": "Node", "name": f"{relu}_nchwc_kernel_time", "dur": 2000},
        {"cat": "Node", "name": "ReorderOutput_kernel_time", "dur": 500},
    ]
    times = _map_profile(events, optimized, original, runs=1)
    assert times == {relu: 2.0, "ReorderOutput": 0.5}


def test_ort_profile_of_an_nhwc_network_places_every_conv():
    loaded = load_model(_nhwc_model())
    names = {n.name for n in loaded.model.graph.node}
    signatures = model_signatures(loaded)
    with get_runner("ort")(threads=1, settings=FAST) as runner:
        profile = runner.profile_layers(loaded.model, runs=3)
    internal = {name for name in profile if name not in names}
    assert all(name.startswith("Reorder") for name in internal), internal  # layout reorders
    layer_ms = {name: 1.0 for name in signatures}
    cal = calibrate_profiled(loaded.model, loaded.shapes, layer_ms, profile, sum(profile.values()))
    assert not cal.unplaced
    assert sorted(f for u in cal.units for f in u.filters) == sorted(signatures)


def test_estimate_parts_add_up_to_the_estimate():
    loaded = load_model(_nhwc_model())
    signatures = model_signatures(loaded)
    names = [n.name for n in loaded.model.graph.node]
    profile = {name: 0.1 for name in signatures} | {names[-1]: 0.05, "ReorderInput": 0.02}
    layer_ms = {name: 1.0 for name in signatures}
    cal = calibrate_profiled(loaded.model, loaded.shapes, layer_ms, profile, 1.0)
    halved = {name: 0.5 for name in signatures}
    parts = estimate_parts(cal, loaded.model, loaded.shapes, halved)
    assert parts[INTERNAL] == pytest.approx(0.02) and parts[UNPLACED] == 0.0
    assert all(parts[name] == pytest.approx(0.05) for name in signatures)
    total = estimate_profiled(cal, loaded.model, loaded.shapes, halved)
    assert total == pytest.approx(cal.overhead_ms + sum(parts.values()))


def test_a_units_cold_excess_shrinks_faster_than_its_kernel():
    """In a network a large unit runs slower than its in-context kernel (its data is cold);
    after pruning that excess all but goes (MobileNetV2's Gemm: 0.106 in the network, 0.053 in
    context; pruned 0.017 and 0.016). The kernel part scales with the entry's change, the excess
    with its square; with kernel entries only, and never for a unit that grows."""
    assert scale_kernel_unit(0.106, 0.053, 0.3) == pytest.approx(0.053 * 0.3 + 0.053 * 0.09)
    assert scale_kernel_unit(0.106, 0.053, 0.3, power=1.0) == pytest.approx(0.106 * 0.3)
    assert scale_kernel_unit(0.04, 0.05, 0.5) == pytest.approx(0.02)  # no excess: linear
    assert scale_kernel_unit(0.106, 0.053, 1.5) == pytest.approx(0.106 * 1.5)
    # the excess following the network's footprint (0.3) rather than the unit's entry (0.76)
    stem = scale_kernel_unit(0.186, 0.125, 0.76, footprint=0.3)
    assert stem == pytest.approx(0.125 * 0.76 + 0.061 * 0.76 * 0.3)
    loaded = load_model(_nhwc_model())
    signatures = model_signatures(loaded)
    profile = {name: 0.2 for name in signatures}
    cal = calibrate_profiled(
        loaded.model, loaded.shapes, dict.fromkeys(signatures, 0.1), profile, 1.0
    )
    halved = dict.fromkeys(signatures, 0.05)
    linear = estimate_parts(cal, loaded.model, loaded.shapes, halved)  # micro-model entries
    assert all(linear[name] == pytest.approx(0.1) for name in signatures)
    cal.kernels = True
    cold = estimate_parts(cal, loaded.model, loaded.shapes, halved)
    assert all(cold[name] == pytest.approx(0.05 + 0.1 * 0.25) for name in signatures)


def test_kernels_ort_fused_and_named_after_a_node_map_to_it():
    """ORT names a fused kernel after the node it replaced, ``<node>/QuickGeluFusion/``
    (EfficientNet-B0's SiLU, x * Sigmoid(x), 49 kernels); before, these counted as runtime-
    internal nodes (0.9 ms of its 1.14 ms of "internal" time). A reorder stays internal."""
    g = GraphBuilder("silu")
    x = g.input("x", [1, 8, 4, 4])
    y = g.op("Mul", [x, g.op("Sigmoid", [x])])
    g.output(y, [1, 8, 4, 4])
    original = g.build()
    mul = original.graph.node[-1].name
    fused = helper.make_node("QuickGelu", ["x"], ["t_nchwc"], name=f"{mul}/QuickGeluFusion/")
    optimized = make_model(helper.make_graph([fused], "opt", [], []), [helper.make_opsetid("", 17)])
    events = [
        {"cat": "Node", "name": f"{mul}/QuickGeluFusion/_kernel_time", "dur": 3000},
        {"cat": "Node", "name": "ReorderInput_token_7_kernel_time", "dur": 1000},
    ]
    assert _map_profile(events, optimized, original, runs=1) == {
        mul: 3.0,
        "ReorderInput_token_7": 1.0,
    }


def test_a_layout_reorder_is_internal_even_when_it_writes_a_layers_output():
    """ORT's ReorderOutput writes the original output tensor of the Conv before it; its time
    is the runtime's layout conversion, not the Conv's kernel (which a kernel entry measures),
    so it stays runtime-internal under its own name."""
    g = GraphBuilder("reorder")
    x = g.input("x", [1, 16, 8, 8])
    y = g.conv(x, 16, 16, 1)
    g.output(y, [1, 16, 8, 8])
    original = g.build()
    conv = original.graph.node[0]
    kernel = f"{conv.output[0]}_nchwc"  # ORT names the NCHWc kernel after its output tensor
    fused = helper.make_node("Conv", ["x", "w"], [kernel], name=kernel)
    reorder = helper.make_node("ReorderOutput", [kernel], [conv.output[0]], name="Reorder_3")
    optimized = make_model(
        helper.make_graph([fused, reorder], "opt", [], []), [helper.make_opsetid("", 17)]
    )
    events = [
        {"cat": "Node", "name": f"{kernel}_kernel_time", "dur": 2000},
        {"cat": "Node", "name": "Reorder_3_kernel_time", "dur": 500},
    ]
    assert _map_profile(events, optimized, original, runs=1) == {conv.name: 2.0, "Reorder_3": 0.5}
