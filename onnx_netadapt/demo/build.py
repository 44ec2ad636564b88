"""The embedded default's model: train a small network from scratch on a builtin data set
(mnist5k by default; training split only) and export it to ONNX (opset 17, dynamic batch,
BatchNormalization kept as separate nodes), checked against torch.

Used by ``examples/adapt_demo`` (the README's first command) and by the benchmarks that compare
NetAdapt with the width-multiplier baseline (``benchmarks/compare*.py``).
"""

from __future__ import annotations

import io
import logging
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from onnx_netadapt.data.builtin import load_builtin
from onnx_netadapt.data.dataset import ArrayDataset
from onnx_netadapt.demo.nets import make_net
from onnx_netadapt.evaluate import accuracy
from onnx_netadapt.finetune.train import torch_threads
from onnx_netadapt.graph.save import save_json, save_model

logger = logging.getLogger(__name__)

DEFAULT_EPOCHS = 6
SHIFT = 2  # random shifts of up to this many pixels (augmentation)


def build_model(
    arch: str = "mobilenet_v1",
    width: float = 1.0,
    out: Path = Path("out/adapt_demo"),
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 0,
    limit: int | None = None,
    batch_size: int = 64,
    lr: float = 0.1,
    threads: int | None = None,
    data: str = "mnist5k",
) -> dict:
    """Train ``arch`` at ``width`` on the training split of the builtin ``data`` (mnist5k,
    fashion-mnist, ...; its image size is the model's input size) and export it to ``out``.

    ``limit`` trains on the first ``limit`` training examples only (for quick tests). The same
    seed gives the same weights. Returns {"path", "val_accuracy", "train_seconds", "params",
    ...}; the same record is written to ``<model>.json``.
    """
    threads = threads or os.cpu_count() or 1
    with torch_threads(threads):
        net, train_seconds, train_examples = train_net(
            arch, width, epochs, seed, limit, batch_size=batch_size, lr=lr, data=data
        )
        _, val = load_builtin(data)
        model = export(net, val.x.shape[-2:])
        max_diff = check_against_torch(net, model, val.x[:64])
    val_accuracy = accuracy(model, val, threads=threads)
    path = Path(out) / f"{arch}_w{width:g}.onnx"
    save_model(model, path)
    record = {
        "path": str(path),
        "val_accuracy": val_accuracy,
        "train_seconds": round(train_seconds, 2),
        "params": sum(p.numel() for p in net.parameters()),
        "arch": arch,
        "width": width,
        "epochs": epochs,
        "seed": seed,
        "data": data,
        "train_examples": train_examples,
        "val_examples": len(val),
        "ort_torch_max_abs_diff": max_diff,
        "batchnorm_nodes": sum(n.op_type == "BatchNormalization" for n in model.graph.node),
    }
    save_json(record, path.with_suffix(".json"))
    logger.info("built %s", record)
    return record


def train_net(
    arch: str,
    width: float,
    epochs: int,
    seed: int = 0,
    limit: int | None = None,
    batch_size: int = 64,
    lr: float = 0.1,
    data: str = "mnist5k",
) -> tuple[nn.Module, float, int]:
    """(network in eval mode, training seconds, training examples); the seed fixes the weights."""
    train, _ = load_builtin(data)  # the training split only: never the validation split
    if limit is not None:
        train = train.subset(np.arange(min(limit, len(train))))
    torch.manual_seed(seed)
    net = make_net(arch, width)
    start = time.perf_counter()
    fit(net, train, epochs, batch_size, lr, seed)
    return net.eval(), time.perf_counter() - start, len(train)


def fit(
    net: nn.Module, data: ArrayDataset, epochs: int, batch_size: int, lr: float, seed: int
) -> None:
    """SGD with Nesterov momentum, a cosine schedule with warmup, and random shifts."""
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    steps = epochs * -(-len(x) // batch_size)
    optimizer = torch.optim.SGD(
        net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * step / steps)),
    )
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            batch = random_shift(x[idx], SHIFT, generator)
            loss = loss_fn(net(batch), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(idx)
        logger.info("epoch %d/%d: loss %.4f", epoch + 1, epochs, total / len(x))


def random_shift(x: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each image (N, C, H, W) moved by up to ``shift`` pixels in each direction (zero fill)."""
    if shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (shift, shift, shift, shift))
    dy, dx = torch.randint(0, 2 * shift + 1, (2, n, 1), generator=generator)
    rows = (dy + torch.arange(h))[:, None, :, None]
    cols = (dx + torch.arange(w))[:, None, None, :]
    batch = torch.arange(n)[:, None, None, None]
    channel = torch.arange(x.shape[1])[None, :, None, None]
    return padded[batch, channel, rows, cols]


def export(net: nn.Module, size: tuple[int, int] = (28, 28)) -> onnx.ModelProto:
    """The eval-mode network (input 1 x ``size``) as ONNX (opset 17, dynamic batch), BatchNorm
    kept as nodes."""
    model = export_dynamic_batch(net, (1, 1, *size))
    onnx.checker.check_model(model)
    return model


def export_dynamic_batch(
    net: nn.Module, input_shape: Sequence[int], keep_batchnorm: bool = True
) -> onnx.ModelProto:
    """``net`` (in eval mode) exported by the legacy exporter, opset 17, with input ``image`` and
    output ``logits`` whose first axis is a dynamic ``batch``.

    With ``keep_batchnorm`` BatchNormalization stays a node of its own (no constant folding);
    without it the exporter folds BatchNorm into the convolutions before it.
    """
    buffer = io.BytesIO()
    keep: dict = {"training": torch.onnx.TrainingMode.PRESERVE, "do_constant_folding": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.zeros(*input_shape),),
            buffer,
            dynamo=False,
            opset_version=17,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            **(keep if keep_batchnorm else {}),
        )
    return onnx.load_from_string(buffer.getvalue())


def check_against_torch(net: nn.Module, model: onnx.ModelProto, x: np.ndarray) -> float:
    """Max |logits difference| between ONNX Runtime and torch on ``x``; raises if over 1e-3."""
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"image": x})[0]
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    diff = float(np.abs(got - want).max())
    if diff > 1e-3:
        raise RuntimeError(f"ONNX Runtime and torch disagree: max |diff| {diff:.3g}")
    return diff
