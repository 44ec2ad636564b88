"""The ways to estimate a pruned network from the latency table and one measured network N.

Each way is a ``Strategy``: ``calibrate`` measures or reads what it needs of N and returns a
``Calibration`` record, whose ``estimate`` predicts a pruning of N from its layers' entries
without measuring it. A record says what its estimate needs: ``kernels`` (in-context kernel
entries, ``kernels.py``, instead of the micro-model table entries) and ``needs_shapes`` (the
pruned network's static shapes).

- ``ProfileStrategy`` (runners that profile inside a network, e.g. ``ort``): N's per-node
  times, carried to the pruned network by node name and scaled by the filter layers' entries
  or the other nodes' activation elements, plus N's constant overhead (``calibration.py``;
  predicted from the runtime's costs per node and per run where it times its runs).
- ``SplitStrategy`` (runners that cannot profile, e.g. ``tflite`` on the host): the table
  entries (net of the micro-model overhead) plus N's residual, split over the filter layers
  by their output elements and scaled with them.
- ``ProportionalStrategy``: table entries plus a residual scaled with their sum (ablation).
- ``ConstantStrategy``: table entries plus a constant residual (the first version; exact
  resources such as MACs, whose residual is 0).
- ``AutoStrategy``: ``ProfileStrategy``, falling back to ``SplitStrategy`` where the runner
  cannot profile (``ProfileUnsupported``, remembered) or its profile places too few filter
  layers. Any other error while profiling stops the calibration.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np
import onnx

from onnx_netadapt.errors import NetAdaptError
from onnx_netadapt.graph.load import LoadedModel
from onnx_netadapt.measure.calibration import (
    EVENT_COST,
    EXCESS_BY_TURNS,
    EXCESS_CACHE_BYTES,
    EXCESS_FLOOR,
    EXCESS_FOOTPRINT,
    EXCESS_POWER,
    MODEL_OVERHEAD,
    ProfileCalibration,
    calibrate_profiled,
    estimate_profiled,
    net_ms,
    pair_kernel_times,
)
from onnx_netadapt.measure.event_cost import (
    NodeCosts,
    measure_node_costs,
    median_costs,
    model_overhead_ms,
)
from onnx_netadapt.measure.kernels import KernelRunner, kernel_table
from onnx_netadapt.measure.runner import NetworkProfile, ProfileUnsupported, Runner
from onnx_netadapt.measure.signature import LayerSignature, model_signatures
from onnx_netadapt.measure.table import LatencyTable

logger = logging.getLogger(__name__)

# The smallest layer: its micro-model time is the micro-model overhead (session call etc.).
NULL_SIGNATURE = LayerSignature("Conv", 1, 1, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1))
# A profile is used only when it places at least this share of the filter layers.
MIN_PLACED_SHARE = 0.5
# Profile calibration: whole-network measurements, each followed by a profile. The constant
# overhead (measured minus the profile's sum) moves from one calibration to the next and a
# pruning's estimate with it, by up to 1/ratio times as much; 9 rounds against 3 cut that part
# of the estimate's spread by 1.3-1.8x (``estimate_drift`` ``drift_r3`` / ``drift_r9`` in
# benchmarks/results/latency_fidelity/layouts/; ResNet-50: 18 s more per calibration).
PROFILE_ROUNDS = 9

Shapes = Mapping[str, tuple[int, ...]]
# Whether the profile's times are scaled to the measured latency through the profiled session's
# own run time (``NetworkProfile.run_ms``) rather than through whole-network measurements taken
# in other sessions (``ProfileStrategy(run_share=...)``). Off until quiet runs say it is better.
RUN_SHARE = False


class Profile(NamedTuple):
    """A network's profile over rounds: per-node median times (ms), the median whole-network
    measurement of the rounds, the median run time of the profiled sessions themselves
    (``NetworkProfile.run_ms``; None where the runner does not report it) and the median costs
    of the runtime per node and per run (``event_cost.measure_node_costs``; None where not
    measured), with, where the filter layers' in-context kernels were profiled in the same
    rounds (``ProfileStrategy(excess_by_turns=True)``), each round's profile and kernel times
    by node name."""

    times: dict[str, float]
    measured_ms: float
    run_ms: float | None = None
    costs: NodeCosts | None = None
    node_rounds: tuple[dict[str, float], ...] = ()
    kernel_rounds: tuple[dict[str, float], ...] = ()


def output_elements(sig: LayerSignature) -> int:
    """Elements of a layer's output (its activation traffic)."""
    if sig.op == "Gemm":
        return sig.rows * sig.out_channels
    n = sig.out_channels
    for d in sig.output_hw():
        n *= d
    return n


