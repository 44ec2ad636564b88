"""Where proposals are fine-tuned and scored: one module per engine, behind one interface.

- ``local`` (:mod:`.local`): this process, or a pool of spawned processes on this machine,
  each pinned to one device (a GPU each when there are GPUs);
- ``ray`` (:mod:`.ray_cluster`): Ray tasks on a local Ray instance or an existing cluster;
  with ``--measure-on`` the target runner lives in a Ray actor on the device's node
  (:mod:`.ray_runner`).

The loop only calls :func:`make_engine`, :func:`target_runner` and the :class:`~.base.Engine`
methods, so another engine is one more module here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from onnx_netadapt.engines.devices import DevicePlan, plan_devices

if TYPE_CHECKING:  # base imports the proposal types, which import the loop's package
    from onnx_netadapt.engines.base import Engine
    from onnx_netadapt.engines.ray_runner import RunnerFactory

ENGINES = ("local", "ray")
# Resources Ray declares itself (asked for with num_cpus/num_gpus): never a --measure-on.
RAY_BUILTIN_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory")

__all__ = ["ENGINES", "DevicePlan", "make_engine", "plan_devices", "target_runner"]


def make_engine(name: str, plan: DevicePlan, address: str | None = None) -> Engine:
    """The engine called ``name`` for ``plan`` (``address``: Ray cluster, None = local Ray).

    >>> engine = make_engine("local", plan_devices("cpu", workers=2))  # doctest: +SKIP
    """
    if name == "local":
        from onnx_netadapt.engines.local import LocalEngine

        return LocalEngine(plan)
    if name == "ray":
        from onnx_netadapt.engines.ray_cluster import RayEngine

        return RayEngine(plan, address)
    from onnx_netadapt.engines.base import EngineError

    raise EngineError(f"unknown engine {name!r}: use one of {', '.join(ENGINES)}")


def target_runner(measure_on: str | None, address: str | None = None) -> RunnerFactory | None:
    """What makes the target runner where ``--measure-on`` says (None: in this process, by
    ``make_runner``); ``measure_on`` needs the ``ray`` engine (``AdaptConfig.validate``)."""
    if measure_on is None:
        return None
    from onnx_netadapt.engines.ray_runner import remote_runner_factory

    return remote_runner_factory(measure_on, address)
