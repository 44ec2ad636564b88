"""The runner protocol: how onnx-netadapt measures latency on a target.

A runner is a plugin. Its constructor is cheap (no device access); entering it as a context
manager acquires the device (an ONNX Runtime session option set, an adb connection); the public
methods validate inputs and reduce samples to ``LatencyStats``; a backend implements one
``_..._impl`` method per capability:

- ``_fingerprint_impl()``: what identifies the measuring setup (device, runtime, version,
  threads). It keys the latency table: entries measured elsewhere are never mixed in.
- ``_measure_impl(model)``: latency samples (ms) of a whole ONNX model.
- ``_measure_layer_impl(signature)``: samples of one layer; by default the whole-model path on a
  single-layer ONNX model (``micromodel.onnx_layer_model``).

>>> from onnx_netadapt.measure.registry import get_runner
>>> with get_runner("ort")(threads=1) as runner:                  # doctest: +SKIP
...     stats = runner.measure(model)
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import onnx

from onnx_netadapt.errors import NetAdaptError
from onnx_netadapt.measure.micromodel import onnx_layer_model
from onnx_netadapt.measure.signature import LayerSignature
from onnx_netadapt.measure.stats import LatencyStats, MeasureSettings

logger = logging.getLogger(__name__)


class RunnerError(NetAdaptError):
    """A runner failed while measuring (tool crashed, device disconnected, bad output)."""

    exit_code = 6


class ProfileUnsupported(RunnerError):
    """The runner (or its runtime on this device) cannot time layers inside a network: the
    estimators fall back to measured tables alone. Any other error while profiling is a real
    failure (device gone, tool crashed) and stops the run like any measurement error."""


class RunnerUnavailable(NetAdaptError):
    """A runner cannot run on this machine (missing SDK, tool or device)."""

    exit_code = 7


@dataclass(frozen=True)
class Availability:
    """Whether a runner can run here; if not, why and how to fix it."""

    available: bool
    reason: str = ""
    fix: str = ""


@dataclass(frozen=True)
class NetworkProfile:
    """One in-network profile of a whole network.

    Attributes:
        layers: per-layer time (ms), by the runtime's layer name (``Runner.profile_layers``).
        run_ms: the whole run's time (median ms) in the same session with profiling off,
            where the runner can time it (ORT), else None. The share of the run that no layer
            covers (executor overhead) is then read off one session, not off two.
    """

    layers: dict[str, float]
    run_ms: float | None = None


class Runner(ABC):
    """Base class of every latency runner (see the module docstring)."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    unit: ClassVar[str] = "ms"
    # Whether the resource of a network is the sum of its layers' (latency, MACs, params: yes;
    # peak memory: no). Non-additive resources are estimated by measuring the whole network.
    additive: ClassVar[bool] = True

    def __init__(self, settings: MeasureSettings | None = None) -> None:
        self.settings = settings or MeasureSettings()
        self._active = False

    # -- lifecycle ------------------------------------------------------------------------
    @classmethod
    def availability(cls) -> Availability:
        """Cheap check of whether the runner can run here (override when it needs tools)."""
        return Availability(True)

    def __enter__(self) -> Runner:
        status = self.availability()
        if not status.available:
            raise RunnerUnavailable(
                f"runner {self.name!r} is not available: {status.reason}. {status.fix}"
            )
        self._acquire()
        self._active = True
        return self

    def __exit__(self, *exc: object) -> None:
        self._active = False
        self._release()

    def _acquire(self) -> None:  # noqa: B027 - optional hook
        """Acquire the device (override if needed)."""

    def _release(self) -> None:  # noqa: B027 - optional hook
        """Release the device (override if needed)."""

    # -- public, validated ----------------------------------------------------------------
    def fingerprint(self) -> dict[str, str]:
        """What identifies this measuring setup; keys the latency table."""
        data = {"runner": self.name}
        data.update({k: str(v) for k, v in self._fingerprint_impl().items()})
        return data

    def measure(self, model: onnx.ModelProto) -> LatencyStats:
        """Latency of a whole model."""
        self._require_active()
        if not isinstance(model, onnx.ModelProto) or not model.graph.node:
            raise RunnerError(f"runner {self.name!r} was given no ONNX model to measure")
        return self._stats(self._measure_impl(model), "the model")

    def measure_alternating(self, models: Sequence[onnx.ModelProto]) -> list[LatencyStats] | None:
        """Latency of each of ``models`` timed run by run in turn, all loaded at once, so that
        what slows the machine for longer than one turn slows them all (``sample_alternating``);
        None where the runner cannot keep several models loaded (the default: measure them in
        interleaved rounds instead, ``interleave.py``)."""
        if type(self)._alternate_impl is Runner._alternate_impl:
            return None
        self._require_active()
        samples = self._alternate_impl(list(models))
        if samples is None:
            return None
        return [self._stats(s, f"model {i} of {len(models)}") for i, s in enumerate(samples)]

    def _alternate_impl(self, models: list[onnx.ModelProto]) -> list[list[float]] | None:
        """Samples (ms) of each model, timed run by run in turn; None: not supported."""
        return None

    def measure_layers(
        self, signatures: Sequence[LayerSignature]
    ) -> dict[LayerSignature, LatencyStats]:
        """Latency of each distinct layer signature."""
        self._require_active()
        results: dict[LayerSignature, LatencyStats] = {}
        for sig in dict.fromkeys(signatures):
            results[sig] = self._stats(self._measure_layer_impl(sig), f"layer {sig.key()}")
        return results

    def profile_layers(self, model: onnx.ModelProto) -> dict[str, float]:
        """Per-layer time (ms) inside the whole network, by the runtime's layer name.

        Optional: runners whose runtime can profile inside a network override it (ORT maps
        names back to ONNX nodes; SNPE and TFLite keep their runtime's names). Raises
        ProfileUnsupported where the runtime cannot.
        """
        raise ProfileUnsupported(f"runner {self.name!r} cannot profile layers inside a network")

    def profile_network(self, model: onnx.ModelProto) -> NetworkProfile:
        """``profile_layers`` with the whole run's time in the same session, profiling off,
        where the runner can time it (default: ``profile_layers`` alone, ``run_ms`` None)."""
        return NetworkProfile(self.profile_layers(model))

    # -- to implement ---------------------------------------------------------------------
    @abstractmethod
    def _fingerprint_impl(self) -> dict[str, object]:
        """Device, runtime, version, threads..."""

    @abstractmethod
    def _measure_impl(self, model: onnx.ModelProto) -> list[float] | LatencyStats:
        """Latency samples (ms) of ``model`` (or statistics, for tools that only report those)."""

    def _measure_layer_impl(self, signature: LayerSignature) -> list[float] | LatencyStats:
        """Latency samples (ms) of one layer (default: a single-layer ONNX model)."""
        return self._measure_impl(onnx_layer_model(signature))

    # -- helpers --------------------------------------------------------------------------
    def _require_active(self) -> None:
        if not self._active:
            raise RunnerError(
                f"runner {self.name!r} is not active: use it as a context manager "
                "(with get_runner(name)(...) as runner: ...)"
            )

    def _stats(self, samples: list[float] | LatencyStats, what: str) -> LatencyStats:
        if isinstance(samples, LatencyStats):  # tools that only report statistics
            return samples
        try:
            return LatencyStats.from_samples(samples)
        except ValueError as exc:
            raise RunnerError(
                f"runner {self.name!r} returned bad timings for {what}: {exc}"
            ) from exc
