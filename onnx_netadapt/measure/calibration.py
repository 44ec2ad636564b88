"""In-network calibration: the per-node times of one measured network, carried to pruned ones.

A runner that profiles inside a network (``runner.profile_layers``) gives each node's time. The
profiled names are grouped into units (a unit is what the runtime ran as one kernel: a Conv with
the Relu or Add fused into it). A pruned network keeps its node names, so each unit carries
over by name and scales with what pruning changed in it:

- a unit holding filter layers scales with their table entries (net of the micro-model's own
  overhead): ``ms * sum(net(T_after)) / sum(net(T_before))``; with in-context kernel entries
  the unit's excess over them (cold data inside the network) scales faster than that ratio
  (``scale_kernel_unit``);
- a unit of other nodes (Add, pooling, unfused activations, Concat, Mul...) scales with the
  activation elements those nodes read and write;
- runtime-internal nodes (layout reorders, no ONNX name) scale with all activation elements;
- of the last two, each profiled node keeps its fixed cost (``event_ms``, ``EVENT_COST``: what
  the profiler reports for a node that computes nothing, ``event_cost.py``);
- the rest (``measured - sum of profiled``: the run call's cost, less the profiler's own cost
  per node) stays constant. Measured, it takes the noise of two sets of sessions (the profiled
  and the timed ones), which a small pruning's estimate carries at up to 1/ratio times its
  size; so by default it is predicted from the runtime's costs per node and per run
  (``event_cost.py``, ``ProfileCalibration.model_overhead_ms``), and what the measurement
  differs from the prediction by scales the profiled times instead.

Filter layers that no unit holds add the change of their table entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import onnx

from onnx_netadapt.graph.ops import consumers_of

# A table entry minus the micro-model overhead never counts for less than this share of it.
MIN_NET_SHARE = 0.2
# ``estimate_parts``' names of the runtime-internal nodes and of the unplaced filter layers.
INTERNAL, UNPLACED = "(internal)", "(unplaced)"
# A filter unit's in-network excess over its kernel entry scales with the entry's change to this
# power (``scale_kernel_unit``).
EXCESS_POWER = 2.0
# Whether that excess follows the whole network's activation footprint beyond the first power:
# off, as side by side it did no better than the unit's own change (``footprint_ort.md`` in
# benchmarks/results/latency_fidelity/layouts/).
EXCESS_FOOTPRINT = False
# How far a filter layer's output is followed to the node whose kernel it was fused into.
MAX_FUSION_DEPTH = 4
# The excess is the cost of weights the caches do not hold between runs: it scales with the
# unit's entry and with the network's cold share of weights (``cold_share``) for a cache of this
# many bytes; the power rule above applies where the calibration network's weights all fit it
# (0: always). On this project's first 2-core AMD EPYC slice (32 MiB L3 shared with other work
# and with the activations) 8 MiB did best side by side in four quiet runs (``fold_run1-4`` in
# ``benchmarks/results/latency_fidelity/layouts/``; the rule met the goal of issue 12.3 in 13 of
# 16 case-runs of its four cases, the power rule in 9). 4 MiB since session 22: on the second
# host it was chosen on three recorded runs (``record_replay.md`` in ``.../noisy_host/``: mean
# error 1.8 % against 2.0, all 21 case-runs met either way) and scored on three that came after
# it was chosen (``record456_replay.md``: 2.0 % against 2.3, 21 of 21 either way). It changes
# a pruning only where its weights still pass the cache and the floor below does not hold: it
# raised the ResNets' keep 0.3 and 0.5, which 8 MiB put 3-7 % low, by up to 2.3 points, and the
# other cases' larger variants by 0.2-0.4 on average.
EXCESS_CACHE_BYTES = 4 << 20
# Whether the power rule is the weight rule's floor: the excess shrinks no faster than the power
# rule says, however far the weights shrink below the cache (only its weight part follows the
# cache; what else is cold goes as before). In ``fold_run6`` the pruned MobileNetV2s, whose
# weights fit 8 MiB, kept excess the weight rule took away (-6 to -11 % in all three forms,
# the power rule on the same calibration -1 to +1 %). With the floor the rule is the power rule
# on the MobileNets and the weight rule on the ResNets; over the paired runs fold_run4, 6, 7, 8
# it met the goal in 13 of 16 case-runs of the four cases (power rule 11, weights 8).
EXCESS_FLOOR = True
# Whether each profiled node of the units without filter layers, and each runtime-internal node,
# keeps a fixed cost that pruning does not shrink (``ProfileCalibration.event_ms``). While ORT's
# layout reorders counted in the filter units they follow, it estimated EfficientNet-B0's keep
# 0.3 11 points slower (``event_run1``, ``model_run1-2`` in
# benchmarks/results/latency_fidelity/layouts/); with them apart (runtime-internal), the filter
# units match their profile and it is closer (``reorder_run1-6``: EfficientNet-B0 mean error
# 4.4-5.8 % against 6.9-9.5 % without it; the goal met in 32 of 42 case-runs against 29).
EVENT_COST = True
# Whether a filter unit's excess (its in-network time over its in-context kernel time) is read
# off kernel entries profiled in the same rounds as the network (``Unit.kernel_ms``,
# ``pair_kernel_times``) rather than off the table's entries, measured at another moment: on a
# host whose speed moves, the two moments' difference became the excess (MobileNetV2: the
# calibration's entries summed to 10.0 ms against its profile's 8.8 in one run, 10.0 against
# 10.8 in the next, and keep 0.3 was estimated at 0.209 and 0.172 of the original).
EXCESS_BY_TURNS = True
# How a filter unit's in-context share of its in-network time is read off the rounds that
# profiled both (``kernel_share``): "median", the median of the rounds' shares; "fastest", its
# fastest in-context time over its fastest in-network time (noise only adds time, so each
# minimum is that timing's quietest moment, whichever round it fell in).
EXCESS_SHARE = "median"
EXCESS_SHARES = ("median", "fastest")
# Whether the constant overhead is predicted from the runtime's costs per node and per run
# (``ProfileCalibration.model_overhead_ms``) rather than kept as measured.
MODEL_OVERHEAD = True


def net_ms(entry_ms: float, session_ms: float) -> float:
    """A table entry without the micro-model's own overhead (session call, layout reorders)."""
    return max(entry_ms - session_ms, MIN_NET_SHARE * entry_ms)