class Entries:
    """What a strategy reads off one runner: its table entries, in-context kernel entries and
    whole-network measurements (missing entries are measured on the runner)."""

    def __init__(
        self,
        runner: Runner,
        table: LatencyTable,
        evict_bytes: int = 0,
        canary: bool = False,
        reference: bool = True,
    ) -> None:
        self.runner = runner
        self.table = table
        self.evict_bytes = evict_bytes  # > 0: cold kernel entries (``kernels.py``)
        self.canary = canary  # kernel entries scaled to a canary's speed (``kernels.py``)
        # pruned layers' kernel entries by turns with the calibrated network's (``kernels.py``)
        self.reference = reference
        self.references: dict[str, LayerSignature] = {}
        self._kernels: tuple[LatencyTable, KernelRunner] | None = None

    def calibrated_on(self, signatures: Mapping[str, LayerSignature]) -> None:
        """The calibrated network's filter layers, by node name: the references of its
        prunings' kernel entries."""
        self.references = dict(signatures)

    def table_ms(self, signatures: Mapping[str, LayerSignature]) -> dict[str, float]:
        """Table entry (median ms) of each layer, by node name."""
        found = self.table.lookup(list(signatures.values()), self.runner)
        return {name: found[sig].median_ms for name, sig in signatures.items()}

    def _kernel_source(self) -> tuple[LatencyTable, KernelRunner]:
        """The in-context kernel table and the runner that fills it (made on first use)."""
        if self._kernels is None:
            self._kernels = kernel_table(
                self.runner, self.table.path, self.evict_bytes, self.canary, self.reference
            )
        return self._kernels

    def kernel_round(self, signatures: Mapping[str, LayerSignature]) -> dict[str, float]:
        """One in-context kernel profile (ms) of each layer, by node name: not an entry, and
        not stored (``ProfileStrategy.profile`` pairs these with the network's profile)."""
        times = self._kernel_source()[1].profile_round(list(signatures.values()))
        return {name: times[sig] for name, sig in signatures.items()}

    def kernel_ms(
        self,
        signatures: Mapping[str, LayerSignature],
        taken: Sequence[Mapping[str, float]] = (),
    ) -> dict[str, float]:
        """In-context kernel entry (ms) of each layer, by node name; a layer missing from the
        table is timed by turns with the calibrated network's layer of its name, or, where
        ``taken`` (rounds of ``kernel_round``) holds profiles of it, is their median."""
        table, kernels = self._kernel_source()
        references = {
            sig: self.references[name]
            for name, sig in signatures.items()
            if name in self.references and self.references[name].op == sig.op
        }
        profiles: dict[LayerSignature, list[float]] = {}
        for name, sig in signatures.items():  # layers of one signature share their profiles
            if sig not in profiles:
                profiles[sig] = [r[name] for r in taken if name in r]
        stand_in = kernels.paired(references, profiles)
        found = table.lookup(list(signatures.values()), stand_in)  # type: ignore[arg-type]
        return {name: found[sig].median_ms for name, sig in signatures.items()}

    @property
    def kernels_table(self) -> LatencyTable | None:
        """The in-context kernel table, once used."""
        return self._kernels[0] if self._kernels else None

    def session_ms(self) -> float:
        """Micro-model overhead: the table entry of the smallest layer (0 for exact units)."""
        if self.runner.unit != "ms":
            return 0.0
        return self.table.lookup([NULL_SIGNATURE], self.runner)[NULL_SIGNATURE].median_ms

    def measured(self, model: onnx.ModelProto, measured_ms: float | None) -> float:
        """``measured_ms`` when given, else the runner's whole-network median of ``model``."""
        if measured_ms is not None:
            return float(measured_ms)
        return self.runner.measure(model).median_ms


