"""Which channels to keep: L2 ranking over a group's producer filters, and grid rounding."""

from __future__ import annotations

import math

import numpy as np
from onnx import numpy_helper

from onnx_netadapt.channels.analysis import ChannelAnalysis, ChannelGroup


def unit_scores(analysis: ChannelAnalysis, group: ChannelGroup) -> np.ndarray:
    """L2 norm of each unit of ``group`` over all its producers' filters (NetAdapt step 2)."""
    atom_class = analysis.resolved.atom_class
    position = {int(c): i for i, c in enumerate(group.classes.tolist())}
    inits = analysis.loaded.initializers
    squares = np.zeros(group.units, dtype=np.float64)
    for space in group.producers:
        weight = numpy_helper.to_array(inits[space.weight]).astype(np.float64)
        moved = np.moveaxis(weight, space.weight_axis, 0).reshape(
            weight.shape[space.weight_axis], -1
        )
        per_filter = np.einsum("ij,ij->i", moved, moved)
        units = np.array([position[int(c)] for c in atom_class[space.atoms].tolist()])
        np.add.at(squares, units, per_filter)
    return np.sqrt(squares)


def units_for_ratio(group: ChannelGroup, ratio: float, round_to: int) -> int:
    """Units to keep for a keep ``ratio``, on a grid of ``round_to`` channels, never zero.

    The grid is in channels; a unit holds ``class_width`` channels (a whole conv-group for
    grouped convs), so the step in units is ``ceil(round_to / class_width)``. A group smaller
    than one step is kept whole.

    >>> from types import SimpleNamespace as S
    >>> units_for_ratio(S(units=64, class_width=1), 0.7, 8)
    48
    """
    step = max(1, math.ceil(round_to / max(1, group.class_width)))
    if group.units <= step:
        return group.units
    wanted = ratio * group.units
    n = math.floor(wanted / step + 0.5) * step
    return int(min(group.units, max(step, n)))


def top_units(scores: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` largest scores, in ascending index order (stable ties)."""
    order = np.argsort(-scores, kind="stable")
    return np.sort(order[:count])


def keep_every_part(
    analysis: ChannelAnalysis, group: ChannelGroup, kept: np.ndarray, scores: np.ndarray
) -> np.ndarray:
    """``kept`` changed so that every tensor of ``group`` keeps a unit: where the top units
    would empty one (a Split's output: q/k or v dimensions of a fused projection), its best
    unit replaces the weakest kept unit that no other tensor needs."""
    position = {int(c): i for i, c in enumerate(group.classes.tolist())}
    atom_class = analysis.resolved.atom_class
    parts = {  # a tensor may also carry other groups' channels (a Concat)
        frozenset(
            position[c] for c in np.unique(atom_class[lay.flat_atoms()]).tolist() if c in position
        )
        for name in group.tensors
        if (lay := analysis.layouts.get(name)) is not None
    }
    parts = {p for p in parts if p and len(p) < group.units}
    chosen = set(kept.tolist())
    for part in sorted(parts, key=min):
        if chosen & part:
            continue
        spare = [u for u in chosen if all(len(chosen & q) > 1 or u not in q for q in parts if q)]
        if spare:
            chosen.discard(min(spare, key=lambda u: scores[u]))
        chosen.add(max(part, key=lambda u: scores[u]))
    return np.array(sorted(chosen), dtype=np.int64)
