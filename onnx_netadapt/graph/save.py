"""Atomic model and JSON writing: a crash never leaves a half-written output behind."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import onnx

# Protobuf cannot serialise a single message over 2 GiB; above this, weights go to a side file.
EXTERNAL_DATA_THRESHOLD = 1_800_000_000


def _atomic_target(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


def save_model(model: onnx.ModelProto, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` atomically (external data beside it when over ~1.8 GB)."""
    path = Path(path)
    if model.ByteSize() > EXTERNAL_DATA_THRESHOLD:
        data_name = path.name + ".data"
        onnx.save(model, str(path), save_as_external_data=True, location=data_name)
        return path
    fd, tmp = _atomic_target(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(model.SerializeToString())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_json(data: Any, path: str | os.PathLike) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    path = Path(path)
    fd, tmp = _atomic_target(path)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
