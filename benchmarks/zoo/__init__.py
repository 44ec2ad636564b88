"""Model zoo for onnx-netadapt benchmarks: torchvision and timm classifiers exported to ONNX.

Every model is built with random weights (no network access is assumed) and exported with batch
size 1, static shapes, input ``input`` and output ``logits``. Exports run in a subprocess so that a
crash or a hang in one model does not stop a sweep.

Command line (run from the repository root)::

    python -m benchmarks.zoo list
    python -m benchmarks.zoo export-all --exporter legacy --out DIR [--only RE] [--limit N]
    python -m benchmarks.zoo verify --exporter legacy --out DIR [--only RE]

``export-all`` writes ``DIR/<exporter>/<source>__<name>.onnx`` and
``DIR/<exporter>/export_log.json``. Files already present are reused (cache).
"""

from benchmarks.zoo.build import build_model
from benchmarks.zoo.catalogue import (
    DEFAULT_INPUT_SIZE,
    TIMM_CNNS,
    ZooModel,
    all_models,
    find_model,
    select,
    timm_cnns,
    torchvision_classifiers,
)
from benchmarks.zoo.export import DEFAULT_OPSET, EXPORTERS, ExportResult, export, export_all
from benchmarks.zoo.torchvision_fix import import_timm, import_torchvision
from benchmarks.zoo.verify import verify_export

__all__ = [
    "DEFAULT_INPUT_SIZE",
    "DEFAULT_OPSET",
    "EXPORTERS",
    "TIMM_CNNS",
    "ExportResult",
    "ZooModel",
    "all_models",
    "build_model",
    "export",
    "export_all",
    "find_model",
    "import_timm",
    "import_torchvision",
    "select",
    "timm_cnns",
    "torchvision_classifiers",
    "verify_export",
]
