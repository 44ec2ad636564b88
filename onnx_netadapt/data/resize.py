"""Plain bilinear resizing of image batches (N, C, H, W) in numpy.

Half-pixel centres and edge clamping, as ``torch.nn.functional.interpolate(mode="bilinear",
align_corners=False, antialias=False)``: each axis is one small interpolation matrix.
"""

from __future__ import annotations

import numpy as np

_CHUNK = 4096  # images resized at once (bounds the temporary arrays)


def interpolation_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) weights of 1-D linear interpolation with half-pixel centres."""
    centres = (np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5
    centres = np.clip(centres, 0.0, size_in - 1)
    low = np.floor(centres).astype(np.int64)
    high = np.minimum(low + 1, size_in - 1)
    frac = centres - low
    matrix = np.zeros((size_out, size_in), dtype=np.float64)
    rows = np.arange(size_out)
    np.add.at(matrix, (rows, low), 1.0 - frac)
    np.add.at(matrix, (rows, high), frac)
    return matrix


def resize_bilinear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``x`` (N, C, H, W) resized to (N, C, *size), float32."""
    height, width = size
    rows = interpolation_matrix(x.shape[-2], height).astype(np.float32)
    cols = interpolation_matrix(x.shape[-1], width).T.astype(np.float32)
    out = np.empty((*x.shape[:-2], height, width), dtype=np.float32)
    for start in range(0, len(x), _CHUNK):
        out[start : start + _CHUNK] = rows @ x[start : start + _CHUNK].astype(np.float32) @ cols
    return out