def scale_kernel_unit(
    in_network_ms: float,
    kernel_ms: float,
    ratio: float,
    power: float = EXCESS_POWER,
    footprint: float | None = None,
    cold: float | None = None,
    floor: bool = EXCESS_FLOOR,
) -> float:
    """A filter unit's in-network time after its in-context kernel time changed by ``ratio``.

    The in-network time is the kernel's in-context time plus an excess: data the kernel finds
    cold inside a network (its weights and activations, pushed out of the caches by the other
    layers). Pruning shrinks the excess faster than the kernel: less data, and more of it
    stays cached. On a quiet machine the excess of MobileNetV2's units (stem conv 0.164 ms in
    the network against 0.121 in context, classifier Gemm 0.106 against 0.053) had all but gone
    at keep 0.3 and 0.5 (``benchmarks/results/latency_fidelity/layouts/excess_mbv2.md``), so
    the kernel part scales with ``ratio`` and the excess with ``ratio * other ** (power - 1)``,
    where ``other`` is ``footprint`` (the network's activation elements after / before: the
    rest of the network shrinking keeps this unit's data cached too; the stem conv, whose own
    entry falls only to 0.76, lost all its excess when the rest was cut to 0.3) or, without it,
    ``ratio`` again. A unit that grows (``ratio`` > 1) scales as a whole.

    With ``cold`` (the change of the network's cold share of weights, ``cold_share``), the
    excess is weights fetched from memory: it scales with ``ratio * cold`` instead. On
    ResNet-50 (97 MiB of weights) its layer4 units kept their excess at keep 0.5 (26 MiB),
    where MobileNetV2's (13 MiB) had gone at 4.6 MiB
    (``benchmarks/results/latency_fidelity/layouts/``, ``units_folded_run1``). With ``floor``,
    it scales with no less than the power rule's ``ratio ** power``.
    """
    if ratio >= 1.0 or in_network_ms <= kernel_ms:
        return in_network_ms * ratio
    if cold is not None:
        share = min(1.0, cold)
        if floor:
            share = max(share, ratio ** (power - 1))
        return kernel_ms * ratio + (in_network_ms - kernel_ms) * ratio * share
    other = ratio if footprint is None else min(1.0, footprint)
    return kernel_ms * ratio + (in_network_ms - kernel_ms) * ratio * other ** (power - 1)


