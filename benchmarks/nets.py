"""Reference architectures for benchmarks that torchvision lacks (MobileNetV1)."""

from __future__ import annotations

from torch import nn


def _conv_bn(cin: int, cout: int, stride: int, groups: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class MobileNetV1(nn.Module):
    """MobileNetV1 (Howard et al., 2017) with a width multiplier, for 224x224 RGB input."""

    PLAN = (
        (64, 1),
        (128, 2),
        (128, 1),
        (256, 2),
        (256, 1),
        (512, 2),
        (512, 1),
        (512, 1),
        (512, 1),
        (512, 1),
        (512, 1),
        (1024, 2),
        (1024, 1),
    )

    def __init__(self, width: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        c = max(8, int(32 * width))
        layers = [_conv_bn(3, c, 2)]
        for out, stride in self.PLAN:
            out = max(8, int(out * width))
            layers += [_conv_bn(c, c, stride, groups=c), _conv_bn(c, out, 1, k=1)]
            c = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))
