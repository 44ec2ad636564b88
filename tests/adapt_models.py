"""A tiny trained CNN on scikit-learn's digits (8x8), exported to ONNX, for loop tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from onnx_netadapt.adapt import AdaptConfig, parse_budget
from onnx_netadapt.demo import build as demo_build


def _block(cin: int, cout: int, stride: int = 1, groups: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


class TinyDigitsNet(nn.Module):
    """Conv stem, a depthwise-separable block, a residual 1x1 pair, pooling, classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _block(1, 32)
        self.dw = _block(32, 32, 2, groups=32)
        self.pw = _block(32, 48, k=1)
        self.res = nn.Sequential(_block(48, 48, k=1), _block(48, 48, k=1))
        self.head = nn.Linear(48, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pw(self.dw(self.stem(x)))
        x = x + self.res(x)
        return self.head(x.mean((2, 3)))


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as (N,1,8,8) float32 in [0,1] and int64 labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]
    return x, bunch.target.astype(np.int64)


def build_tiny_digits(path: Path, epochs: int = 15, seed: int = 0) -> Path:
    """Train ``TinyDigitsNet`` for a few epochs (a couple of seconds) and export it."""
    torch.manual_seed(seed)
    x, y = digits_arrays()
    model = TinyDigitsNet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x[:1400]), torch.from_numpy(y[:1400])
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return export_dynamic_batch(model.eval(), path)


def export_dynamic_batch(model: nn.Module, path: Path) -> Path:
    """``model`` (1x8x8 digits in, ``logits`` out) exported with a dynamic ``batch`` dimension
    (BatchNorm folded) to ``path``."""
    proto = demo_build.export_dynamic_batch(model, (1, 1, 8, 8), keep_batchnorm=False)
    path.write_bytes(proto.SerializeToString())
    return path


def tiny_digits_config(**overrides: object) -> AdaptConfig:
    """Loop settings for the tiny digits network: MACs as the (deterministic) target, a budget
    of 0.6, big steps and short fine-tunes so a whole run takes seconds."""
    settings: dict[str, object] = {
        "target": "macs",
        "budgets": [parse_budget("0.6")],
        "data": "digits",
        "step": 0.15,
        "decay": 1.0,
        "short_steps": 8,
        "long_epochs": 0.5,
        "batch_size": 32,
        "holdout_per_class": 5,
        "input_shapes": {"image": [1, 1, 8, 8]},
    }
    settings.update(overrides)
    return AdaptConfig(**settings)  # type: ignore[arg-type]


def read_history(run_dir: Path) -> dict:
    """The run's history.json."""
    return json.loads((run_dir / "history.json").read_text())