def scale_with_fixed(ms: float, ratio: float, fixed_ms: float) -> float:
    """``ms`` whose part above ``fixed_ms`` (at most all of it) changes by ``ratio``.

    >>> scale_with_fixed(0.010, 0.5, 0.002)
    0.006
    """
    fixed = min(max(0.0, fixed_ms), ms)
    return fixed + (ms - fixed) * ratio


def cold_share(weight_bytes: float, cache_bytes: float) -> float:
    """Share of a network's weights that come from memory in each run: a cache of
    ``cache_bytes`` keeps about that many of the ``weight_bytes`` it streams through per run."""
    if weight_bytes <= 0:
        return 0.0
    return max(0.0, 1.0 - cache_bytes / weight_bytes)


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the model's constant tensors (initializers and Constant nodes)."""
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        if node.op_type == "Constant":
            tensors += [a.t for a in node.attribute if a.name == "value"]
    total = 0
    for t in tensors:
        size = onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize if t.data_type else 4
        total += _numel(tuple(t.dims)) * size
    return total


def node_elements(model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, int]:
    """Activation elements each node reads and writes (initializers excluded), by node name."""
    constants = {i.name for i in model.graph.initializer}
    out = {}
    for node in model.graph.node:
        total = 0
        for name in [*node.input, *node.output]:
            if name and name not in constants and name in shapes:
                total += _numel(shapes[name])
        out[node.name] = total
    return out


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


@dataclass
class Unit:
    """One profiled kernel of the calibration network.

    Attributes:
        name: the name the profile gave it (an ONNX node name).
        ms: its time inside the network.
        nodes: the ONNX nodes it ran (itself and filter layers fused into it).
        filters: the filter layers among ``nodes``.
        base: at calibration, the net table time of ``filters`` (ms) when there are any, else
            the activation elements of ``nodes``.
        kernel_ms: the in-context kernel time of ``filters`` at the scale of ``ms``, from
            entries profiled in the same rounds as the network (``pair_kernel_times``; None:
            not measured, ``base`` serves).
        round_ms: its in-network time in each of those rounds (unscaled), and
        round_kernel_ms: its filters' summed in-context kernel time in the same rounds: kept
            so that a benchmark can replay other ways of reading the excess off them.
    """

    name: str
    ms: float
    nodes: list[str]
    filters: list[str]
    base: float
    kernel_ms: float | None = None
    round_ms: list[float] = field(default_factory=list)
    round_kernel_ms: list[float] = field(default_factory=list)


