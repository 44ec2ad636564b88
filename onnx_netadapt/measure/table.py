"""The latency look-up table: measured cost per layer signature, filled lazily, kept on disk.

One JSON file can hold tables of several runner setups, each keyed by a hash of the runner's
fingerprint, so entries measured on one device never leak into another's estimates. Saving takes
an exclusive lock, re-reads the file and merges, then replaces it atomically: two processes can
share a table. A truncated or corrupt file is set aside with a warning and rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from onnx_netadapt.graph.save import save_text
from onnx_netadapt.measure.runner import Runner
from onnx_netadapt.measure.signature import LayerSignature
from onnx_netadapt.measure.stats import LatencyStats

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1


def fingerprint_key(fingerprint: dict[str, str]) -> str:
    """Short stable hash of a runner fingerprint."""
    text = json.dumps(fingerprint, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class LatencyTable:
    """Per-signature measurements of one runner setup.

    Args:
        fingerprint: the runner's fingerprint (``runner.fingerprint()``).
        path: JSON file to load from and save to; None keeps the table in memory.

    Attributes:
        measurements: how many signatures this object had measured (not loaded).
    """

    def __init__(self, fingerprint: dict[str, str], path: str | os.PathLike | None = None) -> None:
        self.fingerprint = dict(fingerprint)
        self.key = fingerprint_key(self.fingerprint)
        self.path = Path(path) if path is not None else None
        self.entries: dict[str, LatencyStats] = {}
        self.measurements = 0
        self.measure_seconds = 0.0
        if self.path is not None and self.path.exists():
            with self._locked():
                self.entries.update(self._read_entries())

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, signature: LayerSignature) -> LatencyStats | None:
        """The stored entry for ``signature``, if any."""
        return self.entries.get(signature.key())

    def lookup(
        self, signatures: Sequence[LayerSignature], runner: Runner
    ) -> dict[LayerSignature, LatencyStats]:
        """Entries for ``signatures``, measuring (and saving) only the missing ones."""
        missing = [s for s in dict.fromkeys(signatures) if s.key() not in self.entries]
        if missing:
            start = time.perf_counter()
            measured = runner.measure_layers(missing)
            self.measure_seconds += time.perf_counter() - start
            self.measurements += len(measured)
            for sig, stats in measured.items():
                self.entries[sig.key()] = stats
            self.save()
        return {s: self.entries[s.key()] for s in signatures}

    def save(self) -> None:
        """Merge into the file under an exclusive lock and replace it atomically."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            data = self._read_file()
            section = data["tables"].setdefault(
                self.key, {"fingerprint": self.fingerprint, "entries": {}}
            )
            for key, stats in self.entries.items():
                section["entries"][key] = stats.to_dict()
            self.entries.update(
                {k: LatencyStats.from_dict(v) for k, v in section["entries"].items()}
            )
            save_text(json.dumps(data, indent=0, sort_keys=True), self.path)

    # -- file handling ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(str(self.path) + ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read_entries(self) -> dict[str, LatencyStats]:
        section = self._read_file()["tables"].get(self.key, {})
        return {k: LatencyStats.from_dict(v) for k, v in section.get("entries", {}).items()}

    def _read_file(self) -> dict:
        assert self.path is not None
        empty = {"schema_version": SCHEMA_VERSION, "tables": {}}
        if not self.path.exists():
            return empty
        try:
            data = json.loads(self.path.read_text())
            if data.get("schema_version") != SCHEMA_VERSION or not isinstance(
                data.get("tables"), dict
            ):
                raise ValueError(f"schema version {data.get('schema_version')!r}")
            for section in data["tables"].values():
                for value in section["entries"].values():
                    LatencyStats.from_dict(value)
            return data
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            os.replace(self.path, aside)
            message = (
                f"latency table {self.path} is unreadable ({exc}); moved it to {aside} "
                "and starting a new one (entries will be re-measured)"
            )
            logger.warning(message)  # once: the CLI shows warnings through logging
            return empty
