"""What pruning must change, recorded by the channel rules as plain data.

``SliceSpec``: an initializer axis whose entries follow atoms (weights, biases, BN statistics,
per-channel constants). ``NodeEdit`` subclasses: node attributes or constant inputs that encode
channel counts (grouped-conv ``group``, Reshape/Resize/Expand shapes, Split sizes, Slice bounds).
``prune.apply`` carries them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Role = Literal["producer", "consumer", "follower"]


@dataclass(frozen=True)
class SliceSpec:
    """Entries of ``tensor`` along ``axis`` follow atoms.

    Attributes:
        tensor: initializer name.
        axis: the initializer's axis to slice.
        atoms: atoms over the layout axes aligned with the tensor; ``atoms_axis`` is the dim of
            ``atoms`` that corresponds to ``axis`` (the others are reduced with "any kept").
        role: producer (its filters create the channels), consumer (reads them as inputs),
            follower (per-channel parameters such as bias or BatchNorm statistics).
        node: the node that uses the tensor.
    """

    tensor: str
    axis: int
    atoms: np.ndarray
    atoms_axis: int
    role: Role
    node: str

    @classmethod
    def along(cls, tensor: str, axis: int, atoms: np.ndarray, role: Role, node: str) -> SliceSpec:
        """A slice whose atoms are one-dimensional (the common case)."""
        return cls(tensor, axis, np.asarray(atoms).reshape(-1), 0, role, node)


@dataclass(frozen=True)
class NodeEdit:
    """Base of the node rewrites pruning performs."""

    node: str


@dataclass(frozen=True)
class GroupAttrEdit(NodeEdit):
    """Grouped/depthwise Conv: ``group`` becomes (new input channels) / ``channels_per_group``;
    with ``groups`` (a grouped conv), the number of its ``groups`` conv-groups that keep an input
    channel (whole conv-groups or the same index of every group may have been removed)."""

    input_tensor: str
    channels_per_group: int
    groups: int = 0


@dataclass(frozen=True)
class ShapeInputEdit(NodeEdit):
    """A constant shape vector (Reshape shape, Resize sizes, Expand shape) holding channel counts.

    Entries aligned with channel-carrying axes of ``output_tensor`` that equal the original size
    are replaced by the pruned size; ``-1``, ``0`` and ``1`` entries are left alone.
    ``right_aligned`` is for broadcasting shapes (Expand).
    """

    input_index: int
    output_tensor: str
    right_aligned: bool = False


@dataclass(frozen=True)
class SplitEdit(NodeEdit):
    """Split on a channel axis: sizes become the pruned sizes of its outputs."""

    axis: int


@dataclass(frozen=True)
class SliceBoundsEdit(NodeEdit):
    """Slice on a channel axis (step 1): start/end are recomputed from the kept positions."""

    input_tensor: str
    axis: int
    start: int
    end: int
    entry: int  # position of this axis in the Slice's starts/ends vectors


@dataclass(frozen=True)
class GatherIndicesEdit(NodeEdit):
    """Gather on a channel axis with a constant index vector: indices are remapped to the kept
    positions (the index tensor has one dim over 1, ``vector_dim``)."""

    input_tensor: str
    vector_dim: int
