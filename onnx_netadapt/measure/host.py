"""Facts about the machine a host runner measures on (for runner fingerprints)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model_name() -> str:
    """The CPU model from /proc/cpuinfo (x86 "model name", ARM "Hardware"/"Model"/"CPU part"),
    or the platform's processor string."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for key in ("model name", "Hardware", "Model", "CPU part"):
        for line in text.splitlines():
            if ":" in line and line.split(":")[0].strip() == key:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
