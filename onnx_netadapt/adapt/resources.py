"""The resources an adaptation tracks: one runner, table and calibrated estimator each.

``estimate`` answers "what would this pruned network cost?" from the latency table and the
current network, measured every iteration (``onnx_netadapt.measure.estimate``; the mode is
``AdaptConfig.estimator``: by default "auto", the in-network profile where the runner has one).
The layers of a pruned network are read off its weight shapes, so no shape inference runs per
candidate (except where the estimator's calibration needs shapes: the "profile" strategy scales
the other nodes by their activation sizes). Non-additive resources (peak memory) are measured
directly.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from onnx_netadapt.adapt.budget import LATENCY, Budget, check_unit
from onnx_netadapt.graph.load import LoadedModel
from onnx_netadapt.graph.shapes import infer_shapes
from onnx_netadapt.measure.estimate import Estimator
from onnx_netadapt.measure.interleave import alternating_stats, stats_ratios
from onnx_netadapt.measure.registry import check_runner_options, make_runner
from onnx_netadapt.measure.runner import Runner
from onnx_netadapt.measure.signature import LayerSignature
from onnx_netadapt.measure.table import LatencyTable

logger = logging.getLogger(__name__)

# Whole-network measurements that decide an iteration are repeated and the median kept.
WHOLE_NETWORK_ROUNDS = 3
# The measurement that confirms a budget is met (and gives the adapted network's figures) uses
# more rounds: the iteration that first meets a budget is the one whose 3-round measurement came
# out low, so a second, longer measurement must decide.
CONFIRM_ROUNDS = 11
# The statistic of each round's runs that a network's ratio to the reference is taken by: the
# 10th percentile, which neighbours on a shared host move least. On this project's noisy host
# (a 2-core VM), five repeats of keep-0.5 MobileNetV2 against its original gave ratios with an
# sd of 1.5 % by it, both loaded and run by turns, against 15.3 % by the median of rounds of
# whole measurements, as before (``benchmarks/results/latency_fidelity/noisy_host/``).
RATIO_STATISTIC = "p10"


@dataclass(frozen=True)
class Measurement:
    """A robust whole-network value: the median over rounds, with the spread of the rounds.

    For latency each round is the network timed against the reference (the original) back to
    back, converted to the network's latency; exact resources have one round.
    """

    value: float
    p10: float
    p90: float
    rounds: int

    def to_dict(self) -> dict[str, float]:
        """JSON form (history.json, the summary)."""
        return {"value": self.value, "p10": self.p10, "p90": self.p90, "rounds": self.rounds}


@dataclass
class Tracked:
    """One resource: its runner (entered), table, estimator, and the current measurement."""

    resource: str
    runner: Runner
    table: LatencyTable
    budget: Budget | None = None
    measured: float = 0.0
    estimator: Estimator | None = None

    @property
    def unit(self) -> str:
        """The runner's unit (ms, MMAC, ...)."""
        return self.runner.unit

    @property
    def layers_total(self) -> float:
        """Sum of the current network's table entries (0 before calibration)."""
        cal = self.estimator.calibration if self.estimator else None
        return cal.layers_ms if cal else 0.0

    def tables(self) -> list[LatencyTable]:
        """Its tables: the layer entries, plus in-context kernel entries once used."""
        kernels = self.estimator.kernels_table if self.estimator else None
        return [self.table] + ([kernels] if kernels is not None else [])

    def calibrate(self, loaded: LoadedModel, measured: float) -> None:
        """Calibrate the estimator on ``loaded``, measured at ``measured``."""
        self.measured = measured
        if self.estimator is not None:
            self.estimator.calibrate(loaded, measured_ms=measured)

    def estimate(self, model: onnx.ModelProto, signatures: Mapping[str, LayerSignature]) -> float:
        """Estimated value of ``model``, a pruning of the calibrated network."""
        if self.estimator is None:
            return self.runner.measure(model).median_ms
        shapes = {}
        if self.estimator.needs_shapes:  # e.g. scales other nodes by their activation sizes
            copy = onnx.ModelProto()
            copy.CopyFrom(model)  # infer_shapes writes value_info; the proposal stays as it is
            shapes = infer_shapes(copy)  # a pruning of a loaded model: no checker, no normalising
        return self.estimator.estimate_pruned(model, shapes, signatures)


