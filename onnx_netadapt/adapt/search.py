"""NetAdapt step 1: per channel group, the largest channel count that meets the targets.

Counts lie on a grid (``round_to`` channels). The estimate counts every layer the group
touches (its producers' output channels and its consumers' input channels), read off the
pruned network, so a group feeding an expensive consumer is credited with that saving too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import onnx

from onnx_netadapt.adapt.resources import ResourceSet, pruned_signatures
from onnx_netadapt.channels.analysis import ChannelAnalysis, ChannelGroup
from onnx_netadapt.measure.signature import LayerSignature
from onnx_netadapt.prune.apply import prune


@dataclass
class Candidate:
    """A group cut to ``units`` that meets this iteration's targets (before fine-tuning)."""

    group_id: int
    producers: list[str]
    units_before: int
    units: int
    class_width: int
    estimate: dict[str, float]
    model: onnx.ModelProto = field(repr=False)

    @property
    def channels_before(self) -> int:
        """Channels of the group before the cut."""
        return self.units_before * self.class_width

    @property
    def channels_after(self) -> int:
        """Channels the proposal keeps."""
        return self.units * self.class_width

    def describe(self) -> dict:
        """JSON-ready summary."""
        return {
            "group": self.group_id,
            "producers": self.producers,
            "channels_before": self.channels_before,
            "channels_after": self.channels_after,
            "estimate": self.estimate,
        }


@dataclass
class Skipped:
    """A group with no proposal this iteration, and why."""

    group_id: int
    producers: list[str]
    reason: str

    def describe(self) -> dict:
        """JSON-ready summary."""
        return {"group": self.group_id, "producers": self.producers, "reason": self.reason}


def grid_step(group: ChannelGroup, round_to: int) -> int:
    """Grid step in units (a unit is a whole conv-group for grouped convs)."""
    return max(1, math.ceil(round_to / max(1, group.class_width)))


def candidate_counts(group: ChannelGroup, round_to: int) -> list[int]:
    """Unit counts below the current one on the grid, largest first (never zero)."""
    step = grid_step(group, round_to)
    top = (group.units - 1) // step * step
    return list(range(top, 0, -step))


def meets(estimate: Mapping[str, float], targets: Mapping[str, float]) -> bool:
    """Whether every targeted resource is within its target."""
    return all(estimate[r] <= limit for r, limit in targets.items())


def search_group(
    analysis: ChannelAnalysis,
    group: ChannelGroup,
    signatures: Mapping[str, LayerSignature],
    resources: ResourceSet,
    targets: Mapping[str, float],
    round_to: int,
    allow_approximate: bool,
) -> Candidate | Skipped:
    """The largest count of ``group`` whose pruned network meets ``targets``, or why none."""
    producers = [p.node for p in group.producers]
    counts = candidate_counts(group, round_to)
    if not counts:
        return Skipped(
            group.id, producers, f"{group.channels} channels: already at the grid minimum"
        )

    def estimate(units: int) -> tuple[dict[str, float], onnx.ModelProto]:
        pruned = prune(
            analysis, {group.id: units}, allow_approximate=allow_approximate, check=False
        ).model
        return resources.estimate(pruned, pruned_signatures(signatures, pruned)), pruned

    lowest, lowest_model = estimate(counts[-1])
    if not meets(lowest, targets):
        worst = ", ".join(
            f"{r} {lowest[r]:.4g} > {t:.4g}" for r, t in targets.items() if lowest[r] > t
        )
        width = counts[-1] * group.class_width
        return Skipped(group.id, producers, f"even at {width} channels: {worst}")
    for units in counts[:-1]:
        value, model = estimate(units)
        if meets(value, targets):
            return Candidate(
                group.id, producers, group.units, units, group.class_width, value, model
            )
    return Candidate(
        group.id, producers, group.units, counts[-1], group.class_width, lowest, lowest_model
    )


def search_all(
    analysis: ChannelAnalysis,
    signatures: Mapping[str, LayerSignature],
    resources: ResourceSet,
    targets: Mapping[str, float],
    round_to: int,
    allow_approximate: bool,
) -> tuple[list[Candidate], list[Skipped]]:
    """Proposals for every prunable group, and the groups without one."""
    candidates: list[Candidate] = []
    skipped: list[Skipped] = []
    for group in analysis.groups:
        if not group.prunable_with(allow_approximate):
            continue
        found = search_group(
            analysis, group, signatures, resources, targets, round_to, allow_approximate
        )
        (candidates if isinstance(found, Candidate) else skipped).append(found)
    return candidates, skipped


def minimal_network(
    analysis: ChannelAnalysis, round_to: int, allow_approximate: bool
) -> onnx.ModelProto:
    """Every prunable group cut to its grid minimum: the cheapest network pruning can reach."""
    keep = {
        g.id: grid_step(g, round_to)
        for g in analysis.groups
        if g.prunable_with(allow_approximate) and g.units > grid_step(g, round_to)
    }
    if not keep:
        return analysis.loaded.model
    return prune(analysis, keep, allow_approximate=allow_approximate, check=False).model