@dataclass(frozen=True)
class Pruning:
    """What an estimate reads of a pruned network.

    Attributes:
        signatures: its filter layers, by node name.
        layer_ms: their entries (ms), by node name (kernel entries when the calibration reads
            ``kernels``, else table entries).
        model, shapes: the network and its static shapes (read when ``needs_shapes``).
    """

    signatures: Mapping[str, LayerSignature]
    layer_ms: Mapping[str, float]
    model: onnx.ModelProto | None = None
    shapes: Shapes | None = None

    def layers_ms(self) -> float:
        """Sum of the filter layers' entries."""
        return sum(self.layer_ms[name] for name in self.signatures)


@dataclass
class Calibration(ABC):
    """One measured network and what a strategy keeps of it.

    Attributes:
        measured_ms: the measured whole-network latency.
        layers_ms: the sum of its layers' entries (the entries this calibration reads).
    """

    mode: ClassVar[str]
    needs_shapes: ClassVar[bool] = False  # its estimate scales nodes by their activation sizes

    measured_ms: float
    layers_ms: float

    @property
    def kernels(self) -> bool:
        """Whether estimates read in-context kernel entries instead of table entries."""
        return False

    @property
    def residual_ms(self) -> float:
        """Measured minus the sum of the layers' entries."""
        return self.measured_ms - self.layers_ms

    @abstractmethod
    def estimate(self, pruning: Pruning) -> float:
        """Estimated latency (ms) of ``pruning``, a pruning of the calibrated network."""


@dataclass
class ConstantCalibration(Calibration):
    """Table entries plus the measured network's residual, kept constant.

    A negative residual (the entries sum to more than the network, as each carries its own
    micro-model's overhead) shrinks with the entries instead, so that no pruning is estimated
    at or below zero.
    """

    mode: ClassVar[str] = "constant"

    def estimate(self, pruning: Pruning) -> float:
        layers = pruning.layers_ms()
        if self.residual_ms >= 0 or self.layers_ms <= 0:
            return layers + self.residual_ms
        return layers * self.measured_ms / self.layers_ms


@dataclass
class ProportionalCalibration(Calibration):
    """Table entries plus the residual scaled with their sum."""

    mode: ClassVar[str] = "proportional"

    def estimate(self, pruning: Pruning) -> float:
        layers = pruning.layers_ms()
        scale = layers / self.layers_ms if self.layers_ms > 0 else 1.0
        return layers + self.residual_ms * scale


@dataclass
class SplitCalibration(Calibration):
    """Entries net of the micro-model overhead plus the residual split over the filter layers.

    Attributes:
        session_ms: micro-model overhead taken off each table entry.
        net_layers_ms: sum of the entries net of ``session_ms``.
        weight: sum of the filter layers' output elements.
    """

    mode: ClassVar[str] = "split"

    session_ms: float = 0.0
    net_layers_ms: float = 0.0
    weight: float = 0.0

    def estimate(self, pruning: Pruning) -> float:
        net = sum(net_ms(pruning.layer_ms[n], self.session_ms) for n in pruning.signatures)
        weight = sum(output_elements(s) for s in pruning.signatures.values())
        scale = weight / self.weight if self.weight > 0 else 1.0
        return net + (self.measured_ms - self.net_layers_ms) * scale


@dataclass
class InNetworkCalibration(Calibration):
    """The measured network's in-network profile (``calibration.py``)."""

    mode: ClassVar[str] = "profile"
    needs_shapes: ClassVar[bool] = True

    profile: ProfileCalibration | None = None

    @property
    def kernels(self) -> bool:
        return self.profile is not None and self.profile.kernels

    def estimate(self, pruning: Pruning) -> float:
        if self.profile is None or pruning.model is None or pruning.shapes is None:
            raise NetAdaptError("a 'profile' estimate needs the calibration profile, model, shapes")
        return estimate_profiled(self.profile, pruning.model, pruning.shapes, pruning.layer_ms)


