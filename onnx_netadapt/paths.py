"""Checks on output paths, done before anything is written.

An output is never the input model (also through symlinks, hard links or relative paths), never
an existing directory where a file goes, and sits where this process can write. Every output of
a command is checked before the first one is written, so a bad path never leaves half a result.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from onnx_netadapt.errors import UsageError


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file (resolved paths, or the same inode)."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether ``path`` lies in ``folder`` or below it (resolved)."""
    return Path(folder).resolve() in Path(path).resolve().parents


def writable_folder(folder: str | os.PathLike) -> bool:
    """Whether files can be created in ``folder``, or ``folder`` itself can be created."""
    probe = Path(folder).absolute()
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def check_output_file(path: Path, option: str, inputs: Iterable[Path] = ()) -> None:
    """Refuse a file output that is a directory, one of ``inputs``, or not writable.

    ``option`` names the option in the message (``-o``, ``--report``).
    """
    for source in inputs:
        if same_file(path, source):
            raise UsageError(
                f"{option} {path} is the input model {source}: it is never overwritten; "
                f"choose another {option} path"
            )
    if path.is_dir():
        raise UsageError(
            f"{option} {path} is a directory: give a file name (e.g. {path / 'pruned.onnx'})"
        )
    if not writable_folder(path.parent):
        raise UsageError(
            f"{option} {path}: cannot write in {path.parent.absolute()} (read-only file system "
            f"or no permission): choose another {option} path"
        )


def check_distinct(paths: dict[str, Path]) -> None:
    """Refuse two options that name the same output file."""
    seen: dict[Path, str] = {}
    for option, path in paths.items():
        key = path.resolve()
        if key in seen:
            raise UsageError(f"{seen[key]} and {option} name the same file {path}: give two paths")
        seen[key] = option
