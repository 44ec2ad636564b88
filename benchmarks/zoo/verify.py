"""Check an exported zoo model against PyTorch with onnxruntime."""

from __future__ import annotations

from pathlib import Path

from benchmarks.zoo.build import build_model
from benchmarks.zoo.catalogue import ZooModel


def verify_export(model: ZooModel, path: Path, seed: int = 0) -> tuple[float, float]:
    """Load, check and run an exported file against PyTorch.

    Rebuilds the torch model with the seed used by the export, so the weights match. Returns the
    max abs difference of the logits and the max abs value of the PyTorch logits (their scale).
    """
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    onnx_model = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(str(path))  # by path: works above 2 GB too
    assert [i.name for i in onnx_model.graph.input] == ["input"], "input must be named 'input'"
    assert [o.name for o in onnx_model.graph.output] == ["logits"], "output must be 'logits'"
    x = torch.randn(1, *model.input_size, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        expected = build_model(model.source, model.name, model.input_size, seed)(x).numpy()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {"input": x.numpy()})
    return float(np.max(np.abs(actual - expected))), float(np.max(np.abs(expected)))
