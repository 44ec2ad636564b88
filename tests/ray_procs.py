"""Ray's worker processes, found by the title Ray gives them (``ray::<function or class>``)."""

from __future__ import annotations

from pathlib import Path


def ray_pids(title: bytes) -> list[int]:
    """Live processes whose command line holds ``title`` (e.g. b"ray::_evaluate_task")."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title in cmdline:
                pids.append(int(entry.name))
    return pids
