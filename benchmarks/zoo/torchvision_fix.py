"""Import torchvision and timm next to a CPU torch.

torchvision 0.28.0 from PyPI is a CUDA build: with a CPU torch its C++ ops do not load and the
import fails in ``torchvision/_meta_registrations.py``, which registers fake kernels for them.
"""

from __future__ import annotations

import sys
from types import ModuleType

_TORCHVISION_SCHEMAS = {
    "torchvision::nms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "torchvision::qnms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}


def import_torchvision() -> ModuleType:
    """Import torchvision, working around a CUDA torchvision wheel next to a CPU torch.

    The first attempt is a plain import. If it fails because ``torchvision::nms`` is missing, the
    partially imported modules are dropped, the nms/qnms schemas are defined with
    ``torch.library.define`` and the import is retried. Idempotent.
    """
    if "torchvision" in sys.modules and hasattr(sys.modules["torchvision"], "models"):
        return sys.modules["torchvision"]
    import torch

    try:
        import torchvision
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
        for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[mod]
        for qualname, schema in _TORCHVISION_SCHEMAS.items():
            namespace, op = qualname.split("::")
            if not hasattr(getattr(torch.ops, namespace), op):
                torch.library.define(qualname, schema)
        import torchvision
    return torchvision


def import_timm() -> ModuleType:
    """Import timm (which imports torchvision, hence the workaround first)."""
    import_torchvision()
    import timm

    return timm
