"""Rendered text lines for the PP-OCRv4 recogniser shipped in the ``rapidocr_onnxruntime`` wheel.

Nothing is downloaded: the model comes out of the installed wheel, the images are rendered with
PIL and the DejaVu fonts (random strings of digits and Latin letters, several fonts and sizes,
grey levels, slight blur and noise), preprocessed as rapidocr does (height 48, aspect kept,
``(x / 255 - 0.5) / 0.5``, right-padded with 0 to width 320).

    --data benchmarks.ocr_lines:splits       # no targets: the loop distils the original
    --data benchmarks.ocr_lines:splits_small # a quick check
    --task benchmarks.ocr_lines:CtcDistill   # distil; score by agreement of the decoded texts
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from onnx_netadapt.tasks import TaskScore
from onnx_netadapt.tasks.distill import Distill

HEIGHT, WIDTH = 48, 320
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
# 4,000 training lines: the long fine-tune needs about 1,000 steps of fresh-looking lines to win
# the reading back (benchmarks/results/adapt_task/long_finetune/); 800 were far too few.
SIZES = {"train": 4000, "holdout": 128, "val": 256}
SMALL = {"train": 48, "holdout": 16, "val": 32}  # a quick check that everything runs
SEEDS = {"train": 0, "holdout": 1, "val": 2}


def model_path(name: str = "ch_PP-OCRv4_rec_infer.onnx") -> Path:
    """A model file inside the installed rapidocr_onnxruntime wheel."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or spec.origin is None:
        raise SystemExit(
            "rapidocr_onnxruntime is not installed: pip install -c constraints.txt --no-deps "
            "rapidocr_onnxruntime==1.4.4 (the wheel ships the PP-OCRv4 ONNX models)"
        )
    return Path(spec.origin).parent / "models" / name


@lru_cache(maxsize=1)
def characters() -> list[str]:
    """The recogniser's classes: blank, its dictionary (model metadata), then space."""
    import onnx

    model = onnx.load(str(model_path()), load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    return ["blank", *meta["character"].splitlines(), " "]


def _fonts() -> list[Path]:
    fonts = sorted(FONT_DIR.glob("DejaVu*.ttf"))
    if not fonts:
        raise SystemExit(f"no DejaVu fonts in {FONT_DIR}: apt-get install fonts-dejavu-core")
    return [f for f in fonts if "ExtraLight" not in f.name]


def render(text: str, rng: np.random.Generator) -> np.ndarray:
    """One text line as the recogniser's input (3, 48, 320), float32."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    fonts = _fonts()
    font = ImageFont.truetype(str(fonts[rng.integers(len(fonts))]), int(rng.integers(26, 40)))
    left, top, right, bottom = font.getbbox(text)
    pad = int(rng.integers(2, 8))
    background = int(rng.integers(170, 256))
    ink = int(rng.integers(0, 90))
    image = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), background)
    ImageDraw.Draw(image).text((pad - left, pad - top), text, fill=ink, font=font)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.0))))
    width = min(WIDTH, max(8, int(np.ceil(HEIGHT * image.width / image.height))))
    image = image.resize((width, HEIGHT), Image.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels + rng.normal(0, 4, pixels.shape)
    line = np.zeros((3, HEIGHT, WIDTH), np.float32)
    line[:, :, :width] = (np.clip(pixels, 0, 255) / 255.0 - 0.5) / 0.5
    return line


def lines(count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """``count`` rendered lines (N, 3, 48, 320) and their texts."""
    rng = np.random.default_rng(seed)
    texts = ["".join(rng.choice(list(ALPHABET), int(rng.integers(4, 11)))) for _ in range(count)]
    return np.stack([render(t, rng) for t in texts]), texts


def splits() -> dict[str, tuple[np.ndarray, None]]:
    """The ``--data`` callable: train/holdout/val inputs, no targets (distillation)."""
    return {part: (lines(n, SEEDS[part])[0], None) for part, n in SIZES.items()}


def splits_small() -> dict[str, tuple[np.ndarray, None]]:
    """A few lines per part, to check that a run goes through (figures mean nothing)."""
    return {part: (lines(n, SEEDS[part])[0], None) for part, n in SMALL.items()}


def decode(probs: np.ndarray) -> list[str]:
    """Greedy CTC decoding of (N, T, C) class probabilities (blank = 0)."""
    chars = characters()
    best = probs.argmax(axis=-1)
    texts = []
    for row in best:
        keep = [c for i, c in enumerate(row) if c != 0 and (i == 0 or c != row[i - 1])]
        texts.append("".join(chars[c] for c in keep))
    return texts


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def ocr_scores(predicted: list[str], truth: list[str]) -> dict[str, float]:
    """Line accuracy (exact match) and character accuracy (1 - edit distance / length)."""
    exact = np.mean([p == t for p, t in zip(predicted, truth, strict=True)])
    errors = sum(edit_distance(p, t) for p, t in zip(predicted, truth, strict=True))
    return {
        "line_accuracy": float(exact),
        "char_accuracy": float(1 - errors / sum(len(t) for t in truth)),
    }


class CtcDistill(Distill):
    """``distill`` for a CTC recogniser, scored by what matters: the character accuracy of the
    proposal's greedy decoding against the original's (no labels needed).

    Averaged over time steps, output fidelity is dominated by blank steps (a network that
    outputs only blanks still scores about 0.7), so it cannot rank recognisers."""

    name = "ctc_distill"
    description = "distill; score: character agreement of greedy CTC decodings"
    score_name = "char agreement with the original"
    score_unit = "%"

    def score(self, outputs, targets, reference):
        fidelity = super().score(outputs, targets, reference)
        got, want = decode(outputs[0]), decode(reference[0])
        errors = sum(edit_distance(g, w) for g, w in zip(got, want, strict=True))
        agreement = max(0.0, 1.0 - errors / max(1, sum(len(w) for w in want)))
        return TaskScore(agreement, fidelity.loss)
