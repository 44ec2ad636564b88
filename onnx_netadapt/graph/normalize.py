"""Normalisation passes that make an exported ONNX graph prunable.

Each pass mutates the model it is given and returns how many things it changed, so the loader
can say what it did. They run on the loader's private copy, never on the user's model.
"""

from __future__ import annotations

import logging
from collections import Counter
from types import ModuleType

import onnx
from onnx import numpy_helper

from onnx_netadapt.graph.large import skeleton
from onnx_netadapt.graph.ops import QUANTIZED_OPS
from onnx_netadapt.graph.shapes import is_static_dim

logger = logging.getLogger(__name__)

_CONSTANT_VALUE_ATTRS = ("value_float", "value_floats", "value_int", "value_ints")


def name_nodes(model: onnx.ModelProto) -> int:
    """Give every unnamed (or duplicate-named) node a unique name; returns how many renamed."""
    seen: set[str] = set()
    renamed = 0
    for index, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            base = f"{node.op_type}_{index}"
            name = base
            while name in seen:
                name += "_"
            node.name = name
            renamed += 1
        seen.add(node.name)
    return renamed


def unfix_nonpositive_dims(model: onnx.ModelProto) -> int:
    """Make declared dims of -1 or 0 unknown (dynamic) in graph inputs, outputs and value_info.

    PaddlePaddle and some other exporters write a dynamic batch as ``dim_value: -1`` (or 0);
    taken literally, shape inference of the pruned model then fails ("Inferred shape and
    existing shape differ in dimension 0: (1) vs (-1)"). Returns the number of dims changed.
    """
    changed = 0
    for vi in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        if not vi.type.HasField("tensor_type"):
            continue
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and not is_static_dim(d):
                d.Clear()
                changed += 1
    return changed


def drop_initializer_inputs(model: onnx.ModelProto) -> int:
    """Remove graph inputs that are initializers (IR < 4 style), making them constants."""
    init_names = {i.name for i in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in init_names]
    dropped = len(model.graph.input) - len(keep)
    if dropped:
        del model.graph.input[:]
        model.graph.input.extend(keep)
    return dropped


def constants_to_initializers(model: onnx.ModelProto) -> int:
    """Turn ``Constant`` nodes of the main graph into initializers (Paddle-style weights)."""
    kept_nodes = []
    converted = 0
    for node in model.graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and len(node.output) == 1:
            tensor = _constant_tensor(node)
            if tensor is not None:
                tensor.name = node.output[0]
                model.graph.initializer.append(tensor)
                converted += 1
                continue
        kept_nodes.append(node)
    if converted:
        del model.graph.node[:]
        model.graph.node.extend(kept_nodes)
    return converted


def _constant_tensor(node: onnx.NodeProto) -> onnx.TensorProto | None:
    """The tensor a Constant node produces, or None for sparse/string forms we leave alone."""
    for a in node.attribute:
        if a.name == "value":
            t = onnx.TensorProto()
            t.CopyFrom(a.t)
            return t
        if a.name in _CONSTANT_VALUE_ATTRS:
            value = onnx.helper.get_attribute_value(a)
            import numpy as np

            dtype = np.float32 if a.name.startswith("value_float") else np.int64
            return numpy_helper.from_array(np.asarray(value, dtype=dtype))
    return None


def has_quantized_ops(model: onnx.ModelProto) -> bool:
    """True when the graph contains quantized operators (QDQ or QLinear*)."""
    return any(node.op_type in QUANTIZED_OPS for node in model.graph.node)


def fold_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Fold constant subgraphs and static ``Shape`` computations into initializers.

    Uses onnx-graphsurgeon (which evaluates constant subgraphs with ONNX Runtime). After it,
    Reshape/Resize/Slice parameters that the exporter computed from shapes are constants that
    the pruner can rewrite.
    """
    import onnx_graphsurgeon as gs
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)  # graphsurgeon evaluates with ORT: keep it quiet
    severity = gs.logger.G_LOGGER.severity
    gs.logger.G_LOGGER.severity = gs.logger.G_LOGGER.ERROR
    try:
        folded = _fold_to_fixed_point(model, gs)
    finally:
        gs.logger.G_LOGGER.severity = severity
    folded.ir_version = model.ir_version
    del folded.opset_import[:]
    folded.opset_import.extend(model.opset_import)
    folded.producer_name = model.producer_name
    folded.producer_version = model.producer_version
    del folded.metadata_props[:]
    folded.metadata_props.extend(model.metadata_props)
    return folded


def _fold_to_fixed_point(model: onnx.ModelProto, gs: ModuleType) -> onnx.ModelProto:
    """Fold with graphsurgeon until the node count stops changing."""
    folded = model
    # Folding one shape computation (e.g. TF-style "same" padding) reveals the shapes after
    # it, which lets the next one fold: repeat until nothing changes.
    for _ in range(32):
        nodes_before = len(folded.graph.node)
        # graphsurgeon folds Shape ops only where it knows the shapes: infer them first
        inferred = onnx.shape_inference.infer_shapes(skeleton(folded), data_prop=True)
        graph = gs.import_onnx(_with_shapes(folded, inferred))
        graph.fold_constants(fold_shapes=True, error_ok=True, flatten_subgraphs=False)
        graph.cleanup(remove_unused_graph_inputs=False).toposort()
        folded = gs.export_onnx(graph, do_type_check=False)
        del folded.graph.value_info[:]
        if len(folded.graph.node) == nodes_before:
            break
    return folded


def _with_shapes(model: onnx.ModelProto, inferred: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with the value_info of ``inferred`` (which may be a weightless skeleton)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.value_info[:]
    out.graph.value_info.extend(inferred.graph.value_info)
    return out


def unshare_initializers(model: onnx.ModelProto) -> int:
    """Give every node its own copy of an initializer that several node inputs share.

    Exporters deduplicate equal tensors; pruning or training one user must not change another.
    Scalars are left shared: they never carry channels. Returns the number of copies made.
    """
    inits = {i.name: i for i in model.graph.initializer}
    uses = Counter(name for node in model.graph.node for name in node.input if name in inits)
    copies = 0
    taken: set[str] = {i.name for i in model.graph.initializer}
    for node in model.graph.node:
        for k, name in enumerate(node.input):
            if uses.get(name, 0) <= 1 or _numel(inits[name]) <= 1:
                continue
            uses[name] -= 1  # the last user keeps the original
            new_name = f"{name}__{node.name}_{k}"
            while new_name in taken:
                new_name += "_"
            taken.add(new_name)
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[name])
            copy.name = new_name
            model.graph.initializer.append(copy)
            node.input[k] = new_name
            copies += 1
    return copies


def _numel(tensor: onnx.TensorProto) -> int:
    n = 1
    for d in tensor.dims:
        n *= int(d)
    return n
