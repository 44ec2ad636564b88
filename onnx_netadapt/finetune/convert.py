"""ONNX -> torch.fx.GraphModule with onnx2torch, after checking every node has a converter.

The module is converted from a private copy prepared for training: tensors whose rank ONNX shape
inference loses get their shape from one ONNX Runtime run (onnx2torch needs it for BatchNorm),
and Reshape shapes that pin the model's static batch size (``[1, -1]`` after a batch-1 export)
copy the batch axis instead (``[0, -1]``), so the module runs on batches of any size.
The initializer mapping used by :func:`~onnx_netadapt.finetune.writeback.write_back` is built
right after conversion and attached to the module.
"""

from __future__ import annotations

import logging

import onnx
from onnx import numpy_helper

from onnx_netadapt.errors import FineTuneError
from onnx_netadapt.finetune import converters
from onnx_netadapt.finetune._imports import import_onnx2torch
from onnx_netadapt.graph.ops import attr, set_attr
from onnx_netadapt.graph.probe import run_on_zeros
from onnx_netadapt.graph.shapes import static_dims

logger = logging.getLogger(__name__)

_DEFAULT_DOMAINS = ("", "ai.onnx")


def to_torch(model: onnx.ModelProto):
    """Convert ``model`` (normalised by ``load_model``) into a ``torch.fx.GraphModule``.

    The input proto is not modified. The returned module carries the initializer mapping
    (``onnx_netadapt_mapping``) that ``write_back`` uses; build it before any training.

    Raises:
        FineTuneError: an operator without converter (named with its node), or a conversion
            that fails.
    """
    import_onnx2torch()
    converters.register()
    check_supported(model)
    prepared = prepare(model)
    module = _convert(prepared)
    from onnx_netadapt.finetune.writeback import attach_mapping

    attach_mapping(prepared, module)
    return module


def unsupported_nodes(model: onnx.ModelProto) -> list[str]:
    """One line per node onnx2torch (with our converters) cannot convert."""
    from onnx2torch.node_converters.registry import get_converter

    opsets = {_domain(o.domain): int(o.version) for o in model.opset_import}
    problems = []
    for node in model.graph.node:
        domain = _domain(node.domain)
        label = f"{domain}:{node.op_type}" if domain else node.op_type
        version = opsets.get(domain)
        if version is None:
            problems.append(f"node {node.name!r} ({label}): its domain is not imported")
            continue
        try:
            get_converter(operation_type=node.op_type, version=version, domain=domain)
        except NotImplementedError:
            problems.append(f"node {node.name!r} ({label}, opset {version})")
    return problems


def check_supported(model: onnx.ModelProto) -> None:
    """Raise ``FineTuneError`` naming every node whose operator has no converter."""
    converters.register()
    problems = unsupported_nodes(model)
    if problems:
        shown = "; ".join(problems[:10]) + (
            f"; ... {len(problems) - 10} more" if len(problems) > 10 else ""
        )
        raise FineTuneError(
            f"cannot fine-tune: no PyTorch converter for {len(problems)} node(s): {shown}. "
            "Replace these operators before adapting (e.g. export the model with standard ONNX "
            "ops), or run without fine-tuning (--steps 0)."
        )


def prepare(model: onnx.ModelProto) -> onnx.ModelProto:
    """A private copy ready for conversion: complete ranks, batch-free Reshape shapes, the
    nodes our replacement converters take in their own domain."""
    prepared = onnx.ModelProto()
    prepared.CopyFrom(model)
    shapes = _complete_value_info(prepared)
    _free_batch(prepared, shapes)
    converters.reroute(prepared)  # nodes our converters take instead of onnx2torch's
    return prepared


def _domain(domain: str) -> str:
    return "" if domain in _DEFAULT_DOMAINS else domain


def _convert(model: onnx.ModelProto):
    """onnx2torch.convert, with any failure turned into a FineTuneError naming the node."""
    import onnx2torch

    try:
        return onnx2torch.convert(model, attach_onnx_mapping=True)
    except Exception as exc:
        node = _failing_node(model)
        where = f" at node {node.name!r} ({node.op_type})" if node is not None else ""
        raise FineTuneError(
            f"cannot convert the model to PyTorch{where}: {type(exc).__name__}: {exc}. "
            "Load the model with onnx_netadapt.load_model first (it turns Constant weights "
            "into initializers), or run without fine-tuning."
        ) from exc


