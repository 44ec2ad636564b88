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

Entries by turns with a reference (``reference=True``, the default): what a pruning's estimate
needs of a layer's entries is the ratio of the pruned layer's to its original's, and on a shared
host one layer's in-context time moves by up to 1.8x from one second to the next (MobileNetV2's
144-channel depthwise conv: 0.24 or about 0.42 ms; 37 % of two minutes' profiles were slow, in
stretches of 20-30 s; ``benchmarks/entry_pairing.py``,
``benchmarks/results/latency_fidelity/noisy_host/``). A pruned layer's entry is therefore
profiled in the same rounds as its reference (the layer it was pruned from, whose entry the
table holds), right beside it, and stored as the median of the rounds' ratios times the
reference's stored entry: both come out of the same moments, and the ratio holds however fast
the host runs. Side by side matters: with a whole pruning's layers first and their references
after (2 s later for MobileNetV2), two runs' ratios of the same depthwise conv at half its
channels were 0.57 and 0.37; side by side, 0.53 (``benchmarks/entry_tables.py``). A pair takes
``TURNS`` rounds, and more, up to ``MAX_TURNS``, while its median ratio is uncertain: a small
layer's single-round ratio spreads by 13-38 % on the noisy host (``benchmarks/entry_order.py``).

The calibrated network's own layers are profiled once in each round of its in-network profile
(``profile_round``; ``strategies.ProfileStrategy(excess_by_turns=True)``): a unit's excess over
its kernel is read off profiles of the same moments (``calibration.pair_kernel_times``), and
the layers' entries the table lacks are the median of those rounds (``PairedKernels``' ``taken``)
rather than profiled alone again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
# Rounds of a pruned layer and its reference by turns (``KernelRunner.measure_layers``): on the
# noisy host, the median ratio of 3 rounds was off by 5.8 % on average, of 5 by 3.1 %; entries
# timed apart (medians of 3 rounds) by 27.8 % (``benchmarks/entry_pairing.py``).
TURNS = 5
# ... and more, up to MAX_TURNS, for the pairs whose median ratio's relative standard error
# (``median_ratio_se``) is still above TURNS_TARGET_SE: on the noisy host a single round's ratio
# spreads by 5-10 % for 0.6-1.3 ms convs and by 13-38 % for layers under 0.25 ms
# (``benchmarks/entry_order.py``), where five rounds leave the median off by about 11 %.
MAX_TURNS = 15
TURNS_TARGET_SE = 0.03
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
    ``measure_layers``); ``paired`` gives a stand-in that times each layer by turns with its
    reference.
    """

    def __init__(
        self,
        runner: Runner,
        rounds: int = ROUNDS,
        evict_bytes: int = 0,
        canary: bool = False,
        reference: bool = True,
        max_turns: int = MAX_TURNS,
    ) -> None:
        self.runner = runner
        self.rounds = max(1, int(rounds))
        self.max_turns = max(TURNS, self.rounds, int(max_turns))
        self.evict_bytes = max(0, int(evict_bytes))
        self.canary = canary
        self.reference = reference
        # the table the entries go to: it holds the canary's and the references' entries
        self.table: LatencyTable | None = None

    def fingerprint(self) -> dict[str, str]:
        """The runner's fingerprint, marked as kernel entries (cold ones with their size,
        canary-scaled ones as such). An entry holds no layout reorder the runtime adds around
        the layer (the ORT runner reports them apart, as runtime-internal nodes, since 29 Nov
        2026): ``layout_reorders: apart`` keeps tables of entries measured before apart; so
        does ``pruned_entries: by-turns`` (``reference``, since 30 Nov 2026)."""
        entry = "kernel-in-context"
        if self.evict_bytes:
            entry += f"-cold-{self.evict_bytes / (1 << 20):g}MiB"
        if self.canary:
            entry += "-canary"
        marks = {"layout_reorders": "apart"}
        if self.reference:
            marks["pruned_entries"] = "by-turns"
        return {**self.runner.fingerprint(), "entry": entry, **marks}

    def paired(
        self,
        references: Mapping[LayerSignature, LayerSignature],
        taken: Mapping[LayerSignature, Sequence[float]] | None = None,
    ) -> PairedKernels:
        """A stand-in for ``LatencyTable.lookup`` that times each layer of ``references`` (a
        pruned layer -> the layer it was pruned from) by turns with its reference (without
        ``reference``: the entries alone), and makes the entry of a layer in ``taken`` of its
        profiles already taken (``profile_round``; not with ``canary``, whose rounds scale)."""
        return PairedKernels(
            self, references if self.reference else {}, {} if self.canary else (taken or {})
        )

    def measure_layers(
        self,
        signatures: Sequence[LayerSignature],
        references: Mapping[LayerSignature, LayerSignature] | None = None,
    ) -> dict[LayerSignature, LatencyStats]:
        """The profiled kernel time (ms) of each distinct layer in its context: the median of
        ``rounds`` profiles, taken in rounds over all the layers (one profile is a few
        milliseconds, so a moment of contention can inflate it; it rarely hits one layer in
        every round).

        A layer with a reference in ``references`` is scaled to it instead: its entry is the
        median, over the rounds, of its time over the reference's in the same round, times the
        reference's stored entry (a reference the table lacks is measured first, alone, and
        returned too).

        With ``canary``, each round also profiles CANARY, and each layer's time in a round is
        scaled by the reference canary time over that round's: entries measured minutes apart
        on a machine whose speed drifts become comparable. The reference is the table's CANARY
        entry; the first measurement stores it (the median of its rounds)."""
        unique = list(dict.fromkeys(signatures))
        references = references or {}
        stored = {ref: self._stored(ref) for sig in unique if (ref := references.get(sig))}
        alone = [s for s in unique if s not in references or references[s] == s]
        alone += [ref for ref, entry in stored.items() if entry is None and ref not in alone]
        out = self._measure_alone(alone) if alone else {}
        by_turns = [s for s in unique if s not in alone]
        if by_turns:
            out.update(self._measure_by_turns(by_turns, references, stored, out))
        return out

    def _stored(self, sig: LayerSignature) -> LatencyStats | None:
        """``sig``'s entry in the table, if any."""
        return self.table.get(sig) if self.table is not None else None

    def profile_kernel(self, model: onnx.ModelProto) -> float:
        """The layer's profiled kernel time (ms) in one session of ``model``."""
        profile = self.runner.profile_layers(model)
        return max(sum(profile.get(name, 0.0) for name in LAYER_NODES), MIN_KERNEL_MS)

    def profile_round(self, signatures: Sequence[LayerSignature]) -> dict[LayerSignature, float]:
        """One profiled kernel time (ms) of each distinct layer in its context: no entry."""
        return self._rounds(list(dict.fromkeys(signatures)), 1)[0]

    def _context_models(
        self, signatures: Sequence[LayerSignature]
    ) -> dict[LayerSignature, onnx.ModelProto]:
        """The context model (``context_layer_model``) of each distinct signature."""
        unique = dict.fromkeys(signatures)
        return {sig: context_layer_model(sig, evict_bytes=self.evict_bytes) for sig in unique}

    def _rounds(
        self, timed: Sequence[LayerSignature], rounds: int
    ) -> list[dict[LayerSignature, float]]:
        """``rounds`` profiles of each of ``timed``, taken in rounds over all of them."""
        models = self._context_models(timed)
        return [{sig: self.profile_kernel(models[sig]) for sig in timed} for _ in range(rounds)]

    def _measure_alone(
        self, unique: Sequence[LayerSignature]
    ) -> dict[LayerSignature, LatencyStats]:
        """Entries of ``unique`` from their own rounds (canary-scaled with ``canary``)."""
        timed = [*unique, CANARY] if self.canary else list(unique)
        rounds = self._rounds(list(dict.fromkeys(timed)), self.rounds)
        out = {}
        if self.canary:
            stored = self._stored(CANARY)
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

    def _measure_by_turns(
        self,
        unique: Sequence[LayerSignature],
        references: Mapping[LayerSignature, LayerSignature],
        stored: Mapping[LayerSignature, LatencyStats | None],
        fresh: Mapping[LayerSignature, LatencyStats],
    ) -> dict[LayerSignature, LatencyStats]:
        """Entries of ``unique`` by their rounds' ratios to their references' (``stored``, or
        ``fresh`` where the table had none), times the references' entries.

        Each layer is profiled right beside its reference (a few tens of milliseconds apart,
        where a round over a network's layers takes seconds and the host changes speed within
        it), and its ratio is read off that reference profile: a reference shared by several
        pruned layers is profiled once for every two of them (``pair_chunks``). Every other
        round runs in reverse order. After ``TURNS`` rounds (or ``rounds``, if more), the pairs
        whose median ratio is still uncertain (``median_ratio_se`` over ``TURNS_TARGET_SE``)
        go on alone, up to ``max_turns`` rounds."""
        chunks = pair_chunks(unique, references)
        models = self._context_models([sig for chunk in chunks for sig in chunk])
        ratios: dict[LayerSignature, list[float]] = {sig: [] for sig in unique}
        pending, done = chunks, 0
        while pending:
            for chunk in list(reversed(pending)) if done % 2 else pending:
                order = chunk[::-1] if done % 2 else chunk
                ms = {sig: self.profile_kernel(models[sig]) for sig in order}
                for sig in chunk[::2]:  # (pruned, reference[, pruned])
                    ratios[sig].append(ms[sig] / ms[chunk[1]])
            done += 1
            if done >= max(self.rounds, TURNS):
                pending = [c for c in pending if done < self.max_turns and _unsettled(c, ratios)]
        out = {}
        for sig in unique:
            entry = (stored[references[sig]] or fresh[references[sig]]).median_ms
            out[sig] = LatencyStats.from_samples([r * entry for r in ratios[sig]])
        return out


