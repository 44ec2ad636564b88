"""A fake SNPE SDK tree and a fake adb on disk, for the SNPE runner tests.

``build_fake_snpe(base)`` lays out, under ``base``::

    snpe-2.22.0.240425/                       SNPE_ROOT
        bin/x86_64-linux-clang/snpe-onnx-to-dlc, snpe-diagview, snpe-net-run
        bin/aarch64-android/snpe-net-run
        lib/aarch64-android/libSNPE.so, libc++_shared.so, libSnpeHtpV73Stub.so (dummies)
        lib/hexagon-v73/unsigned/libSnpeHtpV73Skel.so, lib/x86_64-linux-clang/libSNPE.so
        lib/python/
    adb-bin/adb                               put first on PATH
    devices/<serial>/...                      the fake phones' file systems
    adb-state/calls                           adb call counter (FAKE_ADB_DISCONNECT_AFTER)

The tools are the executable Python scripts next to this file, installed with a shebang naming
this interpreter (so the converter finds the ``onnx`` package).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
FAKE_VERSION = "2.22.0.240425"
SERIAL = "FAKE0001"
NEEDS_SITE_PACKAGES = ("snpe-onnx-to-dlc",)  # imports onnx


@dataclass(frozen=True)
class FakeSnpe:
    """Paths of a fake SNPE installation and phone."""

    root: Path
    adb_dir: Path
    device_root: Path
    state_dir: Path

    def env(self, devices: str = f"{SERIAL}:device") -> dict[str, str]:
        """Environment variables that make the runner use the fakes."""
        return {
            "SNPE_ROOT": str(self.root),
            "PATH": f"{self.adb_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "FAKE_ADB_ROOT": str(self.device_root),
            "FAKE_ADB_STATE": str(self.state_dir),
            "FAKE_ADB_DEVICES": devices,
        }

    def adb_calls(self) -> int:
        """adb invocations so far."""
        counter = self.state_dir / "calls"
        return int(counter.read_text()) if counter.exists() else 0

    def reset_adb_calls(self) -> None:
        """Restart the call counter (FAKE_ADB_DISCONNECT_AFTER counts from here)."""
        (self.state_dir / "calls").unlink(missing_ok=True)

    def phone(self, serial: str = SERIAL) -> Path:
        """The file system of a fake phone."""
        return self.device_root / serial


def install_tool(name: str, directory: Path) -> Path:
    """Copy the fake tool ``name`` into ``directory`` as an executable for this interpreter.

    Tools other than the converter need only the standard library and start with ``-S`` (no
    site-packages scan: faster start-up, which dominates the tests).
    """
    directory.mkdir(parents=True, exist_ok=True)
    source = (HERE / name).read_text().split("\n", 1)[1]
    flags = "" if name in NEEDS_SITE_PACKAGES else " -S"
    target = directory / name
    target.write_text(f"#!{sys.executable}{flags}\n{source}")
    target.chmod(0o755)
    return target


def build_fake_snpe(base: Path, version: str = FAKE_VERSION) -> FakeSnpe:
    """Lay out a fake SDK, adb and phone directory under ``base`` (see the module docstring)."""
    root = base / f"snpe-{version}"
    host = root / "bin" / "x86_64-linux-clang"
    for tool in ("snpe-onnx-to-dlc", "snpe-diagview", "snpe-net-run"):
        install_tool(tool, host)
    install_tool("snpe-net-run", root / "bin" / "aarch64-android")
    dummies = [
        "lib/aarch64-android/libSNPE.so",
        "lib/aarch64-android/libc++_shared.so",
        "lib/aarch64-android/libSnpeHtpV73Stub.so",
        "lib/hexagon-v73/unsigned/libSnpeHtpV73Skel.so",
        "lib/x86_64-linux-clang/libSNPE.so",
    ]
    for rel in dummies:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x7fELF fake " + rel.encode())
    (root / "lib" / "python").mkdir(parents=True, exist_ok=True)
    adb_dir = base / "adb-bin"
    install_tool("adb", adb_dir)
    device_root = base / "devices"
    state_dir = base / "adb-state"
    device_root.mkdir(exist_ok=True)
    state_dir.mkdir(exist_ok=True)
    return FakeSnpe(root, adb_dir, device_root, state_dir)
