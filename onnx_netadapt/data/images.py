"""Image folders: one subfolder per class (optionally under ``train/`` and ``val/``).

Images are resized to the model's H x W, converted to grayscale for a 1-channel model and RGB
otherwise, scaled to [0, 1] and laid out as the model wants (NCHW or NHWC).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from onnx_netadapt.data.dataset import ArrayDataset
from onnx_netadapt.data.layout import image_layout
from onnx_netadapt.errors import DataError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def read_image_folder(
    root: Path, input_shape: Sequence[int | None]
) -> tuple[ArrayDataset, ArrayDataset | None, int]:
    """(train, val or None, number of classes) read from ``root``."""
    layout, channels, height, width = image_layout(input_shape)
    if height is None or width is None or channels not in (1, 3):
        raise DataError(
            f"an image folder needs a model input with fixed H, W and 1 or 3 channels; the "
            f"model input is {tuple(input_shape)}: fix its shape (--input-shape) first"
        )
    train_dir = root / "train" if (root / "train").is_dir() else root
    classes = _class_names(train_dir, exclude=("train", "val") if train_dir == root else ())
    train = _read_split(train_dir, classes, (layout, channels, height, width))
    val = None
    if (root / "val").is_dir():
        unknown = sorted(set(_class_names(root / "val")) - set(classes))
        if unknown:
            raise DataError(
                f"{root / 'val'} has classes that {train_dir} lacks: {', '.join(unknown)}; "
                "give every validation class at least a folder of training images"
            )
        val = _read_split(root / "val", classes, (layout, channels, height, width))
    logger.info("image folder %s: %d classes, %d training images", root, len(classes), len(train))
    return train, val, len(classes)


def _class_names(folder: Path, exclude: Sequence[str] = ()) -> list[str]:
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in exclude)
    if not names:
        raise DataError(
            f"{folder} has no class subfolders: put the images of each class in their own "
            "folder (e.g. data/cat/*.png, data/dog/*.png)"
        )
    return names


def _read_split(folder: Path, classes: list[str], layout: tuple) -> ArrayDataset:
    images, targets = [], []
    for index, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            continue
        for path in sorted(class_dir.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                images.append(_read_image(path, layout))
                targets.append(index)
    if not images:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise DataError(f"no images ({suffixes}) in the class folders of {folder}")
    return ArrayDataset(np.stack(images), np.asarray(targets, dtype=np.int64))


def _read_image(path: Path, layout: tuple) -> np.ndarray:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:
        raise DataError("reading an image folder needs Pillow: pip install pillow") from exc

    order, channels, height, width = layout
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"cannot read image {path} ({exc}): remove or replace it") from exc
    if channels == 1:
        pixels = pixels[:, :, None]
    return pixels if order == "NHWC" else np.transpose(pixels, (2, 0, 1))
