"""Fashion-MNIST from its four IDX files (``*-idx?-ubyte.gz``), as Debian's
``dataset-fashion-mnist`` package installs them or as downloaded from the original source.

The training file gives the training split and the test file (t10k) the validation split.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np

from onnx_netadapt.errors import DataError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
APT_INSTALL = "sudo apt-get install dataset-fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "val": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_UBYTE = 0x08


def read_fashion(folder: Path | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train", "val"}: (x (N, 1, 28, 28) float32 in [0, 1], y (N,) int64) from ``folder``
    (default: the Debian package's folder). Raises DataError naming how to get the files."""
    raw = _read_raw(Path(folder or FASHION_DIR).expanduser().resolve())
    return {
        part: ((images.astype(np.float32) / 255.0)[:, None], labels.astype(np.int64))
        for part, (images, labels) in raw.items()
    }


@functools.cache
def _read_raw(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The uint8 arrays of ``folder``'s four files (cached: the float copies are made per call)."""
    paths = {part: [_find(folder, name) for name in names] for part, names in FILES.items()}
    missing = [
        f"{name}.gz"
        for part, names in FILES.items()
        for name, path in zip(names, paths[part], strict=True)
        if path is None
    ]
    if missing:
        where = "is not a folder" if not folder.is_dir() else f"lacks {', '.join(missing)}"
        raise DataError(
            f"Fashion-MNIST not found: {folder} {where}. Install it with `{APT_INSTALL}` "
            f"(files in {FASHION_DIR}), or give a folder holding the four files "
            "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
            "t10k-labels-idx1-ubyte.gz) as --data fashion-mnist:DIR"
        )
    out = {}
    for part, (image_path, label_path) in paths.items():
        images, labels = read_idx(image_path), read_idx(label_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(
                f"{image_path} holds {images.shape} images but {label_path} holds {labels.shape} "
                "labels: give the matching images (N, H, W) and labels (N,) files"
            )
        out[part] = (images, labels)
    return out


def _find(folder: Path, name: str) -> Path | None:
    """``folder/name.gz`` or, uncompressed, ``folder/name``; None if neither exists."""
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path) -> np.ndarray:
    """The unsigned-byte array of one IDX file (gzip-compressed when its name ends in .gz)."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as stream:
            data = stream.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path} ({exc}): replace it with an intact copy") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _UBYTE:
        raise DataError(
            f"{path} is not an unsigned-byte IDX file (magic {data[:4].hex() or 'missing'}, "
            "want 000008xx): give the Fashion-MNIST *-ubyte files"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4"))
    if len(shape) != ndim or len(data) - header != int(np.prod(shape)):
        raise DataError(
            f"{path}: the header says {shape} bytes of data but the file holds "
            f"{max(0, len(data) - header)}: the file is truncated or damaged, replace it"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
