"""Filter weights computed at run time from stored tensors, traced before constant folding.

Exporters keep some weight computations in the graph: weight standardisation (timm's
``StdConv2d``/``ScaledStdConv2d`` as a training-mode BatchNormalization over the reshaped
weight, or ReduceMean/Sub/Div), weight normalisation (``g * v / ||v||``), re-parametrised
branches summed at run time (``w3x3 + pad(w1x1) + identity``), per-filter scales. Loading folds
them into plain weights; pruning the folded weight is exact only when every remaining weight is
unchanged by removing the pruned channels' stored parameters. That fails when the computation
normalises (reduces) over the channel axis: removing input channels changes the statistics of
the others (approximate), and a computation this module cannot follow is reported as such.

For every Conv / ConvTranspose / Gemm / MatMul whose weight is such a constant subgraph, the
weight's input- and output-channel axes are followed backwards through layout ops (Reshape,
Transpose, Squeeze, ...) and element-wise ops (with broadcasting); a reduction or normalisation
whose reduced axes carry one of them *mixes* those channels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from onnx_netadapt.graph.large import ort_session
from onnx_netadapt.graph.ops import attr, axes_of, normalize_axis

logger = logging.getLogger(__name__)

Roles = dict[str, frozenset[int]]  # "in"/"out" -> axes of a tensor that carry those channels
ROLE_WORDS = {"in": "input channels", "out": "output channels (filters)"}


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ELEMENTWISE = _names(
    "Add Sub Mul Div Pow Sqrt Reciprocal Neg Abs Exp Log Relu LeakyRelu PRelu Sigmoid Tanh "
    "Clip Max Min Sum Mean Sign Erf Softplus Softsign Where Floor Ceil Round Elu Selu "
    "HardSigmoid HardSwish Gelu Mish Equal Greater Less GreaterOrEqual LessOrEqual Not And Or "
    "Expand"
)
_LAYOUT = _names("Reshape Flatten Squeeze Unsqueeze Identity Cast Dropout")
_REDUCE = _names(
    "ReduceMean ReduceSum ReduceSumSquare ReduceL1 ReduceL2 ReduceMax ReduceMin ReduceProd "
    "ReduceLogSum ReduceLogSumExp"
)
_SHAPE_ONLY = _names("Shape Size Constant ConstantOfShape Range")
_RANDOM = _names("RandomNormal RandomUniform RandomNormalLike RandomUniformLike Multinomial")


@dataclass(frozen=True)
class WeightComputation:
    """How one filter node's weight is computed from stored tensors.

    Attributes:
        node: the filter node's name when traced (for messages).
        weight_index: which input of the node is the computed weight.
        axes: the weight's axis of each role ("in": input channels, "out": output channels).
        mixes: role -> the op that normalises (reduces) over those channels.
        unknown: why the computation could not be followed (None when it could).
    """

    node: str
    weight_index: int
    axes: dict[str, int]
    mixes: dict[str, str] = field(default_factory=dict)
    unknown: str | None = None

    def reason(self, role: str) -> str:
        """The user-facing reason why pruning ``role`` channels of this weight is not exact."""
        if self.unknown is not None:
            return self.unknown
        return (
            f"{self.node!r} normalises its weight over its {ROLE_WORDS[role]} at run time "
            f"({self.mixes[role]}): removing some would change the statistics of the others, "
            "while the pruned model keeps their weights fixed as folded (fine-tuning recovers)"
        )


class _Unfollowable(Exception):
    """The weight computation uses something this module cannot follow."""


def weight_axes(node: onnx.NodeProto, weight_rank: int) -> tuple[int, dict[str, int]] | None:
    """(weight input index, {"in": axis, "out": axis}) of a filter node, None for other ops."""
    if node.op_type == "Conv":
        return 1, {"in": 1, "out": 0}
    if node.op_type == "ConvTranspose":
        return 1, {"in": 0, "out": 1}
    if node.op_type == "Gemm":
        return 1, ({"in": 1, "out": 0} if int(attr(node, "transB", 0)) else {"in": 0, "out": 1})
    if node.op_type == "MatMul" and weight_rank >= 2:
        return 1, {"in": weight_rank - 2, "out": weight_rank - 1}
    return None


def trace_computed_weights(model: onnx.ModelProto) -> dict[str, WeightComputation]:
    """Filter nodes whose weight is computed from stored tensors only, keyed by output name.

    Run before constant folding (after Constant nodes became initializers). Returns {} without
    running anything when no filter weight is computed.
    """
    inits = {i.name: i for i in model.graph.initializer}
    constant = _constant_tensors(model, set(inits))
    candidates = [
        n
        for n in model.graph.node
        if n.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul")
        and len(n.input) > 1
        and n.input[1] not in inits
        and n.input[1] in constant
        and n.output
    ]
    if not candidates:
        return {}
    try:
        shapes, dtypes = _shapes_and_types(model, [n.input[1] for n in candidates], constant)
    except Exception as exc:  # an op ORT cannot run: nothing can be followed
        logger.info("cannot evaluate the run-time weight computations: %s", exc)
        shapes, dtypes = {}, {}
    graph = _Graph(model, inits, shapes, dtypes)
    found: dict[str, WeightComputation] = {}
    for node in candidates:
        found[node.output[0]] = graph.trace(node)
        logger.info("run-time weight of %s %r: %s", node.op_type, node.name, found[node.output[0]])
    return found


def _constant_tensors(model: onnx.ModelProto, inits: set[str]) -> set[str]:
    """Tensors computed from initializers only (by nodes without inputs or on constants)."""
    constant = set(inits)
    for node in model.graph.node:
        if node.op_type in _RANDOM:
            continue
        if all(i in constant for i in node.input if i):
            constant.update(o for o in node.output if o)
    return constant


def _shapes_and_types(
    model: onnx.ModelProto, weights: list[str], constant: set[str]
) -> tuple[dict[str, tuple[int, ...]], dict[str, int]]:
    """Shapes and element types of every tensor the computed ``weights`` depend on.

    The subgraph is constant: evaluating it once in ONNX Runtime gives them all (ONNX shape
    inference leaves some unknown, e.g. a Reshape whose shape passes through an Identity).
    """
    import onnxruntime as ort

    producer = {o: n for n in model.graph.node for o in n.output if o}
    needed: set[str] = set()
    stack = list(weights)
    while stack:
        name = stack.pop()
        if name in needed or name not in constant:
            continue
        needed.add(name)
        if name in producer:
            stack.extend(i for i in producer[name].input if i)
    nodes = [n for n in model.graph.node if any(o in needed for o in n.output)]
    outputs = [o for n in nodes for o in n.output if o]
    sub = onnx.helper.make_graph(
        nodes,
        "weights",
        [],
        [onnx.ValueInfoProto(name=o) for o in outputs],
        [i for i in model.graph.initializer if i.name in needed],
    )
    probe = onnx.helper.make_model(sub, opset_imports=model.opset_import)
    probe.ir_version = model.ir_version
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    values = ort_session(probe, options, ["CPUExecutionProvider"]).run(outputs, {})
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, int] = {}
    for init in model.graph.initializer:
        if init.name in needed:
            shapes[init.name] = tuple(int(d) for d in init.dims)
            dtypes[init.name] = init.data_type
    for name, value in zip(outputs, values, strict=True):
        shapes[name] = tuple(int(d) for d in np.shape(value))
        dtypes[name] = onnx.helper.np_dtype_to_tensor_dtype(np.asarray(value).dtype)
    return shapes, dtypes


class _Graph:
    """Backward walk over the constant subgraph of one weight at a time."""

    def __init__(
        self,
        model: onnx.ModelProto,
        inits: Mapping[str, onnx.TensorProto],
        shapes: Mapping[str, tuple[int, ...]],
        dtypes: Mapping[str, int],
    ) -> None:
        self.nodes = list(model.graph.node)
        self.index = {id(n): k for k, n in enumerate(self.nodes)}
        self.producer = {o: n for n in self.nodes for o in n.output if o}
        self.inits = inits
        self.shapes = shapes
        self.dtypes = dtypes
        self.opset = next(
            (int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 17
        )

    def trace(self, filter_node: onnx.NodeProto) -> WeightComputation:
        """What removing channels of ``filter_node``'s computed weight changes."""
        weight = filter_node.input[1]
        try:
            rank = len(self._shape(weight))
            index, axes = weight_axes(filter_node, rank) or (1, {})
            if not axes:
                raise _Unfollowable(f"{filter_node.op_type} with a rank-{rank} weight")
            mixes = self._walk(weight, axes)
        except _Unfollowable as exc:
            reason = (
                f"{filter_node.name!r} computes its weight at run time through {exc}, which "
                "onnx-netadapt cannot follow: it cannot tell which weights pruning changes"
            )
            return WeightComputation(filter_node.name, 1, {}, unknown=reason)
        return WeightComputation(filter_node.name, index, axes, mixes)

    def _shape(self, name: str) -> tuple[int, ...]:
        if name not in self.shapes:
            raise _Unfollowable(f"tensor {name!r} of unknown shape")
        return self.shapes[name]

    def _ancestors(self, tensor: str) -> list[onnx.NodeProto]:
        """Nodes the tensor depends on, consumers before producers."""
        seen: dict[int, onnx.NodeProto] = {}
        stack = [tensor]
        while stack:
            node = self.producer.get(stack.pop())
            if node is None or id(node) in seen:
                continue
            seen[id(node)] = node
            stack.extend(i for i in node.input if i)
        return sorted(seen.values(), key=lambda n: -self.index[id(n)])

    def _walk(self, weight: str, axes: Mapping[str, int]) -> dict[str, str]:
        """Follow the roles back from the weight over the inputs that reach it (the live ones).

        Returns role -> the reduction that mixes those channels. A reduction mixes a role when
        its input carries that role along a reduced axis; where the role's axis of that input is
        not known (it reaches the weight only through reductions, e.g. the exporter's
        transposed copy of a weight that the statistics are computed from), it is assumed to
        mix whenever the reduced extent could hold the channels (a multiple of their count).
        """
        channels = {r: self._shape(weight)[a] for r, a in axes.items()}
        roles: dict[str, Roles] = {weight: {r: frozenset([a]) for r, a in axes.items()}}
        live = {weight}
        reductions: list[tuple[str, frozenset[int], str]] = []
        for node in self._ancestors(weight):
            if not any(o in live for o in node.output):
                continue
            if any(o in live for o in node.output[1:]):
                raise _Unfollowable(f"a second output of {node.op_type} {node.name!r}")
            for name, mapped in self._inputs(node, roles.get(node.output[0], {}), reductions):
                live.add(name)
                merged = dict(roles.get(name, {}))
                for role, axes_set in mapped.items():
                    merged[role] = merged.get(role, frozenset()) | axes_set
                roles[name] = merged
        mixes: dict[str, str] = {}
        for tensor, reduced, label in reductions:
            shape = self._shape(tensor)
            extent = int(np.prod([shape[a] for a in reduced])) if reduced else 1
            for role, count in channels.items():
                known = roles.get(tensor, {}).get(role)
                mixed = bool(known & reduced) if known else extent % count == 0
                if count > 1 and mixed and role not in mixes:
                    mixes[role] = label
        return mixes

    def _inputs(
        self,
        node: onnx.NodeProto,
        out_roles: Roles,
        reductions: list[tuple[str, frozenset[int], str]],
    ) -> list[tuple[str, Roles]]:
        """Roles of ``node``'s inputs given its output's, recording the reductions it does."""
        op = node.op_type
        label = f"{op} {node.name!r}"
        if op in _SHAPE_ONLY:
            return []
        handler = _HANDLERS.get(op) if node.domain in ("", "ai.onnx") else None
        if handler is None:
            if self._is_float(node.output[0]):
                raise _Unfollowable(label)
            return []  # integer side computations (shapes, indices) carry no weights
        out_shape = self._shape(node.output[0])
        return handler(self, node, out_roles, out_shape, reductions, label)

    def _is_float(self, name: str) -> bool:
        dtype = self.dtypes.get(name, onnx.TensorProto.FLOAT)
        return dtype in (
            onnx.TensorProto.FLOAT,
            onnx.TensorProto.DOUBLE,
            onnx.TensorProto.FLOAT16,
            onnx.TensorProto.BFLOAT16,
            onnx.TensorProto.UNDEFINED,
        )

    def const_array(self, name: str) -> np.ndarray | None:
        init = self.inits.get(name)
        return None if init is None else numpy_helper.to_array(init)