class ResourceSet:
    """The resources of one run: latency on ``target`` plus any budgeted runner.

    ``make_target`` makes the target runner instead of ``make_runner`` (same arguments): e.g.
    one that measures in a Ray actor on the device's node (``engines.target_runner``).
    """

    def __init__(
        self,
        target: str,
        budgets: list[Budget],
        threads: int = 1,
        table_path: Path | None = None,
        runner_options: Mapping[str, object] | None = None,
        estimator: str = "auto",
        make_target: Callable[..., Runner] | None = None,
    ) -> None:
        names = [LATENCY] + [b.resource for b in budgets if b.resource != LATENCY]
        check_runner_options([target if n == LATENCY else n for n in names], runner_options or {})
        by_resource = {b.resource: b for b in budgets}
        self.tracked: dict[str, Tracked] = {}
        self._runners: list[Runner] = []
        for name in names:
            make = (make_target if name == LATENCY else None) or make_runner
            runner = make(target if name == LATENCY else name, threads, **(runner_options or {}))
            self._runners.append(runner)
            self.tracked[name] = Tracked(name, runner, None, by_resource.get(name))  # type: ignore[arg-type]
        self._table_path = table_path
        self._estimator_mode = estimator
        self.network_measurements = 0
        self._reference: onnx.ModelProto | None = None
        self._reference_values: dict[str, float] = {}

    def __enter__(self) -> ResourceSet:
        entered: list[Runner] = []
        try:
            for item in self.tracked.values():
                item.runner.__enter__()
                entered.append(item.runner)
                if item.budget is not None:
                    check_unit(item.budget, item.unit, item.runner.name)
                path = self._table_path if item.runner.additive else None
                item.table = LatencyTable(item.runner.fingerprint(), path)
                if item.runner.additive:
                    # exact resources (MACs, parameters) are sums: no profile, no scaling
                    mode = self._estimator_mode if item.unit == "ms" else "constant"
                    item.estimator = Estimator(item.runner, item.table, mode=mode)
        except BaseException:
            for runner in entered:
                runner.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for item in self.tracked.values():
            item.runner.__exit__(*exc)

    def __iter__(self):
        return iter(self.tracked.values())

    @property
    def budgeted(self) -> list[Tracked]:
        """The resources that carry a budget."""
        return [t for t in self.tracked.values() if t.budget is not None]

    def measurements(self) -> int:
        """Table entries measured so far by this run (all resources)."""
        return sum(table.measurements for t in self.tracked.values() for table in t.tables())

    def measure_seconds(self) -> float:
        """Time spent measuring table entries so far by this run (all resources)."""
        return sum(table.measure_seconds for t in self.tracked.values() for table in t.tables())

    def calibrate(self, loaded: LoadedModel) -> dict:
        """Measure the current network on every runner and calibrate on it. Returns values."""
        for item in self.tracked.values():
            item.calibrate(loaded, self.measure(item, loaded.model))
        return self.values()

    def set_reference(self, model: onnx.ModelProto, values: Mapping[str, float]) -> None:
        """Anchor later latency measurements to ``model`` (the original), measured ``values``.

        From then on a network's latency is ``values[resource]`` times the median ratio of the
        network to the reference, timed back to back in interleaved rounds (each round runs
        the two by turns, both loaded, where the runner can: ``interleave.alternating_stats``;
        ratios by ``RATIO_STATISTIC``): a transient that slows the machine (a CPU busy a moment
        ago with fine-tuning, frequency changes, a neighbour on a shared host) hits both and
        cancels, where a lone measurement can be off by tens of percent.
        """
        self._reference = model
        self._reference_values = dict(values)

    def measure(self, item: Tracked, model: onnx.ModelProto) -> float:
        """A robust whole-network measurement of ``model`` on ``item``'s runner (counted)."""
        return self.measure_rounds(item, model, WHOLE_NETWORK_ROUNDS).value

    def measure_rounds(self, item: Tracked, model: onnx.ModelProto, rounds: int) -> Measurement:
        """``model`` on ``item``'s runner over ``rounds`` rounds: median and spread (counted)."""
        self.network_measurements += 1
        if item.unit != "ms":
            value = item.runner.measure(model).median_ms
            return Measurement(value, value, value, 1)
        if self._reference is None:
            values = [item.runner.measure(model).median_ms for _ in range(rounds)]
        else:
            stats = alternating_stats(item.runner, model, self._reference, rounds)
            anchor = self._reference_values[item.resource]
            values = [anchor * r for r in stats_ratios(stats, RATIO_STATISTIC)[0]]
        p10, p90 = (float(q) for q in np.percentile(values, [10, 90]))
        return Measurement(float(statistics.median(values)), p10, p90, rounds)

    def confirm(self, loaded: LoadedModel) -> dict[str, Measurement]:
        """Measure ``loaded`` on every runner in ``CONFIRM_ROUNDS`` rounds and calibrate on it.

        Used before a run declares its budgets met, and for the figures of the network it
        hands back; the estimator is recalibrated at the confirmed values.
        """
        confirmed = {}
        for name, item in self.tracked.items():
            confirmed[name] = self.measure_rounds(item, loaded.model, CONFIRM_ROUNDS)
            item.calibrate(loaded, confirmed[name].value)
        return confirmed

    def restore(self, calibration: Mapping[str, Mapping[str, float]], current: LoadedModel) -> None:
        """Calibrate on ``current`` at the values a previous run measured (for --resume)."""
        for name, item in self.tracked.items():
            item.calibrate(current, float(calibration[name]["measured"]))

    def calibration(self) -> dict:
        """What ``restore`` needs."""
        return {
            n: {"measured": t.measured, "layers_total": t.layers_total}
            for n, t in self.tracked.items()
        }

    def values(self) -> dict[str, float]:
        """Measured value of the current network per resource."""
        return {n: t.measured for n, t in self.tracked.items()}

    def estimate(
        self, model: onnx.ModelProto, signatures: Mapping[str, LayerSignature]
    ) -> dict[str, float]:
        """Estimated value of ``model`` (whose filter layers are ``signatures``) per resource."""
        return {name: item.estimate(model, signatures) for name, item in self.tracked.items()}
