"""Map ONNX initializers to the converted module's tensors; write trained values back.

Where onnx2torch 1.5.15 puts an initializer:

- *absorbed* by the converter into a torch layer (the initializer is not among the module's
  ``onnx_mapping.inputs``): Conv/ConvTranspose -> ``weight``/``bias`` (``1.weight`` when an
  asymmetric pad made it ``Sequential(pad, conv)``); Gemm with a constant B and 1-D C ->
  ``nn.Linear`` whose ``weight`` is ``alpha * B.T`` (``alpha * B`` when transB=1) and ``bias``
  ``beta * C``; BatchNormalization -> ``weight``, ``bias``, ``running_mean``, ``running_var``;
  LayerNormalization / InstanceNormalization -> ``weight``, ``bias``;
- *fed* as a graph input (MatMul and Add/Mul operands, PRelu slope, the fallback BatchNorm...):
  a buffer ``initializers.onnx_initializer_<k>`` of the module, read by a ``get_attr`` node.
  Buffers do not train: float operands that hold weights (see ``TRAINABLE_FED``) are turned into
  parameters here.

The mapping (initializer name -> :class:`TensorRef`) is built right after conversion, from the
structure above, and every entry is checked against the initializer's values; it is attached to
the module as ``onnx_netadapt_mapping``.
"""

from __future__ import annotations

import inspect
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from onnx_netadapt.errors import FineTuneError

logger = logging.getLogger(__name__)

MAPPING_ATTR = "onnx_netadapt_mapping"

FLOAT_TYPES = frozenset({onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE})

# Absorbed initializers: ONNX input index -> attribute of the torch layer, by op type.
ABSORBED = {
    "Conv": {1: "weight", 2: "bias"},
    "ConvTranspose": {1: "weight", 2: "bias"},
    "Gemm": {1: "weight", 2: "bias"},
    "BatchNormalization": {1: "weight", 2: "bias", 3: "running_mean", 4: "running_var"},
    "LayerNormalization": {1: "weight", 2: "bias"},
    "InstanceNormalization": {1: "weight", 2: "bias"},
}

# Fed initializers that hold weights (op type -> input indices): trained as parameters.
# Add/Mul operands train only when they have more than one element (biases, per-channel scales).
TRAINABLE_FED = {
    "Conv": (1, 2),
    "ConvTranspose": (1, 2),
    "Gemm": (0, 1, 2),
    "MatMul": (0, 1),
    "PRelu": (1,),
    "BatchNormalization": (1, 2),
    "LayerNormalization": (1, 2),
    "InstanceNormalization": (1, 2),
    "Add": (0, 1),
    "Mul": (0, 1),
}
_ELEMENTWISE = ("Add", "Mul")


@dataclass(frozen=True)
class TensorRef:
    """Where an initializer lives in the module and how to get it back.

    ``onnx value = transform(state_dict[path]) / scale``, with transform ``identity``,
    ``transpose`` (2-D) or ``reshape`` (to the initializer's dims).
    """

    path: str
    transform: str = "identity"
    scale: float = 1.0


# ---------------------------------------------------------------------------------------------
# mapping
# ---------------------------------------------------------------------------------------------


def attach_mapping(model: onnx.ModelProto, module: nn.Module) -> dict[str, TensorRef]:
    """Build the mapping for a freshly converted ``module``, make fed weights trainable, attach.

    Parameters that no initializer maps to are frozen (training them could not be written back).
    """
    mapping = build_mapping(model, module)
    params = dict(module.named_parameters())
    mapped = {ref.path for ref in mapping.values()}
    for path, param in params.items():
        if path not in mapped:
            logger.debug("parameter %s maps to no initializer: frozen", path)
            param.requires_grad_(False)
    setattr(module, MAPPING_ATTR, mapping)
    return mapping


def build_mapping(model: onnx.ModelProto, module: nn.Module) -> dict[str, TensorRef]:
    """Initializer name -> :class:`TensorRef`, checked against the initializer values.

    Fed float initializers listed in ``TRAINABLE_FED`` with a single consumer become parameters
    of ``module`` (in place). Raises ``FineTuneError`` when an initializer would map twice.
    """
    from onnx2torch.onnx_graph import OnnxGraph

    inits = {i.name: i for i in model.graph.initializer}
    consumers = Counter(name for node in model.graph.node for name in node.input if name)
    fx_calls = {n.target: n for n in module.graph.nodes if n.op == "call_module"}
    claims = _Claims(inits, module)
    for module_name, onnx_node in OnnxGraph(model.graph).nodes.items():
        node = onnx_node.proto
        sub = module.get_submodule(module_name)
        _claim_absorbed(claims, node, sub, module_name)
        call = fx_calls.get(module_name)
        if call is not None:
            _claim_fed(claims, node, sub, call, consumers)
    for name, init in inits.items():
        if init.data_type in FLOAT_TYPES and name not in claims.mapping and consumers[name] <= 1:
            logger.debug("float initializer %s is not mapped: kept unchanged", name)
    return claims.mapping


