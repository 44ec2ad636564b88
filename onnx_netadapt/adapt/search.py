"""NetAdapt step 1: per channel group, the largest channel count that meets the targets.

Counts lie on a grid (``round_to`` channels). The estimate counts every layer the group
touches (its producers' output channels and its consumers' input channels), read off the
pruned network, so a group feeding an expensive consumer is credited with that saving too.
Each count probed asks the table for new entries (measured on the target), so the search
probes few counts: the lowest, then an interpolating bisection (``largest_meeting``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import onnx

from onnx_netadapt.adapt.resources import ResourceSet
from onnx_netadapt.channels.analysis import ChannelAnalysis, ChannelGroup
from onnx_netadapt.errors import UsageError
from onnx_netadapt.measure.signature import LayerSignature, pruned_signatures
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


def excess(estimate: Mapping[str, float], targets: Mapping[str, float]) -> float:
    """The largest relative overshoot of ``estimate`` over ``targets`` (<= 0 when it meets)."""
    return max((estimate[r] - t) / t if t > 0 else estimate[r] - t for r, t in targets.items())


def largest_meeting(
    counts: list[int], top_units: int, top_excess: float, probe: Callable[[int], float]
) -> int | None:
    """Index into ``counts`` (descending) of the largest count whose ``probe`` (excess) is <= 0.

    Every probe of a new count measures table entries, so probes are few: the lowest count
    first, then the bracket between a failing count (at first ``top_units``, the current
    count, whose excess is ``top_excess``) and a meeting one narrows where the excess,
    interpolated linearly in the count, crosses zero; after two probes in a row that each
    left more than half the bracket, one halves it. This assumes the excess grows with the
    count, which latency does not always do: near the floor a layer can be slower at the
    lowest count than at the next ones (the runtime picks another kernel). So when the
    lowest count fails, the others are scanned from the largest down before giving up.
    Returns None when no count meets.
    """
    good = len(counts) - 1
    good_excess = probe(good)
    if good_excess > 0:
        return next((i for i in range(good) if probe(i) <= 0), None)
    bad, bad_units, bad_excess = -1, top_units, top_excess
    slow = 0  # probes in a row that left more than half the bracket
    while good - bad > 1:
        size = good - bad
        if slow >= 2 or bad_excess <= good_excess:
            index = (bad + good) // 2
        else:
            cross = counts[good] + (bad_units - counts[good]) * -good_excess / (
                bad_excess - good_excess
            )
            index = next(i for i in range(bad + 1, good + 1) if counts[i] <= cross)
            index = min(max(index, bad + 1), good - 1)
        value = probe(index)
        if value <= 0:
            good, good_excess = index, value
        else:
            bad, bad_units, bad_excess = index, counts[index], value
        slow = slow + 1 if good - bad > size // 2 else 0
    return good


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
    probed: dict[int, tuple[dict[str, float], onnx.ModelProto]] = {}

    def probe(index: int) -> float:
        pruned = prune(
            analysis, {group.id: counts[index]}, allow_approximate=allow_approximate, check=False
        ).model
        value = resources.estimate(pruned, pruned_signatures(signatures, pruned))
        probed[index] = (value, pruned)
        return excess(value, targets)

    current = excess(resources.values(), targets)
    found = largest_meeting(counts, group.units, current, probe)
    if found is None:
        lowest = probed[len(counts) - 1][0]
        worst = ", ".join(
            f"{r} {lowest[r]:.4g} > {t:.4g}" for r, t in targets.items() if lowest[r] > t
        )
        width = counts[-1] * group.class_width
        return Skipped(group.id, producers, f"even at {width} channels: {worst}")
    value, model = probed[found]
    return Candidate(
        group.id, producers, group.units, counts[found], group.class_width, value, model
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
    """Every prunable group cut to its grid minimum: the cheapest network pruning can reach.

    Raises UsageError when ``round_to`` is so coarse that no prunable group can shrink.
    """
    prunable = [g for g in analysis.groups if g.prunable_with(allow_approximate)]
    keep = {g.id: grid_step(g, round_to) for g in prunable if g.units > grid_step(g, round_to)}
    if prunable and not keep:
        raise UsageError(
            f"--round-to {round_to} is at least the size of every prunable group (the largest "
            f"has {max(g.channels for g in prunable)} channels): no group can shrink on that "
            "grid; use a smaller --round-to"
        )
    if not keep:
        return analysis.loaded.model
    return prune(analysis, keep, allow_approximate=allow_approximate, check=False).model
