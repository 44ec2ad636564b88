"""Channel analysis: find the groups of coupled channels of a model, prunable or why not.

>>> from onnx_netadapt import load_model, analyse
>>> analysis = analyse(load_model("resnet18.onnx"))        # doctest: +SKIP
>>> [g.id for g in analysis.groups if g.prunable][:3]       # doctest: +SKIP
[0, 1, 2]
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import onnx

from onnx_netadapt.channels import rules
from onnx_netadapt.channels.atoms import Resolved
from onnx_netadapt.channels.computed import mark_computed_weights
from onnx_netadapt.channels.context import (
    ATTENTION_UNITS,
    DEFAULT_ATTENTION_UNITS,
    AnalysisState,
    Contraction,
    ProducerSpace,
    RuleContext,
)
from onnx_netadapt.channels.edits import NodeEdit, SliceSpec
from onnx_netadapt.channels.layout import Layout
from onnx_netadapt.channels.rules.attention import attention_products
from onnx_netadapt.graph.load import LoadedModel
from onnx_netadapt.graph.ops import QUANTIZED_OPS, consumers_of

logger = logging.getLogger(__name__)

OUTPUT_REASON = "reaches graph output"
FILTER_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass
class ChannelGroup:
    """Channels that must be removed with the same indices.

    Attributes:
        id: stable index within the analysis.
        classes: class ids in channel order; a keep index ``i`` refers to ``classes[i]``.
        producers: the nodes whose filters create these channels.
        slices: every initializer slice that follows these channels.
        tensors: tensors whose shape changes when these channels are pruned.
        reasons: why the group cannot be pruned (empty when it can), or why it is approximate.
        approximate: pruning changes the statistics of other channels (LayerNorm over channels).
        class_width: channels of the first producer per class (1 except for grouped convs,
            where a class is a whole conv-group, and attention, where it is a whole head).
        attention_heads: the channels reach a product of two computed tensors (q @ k^T,
            attn @ v): a unit is one attention head of q, k, v and the output projection.
        attention_dims: the channels are summed by such a product (q @ k^T) or carried by it
            per head dimension: a unit is the same dimension of every head, of q and k together
            or of v and the output projection's rows (``attention_units="dims"``, or a
            single-head attention).
    """

    id: int
    classes: np.ndarray
    producers: list[ProducerSpace]
    slices: list[SliceSpec] = field(default_factory=list)
    tensors: set[str] = field(default_factory=set)
    reasons: list[str] = field(default_factory=list)
    approximate: bool = False
    pinned: bool = False
    class_width: int = 1
    attention_heads: bool = False
    attention_dims: bool = False

    @property
    def units(self) -> int:
        """Number of independently removable units (keep indices range over these)."""
        return int(self.classes.size)

    @property
    def channels(self) -> int:
        """Output channels of the group's first producer."""
        return int(self.producers[0].atoms.size)

    @property
    def prunable(self) -> bool:
        """Exactly prunable: not pinned, not approximate, more than one unit."""
        return not self.pinned and not self.approximate and self.units > 1

    def prunable_with(self, allow_approximate: bool) -> bool:
        """Prunable, counting approximate groups when ``allow_approximate``."""
        return not self.pinned and self.units > 1 and (allow_approximate or not self.approximate)

    @property
    def consumers(self) -> list[str]:
        """Nodes that read these channels as inputs (their input weights are sliced)."""
        return sorted({s.node for s in self.slices if s.role == "consumer"})

    @property
    def followers(self) -> list[str]:
        """Nodes with per-channel parameters that follow (bias, BatchNorm, depthwise...)."""
        return sorted({s.node for s in self.slices if s.role == "follower"})

    @property
    def status(self) -> str:
        """'prunable', 'approximate' or 'unprunable'."""
        if self.pinned or self.units <= 1:
            return "unprunable"
        return "approximate" if self.approximate else "prunable"

    def to_dict(self) -> dict:
        """JSON-ready description."""
        return {
            "id": self.id,
            "status": self.status,
            "channels": self.channels,
            "units": self.units,
            "class_width": self.class_width,
            "attention_heads": self.attention_heads,
            "attention_dims": self.attention_dims,
            "producers": [p.node for p in self.producers],
            "consumers": self.consumers,
            "followers": self.followers,
            "reasons": self.reasons,
        }


