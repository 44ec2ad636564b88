"""Errors that reach the user: each says what is wrong and how to fix it, and has an exit code."""

from __future__ import annotations


class NetAdaptError(Exception):
    """Base class of every error this package raises on purpose.

    ``exit_code`` is what the CLI exits with (documented in the README).
    """

    exit_code = 1


class UsageError(NetAdaptError):
    """An option value or combination that cannot work (out of range, contradictory, ignored)."""

    exit_code = 2


class OutputError(NetAdaptError):
    """An output cannot be written (read-only file system, disk full, no permission)."""


class ModelLoadError(NetAdaptError):
    """The model file cannot be read, is not ONNX, or fails the ONNX checker."""

    exit_code = 3


class UnsupportedModelError(NetAdaptError):
    """The model is valid ONNX but outside what this tool supports (opset, dynamic shape...)."""

    exit_code = 4


class PruneError(NetAdaptError):
    """A pruning request that cannot be carried out (unknown group, bad ratio, ...)."""

    exit_code = 5


class DataError(NetAdaptError):
    """Training/holdout/validation data that cannot be used (missing, wrong shape or dtype)."""

    exit_code = 8


class FineTuneError(NetAdaptError):
    """A model cannot be converted to PyTorch, trained, or written back faithfully."""

    exit_code = 9


class BudgetError(NetAdaptError):
    """A budget that cannot be parsed, or that cannot be met by pruning this model."""

    exit_code = 10
