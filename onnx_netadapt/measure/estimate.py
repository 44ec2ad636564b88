"""Estimate a pruned network's latency from the latency table and one measured network.

Calibration measures a whole network N (the original, or in the loop the current network);
``estimate`` then predicts a pruning of N without measuring it. How is a strategy
(``strategies.py``): ``--estimator`` picks one of ``MODES`` (``auto``: the in-network profile
where the runner has one, else the residual split over the layers).

``Estimator.refine`` adds a measured pruning of N (e.g. N with every group at half its
channels) as an anchor of a calibration curve (``CalibrationCurve``, a wrapper around the
strategy's calibration): estimates pass through the piecewise-linear map from the estimate to
the measurement over N and the anchors, which corrects changes that the entries predict
consistently too large or too small (several anchors follow a curve). The loop calls
``Estimator.estimate_pruned`` (or ``estimate_from``), which only looks entries up.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import onnx

from onnx_netadapt.errors import NetAdaptError
from onnx_netadapt.graph.load import LoadedModel, load_model
from onnx_netadapt.measure.kernels import EVICT_BYTES
from onnx_netadapt.measure.runner import Runner
from onnx_netadapt.measure.signature import LayerSignature, model_signatures
from onnx_netadapt.measure.strategies import (
    MODES,
    PROFILE_ROUNDS,
    Calibration,
    Entries,
    Pruning,
    Shapes,
    Strategy,
    make_strategy,
)
from onnx_netadapt.measure.table import LatencyTable

logger = logging.getLogger(__name__)

__all__ = ["MODES", "CalibrationCurve", "Estimator", "estimate_from"]

# ``refine`` needs a second network whose estimate differs by at least this share; it keeps the
# slope within [1 / MAX_SLOPE, MAX_SLOPE].
MIN_REFINE_CHANGE = 0.1
MAX_SLOPE = 2.0


@dataclass
class CalibrationCurve:
    """A strategy's calibration, its estimates passed through a calibration curve.

    Attributes:
        base: the strategy's calibration on the measured network.
        anchors: (estimate before the curve, measurement) of the networks ``refine`` added.
    """

    base: Calibration
    anchors: tuple[tuple[float, float], ...] = ()

    @property
    def mode(self) -> str:
        """The strategy that made ``base`` ("profile", "split", "proportional", "constant")."""
        return self.base.mode

    @property
    def measured_ms(self) -> float:
        """The measured whole-network latency."""
        return self.base.measured_ms

    @property
    def layers_ms(self) -> float:
        """The sum of the measured network's layer entries."""
        return self.base.layers_ms

    @property
    def residual_ms(self) -> float:
        """Measured minus the sum of the layers' entries."""
        return self.base.residual_ms

    @property
    def needs_shapes(self) -> bool:
        """Whether an estimate needs the pruned network's static shapes."""
        return self.base.needs_shapes

    @property
    def kernels(self) -> bool:
        """Whether an estimate reads in-context kernel entries instead of table entries."""
        return self.base.kernels

    @property
    def slope(self) -> float:
        """Slope of the curve from the measured network to the last anchor (1: no anchor)."""
        if not self.anchors:
            return 1.0
        base, measured = self.anchors[-1]
        change = (measured - self.measured_ms) / (base - self.measured_ms)
        return min(MAX_SLOPE, max(1 / MAX_SLOPE, change))

    def through(self, base: float) -> float:
        """``base`` (an estimate) through the curve: piecewise linear through the measured
        network and the anchors; beyond them, the nearest segment goes on (segment slopes kept
        within [1 / MAX_SLOPE, MAX_SLOPE])."""
        points = sorted({(self.measured_ms, self.measured_ms), *self.anchors})
        if len(points) < 2:
            return base
        index = min(max(bisect.bisect_left([x for x, _ in points], base), 1), len(points) - 1)
        (x0, y0), (x1, y1) = points[index - 1], points[index]
        slope = (y1 - y0) / (x1 - x0) if x1 > x0 else 1.0
        return y0 + min(MAX_SLOPE, max(1 / MAX_SLOPE, slope)) * (base - x0)

    def estimate(self, pruning: Pruning) -> float:
        """The strategy's estimate (``Calibration.estimate``) through the curve."""
        return self.through(self.base.estimate(pruning))