@dataclass
class ProfileCalibration:
    """What ``estimate_profiled`` needs of the calibration network.

    Attributes:
        measured_ms: the network's measured latency.
        overhead_ms: measured minus the sum of every profiled time (kept constant).
        session_ms: per-micro-model overhead taken off every table entry.
        units: profiled kernels that map to ONNX nodes.
        internal_ms: profiled time of runtime-internal nodes (no ONNX name).
        elements: activation elements of the whole network.
        unplaced: filter layers no unit holds, with their table entry (ms).
        kernels: whether the entries are in-context kernel times (``kernels.py``) rather than
            micro-model times.
        excess_power: with ``kernels``, a filter unit's excess over its kernel entry scales with
            the entry's change to this power (``scale_kernel_unit``; 1: the whole unit scales
            with the change).
        excess_footprint: the excess scales with the network's activation footprint instead
            of the entry's change beyond the first power (``scale_kernel_unit``'s
            ``footprint``).
        weights: bytes of the network's weights (``weight_bytes``).
        excess_cache_bytes: the excess is weights the caches do not hold: it scales with the
            entry's change times the change of the network's ``cold_share`` of weights with a
            cache this large (``scale_kernel_unit``'s ``cold``); the power rule where that
            share is 0 at calibration (the weights fit; a record saved before ``weights`` was
            kept has 0 weights) or with 0 bytes.
        excess_floor: with the weight rule, the excess shrinks no faster than the power rule
            says (``scale_kernel_unit``'s ``floor``).
        event_ms: what the profile reports for a node that does almost nothing
            (``event_cost.NodeCosts.profiled_ms``; 0: not measured).
        event_cost: a unit without filter layers keeps ``event_ms`` of its time when pruned,
            the runtime-internal nodes ``internal_events`` times as much; the rest scales
            (off: all of it scales).
        internal_events: how many runtime-internal nodes the profile named.
        model_overhead_ms: the constant overhead predicted from the runtime's costs per node
            and per run (``event_cost.model_overhead_ms``): the estimate is this plus the
            parts scaled by (measured - it) / (measured - overhead_ms), so the calibration
            network is still estimated at its measured time (None: the measured overhead).
        excess_by_turns: with ``kernels``, a filter unit's excess is its time over its
            ``kernel_ms`` where measured, rather than over ``base`` (``EXCESS_BY_TURNS``).
        excess_share: how ``kernel_ms`` is read off a unit's rounds (``kernel_share``): a
            unit that kept them is read again by this when estimating (a record saved before
            they were kept has its ``kernel_ms`` by the median).
    """

    measured_ms: float
    overhead_ms: float
    session_ms: float
    units: list[Unit]
    internal_ms: float
    elements: int
    unplaced: dict[str, float] = field(default_factory=dict)
    kernels: bool = False
    excess_power: float = EXCESS_POWER
    excess_footprint: bool = EXCESS_FOOTPRINT
    weights: int = 0
    excess_cache_bytes: float = EXCESS_CACHE_BYTES
    excess_floor: bool = EXCESS_FLOOR
    event_ms: float = 0.0
    event_cost: bool = EVENT_COST
    internal_events: int = 0
    model_overhead_ms: float | None = None
    excess_by_turns: bool = EXCESS_BY_TURNS
    excess_share: str = EXCESS_SHARE

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ProfileCalibration:
        """Inverse of ``to_dict``."""
        units = [Unit(**u) for u in data["units"]]
        return cls(**{**data, "units": units})


def place_filters(
    model: onnx.ModelProto, profiled: set[str], filters: set[str]
) -> dict[str, str | None]:
    """The profiled node each filter layer's time is reported under (None: not found).

    A filter layer that is profiled is its own unit. One that is not was fused into a later
    kernel (e.g. a projection Conv into the residual Add after it): follow its output through
    single-consumer nodes to the first profiled one.
    """
    consumers = consumers_of(model.graph)
    by_name = {n.name: n for n in model.graph.node}
    out: dict[str, str | None] = {}
    for name in filters:
        node, found = by_name[name], None
        for _ in range(MAX_FUSION_DEPTH + 1):
            if node.name in profiled:
                found = node.name
                break
            users = consumers.get(node.output[0], []) if node.output else []
            if len(users) != 1:
                break
            node = users[0]
        out[name] = found
    return out


def kernel_share(round_ms: Sequence[float], round_kernel_ms: Sequence[float], how: str) -> float:
    """A unit's in-context kernel time over its in-network time, from rounds that profiled both
    (``EXCESS_SHARES``).

    >>> kernel_share([1.0, 1.2, 1.1], [1.0, 0.9, 1.1], "median")  # shares 1.0, 0.75, 1.0
    1.0
    >>> round(kernel_share([1.0, 1.2, 1.1], [1.0, 0.9, 1.1], "fastest"), 9)  # 0.9 / 1.0
    0.9
    """
    if how == "fastest":
        return min(round_kernel_ms) / min(round_ms)
    if how == "median":
        return float(np.median([k / n for n, k in zip(round_ms, round_kernel_ms, strict=True)]))
    raise ValueError(f"unknown excess share {how!r}; known: {', '.join(EXCESS_SHARES)}")