def _failing_node(model: onnx.ModelProto) -> onnx.NodeProto | None:
    """The first node whose converter raises (a dry run, only on the error path)."""
    from onnx2torch.node_converters.registry import get_converter
    from onnx2torch.onnx_graph import OnnxGraph
    from onnx2torch.utils.safe_shape_inference import safe_shape_inference

    try:
        inferred = safe_shape_inference(model)
    except Exception:
        inferred = model
    graph = OnnxGraph(inferred.graph)
    opsets = {_domain(o.domain): int(o.version) for o in inferred.opset_import}
    for onnx_node in graph.nodes.values():
        try:
            converter = get_converter(
                operation_type=onnx_node.operation_type,
                version=opsets.get(_domain(onnx_node.domain), 1),
                domain=_domain(onnx_node.domain),
            )
            converter(onnx_node, graph)
        except Exception:
            return onnx_node.proto
    return None


def _complete_value_info(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Infer shapes into ``model.graph.value_info``; fill the gaps from one ORT run.

    Returns the static shape of every tensor known.
    """
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # keep what the model has; onnx2torch infers again
        logger.debug("shape inference failed before conversion: %s", exc)
        inferred = model
    known: dict[str, onnx.ValueInfoProto] = {}
    for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        if static_dims(vi.type) is not None:
            known[vi.name] = vi
    missing = [o for n in model.graph.node for o in n.output if o and o not in known]
    if missing:
        known.update(_value_info_from_ort(model, missing))
    outputs = {o.name for o in model.graph.output}
    inputs = {i.name for i in model.graph.input}
    del model.graph.value_info[:]
    model.graph.value_info.extend(
        vi for name, vi in known.items() if name not in outputs and name not in inputs
    )
    shapes = {name: static_dims(vi.type) for name, vi in known.items()}
    shapes.update({i.name: tuple(i.dims) for i in model.graph.initializer})
    return shapes


def _value_info_from_ort(
    model: onnx.ModelProto, names: list[str]
) -> dict[str, onnx.ValueInfoProto]:
    """Value infos (shape and type) of ``names`` from one ONNX Runtime run on zero inputs."""
    try:
        values = run_on_zeros(model, names)
    except Exception as exc:  # the converter may still manage without
        logger.debug("could not complete shapes with ONNX Runtime: %s", exc)
        return {}
    return {
        name: onnx.helper.make_tensor_value_info(
            name, onnx.helper.np_dtype_to_tensor_dtype(value.dtype), value.shape
        )
        for name, value in values.items()
    }


def _free_batch(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]]) -> int:
    """Let Reshapes that keep the batch axis copy it instead of pinning its static size.

    Only a Reshape whose input and output both start with the model's batch size ``N``, with
    a constant shape starting with ``N``, is changed (to 0 = copy, with ``allowzero=0``).
    Returns how many were changed.
    """
    batch = _static_batch(model)
    if batch is None:
        return 0
    inits = {i.name: i for i in model.graph.initializer}
    consumers: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    changed = 0
    for node in model.graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in inits:
            continue
        data_shape, out_shape = shapes.get(node.input[0]), shapes.get(node.output[0])
        init = inits[node.input[1]]
        shape = numpy_helper.to_array(init)
        if (
            not data_shape
            or not out_shape
            or data_shape[0] != batch
            or out_shape[0] != batch
            or shape.size == 0
            or int(shape[0]) != batch
            or 0 in shape.tolist()[1:]
            or consumers.get(node.input[1], 0) != 1
        ):
            continue
        shape = shape.copy()
        shape[0] = 0
        init.CopyFrom(numpy_helper.from_array(shape, init.name))
        if attr(node, "allowzero", 0):
            set_attr(node, "allowzero", 0)
        changed += 1
    if changed:
        logger.debug("%d Reshape shapes made batch-free for training", changed)
    return changed


def _static_batch(model: onnx.ModelProto) -> int | None:
    """The static size of axis 0 shared by every graph input, if any."""
    sizes = set()
    for vi in model.graph.input:
        dims = static_dims(vi.type)
        if not dims:
            return None
        sizes.add(dims[0])
    return sizes.pop() if len(sizes) == 1 else None
