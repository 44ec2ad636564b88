"""The adb client of the Android runners (SNPE, TFLite): choose the device, push, pull, run
shell commands, notice disconnects.

``adb shell`` only passes the remote exit status through with the shell v2 protocol, so
``Adb.shell`` ends every script with ``echo __NETADAPT_RC=$?`` and reads the status from the
output; ``Adb.output`` runs a plain command and trusts adb's exit status. A failure of adb
itself (exit 1 with ``error: device 'SERIAL' not found``, ``error: no devices/emulators
found``, ``device offline``...) means the phone went away and raises ``DeviceLostError``.
"""

from __future__ import annotations

import logging
import re
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from onnx_netadapt.measure.runner import RunnerError, RunnerUnavailable
from onnx_netadapt_runners import proc

logger = logging.getLogger(__name__)

RC_MARK = "__NETADAPT_RC="
ADB_FIX = (
    "install the Android platform-tools and put adb on PATH, then connect one device (adb devices)"
)

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


class DeviceUnavailable(RunnerUnavailable):
    """The device to use is not connected, not unique, or not usable (before any work)."""


class DeviceLostError(RunnerError):
    """The device disappeared (unplugged, rebooted, adb restarted) while it was in use."""


def find_adb(executable: str = "adb") -> str | None:
    """Path of the adb executable (a name on PATH or a path)."""
    return shutil.which(executable)


def connect(wanted: str | None, executable: str = "adb") -> Adb:
    """An ``Adb`` for ``wanted`` (or the only ready device).

    Raises:
        RunnerUnavailable: adb is missing (``DeviceUnavailable``: the device is not there or
            not usable).
    """
    adb_path = find_adb(executable)
    if adb_path is None:
        raise RunnerUnavailable(f"adb is not on PATH (looked for {executable!r}). {ADB_FIX}")
    return Adb(adb_path, select_device(Adb.devices(adb_path), wanted))


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
        DeviceUnavailable: no device, several devices, or the device is not usable.
    """
    listing = ", ".join(f"{d.serial} ({d.state})" for d in devices) or "none"
    if wanted:
        match = [d for d in devices if d.serial == wanted]
        if not match:
            raise DeviceUnavailable(
                f"device {wanted!r} is not connected (adb devices lists: {listing}); connect it, "
                "or choose a listed serial with device='SERIAL' (CLI: --device SERIAL)"
            )
        if not match[0].ready:
            raise DeviceUnavailable(match[0].problem())
        return wanted
    ready = [d for d in devices if d.ready]
    if len(ready) == 1:
        return ready[0].serial
    if len(ready) > 1:
        raise DeviceUnavailable(
            f"several devices are connected ({listing}); choose one with device='SERIAL' "
            "(CLI: --device SERIAL)"
        )
    if not devices:
        raise DeviceUnavailable(
            "no Android device is connected (adb devices lists none): connect the phone by USB, "
            "enable USB debugging in Developer options and accept the prompt on the phone"
        )
    raise DeviceUnavailable("; ".join(d.problem() for d in devices))


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
                    f"adb lost device {self.serial!r}: device {self.serial} disappeared while "
                    f"{what} (adb: {line}). Reconnect it, check that `adb devices` lists "
                    f"{self.serial} as 'device' (or choose another with --device SERIAL), then "
                    "run the same command again to resume"
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

    def output(self, command: str, *, what: str, timeout: float = SHORT_TIMEOUT) -> str:
        """Output (stdout, then stderr) of ``command`` run by the device's shell; a non-zero
        exit status from adb raises ``RunnerError`` (``DeviceLostError`` when the device went
        away)."""
        result = self._run(
            ["shell", command],
            timeout=timeout,
            what=what,
            fix="run `adb shell` by hand to check the device",
        )
        return "\n".join(part for part in (result.stdout, result.stderr) if part.strip())

    @staticmethod
    def quote(*words: str) -> str:
        """``words`` joined into one device shell command line."""
        return " ".join(shlex.quote(w) for w in words)
