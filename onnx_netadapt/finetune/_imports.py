"""Import onnx2torch safely next to a CPU torch and a CUDA torchvision wheel."""

from __future__ import annotations

import sys
from types import ModuleType

# onnx2torch imports torchvision (for NonMaxSuppression); a CUDA torchvision wheel next to a CPU
# torch fails in its meta registrations unless these operator schemas exist first.
_TORCHVISION_SCHEMAS = {
    "torchvision::nms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "torchvision::qnms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}


def import_onnx2torch() -> ModuleType:
    """Import onnx2torch, defining torchvision's nms schemas first when the plain import fails."""
    if "onnx2torch" in sys.modules and hasattr(sys.modules["onnx2torch"], "convert"):
        return sys.modules["onnx2torch"]
    try:
        import onnx2torch
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
        _drop_partial_imports()
        _define_torchvision_schemas()
        import onnx2torch
    return onnx2torch


def _drop_partial_imports() -> None:
    """Forget half-imported torchvision/onnx2torch modules so the import can be retried."""
    for name in list(sys.modules):
        if name.split(".")[0] in ("torchvision", "onnx2torch"):
            del sys.modules[name]


def _define_torchvision_schemas() -> None:
    import torch

    for qualname, schema in _TORCHVISION_SCHEMAS.items():
        namespace, op = qualname.split("::")
        if not hasattr(getattr(torch.ops, namespace), op):
            torch.library.define(qualname, schema)
