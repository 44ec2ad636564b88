"""Channel layouts: which channel ("atom") each position of a tensor's channel axes carries.

A producer (Conv, Gemm, ...) creates one fresh atom per output channel. Ops that move data
without mixing channels carry atoms along: elementwise ops keep them, Concat concatenates them,
Split/Slice take sub-ranges, Flatten repeats each atom over the spatial positions folded into
it, Transpose permutes the axes. A ``Layout`` records, for the axes that carry channels, the atom
at every position; the value of the tensor at a position depends on that atom's channel only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Reshape builds the full atom tensor of the reshaped dims; above this many elements we give up
# (the channels are then reported as unprunable rather than taking seconds of memory traffic).
MAX_RESHAPE_ELEMENTS = 64_000_000


@dataclass(frozen=True)
class Layout:
    """Atoms over the channel-carrying axes of one tensor.

    Attributes:
        axes: ascending tensor axes that carry channels (usually one, e.g. ``(1,)`` for NCHW).
        atoms: int64 array of shape ``[shape[a] for a in axes]``; the atom at each position.
    """

    axes: tuple[int, ...]
    atoms: np.ndarray

    def __post_init__(self) -> None:
        if list(self.axes) != sorted(set(self.axes)):
            raise ValueError(f"layout axes must be ascending and unique, got {self.axes}")
        if self.atoms.ndim != len(self.axes):
            raise ValueError("layout atoms must have one dim per axis")

    def moved(self, new_axes: tuple[int, ...]) -> Layout:
        """The same atoms on other axes (given in the order of the current axes)."""
        order = np.argsort(new_axes)
        return Layout(tuple(int(new_axes[i]) for i in order), np.transpose(self.atoms, order))

    def flat_atoms(self) -> np.ndarray:
        """All atoms, flattened."""
        return self.atoms.reshape(-1)


def full_atom_tensor(layout: Layout, shape: tuple[int, ...], start: int) -> np.ndarray:
    """Atoms broadcast over ``shape[start:]`` (the layout's axes must all be >= start)."""
    sub = shape[start:]
    view_shape = [1] * len(sub)
    for axis, size in zip(layout.axes, layout.atoms.shape, strict=False):
        view_shape[axis - start] = size
    return np.broadcast_to(layout.atoms.reshape(view_shape), sub)


def reduce_to_varying(full: np.ndarray, offset: int) -> Layout | None:
    """Layout over the axes along which ``full`` varies (axes numbered from ``offset``)."""
    varying = []
    reduced = full
    for axis in range(full.ndim):
        first = np.take(reduced, [0], axis=axis)
        if reduced.shape[axis] > 1 and not np.array_equal(
            reduced, np.broadcast_to(first, reduced.shape)
        ):
            varying.append(axis)
        else:
            reduced = first
    if not varying:
        return None
    atoms = np.ascontiguousarray(reduced).reshape([full.shape[a] for a in varying])
    return Layout(tuple(a + offset for a in varying), atoms.astype(np.int64, copy=False))


def align_to_output(layout: Layout, in_rank: int, out_rank: int) -> Layout:
    """Shift a layout for numpy-style broadcasting of a rank-``in_rank`` operand."""
    shift = out_rank - in_rank
    return Layout(tuple(a + shift for a in layout.axes), layout.atoms)
