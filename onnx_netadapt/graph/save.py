"""Atomic model and JSON writing: a crash never leaves a half-written output behind."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import onnx

from onnx_netadapt.graph.large import is_large


def _atomic_target(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


def save_model(model: onnx.ModelProto, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` atomically (weights in ``<path>.data`` when over ~1.9 GB)."""
    path = Path(path)
    if is_large(model):
        # onnx.save moves tensors to external data in place: work on a copy
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        data_name = path.name + ".data"
        fd, tmp = _atomic_target(path)
        os.close(fd)
        try:
            onnx.save(copy, tmp, save_as_external_data=True, location=data_name)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
    return save_bytes(model.SerializeToString(), path)


def save_bytes(data: bytes, path: str | os.PathLike) -> Path:
    """Write ``data`` to ``path`` atomically."""
    path = Path(path)
    fd, tmp = _atomic_target(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return save_bytes(text.encode(), path)


def save_json(data: Any, path: str | os.PathLike) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    return save_text(json.dumps(data, indent=1) + "\n", path)
