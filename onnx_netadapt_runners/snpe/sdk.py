"""The unpacked SNPE SDK on the host: its tools, the Android artifacts to push, its version.

Layout (SNPE 2.x / QAIRT; SNPE 1.x used ``*-android-clang6.0/8.0`` suffixes and ``lib/dsp``)::

    $SNPE_ROOT/bin/x86_64-linux-clang/snpe-onnx-to-dlc, snpe-diagview, snpe-net-run
    $SNPE_ROOT/bin/aarch64-android/snpe-net-run          (pushed to the phone)
    $SNPE_ROOT/lib/aarch64-android/*.so                  (libSNPE.so, libc++_shared.so, stubs)
    $SNPE_ROOT/lib/hexagon-v*/unsigned/*.so              (DSP/HTP skels; 1.x: lib/dsp/*.so)
    $SNPE_ROOT/lib/x86_64-linux-clang, lib/python        (what the host tools need)

The host tools need the environment ``bin/envsetup.sh`` sets up: ``PYTHONPATH`` with
``lib/python`` (the converters are Python) and ``LD_LIBRARY_PATH`` with
``lib/x86_64-linux-clang`` (as Microsoft Olive's SNPE integration does:
github.com/microsoft/Olive, olive/platform_sdk/qualcomm/env.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

HOST_ARCH = "x86_64-linux-clang"
CONVERTER = "snpe-onnx-to-dlc"
DIAGVIEW = "snpe-diagview"
NET_RUN = "snpe-net-run"
HOST_TOOLS = (CONVERTER, DIAGVIEW)

SDK_FIX = (
    "set SNPE_ROOT to the unpacked SNPE SDK (bin/x86_64-linux-clang/snpe-onnx-to-dlc must exist) "
    "and connect one device (adb devices)"
)

_VERSION = re.compile(r"(\d+\.\d+\.\d+(?:[._]\d+)*)")


@dataclass(frozen=True)
class SnpeSdk:
    """An SNPE SDK tree (see the module docstring for the layout)."""

    root: Path

    @classmethod
    def locate(cls, snpe_root: str | os.PathLike | None = None) -> tuple[SnpeSdk | None, str]:
        """The SDK at ``snpe_root`` (default: $SNPE_ROOT), or None and why it is unusable."""
        raw = os.fspath(snpe_root) if snpe_root is not None else os.environ.get("SNPE_ROOT", "")
        if not raw:
            return None, "SNPE_ROOT is not set"
        root = Path(raw).expanduser()
        if not root.is_dir():
            return None, f"SNPE_ROOT={raw} is not a directory"
        sdk = cls(root.resolve())
        missing = [t for t in HOST_TOOLS if not sdk.host_tool(t).is_file()]
        if missing:
            return None, (
                f"the SNPE SDK at {sdk.root} lacks {', '.join(missing)} in bin/{HOST_ARCH}"
            )
        return sdk, ""

    # -- host side ------------------------------------------------------------------------
    @property
    def host_bin(self) -> Path:
        """Directory of the host (x86_64 Linux) tools."""
        return self.root / "bin" / HOST_ARCH

    def host_tool(self, name: str) -> Path:
        """Path of a host tool."""
        return self.host_bin / name

    def host_env(self) -> dict[str, str]:
        """The environment the host tools need (what ``bin/envsetup.sh`` exports)."""
        env = dict(os.environ)
        env["SNPE_ROOT"] = str(self.root)
        env["PATH"] = _prepend(str(self.host_bin), env.get("PATH"))
        env["LD_LIBRARY_PATH"] = _prepend(
            str(self.root / "lib" / HOST_ARCH), env.get("LD_LIBRARY_PATH")
        )
        env["PYTHONPATH"] = _prepend(str(self.root / "lib" / "python"), env.get("PYTHONPATH"))
        return env

    def version_from_path(self) -> str:
        """The version in the SDK's directory name (``snpe-2.10.0.4541``, ``qairt/2.22.6...``)."""
        for part in reversed(self.root.parts):
            match = _VERSION.search(part)
            if match:
                return match.group(1)
        return ""

    # -- device side ----------------------------------------------------------------------
    def android_dir(self, kind: str) -> Path | None:
        """``bin`` or ``lib`` directory of the aarch64 Android build (2.x or 1.x naming)."""
        base = self.root / kind
        exact = base / "aarch64-android"
        if exact.is_dir():
            return exact
        candidates = sorted(base.glob("aarch64-android*"))
        return candidates[-1] if candidates else None

    def device_binary(self) -> Path | None:
        """The Android ``snpe-net-run``."""
        bin_dir = self.android_dir("bin")
        path = bin_dir / NET_RUN if bin_dir else None
        return path if path and path.is_file() else None

    def device_libs(self) -> list[Path]:
        """The Android shared libraries (libSNPE.so, libc++_shared.so, runtime stubs)."""
        lib_dir = self.android_dir("lib")
        return sorted(lib_dir.glob("*.so")) if lib_dir else []

    def dsp_libs(self) -> list[Path]:
        """The Hexagon DSP/HTP libraries (2.x: lib/hexagon-v*/unsigned, 1.x: lib/dsp)."""
        libs = sorted((self.root / "lib" / "dsp").glob("*.so"))
        libs += sorted(self.root.glob("lib/hexagon-v*/unsigned/*.so"))
        return libs

    def artifacts_stamp(self, files: list[Path]) -> str:
        """A short hash of the files to push (path, size, mtime): equal means already pushed."""
        digest = hashlib.sha1()
        for path in files:
            stat = path.stat()
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:16]


def _prepend(value: str, current: str | None) -> str:
    return f"{value}{os.pathsep}{current}" if current else value


def parse_version(text: str) -> str:
    """The version in ``snpe-net-run --version`` output ("SNPE v2.12.0.230626174329_59328")."""
    match = re.search(r"SNPE\s+v?(\S+)", text) or _VERSION.search(text)
    return match.group(1) if match else ""
