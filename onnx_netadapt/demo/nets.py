"""Small MNIST classifiers (1x28x28 in, 10 logits out) with a uniform width multiplier.

Every channel count is ``max(8, round(c * width / 8) * 8)``, so ``width`` narrows all layers
alike: the "width multiplier" baseline that NetAdapt's per-layer pruning is compared with.
"""

from __future__ import annotations

import torch
from torch import nn


def channels(count: int, width: float) -> int:
    """``count`` scaled by ``width``, rounded to a multiple of 8 (at least 8)."""
    return max(8, round(count * width / 8) * 8)


def conv_bn_relu(
    cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    """Conv (no bias) + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class MobileNetV1Mnist(nn.Module):
    """MobileNetV1 for 28x28 digits: a 3x3 stem, 7 depthwise-separable blocks, 4x4 final map.

    At width 1.0: 32 stem channels, blocks up to 256 channels, about 0.22 M parameters.
    """

    # (output channels, stride) of each depthwise-separable block; maps 28 -> 14 -> 7 -> 4
    BLOCKS = ((64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (256, 1), (256, 1))

    def __init__(self, width: float = 1.0, num_classes: int = 10) -> None:
        super().__init__()
        cin = channels(32, width)
        layers: list[nn.Module] = [conv_bn_relu(1, cin)]
        for cout, stride in self.BLOCKS:
            cout = channels(cout, width)
            layers += [conv_bn_relu(cin, cin, 3, stride, groups=cin), conv_bn_relu(cin, cout, 1)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class MobileNetV1Lite(MobileNetV1Mnist):
    """MobileNetV1 with 5 blocks of at most 128 channels: a quarter of the parameters at
    width 1.0 (about 67 k) but early layers as wide, so most of the compute stays.

    Built for the Fashion-MNIST comparison: at width 1.0 it is short of capacity (narrowing it
    costs accuracy) while its 8-channel floor stays a small share of its latency.
    """

    BLOCKS = ((64, 2), (128, 1), (128, 2), (128, 1), (128, 2))


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual add; a 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetMnist(nn.Module):
    """ResNet for 28x28 digits: a 3x3 stem, 3 stages of 2 BasicBlocks, 4x4 final map.

    At width 1.0: stages of 32/64/128 channels, each starting with a stride-2 block.
    """

    STAGES = ((32, 2), (64, 2), (128, 2))
    BLOCKS_PER_STAGE = 2

    def __init__(self, width: float = 1.0, num_classes: int = 10) -> None:
        super().__init__()
        cin = channels(32, width)
        self.stem = conv_bn_relu(1, cin)
        blocks: list[nn.Module] = []
        for cout, stride in self.STAGES:
            cout = channels(cout, width)
            blocks.append(BasicBlock(cin, cout, stride))
            blocks += [BasicBlock(cout, cout, 1) for _ in range(self.BLOCKS_PER_STAGE - 1)]
            cin = cout
        self.stages = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


class ResNetLite(ResNetMnist):
    """ResNet with one BasicBlock per stage and stages of 32/64/64 channels: about a fifth of
    the parameters at width 1.0 (about 150 k), most of the compute kept in the first stage.

    Built, like ``MobileNetV1Lite``, for the Fashion-MNIST comparison: short of capacity at
    width 1.0 while its 8-channel floor stays a small share of its latency.
    """

    STAGES = ((32, 2), (64, 2), (64, 2))
    BLOCKS_PER_STAGE = 1


ARCHS = {
    "mobilenet_v1": MobileNetV1Mnist,
    "mobilenet_v1_lite": MobileNetV1Lite,
    "resnet": ResNetMnist,
    "resnet_lite": ResNetLite,
}


def make_net(arch: str, width: float = 1.0, num_classes: int = 10) -> nn.Module:
    """A fresh network of ``arch`` (one of ``ARCHS``)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}: choose one of {', '.join(ARCHS)}")
    return ARCHS[arch](width=width, num_classes=num_classes)