def estimate_from(
    calibration: CalibrationCurve,
    signatures: Mapping[str, LayerSignature],
    layer_ms: Mapping[str, float],
    model: onnx.ModelProto | None = None,
    shapes: Shapes | None = None,
) -> float:
    """Estimated latency of a pruning of the calibrated network: no runner, no measuring.

    Args:
        calibration: ``Estimator.calibrate``'s result on the network that was pruned.
        signatures: the pruned network's filter layers, by node name.
        layer_ms: their entries (ms), by node name: in-context kernel entries when
            ``calibration.kernels``, else table entries.
        model, shapes: the pruned network and its static shapes (``load_model(model,
            fold=False).shapes``); needed when ``calibration.needs_shapes``.
    """
    return calibration.estimate(Pruning(signatures, layer_ms, model, shapes))


class Estimator:
    """Table-based estimates for one runner setup.

    Args:
        runner: an entered runner.
        table: its latency table.
        mode: one of ``MODES``, or a ``Strategy`` (``strategies.py``).
        session_overhead: take the micro-model overhead (the table entry of the smallest layer)
            off every table entry ("split"; "profile" with ``kernels=False``).
        kernels: in "profile" mode, scale filter layers by in-context kernel entries
            (``kernels.py``, kept in ``table``'s file) instead of the micro-model entries.
        rounds: in "profile" mode, whole-network measurements interleaved with profiles.
        cold_kernels: in-context kernel entries with the caches evicted before the layer
            (``kernels.py``: a pruned layer's weights are not in the caches inside a network).
        canary_kernels: in-context kernel entries scaled to the speed of a fixed layer timed
            in the same rounds (``kernels.CANARY``), so entries measured minutes (or runs)
            apart on a machine whose speed drifts stay comparable. Off by default: over five
            quiet fidelity runs it was no closer on average than the plain entries, with a
            heavier tail (benchmarks/results/latency_fidelity/layouts/README.md).
        reference_kernels: time a pruned layer's kernel entry by turns with the calibrated
            network's layer of its name, and scale it to that layer's entry (``kernels.py``):
            the ratio of the two, which the estimate reads, then holds on a host whose speed
            moves from one second to the next.

    >>> estimator = Estimator(runner, LatencyTable(runner.fingerprint()))  # doctest: +SKIP
    >>> estimator.calibrate(load_model("net.onnx")).mode                     # doctest: +SKIP
    'profile'
    """

    def __init__(
        self,
        runner: Runner,
        table: LatencyTable,
        mode: str | Strategy = "auto",
        session_overhead: bool = True,
        kernels: bool = True,
        rounds: int = PROFILE_ROUNDS,
        cold_kernels: bool = False,
        canary_kernels: bool = False,
        reference_kernels: bool = True,
    ) -> None:
        if isinstance(mode, Strategy):
            self.strategy = mode
        else:
            self.strategy = make_strategy(mode, session_overhead, kernels, rounds)
        self.source = Entries(
            runner, table, EVICT_BYTES if cold_kernels else 0, canary_kernels, reference_kernels
        )
        self.calibration: CalibrationCurve | None = None

    @property
    def runner(self) -> Runner:
        """The runner the entries and measurements come from."""
        return self.source.runner

    @property
    def table(self) -> LatencyTable:
        """Its latency table."""
        return self.source.table

    @property
    def mode(self) -> str:
        """The strategy's mode."""
        return self.strategy.mode

    @property
    def needs_shapes(self) -> bool:
        """Whether ``estimate_pruned`` needs the pruned network's static shapes."""
        return self.calibration is not None and self.calibration.needs_shapes

    def layers_ms(self, signatures: Mapping[str, LayerSignature]) -> float:
        """Sum of the table entries (medians) of ``signatures`` (measuring missing ones)."""
        return sum(self.entries(signatures).values())

    def entries(self, signatures: Mapping[str, LayerSignature]) -> dict[str, float]:
        """Table entry (median ms) of each layer, by node name (measuring missing ones)."""
        return self.source.table_ms(signatures)

    def kernel_entries(self, signatures: Mapping[str, LayerSignature]) -> dict[str, float]:
        """In-context kernel entry (ms) of each layer, by node name (measuring missing ones)."""
        return self.source.kernel_ms(signatures)

    @property
    def kernels_table(self) -> LatencyTable | None:
        """The in-context kernel table, once used."""
        return self.source.kernels_table

    def calibrate(
        self, model: onnx.ModelProto | LoadedModel, measured_ms: float | None = None
    ) -> CalibrationCurve:
        """Calibrate on ``model``, measured on the runner unless ``measured_ms`` is given.

        A profiling strategy also profiles ``model`` in rounds, each after a whole-network
        measurement; the profile is rescaled to ``measured_ms`` when given (so a machine that
        drifts between the two does not skew the constant overhead).
        """
        loaded = model if isinstance(model, LoadedModel) else load_model(model)
        cal = CalibrationCurve(self.strategy.calibrate(self.source, loaded, measured_ms))
        logger.info("estimator calibrated (%s): measured %.4g ms", cal.mode, cal.measured_ms)
        self.calibration = cal
        return cal

    def refine(
        self, model: onnx.ModelProto | LoadedModel, measured_ms: float | None = None
    ) -> float:
        """Add a measured network as an anchor of the calibration curve; returns the slope from
        the calibrated network to it.

        ``model`` is a pruning of the calibrated network well apart from it and from earlier
        anchors (e.g. every group at half, then a quarter of its channels). Afterwards an
        estimate passes through the piecewise-linear curve over the calibrated network and the
        anchors: changes that the table and profile predict consistently too large or too
        small (a smaller network running faster per operation) are scaled to the measurements.
        """
        cal = self.calibration
        if cal is None:
            raise NetAdaptError("calibrate the estimator before refining it")
        loaded = model if isinstance(model, LoadedModel) else load_model(model)
        base = self._estimate(cal.base, loaded)  # before the curve
        if measured_ms is None:
            measured_ms = self.runner.measure(loaded.model).median_ms
        apart = MIN_REFINE_CHANGE * cal.measured_ms
        if any(abs(base - x) < apart for x in (cal.measured_ms, *(a for a, _ in cal.anchors))):
            logger.info("refine: the network is too close to one already measured; not added")
            return cal.slope
        cal.anchors = (*cal.anchors, (base, float(measured_ms)))
        return cal.slope

    def estimate(self, model: onnx.ModelProto | LoadedModel) -> float:
        """Estimated latency (ms) of ``model``, a pruning of the calibrated network."""
        loaded = model if isinstance(model, LoadedModel) else load_model(model)
        if not self.runner.additive:
            return self.runner.measure(loaded.model).median_ms
        return self.estimate_pruned(loaded.model, loaded.shapes)

    def estimate_pruned(
        self,
        model: onnx.ModelProto,
        shapes: Shapes,
        signatures: Mapping[str, LayerSignature] | None = None,
    ) -> float:
        """Cheap estimate for the adaptation loop: table look-ups, no network measurement.

        Args:
            model: a pruning of the calibrated network (node names kept).
            shapes: its static shapes (``load_model(model, fold=False).shapes``); only read
                when ``needs_shapes``.
            signatures: its filter layers if known (else read from ``model`` and ``shapes``).
        """
        view = LoadedModel(model, dict(shapes), 0)
        if signatures is None:
            signatures = model_signatures(view)
        if self.calibration is None:  # uncalibrated: the layers alone
            return self.layers_ms(signatures)
        return self._estimate(self.calibration, view, signatures)

    def _estimate(
        self,
        calibration: Calibration | CalibrationCurve,
        loaded: LoadedModel,
        signatures: Mapping[str, LayerSignature] | None = None,
    ) -> float:
        """``calibration``'s estimate of ``loaded``, on the entries it reads."""
        if signatures is None:
            signatures = model_signatures(loaded)
        read = self.kernel_entries if calibration.kernels else self.entries
        return calibration.estimate(
            Pruning(signatures, read(signatures), loaded.model, loaded.shapes)
        )
