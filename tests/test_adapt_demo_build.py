"""The embedded default model: a tiny, fast build of onnx_netadapt/demo/build.py (the recipe of
examples/adapt_demo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from onnx_netadapt import analyse, load_model
from onnx_netadapt.data.builtin import load_builtin
from onnx_netadapt.demo import build, nets
from onnx_netadapt.finetune.train import torch_threads

DEMO = Path(__file__).resolve().parents[1] / "examples" / "adapt_demo"


@pytest.mark.parametrize("arch", ["mobilenet_v1", "resnet"])
def test_tiny_build_loads_runs_agrees_and_is_prunable(tmp_path, arch):
    record = build.build_model(arch, width=0.25, out=tmp_path, epochs=1, limit=256, threads=1)
    path = Path(record["path"])
    assert path.is_file() and path.parent == tmp_path
    assert json.loads(path.with_suffix(".json").read_text())["params"] == record["params"]
    assert 0.0 <= record["val_accuracy"] <= 1.0 and record["train_examples"] == 256
    assert record["batchnorm_nodes"] > 0  # BatchNorm kept as separate nodes

    # the same seed and thread count give the same network: torch and ONNX Runtime agree on it
    # (with another thread count, torch sums in another order: on a Zen 3 host without
    # AVX-512 the retrained ResNet's logits then differed by 1.9e-4)
    with torch_threads(1):  # as the build above
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
    lite = nets.make_net("mobilenet_v1_lite", 1.0)
    widest = max(m.out_channels for m in lite.modules() if isinstance(m, torch.nn.Conv2d))
    assert widest == 128 and lite.classifier.in_features == 128
    resnet_lite = nets.make_net("resnet_lite", 1.0)
    assert len(resnet_lite.stages) == 3 and resnet_lite.classifier.in_features == 64
    with pytest.raises(ValueError, match="unknown arch"):
        nets.make_net("vgg")


@pytest.mark.parametrize("script", ["build.py", "run.py"])
def test_demo_scripts_import_without_path_hacks(tmp_path, script):
    """The demo's scripts find the network builders through the installed package (here the
    checkout on PYTHONPATH), started from another directory."""
    repo = DEMO.parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.run(
        [sys.executable, str(DEMO / script), "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout
    assert "sys.path" not in (DEMO / script).read_text()
