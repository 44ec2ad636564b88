"""Estimate a pruned network's latency from the latency table and one measured network.

Calibration measures a whole network N (the original, or in the loop the current network);
``estimate`` then predicts a pruning of N without measuring it. Modes:

- ``profile`` (runners that profile inside a network, e.g. ``ort``): N's per-node times,
  carried to the pruned network by node name and scaled by in-context kernel entries (filter
  layers, ``kernels.py``) or activation elements (other nodes), plus N's constant overhead
  (``calibration.py``).
- ``split`` (runners that cannot profile, e.g. ``tflite`` on the host): the table entries (net
  of the micro-model overhead) plus N's residual, split over the filter layers by their output
  elements and scaled with them.
- ``proportional``: table entries plus a residual scaled with their sum.
- ``constant``: table entries plus a constant residual (the first version).
- ``auto``: ``profile`` where the runner profiles with ONNX node names, else ``split``.

``Estimator.refine`` adds a measured pruning of N (e.g. N with every group at half its
channels) as an anchor of a calibration curve: estimates pass through the piecewise-linear map
from the estimate to the measurement over N and the anchors, which corrects changes that the
entries predict consistently too large or too small (several anchors follow a curve). The loop
calls ``Estimator.estimate_pruned`` (or ``estimate_from``), which only looks entries up.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx

from onnx_netadapt.errors import NetAdaptError
from onnx_netadapt.graph.load import LoadedModel, load_model
from onnx_netadapt.measure.calibration import (
    ProfileCalibration,
    calibrate_profiled,
    estimate_profiled,
    net_ms,
)
from onnx_netadapt.measure.kernels import KernelRunner, kernel_table
from onnx_netadapt.measure.runner import ProfileUnsupported, Runner
from onnx_netadapt.measure.signature import LayerSignature, model_signatures
from onnx_netadapt.measure.table import LatencyTable

logger = logging.getLogger(__name__)

MODES = ("auto", "profile", "split", "proportional", "constant")
# The smallest layer: its micro-model time is the micro-model overhead (session call etc.).
NULL_SIGNATURE = LayerSignature("Conv", 1, 1, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1))
# ``auto`` uses a profile only when it places at least this share of the filter layers.
MIN_PLACED_SHARE = 0.5
# "profile" calibration: whole-network measurements, each followed by a profile.
PROFILE_ROUNDS = 3
# ``refine`` needs a second network whose estimate differs by at least this share; it keeps the
# slope within [1 / MAX_SLOPE, MAX_SLOPE].
MIN_REFINE_CHANGE = 0.1
MAX_SLOPE = 2.0


def output_elements(sig: LayerSignature) -> int:
    """Elements of a layer's output (its activation traffic)."""
    if sig.op == "Gemm":
        return sig.rows * sig.out_channels
    n = sig.out_channels
    for d in sig.output_hw():
        n *= d
    return n


@dataclass
class Calibration:
    """One measured network and what the estimator keeps of it.

    Attributes:
        measured_ms: the measured whole-network latency.
        layers_ms: the sum of its layers' table entries.
        mode: the estimate mode in use ("profile", "split", "proportional", "constant").
        session_ms: micro-model overhead taken off each table entry ("split", "profile").
        net_layers_ms: sum of the entries net of ``session_ms``.
        weight: sum of the filter layers' output elements ("split").
        profile: the in-network calibration ("profile").
        anchors: (estimate before the curve, measurement) of the networks ``refine`` added.
    """

    measured_ms: float
    layers_ms: float
    mode: str = "constant"
    session_ms: float = 0.0
    net_layers_ms: float = 0.0
    weight: float = 0.0
    profile: ProfileCalibration | None = None
    anchors: tuple[tuple[float, float], ...] = ()

    @property
    def slope(self) -> float:
        """Slope of the curve from the measured network to the last anchor (1: no anchor)."""
        if not self.anchors:
            return 1.0
        base, measured = self.anchors[-1]
        change = (measured - self.measured_ms) / (base - self.measured_ms)
        return min(MAX_SLOPE, max(1 / MAX_SLOPE, change))

    @property
    def residual_ms(self) -> float:
        """Measured minus the sum of the layers' table entries."""
        return self.measured_ms - self.layers_ms


