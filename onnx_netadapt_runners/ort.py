"""ONNX Runtime runner: whole models, single-layer micro-models, and in-network profiling.

Threads (default 1), execution providers (CPU default) and the graph optimisation level are
those of the deployment being optimised for.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import onnx

from onnx_netadapt.graph.large import ort_session
from onnx_netadapt.graph.probe import random_inputs
from onnx_netadapt.measure.host import cpu_identity
from onnx_netadapt.measure.runner import Availability, NetworkProfile, Runner, RunnerError
from onnx_netadapt.measure.stats import (
    MeasureSettings,
    sample_alternating,
    sample_until_stable,
    time_ms,
)

logger = logging.getLogger(__name__)

OPT_LEVELS = ("disable", "basic", "extended", "all")
# ORT's layout conversions into and out of its blocked layout (NCHWc): runtime-internal time,
# never a filter layer's, though a ReorderOutput writes the layer's own output tensor
LAYOUT_REORDERS = ("ReorderInput", "ReorderOutput")


class OrtRunner(Runner):
    """Measure with ONNX Runtime on this machine."""

    name = "ort"
    summary = "ONNX Runtime on this machine (CPU by default; providers, threads, opt level)"

    def __init__(
        self,
        threads: int = 1,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
        optimization: str = "all",
        settings: MeasureSettings | None = None,
    ) -> None:
        super().__init__(settings)
        if optimization not in OPT_LEVELS:
            raise RunnerError(f"optimization must be one of {OPT_LEVELS}, got {optimization!r}")
        if threads < 1:
            raise RunnerError("threads must be at least 1")
        self.threads = int(threads)
        self.providers = tuple(providers)
        self.optimization = optimization

    @classmethod
    def availability(cls) -> Availability:
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            return Availability(
                False,
                f"onnxruntime cannot be imported ({exc})",
                "pip install -c constraints.txt onnxruntime",
            )
        return Availability(True)

    def _acquire(self) -> None:
        import onnxruntime as ort

        missing = [p for p in self.providers if p not in ort.get_available_providers()]
        if missing:
            raise RunnerError(
                f"ONNX Runtime here lacks execution providers {missing}; available: "
                f"{ort.get_available_providers()}"
            )

    def _fingerprint_impl(self) -> dict[str, object]:
        import onnxruntime as ort

        return {
            "device": f"{platform.machine()} {cpu_identity()}",
            "runtime": f"onnxruntime {ort.__version__}",
            "providers": ",".join(self.providers),
            "threads": self.threads,
            "optimization": self.optimization,
        }

    def session_options(self, profile_prefix: str | None = None):
        """Session options of this runner's deployment setting."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.optimization]
        options.log_severity_level = 3
        if profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        return options

    def _session(self, model: onnx.ModelProto, profile_prefix: str | None = None):

        try:
            return ort_session(model, self.session_options(profile_prefix), list(self.providers))
        except Exception as exc:
            raise RunnerError(f"ONNX Runtime cannot load the model: {exc}") from exc

    def _measure_impl(self, model: onnx.ModelProto) -> list[float]:
        session = self._session(model)
        feeds = random_inputs(model)
        return sample_until_stable(lambda: time_ms(lambda: session.run(None, feeds)), self.settings)

    def _alternate_impl(self, models: list[onnx.ModelProto]) -> list[list[float]]:
        sessions = [(self._session(m), random_inputs(m)) for m in models]
        runs = [
            lambda session=session, feeds=feeds: time_ms(lambda: session.run(None, feeds))
            for session, feeds in sessions
        ]
        return sample_alternating(runs, self.settings)

    def profile_layers(self, model: onnx.ModelProto, runs: int = 20) -> dict[str, float]:
        """Median per-node time (ms) inside the whole network, mapped back to ONNX node names
        (``profile_network``'s layers, without timing the run)."""
        return self._profile(model, runs, time_run=False).layers

    def profile_network(self, model: onnx.ModelProto, runs: int = 20) -> NetworkProfile:
        """Median per-node time (ms) inside the whole network, mapped back to ONNX node names,
        and the median time of as many runs of the same session once profiling has stopped."""
        return self._profile(model, runs, time_run=True)

    def _profile(self, model: onnx.ModelProto, runs: int, time_run: bool) -> NetworkProfile:
        """``runs`` profiled runs of one session; then, with ``time_run``, ``runs`` plain ones.

        ORT profiles the optimised graph: fused nodes are renamed after their output tensors
        (e.g. ``..._nchwc``) and a fused Conv+Relu reports under one name. Each profiled node is
        mapped to the original node that produces the same output tensor (or whose name a
        fused kernel carries, ``<node>/QuickGeluFusion/``), then walked back to the first node
        of a fused chain (the Conv), so layer times land on filter layers. Layout reorders
        (``LAYOUT_REORDERS``) keep their own names: runtime-internal time, also where one writes
        an original tensor.

        The run time comes from the same session (the same memory placement as the node
        times) but without the profiler's own cost per node, which the profiled runs'
        ``model_run`` times include (+38-48 % on MobileNetV2's estimates at keep 0.3 when
        the overhead was read off those: ``benchmarks/results/latency_fidelity/layouts``).
        """
        self._require_active()
        with tempfile.TemporaryDirectory() as tmp:
            optimized_path = os.path.join(tmp, "optimized.onnx")
            options = self.session_options(os.path.join(tmp, "profile"))
            options.optimized_model_filepath = optimized_path
            session = ort_session(model, options, list(self.providers))
            feeds = random_inputs(model)
            for _ in range(runs):
                session.run(None, feeds)
            trace_path = session.end_profiling()
            plain = [
                time_ms(lambda: session.run(None, feeds)) for _ in range(runs if time_run else 0)
            ]
            events = json.loads(Path(trace_path).read_text())
            optimized = onnx.load(optimized_path, load_external_data=False)
        layers = _map_profile(events, optimized, model, runs)
        return NetworkProfile(layers, float(np.median(plain)) if plain else None)