class Strategy(ABC):
    """One way of estimating: calibrate on a measured network, get a ``Calibration``."""

    mode: ClassVar[str]

    @abstractmethod
    def calibrate(
        self, entries: Entries, loaded: LoadedModel, measured_ms: float | None = None
    ) -> Calibration:
        """Calibrate on ``loaded`` (measured on the runner unless ``measured_ms`` is given)."""


class ConstantStrategy(Strategy):
    """Table entries plus a constant residual."""

    mode = "constant"
    record: ClassVar[type[Calibration]] = ConstantCalibration

    def calibrate(
        self, entries: Entries, loaded: LoadedModel, measured_ms: float | None = None
    ) -> Calibration:
        measured = entries.measured(loaded.model, measured_ms)
        layer_ms = entries.table_ms(model_signatures(loaded))
        return self.record(measured, sum(layer_ms.values()))  # type: ignore[call-arg]


class ProportionalStrategy(ConstantStrategy):
    """Table entries plus a residual scaled with their sum."""

    mode = "proportional"
    record = ProportionalCalibration


class SplitStrategy(Strategy):
    """Entries net of the micro-model overhead plus the residual split over the layers.

    Args:
        session_overhead: take the micro-model overhead (the entry of the smallest layer)
            off every table entry.
    """

    mode = "split"

    def __init__(self, session_overhead: bool = True) -> None:
        self.session_overhead = session_overhead

    def calibrate(
        self, entries: Entries, loaded: LoadedModel, measured_ms: float | None = None
    ) -> SplitCalibration:
        measured = entries.measured(loaded.model, measured_ms)
        signatures = model_signatures(loaded)
        layer_ms = entries.table_ms(signatures)
        session = entries.session_ms() if self.session_overhead else 0.0
        return SplitCalibration(
            measured,
            sum(layer_ms.values()),
            session_ms=session,
            net_layers_ms=sum(net_ms(t, session) for t in layer_ms.values()),
            weight=float(sum(output_elements(s) for s in signatures.values())),
        )


