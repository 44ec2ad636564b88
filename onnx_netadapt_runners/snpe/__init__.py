"""Qualcomm SNPE runner plugin: latency measured on a phone's GPU (or CPU/DSP) over adb.

Modules: ``runner`` (SnpeRunner), ``sdk`` (the host SDK tree), ``device`` (device layout and
scripts), ``inputs`` (raw inputs, input lists), ``diagview`` (snpe-diagview output parser). The
adb client (``onnx_netadapt_runners/android.py``) and subprocesses with timeouts
(``onnx_netadapt_runners/proc.py``) are shared with the TFLite runner.
"""

from __future__ import annotations

from onnx_netadapt_runners.snpe.runner import SnpeRunner

__all__ = ["SnpeRunner"]
