"""In-network kernel times of single layers: the layer between two 1x1 convs, profiled.

A runtime runs a lone layer differently than inside a network. ONNX Runtime on x86 converts a
lone conv's input to its blocked layout (NCHWc) and back; the conversion can cost as much as the
conv, and its cost is not monotone in channels (odd multiples of 8 are slower than multiples of
16), so the ratio of two micro-model times is not the ratio of the layer's times in a network.
Between two 1x1 convs the layer runs in the network's layout, and the runtime's profiler gives
its kernel time alone. These entries live in a ``LatencyTable`` of their own (the runner's
fingerprint plus ``entry: kernel-in-context``) and serve the "profile" estimate.

Cold entries (``evict_bytes``): inside a network the other layers run between two runs of a
layer and push its weights out of the caches, while a context model run again and again keeps
them there; a small layer with large weights (a pruned one) ran 30 % faster in its context
model than in a network on a busy machine (0.097 against 0.139 ms). A cold context model
streams ``evict_bytes`` through the caches first (one elementwise op on an input that large,
run before the layer); its entries live in a table of their own
(``entry: kernel-in-context-cold-<MiB>``). On a quiet machine, whose L3 keeps a pruned network's
weights, they made estimates worse (``benchmarks/results/latency_fidelity/layouts/``): off by
default, for machines whose caches other work evicts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from onnx_netadapt.measure.micromodel import onnx_layer_model
from onnx_netadapt.measure.runner import Runner
from onnx_netadapt.measure.signature import LayerSignature
from onnx_netadapt.measure.stats import LatencyStats
from onnx_netadapt.measure.table import LatencyTable

# Inputs with fewer channels than this are network inputs (images): no conv before the layer.
MIN_CONTEXT_CHANNELS = 8
# A kernel the profiler times at 0 (below its 1 us resolution) counts as this much (ms).
MIN_KERNEL_MS = 0.0005
LAYER_NODES = ("layer", "act")
# Profiles per entry, taken in rounds over the layers measured together.
ROUNDS = 3
# Cold entries: bytes streamed through the caches before the layer (more than a core's L2 and
# a good part of a shared L3).
EVICT_BYTES = 16 << 20
EVICT_NAME = "evict"
# With ``canary``: a fixed layer profiled in every round of entries, how fast the machine runs
# at that moment; entries are scaled to the speed of the table's first canary (its own entry).
CANARY = LayerSignature("Conv", 64, 64, (28, 28), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))


def context_layer_model(
    sig: LayerSignature, seed: int = 0, evict_bytes: int = 0
) -> onnx.ModelProto:
    """The micro-model of ``sig`` between two 1x1 convs (Gemm layers: the micro-model alone).

    The layer's nodes keep the micro-model's names ("layer", "act"); the context convs are
    "pre" and "post". With ``evict_bytes``, the first node ("evict") negates an input of that
    many bytes into an output of its own, evicting the layer's weights from the caches.
    """
    model = onnx_layer_model(sig, seed)
    if sig.op != "Gemm":
        model = _with_context(model, sig, seed)
    if evict_bytes > 0:
        _add_eviction(model, evict_bytes)
    return model


def _add_eviction(model: onnx.ModelProto, evict_bytes: int) -> None:
    """Prepend a Neg over a graph input of ``evict_bytes`` (float32) to ``model``."""
    graph = model.graph
    count = max(1, evict_bytes // 4)
    graph.input.append(helper.make_tensor_value_info("evict_in", onnx.TensorProto.FLOAT, [count]))
    graph.output.append(helper.make_tensor_value_info("evict_out", onnx.TensorProto.FLOAT, [count]))
    graph.node.insert(0, helper.make_node("Neg", ["evict_in"], ["evict_out"], name=EVICT_NAME))


def _with_context(model: onnx.ModelProto, sig: LayerSignature, seed: int) -> onnx.ModelProto:
    """``model`` (a conv micro-model) between the two 1x1 context convs."""
    rng = np.random.default_rng(seed + 1)
    graph = model.graph
    nodes = list(graph.node)
    inits = list(graph.initializer)
    if sig.in_channels >= MIN_CONTEXT_CHANNELS:
        w = rng.standard_normal((sig.in_channels, sig.in_channels, 1, 1)) * 0.1
        inits.append(numpy_helper.from_array(w.astype(np.float32), "pre_w"))
        for node in nodes:
            node.input[:] = ["x_pre" if name == "x" else name for name in node.input]
        pre = helper.make_node("Conv", ["x", "pre_w"], ["x_pre"], name="pre", kernel_shape=[1, 1])
        nodes.insert(0, pre)
    w = rng.standard_normal((sig.out_channels, sig.out_channels, 1, 1)) * 0.1
    inits.append(numpy_helper.from_array(w.astype(np.float32), "post_w"))
    nodes[-1].output[0] = "y_layer"
    nodes.append(
        helper.make_node("Conv", ["y_layer", "post_w"], ["y"], name="post", kernel_shape=[1, 1])
    )
    out = helper.make_graph(nodes, "context", list(graph.input), list(graph.output), inits)
    context = helper.make_model(out, opset_imports=list(model.opset_import))
    context.ir_version = model.ir_version
    return context


class KernelRunner:
    """Measures table entries as in-context kernel times, through ``runner.profile_layers``.

    It stands in for the runner in ``LatencyTable.lookup`` (which only calls
    ``measure_layers``).
    """

    def __init__(
        self, runner: Runner, rounds: int = ROUNDS, evict_bytes: int = 0, canary: bool = False
    ) -> None:
        self.runner = runner
        self.rounds = max(1, int(rounds))
        self.evict_bytes = max(0, int(evict_bytes))
        self.canary = canary
        self.table: LatencyTable | None = None  # holds the reference canary entry (canary)

    def fingerprint(self) -> dict[str, str]:
        """The runner's fingerprint, marked as kernel entries (cold ones with their size,
        canary-scaled ones as such). An entry holds no layout reorder the runtime adds around
        the layer (the ORT runner reports them apart, as runtime-internal nodes, since 29 Nov
        2026): ``layout_reorders: apart`` keeps tables of entries measured before apart."""
        entry = "kernel-in-context"
        if self.evict_bytes:
            entry += f"-cold-{self.evict_bytes / (1 << 20):g}MiB"
        if self.canary:
            entry += "-canary"
        return {**self.runner.fingerprint(), "entry": entry, "layout_reorders": "apart"}

    def measure_layers(
        self, signatures: Sequence[LayerSignature]
    ) -> dict[LayerSignature, LatencyStats]:
        """The profiled kernel time (ms) of each distinct layer in its context: the median of
        ``rounds`` profiles, taken in rounds over all the layers (one profile is a few
        milliseconds, so a moment of contention can inflate it; it rarely hits one layer in
        every round).

        With ``canary``, each round also profiles CANARY, and each layer's time in a round is
        scaled by the reference canary time over that round's: entries measured minutes apart
        on a machine whose speed drifts become comparable. The reference is the table's CANARY
        entry; the first measurement stores it (the median of its rounds)."""
        unique = list(dict.fromkeys(signatures))
        timed = [*unique, CANARY] if self.canary else unique
        models = {sig: context_layer_model(sig, evict_bytes=self.evict_bytes) for sig in timed}
        rounds: list[dict[LayerSignature, float]] = []
        for _ in range(self.rounds):
            round_ms = {}
            for sig in dict.fromkeys(timed):
                profile = self.runner.profile_layers(models[sig])
                ms = sum(profile.get(name, 0.0) for name in LAYER_NODES)
                round_ms[sig] = max(ms, MIN_KERNEL_MS)
            rounds.append(round_ms)
        out = {}
        if self.canary:
            stored = self.table.get(CANARY) if self.table is not None else None
            if stored is None:
                stored = out[CANARY] = LatencyStats.from_samples([r[CANARY] for r in rounds])
            scales = [stored.median_ms / r[CANARY] for r in rounds]
        else:
            scales = [1.0] * len(rounds)
        for sig in unique:
            out[sig] = LatencyStats.from_samples(
                [r[sig] * k for r, k in zip(rounds, scales, strict=True)]
            )
        return out


def kernel_table(
    runner: Runner, path: object = None, evict_bytes: int = 0, canary: bool = False
) -> tuple[LatencyTable, KernelRunner]:
    """The kernel-entry table of ``runner`` (in ``path``'s file beside its latency table);
    cold entries with ``evict_bytes``; entries scaled to a canary's speed with ``canary``."""
    kernels = KernelRunner(runner, evict_bytes=evict_bytes, canary=canary)
    table = LatencyTable(kernels.fingerprint(), path)
    kernels.table = table
    return table, kernels
