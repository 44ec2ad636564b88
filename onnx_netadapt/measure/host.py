"""Facts about the machine a host runner measures on (for runner fingerprints)."""

from __future__ import annotations

import platform
from pathlib import Path

# The instruction sets that decide which kernels a runtime picks (x86 and ARM /proc/cpuinfo
# names). Two hosts of one model name can differ in them: this project's "AMD EPYC" hosts
# were a Zen 4 with AVX-512 and a Zen 3 without, where ResNet-50 ran 2.9 times slower.
KERNEL_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "asimd",
    "asimddp",
    "sve",
    "i8mm",
    "bf16",
)


def cpu_identity(cpuinfo: str | None = None) -> str:
    """``cpu_model_name`` with the CPU's generation (x86 family and model numbers, ARM
    implementer and part) and the ``KERNEL_FLAGS`` it has: what a device fingerprint needs
    where a virtual machine reports only a brand ("AMD EPYC") for CPUs of different
    generations. ``cpuinfo``: the text of /proc/cpuinfo (default: read it).

    >>> cpu_identity("model name : AMD EPYC\\ncpu family : 25\\nmodel : 1\\nflags : fpu avx2 fma")
    'AMD EPYC (cpu family 25, model 1, avx2, fma)'
    """
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    generation = ("cpu family", "model", "CPU implementer", "CPU part")
    parts = [f"{k} {fields[k]}" for k in generation if k in fields]
    parts += [f for f in KERNEL_FLAGS if f in flags]
    name = cpu_model_name(text)
    return f"{name} ({', '.join(parts)})" if parts else name


def _cpuinfo() -> str:
    """The text of /proc/cpuinfo ("" where there is none)."""
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def cpu_model_name(cpuinfo: str | None = None) -> str:
    """The CPU model from /proc/cpuinfo (x86 "model name", ARM "Hardware"/"Model"/"CPU part"),
    or the platform's processor string. ``cpuinfo``: its text (default: read it)."""
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    for key in ("model name", "Hardware", "Model", "CPU part"):
        for line in text.splitlines():
            if ":" in line and line.split(":")[0].strip() == key:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
