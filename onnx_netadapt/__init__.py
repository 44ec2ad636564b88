"""onnx-netadapt: NetAdapt for ONNX models.

The public API re-exported here is the stable surface; submodules may change.

>>> from onnx_netadapt import load_model, analyse, prune
>>> loaded = load_model("model.onnx")                      # doctest: +SKIP
>>> analysis = analyse(loaded)                             # doctest: +SKIP
>>> result = prune(analysis, ratio=0.7)                    # doctest: +SKIP
"""

from __future__ import annotations

from onnx_netadapt.channels.analysis import ChannelAnalysis, ChannelGroup, analyse
from onnx_netadapt.errors import (
    ModelLoadError,
    NetAdaptError,
    PruneError,
    UnsupportedModelError,
)
from onnx_netadapt.graph.load import LoadedModel, load_model
from onnx_netadapt.prune.apply import PruneResult, prune

__version__ = "0.1.0"

__all__ = [
    "ChannelAnalysis",
    "ChannelGroup",
    "LoadedModel",
    "ModelLoadError",
    "NetAdaptError",
    "PruneError",
    "PruneResult",
    "UnsupportedModelError",
    "__version__",
    "analyse",
    "load_model",
    "prune",
]