def median_ratio_se(ratios: Sequence[float]) -> float:
    """The relative standard error of the median of ``ratios``: sqrt(pi / 2) times their
    spread (1.4826 times the median absolute deviation of their logarithms, an sd that one
    outlying round does not inflate) over the square root of their count."""
    logs = np.log(np.asarray(ratios, dtype=float))
    if logs.size < 2:
        return float("inf")
    spread = 1.4826 * float(np.median(np.abs(logs - np.median(logs))))
    return float(np.sqrt(np.pi / 2) * spread / np.sqrt(logs.size))


def _unsettled(
    chunk: Sequence[LayerSignature], ratios: Mapping[LayerSignature, Sequence[float]]
) -> bool:
    """Whether any pruned layer of ``chunk`` has a median ratio not yet within the target."""
    return any(median_ratio_se(ratios[sig]) > TURNS_TARGET_SE for sig in chunk[::2])


def pair_chunks(
    unique: Sequence[LayerSignature], references: Mapping[LayerSignature, LayerSignature]
) -> list[tuple[LayerSignature, ...]]:
    """The profiling order of ``unique``'s pruned layers by turns with their references: each
    reference between at most two of its pruned layers (``(pruned, reference[, pruned])``), so
    every pruned layer sits right beside a profile of its own reference."""
    groups: dict[LayerSignature, list[LayerSignature]] = {}
    for sig in unique:
        groups.setdefault(references[sig], []).append(sig)
    chunks = []
    for ref, pruned in groups.items():
        for i in range(0, len(pruned), 2):
            first, *second = pruned[i : i + 2]
            chunks.append((first, ref, *second))
    return chunks