def pair_kernel_times(
    units: list[Unit],
    node_rounds: Sequence[Mapping[str, float]],
    kernel_rounds: Sequence[Mapping[str, float]],
) -> None:
    """Set each filter unit's ``kernel_ms``: its ``ms`` times the median, over rounds, of its
    filters' in-context kernel time over its in-network time in the same round, and keep the
    rounds (``Unit.round_ms``), from which ``estimate_parts`` reads the share by the record's
    ``excess_share``.

    Args:
        units: the calibration's units (``ms`` from the median of ``node_rounds``, scaled).
        node_rounds: the network's profile in each round, by profiled name.
        kernel_rounds: each filter layer's in-context kernel time in the same round, by node
            name (``Entries.kernel_round``).

    >>> unit = Unit("conv", 2.0, ["conv"], ["conv"], 1.0)
    >>> pair_kernel_times([unit], [{"conv": 1.0}, {"conv": 2.0}], [{"conv": 0.5}, {"conv": 1.6}])
    >>> round(unit.kernel_ms, 9)  # shares 0.5 and 0.8: median 0.65 of 2.0 ms
    1.3
    """
    for unit in units:
        if not unit.filters:
            continue
        pairs = [
            (nodes[unit.name], sum(kernels[f] for f in unit.filters))
            for nodes, kernels in zip(node_rounds, kernel_rounds, strict=True)
            if nodes.get(unit.name, 0.0) > 0 and all(f in kernels for f in unit.filters)
        ]
        if pairs:
            unit.round_ms = [float(n) for n, _ in pairs]
            unit.round_kernel_ms = [float(k) for _, k in pairs]
            unit.kernel_ms = unit.ms * kernel_share(unit.round_ms, unit.round_kernel_ms, "median")


def calibrate_profiled(
    model: onnx.ModelProto,
    shapes: Mapping[str, tuple[int, ...]],
    layer_ms: Mapping[str, float],
    profile: Mapping[str, float],
    measured_ms: float,
    session_ms: float = 0.0,
    event_ms: float = 0.0,
) -> ProfileCalibration:
    """Calibration of ``model`` from its in-network profile.

    Args:
        model: the measured network.
        shapes: static shapes of its tensors.
        layer_ms: table entry (ms) of each filter layer, by node name.
        profile: in-network time (ms) per profiled name (``runner.profile_layers``).
        measured_ms: the network's measured latency.
        session_ms: per-micro-model overhead in the table entries (0: none).
        event_ms: what the profile reports for a node that does almost nothing (0: not
            measured; ``ProfileCalibration.event_ms``).
    """
    node_names = {n.name for n in model.graph.node}
    elements = node_elements(model, shapes)
    profiled = {name for name in profile if name in node_names}
    placed = place_filters(model, profiled, set(layer_ms))
    members: dict[str, list[str]] = {name: [name] for name in profiled}
    unplaced = {}
    for name, unit in placed.items():
        if unit is None:
            unplaced[name] = float(layer_ms[name])
        elif name != unit:
            members[unit].append(name)
    units = []
    for name in sorted(profiled):
        nodes = members[name]
        filters = [n for n in nodes if n in layer_ms]
        if filters:
            base = sum(net_ms(layer_ms[f], session_ms) for f in filters)
        else:
            base = float(sum(elements.get(n, 0) for n in nodes))
        units.append(Unit(name, float(profile[name]), nodes, filters, base))
    internal_names = [name for name in profile if name not in node_names]
    internal = sum(float(profile[name]) for name in internal_names)
    total = sum(float(ms) for ms in profile.values())
    return ProfileCalibration(
        measured_ms=float(measured_ms),
        overhead_ms=float(measured_ms) - total,
        session_ms=float(session_ms),
        units=units,
        internal_ms=internal,
        elements=sum(elements.values()),
        unplaced=unplaced,
        weights=weight_bytes(model),
        event_ms=max(0.0, float(event_ms)),
        internal_events=len(internal_names),
    )


