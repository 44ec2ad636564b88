"""Latency measured where the device is: the target runner in a Ray actor (``--measure-on``).

With ``--engine ray --measure-on RESOURCE`` the run's target runner is made (from the same
target name, threads and runner options the driver would use) and entered inside a Ray actor
that asks for one unit of the custom resource ``RESOURCE`` (``device:SERIAL``), so Ray starts it
on the node that declares it (``ray start --resources='{"device:SERIAL": 1}'``: the host of the
phone, the machine to time on), never on whichever node is free. The driver holds a
:class:`RemoteRunner`, a :class:`~onnx_netadapt.measure.runner.Runner` whose calls (whole
networks, table entries, in-network profiles, the fingerprint) run in the actor: the loop, the
interleaved rounds and the estimators are unchanged.

- The actor holds no CPU (``num_cpus=0``: the proposals keep every core) and the whole unit of
  the resource (one run measures on a device at a time).
- A missing resource is refused at once, with the resources the cluster has.
- An actor that dies (killed, node lost) is restarted on a node with the resource and its
  unfinished call run again, ``restarts`` times (measurements only read); past that the run
  stops with :class:`EngineError` (exit 12) and is resumable. A node that leaves the cluster
  with the resource is noticed within ``POLL_SECONDS``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import sys
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import onnx

from onnx_netadapt.engines import RAY_BUILTIN_RESOURCES
from onnx_netadapt.engines.base import EngineError
from onnx_netadapt.engines.ray_cluster import DEFAULT_RETRIES, connect_ray, lost_worker_errors
from onnx_netadapt.errors import NetAdaptError, UsageError
from onnx_netadapt.measure.registry import make_runner
from onnx_netadapt.measure.runner import NetworkProfile, Runner
from onnx_netadapt.measure.signature import LayerSignature
from onnx_netadapt.measure.stats import LatencyStats

logger = logging.getLogger(__name__)

RunnerFactory = Callable[..., Runner]

# Actor restarts (and retries of the call it was running) before the run stops.
DEFAULT_RESTARTS = DEFAULT_RETRIES
# How long the actor may wait for a node with a free unit of the resource.
PLACEMENT_SECONDS = 60.0
# How often a waiting call checks that the resource is still in the cluster.
POLL_SECONDS = 5.0
# Distinct networks whose bytes stay in the object store (the reference, the current network).
CACHED_MODELS = 4
RAY_INTERNAL = ("node:__internal", "accelerator_type:")  # not worth listing to a user
AUTO = "auto"


def declare_hint(resource: str) -> str:
    """How to declare ``resource`` on the node that owns the device."""
    return (
        f"declare it on the node that owns the device: ray start --head "
        f"--resources='{{\"{resource}\": 1}}' (or --address HEAD:6379 to join a cluster), "
        "then run with --engine ray --ray-address auto"
    )


def resolve_resource(measure_on: str, runner_options: Mapping[str, object]) -> str:
    """``measure_on``, or for ``auto`` ``device:SERIAL`` from ``--runner-option device=SERIAL``."""
    if measure_on != AUTO:
        return measure_on
    serial = runner_options.get("device")
    if not serial:
        raise UsageError(
            "--measure-on auto names the resource after the phone: give its serial with "
            "--runner-option device=SERIAL (adb devices), or name the resource "
            "(--measure-on device:SERIAL)"
        )
    return f"device:{serial}"


class RunnerHost:
    """The actor's side: one entered runner (in the process Ray starts on the device's node).

    The runner is entered on construction, so an actor Ray restarts is ready at once; an error
    there (no device, no tool) is kept and raised by ``describe``, with its own exit code.
    """

    def __init__(self, target: str, threads: int, options: Mapping[str, object]) -> None:
        self._runner: Runner | None = None
        self._error: Exception | None = None
        try:
            self._runner = make_runner(target, threads, **options).__enter__()
        except Exception as exc:  # raised again by describe(), in the driver
            self._error = exc

    def _entered(self) -> Runner:
        if self._runner is None:
            assert self._error is not None
            raise self._error
        return self._runner

    def describe(self) -> dict[str, Any]:
        """The runner's name, unit, additivity, fingerprint; where it runs (host, pid)."""
        runner = self._entered()
        return {
            "name": runner.name,
            "unit": runner.unit,
            "additive": runner.additive,
            "fingerprint": runner.fingerprint(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }

    def measure(self, model: bytes) -> LatencyStats:
        """``runner.measure`` of the serialized network ``model``."""
        return self._entered().measure(onnx.load_model_from_string(model))

    def measure_layers(
        self, signatures: Sequence[LayerSignature]
    ) -> dict[LayerSignature, LatencyStats]:
        """``runner.measure_layers``."""
        return self._entered().measure_layers(signatures)

    def profile_layers(self, model: bytes) -> dict[str, float]:
        """``runner.profile_layers`` of the serialized network ``model``."""
        return self._entered().profile_layers(onnx.load_model_from_string(model))

    def profile_network(self, model: bytes) -> NetworkProfile:
        """``runner.profile_network`` of the serialized network ``model``."""
        return self._entered().profile_network(onnx.load_model_from_string(model))

    def close(self) -> None:
        """Release the device."""
        if self._runner is not None:
            self._runner.__exit__(None, None, None)
            self._runner = None


class RemoteRunner(Runner):
    """A runner in the driver whose work runs in a :class:`RunnerHost` actor on ``resource``.

    Constructing it is cheap; entering it connects to Ray (``address``), checks the resource,
    starts the actor and waits for it; leaving it closes the actor (and Ray, if it connected).
    """

    def __init__(
        self,
        target: str,
        threads: int,
        options: Mapping[str, object],
        resource: str,
        address: str | None = None,
        restarts: int = DEFAULT_RESTARTS,
    ) -> None:
        super().__init__()
        self.target, self.threads, self.options = target, threads, dict(options)
        self.resource, self.address, self.restarts = resource, address, restarts
        self.name = target  # until the actor describes its runner
        self.where: dict[str, Any] = {}
        self._ray: Any = None
        self._connected = False
        self._actor: Any = None
        self._models: OrderedDict[bytes, Any] = OrderedDict()

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> RemoteRunner:
        if not _ray_running() and self.address is None:
            raise UsageError(
                f"--measure-on {self.resource} needs the Ray cluster in which a node declares "
                f"that resource (a new local instance has none): {declare_hint(self.resource)}"
            )
        self._ray, self._connected = connect_ray(self.address)
        try:
            self._check_resource()
            self._start_actor()
        except BaseException:
            self._stop(kill=True)
            raise
        self._active = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None = None, *exc: object) -> None:
        self._active = False
        self._stop(kill=exc_type is not None)

    def _check_resource(self) -> None:
        offered = self._ray.cluster_resources()
        if offered.get(self.resource, 0) >= 1:
            return
        custom = sorted(
            k for k in offered if k not in RAY_BUILTIN_RESOURCES and not k.startswith(RAY_INTERNAL)
        )
        have = (
            f"it offers {offered[self.resource]:g} of it (one unit is needed)"
            if self.resource in offered
            else f"its custom resources are: {', '.join(custom) or 'none'}"
        )
        raise EngineError(
            f"no node of the Ray cluster offers the resource {self.resource!r} that "
            f"--measure-on asks for ({have}): {declare_hint(self.resource)}"
        )

    def _start_actor(self) -> None:
        ray = self._ray
        host = ray.remote(RunnerHost).options(
            num_cpus=0,
            resources={self.resource: 1},
            max_restarts=self.restarts,
            max_task_retries=self.restarts,
        )
        self._actor = host.remote(self.target, self.threads, self.options)
        ref = self._actor.describe.remote()
        try:
            self.where = ray.get(ref, timeout=PLACEMENT_SECONDS)
        except ray.exceptions.GetTimeoutError:
            raise EngineError(
                f"the runner could not start on a node with {self.resource!r} within "
                f"{PLACEMENT_SECONDS:g} s: another run may hold it (one run measures on a "
                "device at a time), or that node lacks memory (see `ray status`)"
            ) from None
        except ray.exceptions.RayTaskError as exc:
            _raise_cause(exc)
        self.name = self.where["name"]
        self.unit = self.where["unit"]
        self.additive = self.where["additive"]
        logger.info(
            "measuring on %s (pid %d) through %s",
            self.where["host"],
            self.where["pid"],
            self.resource,
        )

    def _stop(self, kill: bool) -> None:
        ray, actor = self._ray, self._actor
        self._actor, self._models = None, OrderedDict()
        if actor is not None and ray.is_initialized():
            if not kill:
                try:
                    ray.get(actor.close.remote(), timeout=PLACEMENT_SECONDS)
                except Exception as exc:  # a dead actor has nothing left to release
                    logger.warning("the runner actor did not close cleanly: %s", exc)
            ray.kill(actor, no_restart=True)
        if self._connected and ray.is_initialized():
            ray.shutdown()
        self._connected = False

    # -- the runner's calls, in the actor ---------------------------------------------------
    def fingerprint(self) -> dict[str, str]:
        """The fingerprint of the runner in the actor (its node's device and runtime)."""
        self._require_active()
        return dict(self.where["fingerprint"])

    def _fingerprint_impl(self) -> dict[str, object]:
        return self.fingerprint()

    def _measure_impl(self, model: onnx.ModelProto) -> LatencyStats:
        return self._call("measure", self._model_ref(model))

    def measure_layers(
        self, signatures: Sequence[LayerSignature]
    ) -> dict[LayerSignature, LatencyStats]:
        """Every signature in one call to the actor."""
        self._require_active()
        return self._call("measure_layers", list(dict.fromkeys(signatures)))

    def profile_layers(self, model: onnx.ModelProto) -> dict[str, float]:
        """The actor's runner's in-network profile of ``model``."""
        self._require_active()
        return self._call("profile_layers", self._model_ref(model))

    def profile_network(self, model: onnx.ModelProto) -> NetworkProfile:
        """The actor's runner's in-network profile of ``model``, with its run time."""
        self._require_active()
        return self._call("profile_network", self._model_ref(model))

    def _model_ref(self, model: onnx.ModelProto) -> Any:
        """``model``'s bytes in the object store, once per distinct network (the reference is
        measured every round: it travels to the device's node once)."""
        data = model.SerializeToString()
        key = hashlib.sha256(data).digest()
        if key not in self._models:
            self._models[key] = self._ray.put(data)
            while len(self._models) > CACHED_MODELS:
                self._models.popitem(last=False)
        self._models.move_to_end(key)
        return self._models[key]

    def _call(self, method: str, *args: Any) -> Any:
        """``method`` of the actor; its own errors raised as they are, a lost actor as
        :class:`EngineError`."""
        ray = self._ray
        ref = getattr(self._actor, method).remote(*args)
        try:
            while not ray.wait([ref], timeout=POLL_SECONDS)[0]:
                if ray.cluster_resources().get(self.resource, 0) < 1:
                    raise EngineError(
                        f"the node that offers {self.resource!r} left the Ray cluster while "
                        f"measuring ({method}): bring it back (ray start ... --resources), "
                        "then continue the run"
                    )
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            _raise_cause(exc)
        except lost_worker_errors(ray) as exc:
            raise EngineError(
                f"the runner actor on {self.resource!r} ({self.where.get('host', '?')}) died "
                f"{self.restarts + 1} times while measuring ({type(exc).__name__}): check the "
                "node that owns the device (`ray status`), then continue the run"
            ) from exc


def _ray_running() -> bool:
    """Whether this process is connected to Ray already (without importing Ray needlessly)."""
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def _raise_cause(exc: Any) -> None:
    """Raise the error a Ray task raised (a runner's error keeps its type and exit code)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, NetAdaptError):
        raise cause from None
    raise exc.as_instanceof_cause() from None


def remote_runner_factory(measure_on: str, address: str | None) -> RunnerFactory:
    """What makes the target runner for ``--measure-on measure_on``; called like
    ``make_runner``."""

    def make(target: str, threads: int = 1, **options: object) -> Runner:
        resource = resolve_resource(measure_on, options)
        return RemoteRunner(target, threads, options, resource, address, DEFAULT_RESTARTS)

    return make