class PairedKernels:
    """``KernelRunner.measure_layers`` with fixed references, for ``LatencyTable.lookup``;
    layers with profiles already taken get their entries from those."""

    def __init__(
        self,
        kernels: KernelRunner,
        references: Mapping[LayerSignature, LayerSignature],
        taken: Mapping[LayerSignature, Sequence[float]] | None = None,
    ) -> None:
        self.kernels = kernels
        self.references = references
        self.taken = {sig: list(ms) for sig, ms in (taken or {}).items() if ms}

    def measure_layers(
        self, signatures: Sequence[LayerSignature]
    ) -> dict[LayerSignature, LatencyStats]:
        """The entries of ``signatures``: the median of their taken profiles where there are
        any, else measured, by turns with their references where they have one."""
        out = {s: LatencyStats.from_samples(self.taken[s]) for s in signatures if s in self.taken}
        rest = [s for s in signatures if s not in out]
        if rest:
            out.update(self.kernels.measure_layers(rest, self.references))
        return out


def kernel_table(
    runner: Runner,
    path: object = None,
    evict_bytes: int = 0,
    canary: bool = False,
    reference: bool = True,
    max_turns: int = MAX_TURNS,
) -> tuple[LatencyTable, KernelRunner]:
    """The kernel-entry table of ``runner`` (in ``path``'s file beside its latency table);
    cold entries with ``evict_bytes``; entries scaled to a canary's speed with ``canary``;
    pruned layers' entries by turns with their references with ``reference``, in up to
    ``max_turns`` rounds."""
    kernels = KernelRunner(
        runner, evict_bytes=evict_bytes, canary=canary, reference=reference, max_turns=max_turns
    )
    table = LatencyTable(kernels.fingerprint(), path)
    kernels.table = table
    return table, kernels