class ProfileStrategy(Strategy):
    """The measured network's in-network profile, carried to its prunings by node name.

    Args:
        kernels: scale filter layers by in-context kernel entries (``kernels.py``) instead
            of the micro-model entries.
        session_overhead: with ``kernels=False``, take the micro-model overhead off every
            table entry.
        rounds: whole-network measurements interleaved with profiles.
        run_share: scale the profile to the measured latency through the profiled session's
            own run time (``NetworkProfile.run_ms``), so the constant overhead (the run's share
            no node covers) is read off the same session as the nodes' times
            (``benchmarks/estimate_drift.py``: taken from a whole-network measurement in
            another session, it swung by over 1 ms on ResNet-50), where the runner reports it.
        excess_power: a unit's in-network excess over its kernel entry scales with the entry's
            change to this power (``calibration.scale_kernel_unit``; 1: linearly).
        excess_footprint: beyond the first power, the excess follows the network's activation
            footprint instead of the entry's change.
        excess_cache_bytes: the excess is weights a cache this large does not hold; it
            follows the entry's change and the network's cold share of weights
            (``calibration.cold_share``) instead of the power rule (0: the power rule only).
        excess_floor: with the weight rule, the excess shrinks no faster than the power rule.
        event_cost: the units without filter layers and the runtime-internal nodes keep a
            profiled node's fixed cost when pruned (``ProfileCalibration.event_ms``).
        model_overhead: predict the constant overhead from the runtime's costs per node and
            per run (``ProfileCalibration.model_overhead_ms``) where the runner times its
            profiled sessions.
        Either measures the runtime's costs in every round (``event_cost.measure_node_costs``).
        excess_by_turns: with ``kernels``, profile the filter layers' in-context kernels in
            every round too, and read a unit's excess off those (``Unit.kernel_ms``).
    """

    mode = "profile"

    def __init__(
        self,
        kernels: bool = True,
        session_overhead: bool = True,
        rounds: int = PROFILE_ROUNDS,
        excess_power: float = EXCESS_POWER,
        excess_footprint: bool = EXCESS_FOOTPRINT,
        run_share: bool = RUN_SHARE,
        excess_cache_bytes: float = EXCESS_CACHE_BYTES,
        excess_floor: bool = EXCESS_FLOOR,
        event_cost: bool = EVENT_COST,
        model_overhead: bool = MODEL_OVERHEAD,
        excess_by_turns: bool = EXCESS_BY_TURNS,
    ) -> None:
        self.kernels = kernels
        self.session_overhead = session_overhead
        self.rounds = max(1, int(rounds))
        self.run_share = run_share
        self.excess_power = excess_power
        self.excess_footprint = excess_footprint
        self.excess_cache_bytes = excess_cache_bytes
        self.excess_floor = excess_floor
        self.event_cost = event_cost
        self.model_overhead = model_overhead
        self.excess_by_turns = excess_by_turns

    def calibrate(
        self, entries: Entries, loaded: LoadedModel, measured_ms: float | None = None
    ) -> InNetworkCalibration:
        message = (
            f"runner {entries.runner.name!r} gives no in-network profile with ONNX node "
            "names: use mode 'split' or 'auto' (onnx-netadapt: --estimator split|auto)"
        )
        try:
            profile = self.profile(entries, loaded.model, self.paired_layers(loaded))
        except ProfileUnsupported as exc:
            raise NetAdaptError(f"{message} ({exc})") from exc
        measured = profile.measured_ms if measured_ms is None else float(measured_ms)
        cal = self.fit(entries, loaded, profile, measured)
        if cal is None:
            raise NetAdaptError(message)
        return cal

    def paired_layers(self, loaded: LoadedModel) -> dict[str, LayerSignature] | None:
        """The filter layers whose kernels ``profile`` times in its rounds (None: none)."""
        return model_signatures(loaded) if self.kernels and self.excess_by_turns else None

    def profile(
        self,
        entries: Entries,
        model: onnx.ModelProto,
        layers: Mapping[str, LayerSignature] | None = None,
    ) -> Profile:
        """Per-node median profile, median whole-network time, (with ``run_share``) median
        run time of the profiled sessions and (with ``event_cost`` or ``model_overhead``)
        median costs of the runtime per node and per run over ``rounds``; with ``layers`` (by
        node name), one in-context kernel profile of each in every round too.

        Raises:
            ProfileUnsupported: the runner cannot profile inside a network (or measures
                something other than time).
        """
        if entries.runner.unit != "ms":
            raise ProfileUnsupported(f"runner {entries.runner.name!r} does not measure time")
        profiles, measured, costs, kernel_rounds = [], [], [], []
        node_names = {node.name for node in model.graph.node}
        for _ in range(self.rounds):
            measured.append(entries.runner.measure(model).median_ms)
            if self.run_share:  # the session's own run time too
                profiles.append(entries.runner.profile_network(model))
            else:
                profiles.append(NetworkProfile(entries.runner.profile_layers(model)))
            # only where the profile names ONNX nodes (else ``fit`` does not use it)
            if node_names & set(profiles[0].layers):
                if self.event_cost or self.model_overhead:
                    costs.append(measure_node_costs(entries.runner))
                if layers:
                    kernel_rounds.append(entries.kernel_round(layers))
        names = set().union(*(p.layers for p in profiles))
        median = {n: float(np.median([p.layers.get(n, 0.0) for p in profiles])) for n in names}
        runs = [p.run_ms for p in profiles]
        run_ms = float(np.median(runs)) if all(r is not None and r > 0 for r in runs) else None
        node_rounds = tuple(dict(p.layers) for p in profiles) if kernel_rounds else ()
        return Profile(
            median,
            float(np.median(measured)),
            run_ms,
            median_costs(costs),
            node_rounds,
            tuple(kernel_rounds),
        )

    def fit(
        self, entries: Entries, loaded: LoadedModel, profile: Profile, measured: float
    ) -> InNetworkCalibration | None:
        """The calibration on ``profile`` rescaled to ``measured``, or None when the profile
        names too few filter layers."""
        signatures = model_signatures(loaded)
        if self.kernels:  # in-context kernel entries only: no micro-model entry is measured
            layer_ms, session = entries.kernel_ms(signatures, profile.kernel_rounds), 0.0
            entries.calibrated_on(signatures)
        else:
            layer_ms = entries.table_ms(signatures)
            session = entries.session_ms() if self.session_overhead else 0.0
        return self.fit_entries(loaded, profile, measured, layer_ms, session)

    def fit_entries(
        self,
        loaded: LoadedModel,
        profile: Profile,
        measured: float,
        layer_ms: Mapping[str, float],
        session: float = 0.0,
    ) -> InNetworkCalibration | None:
        """``fit`` on entries already read: ``layer_ms`` by filter layer's node name (kernel
        entries with ``kernels``), ``session`` the micro-model overhead taken off them."""
        times = profile.times
        if not any(name in layer_ms for name in times):
            return None  # the runtime's own names (TFLite): nothing maps to ONNX nodes
        reference = profile.measured_ms
        if self.run_share and profile.run_ms is not None:
            reference = profile.run_ms  # the nodes' share of their own session's run
        scale = measured / reference if reference > 0 else 1.0
        times = {name: ms * scale for name, ms in times.items()}
        costs = profile.costs
        event_ms = costs.profiled_ms * scale if costs is not None else 0.0
        prof = calibrate_profiled(
            loaded.model, loaded.shapes, layer_ms, times, measured, session, event_ms
        )
        prof.event_cost = self.event_cost
        prof.excess_by_turns = self.excess_by_turns
        if profile.kernel_rounds:
            pair_kernel_times(prof.units, profile.node_rounds, profile.kernel_rounds)
        if self.model_overhead:  # None where the runner gave no plain run times
            prof.model_overhead_ms = model_overhead_ms(costs, len(times))
        placed = len(layer_ms) - len(prof.unplaced)
        if placed < MIN_PLACED_SHARE * len(layer_ms):
            logger.info(
                "the profile names %d of %d filter layers: residual split over the layers",
                placed,
                len(layer_ms),
            )
            return None
        prof.kernels = self.kernels
        prof.excess_power = self.excess_power
        prof.excess_footprint = self.excess_footprint
        prof.excess_cache_bytes = self.excess_cache_bytes
        prof.excess_floor = self.excess_floor
        return InNetworkCalibration(measured, sum(layer_ms.values()), profile=prof)


