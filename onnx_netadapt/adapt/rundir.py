"""The output directory of one adaptation, and the checkpoint that makes it resumable.

Layout::

    DIR/adapted.onnx            the final network (after the long-term fine-tune)
    DIR/iterations/net_000.onnx the original (normalised), then one network per iteration
    DIR/history.json            per iteration: group, channels, estimates, measurements, accuracy
    DIR/latency_table.json      the per-layer tables (unless --table points elsewhere)
    DIR/report.md, *.png        the report
    DIR/state.json              checkpoint: settings and where the run stands
    DIR/.onnx-netadapt          marks a folder this tool created a run in

Every file is written atomically; ``state.json`` is written last in each iteration, so a run
interrupted at any point resumes from its last finished iteration. A new run refuses a folder
that holds other files (``overwrite`` lets it write there, replacing only the files above),
and the input model is never one of its outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from onnx_netadapt.adapt.state import SCHEMA_VERSION, RunState
from onnx_netadapt.adapt.status import FINISHED
from onnx_netadapt.errors import ModelLoadError, UsageError
from onnx_netadapt.graph.save import save_json
from onnx_netadapt.paths import inside, same_file, writable_folder

# state.json versions this version reads (1: before typed records; upgraded while running).
READABLE_VERSIONS = (1, SCHEMA_VERSION)
MARKER = ".onnx-netadapt"
# What a run writes at the top of its folder (``overwrite`` replaces these and nothing else).
RUN_FILES = (
    "adapted.onnx",
    "history.json",
    "state.json",
    "report.md",
    "accuracy_vs_latency.png",
    "channels.png",
    MARKER,
)
RUN_FOLDERS = ("iterations", "proposals")
_NETWORK = re.compile(r"net_\d{3,}\.onnx|group_\d{4,}\.onnx|\..*\.tmp")


class RunDirError(UsageError):
    """The output directory cannot be used (already holds a run, or no run to resume)."""


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

    def outputs(self, table: str | os.PathLike | None = None) -> list[Path]:
        """Every path a run writes (folders included), with the latency table's."""
        table_path = Path(table) if table else self.table_path
        files = [self.path / name for name in RUN_FILES]
        return files + [self.path / name for name in RUN_FOLDERS] + [table_path]

    def check_new(
        self, model: str | os.PathLike, table: str | os.PathLike | None, overwrite: bool
    ) -> None:
        """Refuse an output folder a new run must not use, before any work.

        Refused: a file; the input model among the outputs (any option, even ``overwrite``);
        a folder holding a run (``overwrite`` starts it again) or other files (``overwrite``
        writes there anyway); a folder that cannot be written.
        """
        model = Path(model)
        if self.path.exists() and not self.path.is_dir():
            what = "the input model" if same_file(self.path, model) else "a file"
            raise RunDirError(
                f"-o {self.path} is {what}: -o takes a folder for the run's outputs "
                f"(e.g. -o {model.with_name(model.stem + '_netadapt')})"
            )
        for output in self.outputs(table):
            if same_file(output, model) or (output.suffix == "" and inside(model, output)):
                raise RunDirError(
                    f"the input model {model} is where the run writes {output}: it would be "
                    "overwritten. Move the model out of the folder or choose another -o"
                )
        table_path = Path(table) if table else self.table_path
        if table_path.is_dir():
            raise RunDirError(f"--table {table_path} is a directory: give a .json file")
        for folder in {self.path, table_path.parent}:
            if not writable_folder(folder):
                raise RunDirError(
                    f"cannot write in {folder.absolute()} (read-only file system or no "
                    "permission): choose another -o or --table"
                )
        if overwrite:
            return
        if self.state_path.exists():
            raise RunDirError(
                f"{self.path} already holds a run: continue it with --resume {self.path}, "
                "start it again with --overwrite, or choose another output directory"
            )
        foreign = self._foreign_files()
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" (+{len(foreign) - 5})" if len(foreign) > 5 else "")
            raise RunDirError(
                f"{self.path} exists and holds files this tool did not write ({shown}): choose a "
                "new or empty -o folder, or pass --overwrite to write the run there (it "
                f"replaces only its own files: {', '.join(RUN_FILES[:-1])}, iterations/)"
            )

    def _foreign_files(self) -> list[str]:
        """Entries of an existing folder that are not a (failed) start of a run of this tool."""
        if not self.path.is_dir():
            return []
        names = sorted(p.name for p in self.path.iterdir())
        if MARKER in names:  # a start of this tool that stopped before its first checkpoint
            return []
        return names

    def start(self, overwrite: bool = False) -> None:
        """Create the folder for a new run (after ``check_new``), marked as this tool's.

        With ``overwrite``, the outputs of an earlier run there are removed first (only the
        files a run writes; the latency table is kept: its entries stay valid).
        """
        if self.state_path.exists() and not overwrite:
            raise RunDirError(
                f"{self.path} already holds a run: continue it with --resume {self.path}, "
                "or choose another output directory"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        if overwrite:
            self._remove_run_files()
        save_json({"tool": "onnx-netadapt"}, self.path / MARKER)

    def _remove_run_files(self) -> None:
        for name in RUN_FILES:
            (self.path / name).unlink(missing_ok=True)
        for name in RUN_FOLDERS:
            folder = self.path / name
            if folder.is_dir() and not folder.is_symlink():
                for item in folder.iterdir():
                    if item.is_file() and _NETWORK.fullmatch(item.name):
                        item.unlink()
                if not any(folder.iterdir()):
                    folder.rmdir()

    def load_state(self) -> RunState:
        """The checkpoint of a run to resume."""
        if not self.state_path.exists():
            raise RunDirError(
                f"nothing to resume in {self.path}: no state.json (start a run with -o {self.path})"
            )
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RunDirError(
                f"cannot read {self.state_path}, the checkpoint ({exc}): the run cannot be "
                f"resumed from it. {self._what_is_left()}"
            ) from exc
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

    def _what_is_left(self) -> str:
        """What a damaged run still offers, and how to go on (for the error message)."""
        try:
            history = json.loads(self.history_path.read_text())
            last = history["history"][-1]
            model = history["model"]["path"]
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return (
                f"history.json is unreadable too; start again with -o {self.path} --overwrite "
                "(or another -o)"
            )
        return (
            f"history.json is intact: every finished iteration (up to {last['iteration']}) is "
            f"recorded there, and its last network is {self.path / last['network']}. Start again "
            f"with `onnx-netadapt {model} ... -o {self.path} --overwrite` (the latency table is "
            f"kept), or adapt the last network further with it as the MODEL and another -o"
        )

    def check_model(self, model: Path, sha256: str) -> None:
        """The model a resumed run adapts must still be where the run started."""
        if not model.is_file():
            raise ModelLoadError(
                f"the run in {self.path} adapts {model}, which is no longer there (moved or "
                f"deleted): put the same file back at that path (sha256 {sha256[:12]}...) and "
                "resume again"
            )

    def save(self, state: RunState) -> None:
        """Write history.json, then the checkpoint (atomically, after the iteration's files)."""
        save_json(state.history_dict(), self.history_path)
        save_json(state.to_dict(), self.state_path)
