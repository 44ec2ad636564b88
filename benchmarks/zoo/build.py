"""Build a zoo model with random weights that give activations of a sensible magnitude."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from benchmarks.zoo.catalogue import DEFAULT_INPUT_SIZE
from benchmarks.zoo.torchvision_fix import import_timm, import_torchvision

if TYPE_CHECKING:
    import torch


def build_model(
    source: str,
    name: str,
    input_size: Sequence[int] = DEFAULT_INPUT_SIZE,
    seed: int = 0,
    calibrate: bool = True,
) -> torch.nn.Module:
    """Construct a model with random weights (deterministic for a seed), in eval mode.

    With ``calibrate``, the initialisation is made less degenerate (see ``_calibrate``): layers
    initialised to zero are re-initialised and BatchNorm running statistics are measured on one
    random batch, so activations and logits keep a sensible magnitude (plain random init gives,
    e.g., logits around 1e-9 for mobilenet_v3_small and exactly 0 for the torchvision ViTs).
    """
    import torch

    torch.manual_seed(seed)
    if source == "torchvision":
        model = import_torchvision().models.get_model(name, weights=None)
    elif source == "timm":
        model = import_timm().create_model(name, pretrained=False, exportable=True)
    else:
        raise ValueError(f"unknown source {source!r}")
    if calibrate:
        _calibrate(model, input_size)
    return model.eval()


def _calibrate(model: torch.nn.Module, input_size: Sequence[int]) -> None:
    """Revive zero-initialised layers and set BatchNorm statistics from a random batch.

    Zero-initialised norm scales (zero-init residual branches) become ones; Linear and Conv
    layers initialised to zero (torchvision ViT heads, timm global-context MLPs) get PyTorch's
    default initialisation.

    Runs in eval mode (train mode would run auxiliary heads, which need other input sizes): a
    pre-hook on each BatchNorm sets its running statistics to those of its input, so one forward
    pass calibrates the layers in order. BatchNorms on pooled features (one value per channel and
    sample) keep their default statistics: the means of random images are nearly identical, and
    their tiny variance would turn the layer into a huge amplifier of rounding noise.
    """
    import torch

    batch_norm = torch.nn.modules.batchnorm._BatchNorm
    norms = (batch_norm, torch.nn.GroupNorm, torch.nn.LayerNorm)

    def set_statistics(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0]
        if x[0, 0].numel() == 1:
            return  # after global pooling: near-identical samples, a near-zero variance
        dims = [d for d in range(x.dim()) if d != 1]
        module.running_mean.copy_(x.mean(dims))
        module.running_var.copy_(x.var(dims, unbiased=False))

    handles = []
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.modules.conv._ConvNd)):
                if not module.weight.any():
                    module.reset_parameters()
                continue
            if not isinstance(module, norms):
                continue
            weight = getattr(module, "weight", None)
            if weight is not None and not weight.any():
                weight.fill_(1.0)
            if isinstance(module, batch_norm) and module.running_mean is not None:
                handles.append(module.register_forward_pre_hook(set_statistics))
        if handles:
            model.eval()
            try:
                model(torch.randn(2, *input_size))
            finally:
                for handle in handles:
                    handle.remove()
