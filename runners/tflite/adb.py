"""A thin ``adb`` wrapper: every call is a subprocess with a timeout, and every failure becomes a
``RunnerError``/``RunnerUnavailable`` that says what happened and how to fix it."""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from onnx_netadapt.measure.runner import RunnerError, RunnerUnavailable

logger = logging.getLogger(__name__)

# What adb prints when the device is gone, and how to fix each case.
_DEVICE_ERRORS = {
    "not found": "it is not connected",
    "no devices/emulators found": "no device is connected",
    "device offline": "it is offline",
    "unauthorized": "it has not authorized this computer (accept the USB debugging prompt)",
    "no devices found": "no device is connected",
    "device still authorizing": "it is still authorizing this computer",
}


@dataclass
class Adb:
    """``adb -s SERIAL ...`` calls.

    Attributes:
        serial: the device's serial (as ``adb devices`` lists it).
        executable: the adb program (name on PATH or path).
        timeout: default seconds per call.
    """

    serial: str
    executable: str = "adb"
    timeout: float = 60.0

    def fix(self) -> str:
        """How to get the device back (appended to device errors)."""
        return (
            "Check `adb devices`, reconnect the phone (USB debugging on, this computer "
            "authorized) and run again, passing --device SERIAL with a serial that "
            "`adb devices` lists as 'device'."
        )

    def program(self) -> str:
        """The adb executable's path.

        Raises:
            RunnerUnavailable: adb is not installed.
        """
        found = shutil.which(self.executable)
        if found is None:
            raise RunnerUnavailable(
                f"adb ({self.executable!r}) is not on PATH: install Android SDK platform-tools "
                "(https://developer.android.com/tools/releases/platform-tools) and put adb on "
                "PATH"
            )
        return found

    def devices(self) -> dict[str, str]:
        """Serial -> state (``device``, ``offline``, ``unauthorized``) of the attached devices."""
        out = self._run([self.program(), "devices"], "listing devices", self.timeout)
        found = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and not line.startswith(("List of", "*")):
                found[parts[0]] = parts[1]
        return found

    def check_device(self) -> None:
        """Raise ``RunnerError`` unless the device is attached and usable."""
        devices = self.devices()
        state = devices.get(self.serial)
        if state == "device":
            return
        listed = ", ".join(f"{s} ({st})" for s, st in devices.items()) or "none"
        what = "is not attached" if state is None else f"is {state}"
        raise RunnerError(f"adb device {self.serial!r} {what} (attached: {listed}). {self.fix()}")

    def push(self, local: Path, remote: str, timeout: float | None = None) -> None:
        """Copy ``local`` to ``remote`` on the device."""
        args = [self.program(), "-s", self.serial, "push", str(local), remote]
        self._run(args, f"pushing {local.name} to {remote}", timeout or self.timeout)

    def shell(self, command: str, timeout: float | None = None, what: str = "") -> str:
        """Output (stdout and stderr) of ``command`` run by the device's shell."""
        args = [self.program(), "-s", self.serial, "shell", command]
        return self._run(args, what or f"running `{command}`", timeout or self.timeout)

    def shell_quote(self, *words: str) -> str:
        """``words`` joined into one device shell command line."""
        return " ".join(shlex.quote(w) for w in words)

    def _run(self, args: list[str], what: str, timeout: float) -> str:
        logger.debug("adb: %s", shlex.join(args))
        try:
            proc = subprocess.run(  # one pipe keeps stdout and stderr lines in order
                args,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                errors="replace",
            )
        except subprocess.TimeoutExpired as exc:
            raise RunnerError(
                f"adb timed out after {timeout:.0f} s while {what} on {self.serial!r}: the device "
                f"may hang or have disconnected. {self.fix()}"
            ) from exc
        except OSError as exc:
            raise RunnerUnavailable(f"cannot run adb ({args[0]}): {exc}") from exc
        output = proc.stdout
        if proc.returncode != 0:
            self._raise(proc.returncode, output, what)
        return output

    def _raise(self, returncode: int, output: str, what: str) -> None:
        # adb's own messages start with "error:" or "adb:" (the device's programs print "ERROR:").
        own = [
            line.strip()
            for line in output.splitlines()
            if line.strip().startswith(("error:", "adb:"))
        ]
        for line in own:
            for needle, meaning in _DEVICE_ERRORS.items():
                if needle in line:
                    raise RunnerError(
                        f"adb lost device {self.serial!r} while {what}: {meaning} "
                        f"(adb said: {line}). {self.fix()}"
                    )
        raise RunnerError(
            f"adb failed (exit {returncode}) while {what} on {self.serial!r}:\n{_tail(output)}"
        )


def _tail(text: str, n: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-n:]) or "(no output)"
