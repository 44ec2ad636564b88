"""What a channel rule sees and records while the analysis walks the graph."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx

from onnx_netadapt.channels.atoms import AtomTable
from onnx_netadapt.channels.edits import NodeEdit, Role, SliceSpec
from onnx_netadapt.channels.layout import Layout
from onnx_netadapt.graph.ops import const_value

# How attention blocks are pruned: whole heads, or the same dimensions of every head.
ATTENTION_UNITS = ("heads", "dims")
DEFAULT_ATTENTION_UNITS = "heads"


@dataclass
class ProducerSpace:
    """Output channels created by one node (a Conv's filters, a Gemm's output features)."""

    node: str
    op_type: str
    tensor: str
    weight: str
    weight_axis: int
    atoms: np.ndarray


@dataclass(frozen=True)
class Contraction:
    """Input ``input_index`` of a product of computed tensors is summed over ``axis``, whose
    entries follow ``atoms``: a removed entry drops out of the sum (the oracle masks it there,
    since no weight reads it)."""

    node: str
    input_index: int
    axis: int
    atoms: np.ndarray


@dataclass
class AnalysisState:
    """Everything the rules accumulate over one walk of the graph."""

    model: onnx.ModelProto
    shapes: dict[str, tuple[int, ...]]
    constants: dict[str, onnx.TensorProto]
    consumers: dict[str, list[onnx.NodeProto]]
    producer_of: dict[str, onnx.NodeProto]
    table: AtomTable = field(default_factory=AtomTable)
    layouts: dict[str, Layout] = field(default_factory=dict)
    slices: list[SliceSpec] = field(default_factory=list)
    edits: list[NodeEdit] = field(default_factory=list)
    producers: list[ProducerSpace] = field(default_factory=list)
    unsupported: dict[str, str] = field(default_factory=dict)  # node name -> reason
    attention_units: str = DEFAULT_ATTENTION_UNITS  # one of ATTENTION_UNITS
    contractions: list[Contraction] = field(default_factory=list)
    head_dims: list[np.ndarray] = field(default_factory=list)  # atoms pruned per head dimension
    head_products: list[np.ndarray] = field(default_factory=list)  # atoms coupled per head


class RuleContext:
    """The view of one node given to its rule: inputs' layouts and helpers to record facts."""

    def __init__(self, node: onnx.NodeProto, state: AnalysisState, opset: int) -> None:
        self.node = node
        self.state = state
        self.opset = opset
        self.table = state.table

    # -- reading -------------------------------------------------------------------------
    def layout(self, index: int) -> Layout | None:
        """Layout of input ``index`` (None: no channels tracked, or input absent)."""
        if index >= len(self.node.input) or not self.node.input[index]:
            return None
        return self.state.layouts.get(self.node.input[index])

    def shape(self, name: str) -> tuple[int, ...]:
        """Static shape of a tensor."""
        return self.state.shapes[name]

    def in_shape(self, index: int) -> tuple[int, ...]:
        """Static shape of input ``index``."""
        return self.state.shapes[self.node.input[index]]

    def out_shape(self, index: int = 0) -> tuple[int, ...]:
        """Static shape of output ``index``."""
        return self.state.shapes[self.node.output[index]]

    def is_const(self, index: int) -> bool:
        """True when input ``index`` is an initializer."""
        return index < len(self.node.input) and self.node.input[index] in self.state.constants

    def const(self, index: int) -> np.ndarray | None:
        """Value of input ``index`` when it is an initializer."""
        return const_value(self.node, index, self.state.constants)

    def input_layouts(self) -> list[Layout]:
        """Layouts of all inputs that have one."""
        return [lay for i in range(len(self.node.input)) if (lay := self.layout(i)) is not None]

    # -- recording -----------------------------------------------------------------------
    def set_output(self, layout: Layout | None, index: int = 0) -> None:
        """Give output ``index`` a layout."""
        if layout is not None and index < len(self.node.output) and self.node.output[index]:
            self.state.layouts[self.node.output[index]] = layout

    def slice(self, input_index: int, axis: int, atoms: np.ndarray, role: Role) -> None:
        """Record that initializer input ``input_index`` is sliced along ``axis`` by ``atoms``."""
        self.state.slices.append(
            SliceSpec.along(self.node.input[input_index], axis, atoms, role, self.node.name)
        )

    def slice_nd(
        self, input_index: int, axis: int, atoms: np.ndarray, atoms_axis: int, role: Role
    ) -> None:
        """Like ``slice`` with multi-dimensional atoms (``atoms_axis`` matches ``axis``)."""
        self.state.slices.append(
            SliceSpec(self.node.input[input_index], axis, atoms, atoms_axis, role, self.node.name)
        )

    def edit(self, edit: NodeEdit) -> None:
        """Record a node rewrite for pruning."""
        self.state.edits.append(edit)

    def produce(self, channels: int, weight_index: int, weight_axis: int) -> np.ndarray:
        """Create fresh atoms for output channels made by this node's weight filters."""
        atoms = self.table.fresh(channels)
        self.slice(weight_index, weight_axis, atoms, "producer")
        self.state.producers.append(
            ProducerSpace(
                node=self.node.name,
                op_type=self.node.op_type,
                tensor=self.node.output[0],
                weight=self.node.input[weight_index],
                weight_axis=weight_axis,
                atoms=atoms,
            )
        )
        return atoms

    def pin_inputs(self, reason: str) -> None:
        """Pin the channels of every input that carries some (with ``reason``)."""
        for lay in self.input_layouts():
            self.table.pin(lay.atoms, reason)

    def describe(self) -> str:
        """``OpType 'name'`` for messages."""
        return f"{self.node.op_type} {self.node.name!r}"
