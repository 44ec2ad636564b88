"""Install one of the example plugin packages under examples/ into a private folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def install_example(name: str, target: Path) -> Path:
    """``pip install`` examples/``name`` into ``target`` (no dependencies, no build isolation:
    nothing is downloaded); put ``target`` on sys.path to import it."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(EXAMPLES / name),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target
