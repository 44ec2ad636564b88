"""ONNX -> TFLite for whole networks, by running the ``onnx2tf`` program in a subprocess.

onnx2tf pins old onnx/numpy/TensorFlow versions, so it lives in its own virtual environment and
is only ever called as a program (``onnx2tf -i model.onnx -o outdir`` writes
``outdir/<model>_float32.tflite``); it is never imported or installed here.

For a network whose inputs are all NHWC images with 3 channels, onnx2tf checks its ops against
ONNX on sample images that it downloads from GitHub into its working folder
(``SAMPLE_IMAGES``) unless the file is already there; offline the download fails and so does the
conversion. The runner runs onnx2tf in a temporary folder holding a stand-in file of that name
(fixed-seed uniform values in [0, 1), the range of the real file): only onnx2tf's own output
check reads it.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import onnx

from onnx_netadapt.measure.runner import RunnerError, RunnerUnavailable

logger = logging.getLogger(__name__)

# What onnx2tf (checked: 1.29.24) looks for in its working folder before downloading it.
SAMPLE_IMAGES = "calibration_image_sample_data_20x128x128x3_float32.npy"

INSTALL_HINT = (
    "onnx2tf pins old onnx/numpy/TensorFlow versions, so install it in its own virtual "
    "environment, not this one: `python3 -m venv ~/venvs/onnx2tf && "
    "~/venvs/onnx2tf/bin/pip install onnx2tf` plus the pinned dependencies its README lists "
    "(tensorflow, onnx, onnx-graphsurgeon, ...), then point the runner at it with "
    "`--runner-option onnx2tf=~/venvs/onnx2tf/bin/onnx2tf` (TfliteRunner(onnx2tf=...))"
)


def find_onnx2tf(onnx2tf: str) -> str:
    """Path of the onnx2tf program (a name on PATH or a path).

    Raises:
        RunnerUnavailable: not found or not executable.
    """
    found = shutil.which(onnx2tf)
    if found is None:
        raise RunnerUnavailable(
            f"onnx2tf ({onnx2tf!r}) is not installed or not executable, and whole networks are "
            f"converted to TFLite with it. {INSTALL_HINT}"
        )
    return str(Path(found).absolute())  # onnx2tf runs in a temporary folder


def write_sample_images(path: Path) -> None:
    """The stand-in for onnx2tf's sample images (20 x 128 x 128 x 3, float32, in [0, 1))."""
    images = np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32)
    np.save(path, images)


def onnx_to_tflite(model: onnx.ModelProto, onnx2tf: str = "onnx2tf", timeout: float = 900) -> bytes:
    """The float32 ``.tflite`` that onnx2tf makes of ``model``.

    Raises:
        RunnerUnavailable: onnx2tf is missing.
        RunnerError: it fails, times out or writes no ``*_float32.tflite``.
    """
    program = find_onnx2tf(onnx2tf)
    with tempfile.TemporaryDirectory(prefix="onnx_netadapt_onnx2tf_") as tmp:
        src, out = Path(tmp) / "model.onnx", Path(tmp) / "tflite"
        onnx.save(model, src)
        write_sample_images(Path(tmp) / SAMPLE_IMAGES)
        args = [program, "-i", str(src), "-o", str(out)]
        logger.info("converting to TFLite: %s", " ".join(args))
        try:
            proc = subprocess.run(
                args, capture_output=True, text=True, timeout=timeout, errors="replace", cwd=tmp
            )
        except subprocess.TimeoutExpired as exc:
            raise RunnerError(f"onnx2tf did not finish within {timeout:.0f} s") from exc
        except OSError as exc:
            message = f"cannot run onnx2tf ({program}): {exc}. {INSTALL_HINT}"
            raise RunnerUnavailable(message) from exc
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
        if proc.returncode != 0:
            raise RunnerError(f"onnx2tf failed (exit {proc.returncode}); it printed:\n{tail}")
        found = sorted(out.glob("*_float32.tflite"))
        if not found:
            listed = ", ".join(p.name for p in sorted(out.glob("*"))) or "nothing"
            raise RunnerError(
                f"onnx2tf wrote no *_float32.tflite to its output folder (it wrote: {listed}); "
                f"it printed:\n{tail}"
            )
        return found[0].read_bytes()