def _map_profile(
    events: list[dict], optimized: onnx.ModelProto, original: onnx.ModelProto, runs: int
) -> dict[str, float]:
    """Per original node: median over runs of the summed kernel time of the nodes mapped to it."""
    producer = {out: n.name for n in original.graph.node for out in n.output}
    single_input_chain = _fusion_parents(original)
    optimized_outputs = {n.name: list(n.output) for n in optimized.graph.node}
    node_names = {n.name for n in original.graph.node}
    reorders = {n.name for n in optimized.graph.node if n.op_type in LAYOUT_REORDERS}
    per_node: dict[str, list[float]] = {}
    for event in events:
        if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
            continue
        name = event["name"][: -len("_kernel_time")]
        if name in reorders:  # runtime-internal, whatever tensor it writes
            target = name
        else:
            target = _original_node(name, optimized_outputs.get(name, []), producer, node_names)
            while target in single_input_chain:
                target = single_input_chain[target]
        per_node.setdefault(target, []).append(float(event["dur"]) / 1000.0)
    # events come once per run and node: sum a node's events per run, take the median
    return {node: float(np.median(_per_run(times, runs))) for node, times in per_node.items()}


def _original_node(
    name: str, outputs: list[str], producer: dict[str, str], node_names: set[str]
) -> str:
    """The original node a profiled (possibly fused or renamed) node stands for."""
    if name in node_names:
        return name
    for out in outputs:
        if out in producer:
            return producer[out]
    for suffix in ("_nchwc", "_token"):
        base = name[: -len(suffix)] if name.endswith(suffix) else None
        if base is not None and base in producer:
            return producer[base]  # renamed after the original output tensor
        if base is not None and base in node_names:
            # renamed after a tensor ORT created for an original node: the transpose optimiser
            # moves a node across the Transposes around it (NHWC graphs, each Conv wrapped in
            # Transposes) and names its new output after the node
            return base
    head = name.rstrip("/")
    while "/" in head:  # a fused kernel named after the node it replaced, "<node>/<Fusion>/"
        head = head.rsplit("/", 1)[0]  # (EfficientNet's SiLU: "<Mul node>/QuickGeluFusion/")
        if head in node_names:
            return head
    return name  # an ORT-internal node: keep its own name


def _per_run(times: list[float], runs: int) -> list[float]:
    if runs <= 0 or len(times) < runs:
        return times
    chunk = len(times) // runs
    return [sum(times[i * chunk : (i + 1) * chunk]) for i in range(runs)]


def _fusion_parents(model: onnx.ModelProto) -> dict[str, str]:
    """Activation/BatchNorm node -> the filter node it is fused into (single-consumer chains)."""
    producer = {out: n for n in model.graph.node for out in n.output}
    uses: dict[str, int] = {}
    for n in model.graph.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    fusable = {
        "Relu",
        "Clip",
        "HardSwish",
        "Sigmoid",
        "BatchNormalization",
        "Add",
        "LeakyRelu",
        "HardSigmoid",
        "Tanh",
    }
    parents = {}
    for n in model.graph.node:
        if n.op_type in fusable and n.input and n.input[0] in producer:
            src = producer[n.input[0]]
            if uses.get(n.input[0], 0) == 1 and src.op_type in ("Conv", "Gemm", "MatMul", *fusable):
                parents[n.name] = src.name
    return parents
