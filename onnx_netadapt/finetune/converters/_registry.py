"""Registration with onnx2torch through its public ``add_converter``, and the rerouting of the
nodes whose onnx2torch converter ours replaces.

``converts(op, *versions)`` registers a converter at its definition for the versions onnx2torch
has no converter for (a newer onnx2torch that brings its own keeps its own; the skip is logged).
``replaces(op, when)`` registers a converter under this package's own domain: ``reroute`` moves
the nodes ``when`` selects into that domain on the private copy that is converted, so
onnx2torch's converter of those nodes is never asked. onnx2torch's registry itself is only read
through ``get_converter`` and written through ``add_converter``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import onnx

from onnx_netadapt.finetune._imports import import_onnx2torch

import_onnx2torch()

from onnx2torch.node_converters.registry import add_converter, get_converter
from onnx2torch.onnx_graph import OnnxGraph
from onnx2torch.onnx_node import OnnxNode
from onnx2torch.utils.common import OperationConverterResult

logger = logging.getLogger(__name__)

Converter = Callable[[OnnxNode, OnnxGraph], OperationConverterResult]
# (node, default-domain opset) -> whether our replacement converter takes the node
Selector = Callable[[onnx.NodeProto, int], bool]

OWN_DOMAIN = "onnx_netadapt"  # no dot: onnx2torch prefixes module names with it
OWN_VERSION = 1
_DEFAULT_DOMAINS = ("", "ai.onnx")

ADDED: list[str] = []  # "Op-version" (or "Op@domain") of every converter registered here
_REROUTES: dict[str, Selector] = {}


def has_converter(op: str, version: int, domain: str = "") -> bool:
    """Whether onnx2torch (or this package) converts ``op`` at opset ``version``."""
    try:
        get_converter(operation_type=op, version=version, domain=domain)
    except NotImplementedError:
        return False
    return True


def add(op: str, version: int, converter: Converter) -> None:
    """Register ``converter`` for ``op``-``version`` unless one converts it already."""
    if has_converter(op, version):
        logger.debug("onnx2torch converts %s-%d already: ours is not registered", op, version)
        return
    add_converter(operation_type=op, version=version)(converter)
    ADDED.append(f"{op}-{version}")


def converts(op: str, *versions: int) -> Callable[[Converter], Converter]:
    """Decorator: register the converter for ``op`` at each of ``versions`` (see ``add``)."""

    def register(converter: Converter) -> Converter:
        for version in versions:
            add(op, version, converter)
        return converter

    return register


def replaces(op: str, when: Selector) -> Callable[[Converter], Converter]:
    """Decorator: the converter of the ``op`` nodes ``when`` selects, instead of onnx2torch's."""

    def register(converter: Converter) -> Converter:
        if op in _REROUTES:
            raise ValueError(f"a replacement converter of {op} is registered already")
        add_converter(operation_type=op, version=OWN_VERSION, domain=OWN_DOMAIN)(converter)
        _REROUTES[op] = when
        ADDED.append(f"{op}@{OWN_DOMAIN}")
        return converter

    return register


def delegate(op: str, version: int) -> Converter:
    """A converter that hands the node to the one registered for ``op``-``version``."""
    target = get_converter(operation_type=op, version=version)

    def convert(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
        return target(node, graph)

    return convert


def reroute(model: onnx.ModelProto) -> int:
    """Move the nodes a replacement converter takes into ``OWN_DOMAIN`` (in place: call it on
    the private copy that is converted). Returns how many moved."""
    opset = next((o.version for o in model.opset_import if o.domain in _DEFAULT_DOMAINS), 0)
    moved = 0
    for node in model.graph.node:
        when = _REROUTES.get(node.op_type)
        if node.domain in _DEFAULT_DOMAINS and when is not None and when(node, opset):
            node.domain = OWN_DOMAIN
            moved += 1
    if moved and all(o.domain != OWN_DOMAIN for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(OWN_DOMAIN, OWN_VERSION))
    return moved
