"""The output directory of one adaptation, and the checkpoint that makes it resumable.

Layout::

    DIR/adapted.onnx            the final network (after the long-term fine-tune)
    DIR/iterations/net_000.onnx the original (normalised), then one network per iteration
    DIR/history.json            per iteration: group, channels, estimates, measurements, accuracy
    DIR/latency_table.json      the per-layer tables (unless --table points elsewhere)
    DIR/report.md, *.png        the report
    DIR/state.json              checkpoint: settings and where the run stands

Every file is written atomically; ``state.json`` is written last in each iteration, so a run
interrupted at any point resumes from its last finished iteration.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from onnx_netadapt.adapt.state import SCHEMA_VERSION, RunState
from onnx_netadapt.adapt.status import FINISHED
from onnx_netadapt.errors import NetAdaptError
from onnx_netadapt.graph.save import save_json

# state.json versions this version reads (1: before typed records; upgraded while running).
READABLE_VERSIONS = (1, SCHEMA_VERSION)


class RunDirError(NetAdaptError):
    """The output directory cannot be used (already holds a run, or no run to resume)."""

    exit_code = 2


def file_digest(path: Path) -> str:
    """SHA-256 of a file (to check that --resume sees the same input model)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class RunDir:
    """Paths and checkpoint I/O of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def state_path(self) -> Path:
        """The checkpoint."""
        return self.path / "state.json"

    @property
    def history_path(self) -> Path:
        """Per-iteration history."""
        return self.path / "history.json"

    @property
    def adapted_path(self) -> Path:
        """The final network."""
        return self.path / "adapted.onnx"

    @property
    def table_path(self) -> Path:
        """Default latency table location."""
        return self.path / "latency_table.json"

    def network_path(self, iteration: int) -> Path:
        """Network of ``iteration`` (0: the original)."""
        return self.path / "iterations" / f"net_{iteration:03d}.onnx"

    def proposal_dir(self) -> Path:
        """Scratch space for the proposals of the running iteration."""
        return self.path / "proposals"

    def start(self) -> None:
        """Create the directory for a new run; refuse one that holds a run already."""
        if self.state_path.exists():
            raise RunDirError(
                f"{self.path} already holds a run: continue it with --resume {self.path}, "
                "or choose another output directory"
            )
        self.path.mkdir(parents=True, exist_ok=True)

    def load_state(self) -> RunState:
        """The checkpoint of a run to resume."""
        if not self.state_path.exists():
            raise RunDirError(
                f"nothing to resume in {self.path}: no state.json (start a run with -o {self.path})"
            )
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RunDirError(f"cannot read {self.state_path}: {exc}") from exc
        version = state.get("version")
        if version not in READABLE_VERSIONS:
            raise RunDirError(
                f"{self.state_path} was written by another version of onnx-netadapt "
                f"(state version {version}, this one reads {READABLE_VERSIONS})"
            )
        if version == 1 and state.get("status") == FINISHED:
            raise RunDirError(
                f"the run in {self.path} finished under an older version of onnx-netadapt: "
                "its results are in history.json and report.md; there is nothing to resume"
            )
        try:
            return RunState.from_dict(state)
        except (TypeError, KeyError, ValueError) as exc:
            raise RunDirError(
                f"{self.state_path} is not a run state this version reads ({exc})"
            ) from exc

    def save(self, state: RunState) -> None:
        """Write history.json, then the checkpoint (atomically, after the iteration's files)."""
        save_json(state.history_dict(), self.history_path)
        save_json(state.to_dict(), self.state_path)
