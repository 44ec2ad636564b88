"""Qualcomm SNPE runner plugin: latency measured on a phone's GPU (or CPU/DSP) over adb.

Modules: ``runner`` (SnpeRunner), ``adb`` (device selection, push/pull/shell), ``sdk`` (the
host SDK tree), ``device`` (device layout and scripts), ``inputs`` (raw inputs, input lists),
``diagview`` (snpe-diagview output parser), ``proc`` (subprocesses with timeouts).
"""

from __future__ import annotations

from runners.snpe.runner import SnpeRunner

__all__ = ["SnpeRunner"]
