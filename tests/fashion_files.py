"""Tiny Fashion-MNIST-like IDX files for tests (no test needs the Debian package)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

TRAIN_N, TEST_N, SIDE = 60, 20, 28


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    """``array`` (uint8) as an IDX file (magic 0x0000 08 ndim, big-endian dims, bytes)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def make_fashion(
    folder: Path,
    seed: int = 0,
    compress: bool = True,
    train_n: int = TRAIN_N,
    test_n: int = TEST_N,
) -> dict[str, np.ndarray]:
    """Four tiny Fashion-MNIST-like files in ``folder``; the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (train_n, SIDE, SIDE), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(train_n) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (test_n, SIDE, SIDE), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(test_n)[::-1] % 10).astype(np.uint8),
    }
    for name, array in arrays.items():
        write_idx(folder / (f"{name}.gz" if compress else name), array, compress)
    return arrays
