"""onnx2torch converters for operators (or operator versions) that onnx2torch 1.5.15 lacks.

Found missing with onnx2torch's registry, for the opsets this tool loads (11..21):

- new implementations: Reduce{L1,L2,LogSum,LogSumExp,Max,Mean,Min,Prod,SumSquare}-18 (axes as an
  input) and ReduceMax/ReduceMin-20, Split-18 (``num_outputs``), Pad-18/19/21 (``axes`` input,
  ``wrap`` mode), Resize-18/19, Reshape-19/21 and Reshape with ``allowzero=1`` (onnx2torch's own
  Reshape converter refuses it: ours delegates to it otherwise), CastLike, Gelu-20, Mish-18;
- replaced: Resize-11/13, whose onnx2torch converter maps every nearest mode to torch's
  asymmetric/floor one (it only warns) and refuses ``sizes`` that pin a static batch of 1, and
  Reshape-5/13/14 with ``allowzero=1`` (``reroute`` moves those nodes to ours);
- versions that only widened the accepted types, served by onnx2torch's converter of the previous
  version: Cast-19/21, Constant-19/21, ConstantOfShape-20/21, Equal-19, Flatten-21,
  GreaterOrEqual-16, LessOrEqual-16, Identity-19/21, IsInf-20, IsNaN-20, ScatterND-18,
  Shape-19/21, Transpose-21, Unsqueeze-21, and AveragePool-19 (without dilations).

One module per op family; each registers its converters at their definitions through
onnx2torch's public ``add_converter`` (``_registry.py``; onnx2torch's private registry is never
read or changed). :func:`register` imports the families; it runs on import and is idempotent.
Tested with the onnx2torch versions ``setup.cfg`` pins. Constant operands (axes, pads, sizes,
split) are read at conversion time when they are initializers, so they become module attributes
rather than graph buffers.
"""

from __future__ import annotations

import importlib
import logging

from onnx_netadapt.finetune.converters._registry import ADDED, reroute

logger = logging.getLogger(__name__)

__all__ = ["FAMILIES", "register", "reroute"]

FAMILIES = (
    "reduce",
    "split",
    "pad",
    "resize",
    "reshape",
    "cast",
    "activations",
    "pooling",
    "aliases",
)


def register() -> list[str]:
    """Import every op family (each registers its converters once, at import); returns the
    ``Op-version`` registered by this call."""
    before = len(ADDED)
    for family in FAMILIES:
        importlib.import_module(f"{__name__}.{family}")
    added = ADDED[before:]
    if added:
        logger.debug("registered onnx2torch converters: %s", ", ".join(added))
    return added


register()
