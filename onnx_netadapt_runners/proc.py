"""Running host commands (SNPE tools, adb) with a timeout, turning failures into RunnerError."""

from __future__ import annotations

import logging
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from onnx_netadapt.measure.runner import RunnerError

logger = logging.getLogger(__name__)

TAIL_LINES = 15


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` non-empty lines of ``text``, indented for an error message."""
    kept = [line.rstrip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return "\n".join(f"    {line}" for line in kept) if kept else "    (no output)"


def output_tail(proc: subprocess.CompletedProcess[str]) -> str:
    """stderr's tail, or stdout's when stderr is empty (some tools log errors to stdout)."""
    return tail(proc.stderr if (proc.stderr or "").strip() else proc.stdout or "")


def run(
    cmd: Sequence[str],
    *,
    timeout: float,
    what: str,
    fix: str,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; a timeout or a command that cannot start raises ``RunnerError``.

    The exit status is left to the caller (adb failures need a closer look than "non-zero").

    Args:
        cmd: the command and its arguments.
        timeout: seconds before the command is killed.
        what: what the command does, for messages ("converting the model").
        fix: what the user can do when it fails.
        env: the environment (default: inherited).
        cwd: working directory.
    """
    logger.debug("running %s", shlex.join(cmd))
    try:
        return subprocess.run(
            list(cmd),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RunnerError(
            f"{what} timed out after {timeout:g} s ({shlex.join(cmd)}). {fix}"
        ) from exc
    except OSError as exc:
        raise RunnerError(f"{what}: cannot start {cmd[0]} ({exc}). {fix}") from exc


def run_checked(
    cmd: Sequence[str],
    *,
    timeout: float,
    what: str,
    fix: str,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Like ``run``, and a non-zero exit raises ``RunnerError`` with the tool's output tail."""
    proc = run(cmd, timeout=timeout, what=what, fix=fix, env=env, cwd=cwd)
    if proc.returncode != 0:
        raise RunnerError(
            f"{what} failed: {Path(cmd[0]).name} exited with {proc.returncode}:\n"
            f"{output_tail(proc)}\n{fix}"
        )
    return proc
