"""Channels of filter weights computed at run time: approximate or pinned, never silently exact.

The loader folds weight computations into plain weights and records, per filter node, whether
the computation normalises over the weight's input or output channels (``graph.weights``).
Pruning channels along such an axis removes stored parameters that the statistics of the other
channels were computed from: those slices make their group approximate. A computation the
loader could not follow pins them.
"""

from __future__ import annotations

from collections.abc import Mapping

from onnx_netadapt.channels.context import AnalysisState
from onnx_netadapt.graph.weights import WeightComputation


def mark_computed_weights(state: AnalysisState, computed: Mapping[str, WeightComputation]) -> None:
    """Mark the atoms sliced along mixed axes of computed weights approximate (or pinned)."""
    if not computed:
        return
    by_node = {
        node.name: (node, computed[node.output[0]])
        for node in state.model.graph.node
        if node.output and node.output[0] in computed
    }
    for spec in state.slices:
        entry = by_node.get(spec.node)
        if entry is None:
            continue
        node, weight = entry
        if spec.tensor != node.input[weight.weight_index]:
            continue
        label = f"{node.op_type} {weight.reason('in')}" if weight.unknown else None
        if label is not None:
            state.table.pin(spec.atoms, label)
            continue
        for role, axis in weight.axes.items():
            if spec.axis == axis and role in weight.mixes:
                state.table.mark_approximate(spec.atoms, f"{node.op_type} {weight.reason(role)}")
