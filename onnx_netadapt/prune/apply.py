"""Apply a pruning plan: slice initializers, rewrite channel counts, return a new valid model.

>>> from onnx_netadapt import load_model, analyse, prune
>>> analysis = analyse(load_model("resnet18.onnx"))                # doctest: +SKIP
>>> result = prune(analysis, ratio=0.7)                            # doctest: +SKIP
>>> result.report["groups"][0]["channels_after"]                   # doctest: +SKIP
48
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from onnx_netadapt.channels.analysis import ChannelAnalysis, ChannelGroup
from onnx_netadapt.channels.edits import (
    GatherIndicesEdit,
    GroupAttrEdit,
    NodeEdit,
    ShapeInputEdit,
    SliceBoundsEdit,
    SliceSpec,
    SplitEdit,
)
from onnx_netadapt.errors import PruneError
from onnx_netadapt.graph.ops import set_attr
from onnx_netadapt.prune.ranking import (
    keep_every_part,
    top_units,
    unit_scores,
    units_for_ratio,
)

logger = logging.getLogger(__name__)

KeepSpec = int | Sequence[int] | np.ndarray


@dataclass
class PruneResult:
    """A pruned model and what was done to get it.

    Attributes:
        model: the new model (the analysed model is untouched).
        kept: group id -> kept unit indices.
        report: JSON-ready report (per group: channels before/after and every sliced tensor).
    """

    model: onnx.ModelProto
    kept: dict[int, np.ndarray]
    report: dict = field(default_factory=dict)


def plan_keep(
    analysis: ChannelAnalysis,
    keep: Mapping[int, KeepSpec] | None = None,
    ratio: float | None = None,
    round_to: int = 8,
    allow_approximate: bool = False,
) -> dict[int, np.ndarray]:
    """Kept unit indices per group from explicit keeps (count or indices) or a keep ratio."""
    if (keep is None) == (ratio is None):
        raise PruneError("give either keep (per group) or ratio, not both or neither")
    if ratio is not None:
        if not 0.0 < ratio <= 1.0:
            raise PruneError(
                f"ratio {ratio} is outside (0, 1]: it is the fraction of channels kept"
            )
        keep = {
            g.id: units_for_ratio(g, ratio, round_to)
            for g in analysis.groups
            if g.prunable_with(allow_approximate)
        }
    plan: dict[int, np.ndarray] = {}
    for gid, spec in (keep or {}).items():
        group = analysis.group(int(gid))
        _check_prunable(group, allow_approximate)
        if isinstance(spec, (int, np.integer)):
            count = int(spec)
            if not 1 <= count <= group.units:
                raise PruneError(
                    f"group {gid} has {group.units} units; cannot keep {count} (1..{group.units})"
                )
            scores = unit_scores(analysis, group)
            indices = keep_every_part(analysis, group, top_units(scores, count), scores)
        else:
            indices = np.unique(np.asarray(spec, dtype=np.int64))
            if indices.size == 0:
                raise PruneError(f"group {gid}: keeping no channel would remove the layer")
            if indices.min() < 0 or indices.max() >= group.units:
                raise PruneError(f"group {gid}: keep indices must be in 0..{group.units - 1}")
        plan[group.id] = indices
    return plan


def _check_prunable(group: ChannelGroup, allow_approximate: bool) -> None:
    if group.prunable_with(allow_approximate):
        return
    if group.status == "approximate":
        raise PruneError(
            f"group {group.id} is approximate ({group.reasons[0]}); allow approximate groups "
            "to prune it (--allow-approximate)"
        )
    raise PruneError(f"group {group.id} cannot be pruned: {'; '.join(group.reasons)}")


def prune(
    analysis: ChannelAnalysis,
    keep: Mapping[int, KeepSpec] | None = None,
    *,
    ratio: float | None = None,
    round_to: int = 8,
    allow_approximate: bool = False,
    check: bool = True,
) -> PruneResult:
    """Prune channel groups of an analysed model.

    Args:
        analysis: from ``analyse``.
        keep: group id -> number of units to keep (top by L2 norm) or explicit unit indices.
        ratio: instead of ``keep``: fraction of units to keep in every prunable group.
        round_to: grid (in channels) for ratio-based counts; never rounds to zero.
        allow_approximate: allow groups whose pruning changes other channels' statistics.
        check: run the ONNX checker and strict shape inference on the result.

    Returns:
        A ``PruneResult`` with a new model; ``analysis.loaded.model`` is not modified.
    """
    plan = plan_keep(analysis, keep, ratio, round_to, allow_approximate)
    atom_class = analysis.resolved.atom_class
    class_removed = np.zeros(atom_class.size, dtype=bool)
    for gid, kept in plan.items():
        group = analysis.groups[gid]
        removed = np.setdiff1d(np.arange(group.units), kept)
        class_removed[group.classes[removed]] = True
    atom_kept = ~class_removed[atom_class]

    groups = [analysis.groups[g] for g in plan]
    model = onnx.ModelProto()
    model.CopyFrom(analysis.loaded.model)
    cuts = _slice_initializers(model, _unique_specs(groups), atom_kept)
    tensors = set().union(*(g.tensors for g in groups)) if groups else set()
    new_shapes = _new_shapes(analysis, tensors, atom_kept)
    _apply_edits(
        model,
        analysis,
        [e for e in analysis.edits if _edit_touches(e, new_shapes)],
        new_shapes,
        atom_kept,
    )
    _update_value_info(model, new_shapes)
    if check:
        _check(model)
    report = _report(analysis, plan, cuts, atom_kept)
    return PruneResult(model=model, kept=plan, report=report)


def _unique_specs(groups: Iterable[ChannelGroup]) -> list[SliceSpec]:
    seen: set[int] = set()
    specs = []
    for group in groups:
        for spec in group.slices:
            if id(spec) not in seen:
                seen.add(id(spec))
                specs.append(spec)
    return specs


def _kept_along(spec: SliceSpec, atom_kept: np.ndarray) -> np.ndarray:
    mask = atom_kept[spec.atoms]
    if mask.ndim > 1:
        others = tuple(a for a in range(mask.ndim) if a != spec.atoms_axis)
        mask = mask.any(axis=others)
    return np.nonzero(mask)[0]


def _slice_initializers(
    model: onnx.ModelProto, specs: list[SliceSpec], atom_kept: np.ndarray
) -> list[tuple[SliceSpec, np.ndarray]]:
    """Slice every initializer axis in ``specs``; returns (spec, kept indices) of those cut."""
    per_tensor: dict[str, list[tuple[SliceSpec, np.ndarray]]] = {}
    for spec in specs:
        kept = _kept_along(spec, atom_kept)
        per_tensor.setdefault(spec.tensor, [])
        if any(s.axis == spec.axis for s, _ in per_tensor[spec.tensor]):
            continue
        per_tensor[spec.tensor].append((spec, kept))
    inits = {i.name: i for i in model.graph.initializer if i.name in per_tensor}
    done = []
    for name, cuts in per_tensor.items():
        array = numpy_helper.to_array(inits[name])
        changed = False
        for spec, kept in cuts:
            if kept.size != array.shape[spec.axis]:
                array = np.take(array, kept, axis=spec.axis)
                changed = True
            done.append((spec, kept))
        if changed:
            inits[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(array), name))
    return done


def _new_shapes(
    analysis: ChannelAnalysis, tensors: set[str], atom_kept: np.ndarray
) -> dict[str, tuple[int, ...]]:
    """Pruned static shape of each tensor in ``tensors`` whose channels change."""
    shapes = {}
    for name in tensors:
        lay = analysis.layouts[name]
        mask = atom_kept[lay.atoms]
        if mask.all():
            continue
        per_axis = [
            mask.any(axis=tuple(o for o in range(mask.ndim) if o != k)) for k in range(mask.ndim)
        ]
        product = per_axis[0]
        for extra in per_axis[1:]:
            product = np.multiply.outer(product, extra)
        if not np.array_equal(product, mask):
            raise PruneError(f"internal error: pruned channels of {name!r} are not a block")
        shape = list(analysis.loaded.shapes[name])
        for k, axis in enumerate(lay.axes):
            shape[axis] = int(per_axis[k].sum())
        shapes[name] = tuple(shape)
    return shapes


def _edit_touches(edit: NodeEdit, new_shapes: Mapping[str, tuple[int, ...]]) -> bool:
    if isinstance(edit, (GroupAttrEdit, SliceBoundsEdit, GatherIndicesEdit)):
        return edit.input_tensor in new_shapes
    if isinstance(edit, ShapeInputEdit):
        return edit.output_tensor in new_shapes
    return True  # SplitEdit: checked against its outputs when applied


def _apply_edits(
    model: onnx.ModelProto,
    analysis: ChannelAnalysis,
    edits: list[NodeEdit],
    new_shapes: Mapping[str, tuple[int, ...]],
    atom_kept: np.ndarray,
) -> None:
    nodes = {n.name: n for n in model.graph.node}
    shapes = analysis.loaded.shapes
    for edit in edits:
        node = nodes[edit.node]
        if isinstance(edit, GroupAttrEdit) and edit.groups:
            kept = atom_kept[analysis.layouts[edit.input_tensor].atoms].reshape(edit.groups, -1)
            set_attr(node, "group", int(kept.any(axis=1).sum()))
        elif isinstance(edit, GroupAttrEdit):
            channels = new_shapes[edit.input_tensor][1]
            set_attr(node, "group", channels // edit.channels_per_group)
        elif isinstance(edit, ShapeInputEdit):
            _edit_shape_input(
                model,
                node,
                edit,
                shapes[edit.output_tensor],
                new_shapes[edit.output_tensor],
                analysis,
            )
        elif isinstance(edit, SplitEdit):
            if any(o in new_shapes for o in node.output):
                sizes = [new_shapes.get(o, shapes[o])[edit.axis] for o in node.output]
                _set_split_sizes(model, node, sizes, analysis.loaded.opset)
        elif isinstance(edit, GatherIndicesEdit):
            kept = atom_kept[analysis.layouts[edit.input_tensor].atoms]
            new_position = np.cumsum(kept) - 1
            indices = numpy_helper.to_array(_init(model, node.input[1]))
            size = kept.size
            vector = np.where(indices < 0, indices + size, indices).reshape(-1)
            vector = new_position[vector[kept[vector]]].astype(indices.dtype)
            shape = list(indices.shape)
            shape[edit.vector_dim] = vector.size
            _replace_input(model, node, 1, vector.reshape(shape))
        elif isinstance(edit, SliceBoundsEdit):
            lay = analysis.layouts[edit.input_tensor]
            kept = atom_kept[lay.atoms]
            if kept.ndim > 1:  # the last of several channel axes (q|k|v of every head)
                kept = kept.reshape(-1, kept.shape[-1]).any(axis=0)
            start = int(kept[: edit.start].sum())
            end = start + int(kept[edit.start : edit.end].sum())
            for index, value in ((1, start), (2, end)):
                current = numpy_helper.to_array(_init(model, node.input[index])).copy()
                current.reshape(-1)[edit.entry] = value
                _replace_input(model, node, index, current)


def _edit_shape_input(
    model: onnx.ModelProto,
    node: onnx.NodeProto,
    edit: ShapeInputEdit,
    old_shape: tuple[int, ...],
    new_shape: tuple[int, ...],
    analysis: ChannelAnalysis,
) -> None:
    values = numpy_helper.to_array(_init(model, node.input[edit.input_index])).copy()
    flat = values.reshape(-1)
    shift = len(old_shape) - flat.size if edit.right_aligned else 0
    for k in range(flat.size):
        axis = k + shift
        if 0 <= axis < len(old_shape) and old_shape[axis] != new_shape[axis]:
            if int(flat[k]) == old_shape[axis]:
                flat[k] = new_shape[axis]
            elif int(flat[k]) not in (-1, 0, 1):
                raise PruneError(f"internal error: cannot rewrite shape of {node.name!r}")
    _replace_input(model, node, edit.input_index, values)


def _set_split_sizes(
    model: onnx.ModelProto, node: onnx.NodeProto, sizes: list[int], opset: int
) -> None:
    """Write explicit split sizes (attribute before opset 13, input from 13)."""
    for name in ("num_outputs", "split"):
        for i, a in enumerate(node.attribute):
            if a.name == name:
                del node.attribute[i]
                break
    if opset < 13:
        set_attr(node, "split", sizes)
        return
    value = np.asarray(sizes, dtype=np.int64)
    if len(node.input) < 2:
        node.input.append("")
    _replace_input(model, node, 1, value)


def _init(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    for init in model.graph.initializer:
        if init.name == name:
            return init
    raise PruneError(f"internal error: initializer {name!r} not found")


def _replace_input(
    model: onnx.ModelProto, node: onnx.NodeProto, index: int, value: np.ndarray
) -> None:
    """Point input ``index`` of ``node`` at a new initializer of its own holding ``value``."""
    name = f"{node.name}__in{index}__pruned"
    existing = [i for i in model.graph.initializer if i.name == name]
    tensor = numpy_helper.from_array(np.ascontiguousarray(value), name)
    if existing:
        existing[0].CopyFrom(tensor)
    else:
        model.graph.initializer.append(tensor)
    node.input[index] = name


def _update_value_info(model: onnx.ModelProto, new_shapes: Mapping[str, tuple[int, ...]]) -> None:
    for vi in [*model.graph.value_info, *model.graph.output, *model.graph.input]:
        shape = new_shapes.get(vi.name)
        if shape is None:
            continue
        dims = vi.type.tensor_type.shape.dim
        for d, value in zip(dims, shape, strict=False):
            d.Clear()
            d.dim_value = value


def _check(model: onnx.ModelProto) -> None:
    from onnx_netadapt.graph.large import is_large, skeleton

    try:
        if not is_large(model):
            onnx.checker.check_model(model)
        onnx.shape_inference.infer_shapes(skeleton(model), strict_mode=True, data_prop=True)
    except Exception as exc:
        raise PruneError(f"internal error: the pruned model is invalid: {exc}") from exc


def _report(
    analysis: ChannelAnalysis,
    plan: Mapping[int, np.ndarray],
    cuts: list[tuple[SliceSpec, np.ndarray]],
    atom_kept: np.ndarray,
) -> dict:
    """Per group: channels before/after, kept units, and every sliced initializer axis."""
    atom_class = analysis.resolved.atom_class
    groups = []
    for gid, kept in plan.items():
        group = analysis.groups[gid]
        classes = set(group.classes.tolist())
        slices = [
            {"tensor": spec.tensor, "axis": spec.axis, "kept": kept_idx.tolist(), "role": spec.role}
            for spec, kept_idx in cuts
            if classes & set(np.unique(atom_class[spec.atoms]).tolist())
        ]
        groups.append(
            {
                "id": gid,
                "status": group.status,
                "channels_before": group.channels,
                "channels_after": int(atom_kept[group.producers[0].atoms].sum()),
                "units_before": group.units,
                "units_after": int(kept.size),
                "kept_units": kept.tolist(),
                "producers": [p.node for p in group.producers],
                "slices": slices,
            }
        )
    return {"model": analysis.loaded.source, "groups": groups}
