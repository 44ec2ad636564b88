"""Demo: export a small MobileNetV1-style network, list its channel groups, prune it, verify.

Run from the repository root:  python examples/prune_demo/run.py [--out DIR]

It writes DIR/mobilenet_v1_small.onnx, DIR/pruned.onnx and DIR/prune_report.json, and checks the
pruned model against the masked original (the correctness oracle) in ONNX Runtime.
"""

from __future__ import annotations

import argparse
import io
import warnings
from pathlib import Path

import torch
from torch import nn

from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.graph.save import save_json, save_model
from onnx_netadapt.measure.metrics import parameter_count
from onnx_netadapt.verify import check_against_masked


def conv_bn(cin: int, cout: int, stride: int, groups: int = 1, k: int = 3) -> nn.Sequential:
    """Conv-BN-ReLU6."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class MobileNetV1Small(nn.Module):
    """A MobileNetV1 at width 0.25 for 28x28 single-channel images (10 classes)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        widths = [(8, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2)]
        layers = [conv_bn(1, 8, 1)]
        for cin, cout, stride in widths:
            layers += [conv_bn(cin, cin, stride, groups=cin), conv_bn(cin, cout, 1, k=1)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean((2, 3))
        return self.classifier(x)


def export(model: nn.Module, path: Path) -> None:
    """Export with the legacy exporter (opset 17), quietly."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            torch.randn(1, 1, 28, 28),
            buffer,
            dynamo=False,
            opset_version=17,
            input_names=["image"],
            output_names=["logits"],
        )
    path.write_bytes(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/prune_demo"))
    parser.add_argument("--ratio", type=float, default=0.5)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    source = args.out / "mobilenet_v1_small.onnx"
    export(MobileNetV1Small(), source)

    analysis = analyse(load_model(source))
    summary = analysis.summary()
    print(
        f"{source}: {summary['groups']} channel groups, {summary['prunable_groups']} prunable, "
        f"{100 * summary['prunable_share']:.0f}% of Conv/Gemm output channels prunable"
    )
    result = prune(analysis, ratio=args.ratio)
    outcome = check_against_masked(analysis, result)
    save_model(result.model, args.out / "pruned.onnx")
    save_json(result.report, args.out / "prune_report.json")
    before, after = parameter_count(analysis.loaded.model), parameter_count(result.model)
    print(
        f"kept {args.ratio:.0%} of every prunable group: parameters {before:,} -> {after:,}; "
        f"oracle {'passed' if outcome.ok else 'FAILED'} (max |diff| {outcome.max_abs_diff:.2g})"
    )
    print(f"wrote {args.out / 'pruned.onnx'} and {args.out / 'prune_report.json'}")
    if not outcome.ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