@dataclass
class ChannelAnalysis:
    """The channel groups of a loaded model and what pruning each one changes."""

    loaded: LoadedModel
    groups: list[ChannelGroup]
    layouts: dict[str, Layout]
    edits: list[NodeEdit]
    resolved: Resolved
    unsupported: dict[str, str]
    contractions: list[Contraction] = field(default_factory=list)

    def group(self, group_id: int) -> ChannelGroup:
        """The group with ``group_id``."""
        if not 0 <= group_id < len(self.groups):
            from onnx_netadapt.errors import PruneError

            raise PruneError(
                f"no channel group {group_id}: this model has groups 0..{len(self.groups) - 1} "
                "(see `onnx-netadapt inspect`)"
            )
        return self.groups[group_id]

    def filter_layers(self) -> list[dict]:
        """Per Conv/Gemm/MatMul layer: output channels and how many are in prunable groups."""
        class_group = self._class_group()
        rows = []
        for node in self.loaded.model.graph.node:
            if node.op_type not in FILTER_OPS or not node.output:
                continue
            if node.op_type == "MatMul" and node.input[1] not in self.loaded.initializers:
                continue
            lay = self.layouts.get(node.output[0])
            shape = self.loaded.shapes.get(node.output[0], ())
            if lay is None:
                total = shape[-1 if node.op_type == "MatMul" else 1] if shape else 0
                rows.append(_layer_row(node, total, 0, 0, is_output=False))
                continue
            classes = self.resolved.atom_class[lay.flat_atoms()]
            is_output = any(
                r.startswith(OUTPUT_REASON)
                for c in np.unique(classes).tolist()
                for r in self.resolved.pinned.get(c, [])
            )
            groups = [class_group.get(int(c)) for c in classes.tolist()]
            exact = sum(1 for g in groups if g is not None and g.prunable)
            approx = sum(1 for g in groups if g is not None and g.prunable_with(True))
            rows.append(_layer_row(node, int(classes.size), exact, approx, is_output))
        return rows

    def summary(self) -> dict:
        """Counts of groups and the share of filter-layer output channels that are prunable.

        Layers whose channels are model outputs (the final classifier) are excluded from the
        share, since no method could prune them.
        """
        layers = [r for r in self.filter_layers() if not r["model_output"]]
        total = sum(r["channels"] for r in layers)
        return {
            "groups": len(self.groups),
            "prunable_groups": sum(g.prunable for g in self.groups),
            "approximate_groups": sum(g.status == "approximate" for g in self.groups),
            "unprunable_groups": sum(g.status == "unprunable" for g in self.groups),
            "filter_layers": len(layers),
            "filter_channels": total,
            "prunable_share": (sum(r["prunable"] for r in layers) / total) if total else 0.0,
            "prunable_share_with_approximate": (
                sum(r["prunable_with_approximate"] for r in layers) / total if total else 0.0
            ),
            "unsupported_nodes": len(self.unsupported),
        }

    def to_dict(self) -> dict:
        """JSON-ready description of the whole analysis."""
        return {
            "model": self.loaded.source,
            "opset": self.loaded.opset,
            "normalisation": self.loaded.notes,
            "summary": self.summary(),
            "groups": [g.to_dict() for g in self.groups],
            "unsupported_nodes": self.unsupported,
        }

    def _class_group(self) -> dict[int, ChannelGroup]:
        return {int(c): g for g in self.groups for c in g.classes.tolist()}


def _layer_row(node: onnx.NodeProto, total: int, exact: int, approx: int, is_output: bool) -> dict:
    return {
        "node": node.name,
        "op_type": node.op_type,
        "channels": total,
        "prunable": exact,
        "prunable_with_approximate": approx,
        "model_output": is_output,
    }


def analyse(loaded: LoadedModel, attention_units: str = DEFAULT_ATTENTION_UNITS) -> ChannelAnalysis:
    """Find the channel groups of ``loaded`` (see ``ChannelAnalysis``).

    Args:
        loaded: a model from ``load_model``.
        attention_units: ``"heads"`` (a multi-head attention loses whole heads) or ``"dims"``
            (it loses the same dimensions of every head: q/k together, v with the output
            projection's rows). A channel belongs to one unit, so a block is pruned one way.

    Returns:
        The analysis; ``analysis.groups`` lists every group with its status and reasons.
    """
    model = loaded.model
    constants = {i.name: i for i in model.graph.initializer}
    consumers = consumers_of(model.graph)
    producer_of: dict[str, onnx.NodeProto] = {}
    for node in model.graph.node:
        for name in node.output:
            producer_of[name] = node
    if attention_units not in ATTENTION_UNITS:
        raise ValueError(
            f"attention_units must be one of {ATTENTION_UNITS}, got {attention_units!r}"
        )
    state = AnalysisState(model, loaded.shapes, constants, consumers, producer_of)
    state.attention_units = attention_units
    outer_refs = _subgraph_outer_references(model)
    _apply_rules(state, loaded.opset)
    mark_computed_weights(state, loaded.computed_weights)
    for name, owner in outer_refs.items():
        if (lay := state.layouts.get(name)) is not None:
            state.table.pin(lay.atoms, f"used inside the subgraph of {owner}")
    for out in model.graph.output:
        if (lay := state.layouts.get(out.name)) is not None:
            state.table.pin(lay.atoms, f"{OUTPUT_REASON} {out.name!r}")
    resolved = state.table.resolve()
    groups = _build_groups(state, resolved)
    products = attention_products(state)
    for group in groups:
        group.attention_heads = bool(group.tensors & products)
    per_dim = {int(c) for atoms in state.head_dims for c in resolved.atom_class[atoms].tolist()}
    for group in groups:
        group.attention_dims = bool(per_dim.intersection(group.classes.tolist()))
    return ChannelAnalysis(
        loaded,
        groups,
        state.layouts,
        state.edits,
        resolved,
        state.unsupported,
        state.contractions,
    )


