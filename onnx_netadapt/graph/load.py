"""Load an ONNX model (file, bytes or proto) and normalise it into a ``LoadedModel``."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from onnx_netadapt.errors import ModelLoadError, UnsupportedModelError
from onnx_netadapt.graph import normalize
from onnx_netadapt.graph.large import is_large
from onnx_netadapt.graph.shapes import infer_shapes, static_dims
from onnx_netadapt.graph.weights import WeightComputation, trace_computed_weights

logger = logging.getLogger(__name__)

MIN_OPSET = 11
MAX_OPSET = 21


@dataclass
class LoadedModel:
    """A normalised private copy of a model, with the static shape of every tensor.

    Attributes:
        model: the normalised model (Constant weights as initializers, unshared initializers,
            constant shape computations folded, unique node names).
        shapes: static shape of every tensor name.
        opset: the default-domain opset.
        source: the file it came from, if any.
        notes: what normalisation changed, one line each.
        computed_weights: filter weights that the source computes at run time from stored
            tensors (folded here), keyed by the filter node's output tensor.
    """

    model: onnx.ModelProto
    shapes: dict[str, tuple[int, ...]]
    opset: int
    source: str | None = None
    notes: list[str] = field(default_factory=list)
    computed_weights: dict[str, WeightComputation] = field(default_factory=dict)

    @property
    def initializers(self) -> dict[str, onnx.TensorProto]:
        """Initializers by name (a fresh index; cheap)."""
        return {i.name: i for i in self.model.graph.initializer}


def parse_input_shape(spec: str) -> tuple[str, tuple[int, ...]]:
    """Parse ``NAME:1,3,224,224`` into ``("NAME", (1, 3, 224, 224))``.

    >>> parse_input_shape("input:1,3,224,224")
    ('input', (1, 3, 224, 224))
    """
    name, sep, dims = spec.rpartition(":")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        shape = ()
    if not sep or not name or not shape or any(d <= 0 for d in shape):
        raise UnsupportedModelError(
            f"cannot read input shape {spec!r}: write NAME:D1,D2,... with positive integers, "
            "e.g. --input-shape input:1,3,224,224"
        )
    return name, shape


def read_model(source: str | os.PathLike | bytes | onnx.ModelProto) -> onnx.ModelProto:
    """Read a model from a path, bytes or proto, as a private copy; clear errors otherwise."""
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
        return model
    if isinstance(source, bytes):
        try:
            return onnx.load_model_from_string(source)
        except Exception as exc:
            raise ModelLoadError(f"the bytes given are not an ONNX model ({exc})") from exc
    path = Path(source)
    if path.is_dir():
        hint = " (to continue a run, use --resume)" if (path / "state.json").exists() else ""
        raise ModelLoadError(f"{path} is a directory, not an ONNX model file{hint}")
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=True)
    except Exception as exc:
        raise ModelLoadError(_unreadable(path, exc)) from exc
    if not model.graph.node:
        raise ModelLoadError(f"{path} holds no ONNX graph (is it really an .onnx file?)")
    return model


# File signatures of what is most often given by mistake.
_SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"PK\x03\x04": "a zip archive (.npz, .pt, .zip)",
    b"\x1f\x8b": "a gzip archive",
    b"%PDF": "a PDF document",
    b"\x80": "a pickle (a PyTorch or scikit-learn file?)",
}


def _unreadable(path: Path, exc: Exception) -> str:
    """Why ``path`` cannot be parsed: not ONNX at all (what it looks like), or damaged ONNX."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    kind = next((name for sig, name in _SIGNATURES.items() if head.startswith(sig)), None)
    if kind is None and head and b"\0" not in head:
        try:
            head.decode("utf-8")
            kind = "a text file"
        except UnicodeDecodeError:
            pass
    if kind is not None:
        return f"{path} is not an ONNX model: it looks like {kind}"
    if head[:1] != b"\x08":  # a serialised ModelProto starts with its ir_version field
        return f"{path} is not an ONNX model (it does not start like one: {head[:8]!r})"
    return (
        f"{path} is not a readable ONNX model ({type(exc).__name__}: {exc}). It starts like "
        "one: check that the file is complete (not truncated) and that external-data files "
        "sit next to it."
    )


