"""Atomic model and JSON writing: a crash never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx

from onnx_netadapt.errors import OutputError
from onnx_netadapt.graph.large import is_large


def _file_mode(path: Path) -> int:
    """The mode a plain ``open(path, "w")`` would give: the existing file's, else 0666 & ~umask."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        pass
    umask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces ``path`` when the block succeeds.

    The file gets the mode a normal write would give (the umask's, or the replaced file's),
    not the 0600 of ``tempfile``; on any error the temporary file is removed and ``path`` is
    left as it was. A failing write (read-only file system, disk full) raises OutputError.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        yield Path(tmp)
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise


def save_model(model: onnx.ModelProto, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` atomically (weights in ``<path>.data`` when over ~1.9 GB)."""
    path = Path(path)
    if is_large(model):
        # onnx.save moves tensors to external data in place: work on a copy
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        with atomic_path(path) as tmp:
            onnx.save(copy, str(tmp), save_as_external_data=True, location=path.name + ".data")
        return path
    return save_bytes(model.SerializeToString(), path)


def save_bytes(data: bytes, path: str | os.PathLike) -> Path:
    """Write ``data`` to ``path`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def save_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return save_bytes(text.encode(), path)


def save_json(data: Any, path: str | os.PathLike) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    return save_text(json.dumps(data, indent=1) + "\n", path)