class _Claims:
    """The mapping being built: each initializer claimed once, checked against its tensor."""

    def __init__(self, inits: dict[str, onnx.TensorProto], module: nn.Module) -> None:
        self.inits, self.module = inits, module
        self.mapping: dict[str, TensorRef] = {}
        self.owner: dict[str, str] = {}  # initializer -> the node that claimed it

    def claim(self, init_name: str, ref: TensorRef, node_name: str) -> None:
        if init_name in self.mapping:
            raise FineTuneError(
                f"initializer {init_name!r} maps to two torch tensors "
                f"({self.mapping[init_name].path} for node {self.owner[init_name]!r}, "
                f"{ref.path} for node {node_name!r}): it is shared between nodes. Load the model "
                "with onnx_netadapt.load_model, which gives every node its own copy."
            )
        if not _matches(self.inits[init_name], _tensor(self.module, ref.path), ref):
            raise FineTuneError(
                f"initializer {init_name!r} of node {node_name!r} does not match torch tensor "
                f"{ref.path} ({ref.transform}); the onnx2torch converter for this op stores it "
                "differently than expected"
            )
        self.mapping[init_name] = ref
        self.owner[init_name] = node_name


def _claim_absorbed(
    claims: _Claims, node: onnx.NodeProto, sub: nn.Module, module_name: str
) -> None:
    """Claim the initializers ``node``'s converter absorbed into its module ``sub``."""
    inits = claims.inits
    onnx_mapping = getattr(sub, "onnx_mapping", None)
    fed_names = set(onnx_mapping.inputs) if onnx_mapping is not None else set(node.input)
    for index, name in enumerate(node.input):
        if name not in inits or name in fed_names:
            continue
        ref = _absorbed_ref(node, index, sub, module_name, inits[name])
        if ref is not None:
            claims.claim(name, ref, node.name)
        elif inits[name].data_type in FLOAT_TYPES:
            logger.debug("initializer %s of node %s: not found in its module", name, node.name)


def _claim_fed(
    claims: _Claims, node: onnx.NodeProto, sub: nn.Module, call, consumers: Counter
) -> None:
    """Claim the float initializers fed to ``node``'s module as buffers (its fx ``call``); a
    trainable one with a single consumer becomes a parameter."""
    for index, path in _fed_buffers(node, sub, call).items():
        name = node.input[index]
        if claims.inits[name].data_type not in FLOAT_TYPES:
            continue
        if consumers[name] > 1:
            logger.debug("initializer %s is shared by %d nodes: kept", name, consumers[name])
            continue
        if _trainable_fed(node, index, claims.inits[name]):
            _make_parameter(claims.module, path)
        claims.claim(name, TensorRef(path), node.name)


def _absorbed_ref(
    node: onnx.NodeProto, index: int, sub: nn.Module, module_name: str, init: onnx.TensorProto
) -> TensorRef | None:
    """Where a converter put the absorbed input ``index`` of ``node`` (None when unknown)."""
    own = dict(sub.state_dict(keep_vars=True))
    attr_name = ABSORBED.get(node.op_type, {}).get(index)
    if attr_name is not None:
        key = next((k for k in own if k == attr_name or k.endswith("." + attr_name)), None)
        if key is not None:
            return _ref_for(node, index, f"{module_name}.{key}", own[key], init)
    found = []  # unknown converter: the one tensor of the module with the same values
    for key, tensor in own.items():
        ref = TensorRef(f"{module_name}.{key}", _transform_for(tensor, init))
        if ref.transform and _matches(init, tensor, ref):
            found.append(ref)
    return found[0] if len(found) == 1 else None


def _ref_for(
    node: onnx.NodeProto, index: int, path: str, tensor: torch.Tensor, init: onnx.TensorProto
) -> TensorRef:
    scale = 1.0
    transform = _transform_for(tensor, init) or "identity"
    if node.op_type == "Gemm":
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        scale = float(attrs.get("alpha", 1.0) if index == 1 else attrs.get("beta", 1.0))
        if index == 1:
            transform = "identity" if attrs.get("transB", 0) else "transpose"
    return TensorRef(path, transform, scale)


def _transform_for(tensor: torch.Tensor, init: onnx.TensorProto) -> str:
    """``identity`` for equal shapes, ``reshape`` for equal sizes, else '' (no match)."""
    dims = tuple(init.dims)
    if tuple(tensor.shape) == dims:
        return "identity"
    if tensor.numel() == int(np.prod(dims, dtype=np.int64)):
        return "reshape"
    return ""


