"""The atom table: fresh atoms, the unions that couple them, and the marks that restrict them.

Rules only *record* facts here; ``resolve()`` turns the recorded unions into classes (atoms
that must be removed together) in one vectorised pass at the end of the analysis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Resolved:
    """Result of resolving the atom table.

    Attributes:
        atom_class: for each atom, the id of its class (the smallest atom id in the class).
        pinned: class id -> reasons why the class cannot be removed.
        approximate: class id -> reasons why removing it changes other channels' statistics.
    """

    atom_class: np.ndarray
    pinned: dict[int, list[str]]
    approximate: dict[int, list[str]]


class AtomTable:
    """Allocates atoms and records unions, pins and approximate marks."""

    def __init__(self) -> None:
        self._count = 0
        self._unions: list[tuple[np.ndarray, np.ndarray]] = []
        self._pins: list[tuple[np.ndarray, str]] = []
        self._approx: list[tuple[np.ndarray, str]] = []
        self._blocks: list[tuple[np.ndarray, int | None, int | None]] = []

    @property
    def count(self) -> int:
        """How many atoms were allocated."""
        return self._count

    def fresh(self, shape: int | tuple[int, ...]) -> np.ndarray:
        """Allocate new atoms, one per position of ``shape``."""
        size = int(np.prod(shape))
        atoms = np.arange(self._count, self._count + size, dtype=np.int64).reshape(shape)
        self._count += size
        return atoms

    def fresh_pinned(self, shape: int | tuple[int, ...], reason: str) -> np.ndarray:
        """Allocate atoms that can never be removed (constant channels, padding, ...)."""
        atoms = self.fresh(shape)
        self.pin(atoms, reason)
        return atoms

    def union(self, a: np.ndarray, b: np.ndarray) -> None:
        """Atoms at equal positions of ``a`` and ``b`` must be removed together."""
        a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
        a = a.reshape(-1)
        b = b.reshape(-1)
        different = a != b
        if different.any():
            self._unions.append((a[different], b[different]))

    def union_all(self, atoms: np.ndarray) -> None:
        """Every atom of ``atoms`` must be removed together with every other."""
        flat = np.asarray(atoms).reshape(-1)
        if flat.size > 1:
            self.union(flat[:1], flat[1:])

    def pin(self, atoms: np.ndarray, reason: str) -> None:
        """Mark atoms (and so their classes) as not removable, with a human-readable reason."""
        self._pins.append((np.unique(np.asarray(atoms).reshape(-1)), reason))

    def mark_approximate(self, atoms: np.ndarray, reason: str) -> None:
        """Mark atoms whose removal changes statistics shared with other channels."""
        self._approx.append((np.unique(np.asarray(atoms).reshape(-1)), reason))

    def require_block(
        self, atoms: np.ndarray, finest: int | None = None, counted: int | None = None
    ) -> None:
        """Atoms of a channel axis split into several axes (``[C] -> [H, D]``) must be pruned
        so that a rectangular block remains.

        Decided when resolving: if the other unions already make every class a set of whole
        lines across all axes but one (attention heads: every class is one head), nothing is
        added; otherwise the lines along the longest axis are coupled (a channel shuffle loses
        the same index of every stream). With ``finest`` (an axis), the axis whose lines leave
        the most classes is coupled instead, ``finest`` on a tie (grouped convs: whole
        conv-groups or the same index of every group, whichever the rest of the graph allows);
        ``counted`` limits the count to the first entries of the last axis (the inputs).
        """
        self._blocks.append((np.asarray(atoms), finest, counted))

    def resolve(self) -> Resolved:
        """Compute classes (connected components of the unions) and per-class marks."""
        labels = self._components()
        pending = list(self._blocks)
        while pending:
            unmet = [b for b in pending if not _is_block_structured(labels[b[0]])]
            if not unmet:
                break
            block, finest, counted = unmet[0]
            if finest is None:
                free = int(np.argmax(block.shape))
            else:
                counts = [_classes_with_lines(labels[block], a, counted) for a in range(block.ndim)]
                best = max(counts)
                free = finest if counts[finest] == best else counts.index(best)
            lines = np.moveaxis(block, free, 0).reshape(block.shape[free], -1)
            self.union(lines[:, :1], lines[:, 1:])
            labels = self._components()
            pending = unmet[1:]
        return Resolved(
            atom_class=labels,
            pinned=_class_reasons(labels, self._pins),
            approximate=_class_reasons(labels, self._approx),
        )

    def _components(self) -> np.ndarray:
        labels = np.arange(self._count, dtype=np.int64)
        if self._unions:
            left = np.concatenate([u[0] for u in self._unions])
            right = np.concatenate([u[1] for u in self._unions])
            labels = _connected_components(labels, left, right)
        return labels


def _is_block_structured(classes: np.ndarray) -> bool:
    """True when, along some axis, each class is constant over the other axes (every class
    is made of whole lines, so removing classes leaves a rectangular block)."""
    if classes.ndim < 2:
        return True
    for axis in range(classes.ndim):
        lines = np.moveaxis(classes, axis, 0).reshape(classes.shape[axis], -1)
        if np.array_equal(lines, np.broadcast_to(lines[:, :1], lines.shape)):
            return True
    return False


def _connected_components(labels: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Min-label propagation with pointer jumping; returns each node's smallest component id."""
    while True:
        low = np.minimum(labels[left], labels[right])
        before = labels.copy()
        np.minimum.at(labels, left, low)
        np.minimum.at(labels, right, low)
        # pointer jumping: follow labels to their own labels until stable
        while True:
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if np.array_equal(before, labels):
            return labels


def _classes_with_lines(classes: np.ndarray, axis: int, counted: int | None) -> int:
    """How many classes the first ``counted`` entries (last axis) of ``classes`` would hold once
    each line along ``axis`` is coupled."""
    unique, local = np.unique(classes, return_inverse=True)
    local = local.reshape(classes.shape)
    lines = np.moveaxis(local, axis, 0).reshape(classes.shape[axis], -1)
    left, right = np.broadcast_arrays(lines[:, :1], lines[:, 1:])
    merged = _connected_components(
        np.arange(unique.size, dtype=np.int64), left.reshape(-1), right.reshape(-1)
    )
    return int(np.unique(merged[local[..., :counted]]).size)


def _class_reasons(labels: np.ndarray, marks: list[tuple[np.ndarray, str]]) -> dict[int, list[str]]:
    """Map class id -> distinct reasons from a list of (atoms, reason) marks."""
    reasons: dict[int, list[str]] = {}
    for atoms, reason in marks:
        for cls in np.unique(labels[atoms]).tolist():
            bucket = reasons.setdefault(int(cls), [])
            if reason not in bucket:
                bucket.append(reason)
    return reasons
