"""onnx-netadapt: NetAdapt for ONNX models.

The public API re-exported here is the stable surface; submodules may change.

>>> from onnx_netadapt import load_model, analyse, prune
>>> loaded = load_model("model.onnx")                      # doctest: +SKIP
>>> analysis = analyse(loaded)                             # doctest: +SKIP
>>> result = prune(analysis, ratio=0.7)                    # doctest: +SKIP

Adaptation (the NetAdapt loop), one result per iteration or in one call:

>>> from onnx_netadapt import AdaptConfig, adapt, adapt_model, parse_budget
>>> cfg = AdaptConfig(target="ort", budgets=[parse_budget("0.5")], data="mnist5k")
>>> for it in adapt("model.onnx", cfg, "run_dir"):                 # doctest: +SKIP
...     print(it.iteration, it.measured["latency"], it.holdout_accuracy)
>>> summary = adapt_model("model.onnx", cfg, "run_dir")            # doctest: +SKIP
"""

from __future__ import annotations

from onnx_netadapt.adapt import (
    AdaptConfig,
    IterationResult,
    adapt,
    adapt_model,
    parse_budget,
)
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
    "AdaptConfig",
    "ChannelAnalysis",
    "ChannelGroup",
    "IterationResult",
    "LoadedModel",
    "ModelLoadError",
    "NetAdaptError",
    "PruneError",
    "PruneResult",
    "UnsupportedModelError",
    "__version__",
    "adapt",
    "adapt_model",
    "analyse",
    "load_model",
    "parse_budget",
    "prune",
]
