"""TFLite (LiteRT) CPU latency runner: on this host, or on an Android phone over adb.

Registered as ``tflite = onnx_netadapt_runners.tflite:TfliteRunner`` in the
``onnx_netadapt.runners`` entry-point group. Importing this package needs no LiteRT; measuring
does (see ``TfliteRunner.availability``).
"""

from __future__ import annotations

from onnx_netadapt_runners.tflite.benchmark_output import (
    BenchmarkResult,
    BenchmarkTimings,
    OpTiming,
    parse_benchmark_output,
    samples_from_timings,
)
from onnx_netadapt_runners.tflite.flatbuffer import UnsupportedLayer, tflite_layer_model
from onnx_netadapt_runners.tflite.runner import TfliteRunner

__all__ = [
    "BenchmarkResult",
    "BenchmarkTimings",
    "OpTiming",
    "TfliteRunner",
    "UnsupportedLayer",
    "parse_benchmark_output",
    "samples_from_timings",
    "tflite_layer_model",
]