Handler = Callable[
    [_Graph, onnx.NodeProto, Roles, tuple[int, ...], list, str], list[tuple[str, Roles]]
]
_HANDLERS: dict[str, Handler] = {}


def _handles(*ops: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for op in ops:
            _HANDLERS[op] = fn
        return fn

    return register


def _broadcast(roles: Roles, out_shape: tuple[int, ...], in_shape: tuple[int, ...]) -> Roles:
    """Roles of an operand broadcast (numpy rules) to ``out_shape``."""
    shift = len(out_shape) - len(in_shape)
    mapped: Roles = {}
    for role, axes in roles.items():
        kept = frozenset(
            a - shift
            for a in axes
            if a >= shift and (in_shape[a - shift] != 1 or out_shape[a] == 1)
        )
        if kept:
            mapped[role] = kept
    return mapped


def _reshaped(roles: Roles, out_shape: tuple[int, ...], in_shape: tuple[int, ...]) -> Roles:
    """Roles of the input of a reshape: the input axes whose elements overlap each role axis."""

    def spans(shape: tuple[int, ...]) -> list[tuple[int, int]]:
        out, inner = [], 1
        for size in reversed(shape):
            out.append((inner, inner * size))
            inner *= size
        return out[::-1]

    out_spans, in_spans = spans(out_shape), spans(in_shape)
    mapped: Roles = {}
    for role, axes in roles.items():
        hit = set()
        for a in axes:
            lo, hi = out_spans[a]
            if hi > lo:
                hit |= {
                    b
                    for b, (blo, bhi) in enumerate(in_spans)
                    if bhi > blo and blo < hi and lo < bhi
                }
        if hit:
            mapped[role] = frozenset(hit)
    return mapped


@_handles(*_ELEMENTWISE)
def _elementwise(g, node, out_roles, out_shape, reductions, label):
    data = node.input[:1] if node.op_type == "Expand" else node.input
    return [(i, _broadcast(out_roles, out_shape, g._shape(i))) for i in data if i]


@_handles(*_LAYOUT)
def _layout(g, node, out_roles, out_shape, reductions, label):
    return [(node.input[0], _reshaped(out_roles, out_shape, g._shape(node.input[0])))]


@_handles("Transpose")
def _transpose(g, node, out_roles, out_shape, reductions, label):
    perm = attr(node, "perm") or list(reversed(range(len(out_shape))))
    return [
        (node.input[0], {r: frozenset(int(perm[a]) for a in axes) for r, axes in out_roles.items()})
    ]


@_handles("MatMul")
def _matmul(g, node, out_roles, out_shape, reductions, label):
    """A @ B (low-rank factorised weights): rows follow A, columns follow B, K is contracted."""
    a_shape, b_shape = g._shape(node.input[0]), g._shape(node.input[1])
    if len(a_shape) < 2 or len(b_shape) < 2:
        raise _Unfollowable(f"{label} of vectors")
    rank = len(out_shape)
    reductions.append((node.input[0], frozenset([len(a_shape) - 1]), label))
    reductions.append((node.input[1], frozenset([len(b_shape) - 2]), label))
    found = []
    for name, shape, own in (
        (node.input[0], a_shape, rank - 2),
        (node.input[1], b_shape, rank - 1),
    ):
        batch = {r: frozenset(a for a in axes if a < rank - 2) for r, axes in out_roles.items()}
        mapped = _broadcast(
            {r: axes for r, axes in batch.items() if axes}, out_shape[:-2], shape[:-2]
        )
        for r, axes in out_roles.items():
            if own in axes:
                mapped[r] = mapped.get(r, frozenset()) | {len(shape) - (rank - own)}
        found.append((name, mapped))
    return found


@_handles("Pad")
def _pad(g, node, out_roles, out_shape, reductions, label):
    pads = attr(node, "pads")
    if pads is None:
        value = g.const_array(node.input[1]) if len(node.input) > 1 else None
        if value is None:
            raise _Unfollowable(f"{label} with pads computed at run time")
        pads = value.reshape(-1).tolist()
    rank = len(out_shape)
    if len(node.input) > 3 and node.input[3]:
        raise _Unfollowable(f"{label} with explicit axes")
    padded = {a for a in range(rank) if pads[a] or pads[a + rank]}
    if any(axes & padded for axes in out_roles.values()):
        raise _Unfollowable(f"{label} padding a channel axis")
    return [(node.input[0], dict(out_roles))]


@_handles("Concat")
def _concat(g, node, out_roles, out_shape, reductions, label):
    axis = normalize_axis(int(attr(node, "axis")), len(out_shape))
    if any(axis in axes for axes in out_roles.values()):
        raise _Unfollowable(f"{label} joining along a channel axis")
    return [(i, dict(out_roles)) for i in node.input if i]


def _reduced_input(out_roles: Roles, rank: int, reduced: set[int], keepdims: bool) -> Roles:
    """Roles of a reduction's input given its output's (axes re-inserted without keepdims)."""
    kept_axes = [a for a in range(rank) if keepdims or a not in reduced]
    return {
        r: frozenset(kept_axes[a] for a in axes if kept_axes[a] not in reduced)
        for r, axes in out_roles.items()
    }


@_handles(*_REDUCE)
def _reduce(g, node, out_roles, out_shape, reductions, label):
    rank = len(g._shape(node.input[0]))
    constants = {n: g.inits[n] for n in node.input[1:] if n in g.inits}
    try:
        axes = axes_of(node, constants)
    except ValueError as exc:
        raise _Unfollowable(f"{label} with axes computed at run time") from exc
    if not axes:
        if int(attr(node, "noop_with_empty_axes", 0)):
            return [(node.input[0], dict(out_roles))]
        axes = list(range(rank))
    reduced = {normalize_axis(a, rank) for a in axes}
    reductions.append((node.input[0], frozenset(reduced), label))
    keepdims = bool(int(attr(node, "keepdims", 1)))
    return [(node.input[0], _reduced_input(out_roles, rank, reduced, keepdims))]


def _normalisation(
    g: _Graph,
    node: onnx.NodeProto,
    out_roles: Roles,
    reduced: set[int],
    params: list[str],
    reductions: list,
    label: str,
) -> list[tuple[str, Roles]]:
    """Y = f(X normalised over ``reduced``) with element-wise parameters ``params``."""
    reductions.append((node.input[0], frozenset(reduced), label))
    out_shape = g._shape(node.output[0])
    found = [(node.input[0], dict(out_roles))]
    found += [(p, _broadcast(out_roles, out_shape, g._shape(p))) for p in params if p]
    return found


def _per_channel(out_roles: Roles, params: list[str]) -> list[tuple[str, Roles]]:
    """Parameters of shape [C] that follow axis 1 of the output."""
    mapped = {r: frozenset([0]) for r, axes in out_roles.items() if 1 in axes}
    return [(p, mapped) for p in params if p]


@_handles("BatchNormalization")
def _batch_norm(g, node, out_roles, out_shape, reductions, label):
    rank = len(out_shape)
    params = list(node.input[1:3])
    if int(attr(node, "training_mode", 0)):  # batch statistics of X; mean/var inputs unused
        reductions.append((node.input[0], frozenset(a for a in range(rank) if a != 1), label))
    else:
        params += list(node.input[3:5])
    return [(node.input[0], dict(out_roles)), *_per_channel(out_roles, params)]


@_handles("InstanceNormalization")
def _instance_norm(g, node, out_roles, out_shape, reductions, label):
    reductions.append((node.input[0], frozenset(range(2, len(out_shape))), label))
    return [(node.input[0], dict(out_roles)), *_per_channel(out_roles, list(node.input[1:3]))]


@_handles("LayerNormalization")
def _layer_norm(g, node, out_roles, out_shape, reductions, label):
    rank = len(g._shape(node.input[0]))
    first = normalize_axis(int(attr(node, "axis", -1)), rank)
    return _normalisation(
        g, node, out_roles, set(range(first, rank)), list(node.input[1:3]), reductions, label
    )


@_handles("LpNormalization", "Softmax", "LogSoftmax", "Hardmax")
def _along_axis(g, node, out_roles, out_shape, reductions, label):
    rank = len(g._shape(node.input[0]))
    default = -1 if node.op_type == "LpNormalization" or g.opset >= 13 else 1
    axis = normalize_axis(int(attr(node, "axis", default)), rank)
    coerced = node.op_type != "LpNormalization" and g.opset < 13  # 2-D coercion before 13
    reduced = set(range(axis, rank)) if coerced else {axis}
    return _normalisation(g, node, out_roles, reduced, [], reductions, label)


@_handles("MeanVarianceNormalization")
def _mvn(g, node, out_roles, out_shape, reductions, label):
    rank = len(g._shape(node.input[0]))
    axes = attr(node, "axes", [0, 2, 3])
    reduced = {normalize_axis(int(a), rank) for a in axes}
    return _normalisation(g, node, out_roles, reduced, [], reductions, label)