def estimate_profiled(
    calibration: ProfileCalibration,
    model: onnx.ModelProto,
    shapes: Mapping[str, tuple[int, ...]],
    layer_ms: Mapping[str, float],
) -> float:
    """Estimated latency (ms) of ``model``, a pruning of the calibration network.

    Args:
        calibration: from ``calibrate_profiled`` on the network ``model`` was pruned from.
        model: the pruned network (same node names).
        shapes: its static shapes (``load_model(model, fold=False).shapes``).
        layer_ms: table entry (ms) of each of its filter layers, by node name.
    """
    return with_overhead(
        calibration, sum(estimate_parts(calibration, model, shapes, layer_ms).values())
    )


def with_overhead(calibration: ProfileCalibration, parts_ms: float) -> float:
    """An estimate from the sum of its parts (``estimate_parts``): plus the measured constant
    overhead, or, with ``model_overhead_ms``, plus that, the parts scaled so that the
    calibration network's own parts give its measured time.

    >>> cal = ProfileCalibration(10.0, 1.0, 0.0, [], 0.0, 0, model_overhead_ms=-0.8)
    >>> round(with_overhead(cal, 9.0), 9), round(with_overhead(cal, 4.5), 9)
    (10.0, 4.6)
    """
    model = calibration.model_overhead_ms
    profiled = calibration.measured_ms - calibration.overhead_ms
    if model is None or profiled <= 0 or model >= calibration.measured_ms:
        return calibration.overhead_ms + parts_ms
    return model + parts_ms * (calibration.measured_ms - model) / profiled


def _cold_change(calibration: ProfileCalibration, model: onnx.ModelProto) -> float | None:
    """The change of the cold share of weights from the calibration network to ``model``, or
    None where the weight rule is off or the calibration network's weights all stay cached."""
    if calibration.excess_cache_bytes <= 0:
        return None
    before = cold_share(calibration.weights, calibration.excess_cache_bytes)
    if before <= 0:
        return None
    return cold_share(weight_bytes(model), calibration.excess_cache_bytes) / before


def estimate_parts(
    calibration: ProfileCalibration,
    model: onnx.ModelProto,
    shapes: Mapping[str, tuple[int, ...]],
    layer_ms: Mapping[str, float],
) -> dict[str, float]:
    """``estimate_profiled`` without the constant overhead, by part: each unit's estimated
    time under its profiled name, runtime-internal nodes under ``INTERNAL`` and the change of
    the unplaced filter layers under ``UNPLACED`` (to compare with a profile of ``model``)."""
    elements = node_elements(model, shapes)
    # the network's activation elements after / before (None: the calibration counted none)
    footprint = sum(elements.values()) / calibration.elements if calibration.elements else None
    cold = _cold_change(calibration, model)
    session = calibration.session_ms
    fixed_ms = calibration.event_ms if calibration.event_cost else 0.0
    parts = {}
    for unit in calibration.units:
        if unit.filters and all(f in layer_ms for f in unit.filters):
            now = sum(net_ms(layer_ms[f], session) for f in unit.filters)
        elif not unit.filters and all(n in elements for n in unit.nodes):
            now = float(sum(elements[n] for n in unit.nodes))
        else:  # the unit's nodes are not all in ``model``: keep its time
            now = unit.base
        ratio = now / unit.base if unit.base > 0 else 1.0
        if calibration.kernels and unit.filters:
            kernel = unit.base
            if calibration.excess_by_turns and unit.round_ms:  # timed in the same rounds
                kernel = unit.ms * kernel_share(
                    unit.round_ms, unit.round_kernel_ms, calibration.excess_share
                )
            elif calibration.excess_by_turns and unit.kernel_ms is not None:
                kernel = unit.kernel_ms
            parts[unit.name] = scale_kernel_unit(
                unit.ms,
                kernel,
                ratio,
                calibration.excess_power,
                footprint if calibration.excess_footprint else None,
                cold,
                calibration.excess_floor,
            )
        elif unit.filters:
            parts[unit.name] = unit.ms * ratio
        else:
            parts[unit.name] = scale_with_fixed(unit.ms, ratio, fixed_ms)
    parts[INTERNAL] = scale_with_fixed(
        calibration.internal_ms,
        1.0 if footprint is None else footprint,
        fixed_ms * calibration.internal_events,
    )
    parts[UNPLACED] = sum(
        layer_ms.get(name, before) - before for name, before in calibration.unplaced.items()
    )
    return parts
