"""The embedded default model: a tiny, fast build of examples/adapt_demo/build.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from onnx_netadapt import analyse, load_model
from onnx_netadapt.data.builtin import load_builtin

DEMO = Path(__file__).resolve().parents[1] / "examples" / "adapt_demo"


def _example(name: str):
    """Import examples/adapt_demo/<name>.py under a unique module name."""
    spec = importlib.util.spec_from_file_location(f"adapt_demo_{name}", DEMO / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _example("build")  # puts examples/adapt_demo on sys.path for its own `import nets`
nets = _example("nets")


@pytest.mark.parametrize("arch", ["mobilenet_v1", "resnet"])
def test_tiny_build_loads_runs_agrees_and_is_prunable(tmp_path, arch):
    record = build.build_model(arch, width=0.25, out=tmp_path, epochs=1, limit=256, threads=1)
    path = Path(record["path"])
    assert path.is_file() and path.parent == tmp_path
    assert json.loads(path.with_suffix(".json").read_text())["params"] == record["params"]
    assert 0.0 <= record["val_accuracy"] <= 1.0 and record["train_examples"] == 256
    assert record["batchnorm_nodes"] > 0  # BatchNorm kept as separate nodes

    # the same seed gives the same network: torch and ONNX Runtime agree on it
    net, _, _ = build.train_net(arch, 0.25, epochs=1, seed=0, limit=256)
    _, val = load_builtin("mnist5k")
    x = val.x[:16]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"image": x})[0]
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)

    loaded = load_model(path, {"image": (1, 1, 28, 28)})
    analysis = analyse(loaded)
    assert sum(g.prunable for g in analysis.groups) >= 3


def test_width_multiplier_rounds_to_multiples_of_8():
    assert [nets.channels(c, 0.25) for c in (32, 64, 256)] == [8, 16, 64]
    assert nets.channels(32, 0.1) == 8
    small, full = nets.make_net("mobilenet_v1", 0.5), nets.make_net("mobilenet_v1", 1.0)
    assert small.classifier.in_features == 128 and full.classifier.in_features == 256
    assert nets.make_net("resnet", 1.0).classifier.in_features == 128
    with pytest.raises(ValueError, match="unknown arch"):
        nets.make_net("vgg")
