"""The NetAdapt loop: budgets, per-group search, proposals, selection, checkpoints, report."""

from onnx_netadapt.adapt.budget import Budget, parse_budget, parse_budgets
from onnx_netadapt.adapt.config import AdaptConfig
from onnx_netadapt.adapt.loop import Adaptation, IterationResult, adapt, adapt_model

__all__ = [
    "AdaptConfig",
    "Adaptation",
    "Budget",
    "IterationResult",
    "adapt",
    "adapt_model",
    "parse_budget",
    "parse_budgets",
]