def _apply_rules(state: AnalysisState, opset: int) -> None:
    """Run every node's channel rule in graph order; a node without one (or without static
    shapes) pins its inputs, and the reason is kept in ``state.unsupported``."""
    for node in state.model.graph.node:
        ctx = RuleContext(node, state, opset)
        fn = rules.get_rule(node.op_type) if node.domain in ("", "ai.onnx") else None
        if fn is None:
            reason = _unsupported_reason(node)
            state.unsupported[node.name] = reason
            ctx.pin_inputs(reason)
            continue
        try:
            fn(ctx)
        except KeyError as exc:  # a tensor without a static shape
            reason = f"{ctx.describe()}: shape of {exc} unknown"
            state.unsupported[node.name] = reason
            ctx.pin_inputs(reason)


def _unsupported_reason(node: onnx.NodeProto) -> str:
    """Why a node has no channel rule, phrased for the user."""
    label = f"{node.op_type} {node.name!r}"
    if node.op_type in QUANTIZED_OPS:
        return f"{label} is a quantized operator: prune the float model, then quantize it"
    if node.domain not in ("", "ai.onnx"):
        return f"{label} is from operator domain {node.domain!r}, which has no channel rule"
    return f"{label} has no channel rule (unknown how it uses channels)"


def _subgraph_outer_references(model: onnx.ModelProto) -> dict[str, str]:
    """Tensors of the main graph used implicitly inside If/Loop/Scan bodies."""
    refs: dict[str, str] = {}
    for node in model.graph.node:
        for a in node.attribute:
            graphs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
            for g in graphs:
                for sub in g.node:
                    for name in sub.input:
                        refs.setdefault(name, f"{node.op_type} {node.name!r}")
    return refs


def _build_groups(state: AnalysisState, resolved: Resolved) -> list[ChannelGroup]:
    """Group producer spaces that share classes; attach slices, tensors and reasons."""
    atom_class = resolved.atom_class
    producer_classes = [atom_class[p.atoms] for p in state.producers]
    groups: list[ChannelGroup] = []
    class_group: dict[int, int] = {}
    for indices in _sharing_producers(producer_classes):
        spaces = [state.producers[i] for i in indices]
        ordered = np.concatenate([producer_classes[i] for i in indices])
        _, first = np.unique(ordered, return_index=True)
        classes = ordered[np.sort(first)]
        gid = len(groups)
        group = ChannelGroup(gid, classes, spaces)
        group.class_width = max(
            1, spaces[0].atoms.size // max(1, np.unique(producer_classes[indices[0]]).size)
        )
        for cls in classes.tolist():
            class_group[cls] = gid
        groups.append(group)
    for spec in state.slices:
        for gid in {class_group.get(c) for c in np.unique(atom_class[spec.atoms]).tolist()}:
            if gid is not None:
                groups[gid].slices.append(spec)
    for name, lay in state.layouts.items():
        for gid in {class_group.get(c) for c in np.unique(atom_class[lay.flat_atoms()]).tolist()}:
            if gid is not None:
                groups[gid].tensors.add(name)
    for group in groups:
        _set_reasons(group, resolved)
    return groups


def _sharing_producers(producer_classes: list[np.ndarray]) -> list[list[int]]:
    """Indices of the producer spaces that share classes (transitively), one list per group,
    ordered by their first producer."""
    owner: dict[int, int] = {}  # class -> index of the first producer space holding it
    parent = list(range(len(producer_classes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for index, classes in enumerate(producer_classes):
        for cls in np.unique(classes).tolist():
            if cls in owner:
                a, b = find(owner[cls]), find(index)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[cls] = index
    members: dict[int, list[int]] = defaultdict(list)
    for index in range(len(producer_classes)):
        members[find(index)].append(index)
    return [members[root] for root in sorted(members)]


def _set_reasons(group: ChannelGroup, resolved: Resolved) -> None:
    """Why ``group`` is pinned, or else only approximately prunable (its distinct reasons)."""
    pinned: list[str] = []
    approx: list[str] = []
    for cls in group.classes.tolist():
        for r in resolved.pinned.get(cls, []):
            if r not in pinned:
                pinned.append(r)
        for r in resolved.approximate.get(cls, []):
            if r not in approx:
                approx.append(r)
    group.pinned = bool(pinned)
    group.approximate = bool(approx) and not pinned
    group.reasons = pinned or approx
    if not group.reasons and group.units <= 1:
        group.reasons = ["a single channel (pruning it would remove the layer)"]
