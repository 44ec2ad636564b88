"""The masked-original oracle: a pruned model must compute what the original computes once the
removed channels are cut off at their terminal consumers.

Zero the input weights of every consumer (Conv/Gemm/MatMul input channels) for the removed
channels in the original model: the removed channels then influence nothing, and the pruned model
must give the same outputs. This holds for every op that treats channels independently, so a
wrong rule anywhere shows up as a mismatch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from onnx_netadapt.channels.analysis import ChannelAnalysis
from onnx_netadapt.graph.large import ort_session
from onnx_netadapt.graph.probe import random_inputs
from onnx_netadapt.prune.apply import PruneResult

logger = logging.getLogger(__name__)


@dataclass
class OracleResult:
    """Outcome of comparing a pruned model with the masked original."""

    ok: bool
    max_abs_diff: float
    max_abs_reference: float

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "ok": self.ok,
            "max_abs_diff": self.max_abs_diff,
            "max_abs_reference": self.max_abs_reference,
        }


def masked_original(analysis: ChannelAnalysis, result: PruneResult) -> onnx.ModelProto:
    """The analysed model with the consumers' weights of removed channels set to zero."""
    atom_class = analysis.resolved.atom_class
    removed = np.zeros(atom_class.size, dtype=bool)
    for gid, kept in result.kept.items():
        group = analysis.groups[gid]
        removed[group.classes[np.setdiff1d(np.arange(group.units), kept)]] = True
    atom_removed = removed[atom_class]
    model = onnx.ModelProto()
    model.CopyFrom(analysis.loaded.model)
    inits = {i.name: i for i in model.graph.initializer}
    arrays: dict[str, np.ndarray] = {}
    for gid in result.kept:
        for spec in analysis.groups[gid].slices:
            if spec.role != "consumer":
                continue
            gone = atom_removed[spec.atoms]
            if gone.ndim > 1:  # an entry goes only when it goes with every atom it follows
                gone = gone.all(axis=tuple(a for a in range(gone.ndim) if a != spec.atoms_axis))
            if not gone.any():
                continue
            array = arrays.setdefault(spec.tensor, numpy_helper.to_array(inits[spec.tensor]).copy())
            index = [slice(None)] * array.ndim
            index[spec.axis] = np.nonzero(gone)[0]
            array[tuple(index)] = 0
    for name, array in arrays.items():
        inits[name].CopyFrom(numpy_helper.from_array(array, name))
    _mask_contractions(analysis, atom_removed, model)
    return model


def _mask_contractions(
    analysis: ChannelAnalysis, atom_removed: np.ndarray, model: onnx.ModelProto
) -> None:
    """Removed entries of an axis summed by a product of computed tensors (a head dimension of
    q @ k^T) reach no weight: multiply the operand by a 0/1 mask along that axis instead."""
    nodes = {n.name: n for n in model.graph.node}
    for index, spec in enumerate(analysis.contractions):
        gone = atom_removed[spec.atoms]
        if not gone.any():
            continue
        node = nodes[spec.node]
        operand = node.input[spec.input_index]
        shape = [1] * len(analysis.loaded.shapes[operand])
        shape[spec.axis] = gone.size
        mask = numpy_helper.from_array(
            (~gone).astype(np.float32).reshape(shape), f"oracle_mask_{index}"
        )
        model.graph.initializer.append(mask)
        masked = f"{operand}_oracle_masked_{index}"
        position = list(model.graph.node).index(node)
        model.graph.node.insert(
            position, onnx.helper.make_node("Mul", [operand, mask.name], [masked])
        )
        node.input[spec.input_index] = masked


def run_model(
    model: onnx.ModelProto, feeds: dict[str, np.ndarray], quiet: bool = False
) -> list[np.ndarray]:
    """Run ``model`` once in ONNX Runtime (CPU, all optimisations and pre-packing off, one
    thread); ``quiet``: ONNX Runtime logs nothing (a probe whose failure is expected)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.log_severity_level = 4 if quiet else 3
    # a constant weight is pre-packed, a computed one is not: the sums then round differently
    options.add_session_config_entry("session.disable_prepacking", "1")
    session = ort_session(model, options, ["CPUExecutionProvider"])
    return session.run(None, feeds)


def check_against_masked(
    analysis: ChannelAnalysis,
    result: PruneResult,
    seed: int = 0,
    rtol: float = 1e-4,
) -> OracleResult:
    """Run the pruned model and the masked original on the same random inputs and compare.

    The tolerance is relative to the largest output magnitude (summing fewer terms changes
    float rounding only).
    """
    feeds = random_inputs(analysis.loaded.model, seed)
    expected = run_model(masked_original(analysis, result), feeds)
    actual = run_model(result.model, feeds)
    worst = 0.0
    scale = 0.0
    for exp, act in zip(expected, actual, strict=False):
        if exp.shape != act.shape:
            return OracleResult(False, float("inf"), 0.0)
        if exp.size:
            worst = max(worst, float(np.max(np.abs(exp.astype(np.float64) - act))))
            scale = max(scale, float(np.max(np.abs(exp))))
    return OracleResult(worst <= rtol * max(1.0, scale), worst, scale)