def estimate_from(
    calibration: Calibration,
    signatures: Mapping[str, LayerSignature],
    layer_ms: Mapping[str, float],
    model: onnx.ModelProto | None = None,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> float:
    """Estimated latency of a pruning of the calibrated network: no runner, no measuring.

    Args:
        calibration: ``Estimator.calibrate``'s result on the network that was pruned.
        signatures: the pruned network's filter layers, by node name.
        layer_ms: their entries (ms), by node name: in-context kernel entries when
            ``calibration.profile.kernels``, else table entries.
        model, shapes: the pruned network and its static shapes (``load_model(model,
            fold=False).shapes``); needed by the "profile" mode only.
    """
    base = _estimate_base(calibration, signatures, layer_ms, model, shapes)
    return through_curve(calibration, base)


def through_curve(calibration: Calibration, base: float) -> float:
    """``base`` (an estimate) through the calibration curve: piecewise linear through the
    measured network and the anchors; beyond them, the nearest segment goes on (segment slopes
    kept within [1 / MAX_SLOPE, MAX_SLOPE])."""
    points = sorted({(calibration.measured_ms, calibration.measured_ms), *calibration.anchors})
    if len(points) < 2:
        return base
    index = min(max(bisect.bisect_left([x for x, _ in points], base), 1), len(points) - 1)
    (x0, y0), (x1, y1) = points[index - 1], points[index]
    slope = (y1 - y0) / (x1 - x0) if x1 > x0 else 1.0
    return y0 + min(MAX_SLOPE, max(1 / MAX_SLOPE, slope)) * (base - x0)


def _estimate_base(
    calibration: Calibration,
    signatures: Mapping[str, LayerSignature],
    layer_ms: Mapping[str, float],
    model: onnx.ModelProto | None,
    shapes: Mapping[str, tuple[int, ...]] | None,
) -> float:
    mode = calibration.mode
    if mode == "profile":
        if calibration.profile is None or model is None or shapes is None:
            raise NetAdaptError("a 'profile' estimate needs the calibration profile, model, shapes")
        return estimate_profiled(calibration.profile, model, shapes, layer_ms)
    layers = sum(layer_ms[name] for name in signatures)
    if mode == "constant":
        return layers + calibration.residual_ms
    if mode == "proportional":
        scale = layers / calibration.layers_ms if calibration.layers_ms > 0 else 1.0
        return layers + calibration.residual_ms * scale
    if mode == "split":
        net = sum(net_ms(layer_ms[n], calibration.session_ms) for n in signatures)
        weight = sum(output_elements(s) for s in signatures.values())
        scale = weight / calibration.weight if calibration.weight > 0 else 1.0
        return net + (calibration.measured_ms - calibration.net_layers_ms) * scale
    raise NetAdaptError(f"unknown estimate mode {mode!r}; modes: {', '.join(MODES)}")


class Estimator:
    """Table-based estimates for one runner setup.

    Args:
        runner: an entered runner.
        table: its latency table.
        mode: one of ``MODES`` (see the module docstring).
        session_overhead: take the micro-model overhead (the table entry of the smallest layer)
            off every table entry ("split"; "profile" with ``kernels=False``).
        kernels: in "profile" mode, scale filter layers by in-context kernel entries
            (``kernels.py``, kept in ``table``'s file) instead of the micro-model entries.
        rounds: in "profile" mode, whole-network measurements interleaved with profiles.
    """

    def __init__(
        self,
        runner: Runner,
        table: LatencyTable,
        mode: str = "auto",
        session_overhead: bool = True,
        kernels: bool = True,
        rounds: int = PROFILE_ROUNDS,
    ) -> None:
        if mode not in MODES:
            raise NetAdaptError(f"unknown estimate mode {mode!r}; modes: {', '.join(MODES)}")
        self.runner = runner
        self.table = table
        self.mode = mode
        self.session_overhead = session_overhead
        self.use_kernels = kernels
        self.rounds = max(1, int(rounds))
        self.calibration: Calibration | None = None
        self._kernels: tuple[LatencyTable, KernelRunner] | None = None
        self._no_profile = False

    def layers_ms(self, signatures: Mapping[str, LayerSignature]) -> float:
        """Sum of the table entries (medians) of ``signatures`` (measuring missing ones)."""
        return sum(self.entries(signatures).values())

    def entries(self, signatures: Mapping[str, LayerSignature]) -> dict[str, float]:
        """Table entry (median ms) of each layer, by node name (measuring missing ones)."""
        found = self.table.lookup(list(signatures.values()), self.runner)
        return {name: found[sig].median_ms for name, sig in signatures.items()}

    def kernel_entries(self, signatures: Mapping[str, LayerSignature]) -> dict[str, float]:
        """In-context kernel entry (ms) of each layer, by node name (measuring missing ones)."""
        if self._kernels is None:
            self._kernels = kernel_table(self.runner, self.table.path)
        table, kernels = self._kernels
        found = table.lookup(list(signatures.values()), kernels)  # type: ignore[arg-type]
        return {name: found[sig].median_ms for name, sig in signatures.items()}

    @property
    def kernels_table(self) -> LatencyTable | None:
        """The in-context kernel table, once used."""
        return self._kernels[0] if self._kernels else None

    def session_ms(self) -> float:
        """Micro-model overhead: the table entry of the smallest layer (0 for exact units)."""
        if self.runner.unit != "ms" or not self.session_overhead:
            return 0.0
        return self.table.lookup([NULL_SIGNATURE], self.runner)[NULL_SIGNATURE].median_ms

    def calibrate(
        self, model: onnx.ModelProto | LoadedModel, measured_ms: float | None = None
    ) -> Calibration:
        """Calibrate on ``model``, measured on the runner unless ``measured_ms`` is given.

        In "profile" and "auto" modes the runner also profiles ``model`` in ``rounds`` rounds,
        each after a whole-network measurement; the profile is rescaled to ``measured_ms`` when
        given (so a machine that drifts between the two does not skew the constant overhead).
        """
        loaded = model if isinstance(model, LoadedModel) else load_model(model)
        signatures = model_signatures(loaded)
        profile = None
        if self.mode in ("auto", "profile") and self.runner.unit == "ms":
            profile = self._profile_rounds(loaded.model)
        if profile is not None and measured_ms is None:
            measured = profile[1]
        elif measured_ms is None:
            measured = self.runner.measure(loaded.model).median_ms
        else:
            measured = float(measured_ms)
        cal = None
        if profile is not None and self.use_kernels:
            # in-context kernel entries only: no micro-model entry is measured
            kernel_ms = self.kernel_entries(signatures)
            placed = self._calibrate_profile(loaded, kernel_ms, profile, measured, 0.0)
            if placed is not None:
                cal = Calibration(measured, sum(kernel_ms.values()), "profile", profile=placed)
        if cal is None:
            cal = self._calibrate_tables(loaded, signatures, measured, profile)
        if cal.mode == "split" and self.mode == "profile":
            raise NetAdaptError(
                f"runner {self.runner.name!r} gives no in-network profile with ONNX node "
                "names: use mode 'split' or 'auto' (onnx-netadapt: --estimator split|auto)"
            )
        logger.info("estimator calibrated (%s): measured %.4g ms", cal.mode, measured)
        self.calibration = cal
        return cal

    def _calibrate_tables(
        self,
        loaded: LoadedModel,
        signatures: Mapping[str, LayerSignature],
        measured: float,
        profile: tuple[dict[str, float], float] | None,
    ) -> Calibration:
        """A calibration on the micro-model entries (with the profile when not on kernels)."""
        layer_ms = self.entries(signatures)
        cal = Calibration(measured, sum(layer_ms.values()), mode=self.mode)
        if self.mode in ("auto", "profile", "split"):
            cal.session_ms = self.session_ms()
            cal.net_layers_ms = sum(net_ms(t, cal.session_ms) for t in layer_ms.values())
            cal.weight = float(sum(output_elements(s) for s in signatures.values()))
        if profile is not None and not self.use_kernels:
            cal.profile = self._calibrate_profile(
                loaded, layer_ms, profile, measured, cal.session_ms
            )
        if self.mode in ("auto", "profile"):
            cal.mode = "profile" if cal.profile is not None else "split"
        return cal

    def _profile_rounds(self, model: onnx.ModelProto) -> tuple[dict[str, float], float] | None:
        """Per-node median profile and median whole-network time over ``rounds`` (or None)."""
        if self._no_profile:
            return None
        profiles, measured = [], []
        try:
            for _ in range(self.rounds):
                measured.append(self.runner.measure(model).median_ms)
                profiles.append(self.runner.profile_layers(model))
        except ProfileUnsupported as exc:
            logger.info("no in-network profile (%s): residual split over the layers", exc)
            self._no_profile = True  # the runner cannot: do not ask at every calibration
            return None
        names = set().union(*profiles)
        median = {n: float(np.median([p.get(n, 0.0) for p in profiles])) for n in names}
        return median, float(np.median(measured))

    def _calibrate_profile(
        self,
        loaded: LoadedModel,
        entries: Mapping[str, float],
        profile: tuple[dict[str, float], float],
        measured: float,
        session: float,
    ) -> ProfileCalibration | None:
        """The in-network calibration on ``entries`` (kernel entries, or micro-model entries
        net of ``session``), or None when the profile names too few filter layers."""
        times, profiled_measured = profile
        if not any(name in entries for name in times):
            return None  # the runtime's own names (TFLite): nothing maps to ONNX nodes
        scale = measured / profiled_measured if profiled_measured > 0 else 1.0
        times = {name: ms * scale for name, ms in times.items()}
        prof = calibrate_profiled(loaded.model, loaded.shapes, entries, times, measured, session)
        placed = len(entries) - len(prof.unplaced)
        if placed < MIN_PLACED_SHARE * len(entries):
            logger.info(
                "the profile names %d of %d filter layers: residual split over the layers",
                placed,
                len(entries),
            )
            return None
        prof.kernels = self.use_kernels
        return prof

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
        anchors, cal.anchors = cal.anchors, ()
        try:
            base = self.estimate(loaded)  # before the curve
        finally:
            cal.anchors = anchors
        if measured_ms is None:
            measured_ms = self.runner.measure(loaded.model).median_ms
        apart = MIN_REFINE_CHANGE * cal.measured_ms
        if any(abs(base - x) < apart for x in (cal.measured_ms, *(a for a, _ in anchors))):
            logger.info("refine: the network is too close to one already measured; not added")
            return cal.slope
        cal.anchors = (*anchors, (base, float(measured_ms)))
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
        shapes: Mapping[str, tuple[int, ...]],
        signatures: Mapping[str, LayerSignature] | None = None,
    ) -> float:
        """Cheap estimate for the adaptation loop: table look-ups, no network measurement.

        Args:
            model: a pruning of the calibrated network (node names kept).
            shapes: its static shapes (``load_model(model, fold=False).shapes``).
            signatures: its filter layers if known (else read from ``model`` and ``shapes``).
        """
        if signatures is None:
            signatures = model_signatures(LoadedModel(model, dict(shapes), 0))
        cal = self.calibration
        if cal is None:  # uncalibrated: the layers alone
            return self.layers_ms(signatures)
        if cal.mode == "profile" and cal.profile is not None and cal.profile.kernels:
            layer_ms = self.kernel_entries(signatures)
        else:
            layer_ms = self.entries(signatures)
        return estimate_from(cal, signatures, layer_ms, model, shapes)