def _fed_buffers(node: onnx.NodeProto, sub: nn.Module, call) -> dict[int, str]:
    """ONNX input index -> buffer path, for inputs fed to the module through ``get_attr``."""
    onnx_inputs = list(sub.onnx_mapping.inputs) if hasattr(sub, "onnx_mapping") else []
    fed: dict[int, str] = {}
    params = list(inspect.signature(sub.forward).parameters)
    pairs = list(zip(onnx_inputs, call.args, strict=False))
    for key, arg in call.kwargs.items():
        if key in params and params.index(key) < len(onnx_inputs):
            pairs.append((onnx_inputs[params.index(key)], arg))
    for onnx_name, arg in pairs:
        if isinstance(arg, torch.fx.Node) and arg.op == "get_attr" and onnx_name in node.input:
            fed[list(node.input).index(onnx_name)] = str(arg.target)
    return fed


def _trainable_fed(node: onnx.NodeProto, index: int, init: onnx.TensorProto) -> bool:
    if index not in TRAINABLE_FED.get(node.op_type, ()):
        return False
    size = int(np.prod(init.dims, dtype=np.int64))
    return size > 1 or node.op_type not in _ELEMENTWISE


def _make_parameter(module: nn.Module, path: str) -> None:
    """Turn buffer ``path`` of ``module`` into a trainable parameter of the same name."""
    owner_path, _, leaf = path.rpartition(".")
    owner = module.get_submodule(owner_path) if owner_path else module
    tensor = owner._buffers.pop(leaf)
    owner.register_parameter(leaf, nn.Parameter(tensor, requires_grad=True))


def _tensor(module: nn.Module, path: str) -> torch.Tensor:
    owner_path, _, leaf = path.rpartition(".")
    owner = module.get_submodule(owner_path) if owner_path else module
    value = getattr(owner, leaf)
    if not isinstance(value, torch.Tensor):
        raise FineTuneError(f"torch module has no tensor at {path}")
    return value


def _onnx_value(tensor: torch.Tensor, ref: TensorRef, init: onnx.TensorProto) -> np.ndarray:
    """The initializer value held by ``tensor`` (inverse of the converter's transform)."""
    value = tensor.detach().cpu()
    if ref.transform == "transpose":
        value = value.T
    if ref.scale != 1.0:
        value = value / ref.scale
    array = np.array(value.numpy(), order="C", copy=True)  # keeps 0-d tensors 0-d
    if ref.transform == "reshape":
        array = array.reshape(tuple(init.dims))
    dtype = onnx.helper.tensor_dtype_to_np_dtype(init.data_type)
    return array.astype(dtype, copy=False)


def _matches(init: onnx.TensorProto, tensor: torch.Tensor, ref: TensorRef) -> bool:
    """True when ``tensor`` holds the initializer's values under ``ref`` (up to the scale)."""
    try:
        value = _onnx_value(tensor, ref, init)
    except (RuntimeError, ValueError):
        return False
    expected = numpy_helper.to_array(init)
    if value.shape != expected.shape:
        return False
    if ref.scale == 1.0:
        return bool(np.array_equal(value, expected, equal_nan=True))
    return bool(np.allclose(value, expected, rtol=1e-6, atol=1e-7))


# ---------------------------------------------------------------------------------------------
# write-back
# ---------------------------------------------------------------------------------------------


def write_back(
    model: onnx.ModelProto, module: nn.Module, mapping: Mapping[str, TensorRef] | None = None
) -> onnx.ModelProto:
    """A new model: ``model`` with every mapped initializer replaced by the module's values.

    Names, shapes and dtypes are kept; unmapped initializers and the input proto are untouched.
    ``mapping`` defaults to the one :func:`~onnx_netadapt.finetune.convert.to_torch` attached.
    """
    if mapping is None:
        mapping = getattr(module, MAPPING_ATTR, None)
        if mapping is None:
            raise FineTuneError(
                "the torch module carries no initializer mapping: convert it with "
                "onnx_netadapt.finetune.to_torch"
            )
    out = onnx.ModelProto()
    out.CopyFrom(model)
    replaced = 0
    for init in out.graph.initializer:
        ref = mapping.get(init.name)
        if ref is None:
            continue
        value = _onnx_value(_tensor(module, ref.path), ref, init)
        if value.shape != tuple(init.dims):
            raise FineTuneError(
                f"trained tensor {ref.path} has shape {value.shape}, initializer {init.name!r} "
                f"{tuple(init.dims)}: was the model changed after conversion?"
            )
        init.CopyFrom(numpy_helper.from_array(value, init.name))
        replaced += 1
    logger.debug("wrote back %d of %d initializers", replaced, len(out.graph.initializer))
    return out
