"""A small adb client: choose the device, push, pull, run shell scripts, notice disconnects.

``adb shell`` only passes the remote exit status through with the shell v2 protocol, so every
script ends with ``echo __NETADAPT_RC=$?`` and the status is read from the output. A failure of
adb itself (exit 1 with ``error: device 'SERIAL' not found``, ``error: no devices/emulators
found``, ``device offline``...) means the phone went away and raises ``DeviceLostError``.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from onnx_netadapt.measure.runner import RunnerError, RunnerUnavailable
from runners import proc

logger = logging.getLogger(__name__)

RC_MARK = "__NETADAPT_RC="

DEVICES_TIMEOUT = 20.0
SHORT_TIMEOUT = 30.0
TRANSFER_TIMEOUT = 300.0

# what adb prints when the device is gone (old adb: "error: device not found")
_LOST = re.compile(
    r"device '[^']*' not found|device not found|no devices(?:/emulators)? found|device offline"
    r"|device unauthorized|device still authorizing|error: closed|protocol fault"
    r"|connection reset",
    re.IGNORECASE,
)

_STATE_FIXES = {
    "unauthorized": (
        "unlock the phone and accept the 'Allow USB debugging?' prompt (if none appears, "
        "revoke USB debugging authorizations in Developer options and reconnect)"
    ),
    "offline": "reconnect the USB cable, or restart adb: adb kill-server && adb devices",
    "authorizing": "wait a few seconds and accept the USB debugging prompt on the phone",
    "no permissions": (
        "adb lacks permission to open the USB device: add a udev rule for the phone "
        "(https://developer.android.com/studio/run/device) and reconnect"
    ),
}


@dataclass(frozen=True)
class AdbDevice:
    """One line of ``adb devices``."""

    serial: str
    state: str

    @property
    def ready(self) -> bool:
        """True when adb can talk to the device."""
        return self.state == "device"

    def problem(self) -> str:
        """Why the device cannot be used, with the fix."""
        key = next((k for k in _STATE_FIXES if self.state.startswith(k)), "")
        fix = _STATE_FIXES.get(key, "boot the phone into Android with USB debugging enabled")
        return f"device {self.serial} is {self.state}: {fix}"


class DeviceLostError(RunnerError):
    """The device disappeared (unplugged, rebooted, adb restarted) while it was in use."""


def find_adb() -> str | None:
    """Path of the adb executable on PATH."""
    return shutil.which("adb")


def parse_devices(text: str) -> list[AdbDevice]:
    """Devices in the output of ``adb devices`` (daemon start-up chatter is skipped)."""
    devices = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("*", "List of devices", "adb ")):
            continue
        parts = line.split(None, 1)
        if len(parts) == 2:
            devices.append(AdbDevice(parts[0], parts[1].strip()))
    return devices


def select_device(devices: Sequence[AdbDevice], wanted: str | None) -> str:
    """The serial to use: ``wanted``, or the only ready device.

    Raises:
        RunnerUnavailable: no device, several devices, or the device is not usable.
    """
    listing = ", ".join(f"{d.serial} ({d.state})" for d in devices) or "none"
    if wanted:
        match = [d for d in devices if d.serial == wanted]
        if not match:
            raise RunnerUnavailable(
                f"device {wanted!r} is not connected (adb devices lists: {listing}); connect it, "
                "or choose a listed serial with device='SERIAL' (CLI: --device SERIAL)"
            )
        if not match[0].ready:
            raise RunnerUnavailable(match[0].problem())
        return wanted
    ready = [d for d in devices if d.ready]
    if len(ready) == 1:
        return ready[0].serial
    if len(ready) > 1:
        raise RunnerUnavailable(
            f"several devices are connected ({listing}); choose one with device='SERIAL' "
            "(CLI: --device SERIAL)"
        )
    if not devices:
        raise RunnerUnavailable(
            "no Android device is connected (adb devices lists none): connect the phone by USB, "
            "enable USB debugging in Developer options and accept the prompt on the phone"
        )
    raise RunnerUnavailable("; ".join(d.problem() for d in devices))


@dataclass
class ShellResult:
    """What a device script printed and its exit status."""

    rc: int
    stdout: str
    stderr: str

    def tail(self) -> str:
        """The output tail for error messages (stderr and stdout: devices mix them)."""
        return proc.tail("\n".join(part for part in (self.stdout, self.stderr) if part.strip()))


class Adb:
    """adb commands addressed to one device (``-s SERIAL``)."""

    def __init__(self, adb: str, serial: str) -> None:
        self.adb = adb
        self.serial = serial

    @staticmethod
    def devices(adb: str) -> list[AdbDevice]:
        """The devices adb sees.

        Raises:
            RunnerUnavailable: adb itself fails.
        """
        fix = "restart the adb server (adb kill-server && adb devices)"
        result = proc.run([adb, "devices"], timeout=DEVICES_TIMEOUT, what="adb devices", fix=fix)
        if result.returncode != 0:
            raise RunnerUnavailable(
                f"adb devices failed (exit {result.returncode}):\n{proc.output_tail(result)}\n{fix}"
            )
        return parse_devices(result.stdout)

    def _run(self, args: Sequence[str], *, timeout: float, what: str, fix: str):
        result = proc.run([self.adb, "-s", self.serial, *args], timeout=timeout, what=what, fix=fix)
        if result.returncode != 0:
            output = f"{result.stderr}\n{result.stdout}"
            lost = _LOST.search(output)
            if lost:
                line = next(
                    (ln.strip() for ln in output.splitlines() if lost.group(0) in ln),
                    lost.group(0),
                )
                raise DeviceLostError(
                    f"device {self.serial} disappeared while {what} (adb: {line}). Reconnect it, "
                    f"check that `adb devices` lists {self.serial} as 'device', then run the same "
                    "command again to resume (the SDK is pushed again if needed)"
                )
            raise RunnerError(
                f"adb failed while {what} (exit {result.returncode}):\n"
                f"{proc.output_tail(result)}\n{fix}"
            )
        return result

    def push(self, sources: Sequence[Path], remote_dir: str, *, what: str) -> None:
        """Copy host files into a device directory (``adb push SRC... DIR/``, adb >= 1.0.36)."""
        if not sources:
            return
        self._run(
            ["push", *map(str, sources), remote_dir.rstrip("/") + "/"],
            timeout=TRANSFER_TIMEOUT,
            what=what,
            fix="check free space on the phone (adb shell df /data/local/tmp)",
        )

    def pull(self, remotes: Sequence[str], local_dir: Path, *, what: str) -> None:
        """Copy device files into an existing host directory."""
        if not remotes:
            return
        self._run(
            ["pull", *remotes, str(local_dir)],
            timeout=TRANSFER_TIMEOUT,
            what=what,
            fix="check that the files exist on the phone",
        )

    def shell(self, script: str, *, what: str, timeout: float = SHORT_TIMEOUT) -> ShellResult:
        """Run ``script`` with the device's sh; returns its exit status and output."""
        wrapped = f"( {script} ); echo {RC_MARK}$?"
        result = self._run(
            ["shell", wrapped],
            timeout=timeout,
            what=what,
            fix="run `adb shell` by hand to check the device",
        )
        lines = result.stdout.splitlines()
        for index in range(len(lines) - 1, -1, -1):
            if lines[index].startswith(RC_MARK):
                rc = int(lines[index][len(RC_MARK) :].strip() or 1)
                stdout = "\n".join(lines[:index] + lines[index + 1 :])
                return ShellResult(rc, stdout, result.stderr)
        raise RunnerError(
            f"adb shell gave no exit status while {what}; output:\n{proc.output_tail(result)}\n"
            "check the device with `adb shell`"
        )