class AutoStrategy(Strategy):
    """``profile`` where the runner profiles with ONNX node names, else ``split``.

    Only ``ProfileUnsupported`` falls back (and the runner is not asked again); any other
    error while profiling (a device lost) stops the calibration.
    """

    mode = "auto"

    def __init__(self, profile: ProfileStrategy, fallback: SplitStrategy) -> None:
        self.profiler = profile
        self.fallback = fallback
        self.profiles = True  # False once the runner said it cannot

    def calibrate(
        self, entries: Entries, loaded: LoadedModel, measured_ms: float | None = None
    ) -> Calibration:
        if self.profiles:
            try:
                layers = self.profiler.paired_layers(loaded)
                profile = self.profiler.profile(entries, loaded.model, layers)
            except ProfileUnsupported as exc:
                logger.info("no in-network profile (%s): residual split over the layers", exc)
                self.profiles = False
            else:
                measured = profile.measured_ms if measured_ms is None else float(measured_ms)
                cal = self.profiler.fit(entries, loaded, profile, measured)
                if cal is not None:
                    return cal
                measured_ms = measured
        return self.fallback.calibrate(entries, loaded, measured_ms)


MODES = ("auto", "profile", "split", "proportional", "constant")


def make_strategy(
    mode: str = "auto",
    session_overhead: bool = True,
    kernels: bool = True,
    rounds: int = PROFILE_ROUNDS,
) -> Strategy:
    """The strategy of ``mode`` (one of ``MODES``), with its options."""
    if mode == "auto":
        return AutoStrategy(
            ProfileStrategy(kernels, session_overhead, rounds), SplitStrategy(session_overhead)
        )
    if mode == "profile":
        return ProfileStrategy(kernels, session_overhead, rounds)
    if mode == "split":
        return SplitStrategy(session_overhead)
    if mode == "proportional":
        return ProportionalStrategy()
    if mode == "constant":
        return ConstantStrategy()
    raise NetAdaptError(f"unknown estimate mode {mode!r}; modes: {', '.join(MODES)}")