def default_opset(model: onnx.ModelProto) -> int:
    """The default-domain opset version of ``model``."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise UnsupportedModelError("the model imports no default ONNX opset")


def _apply_input_shapes(model: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]]) -> None:
    """Fix the shapes of graph inputs; every input must end up fully static."""
    inputs = {i.name: i for i in model.graph.input}
    for name, shape in input_shapes.items():
        if name not in inputs:
            raise UnsupportedModelError(
                f"--input-shape names {name!r}, but the model's inputs are {sorted(inputs)}"
            )
        dims = inputs[name].type.tensor_type.shape
        if len(dims.dim) and len(dims.dim) != len(shape):
            raise UnsupportedModelError(
                f"--input-shape gives {len(shape)} dims for {name!r}, "
                f"which has rank {len(dims.dim)}"
            )
        _check_fixed_dims(name, [d.dim_value if d.dim_value > 0 else None for d in dims.dim], shape)
        del dims.dim[:]
        for d in shape:
            dims.dim.add().dim_value = int(d)
    for vi in model.graph.input:
        if static_dims(vi.type) is None:
            shown = [
                d.dim_param or (d.dim_value if d.HasField("dim_value") else "?")
                for d in vi.type.tensor_type.shape.dim
            ]
            raise UnsupportedModelError(
                f"input {vi.name!r} has a dynamic shape {shown}; give a static one with "
                f"--input-shape {vi.name}:"
                + ",".join(str(d) if isinstance(d, int) and d > 0 else "N" for d in shown)
                + " (replace N by the size you deploy with, e.g. batch 1)"
            )


def _check_fixed_dims(name: str, declared: list[int | None], shape: Sequence[int]) -> None:
    """Only dynamic dimensions (None in ``declared``) may be set by --input-shape."""
    pairs = list(zip(declared, shape, strict=False))  # no declared dims: nothing is fixed
    for axis, (fixed, wanted) in enumerate(pairs):
        if fixed is not None and fixed != wanted:
            keep = ",".join(str(w if d is None else d) for d, w in pairs)
            raise UnsupportedModelError(
                f"--input-shape {name}:{','.join(map(str, shape))} sets dimension {axis} of "
                f"{name!r} to {wanted}, but the model fixes it at {fixed}: only dynamic "
                f"dimensions can be set (e.g. --input-shape {name}:{keep})"
            )


def _check(model: onnx.ModelProto, label: str | None) -> int:
    """The model's opset, once the ONNX checker (by path ``label`` for a large model) and the
    supported opset range have passed it."""
    try:
        if not is_large(model):
            onnx.checker.check_model(model)
        elif label is not None:
            onnx.checker.check_model(label)  # by path: the checker reads external data itself
    except Exception as exc:
        raise ModelLoadError(f"the model fails the ONNX checker: {exc}") from exc
    opset = default_opset(model)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UnsupportedModelError(
            f"the model uses opset {opset}; onnx-netadapt supports opsets {MIN_OPSET} to "
            f"{MAX_OPSET}. Convert it first, e.g. onnx.version_converter.convert_version(model, 17)"
        )
    return opset


def _normalise(
    model: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]], fold: bool
) -> tuple[onnx.ModelProto, list[str], dict[str, WeightComputation]]:
    """Normalise ``model`` (in place where it can; folding makes a new one): the model, notes
    of what changed, and the filter weights computed at run time."""
    notes: list[str] = []
    if n := normalize.drop_initializer_inputs(model):
        notes.append(f"{n} graph inputs that were initializers treated as constants")
    if n := normalize.unfix_nonpositive_dims(model):
        notes.append(f"{n} declared dims of -1 or 0 treated as dynamic")
    _apply_input_shapes(model, input_shapes)
    if n := normalize.constants_to_initializers(model):
        notes.append(f"{n} Constant nodes turned into initializers")
    computed = trace_computed_weights(model)
    if computed:
        notes.append(f"{len(computed)} filter weights computed at run time from stored tensors")
    if fold and not normalize.has_quantized_ops(model):
        before = len(model.graph.node)
        model = normalize.fold_constants(model)
        if n := before - len(model.graph.node):
            notes.append(f"{n} constant/shape nodes folded")
    if n := normalize.name_nodes(model):
        notes.append(f"{n} nodes named")
    if n := normalize.unshare_initializers(model):
        notes.append(f"{n} shared initializers given one copy per node")
    return model, notes, computed


def load_model(
    source: str | os.PathLike | bytes | onnx.ModelProto,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    fold: bool = True,
) -> LoadedModel:
    """Load and normalise a model for channel analysis and pruning.

    Args:
        source: a path to an .onnx file (external data beside it is loaded), bytes or a proto.
            A proto is copied; the caller's object is never changed.
        input_shapes: static shapes for graph inputs, required for dynamic dimensions.
        fold: fold constant and shape subgraphs into initializers (skipped for quantized graphs).

    Returns:
        The ``LoadedModel``.

    Raises:
        ModelLoadError: unreadable file or invalid ONNX.
        UnsupportedModelError: opset outside 11..21 or a dynamic input shape.

    >>> loaded = load_model("resnet18.onnx", {"input": (1, 3, 224, 224)})  # doctest: +SKIP
    """
    model = read_model(source)
    label = str(source) if isinstance(source, (str, os.PathLike)) else None
    opset = _check(model, label)
    model, notes, computed = _normalise(model, input_shapes or {}, fold)
    try:
        shapes = infer_shapes(model)
    except Exception as exc:
        raise UnsupportedModelError(
            f"cannot infer static shapes of the model ({type(exc).__name__}: {exc})"
        ) from exc
    for note in notes:
        logger.info("normalise: %s", note)
    return LoadedModel(
        model=model,
        shapes=shapes,
        opset=opset,
        source=label,
        notes=notes,
        computed_weights=computed,
    )
